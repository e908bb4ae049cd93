/* sieve_parse — a Sieve script's bytes into a checked tree (RFC 5228
 * section 8's grammar), or an error with line and column.
 *
 * Pure and bounded: the whole script at most max_size bytes, one string at
 * most SIEVE_MAX_STRING, a string list SIEVE_MAX_LIST, blocks and tests
 * nested at most SIEVE_MAX_NESTING deep (the parser recurses once per level,
 * so its stack is bounded too), numbers checked for overflow. Everything is
 * allocated in one arena freed with the script. The checker then knows every
 * command, test, tag and extension the interpreter does (sieve_run.c), so a
 * script that compiles never meets an unknown construct at delivery; what
 * depends on variables (a regex built at run time) is checked when it runs.
 * Fuzzed by tests/fuzz/fuzz-sieve.c.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "index/sieve_priv.h"
#include "lib/array.h"
#include "lib/buf.h"
#include "lib/util.h"
#include "lib/xmalloc.h"

/* --- arena ------------------------------------------------------------------ */

struct sv_chunk {
	struct sv_chunk *next;
	size_t used, size;
	_Alignas(16) unsigned char data[];
};
struct sv_arena {
	struct sv_chunk *head;
};

static void *arena_alloc(struct sv_arena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (a->head == NULL || a->head->size - a->head->used < n) {
		size_t size = n > 16384 ? n : 16384;
		struct sv_chunk *c = xmalloc(sizeof(*c) + size);
		c->next = a->head;
		c->used = 0;
		c->size = size;
		a->head = c;
	}
	void *p = a->head->data + a->head->used;
	a->head->used += n;
	memset(p, 0, n);
	return p;
}

static void arena_free(struct sv_arena *a)
{
	while (a != NULL && a->head != NULL) {
		struct sv_chunk *c = a->head;
		a->head = c->next;
		free(c);
	}
	free(a);
}

