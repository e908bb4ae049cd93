/* Unit tests of lib/config.c: syntax, expansion, typed values, checks. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/config.h"
#include "tests/unit/reports.h"

static const struct config_param table[] = {
	{"myhostname", CONFIG_STR, "localhost", 0, 0, "host"},
	{"mydomain", CONFIG_STR, "example.org", 0, 0, "domain"},
	{"myorigin", CONFIG_STR, "$mydomain", 0, 0, "origin"},
	{"mydestination", CONFIG_LIST, "$myhostname, localhost.$mydomain", 0, 0, "dest"},
	{"data_directory", CONFIG_STR, "/var/lib/mailkeep", 0, 0, "data"},
	{"store_directory", CONFIG_STR, "${data_directory}/store", 0, 0, "store"},
	{"smtpd_banner", CONFIG_STR, "$myhostname ESMTP", 0, 0, "banner"},
	{"process_limit", CONFIG_INT, "100", 1, 1000, "int"},
	{"offset", CONFIG_INT, "-5", -10, 10, "signed"},
	{"smtpd_helo_required", CONFIG_BOOL, "no", 0, 0, "bool"},
	{"postscreen_greet_wait", CONFIG_TIME, "6s", 1, 3600, "time"},
	{"message_size_limit", CONFIG_SIZE, "10m", 1024, 0, "size"},
	{"empty_default", CONFIG_STR, NULL, 0, 0, "empty"},
	{"opt", CONFIG_STR, "", 0, 0, "optional"},
	{"any_time", CONFIG_TIME, "1s", 0, 0, "time without bounds"},
	{NULL, 0, NULL, 0, 0, NULL},
};

static struct config *parse(const char *text, char *err, size_t errsize)
{
	struct config *cfg = NULL;

	if (config_parse(text, strlen(text), "test.cf", &cfg, err, errsize) < 0)
		return NULL;
	config_add_params(cfg, table);
	return cfg;
}

static struct config *parse_ok(const char *text)
{
	char err[256] = "";
	struct config *cfg = parse(text, err, sizeof(err));

	if (cfg == NULL)
		fail_msg("parse failed: %s", err);
	return cfg;
}

static void parse_fails(const char *text, const char *expect)
{
	char err[256] = "";
	struct config *cfg = parse(text, err, sizeof(err));

	assert_null(cfg);
	if (strcmp(err, expect) != 0)
		fail_msg("error \"%s\", expected \"%s\"", err, expect);
}

static void test_syntax(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = parse_ok("# comment\n"
		       "\n"
		       "myhostname = mx.example.org\n"
		       "   # indented comment does not end anything\n"
		       "mydomain=example.net   \r\n"
		       "smtpd_banner = hello # not a comment\n"
		       "mydestination = a,\n"
		       "    b\n"
		       "\t c\n"
		       "opt =\n");
	assert_string_equal(config_get(cfg, "myhostname"), "mx.example.org");
	assert_string_equal(config_get(cfg, "mydomain"), "example.net");
	assert_string_equal(config_get(cfg, "smtpd_banner"), "hello # not a comment");
	assert_string_equal(config_get(cfg, "mydestination"), "a, b c");
	assert_string_equal(config_get(cfg, "opt"), "");
	config_free(&cfg);
	assert_null(cfg);
}

static void test_syntax_errors(void **state)
{
	(void)state;
	parse_fails("myhostname = a\nno equals sign\n", "test.cf:2: missing '=' after parameter name \"no\"");
	parse_fails("  indented = 1\n", "test.cf:1: line starts with white space but continues no parameter");
	parse_fails("\n\n= value\n", "test.cf:3: a line must start with a parameter name");
	parse_fails("my-host = x\n", "test.cf:1: bad character '-' in parameter name (expected 'name = value')");
	parse_fails("a = 1\nb\n", "test.cf:2: missing '=' after parameter name \"b\"");
	/* Error on a continued logical line names the line it started on. */
	parse_fails("a = 1\nbad value\n  continued\n", "test.cf:2: missing '=' after parameter name \"bad\"");
}

static void test_nul_byte(void **state)
{
	struct config *cfg = NULL;
	char err[128];
	const char text[] = "a = 1\nb = x\0y\n";

	(void)state;
	assert_int_equal(config_parse(text, sizeof(text) - 1, "nul.cf", &cfg, err, sizeof(err)), -1);
	assert_null(cfg);
	assert_string_equal(err, "nul.cf:2: NUL byte in line");
}

