/* config — mailkeep.conf in Postfix main.cf syntax (see config.h).
 *
 * The file is parsed once into (name, raw value, line) entries; values are
 * expanded at lookup ($name, ${name}, $(name), ${name?text}, ${name:text},
 * $$), recursively, with loop detection, and each expansion is cached so the
 * returned string lives as long as the struct config. A mutex makes lookups
 * safe from several threads.
 *
 * Syntax, as Postfix's: a logical line starts with non-white space; a line
 * starting with white space continues the previous one; empty lines and lines
 * whose first non-white character is '#' are ignored ('#' later in a line is
 * part of the value). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/array.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xmalloc.h"

#define CONFIG_FILE_MAX (4u << 20)  /* a bigger mailkeep.conf is a mistake */
#define CONFIG_VALUE_MAX (1u << 20) /* an expanded value */
#define CONFIG_DEPTH_MAX 64	    /* nesting of $name inside $name */

struct config_entry {
	char *name;
	char *value; /* raw, not expanded */
	int line;    /* 0: set with config_set */
};

struct config_cached {
	const char *name; /* points into a param table or an entry */
	char *value;
};

struct config {
	char *filename;
	struct config_entry *entries;
	size_t n_entries, cap_entries;
	const struct config_param **tables;
	size_t n_tables;
	const struct config_enum **enums;
	size_t n_enums;
	struct config_cached *cache;
	size_t n_cache, cap_cache;
	char **old; /* expansions returned earlier, kept alive until config_free */
	size_t n_old, cap_old;
	pthread_mutex_t lock;
};

static int is_name_char(int c)
{
	return isalnum(c) || c == '_';
}

struct config *config_new(void)
{
	struct config *cfg = xmalloc(sizeof(*cfg));

	memset(cfg, 0, sizeof(*cfg));
	cfg->filename = xstrndup("(none)", 6);
	pthread_mutex_init(&cfg->lock, NULL);
	return cfg;
}

static void cache_drop(struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->n_cache; i++) {
		*ARRAY_PUSH(cfg->old, cfg->n_old, cfg->cap_old) = cfg->cache[i].value;
	}
	cfg->n_cache = 0;
}

void config_free(struct config **cfgp)
{
	struct config *cfg = *cfgp;
	size_t i;

	if (cfg == NULL)
		return;
	cache_drop(cfg);
	for (i = 0; i < cfg->n_old; i++)
		free(cfg->old[i]);
	for (i = 0; i < cfg->n_entries; i++) {
		free(cfg->entries[i].name);
		free(cfg->entries[i].value);
	}
	free(cfg->old);
	free(cfg->cache);
	free(cfg->entries);
	free(cfg->tables);
	free(cfg->enums);
	free(cfg->filename);
	pthread_mutex_destroy(&cfg->lock);
	free(cfg);
	*cfgp = NULL;
}

static struct config_entry *entry_find(struct config *cfg, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < cfg->n_entries; i++)
		if (strncmp(cfg->entries[i].name, name, len) == 0 &&
		    cfg->entries[i].name[len] == '\0')
			return &cfg->entries[i];
	return NULL;
}

static const struct config_param *param_find(struct config *cfg, const char *name, size_t len)
{
	size_t t;

	for (t = 0; t < cfg->n_tables; t++) {
		const struct config_param *p;

		for (p = cfg->tables[t]; p->name != NULL; p++)
			if (strncmp(p->name, name, len) == 0 && p->name[len] == '\0')
				return p;
	}
	return NULL;
}

/* Sets name to value (both copied), replacing an earlier setting. */
static void entry_set(struct config *cfg, const char *name, size_t name_len, const char *value,
		      size_t value_len, int line)
{
	struct config_entry *e = entry_find(cfg, name, name_len);

	if (e != NULL) {
		free(e->value);
		e->value = xstrndup(value, value_len);
		e->line = line;
		return;
	}
	e = ARRAY_PUSH(cfg->entries, cfg->n_entries, cfg->cap_entries);
	e->name = xstrndup(name, name_len);
	e->value = xstrndup(value, value_len);
	e->line = line;
}