static char *arena_strndup(struct sv_arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* --- errors ------------------------------------------------------------------ */

static void set_error(struct sieve_error *e, unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_error(struct sieve_error *e, unsigned line, unsigned col, const char *fmt, ...)
{
	va_list ap;
	if (e->msg[0] != '\0')
		return; /* the first error is the one to tell */
	e->line = line;
	e->col = col;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
}

void sieve_error_format(const struct sieve_error *e, char *out, size_t size)
{
	const char *sc = e->script[0] ? e->script : NULL;
	if (e->line > 0)
		snprintf(out, size, "%s%s%sline %u, column %u: %s", sc ? "script " : "",
			 sc ? sc : "", sc ? ": " : "", e->line, e->col, e->msg);
	else
		snprintf(out, size, "%s%s%s%s", sc ? "script " : "", sc ? sc : "", sc ? ": " : "",
			 e->msg);
}

/* --- lexer ------------------------------------------------------------------- */

enum tok {
	T_EOF,
	T_ID,
	T_TAG,
	T_NUM,
	T_STR,
	T_LBRACK,
	T_RBRACK,
	T_LPAREN,
	T_RPAREN,
	T_COMMA,
	T_SEMI,
	T_LBRACE,
	T_RBRACE,
	T_ERR
};

struct lexer {
	const char *p, *end;
	unsigned line, col;
	struct sv_arena *a;
	struct sieve_error *err;
	/* the current token */
	enum tok t;
	unsigned tline, tcol;
	char *text; /* identifier or tag (lower case), string */
	size_t len;
	uint64_t num;
};

static void advance(struct lexer *lx, size_t n)
{
	for (size_t i = 0; i < n && lx->p < lx->end; i++, lx->p++) {
		if (*lx->p == '\n') {
			lx->line++;
			lx->col = 1;
		} else {
			lx->col++;
		}
	}
}

static int lex_fail(struct lexer *lx, const char *what)
{
	set_error(lx->err, lx->line, lx->col, "%s", what);
	lx->t = T_ERR;
	return -1;
}

/* Skips white space and comments. -1 on an unterminated bracket comment. */
static int skip_space(struct lexer *lx)
{
	while (lx->p < lx->end) {
		char c = *lx->p;
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			advance(lx, 1);
		} else if (c == '#') {
			while (lx->p < lx->end && *lx->p != '\n')
				advance(lx, 1);
		} else if (c == '/' && lx->end - lx->p >= 2 && lx->p[1] == '*') {
			unsigned l = lx->line, co = lx->col;
			advance(lx, 2);
			for (;;) {
				if (lx->end - lx->p < 2) {
					set_error(lx->err, l, co,
						  "comment not closed (*/ missing)");
					return -1;
				}
				if (lx->p[0] == '*' && lx->p[1] == '/') {
					advance(lx, 2);
					break;
				}
				advance(lx, 1);
			}
		} else {
			break;
		}
	}
	return 0;
}

static int lex_string_quoted(struct lexer *lx)
{
	struct buf b;
	buf_init(&b, SIEVE_MAX_STRING);
	advance(lx, 1);
	for (;;) {
		if (lx->p >= lx->end) {
			buf_free(&b);
			set_error(lx->err, lx->tline, lx->tcol, "string not closed (\" missing)");
			lx->t = T_ERR;
			return -1;
		}
		char c = *lx->p;
		if (c == '"') {
			advance(lx, 1);
			break;
		}
		if (c == '\\' && lx->end - lx->p >= 2) {
			advance(lx, 1);
			c = *lx->p; /* RFC 5228 2.4.2: \x is x */
		}
		if (c == '\0') {
			buf_free(&b);
			return lex_fail(lx, "a NUL byte in the script");
		}
		if (buf_append(&b, &c, 1) < 0) {
			buf_free(&b);
			return lex_fail(lx, "string too long (at most 64 KB)");
		}
		advance(lx, 1);
	}
	lx->text = arena_strndup(lx->a, b.data ? b.data : "", b.len);
	lx->len = b.len;
	buf_free(&b);
	lx->t = T_STR;
	return 0;
}

/* text: ... CRLF "." CRLF, dot-stuffed (RFC 5228 2.4.2). LF alone is taken
 * for CRLF, as scripts written on Unix have it; the value keeps CRLF. */
static int lex_string_multiline(struct lexer *lx)
{
	struct buf b;
	advance(lx, 5);
	while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t'))
		advance(lx, 1);
	if (lx->p < lx->end && *lx->p == '#')
		while (lx->p < lx->end && *lx->p != '\n')
			advance(lx, 1);
	if (lx->p < lx->end && *lx->p == '\r')
		advance(lx, 1);
	if (lx->p >= lx->end || *lx->p != '\n')
		return lex_fail(lx, "text: must be followed by the end of the line");
	advance(lx, 1);
	buf_init(&b, SIEVE_MAX_STRING);
	for (;;) {
		const char *nl = memchr(lx->p, '\n', (size_t)(lx->end - lx->p));
		if (nl == NULL) {
			buf_free(&b);
			set_error(lx->err, lx->tline, lx->tcol,
				  "text: not ended by a line with a single '.'");
			lx->t = T_ERR;
			return -1;
		}
		size_t ll = (size_t)(nl - lx->p);
		if (ll > 0 && lx->p[ll - 1] == '\r')
			ll--;
		if (ll == 1 && lx->p[0] == '.') {
			advance(lx, (size_t)(nl - lx->p) + 1);
			break;
		}
		const char *s = lx->p;
		if (memchr(s, '\0', ll) != NULL) {
			buf_free(&b);
			return lex_fail(lx, "a NUL byte in the script");
		}
		if (ll >= 2 && s[0] == '.' && s[1] == '.') {
			s++;
			ll--;
		}
		if (buf_append(&b, s, ll) < 0 || buf_append(&b, "\r\n", 2) < 0) {
			buf_free(&b);
			return lex_fail(lx, "string too long (at most 64 KB)");
		}
		advance(lx, (size_t)(nl - lx->p) + 1);
	}
	lx->text = arena_strndup(lx->a, b.data ? b.data : "", b.len);
	lx->len = b.len;
	buf_free(&b);
	lx->t = T_STR;
	return 0;
}

static int lex_next(struct lexer *lx)
{
	if (lx->t == T_ERR)
		return -1;
	if (skip_space(lx) < 0) {
		lx->t = T_ERR;
		return -1;
	}
	lx->tline = lx->line;
	lx->tcol = lx->col;
	if (lx->p >= lx->end) {
		lx->t = T_EOF;
		return 0;
	}
	char c = *lx->p;
	static const char punct[] = "[](),;{}";
	static const enum tok ptok[] = {T_LBRACK, T_RBRACK, T_LPAREN, T_RPAREN,
					T_COMMA,  T_SEMI,   T_LBRACE, T_RBRACE};
	const char *pp = c ? strchr(punct, c) : NULL;
	if (pp != NULL) {
		lx->t = ptok[pp - punct];
		advance(lx, 1);
		return 0;
	}
	if (c == '"')
		return lex_string_quoted(lx);
	if (c == ':' || isalpha((unsigned char)c) || c == '_') {
		int tag = c == ':';
		const char *s = lx->p + tag;
		size_t n = 0;
		while (s + n < lx->end && (isalnum((unsigned char)s[n]) || s[n] == '_'))
			n++;
		if (tag && (n == 0 || isdigit((unsigned char)s[0])))
			return lex_fail(lx, "a tag is ':' and a name");
		if (n > 64)
			return lex_fail(lx, "name too long");
		if (!tag && n == 4 && strncasecmp(s, "text", 4) == 0 && s + 4 < lx->end &&
		    s[4] == ':')
			return lex_string_multiline(lx);
		lx->text = arena_strndup(lx->a, s, n);
		for (char *q = lx->text; *q; q++)
			*q = (char)tolower((unsigned char)*q);
		lx->len = n;
		lx->t = tag ? T_TAG : T_ID;
		advance(lx, n + (size_t)tag);
		return 0;
	}
	if (isdigit((unsigned char)c)) {
		uint64_t v = 0;
		while (lx->p < lx->end && isdigit((unsigned char)*lx->p)) {
			unsigned d = (unsigned)(*lx->p - '0');
			if (v > (UINT64_MAX - d) / 10)
				return lex_fail(lx, "number too large");
			v = v * 10 + d;
			advance(lx, 1);
		}
		if (lx->p < lx->end) {
			unsigned shift = 0;
			switch (*lx->p) {
			case 'K':
			case 'k':
				shift = 10;
				break;
			case 'M':
			case 'm':
				shift = 20;
				break;
			case 'G':
			case 'g':
				shift = 30;
				break;
			}
			if (shift) {
				if (v > (UINT64_MAX >> shift))
					return lex_fail(lx, "number too large");
				v <<= shift;
				advance(lx, 1);
			}
		}
		if (v > (uint64_t)INT64_MAX)
			return lex_fail(lx, "number too large");
		lx->num = v;
		lx->t = T_NUM;
		return 0;
	}
	if (c == '\0')
		return lex_fail(lx, "a NUL byte in the script");
	char what[64];
	snprintf(what, sizeof(what), "unexpected character '%c'",
		 isprint((unsigned char)c) ? c : '?');
	return lex_fail(lx, what);
}

/* --- parser --------------------------------------------------------------------- */

struct parser {
	struct lexer lx;
	struct sieve_error *err;
	unsigned depth;
	unsigned block_line, block_col; /* the innermost block opened */
};

static int expect_fail(struct parser *ps, const char *what)
{
	struct lexer *lx = &ps->lx;
	if (lx->t == T_ERR)
		return -1;
	set_error(ps->err, lx->tline, lx->tcol, "%s", what);
	lx->t = T_ERR;
	return -1;
}

static int parse_test(struct parser *ps, struct sv_node *n);

static int parse_strlist(struct parser *ps, struct sv_strlist *sl)
{
	struct lexer *lx = &ps->lx;
	char **s = NULL;
	size_t *len = NULL, cnt = 0, cap = 0;

	if (lx->t == T_STR) {
		sl->s = arena_alloc(lx->a, sizeof(char *));
		sl->len = arena_alloc(lx->a, sizeof(size_t));
		sl->s[0] = lx->text;
		sl->len[0] = lx->len;
		sl->n = 1;
		return lex_next(lx);
	}
	/* '[' string *("," string) ']' */
	sl->is_list = 1;
	if (lex_next(lx) < 0)
		return -1;
	for (;;) {
		if (lx->t != T_STR) {
			free(s);
			free(len);
			return expect_fail(ps, "a string was expected in the list");
		}
		if (cnt >= SIEVE_MAX_LIST) {
			free(s);
			free(len);
			return expect_fail(ps, "too many strings in one list (at most 1024)");
		}
		if (cnt == cap) {
			cap = cap ? cap * 2 : 8;
			s = xreallocarray(s, cap, sizeof(*s));
			len = xreallocarray(len, cap, sizeof(*len));
		}
		s[cnt] = lx->text;
		len[cnt++] = lx->len;
		if (lex_next(lx) < 0)
			break;
		if (lx->t == T_RBRACK)
			break;
		if (lx->t != T_COMMA) {
			free(s);
			free(len);
			return expect_fail(ps, "',' or ']' was expected in the string list");
		}
		if (lex_next(lx) < 0)
			break;
	}
	if (lx->t == T_ERR) {
		free(s);
		free(len);
		return -1;
	}
	sl->s = arena_alloc(lx->a, cnt * sizeof(char *));
	sl->len = arena_alloc(lx->a, cnt * sizeof(size_t));
	memcpy(sl->s, s, cnt * sizeof(char *));
	memcpy(sl->len, len, cnt * sizeof(size_t));
	sl->n = cnt;
	free(s);
	free(len);
	return lex_next(lx);
}

/* arguments = *argument [ test / test-list ] */
static int parse_arguments(struct parser *ps, struct sv_node *n, int in_test)
{
	struct lexer *lx = &ps->lx;
	struct sv_arg *args = NULL;
	size_t cnt = 0, cap = 0;

	while (lx->t == T_TAG || lx->t == T_NUM || lx->t == T_STR || lx->t == T_LBRACK) {
		if (cnt >= 64) {
			free(args);
			return expect_fail(ps, "too many arguments (at most 64)");
		}
		struct sv_arg *a = ARRAY_PUSH(args, cnt, cap);
		memset(a, 0, sizeof(*a));
		a->line = lx->tline;
		a->col = lx->tcol;
		if (lx->t == T_TAG) {
			a->kind = SV_TAG;
			a->tag = lx->text;
			if (lex_next(lx) < 0)
				break;
		} else if (lx->t == T_NUM) {
			a->kind = SV_NUM;
			a->num = lx->num;
			if (lex_next(lx) < 0)
				break;
		} else {
			a->kind = SV_STRS;
			if (parse_strlist(ps, &a->strs) < 0)
				break;
		}
	}
	if (lx->t == T_ERR) {
		free(args);
		return -1;
	}
	if (cnt > 0) {
		n->args = arena_alloc(lx->a, cnt * sizeof(*args));
		memcpy(n->args, args, cnt * sizeof(*args));
		n->nargs = cnt;
	}
	free(args);
	if (lx->t == T_ID) {
		n->tests = arena_alloc(lx->a, sizeof(struct sv_node));
		n->ntests = 1;
		return parse_test(ps, &n->tests[0]);
	}
	if (lx->t == T_LPAREN) {
		struct sv_node *tests = NULL;
		size_t tc = 0, tcap = 0;
		if (lex_next(lx) < 0)
			return -1;
		for (;;) {
			if (lx->t != T_ID) {
				free(tests);
				return expect_fail(ps, "a test was expected");
			}
			if (tc >= 256) {
				free(tests);
				return expect_fail(ps, "too many tests in one list (at most 256)");
			}
			struct sv_node *t = ARRAY_PUSH(tests, tc, tcap);
			memset(t, 0, sizeof(*t));
			if (parse_test(ps, t) < 0) {
				free(tests);
				return -1;
			}
			if (lx->t == T_RPAREN)
				break;
			if (lx->t != T_COMMA) {
				free(tests);
				return expect_fail(ps, "',' or ')' was expected in the test list");
			}
			if (lex_next(lx) < 0) {
				free(tests);
				return -1;
			}
		}
		n->tests = arena_alloc(lx->a, tc * sizeof(*tests));
		memcpy(n->tests, tests, tc * sizeof(*tests));
		n->ntests = tc;
		free(tests);
		return lex_next(lx);
	}
	(void)in_test;
	return 0;
}

static int enter(struct parser *ps)
{
	if (++ps->depth > SIEVE_MAX_NESTING)
		return expect_fail(ps, "nested too deeply (at most 32 levels of blocks and tests)");
	return 0;
}

static int parse_test(struct parser *ps, struct sv_node *n)
{
	struct lexer *lx = &ps->lx;
	int rc;
	if (enter(ps) < 0)
		return -1;
	n->id = lx->text;
	n->line = lx->tline;
	n->col = lx->tcol;
	rc = lex_next(lx);
	if (rc == 0)
		rc = parse_arguments(ps, n, 1);
	ps->depth--;
	return rc;
}

static int parse_commands(struct parser *ps, struct sv_node **cmds_r, size_t *n_r, int in_block);

static int parse_command(struct parser *ps, struct sv_node *n)
{
	struct lexer *lx = &ps->lx;
	n->id = lx->text;
	n->line = lx->tline;
	n->col = lx->tcol;
	if (lex_next(lx) < 0 || parse_arguments(ps, n, 0) < 0)
		return -1;
	if (lx->t == T_SEMI)
		return lex_next(lx);
	if (lx->t == T_LBRACE) {
		unsigned bl = lx->tline, bc = lx->tcol;
		if (enter(ps) < 0 || lex_next(lx) < 0)
			return -1;
		n->has_block = 1;
		unsigned ol = ps->block_line, oc = ps->block_col;
		ps->block_line = bl;
		ps->block_col = bc;
		if (parse_commands(ps, &n->block, &n->nblock, 1) < 0)
			return -1;
		ps->block_line = ol;
		ps->block_col = oc;
		ps->depth--;
		return lex_next(lx); /* the '}' */
	}
	char what[128];
	snprintf(what, sizeof(what), "';' or a block was expected after %s", n->id);
	return expect_fail(ps, what);
}

static int parse_commands(struct parser *ps, struct sv_node **cmds_r, size_t *n_r, int in_block)
{
	struct lexer *lx = &ps->lx;
	struct sv_node *cmds = NULL;
	size_t cnt = 0, cap = 0;

	for (;;) {
		if (lx->t == T_ERR)
			goto fail;
		if (lx->t == T_EOF) {
			if (in_block) {
				set_error(ps->err, ps->block_line, ps->block_col,
					  "this block is not closed ('}' missing)");
				goto fail;
			}
			break;
		}
		if (lx->t == T_RBRACE) {
			if (!in_block) {
				expect_fail(ps, "'}' without a block");
				goto fail;
			}
			break;
		}
		if (lx->t != T_ID) {
			expect_fail(ps, "a command was expected");
			goto fail;
		}
		struct sv_node *c = ARRAY_PUSH(cmds, cnt, cap);
		memset(c, 0, sizeof(*c));
		if (parse_command(ps, c) < 0)
			goto fail;
	}
	if (cnt > 0) {
		*cmds_r = arena_alloc(lx->a, cnt * sizeof(*cmds));
		memcpy(*cmds_r, cmds, cnt * sizeof(*cmds));
	}
	*n_r = cnt;
	free(cmds);
	return 0;
fail:
	free(cmds);
	return -1;
}

/* --- checker ----------------------------------------------------------------------- */

static const struct {
	const char *name;
	unsigned bit;
} extensions[] = {
    {"fileinto", SV_EXT_FILEINTO},
    {"reject", SV_EXT_REJECT},
    {"ereject", SV_EXT_EREJECT},
    {"envelope", SV_EXT_ENVELOPE},
    {"imap4flags", SV_EXT_IMAP4FLAGS},
    {"copy", SV_EXT_COPY},
    {"body", SV_EXT_BODY},
    {"variables", SV_EXT_VARIABLES},
    {"vacation", SV_EXT_VACATION},
    {"vacation-seconds", SV_EXT_VACSECONDS | SV_EXT_VACATION},
    {"relational", SV_EXT_RELATIONAL},
    {"subaddress", SV_EXT_SUBADDRESS},
    {"date", SV_EXT_DATE},
    {"index", SV_EXT_INDEX},
    {"mailbox", SV_EXT_MAILBOX},
    {"spamtest", SV_EXT_SPAMTEST},
    {"spamtestplus", SV_EXT_SPAMTESTPLUS | SV_EXT_SPAMTEST},
    {"virustest", SV_EXT_VIRUSTEST},
    {"include", SV_EXT_INCLUDE},
    {"comparator-i;ascii-numeric", SV_EXT_NUMERIC},
    {"comparator-i;octet", SV_EXT_OCTET},
    {"comparator-i;ascii-casemap", SV_EXT_OCTET},
    {"regex", SV_EXT_REGEX},
};

const char sieve_extensions_list[] =
    "fileinto reject ereject envelope imap4flags copy body variables vacation vacation-seconds "
    "relational subaddress date index mailbox spamtest spamtestplus virustest include "
    "comparator-i;ascii-numeric regex";

/* Positional signatures: S one string, L a string list, N a number,
 * o an optional leading string list (variable names of hasflag/addflag). */
enum { G_CMP = 1, G_MATCH = 2, G_ADDR = 4, G_INDEX = 8 };
struct spec {
	const char *name;
	enum sv_op op;
	int test;
	unsigned ext;
	const char *pos;
	unsigned groups;
};
static const struct spec specs[] = {
    {"require", OP_REQUIRE, 0, 0, "L", 0},
    {"if", OP_IF, 0, 0, "", 0},
    {"elsif", OP_ELSIF, 0, 0, "", 0},
    {"else", OP_ELSE, 0, 0, "", 0},
    {"stop", OP_STOP, 0, 0, "", 0},
    {"keep", OP_KEEP, 0, 0, "", 0},
    {"discard", OP_DISCARD, 0, 0, "", 0},
    {"fileinto", OP_FILEINTO, 0, SV_EXT_FILEINTO, "S", 0},
    {"redirect", OP_REDIRECT, 0, 0, "S", 0},
    {"reject", OP_REJECT, 0, SV_EXT_REJECT, "S", 0},
    {"ereject", OP_EREJECT, 0, SV_EXT_EREJECT, "S", 0},
    {"vacation", OP_VACATION, 0, SV_EXT_VACATION, "S", 0},
    {"set", OP_SET, 0, SV_EXT_VARIABLES, "SS", 0},
    {"addflag", OP_ADDFLAG, 0, SV_EXT_IMAP4FLAGS, "oL", 0},
    {"setflag", OP_SETFLAG, 0, SV_EXT_IMAP4FLAGS, "oL", 0},
    {"removeflag", OP_REMOVEFLAG, 0, SV_EXT_IMAP4FLAGS, "oL", 0},
    {"include", OP_INCLUDE, 0, SV_EXT_INCLUDE, "S", 0},
    {"return", OP_RETURN, 0, SV_EXT_INCLUDE, "", 0},
    {"global", OP_GLOBAL, 0, SV_EXT_INCLUDE, "L", 0},
    {"address", OP_ADDRESS, 1, 0, "LL", G_CMP | G_MATCH | G_ADDR | G_INDEX},
    {"allof", OP_ALLOF, 1, 0, "", 0},
    {"anyof", OP_ANYOF, 1, 0, "", 0},
    {"envelope", OP_ENVELOPE, 1, SV_EXT_ENVELOPE, "LL", G_CMP | G_MATCH | G_ADDR},
    {"exists", OP_EXISTS, 1, 0, "L", 0},
    {"false", OP_FALSE, 1, 0, "", 0},
    {"true", OP_TRUE, 1, 0, "", 0},
    {"header", OP_HEADER, 1, 0, "LL", G_CMP | G_MATCH | G_INDEX},
    {"not", OP_NOT, 1, 0, "", 0},
    {"size", OP_SIZE, 1, 0, "N", 0},
    {"body", OP_BODY, 1, SV_EXT_BODY, "L", G_CMP | G_MATCH},
    {"string", OP_STRING, 1, SV_EXT_VARIABLES, "LL", G_CMP | G_MATCH},
    {"date", OP_DATE, 1, SV_EXT_DATE, "SSL", G_CMP | G_MATCH | G_INDEX},
    {"currentdate", OP_CURRENTDATE, 1, SV_EXT_DATE, "SL", G_CMP | G_MATCH},
    {"mailboxexists", OP_MAILBOXEXISTS, 1, SV_EXT_MAILBOX, "L", 0},
    {"spamtest", OP_SPAMTEST, 1, SV_EXT_SPAMTEST, "S", G_CMP | G_MATCH},
    {"virustest", OP_VIRUSTEST, 1, SV_EXT_VIRUSTEST, "S", G_CMP | G_MATCH},
    {"hasflag", OP_HASFLAG, 1, SV_EXT_IMAP4FLAGS, "oL", G_CMP | G_MATCH},
};

struct checker {
	struct sieve_error *err;
	unsigned ext;
	struct sv_arena *a;
};

static int check_fail(struct checker *ck, unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int check_fail(struct checker *ck, unsigned line, unsigned col, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	set_error(ck->err, line, col, "%s", msg);
	return -1;
}

static const char *ext_name(unsigned bit)
{
	for (size_t i = 0; i < sizeof(extensions) / sizeof(extensions[0]); i++)
		if (extensions[i].bit == bit)
			return extensions[i].name;
	return "?";
}

static int need_ext(struct checker *ck, const struct sv_arg *a, unsigned bit, const char *what)
{
	if (ck->ext & bit)
		return 0;
	return check_fail(ck, a->line, a->col, "%s needs require \"%s\"", what, ext_name(bit));
}

static const struct sv_strlist *one_string(struct checker *ck, const struct sv_arg *a,
					   const char *what)
{
	if (a == NULL || a->kind != SV_STRS || a->strs.is_list) {
		if (a == NULL || a->kind != SV_STRS || a->strs.n != 1) {
			check_fail(ck, a ? a->line : 0, a ? a->col : 0, "%s takes a string", what);
			return NULL;
		}
	}
	return &a->strs;
}

static int has_vars(const struct sv_strlist *sl)
{
	for (size_t i = 0; i < sl->n; i++)
		if (memmem(sl->s[i], sl->len[i], "${", 2) != NULL)
			return 1;
	return 0;
}

static int rel_parse(const char *s, enum sv_rel *r)
{
	static const char *const names[] = {"gt", "ge", "lt", "le", "eq", "ne"};
	for (int i = 0; i < 6; i++)
		if (strcasecmp(s, names[i]) == 0) {
			*r = (enum sv_rel)i;
			return 0;
		}
	return -1;
}

static int valid_varname(const char *s)
{
	if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return 0;
	for (const char *p = s; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '_'))
			return 0;
	return strlen(s) <= 64;
}

/* Tags every test of its group takes; 1 if taken, 0 if not this group's, -1 error. */
static int group_tag(struct checker *ck, struct sv_node *n, unsigned groups, struct sv_arg *args,
		     size_t nargs, size_t *i, int *have_match, int *have_cmp, int *have_addr)
{
	struct sv_arg *a = &args[*i];
	const char *t = a->tag;
	if (groups & G_CMP && strcmp(t, "comparator") == 0) {
		if (*have_cmp)
			return check_fail(ck, a->line, a->col, ":comparator given twice");
		*have_cmp = 1;
		const struct sv_strlist *s =
		    *i + 1 < nargs ? one_string(ck, &args[*i + 1], ":comparator") : NULL;
		if (s == NULL)
			return check_fail(ck, a->line, a->col, ":comparator takes a string");
		(*i)++;
		if (strcasecmp(s->s[0], "i;ascii-casemap") == 0)
			n->cmp = C_ASCIICASEMAP;
		else if (strcasecmp(s->s[0], "i;octet") == 0)
			n->cmp = C_OCTET;
		else if (strcasecmp(s->s[0], "i;ascii-numeric") == 0) {
			if (need_ext(ck, a, SV_EXT_NUMERIC, "comparator i;ascii-numeric") < 0)
				return -1;
			n->cmp = C_NUMERIC;
		} else
			return check_fail(ck, a->line, a->col, "unknown comparator \"%s\"",
					  s->s[0]);
		return 1;
	}
	if (groups & G_MATCH) {
		static const struct {
			const char *name;
			enum sv_match m;
			unsigned ext;
		} mt[] = {{"is", M_IS, 0},
			  {"contains", M_CONTAINS, 0},
			  {"matches", M_MATCHES, 0},
			  {"regex", M_REGEX, SV_EXT_REGEX},
			  {"value", M_VALUE, SV_EXT_RELATIONAL},
			  {"count", M_COUNT, SV_EXT_RELATIONAL}};
		for (size_t k = 0; k < sizeof(mt) / sizeof(mt[0]); k++) {
			if (strcmp(t, mt[k].name) != 0)
				continue;
			if (*have_match)
				return check_fail(ck, a->line, a->col,
						  "only one match type may be given");
			*have_match = 1;
			if (mt[k].ext && need_ext(ck, a, mt[k].ext,
						  t[0] == 'r' ? ":regex" : ":value/:count") < 0)
				return -1;
			n->match = mt[k].m;
			if (n->match == M_VALUE || n->match == M_COUNT) {
				const struct sv_strlist *s =
				    *i + 1 < nargs
					? one_string(ck, &args[*i + 1], ":value and :count")
					: NULL;
				if (s == NULL || rel_parse(s->s[0], &n->rel) < 0)
					return check_fail(ck, a->line, a->col,
							  ":%s takes one of \"gt\" \"ge\" \"lt\" "
							  "\"le\" \"eq\" \"ne\"",
							  t);
				(*i)++;
			}
			return 1;
		}
	}
	if (groups & G_ADDR) {
		static const struct {
			const char *name;
			enum sv_addrpart p;
		} ap[] = {{"all", AP_ALL},
			  {"localpart", AP_LOCALPART},
			  {"domain", AP_DOMAIN},
			  {"user", AP_USER},
			  {"detail", AP_DETAIL}};
		for (size_t k = 0; k < sizeof(ap) / sizeof(ap[0]); k++) {
			if (strcmp(t, ap[k].name) != 0)
				continue;
			if (*have_addr)
				return check_fail(ck, a->line, a->col,
						  "only one address part may be given");
			*have_addr = 1;
			if (ap[k].p >= AP_USER &&
			    need_ext(ck, a, SV_EXT_SUBADDRESS, ":user and :detail") < 0)
				return -1;
			n->addrpart = ap[k].p;
			return 1;
		}
	}
	if (groups & G_INDEX) {
		if (strcmp(t, "index") == 0) {
			if (need_ext(ck, a, SV_EXT_INDEX, ":index") < 0)
				return -1;
			if (*i + 1 >= nargs || args[*i + 1].kind != SV_NUM || args[*i + 1].num == 0)
				return check_fail(ck, a->line, a->col,
						  ":index takes a number from 1");
			n->num = args[++(*i)].num;
			n->has_index = 1;
			return 1;
		}
		if (strcmp(t, "last") == 0) {
			if (need_ext(ck, a, SV_EXT_INDEX, ":last") < 0)
				return -1;
			n->last = 1;
			return 1;
		}
	}
	return 0;
}

static const struct sv_strlist *tag_string(struct checker *ck, struct sv_arg *args, size_t nargs,
					   size_t *i, int list)
{
	struct sv_arg *a = &args[*i];
	if (*i + 1 >= nargs || args[*i + 1].kind != SV_STRS ||
	    (!list && args[*i + 1].strs.n != 1)) {
		check_fail(ck, a->line, a->col, ":%s takes %s", a->tag,
			   list ? "a string list" : "a string");
		return NULL;
	}
	return &args[++(*i)].strs;
}

/* The tags only some commands take. 1 taken, 0 not known here, -1 error. */
static int special_tag(struct checker *ck, struct sv_node *n, struct sv_arg *args, size_t nargs,
		       size_t *i)
{
	struct sv_arg *a = &args[*i];
	const char *t = a->tag;
	switch (n->op) {
	case OP_FILEINTO:
	case OP_KEEP:
	case OP_REDIRECT:
		if (strcmp(t, "copy") == 0 && n->op != OP_KEEP) {
			if (need_ext(ck, a, SV_EXT_COPY, ":copy") < 0)
				return -1;
			n->copy = 1;
			return 1;
		}
		if (strcmp(t, "flags") == 0 && n->op != OP_REDIRECT) {
			if (need_ext(ck, a, SV_EXT_IMAP4FLAGS, ":flags") < 0)
				return -1;
			return (n->flags = tag_string(ck, args, nargs, i, 1)) ? 1 : -1;
		}
		if (strcmp(t, "create") == 0 && n->op == OP_FILEINTO) {
			if (need_ext(ck, a, SV_EXT_MAILBOX, ":create") < 0)
				return -1;
			n->create = 1;
			return 1;
		}
		return 0;
	case OP_SIZE:
		if (strcmp(t, "over") == 0 || strcmp(t, "under") == 0) {
			if (n->size_seen)
				return check_fail(ck, a->line, a->col,
						  "size takes :over or :under, once");
			n->size_seen = 1;
			n->over = t[0] == 'o';
			return 1;
		}
		return 0;
	case OP_BODY:
		if (strcmp(t, "raw") == 0 || strcmp(t, "text") == 0) {
			n->bodyx = t[0] == 'r' ? B_RAW : B_TEXT;
			return 1;
		}
		if (strcmp(t, "content") == 0) {
			n->bodyx = B_CONTENT;
			return (n->content = tag_string(ck, args, nargs, i, 1)) ? 1 : -1;
		}
		return 0;
	case OP_DATE:
	case OP_CURRENTDATE:
		if (strcmp(t, "zone") == 0) {
			if ((n->zone = tag_string(ck, args, nargs, i, 0)) == NULL)
				return -1;
			int z;
			if (!has_vars(n->zone) && sv_parse_zone(n->zone->s[0], &z) < 0)
				return check_fail(ck, a->line, a->col,
						  ":zone \"%s\" is not a zone like \"+0100\"",
						  n->zone->s[0]);
			return 1;
		}
		if (strcmp(t, "originalzone") == 0 && n->op == OP_DATE) {
			n->zone_original = 1;
			return 1;
		}
		return 0;
	case OP_SPAMTEST:
		if (strcmp(t, "percent") == 0) {
			if (need_ext(ck, a, SV_EXT_SPAMTESTPLUS, ":percent") < 0)
				return -1;
			n->percent = 1;
			return 1;
		}
		return 0;
	case OP_VACATION:
		if (strcmp(t, "days") == 0 || strcmp(t, "seconds") == 0) {
			if (t[0] == 's' && need_ext(ck, a, SV_EXT_VACSECONDS, ":seconds") < 0)
				return -1;
			if (*i + 1 >= nargs || args[*i + 1].kind != SV_NUM)
				return check_fail(ck, a->line, a->col, ":%s takes a number", t);
			n->num = args[++(*i)].num;
			n->period_seconds = t[0] == 's';
			n->has_index = 1; /* a period was given */
			return 1;
		}
		if (strcmp(t, "subject") == 0)
			return (n->subject = tag_string(ck, args, nargs, i, 0)) ? 1 : -1;
		if (strcmp(t, "from") == 0)
			return (n->from = tag_string(ck, args, nargs, i, 0)) ? 1 : -1;
		if (strcmp(t, "handle") == 0)
			return (n->handle = tag_string(ck, args, nargs, i, 0)) ? 1 : -1;
		if (strcmp(t, "addresses") == 0)
			return (n->addresses = tag_string(ck, args, nargs, i, 1)) ? 1 : -1;
		if (strcmp(t, "mime") == 0) {
			n->mime = 1;
			return 1;
		}
		return 0;
	case OP_SET: {
		static const struct {
			const char *name;
			int bit;
		} mods[] = {{"lower", SV_MOD_LOWER},
			    {"upper", SV_MOD_UPPER},
			    {"lowerfirst", SV_MOD_LOWERFIRST},
			    {"upperfirst", SV_MOD_UPPERFIRST},
			    {"quotewildcard", SV_MOD_QUOTEWILDCARD},
			    {"length", SV_MOD_LENGTH}};
		for (size_t k = 0; k < sizeof(mods) / sizeof(mods[0]); k++)
			if (strcmp(t, mods[k].name) == 0) {
				int bit = mods[k].bit;
				if ((bit & (SV_MOD_LOWER | SV_MOD_UPPER)) &&
				    (n->modifiers & (SV_MOD_LOWER | SV_MOD_UPPER)))
					return check_fail(ck, a->line, a->col,
							  ":lower and :upper exclude each other");
				if ((bit & (SV_MOD_LOWERFIRST | SV_MOD_UPPERFIRST)) &&
				    (n->modifiers & (SV_MOD_LOWERFIRST | SV_MOD_UPPERFIRST)))
					return check_fail(
					    ck, a->line, a->col,
					    ":lowerfirst and :upperfirst exclude each other");
				n->modifiers |= bit;
				return 1;
			}
		return 0;
	}
	case OP_INCLUDE:
		if (strcmp(t, "personal") == 0 || strcmp(t, "global") == 0) {
			n->global = t[0] == 'g';
			return 1;
		}
		if (strcmp(t, "once") == 0) {
			n->once = 1;
			return 1;
		}
		if (strcmp(t, "optional") == 0) {
			n->optional = 1;
			return 1;
		}
		return 0;
	default:
		return 0;
	}
}

static int check_node(struct checker *ck, struct sv_node *n, int test, int toplevel,
		      enum sv_op prev);

static int check_args(struct checker *ck, struct sv_node *n, const struct spec *sp)
{
	int have_match = 0, have_cmp = 0, have_addr = 0;
	struct sv_arg *pos[4];
	size_t npos = 0;

	for (size_t i = 0; i < n->nargs; i++) {
		struct sv_arg *a = &n->args[i];
		if (a->kind != SV_TAG) {
			if (npos >= 3)
				return check_fail(ck, a->line, a->col, "too many arguments for %s",
						  n->id);
			pos[npos++] = a;
			continue;
		}
		if (npos > 0)
			return check_fail(ck, a->line, a->col,
					  "tag :%s must come before the other arguments of %s",
					  a->tag, n->id);
		int r = group_tag(ck, n, sp->groups, n->args, n->nargs, &i, &have_match, &have_cmp,
				  &have_addr);
		if (r == 0) {
			r = special_tag(ck, n, n->args, n->nargs, &i);
		}
		if (r < 0)
			return -1;
		if (r == 0)
			return check_fail(ck, a->line, a->col, "%s does not take :%s", n->id,
					  a->tag);
	}
	if (n->op == OP_SIZE && !n->size_seen)
		return check_fail(ck, n->line, n->col, "size needs :over or :under");
	/* positional: "o" is an optional leading list */
	const char *sig = sp->pos;
	size_t want = strlen(sig), opt = sig[0] == 'o';
	if (opt) {
		sig++;
		want--;
	}
	if (npos < want || npos > want + opt)
		return check_fail(ck, n->line, n->col, "%s takes %zu argument%s", n->id, want,
				  want == 1 ? "" : "s");
	size_t first = npos - want; /* 1 if the optional list is there */
	n->npos = 0;
	if (first) {
		if (pos[0]->kind != SV_STRS)
			return check_fail(ck, pos[0]->line, pos[0]->col,
					  "%s: a list of variable names was expected", n->id);
		for (size_t k = 0; k < pos[0]->strs.n; k++)
			if (!valid_varname(pos[0]->strs.s[k]))
				return check_fail(ck, pos[0]->line, pos[0]->col,
						  "\"%s\" is not a variable name",
						  pos[0]->strs.s[k]);
		n->pos[n->npos++] = &pos[0]->strs;
	} else if (opt) {
		n->pos[n->npos++] = NULL;
	}
	for (size_t k = 0; k < want; k++) {
		struct sv_arg *a = pos[first + k];
		switch (sig[k]) {
		case 'N':
			if (a->kind != SV_NUM)
				return check_fail(ck, a->line, a->col, "%s takes a number", n->id);
			n->num = a->num;
			n->pos[n->npos++] = NULL;
			break;
		case 'S':
			if (one_string(ck, a, n->id) == NULL)
				return -1;
			n->pos[n->npos++] = &a->strs;
			break;
		case 'L':
			if (a->kind != SV_STRS)
				return check_fail(ck, a->line, a->col,
						  "%s takes a string list here", n->id);
			n->pos[n->npos++] = &a->strs;
			break;
		}
	}
	for (size_t k = 0; k < n->npos; k++)
		if (n->pos[k] != NULL && has_vars(n->pos[k]))
			((struct sv_strlist *)n->pos[k])->has_vars = 1;
	return 0;
}

/* Checks what can be checked of the arguments' values before any run. */
static int check_values(struct checker *ck, struct sv_node *n)
{
	char err[200];
	/* RFC 4790 9.1: i;ascii-numeric has equality and order, no substrings */
	if (n->cmp == C_NUMERIC &&
	    (n->match == M_CONTAINS || n->match == M_MATCHES || n->match == M_REGEX))
		return check_fail(
		    ck, n->line, n->col,
		    "comparator i;ascii-numeric cannot be used with :contains, :matches or :regex");
	/* a regular expression without variables compiles now */
	if (n->match == M_REGEX) {
		const struct sv_strlist *keys = n->pos[n->npos - 1];
		for (size_t k = 0; keys != NULL && k < keys->n; k++) {
			if (keys->has_vars)
				break;
			struct sv_regex *re = sv_regex_compile(
			    keys->s[k], keys->len[k], n->cmp == C_ASCIICASEMAP, err, sizeof(err));
			if (re == NULL)
				return check_fail(ck, n->line, n->col,
						  "regular expression \"%.60s\": %s", keys->s[k],
						  err);
			sv_regex_free(&re);
		}
	}
	switch (n->op) {
	case OP_SET:
		if (!valid_varname(n->pos[0]->s[0]))
			return check_fail(ck, n->line, n->col, "\"%s\" is not a variable name",
					  n->pos[0]->s[0]);
		break;
	case OP_GLOBAL:
		for (size_t k = 0; k < n->pos[0]->n; k++)
			if (!valid_varname(n->pos[0]->s[k]))
				return check_fail(ck, n->line, n->col,
						  "\"%s\" is not a variable name", n->pos[0]->s[k]);
		break;
	case OP_INCLUDE:
		if (!n->pos[0]->has_vars && !sieve_name_valid(n->pos[0]->s[0]))
			return check_fail(ck, n->line, n->col, "\"%s\" is not a script name",
					  n->pos[0]->s[0]);
		break;
	case OP_DATE:
	case OP_CURRENTDATE: {
		const struct sv_strlist *part = n->pos[n->op == OP_DATE ? 1 : 0];
		char out[64];
		if (!part->has_vars && sv_date_part(0, 0, part->s[0], out, sizeof(out)) < 0)
			return check_fail(ck, n->line, n->col, "unknown date part \"%s\"",
					  part->s[0]);
		break;
	}
	case OP_FILEINTO:
		if (n->pos[0]->len[0] == 0)
			return check_fail(ck, n->line, n->col, "fileinto needs a mailbox name");
		break;
	default:
		break;
	}
	return 0;
}

static int check_list(struct checker *ck, struct sv_node *cmds, size_t n, int toplevel)
{
	enum sv_op prev = 0;
	int past_require = 0;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(cmds[i].id, "require") != 0)
			past_require = 1;
		else if (!toplevel || past_require)
			return check_fail(
			    ck, cmds[i].line, cmds[i].col,
			    "require must come before every other command, at the top");
		if (check_node(ck, &cmds[i], 0, toplevel, prev) < 0)
			return -1;
		prev = cmds[i].op;
	}
	return 0;
}