static void test_defaults_and_expansion(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = parse_ok("mydomain = example.com\n"
		       "data_directory = /srv/mk\n"
		       "myhostname = mx.$mydomain\n");
	assert_string_equal(config_get(cfg, "myorigin"), "example.com");
	assert_string_equal(config_get(cfg, "store_directory"), "/srv/mk/store");
	assert_string_equal(config_get(cfg, "smtpd_banner"), "mx.example.com ESMTP");
	assert_string_equal(config_get(cfg, "mydestination"), "mx.example.com, localhost.example.com");
	assert_string_equal(config_get(cfg, "empty_default"), "");
	assert_null(config_get(cfg, "no_such_name"));
	/* The same pointer while nothing changes. */
	assert_ptr_equal(config_get(cfg, "myorigin"), config_get(cfg, "myorigin"));
	config_free(&cfg);
}

static void test_expansion_forms(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = parse_ok("myhostname = a$$b $(mydomain) ${mydomain}x $mydomain.x\n"
		       "smtpd_banner = [${opt?set}] [${opt:unset}] [${mydomain?has $mydomain}] [${mydomain:no}]\n");
	assert_string_equal(config_get(cfg, "myhostname"), "a$b example.org example.orgx example.org.x");
	assert_string_equal(config_get(cfg, "smtpd_banner"), "[] [unset] [has example.org] []");
	config_free(&cfg);
}

static void test_user_defined(void **state)
{
	struct config *cfg;
	struct reports r = {.n = 0};

	(void)state;
	/* A name in no table may be set and used through $name, as in Postfix. */
	cfg = parse_ok("base = /opt/mk\n"
		       "data_directory = $base/data\n");
	assert_string_equal(config_get(cfg, "data_directory"), "/opt/mk/data");
	assert_null(config_get(cfg, "base"));
	assert_int_equal(config_check(cfg, collect, &r), 0);
	assert_int_equal(r.n, 0);
	config_free(&cfg);
}

static void test_loops(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = parse_ok("myhostname = $mydomain\n"
		       "mydomain = x.$myhostname\n"
		       "smtpd_banner = $smtpd_banner\n"
		       "myorigin = $nonexistent\n"
		       "data_directory = ${broken\n");
	assert_null(config_get(cfg, "myhostname"));
	assert_null(config_get(cfg, "mydomain"));
	assert_null(config_get(cfg, "smtpd_banner"));
	assert_null(config_get(cfg, "myorigin"));
	assert_null(config_get(cfg, "data_directory"));
	assert_null(config_get(cfg, "store_directory")); /* depends on a broken one */
	config_free(&cfg);
}

static void test_check(void **state)
{
	struct config *cfg;
	struct reports r = {.n = 0};
	int i;

	(void)state;
	cfg = parse_ok("myhostnme = mx.example.org\n"
		       "process_limit = 0\n"
		       "smtpd_helo_required = maybe\n"
		       "postscreen_greet_wait = 5 minutes\n"
		       "message_size_limit = 10x\n"
		       "myorigin = $mydomian\n"
		       "offset = -11\n"
		       "completely_unrelated_thing = 1\n"
		       "mydomain = ok.example\n"
		       "smtpd_banner = $smtpd_banner\n"
		       "process_limit = 1001\n");
	assert_int_equal(config_check(cfg, collect, &r), 9);
	assert_int_equal(r.n, 9);
	i = 0;
	assert_string_equal(r.msgs[i++], "test.cf:1: unknown parameter \"myhostnme\"; did you mean \"myhostname\"?");
	/* process_limit set twice: the last one counts, at its line. */
	assert_string_equal(r.msgs[i++], "test.cf:11: process_limit = 1001: must be at most 1000");
	assert_string_equal(r.msgs[i++], "test.cf:3: smtpd_helo_required = maybe: expected yes or no");
	assert_string_equal(r.msgs[i++], "test.cf:4: postscreen_greet_wait = 5 minutes: expected a time: a number "
					 "with an optional unit s, m, h, d or w");
	assert_string_equal(r.msgs[i++], "test.cf:5: message_size_limit = 10x: expected a size: a whole number "
					 "with an optional unit k, m or g");
	assert_string_equal(r.msgs[i++], "test.cf:6: myorigin: unknown parameter \"$mydomian\"");
	assert_string_equal(r.msgs[i++], "test.cf:7: offset = -11: must be at least -10");
	assert_string_equal(r.msgs[i++], "test.cf:8: unknown parameter \"completely_unrelated_thing\"");
	assert_string_equal(r.msgs[i++], "test.cf:10: smtpd_banner: loop in expansion: $smtpd_banner -> $smtpd_banner");
	config_free(&cfg);
}