void config_set(struct config *cfg, const char *name, const char *value)
{
	pthread_mutex_lock(&cfg->lock);
	entry_set(cfg, name, strlen(name), value, strlen(value), 0);
	cache_drop(cfg);
	pthread_mutex_unlock(&cfg->lock);
}

void config_add_params(struct config *cfg, const struct config_param *table)
{
	pthread_mutex_lock(&cfg->lock);
	cfg->tables = xreallocarray(cfg->tables, cfg->n_tables + 1, sizeof(*cfg->tables));
	cfg->tables[cfg->n_tables++] = table;
	cache_drop(cfg);
	pthread_mutex_unlock(&cfg->lock);
}

void config_add_enums(struct config *cfg, const struct config_enum *table)
{
	pthread_mutex_lock(&cfg->lock);
	cfg->enums = xreallocarray(cfg->enums, cfg->n_enums + 1, sizeof(*cfg->enums));
	cfg->enums[cfg->n_enums++] = table;
	pthread_mutex_unlock(&cfg->lock);
}

static const struct config_enum *enum_find(struct config *cfg, const char *name)
{
	for (size_t t = 0; t < cfg->n_enums; t++)
		for (const struct config_enum *e = cfg->enums[t]; e->name != NULL; e++)
			if (strcmp(e->name, name) == 0)
				return e;
	return NULL;
}

/* 1 if value is one of the space-separated words (a word ending in ':' is a prefix). */
static int word_match(const char *words, const char *value, int nocase)
{
	size_t vlen = strlen(value);

	while (words != NULL && *words != '\0') {
		size_t n = strcspn(words, " ");
		if (n > 0) {
			int prefix = words[n - 1] == ':';
			int (*cmp)(const char *, const char *, size_t) =
			    nocase ? strncasecmp : strncmp;
			if ((prefix ? vlen >= n : vlen == n) && cmp(words, value, n) == 0)
				return 1;
		}
		words += n;
		words += strspn(words, " ");
	}
	return 0;
}

int config_enum_match(const struct config_enum *e, const char *value)
{
	int nocase = (e->flags & CONFIG_ENUM_NOCASE) != 0;

	if (value[0] == '\0')
		return (e->flags & CONFIG_ENUM_EMPTY) != 0;
	return word_match(e->values, value, nocase) || word_match(e->aliases, value, nocase);
}

void config_enum_describe(const struct config_enum *e, char *out, size_t outsize)
{
	const char *w = e->values;
	size_t nwords = 0, i = 0, off = 0;

	for (const char *c = w; *c != '\0';) {
		size_t n = strcspn(c, " ");
		nwords += n > 0;
		c += n;
		c += strspn(c, " ");
	}
	if (outsize == 0)
		return;
	out[0] = '\0';
	while (*w != '\0' && off < outsize) {
		size_t n = strcspn(w, " ");
		if (n > 0) {
			const char *sep = i == 0 ? "" : i + 1 == nwords ? " or " : ", ";
			int k = snprintf(out + off, outsize - off, "%s%.*s%s", sep, (int)n, w,
					 w[n - 1] == ':' ? "..." : "");
			off += k > 0 ? (size_t)k : 0;
			i++;
		}
		w += n;
		w += strspn(w, " ");
	}
}

static void trim(const char **s, const char **e)
{
	while (*s < *e && isspace((unsigned char)**s))
		(*s)++;
	while (*e > *s && isspace((unsigned char)(*e)[-1]))
		(*e)--;
}

/* Parses one logical line [s, e) that started on line lineno. */
static int parse_logical(struct config *cfg, const char *s, const char *e, int lineno, char *err,
			 size_t errsize)
{
	const char *name = s, *name_end, *value;

	while (s < e && is_name_char((unsigned char)*s))
		s++;
	name_end = s;
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	if (name_end == name || s == e || *s != '=') {
		if (name_end == name)
			snprintf(err, errsize, "%s:%d: a line must start with a parameter name",
				 cfg->filename, lineno);
		else if (name_end < e && *name_end != ' ' && *name_end != '\t')
			snprintf(
			    err, errsize,
			    "%s:%d: bad character '%c' in parameter name (expected 'name = value')",
			    cfg->filename, lineno,
			    isprint((unsigned char)*name_end) ? *name_end : '?');
		else
			snprintf(err, errsize, "%s:%d: missing '=' after parameter name \"%.*s\"",
				 cfg->filename, lineno, (int)(name_end - name), name);
		return -1;
	}
	value = s + 1;
	trim(&value, &e);
	entry_set(cfg, name, (size_t)(name_end - name), value, (size_t)(e - value), lineno);
	return 0;
}