static int check_node(struct checker *ck, struct sv_node *n, int test, int toplevel,
		      enum sv_op prev)
{
	const struct spec *sp = NULL;
	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
		if (strcmp(specs[i].name, n->id) == 0 && specs[i].test == test) {
			sp = &specs[i];
			break;
		}
	if (sp == NULL) {
		for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
			if (strcmp(specs[i].name, n->id) == 0)
				return check_fail(ck, n->line, n->col, "%s is a %s, not a %s",
						  n->id, test ? "command" : "test",
						  test ? "test" : "command");
		return check_fail(ck, n->line, n->col, "unknown %s '%s'", test ? "test" : "command",
				  n->id);
	}
	n->op = sp->op;
	if (sp->ext && !(ck->ext & sp->ext))
		return check_fail(ck, n->line, n->col, "%s needs require \"%s\"", n->id,
				  ext_name(sp->ext));
	if (check_args(ck, n, sp) < 0)
		return -1;
	if (n->op == OP_REQUIRE) {
		const struct sv_strlist *sl = n->pos[0];
		for (size_t k = 0; k < sl->n; k++) {
			size_t e;
			for (e = 0; e < sizeof(extensions) / sizeof(extensions[0]); e++)
				if (strcmp(extensions[e].name, sl->s[k]) == 0)
					break;
			if (e == sizeof(extensions) / sizeof(extensions[0]))
				return check_fail(ck, n->line, n->col,
						  "unsupported extension \"%.80s\"", sl->s[k]);
			ck->ext |= extensions[e].bit;
		}
	}
	/* tests and blocks */
	int wants_test = n->op == OP_IF || n->op == OP_ELSIF || n->op == OP_NOT;
	int wants_tests = n->op == OP_ALLOF || n->op == OP_ANYOF;
	if (wants_test && n->ntests != 1)
		return check_fail(ck, n->line, n->col, "%s takes one test", n->id);
	if (wants_tests && n->ntests == 0)
		return check_fail(ck, n->line, n->col, "%s takes a list of tests in ( )", n->id);
	if (!wants_test && !wants_tests && n->ntests > 0)
		return check_fail(ck, n->tests[0].line, n->tests[0].col, "%s takes no test", n->id);
	int wants_block = n->op == OP_IF || n->op == OP_ELSIF || n->op == OP_ELSE;
	if (wants_block != n->has_block)
		return check_fail(ck, n->line, n->col,
				  wants_block ? "%s needs a block { ... }" : "%s takes no block",
				  n->id);
	if ((n->op == OP_ELSIF || n->op == OP_ELSE) && prev != OP_IF && prev != OP_ELSIF)
		return check_fail(ck, n->line, n->col, "%s without an if before it", n->id);
	if (check_values(ck, n) < 0)
		return -1;
	for (size_t i = 0; i < n->ntests; i++)
		if (check_node(ck, &n->tests[i], 1, 0, 0) < 0)
			return -1;
	(void)toplevel;
	return n->has_block ? check_list(ck, n->block, n->nblock, 0) : 0;
}