static void test_check_clean(void **state)
{
	struct config *cfg;
	struct reports r = {.n = 0};

	(void)state;
	cfg = parse_ok("process_limit = 1000\n"
		       "offset = -10\n"
		       "smtpd_helo_required = YES\n"
		       "postscreen_greet_wait = 1h\n"
		       "message_size_limit = 1g\n");
	assert_int_equal(config_check(cfg, collect, &r), 0);
	assert_int_equal(r.n, 0);
	config_free(&cfg);
}

static const struct config_param enum_table[] = {
	{"level", CONFIG_STR, "may", 0, 0, "case matters"},
	{"alg", CONFIG_STR, "chi-square", 0, 0, "case ignored, aliases"},
	{"dir", CONFIG_STR, "embedded", 0, 0, "a prefix word, empty allowed"},
	{"free_text", CONFIG_STR, "", 0, 0, "not enumerated"},
	{"nap", CONFIG_TIME, "1s", 0, 60, "a time that is also enumerated"},
	{NULL, 0, NULL, 0, 0, NULL},
};

static const struct config_enum enum_words[] = {
	{"level", "none may encrypt", NULL, 0},
	{"alg", "chi-square graham", "chi2 robinson", CONFIG_ENUM_NOCASE},
	{"dir", "embedded ldap ldap:", NULL, CONFIG_ENUM_EMPTY},
	{"nap", "1s 2s", NULL, 0},
	{NULL, NULL, NULL, 0},
};

static struct config *parse_enums(const char *text)
{
	struct config *cfg = NULL;
	char err[256] = "";

	if (config_parse(text, strlen(text), "enum.cf", &cfg, err, sizeof(err)) < 0)
		fail_msg("parse failed: %s", err);
	config_add_params(cfg, enum_table);
	config_add_enums(cfg, enum_words);
	return cfg;
}

static void test_enums(void **state)
{
	struct reports r = {.n = 0};
	struct config *cfg;
	char words[128];
	int i = 0;

	(void)state;
	cfg = parse_enums("level = MAY\n"
			  "alg = bayes\n"
			  "dir = nis\n"
			  "free_text = anything at all\n"
			  "nap = 5x\n"
			  "nap = 3s\n"
			  "dir = ldapx\n");
	assert_int_equal(config_check(cfg, collect, &r), 4);
	assert_string_equal(r.msgs[i++], "enum.cf:1: level = MAY: expected none, may or encrypt");
	assert_string_equal(r.msgs[i++], "enum.cf:2: alg = bayes: expected chi-square or graham");
	/* set twice: the last one is checked, at its line */
	assert_string_equal(r.msgs[i++],
			    "enum.cf:7: dir = ldapx: expected embedded, ldap or ldap:...");
	assert_string_equal(r.msgs[i++], "enum.cf:6: nap = 3s: expected 1s or 2s");
	config_free(&cfg);

	r.n = 0;
	cfg = parse_enums("level = may\n"
			  "alg = ROBINSON\n"
			  "dir = ldap:/etc/mailkeep/ldap.cf\n"
			  "nap = 2s\n");
	assert_int_equal(config_check(cfg, collect, &r), 0);
	config_free(&cfg);
	/* values are expanded before they are matched */
	cfg = parse_enums("x = graham\nalg = $x\ndir =\nlevel = $level\n");
	r.n = 0;
	assert_int_equal(config_check(cfg, collect, &r), 1); /* only the loop */
	assert_non_null(strstr(r.msgs[0], "level: loop in expansion"));
	config_free(&cfg);
	cfg = parse_enums("dir = ldap:\nlevel =\n");
	r.n = 0;
	assert_int_equal(config_check(cfg, collect, &r), 1); /* "ldap:" alone is fine, empty level is not */
	assert_string_equal(r.msgs[0], "enum.cf:2: level = : expected none, may or encrypt");
	config_free(&cfg);

	assert_true(config_enum_match(&enum_words[1], "Graham"));
	assert_true(config_enum_match(&enum_words[1], "chi2"));
	assert_false(config_enum_match(&enum_words[1], "chi"));
	assert_false(config_enum_match(&enum_words[1], "chi-squares"));
	assert_false(config_enum_match(&enum_words[0], "may "));
	assert_false(config_enum_match(&enum_words[0], ""));
	assert_true(config_enum_match(&enum_words[2], ""));
	config_enum_describe(&enum_words[0], words, sizeof(words));
	assert_string_equal(words, "none, may or encrypt");
	config_enum_describe(&enum_words[3], words, sizeof(words));
	assert_string_equal(words, "1s or 2s");
	config_enum_describe(&enum_words[0], words, 8); /* cut short, still terminated */
	assert_int_equal(strlen(words), 7);
}