int config_parse(const char *text, size_t len, const char *filename, struct config **cfg_r,
		 char *err, size_t errsize)
{
	struct config *cfg = config_new();
	struct buf logical;
	const char *p = text, *end = text + len;
	int lineno = 0, logical_line = 0;

	buf_init(&logical, CONFIG_FILE_MAX);
	free(cfg->filename);
	cfg->filename = xstrndup(filename, strlen(filename));
	if (err != NULL && errsize > 0)
		err[0] = '\0';
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl != NULL ? nl : end, *ls = p, *ts, *te;

		lineno++;
		p = nl != NULL ? nl + 1 : end;
		if (memchr(ls, '\0', (size_t)(le - ls)) != NULL) {
			snprintf(err, errsize, "%s:%d: NUL byte in line", cfg->filename, lineno);
			goto fail;
		}
		ts = ls;
		te = le;
		trim(&ts, &te);
		if (ts == te || *ts == '#')
			continue; /* blank or comment: does not end a logical line */
		if (isspace((unsigned char)*ls)) {
			if (logical_line == 0) {
				snprintf(err, errsize,
					 "%s:%d: line starts with white space but continues no "
					 "parameter",
					 cfg->filename, lineno);
				goto fail;
			}
			if (buf_append(&logical, " ", 1) < 0 ||
			    buf_append(&logical, ts, (size_t)(te - ts)) < 0)
				goto toolong;
			continue;
		}
		if (logical_line != 0 &&
		    parse_logical(cfg, logical.data, logical.data + logical.len, logical_line, err,
				  errsize) < 0)
			goto fail;
		buf_reset(&logical);
		if (buf_append(&logical, ts, (size_t)(te - ts)) < 0)
			goto toolong;
		logical_line = lineno;
	}
	if (logical_line != 0 && parse_logical(cfg, logical.data, logical.data + logical.len,
					       logical_line, err, errsize) < 0)
		goto fail;
	buf_free(&logical);
	*cfg_r = cfg;
	return 0;
toolong:
	snprintf(err, errsize, "%s:%d: line too long", cfg->filename, lineno);
fail:
	buf_free(&logical);
	config_free(&cfg);
	*cfg_r = NULL;
	return -1;
}

int config_load(const char *path, struct config **cfg_r, char *err, size_t errsize)
{
	char *text = NULL;
	size_t len = 0;
	int ret;

	if (mk_read_file(path, CONFIG_FILE_MAX, &text, &len) < 0) {
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		*cfg_r = NULL;
		return -1;
	}
	ret = config_parse(text, len, path, cfg_r, err, errsize);
	free(text);
	return ret;
}

/* Expansion. stack holds the names being expanded, for loop detection. */
struct expand_ctx {
	struct config *cfg;
	const char *stack[CONFIG_DEPTH_MAX];
	size_t depth;
	char *err;
	size_t errsize;
};

static int expand_name(struct expand_ctx *x, const char *name, size_t len, struct buf *out);

/* Finds the '}' or ')' closing an opening at s[-1], honouring nesting. */
static const char *find_close(const char *s, const char *e, char open, char close)
{
	int depth = 1;

	for (; s < e; s++) {
		if (*s == open)
			depth++;
		else if (*s == close && --depth == 0)
			return s;
	}
	return NULL;
}

