// FUZZ_SOURCES:
/* Fuzzes lib/config.c: parsing, expansion (loops, nesting, ${name?x}),
 * checking and the typed getters, on arbitrary file contents. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config.h"

static const struct config_param table[] = {
	{"a", CONFIG_STR, "$b", 0, 0, "str"},
	{"b", CONFIG_STR, "${c?x$c}${c:y}", 0, 0, "str"},
	{"c", CONFIG_STR, NULL, 0, 0, "str"},
	{"myhostname", CONFIG_STR, "localhost", 0, 0, "str"},
	{"n", CONFIG_INT, "5", -100, 100, "int"},
	{"m", CONFIG_INT, "0", 0, 0, "int"},
	{"yes", CONFIG_BOOL, "no", 0, 0, "bool"},
	{"t", CONFIG_TIME, "1h", 1, 86400, "time"},
	{"s", CONFIG_SIZE, "10m", 1024, 0, "size"},
	{"l", CONFIG_LIST, "$a, $myhostname x", 0, 0, "list"},
	{NULL, 0, NULL, 0, 0, NULL},
};

static void count(const char *msg, void *ctx)
{
	size_t *n = ctx;

	*n += strlen(msg) > 0;
}

static void visit(const char *name, const char *raw, void *ctx)
{
	size_t *n = ctx;

	*n += strlen(name) + strlen(raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cfg = NULL;
	char err[256], **items = NULL;
	size_t n = 0, i;

	if (config_parse((const char *)data, size, "fuzz.cf", &cfg, err, sizeof(err)) < 0) {
		if (strncmp(err, "fuzz.cf:", 8) != 0)
			abort(); /* every syntax error names file and line */
		return 0;
	}
	config_add_params(cfg, table);
	config_check(cfg, count, &n);
	config_foreach_set(cfg, visit, &n);
	for (i = 0; table[i].name != NULL; i++) {
		const char *v = config_get(cfg, table[i].name);

		if (v != NULL)
			n += strlen(v);
	}
	n += (size_t)config_get_int(cfg, "n") + (size_t)config_get_int(cfg, "m");
	n += (size_t)config_get_bool(cfg, "yes");
	n += (size_t)config_get_time(cfg, "t");
	n += (size_t)config_get_size(cfg, "s");
	if (config_get_list(cfg, "l", &items, &n) == 0)
		free(items);
	/* Overrides on top of the file must not break earlier strings. */
	config_set(cfg, "c", "$a");
	(void)config_get(cfg, "a");
	config_free(&cfg);
	return 0;
}