static void test_typed(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = parse_ok("process_limit = 250\n"
		       "smtpd_helo_required = on\n"
		       "postscreen_greet_wait = 2m\n"
		       "message_size_limit = 50m\n");
	assert_int_equal(config_get_int(cfg, "process_limit"), 250);
	assert_int_equal(config_get_int(cfg, "offset"), -5);
	assert_int_equal(config_get_bool(cfg, "smtpd_helo_required"), 1);
	assert_true(config_get_time(cfg, "postscreen_greet_wait") == 120.0);
	assert_true(config_get_size(cfg, "message_size_limit") == 50ull * 1024 * 1024);
	/* Unknown names: 0. */
	assert_int_equal(config_get_int(cfg, "nope"), 0);
	assert_int_equal(config_get_bool(cfg, "nope"), 0);
	assert_true(config_get_time(cfg, "nope") == 0);
	assert_true(config_get_size(cfg, "nope") == 0);
	config_free(&cfg);
}

static void test_typed_units(void **state)
{
	static const char *const times[][2] = {{"7", "7"},     {"7s", "7"},	{"1m", "60"}, {"1h", "3600"},
					       {"1d", "86400"}, {"1w", "604800"}, {"0.5s", "0.5"}, {" 3 s", "3"}};
	static const char *const sizes[][2] = {{"2048", "2048"}, {"2k", "2048"}, {"2K", "2048"},
					       {"3m", "3145728"}, {"1g", "1073741824"}, {"4kb", "4096"}};
	struct config *cfg = config_new();
	size_t i;

	(void)state;
	config_add_params(cfg, table);
	for (i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		config_set(cfg, "any_time", times[i][0]);
		assert_true(config_get_time(cfg, "any_time") == strtod(times[i][1], NULL));
	}
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		config_set(cfg, "message_size_limit", sizes[i][0]);
		assert_true(config_get_size(cfg, "message_size_limit") == strtoull(sizes[i][1], NULL, 10));
	}
	config_free(&cfg);
}

static void test_typed_rejects(void **state)
{
	static const char *const times[] = {"1e3", "0x10", "inf", "nan", "-1", "+1", "1.5.5", "", ".", "1 2", "5 min"};
	static const char *const sizes[] = {"1.5g", "-1", "1e3", "0x400", "99999999999999999999", "16777216t", "k", "1 k b"};
	struct config *cfg = config_new();
	struct reports r = {.n = 0};
	size_t i;

	(void)state;
	config_add_params(cfg, table);
	for (i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		r.n = 0;
		config_set(cfg, "any_time", times[i]);
		if (config_check(cfg, collect, &r) != 1)
			fail_msg("time \"%s\" accepted", times[i]);
		assert_true(config_get_time(cfg, "any_time") == 1.0); /* the default */
	}
	config_set(cfg, "any_time", "1");
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		r.n = 0;
		config_set(cfg, "message_size_limit", sizes[i]);
		if (config_check(cfg, collect, &r) != 1)
			fail_msg("size \"%s\" accepted", sizes[i]);
		assert_true(config_get_size(cfg, "message_size_limit") == 10ull * 1024 * 1024);
	}
	/* 16 EiB - 1 fits; 2^64 does not. */
	config_set(cfg, "message_size_limit", "18446744073709551615");
	r.n = 0;
	assert_int_equal(config_check(cfg, collect, &r), 0);
	config_free(&cfg);
}

