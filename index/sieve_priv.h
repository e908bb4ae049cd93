/* sieve_priv — what the sieve room's files share (never included outside
 * index/sieve*.c): the checked script's tree, the matcher and the regular
 * expression engine, the message reader. */
#ifndef MK_SIEVE_PRIV_H
#define MK_SIEVE_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "index/sieve.h"

/* --- the tree ------------------------------------------------------------- */

struct sv_strlist {
	char **s;
	size_t *len;
	size_t n;
	int is_list;  /* written as [ ... ] */
	int has_vars; /* some string holds "${" (expanded at run time with variables) */
};

enum sv_argkind { SV_TAG, SV_NUM, SV_STRS };
struct sv_arg {
	enum sv_argkind kind;
	unsigned line, col;
	char *tag; /* lower case, without ':' */
	uint64_t num;
	struct sv_strlist strs;
};

enum sv_op {
	/* commands */
	OP_REQUIRE = 1,
	OP_IF,
	OP_ELSIF,
	OP_ELSE,
	OP_STOP,
	OP_KEEP,
	OP_DISCARD,
	OP_FILEINTO,
	OP_REDIRECT,
	OP_REJECT,
	OP_EREJECT,
	OP_VACATION,
	OP_SET,
	OP_ADDFLAG,
	OP_SETFLAG,
	OP_REMOVEFLAG,
	OP_INCLUDE,
	OP_RETURN,
	OP_GLOBAL,
	/* tests */
	OP_ADDRESS,
	OP_ALLOF,
	OP_ANYOF,
	OP_ENVELOPE,
	OP_EXISTS,
	OP_FALSE,
	OP_TRUE,
	OP_HEADER,
	OP_NOT,
	OP_SIZE,
	OP_BODY,
	OP_STRING,
	OP_DATE,
	OP_CURRENTDATE,
	OP_MAILBOXEXISTS,
	OP_SPAMTEST,
	OP_VIRUSTEST,
	OP_HASFLAG,
};

enum sv_match { M_IS = 0, M_CONTAINS, M_MATCHES, M_REGEX, M_VALUE, M_COUNT };
enum sv_rel { R_GT, R_GE, R_LT, R_LE, R_EQ, R_NE };
enum sv_cmp { C_ASCIICASEMAP = 0, C_OCTET, C_NUMERIC };
enum sv_addrpart { AP_ALL = 0, AP_LOCALPART, AP_DOMAIN, AP_USER, AP_DETAIL };
enum sv_bodyx { B_TEXT = 0, B_RAW, B_CONTENT };

/* set's modifiers (RFC 5229), applied in precedence order */
#define SV_MOD_LOWER 0x01
#define SV_MOD_UPPER 0x02
#define SV_MOD_LOWERFIRST 0x04
#define SV_MOD_UPPERFIRST 0x08
#define SV_MOD_QUOTEWILDCARD 0x10
#define SV_MOD_LENGTH 0x20

struct sv_node {
	char *id; /* lower case */
	unsigned line, col;
	enum sv_op op;
	struct sv_arg *args;
	size_t nargs;
	struct sv_node *tests; /* the test or test list */
	size_t ntests;
	struct sv_node *block; /* commands of { ... } */
	size_t nblock;
	int has_block;
	/* filled by the checker */
	enum sv_match match;
	enum sv_rel rel;
	enum sv_cmp cmp;
	enum sv_addrpart addrpart;
	enum sv_bodyx bodyx;
	int copy, create, last, over, percent, mime, once, optional, global, modifiers,
	    zone_original;
	uint64_t num; /* size's limit, vacation's :days (or :seconds), date's :index */
	int has_index;
	const struct sv_strlist *pos[3]; /* positional arguments, in order */
	size_t npos;
	const struct sv_strlist *flags; /* :flags */
	const struct sv_strlist *subject, *from, *handle, *addresses, *zone, *content;
	int period_seconds; /* vacation :seconds */
	int size_seen;
};

struct sieve_script {
	struct sv_node *cmds;
	size_t ncmds;
	unsigned ext; /* SV_EXT_* required */
	struct sv_arena *arena;
};

#define SV_EXT_FILEINTO (1u << 0)
#define SV_EXT_REJECT (1u << 1)
#define SV_EXT_EREJECT (1u << 2)
#define SV_EXT_ENVELOPE (1u << 3)
#define SV_EXT_IMAP4FLAGS (1u << 4)
#define SV_EXT_COPY (1u << 5)
#define SV_EXT_BODY (1u << 6)
#define SV_EXT_VARIABLES (1u << 7)
#define SV_EXT_VACATION (1u << 8)
#define SV_EXT_RELATIONAL (1u << 9)
#define SV_EXT_SUBADDRESS (1u << 10)
#define SV_EXT_DATE (1u << 11)
#define SV_EXT_INDEX (1u << 12)
#define SV_EXT_MAILBOX (1u << 13)
#define SV_EXT_SPAMTEST (1u << 14)
#define SV_EXT_SPAMTESTPLUS (1u << 15)
#define SV_EXT_VIRUSTEST (1u << 16)
#define SV_EXT_INCLUDE (1u << 17)
#define SV_EXT_NUMERIC (1u << 18)
#define SV_EXT_REGEX (1u << 19)
#define SV_EXT_ENCODED (1u << 20)
#define SV_EXT_VACSECONDS (1u << 21)
#define SV_EXT_OCTET (1u << 22) /* always there; for a require of it */

