/* config — mailkeep.conf, in Postfix main.cf syntax.
 *
 *   # comment
 *   name = value
 *       continued value (a line starting with white space continues the last one)
 *   other = $name/more        ($name and ${name} expand, recursively, at lookup)
 *
 * Also $(name), ${name?text} (text if name is not empty), ${name:text} (text
 * if it is empty) and $$ (a '$'). '#' only starts a comment at the start of a
 * line. A name in no table may be set and used through $name (as Postfix's
 * user-defined parameters); config_check reports it as unknown only if unused.
 *
 * Every setting has a name, a type, a default and bounds in a table of struct
 * config_param (index/params.c holds mailkeep's). Values are looked up by name;
 * a name not set in the file takes its default. config_check reports every
 * unknown name, bad value or broken expansion as "file:line: what is wrong".
 * Strings returned live as long as the struct config.
 */
#ifndef MK_CONFIG_H
#define MK_CONFIG_H

#include <stddef.h>
#include <stdint.h>

enum config_type {
	CONFIG_STR,  /* any text */
	CONFIG_INT,  /* decimal integer in [min, max] */
	CONFIG_BOOL, /* yes/no (also true/false, on/off, 1/0) */
	CONFIG_TIME, /* number with optional unit s, m, h, d, w (default s); seconds in [min, max]
		      */
	CONFIG_SIZE, /* bytes, with optional unit k, m, g (1024-based); in [min, max] */
	CONFIG_LIST, /* items separated by commas and/or white space */
};

struct config_param {
	const char *name;
	enum config_type type;
	const char *def;    /* default value as text (may contain $name); NULL = empty */
	long long min, max; /* bounds for INT, TIME, SIZE; ignored if both 0; max 0 with
			     * min > 0: no upper bound */
	const char *doc;    /* one line for `mailkeep check --list` and the man page */
};

/* The words an enumerated setting (a CONFIG_STR such as spam_algorithm) may
 * take. A table of these sits beside a table of struct config_param (whose
 * positional entries have no room for it) and names settings of it. */
struct config_enum {
	const char *name;
	const char *values;  /* the words shown, space-separated ("chi-square graham"); a
				word ending in ':' accepts any value starting with it ("ldap:"
				for ldap:FILE) */
	const char *aliases; /* more accepted words, not shown (NULL: none) */
	int flags;	     /* CONFIG_ENUM_* */
};
#define CONFIG_ENUM_NOCASE 1 /* matched ignoring case, as the setting's reader does */
#define CONFIG_ENUM_EMPTY 2  /* an empty value is accepted (it means the default) */

struct config;

/* Reads and parses a file. On syntax error returns -1 and writes
 * "file:line: what is wrong" into err. */
int config_load(const char *path, struct config **cfg_r, char *err, size_t errsize);
/* Parses text already in memory; filename is used in messages only. */
int config_parse(const char *text, size_t len, const char *filename, struct config **cfg_r,
		 char *err, size_t errsize);
/* An empty configuration (all defaults). */
struct config *config_new(void);
void config_free(struct config **cfg);

/* Adds a table of known parameters (terminated by an entry with name NULL).
 * The table must outlive cfg. Lookups of names in no table return NULL. */
void config_add_params(struct config *cfg, const struct config_param *table);
/* Adds a table of enumerated settings (terminated by an entry with name
 * NULL); config_check then refuses a value of such a setting that is not one
 * of its words. The table must outlive cfg. */
void config_add_enums(struct config *cfg, const struct config_enum *table);
/* 1 if value is one of e's words (or aliases, or empty with CONFIG_ENUM_EMPTY). */
int config_enum_match(const struct config_enum *e, const char *value);
/* Writes e's words for people into out ("chi-square or graham", "embedded,
 * ldap or ldap:..."). */
void config_enum_describe(const struct config_enum *e, char *out, size_t outsize);
/* Sets or overrides a value (as `-o name=value` on a command line). */
void config_set(struct config *cfg, const char *name, const char *value);

/* The expanded value of name (set, or its default), or NULL if name is unknown
 * or its expansion is broken (loop, unknown $name). */
const char *config_get(struct config *cfg, const char *name);
/* Typed getters: they return the default's parsed value if the set value is bad
 * (config_check reports those), and 0 / "" for unknown names. */
long long config_get_int(struct config *cfg, const char *name);
int config_get_bool(struct config *cfg, const char *name);
double config_get_time(struct config *cfg, const char *name);
uint64_t config_get_size(struct config *cfg, const char *name);
/* Splits a list value into n items; *items_r is one malloc'ed block the caller
 * frees with free(). Returns 0 (n may be 0) or -1 if name is unknown. */
int config_get_list(struct config *cfg, const char *name, char ***items_r, size_t *n_r);
/* Splits any text the same way (commas and/or white space). */
int config_split_list(const char *value, char ***items_r, size_t *n_r);