static int expand_text(struct expand_ctx *x, const char *s, const char *e, struct buf *out)
{
	while (s < e) {
		const char *d = memchr(s, '$', (size_t)(e - s));

		if (d == NULL)
			d = e;
		if (buf_append(out, s, (size_t)(d - s)) < 0)
			goto toolong;
		if (d == e)
			break;
		s = d + 1;
		if (s < e && *s == '$') {
			if (buf_append(out, "$", 1) < 0)
				goto toolong;
			s++;
		} else if (s < e && (*s == '{' || *s == '(')) {
			char open = *s, close = open == '{' ? '}' : ')';
			const char *name = s + 1, *ne = name,
				   *c = find_close(s + 1, e, open, close);

			if (c == NULL) {
				snprintf(x->err, x->errsize, "missing '%c' after \"$%c\"", close,
					 open);
				return -1;
			}
			while (ne < c && is_name_char((unsigned char)*ne))
				ne++;
			if (ne == name) {
				snprintf(x->err, x->errsize, "empty parameter name after \"$%c\"",
					 open);
				return -1;
			}
			if (ne == c) {
				if (expand_name(x, name, (size_t)(ne - name), out) < 0)
					return -1;
			} else if (*ne == '?' || *ne == ':') {
				/* ${name?text}: text if name is non-empty; ${name:text}: if empty.
				 */
				struct buf tmp;
				int nonempty;

				buf_init(&tmp, CONFIG_VALUE_MAX);
				if (expand_name(x, name, (size_t)(ne - name), &tmp) < 0) {
					buf_free(&tmp);
					return -1;
				}
				nonempty = tmp.len > 0;
				buf_free(&tmp);
				if ((*ne == '?') == nonempty && expand_text(x, ne + 1, c, out) < 0)
					return -1;
			} else {
				snprintf(x->err, x->errsize, "bad character '%c' in \"$%c%.*s\"",
					 isprint((unsigned char)*ne) ? *ne : '?', open,
					 (int)(c - name), name);
				return -1;
			}
			s = c + 1;
		} else {
			const char *name = s;

			while (s < e && is_name_char((unsigned char)*s))
				s++;
			if (s == name) {
				snprintf(
				    x->err, x->errsize,
				    "'$' not followed by a parameter name (write $$ for a '$')");
				return -1;
			}
			if (expand_name(x, name, (size_t)(s - name), out) < 0)
				return -1;
		}
	}
	return 0;
toolong:
	snprintf(x->err, x->errsize, "expanded value is longer than %u bytes", CONFIG_VALUE_MAX);
	return -1;
}

static int expand_name(struct expand_ctx *x, const char *name, size_t len, struct buf *out)
{
	struct config_entry *e = entry_find(x->cfg, name, len);
	const struct config_param *p = param_find(x->cfg, name, len);
	const char *raw;
	size_t i;
	int ret;

	for (i = 0; i < x->depth; i++) {
		if (strncmp(x->stack[i], name, len) == 0 && x->stack[i][len] == '\0') {
			size_t off = 0, j;
			int n;

			n = snprintf(x->err, x->errsize, "loop in expansion: ");
			off = n > 0 ? (size_t)n : 0;
			for (j = i; j < x->depth && off < x->errsize; j++) {
				n = snprintf(x->err + off, x->errsize - off, "$%s -> ",
					     x->stack[j]);
				off += n > 0 ? (size_t)n : 0;
			}
			if (off < x->errsize)
				snprintf(x->err + off, x->errsize - off, "$%.*s", (int)len, name);
			return -1;
		}
	}
	if (x->depth == CONFIG_DEPTH_MAX) {
		snprintf(x->err, x->errsize, "expansion nested deeper than %d", CONFIG_DEPTH_MAX);
		return -1;
	}
	if (e != NULL) {
		raw = e->value;
		x->stack[x->depth++] = e->name;
	} else if (p != NULL) {
		raw = p->def != NULL ? p->def : "";
		x->stack[x->depth++] = p->name;
	} else {
		snprintf(x->err, x->errsize, "unknown parameter \"$%.*s\"", (int)len, name);
		return -1;
	}
	ret = expand_text(x, raw, raw + strlen(raw), out);
	x->depth--;
	return ret;
}

/* Expands raw text; returns a malloc'ed string or NULL with err. */
static char *expand_raw(struct config *cfg, const char *self, const char *raw, char *err,
			size_t errsize)
{
	struct expand_ctx x = {.cfg = cfg, .err = err, .errsize = errsize};
	struct buf out;

	buf_init(&out, CONFIG_VALUE_MAX);
	if (self != NULL)
		x.stack[x.depth++] = self;
	if (expand_text(&x, raw, raw + strlen(raw), &out) < 0) {
		buf_free(&out);
		return NULL;
	}
	if (out.data == NULL && buf_append(&out, "", 0) < 0) {
		buf_free(&out);
		return NULL;
	}
	return out.data;
}