static void test_typed_bad_gives_default(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = parse_ok("process_limit = lots\n"
		       "smtpd_helo_required = perhaps\n"
		       "postscreen_greet_wait = -1\n"
		       "message_size_limit = 1\n"
		       "offset = 99999999999999999999999\n");
	assert_int_equal(config_get_int(cfg, "process_limit"), 100);
	assert_int_equal(config_get_bool(cfg, "smtpd_helo_required"), 0);
	assert_true(config_get_time(cfg, "postscreen_greet_wait") == 6.0);
	assert_true(config_get_size(cfg, "message_size_limit") == 10ull * 1024 * 1024); /* below min 1024 */
	assert_int_equal(config_get_int(cfg, "offset"), -5);
	config_free(&cfg);
}

static void test_set_overrides(void **state)
{
	struct config *cfg;
	const char *before;
	struct reports r = {.n = 0};

	(void)state;
	cfg = parse_ok("mydomain = file.example\n");
	before = config_get(cfg, "myorigin");
	assert_string_equal(before, "file.example");
	config_set(cfg, "mydomain", "cli.example");
	assert_string_equal(config_get(cfg, "myorigin"), "cli.example");
	/* A string returned before the change stays valid. */
	assert_string_equal(before, "file.example");
	config_set(cfg, "process_limit", "0");
	assert_int_equal(config_check(cfg, collect, &r), 1);
	assert_string_equal(r.msgs[0], "test.cf: (command line): process_limit = 0: must be at least 1");
	config_free(&cfg);
}

static void test_lists(void **state)
{
	struct config *cfg;
	char **items;
	size_t n;

	(void)state;
	cfg = parse_ok("mydomain = d.example\n");
	assert_int_equal(config_get_list(cfg, "mydestination", &items, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(items[0], "localhost");
	assert_string_equal(items[1], "localhost.d.example");
	assert_null(items[2]);
	free(items);
	assert_int_equal(config_get_list(cfg, "nope", &items, &n), -1);
	assert_int_equal(config_split_list("  a,,b \t c,\n d ,", &items, &n), 0);
	assert_int_equal(n, 4);
	assert_string_equal(items[0], "a");
	assert_string_equal(items[1], "b");
	assert_string_equal(items[2], "c");
	assert_string_equal(items[3], "d");
	free(items);
	assert_int_equal(config_split_list(" , ,", &items, &n), 0);
	assert_int_equal(n, 0);
	assert_null(items[0]);
	free(items);
	config_free(&cfg);
}

static void collect_set(const char *name, const char *raw, void *ctx)
{
	char *out = ctx;
	size_t len = strlen(out);

	snprintf(out + len, 256 - len, "%s=%s;", name, raw);
}

static void test_foreach_and_load(void **state)
{
	char path[] = "/tmp/mk-test-config.XXXXXX";
	char err[256], seen[256] = "";
	struct config *cfg = NULL;
	const char text[] = "b = 2\na = $b\n";
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
	close(fd);
	assert_int_equal(config_load(path, &cfg, err, sizeof(err)), 0);
	config_foreach_set(cfg, collect_set, seen);
	assert_string_equal(seen, "b=2;a=$b;");
	config_free(&cfg);
	unlink(path);
	assert_int_equal(config_load(path, &cfg, err, sizeof(err)), -1);
	assert_null(cfg);
	assert_non_null(strstr(err, "No such file or directory"));
	assert_int_equal(strncmp(err, path, strlen(path)), 0);
}

static void test_deep_nesting(void **state)
{
	struct config *cfg;
	char text[8192];
	size_t off = 0;
	int i;

	(void)state;
	/* 100 user-defined names each referring to the next: too deep, not a crash. */
	for (i = 0; i < 100; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off, "n%d = $n%d\n", i, i + 1);
	snprintf(text + off, sizeof(text) - off, "n100 = end\nmyhostname = $n0\nmydomain = $n90\n");
	cfg = parse_ok(text);
	assert_null(config_get(cfg, "myhostname"));
	assert_string_equal(config_get(cfg, "mydomain"), "end");
	config_free(&cfg);
}

static void *reader(void *arg)
{
	struct config *cfg = arg;
	int i;

	for (i = 0; i < 2000; i++) {
		const char *v = config_get(cfg, "myorigin");

		if (v == NULL || (strcmp(v, "one.example") != 0 && strcmp(v, "two.example") != 0))
			return (void *)1;
		if (config_get_int(cfg, "process_limit") != 100)
			return (void *)1;
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct config *cfg = parse_ok("mydomain = one.example\n");
	pthread_t th[4];
	void *ret;
	int i;

	(void)state;
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader, cfg), 0);
	for (i = 0; i < 500; i++)
		config_set(cfg, "mydomain", i % 2 ? "one.example" : "two.example");
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], &ret), 0);
		assert_null(ret);
	}
	config_free(&cfg);
}