int sieve_compile(const char *text, size_t len, size_t max_size, struct sieve_script **script_r,
		  struct sieve_error *err_r)
{
	struct parser ps;
	struct sieve_script *sc;

	memset(err_r, 0, sizeof(*err_r));
	*script_r = NULL;
	if (max_size == 0)
		max_size = SIEVE_SCRIPT_MAX_DEFAULT;
	if (len > max_size) {
		set_error(err_r, 0, 0, "the script is %zu bytes, over the limit of %zu", len,
			  max_size);
		return -1;
	}
	sc = xcalloc(1, sizeof(*sc));
	sc->arena = xcalloc(1, sizeof(*sc->arena));
	memset(&ps, 0, sizeof(ps));
	ps.err = err_r;
	ps.lx.p = text;
	ps.lx.end = text + len;
	ps.lx.line = 1;
	ps.lx.col = 1;
	ps.lx.a = sc->arena;
	ps.lx.err = err_r;
	if (lex_next(&ps.lx) < 0 || parse_commands(&ps, &sc->cmds, &sc->ncmds, 0) < 0)
		goto fail;
	struct checker ck = {.err = err_r, .a = sc->arena};
	if (check_list(&ck, sc->cmds, sc->ncmds, 1) < 0)
		goto fail;
	sc->ext = ck.ext;
	*script_r = sc;
	return 0;
fail:
	if (err_r->msg[0] == '\0')
		set_error(err_r, ps.lx.line, ps.lx.col, "syntax error");
	sieve_script_free(&sc);
	return -1;
}

void sieve_script_free(struct sieve_script **script)
{
	if (script == NULL || *script == NULL)
		return;
	arena_free((*script)->arena);
	free(*script);
	*script = NULL;
}