/* config_get with cfg->lock held. */
static const char *get_locked(struct config *cfg, const char *name)
{
	const struct config_param *p = param_find(cfg, name, strlen(name));
	struct config_entry *e;
	char err[256], *v;
	size_t i;

	if (p == NULL)
		return NULL;
	for (i = 0; i < cfg->n_cache; i++)
		if (strcmp(cfg->cache[i].name, name) == 0)
			return cfg->cache[i].value;
	e = entry_find(cfg, name, strlen(name));
	v = expand_raw(cfg, p->name,
		       e != NULL	? e->value
		       : p->def != NULL ? p->def
					: "",
		       err, sizeof(err));
	if (v == NULL)
		return NULL;
	struct config_cached *c = ARRAY_PUSH(cfg->cache, cfg->n_cache, cfg->cap_cache);
	c->name = p->name;
	c->value = v;
	return v;
}

const char *config_get(struct config *cfg, const char *name)
{
	const char *v;

	pthread_mutex_lock(&cfg->lock);
	v = get_locked(cfg, name);
	pthread_mutex_unlock(&cfg->lock);
	return v;
}

/* Typed parsing. Each returns 0 or -1 with a reason in why. */
static int bounds_apply(long long min, long long max)
{
	return min != 0 || max != 0;
}

static int check_bounds(long double v, const struct config_param *p, const char *unit, char *why,
			size_t whysize)
{
	if (!bounds_apply(p->min, p->max))
		return 0;
	if (v < (long double)p->min) {
		snprintf(why, whysize, "must be at least %lld%s", p->min, unit);
		return -1;
	}
	/* max == 0 with min > 0 means "no upper bound". */
	if ((p->max != 0 || p->min < 0) && v > (long double)p->max) {
		snprintf(why, whysize, "must be at most %lld%s", p->max, unit);
		return -1;
	}
	return 0;
}

static int parse_int(const char *s, const struct config_param *p, long long *v_r, char *why,
		     size_t whysize)
{
	char *end;
	long long v;

	errno = 0;
	while (isspace((unsigned char)*s))
		s++;
	if (*s == '\0') {
		snprintf(why, whysize, "empty value (expected a number)");
		return -1;
	}
	v = strtoll(s, &end, 10);
	while (isspace((unsigned char)*end))
		end++;
	if (errno != 0 || *end != '\0' || end == s ||
	    !(isdigit((unsigned char)*s) || *s == '-' || *s == '+')) {
		snprintf(why, whysize, "not a whole number");
		return -1;
	}
	if (check_bounds((long double)v, p, "", why, whysize) < 0)
		return -1;
	*v_r = v;
	return 0;
}

static int parse_bool(const char *s, int *v_r, char *why, size_t whysize)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};
	size_t i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*v_r = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*v_r = 0;
			return 0;
		}
	}
	snprintf(why, whysize, "expected yes or no");
	return -1;
}

/* A non-negative number with an optional fraction and an optional unit from
 * units (each with its multiplier). */
static int parse_scaled(const char *s, const char *const *unit_names, const double *mult,
			size_t n_units, long double *v_r, int allow_fraction)
{
	char num[64];
	const char *start;
	long double v;
	size_t i, digits = 0;

	while (isspace((unsigned char)*s))
		s++;
	/* Plain decimal only: no sign, exponent, hex, "inf" or "nan". */
	start = s;
	for (; isdigit((unsigned char)*s); s++)
		digits++;
	if (allow_fraction && *s == '.')
		for (s++; isdigit((unsigned char)*s); s++)
			digits++;
	if (digits == 0 || (size_t)(s - start) >= sizeof(num))
		return -1;
	memcpy(num, start, (size_t)(s - start));
	num[s - start] = '\0';
	errno = 0;
	v = strtold(num, NULL);
	if (errno != 0 || isinf((double)v))
		return -1;
	while (isspace((unsigned char)*s))
		s++;
	if (*s == '\0') {
		*v_r = v * (long double)mult[0];
		return 0;
	}
	for (i = 0; i < n_units; i++) {
		if (strcasecmp(s, unit_names[i]) == 0) {
			*v_r = v * (long double)mult[i];
			return 0;
		}
	}
	return -1;
}