/* Typed binding (config_bind): the fields get the set values, else the
 * defaults, a bad value the default, a broken list is marked broken. */
struct bound {
	CONFIG_FIELD(myorigin, STR)
	CONFIG_FIELD(mydestination, LIST)
	CONFIG_FIELD(process_limit, INT)
	CONFIG_FIELD(smtpd_helo_required, BOOL)
	CONFIG_FIELD(postscreen_greet_wait, TIME)
	CONFIG_FIELD(message_size_limit, SIZE)
};
#define PARAM_NAME(name) #name
static const struct config_bind binds[] = {
    CONFIG_BIND(struct bound, myorigin, STR),
    CONFIG_BIND(struct bound, mydestination, LIST),
    CONFIG_BIND(struct bound, process_limit, INT),
    CONFIG_BIND(struct bound, smtpd_helo_required, BOOL),
    CONFIG_BIND(struct bound, postscreen_greet_wait, TIME),
    CONFIG_BIND(struct bound, message_size_limit, SIZE),
    CONFIG_BIND_END,
};
#undef PARAM_NAME

static void test_bind(void **state)
{
	struct config *cfg;
	struct bound b;

	(void)state;
	memset(&b, 0, sizeof(b));
	cfg = parse_ok("mydomain = example.net\n"
		       "process_limit = 5000\n" /* out of bounds: the default */
		       "smtpd_helo_required = yes\n"
		       "postscreen_greet_wait = 2m\n");
	config_bind(cfg, binds, &b);
	assert_string_equal(b.myorigin, "example.net");
	assert_int_equal(b.mydestination.n, 2);
	assert_false(b.mydestination.broken);
	assert_string_equal(b.mydestination.item[0], "localhost");
	assert_string_equal(b.mydestination.item[1], "localhost.example.net");
	assert_null(b.mydestination.item[2]);
	assert_int_equal(b.process_limit, 100);
	assert_int_equal(b.smtpd_helo_required, 1);
	assert_true(b.postscreen_greet_wait == 120.0);
	assert_true(b.message_size_limit == 10ull * 1024 * 1024);
	/* binding again (a reload) replaces the lists */
	config_set(cfg, "mydestination", "a.example b.example c.example");
	config_bind(cfg, binds, &b);
	assert_int_equal(b.mydestination.n, 3);
	assert_string_equal(b.mydestination.item[2], "c.example");
	config_unbind(binds, &b);
	assert_null(b.mydestination.item);
	assert_int_equal(b.mydestination.n, 0);
	config_free(&cfg);

	/* an expansion loop: the string is NULL and the list broken, as config_get says */
	cfg = parse_ok("myorigin = $mydestination\nmydestination = $myorigin\n");
	config_bind(cfg, binds, &b);
	assert_null(b.myorigin);
	assert_true(b.mydestination.broken);
	assert_int_equal(b.mydestination.n, 0);
	config_unbind(binds, &b);
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_defaults_and_expansion),
		cmocka_unit_test(test_expansion_forms),
		cmocka_unit_test(test_user_defined),
		cmocka_unit_test(test_loops),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_check_clean),
		cmocka_unit_test(test_enums),
		cmocka_unit_test(test_typed),
		cmocka_unit_test(test_bind),
		cmocka_unit_test(test_typed_units),
		cmocka_unit_test(test_typed_rejects),
		cmocka_unit_test(test_typed_bad_gives_default),
		cmocka_unit_test(test_set_overrides),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_foreach_and_load),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