/* --- Typed settings: each setting named once, bound to a typed field ---------
 *
 * A folder lists its settings once, in a file of X-macro lines (params.def):
 *
 *     PARAMS_AREA("Inbound SMTP and LMTP (mailkeep-smtpin)")
 *     PARAM(smtpd_timeout, TIME, "300s", 1, 86400, "idle time allowed ...")
 *     PARAM_ENUM(smtpd_tls_security_level, "none may encrypt", NULL, 0)
 *
 * and every table is made from those lines: the struct of typed fields (one
 * field per setting, named as the setting, of type CONFIG_CTYPE_<TYPE>), the
 * table of struct config_param that `mailkeep check` and the man page read,
 * and the binding table that fills the struct at start-up. Code reads
 * p->smtpd_timeout, so a misspelt name is a compile error, never a silent 0.
 * A .def begins with #include "lib/config_def.h" (defaults for the macros its
 * reader did not define) and ends with #include "lib/config_undef.h".
 *
 *     struct smtpin_params {
 *     #define PARAM(n, t, d, lo, hi, doc) CONFIG_FIELD(n, t)
 *     #include "smtpin/params.def"
 *     };
 *     static const struct config_bind binds[] = {
 *     #define PARAM(n, t, d, lo, hi, doc) CONFIG_BIND(struct smtpin_params, n, t),
 *     #include "smtpin/params.def"
 *         CONFIG_BIND_END};
 */

/* A LIST setting, split (config_split_list). */
struct config_list {
	char **item; /* NULL-terminated; one malloc'ed block owned by the binding */
	size_t n;
	int broken; /* the value could not be expanded (config_check says why); n is 0 */
};

/* The C type of a field bound to a setting of each type. A STR field is NULL
 * when the value cannot be expanded (as config_get); it lives as long as the
 * struct config. */
#define CONFIG_CTYPE_STR const char *
#define CONFIG_CTYPE_INT long long
#define CONFIG_CTYPE_BOOL int
#define CONFIG_CTYPE_TIME double
#define CONFIG_CTYPE_SIZE uint64_t
#define CONFIG_CTYPE_LIST struct config_list

/* A struct member for setting name of type TYPE (STR, INT, ...). */
#define CONFIG_FIELD(name, TYPE) CONFIG_CTYPE_##TYPE name;
/* A struct config_param entry from a PARAM line. PARAM_NAME(name) gives the
 * name as a string (lib/config_def.h: #name unless the .def says otherwise). */
#define CONFIG_PARAM_ENTRY(name, TYPE, def, min, max, doc)                                         \
	{PARAM_NAME(name), CONFIG_##TYPE, def, min, max, doc},
#define CONFIG_ENUM_ENTRY(name, words, aliases, flags) {PARAM_NAME(name), words, aliases, flags},

struct config_bind {
	const char *name;
	enum config_type type;
	size_t offset; /* of the field in the bound struct */
};
/* A binding of setting name to the field of the same name in struct S; the
 * field's type must be CONFIG_CTYPE_<TYPE> (checked at compile time). */
#define CONFIG_BIND(S, name, TYPE)                                                                 \
	{                                                                                          \
		PARAM_NAME(name), CONFIG_##TYPE,                                                   \
		    offsetof(S, name) +                                                            \
			0 * sizeof(char[__builtin_types_compatible_p(__typeof__(((S *)0)->name),   \
								     CONFIG_CTYPE_##TYPE)          \
					    ? 1                                                    \
					    : -1])                                                 \
	}
#define CONFIG_BIND_END                                                                            \
	{                                                                                          \
		NULL, CONFIG_STR, 0                                                                \
	}

/* Fills the fields of base that table names with the typed values of cfg (set,
 * or the default; a bad value takes the default, as the config_get_* getters).
 * Lists are split into blocks owned by base until config_unbind. */
void config_bind(struct config *cfg, const struct config_bind *table, void *base);
/* Frees what config_bind allocated in base (the lists) and empties them. */
void config_unbind(const struct config_bind *table, void *base);

/* Checks every name set in the file against the added tables and every value
 * against its type and bounds (and its words, for an enumerated setting). Calls report once per
 * problem with a message "file:line: what is wrong". Returns the number of problems. */
int config_check(struct config *cfg, void (*report)(const char *msg, void *ctx), void *ctx);

/* A message about a setting ("smtpd_recipient_restrictions: unknown
 * restriction foo") as "file:line: message" when the name before the first
 * ": " is set in the file, else "file: message". */
void config_locate(struct config *cfg, const char *msg, char *out, size_t size);

/* Iterates over the names set in the file (not defaults), in file order. */
void config_foreach_set(struct config *cfg,
			void (*cb)(const char *name, const char *raw_value, void *ctx), void *ctx);

#endif