static int parse_time(const char *s, const struct config_param *p, double *v_r, char *why,
		      size_t whysize)
{
	static const char *const names[] = {"s", "m", "h", "d", "w"};
	static const double mult[] = {1, 60, 3600, 86400, 604800};
	long double v;

	if (parse_scaled(s, names, mult, 5, &v, 1) < 0) {
		snprintf(why, whysize,
			 "expected a time: a number with an optional unit s, m, h, d or w");
		return -1;
	}
	if (check_bounds(v, p, "s", why, whysize) < 0)
		return -1;
	*v_r = (double)v;
	return 0;
}

static int parse_size(const char *s, const struct config_param *p, uint64_t *v_r, char *why,
		      size_t whysize)
{
	static const char *const names[] = {"", "k", "m", "g", "t", "kb", "mb", "gb", "tb", "b"};
	static const double mult[] = {1,
				      1024.0,
				      1024.0 * 1024,
				      1024.0 * 1024 * 1024,
				      1024.0 * 1024 * 1024 * 1024,
				      1024.0,
				      1024.0 * 1024,
				      1024.0 * 1024 * 1024,
				      1024.0 * 1024 * 1024 * 1024,
				      1};
	long double v;

	if (parse_scaled(s, names, mult, 10, &v, 0) < 0) {
		snprintf(why, whysize,
			 "expected a size: a whole number with an optional unit k, m or g");
		return -1;
	}
	if (v > 18446744073709551615.0L) {
		snprintf(why, whysize, "size too large");
		return -1;
	}
	if (check_bounds(v, p, " bytes", why, whysize) < 0)
		return -1;
	*v_r = (uint64_t)v;
	return 0;
}

/* Checks value against p's type. Returns 0 or -1 with why. */
static int check_value(const struct config_param *p, const char *value, char *why, size_t whysize)
{
	long long i;
	int b;
	double t;
	uint64_t z;

	switch (p->type) {
	case CONFIG_INT:
		return parse_int(value, p, &i, why, whysize);
	case CONFIG_BOOL:
		return parse_bool(value, &b, why, whysize);
	case CONFIG_TIME:
		return parse_time(value, p, &t, why, whysize);
	case CONFIG_SIZE:
		return parse_size(value, p, &z, why, whysize);
	case CONFIG_STR:
	case CONFIG_LIST:
		return 0;
	}
	return 0;
}

/* The expanded set value and the expanded default of name, for the typed
 * getters. Returns p, or NULL if name is unknown. */
static const struct config_param *typed_values(struct config *cfg, const char *name,
					       const char **value_r, char **def_r)
{
	const struct config_param *p;
	char err[256];

	pthread_mutex_lock(&cfg->lock);
	p = param_find(cfg, name, strlen(name));
	if (p != NULL) {
		*value_r = get_locked(cfg, name);
		*def_r = expand_raw(cfg, p->name, p->def != NULL ? p->def : "", err, sizeof(err));
	}
	pthread_mutex_unlock(&cfg->lock);
	return p;
}

/* parse_bool as the other typed parsers are called (p unused). */
static int parse_bool_p(const char *s, const struct config_param *p, int *v_r, char *why,
			size_t whysize)
{
	(void)p;
	return parse_bool(s, v_r, why, whysize);
}

/* A typed getter: the set value, else the default (a bad set value takes the
 * default: config_check reports it), else 0 for an unknown name. */
#define TYPED_GETTER(fn, ctype, parse)                                                             \
	ctype fn(struct config *cfg, const char *name)                                             \
	{                                                                                          \
		const char *v = NULL;                                                              \
		char *def = NULL, why[128];                                                        \
		ctype r = 0;                                                                       \
		const struct config_param *p = typed_values(cfg, name, &v, &def);                  \
                                                                                                   \
		if (p != NULL && (v == NULL || parse(v, p, &r, why, sizeof(why)) < 0) &&           \
		    (def == NULL || parse(def, p, &r, why, sizeof(why)) < 0))                      \
			r = 0;                                                                     \
		free(def);                                                                         \
		return r;                                                                          \
	}