/* --- regular expressions (sieve_regex.c) --------------------------------------- */

#define SIEVE_REGEX_MAX_PATTERN 1024 /* bytes of a pattern */
#define SIEVE_REGEX_MAX_PROG 4096    /* instructions after {n,m} are unrolled */
#define SIEVE_REGEX_MAX_INPUT (1024 * 1024)
#define SIEVE_REGEX_MAX_GROUPS 10 /* ${0}..${9} */

struct sv_regex;
/* Compiles a POSIX extended regular expression (icase: ASCII letters match
 * either case). Returns NULL with a sentence in err. */
struct sv_regex *sv_regex_compile(const char *pat, size_t len, int icase, char *err,
				  size_t errsize);
void sv_regex_free(struct sv_regex **re);
/* 1 match, 0 none, -1 over the step budget (*budget is decremented by the
 * work done). caps (may be NULL): 2 * SIEVE_REGEX_MAX_GROUPS offsets, -1 for
 * a group that took no part. Leftmost match, alternatives in order (a Pike
 * VM: at most one thread per instruction and input position, so time is
 * bounded by program size x input length, never exponential). */
int sv_regex_exec(const struct sv_regex *re, const char *s, size_t len, long *caps,
		  uint64_t *budget);

/* --- matching (sieve_match.c) -------------------------------------------------- */

struct sv_matchvars {
	char *v[10]; /* ${0}..${9}, malloc'd or NULL */
	size_t len[10];
};
void sv_matchvars_clear(struct sv_matchvars *mv);

/* One value against one key with the node's match type and comparator
 * (:value is done here, :count by the caller). mv (may be NULL) gets the
 * match variables of a successful :matches or :regex. 1, 0, or -1 with err
 * (a bad regular expression, the regex budget spent). */
int sv_match_one(const struct sv_node *n, const char *val, size_t vlen, const char *key,
		 size_t klen, struct sv_matchvars *mv, uint64_t *regex_budget, char *err,
		 size_t errsize);
/* i;ascii-numeric / relational compare of two strings under cmp: -1, 0, 1. */
int sv_compare(enum sv_cmp cmp, const char *a, size_t alen, const char *b, size_t blen);
int sv_rel_holds(enum sv_rel rel, int c);

/* --- the message (sieve_mail.c) ------------------------------------------------- */

struct sv_mail;
struct sv_mail *sv_mail_open(const char *data, size_t len);
void sv_mail_free(struct sv_mail **m);
/* Calls cb for each field named name (case-insensitive), in order, with its
 * unfolded value, RFC 2047 decoded into UTF-8 (raw: not decoded). cb returns
 * non-zero to stop; that value is returned, 0 at the end. */
int sv_mail_header(struct sv_mail *m, const char *name, int raw,
		   int (*cb)(const char *val, size_t len, void *ctx), void *ctx);
/* How many fields are named name. */
size_t sv_mail_header_count(struct sv_mail *m, const char *name);
/* Splits an address list header value; cb per address with its local part
 * and domain. A list that is not valid (an empty field, junk after an
 * address, an address without a domain) is one call with the whole value
 * as local and domain NULL (RFC 5228 2.7.4: only :all sees it). */
int sv_addresses(const char *val, size_t len,
		 int (*cb)(const char *local, size_t llen, const char *domain, size_t dlen,
			   void *ctx),
		 void *ctx);
/* The body for the body test: raw (after the header), or each decoded MIME
 * part whose type matches one of types (NULL: every text part). cb per text. */
int sv_mail_body(struct sv_mail *m, enum sv_bodyx x, const struct sv_strlist *types,
		 int (*cb)(const char *text, size_t len, void *ctx), void *ctx);
/* An RFC 5322 date into epoch seconds and its zone in minutes east of UTC.
 * 0 or -1. */
int sv_parse_date(const char *s, size_t len, int64_t *t_r, int *zone_r);
/* A date part (RFC 5260: year, month, day, date, julian, hour, minute,
 * second, time, iso8601, std11, zone, weekday) of t shown in zone (minutes
 * east). 0 or -1 (unknown part). */
int sv_date_part(int64_t t, int zone, const char *part, char *out, size_t size);
/* "+0100" -> 60; 0 or -1. */
int sv_parse_zone(const char *s, int *zone_r);

#endif