TYPED_GETTER(config_get_int, long long, parse_int)
TYPED_GETTER(config_get_bool, int, parse_bool_p)
TYPED_GETTER(config_get_time, double, parse_time)
TYPED_GETTER(config_get_size, uint64_t, parse_size)

void config_bind(struct config *cfg, const struct config_bind *table, void *base)
{
	for (const struct config_bind *b = table; b->name != NULL; b++) {
		char *field = (char *)base + b->offset;

		switch (b->type) {
		case CONFIG_STR:
			*(const char **)field = config_get(cfg, b->name);
			break;
		case CONFIG_INT:
			*(long long *)field = config_get_int(cfg, b->name);
			break;
		case CONFIG_BOOL:
			*(int *)field = config_get_bool(cfg, b->name);
			break;
		case CONFIG_TIME:
			*(double *)field = config_get_time(cfg, b->name);
			break;
		case CONFIG_SIZE:
			*(uint64_t *)field = config_get_size(cfg, b->name);
			break;
		case CONFIG_LIST: {
			struct config_list *l = (struct config_list *)(void *)field;
			free(l->item);
			l->broken = config_get_list(cfg, b->name, &l->item, &l->n) < 0;
			break;
		}
		}
	}
}

void config_unbind(const struct config_bind *table, void *base)
{
	for (const struct config_bind *b = table; b->name != NULL; b++) {
		if (b->type == CONFIG_LIST) {
			struct config_list *l =
			    (struct config_list *)(void *)((char *)base + b->offset);
			free(l->item);
			l->item = NULL;
			l->n = 0;
		}
	}
}

static int is_list_sep(int c)
{
	return c == ',' || isspace(c);
}

int config_split_list(const char *value, char ***items_r, size_t *n_r)
{
	size_t n = 0, chars = 0, i;
	const char *s;
	char **items, *strs;

	for (s = value; *s != '\0';) {
		const char *start;

		while (*s != '\0' && is_list_sep((unsigned char)*s))
			s++;
		if (*s == '\0')
			break;
		start = s;
		while (*s != '\0' && !is_list_sep((unsigned char)*s))
			s++;
		n++;
		chars += (size_t)(s - start) + 1;
	}
	/* One block: n+1 pointers (NULL-terminated), then the strings. */
	items = xreallocarray(NULL, 1, (n + 1) * sizeof(char *) + chars);
	strs = (char *)(items + n + 1);
	for (s = value, i = 0; *s != '\0';) {
		const char *start;

		while (*s != '\0' && is_list_sep((unsigned char)*s))
			s++;
		if (*s == '\0')
			break;
		start = s;
		while (*s != '\0' && !is_list_sep((unsigned char)*s))
			s++;
		items[i++] = strs;
		memcpy(strs, start, (size_t)(s - start));
		strs += s - start;
		*strs++ = '\0';
	}
	items[n] = NULL;
	*items_r = items;
	*n_r = n;
	return 0;
}

int config_get_list(struct config *cfg, const char *name, char ***items_r, size_t *n_r)
{
	const char *v = config_get(cfg, name);

	*items_r = NULL;
	*n_r = 0;
	if (v == NULL)
		return -1;
	return config_split_list(v, items_r, n_r);
}

/* Levenshtein distance, for "did you mean". */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t row[128], prev, tmp;

	if (lb >= sizeof(row) / sizeof(row[0]) || la >= 128)
		return (size_t)-1;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t best = prev + (a[i - 1] != b[j - 1]);

			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			tmp = row[j];
			row[j] = best;
			prev = tmp;
		}
	}
	return row[lb];
}

static const char *closest_name(struct config *cfg, const char *name)
{
	const char *best = NULL;
	size_t best_d = (size_t)-1, t, len = strlen(name);
	size_t limit = len / 3 > 2 ? len / 3 : 2;

	for (t = 0; t < cfg->n_tables; t++) {
		const struct config_param *p;

		for (p = cfg->tables[t]; p->name != NULL; p++) {
			size_t d = edit_distance(name, p->name);

			if (d < best_d) {
				best_d = d;
				best = p->name;
			}
		}
	}
	return best_d <= limit ? best : NULL;
}

/* 1 if some value in the file or a default refers to $name (a user-defined
 * parameter, as Postfix allows). */
static int name_is_referenced(struct config *cfg, const char *name)
{
	size_t len = strlen(name), i;

	for (i = 0; i < cfg->n_entries; i++) {
		const char *v = cfg->entries[i].value, *s;

		for (s = strchr(v, '$'); s != NULL; s = strchr(s + 1, '$')) {
			const char *n = s + 1;

			if (*n == '$') {
				s++;
				continue;
			}
			if (*n == '{' || *n == '(')
				n++;
			if (strncmp(n, name, len) == 0 && !is_name_char((unsigned char)n[len]))
				return 1;
		}
	}
	return 0;
}

static void report_f(void (*report)(const char *, void *), void *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void report_f(void (*report)(const char *, void *), void *ctx, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	report(msg, ctx);
}

int config_check(struct config *cfg, void (*report)(const char *msg, void *ctx), void *ctx)
{
	int problems = 0;
	size_t i;

	pthread_mutex_lock(&cfg->lock);
	for (i = 0; i < cfg->n_entries; i++) {
		struct config_entry *e = &cfg->entries[i];
		const struct config_param *p = param_find(cfg, e->name, strlen(e->name));
		char where[512], err[512], why[256], *v;

		if (e->line > 0)
			snprintf(where, sizeof(where), "%s:%d", cfg->filename, e->line);
		else
			snprintf(where, sizeof(where), "%s: (command line)", cfg->filename);
		if (p == NULL) {
			const char *close = closest_name(cfg, e->name);

			if (name_is_referenced(cfg, e->name))
				continue;
			problems++;
			if (close != NULL)
				report_f(report, ctx,
					 "%s: unknown parameter \"%s\"; did you mean \"%s\"?",
					 where, e->name, close);
			else
				report_f(report, ctx, "%s: unknown parameter \"%s\"", where,
					 e->name);
			continue;
		}
		v = expand_raw(cfg, p->name, e->value, err, sizeof(err));
		if (v == NULL) {
			problems++;
			report_f(report, ctx, "%s: %s: %s", where, e->name, err);
			continue;
		}
		int bad = check_value(p, v, why, sizeof(why)) < 0;
		const struct config_enum *en = bad ? NULL : enum_find(cfg, p->name);
		if (en != NULL && !config_enum_match(en, v)) {
			char words[200];

			config_enum_describe(en, words, sizeof(words));
			snprintf(why, sizeof(why), "expected %s", words);
			bad = 1;
		}
		if (bad) {
			char shown[128];

			problems++;
			report_f(report, ctx, "%s: %s = %s: %s", where, e->name,
				 log_printable(shown, sizeof(shown), v, strlen(v)), why);
		}
		free(v);
	}
	pthread_mutex_unlock(&cfg->lock);
	return problems;
}

void config_foreach_set(struct config *cfg,
			void (*cb)(const char *name, const char *raw_value, void *ctx), void *ctx)
{
	size_t i;

	for (i = 0; i < cfg->n_entries; i++)
		cb(cfg->entries[i].name, cfg->entries[i].value, ctx);
}

void config_locate(struct config *cfg, const char *msg, char *out, size_t size)
{
	const char *colon = strstr(msg, ": ");
	size_t n = colon != NULL ? (size_t)(colon - msg) : 0;
	int line = 0;

	for (size_t i = 0; n > 0 && i < cfg->n_entries; i++)
		if (strlen(cfg->entries[i].name) == n && strncmp(cfg->entries[i].name, msg, n) == 0)
			line = cfg->entries[i].line; /* the last one set wins, as for lookups */
	const char *file = cfg->filename != NULL ? cfg->filename : "(configuration)";
	if (line > 0)
		snprintf(out, size, "%s:%d: %s", file, line, msg);
	else
		snprintf(out, size, "%s: %s", file, msg);
}
