/* parse — IMAP command framing and argument parsing, without I/O (see parse.h). */
#include "imapd/parse.h"
#include "lib/xmalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* --- arena ---------------------------------------------------------------- */

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, size;
	max_align_t data[];
};

struct imap_arena {
	struct arena_chunk *head;
};

struct imap_arena *imap_arena_new(void)
{
	struct imap_arena *a = xcalloc(1, sizeof(*a));
	return a;
}

void imap_arena_free(struct imap_arena **a)
{
	if (*a == NULL)
		return;
	struct arena_chunk *c = (*a)->head;
	while (c != NULL) {
		struct arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	free(*a);
	*a = NULL;
}

void *imap_arena_alloc(struct imap_arena *a, size_t size)
{
	size = (size + 15) & ~(size_t)15;
	if (size == 0)
		size = 16;
	struct arena_chunk *c = a->head;
	if (c == NULL || c->size - c->used < size) {
		size_t csize = size > 16384 ? size : 16384;
		c = xmalloc(sizeof(*c) + csize);
		c->used = 0;
		c->size = csize;
		c->next = a->head;
		a->head = c;
	}
	void *p = (char *)c->data + c->used;
	c->used += size;
	memset(p, 0, size);
	return p;
}

char *imap_arena_strndup(struct imap_arena *a, const char *s, size_t len)
{
	char *p = imap_arena_alloc(a, len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/* --- framing ------------------------------------------------------------- */

void imap_frame_init(struct imap_framer *f, size_t max_line, uint64_t max_literal)
{
	memset(f, 0, sizeof(*f));
	f->max_line = max_line;
	f->max_literal = max_literal;
}

void imap_frame_reset(struct imap_framer *f)
{
	imap_frame_init(f, f->max_line, f->max_literal);
}

/* If line[0..len) ends with "{n}" or "{n+}", returns 1 with the size; 0 if it
 * does not; -1 if it does but the number overflows. */
static int line_literal(const char *line, size_t len, uint64_t *size_r, int *plus_r)
{
	if (len < 3 || line[len - 1] != '}')
		return 0;
	size_t end = len - 1;
	int plus = 0;
	if (line[end - 1] == '+') {
		plus = 1;
		end--;
	}
	size_t i = end;
	while (i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9')
		i--;
	if (i == end || i == 0 || line[i - 1] != '{')
		return 0;
	if (end - i > 19)
		return -1;
	uint64_t v = 0;
	for (size_t k = i; k < end; k++) {
		uint64_t d = (uint64_t)(line[k] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*size_r = v;
	*plus_r = plus;
	return 1;
}

int imap_frame(struct imap_framer *f, const char *buf, size_t len, size_t *len_r)
{
	f->need_continuation = 0;
	while (f->pos < len) {
		if (f->literal_left > 0) {
			uint64_t take = len - f->pos;
			if (take > f->literal_left)
				take = f->literal_left;
			f->pos += take;
			f->literal_left -= take;
			if (f->literal_left == 0)
				f->line_start = f->pos;
			continue;
		}
		const char *nl = memchr(buf + f->pos, '\n', len - f->pos);
		size_t stop = nl != NULL ? (size_t)(nl - buf) : len;
		if (stop - f->line_start > f->max_line) {
			f->error = "Line too long";
			return IMAP_PARSE_ERROR;
		}
		if (nl == NULL) {
			f->pos = len;
			break;
		}
		size_t end = stop;
		if (end > f->line_start && buf[end - 1] == '\r')
			end--;
		uint64_t size;
		int plus;
		int r = line_literal(buf + f->line_start, end - f->line_start, &size, &plus);
		f->pos = stop + 1;
		if (r < 0 || (r > 0 && size > f->max_literal)) {
			f->literal_too_big = 1;
			f->literal_sync = r > 0 ? !plus : 1;
			f->literal_size = r > 0 ? size : UINT64_MAX;
			f->error = "Literal too big";
			return IMAP_PARSE_ERROR;
		}
		if (r == 0) {
			*len_r = f->pos;
			return IMAP_PARSE_DONE;
		}
		if (++f->literals > IMAP_MAX_LITERALS) {
			f->error = "Too many literals";
			return IMAP_PARSE_ERROR;
		}
		f->literal_left = size;
		f->literal_size = size;
		f->line_start = f->pos;
		if (!plus) {
			f->need_continuation = 1;
			return IMAP_PARSE_MORE;
		}
	}
	return IMAP_PARSE_MORE;
}

/* --- arguments ------------------------------------------------------------ */

struct parser {
	struct imap_arena *a;
	const char *p, *end;
	size_t nargs;
	const char *error;
};

static int is_atom_end(char c)
{
	return c == ' ' || c == '(' || c == ')' || c == '\r' || c == '\n' || c == '\0' ||
	       c == '"' || c == '{';
}

struct argvec {
	struct imap_arg *v;
	size_t n, cap;
};

static struct imap_arg *argvec_push(struct parser *ps, struct argvec *av)
{
	if (++ps->nargs > IMAP_MAX_ARGS) {
		ps->error = "Too many arguments";
		return NULL;
	}
	if (av->n == av->cap) {
		size_t cap = av->cap ? av->cap * 2 : 8;
		struct imap_arg *v = imap_arena_alloc(ps->a, cap * sizeof(*v));
		if (av->n)
			memcpy(v, av->v, av->n * sizeof(*v));
		av->v = v;
		av->cap = cap;
	}
	return &av->v[av->n++];
}

static int parse_one(struct parser *ps, struct imap_arg *arg, int depth);

/* Parses items until ')' (close = 1) or the end of the line (close = 0). */
static int parse_items(struct parser *ps, int depth, int close, struct imap_arg **items_r,
		       size_t *n_r)
{
	struct argvec av = {0};
	if (depth > IMAP_MAX_DEPTH) {
		ps->error = "Lists nested too deeply";
		return -1;
	}
	for (;;) {
		while (ps->p < ps->end && *ps->p == ' ')
			ps->p++;
		if (ps->p >= ps->end) {
			if (close) {
				ps->error = "Missing ')'";
				return -1;
			}
			break;
		}
		char c = *ps->p;
		if (c == ')') {
			if (!close) {
				ps->error = "Unexpected ')'";
				return -1;
			}
			ps->p++;
			break;
		}
		if (c == '\r' || c == '\n') {
			if (close) {
				ps->error = "Missing ')'";
				return -1;
			}
			if (c == '\r')
				ps->p++;
			if (ps->p < ps->end && *ps->p == '\n')
				ps->p++;
			if (ps->p != ps->end) {
				ps->error = "Garbage after the command";
				return -1;
			}
			break;
		}
		struct imap_arg *arg = argvec_push(ps, &av);
		if (arg == NULL || parse_one(ps, arg, depth) < 0)
			return -1;
		/* items are separated by one space, or a list closes */
		if (ps->p < ps->end &&
		    !(*ps->p == ' ' || *ps->p == ')' || *ps->p == '\r' || *ps->p == '\n' ||
		      (arg->type == IMAP_ARG_LIST && *ps->p == '('))) {
			ps->error = "Missing space between arguments";
			return -1;
		}
	}
	*items_r = av.v;
	*n_r = av.n;
	return 0;
}

static int parse_quoted(struct parser *ps, struct imap_arg *arg)
{
	const char *s = ++ps->p;
	size_t n = 0;
	int escaped = 0;
	const char *q = s;
	for (; q < ps->end; q++) {
		if (*q == '\\') {
			if (++q >= ps->end)
				break;
			escaped = 1;
		} else if (*q == '"') {
			break;
		}
		if (*q == '\r' || *q == '\n' || *q == '\0') {
			ps->error = "Bad character in quoted string";
			return -1;
		}
		n++;
	}
	if (q >= ps->end) {
		ps->error = "Unterminated quoted string";
		return -1;
	}
	char *out = imap_arena_alloc(ps->a, n + 1);
	if (!escaped) {
		memcpy(out, s, n);
	} else {
		size_t k = 0;
		for (const char *r = s; r < q; r++) {
			if (*r == '\\')
				r++;
			out[k++] = *r;
		}
	}
	out[n] = '\0';
	arg->type = IMAP_ARG_QUOTED;
	arg->str = out;
	arg->len = n;
	ps->p = q + 1;
	return 0;
}

static int parse_literal(struct parser *ps, struct imap_arg *arg)
{
	ps->p++; /* '{' */
	uint64_t v = 0;
	const char *d = ps->p;
	while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
		uint64_t dig = (uint64_t)(*ps->p - '0');
		if (v > (UINT64_MAX - dig) / 10) {
			ps->error = "Literal size overflows";
			return -1;
		}
		v = v * 10 + dig;
		ps->p++;
	}
	if (ps->p == d) {
		ps->error = "Bad literal size";
		return -1;
	}
	if (ps->p < ps->end && *ps->p == '+')
		ps->p++;
	if (ps->p >= ps->end || *ps->p != '}') {
		ps->error = "Bad literal";
		return -1;
	}
	ps->p++;
	if (ps->p < ps->end && *ps->p == '\r')
		ps->p++;
	if (ps->p >= ps->end || *ps->p != '\n') {
		ps->error = "Literal must end the line";
		return -1;
	}
	ps->p++;
	if ((uint64_t)(ps->end - ps->p) < v) {
		ps->error = "Literal longer than the command";
		return -1;
	}
	arg->type = IMAP_ARG_LITERAL;
	arg->str = ps->p;
	arg->len = (size_t)v;
	ps->p += v;
	return 0;
}

/* 1 if the atom so far names a fetch attribute that takes a section:
 * BODY[, BODY.PEEK[, BINARY[, BINARY.PEEK[, BINARY.SIZE[. */
static int section_prefix(const char *s, size_t len)
{
	static const char *const names[] = {"BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK",
					    "BINARY.SIZE"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == len && strncasecmp(s, names[i], len) == 0)
			return 1;
	return 0;
}

static int parse_atom(struct parser *ps, struct imap_arg *arg)
{
	const char *s = ps->p;
	while (ps->p < ps->end && !is_atom_end(*ps->p)) {
		/* A fetch attribute's section may hold spaces and parentheses
		 * (BODY[HEADER.FIELDS (A B)]); anywhere else '[' is an ordinary
		 * atom character (RFC 3501: it is not an atom-special). */
		if (*ps->p == '[' && section_prefix(s, (size_t)(ps->p - s))) {
			const char *close = ps->p + 1;
			while (close < ps->end && *close != ']' && *close != '\r' &&
			       *close != '\n' && *close != '\0')
				close++;
			if (close >= ps->end || *close != ']') {
				ps->error = "Missing ']'";
				return -1;
			}
			ps->p = close + 1;
			continue;
		}
		if ((unsigned char)*ps->p < 0x20 || (unsigned char)*ps->p == 0x7f) {
			ps->error = "Bad character in atom";
			return -1;
		}
		ps->p++;
	}
	if (ps->p == s) {
		ps->error = "Bad argument";
		return -1;
	}
	arg->len = (size_t)(ps->p - s);
	arg->str = imap_arena_strndup(ps->a, s, arg->len);
	arg->type = arg->len == 3 && strncasecmp(s, "NIL", 3) == 0 ? IMAP_ARG_NIL : IMAP_ARG_ATOM;
	return 0;
}

static int parse_one(struct parser *ps, struct imap_arg *arg, int depth)
{
	char c = *ps->p;
	if (c == '(') {
		ps->p++;
		arg->type = IMAP_ARG_LIST;
		return parse_items(ps, depth + 1, 1, &arg->list, &arg->len);
	}
	if (c == '"')
		return parse_quoted(ps, arg);
	if (c == '{')
		return parse_literal(ps, arg);
	if (c == '~' && ps->p + 1 < ps->end && ps->p[1] == '{') {
		ps->p++;
		return parse_literal(ps, arg);
	}
	return parse_atom(ps, arg);
}

int imap_parse_args(struct imap_arena *a, const char *buf, size_t len, struct imap_arg **args_r,
		    size_t *n_r, const char **error_r)
{
	struct parser ps = {.a = a, .p = buf, .end = buf + len};
	if (parse_items(&ps, 0, 0, args_r, n_r) < 0) {
		*error_r = ps.error;
		return -1;
	}
	return 0;
}

/* A tag or command name: atom characters, no '+' in tags, no brackets. */
static int parse_word(struct parser *ps, const char **word_r, int tag)
{
	const char *s = ps->p;
	while (ps->p < ps->end) {
		unsigned char c = (unsigned char)*ps->p;
		if (c <= 0x20 || c >= 0x7f || c == '(' || c == ')' || c == '{' || c == '"' ||
		    c == '%' || c == '*' || c == '\\' || c == ']' || (tag && c == '+'))
			break;
		ps->p++;
	}
	if (ps->p == s || ps->p - s > 64)
		return -1;
	*word_r = imap_arena_strndup(ps->a, s, (size_t)(ps->p - s));
	return 0;
}

int imap_parse_command(struct imap_arena *a, const char *buf, size_t len, struct imap_command *cmd,
		       const char **error_r)
{
	struct parser ps = {.a = a, .p = buf, .end = buf + len};
	memset(cmd, 0, sizeof(*cmd));
	if (parse_word(&ps, &cmd->tag, 1) < 0) {
		*error_r = "Bad tag";
		return -1;
	}
	if (ps.p >= ps.end || *ps.p != ' ') {
		*error_r = "Missing command";
		return -1;
	}
	ps.p++;
	if (parse_word(&ps, &cmd->name, 0) < 0) {
		*error_r = "Bad command";
		return -1;
	}
	if (strcasecmp(cmd->name, "UID") == 0) {
		if (ps.p >= ps.end || *ps.p != ' ') {
			*error_r = "Missing command after UID";
			return -1;
		}
		ps.p++;
		if (parse_word(&ps, &cmd->name, 0) < 0) {
			*error_r = "Bad command";
			return -1;
		}
		cmd->uid = 1;
	}
	if (ps.p < ps.end && *ps.p != ' ' && *ps.p != '\r' && *ps.p != '\n') {
		*error_r = "Bad command";
		return -1;
	}
	if (parse_items(&ps, 0, 0, &cmd->args, &cmd->nargs) < 0) {
		*error_r = ps.error;
		return -1;
	}
	return 0;
}

int imap_arg_is_atom(const struct imap_arg *arg, const char *s)
{
	return (arg->type == IMAP_ARG_ATOM || arg->type == IMAP_ARG_NIL) &&
	       strcasecmp(arg->str, s) == 0;
}

const char *imap_arg_string(struct imap_arena *a, const struct imap_arg *arg)
{
	if (arg->type == IMAP_ARG_QUOTED)
		return arg->str;
	if (arg->type == IMAP_ARG_LITERAL) {
		if (memchr(arg->str, '\0', arg->len) != NULL)
			return NULL;
		return imap_arena_strndup(a, arg->str, arg->len);
	}
	return NULL;
}

const char *imap_arg_astring(struct imap_arena *a, const struct imap_arg *arg)
{
	if (arg->type == IMAP_ARG_ATOM || arg->type == IMAP_ARG_NIL)
		return arg->str;
	return imap_arg_string(a, arg);
}

/* --- sequence sets ------------------------------------------------------------ */

static int seq_number(const char **p, uint32_t star, uint32_t *v_r)
{
	if (**p == '*') {
		(*p)++;
		*v_r = star;
		return 0;
	}
	uint64_t v = 0;
	const char *s = *p;
	while (**p >= '0' && **p <= '9') {
		v = v * 10 + (uint64_t)(**p - '0');
		if (v > UINT32_MAX)
			return -1;
		(*p)++;
	}
	if (*p == s || v == 0)
		return -1;
	*v_r = (uint32_t)v;
	return 0;
}

int imap_seqset_parse(struct imap_arena *a, const char *s, uint32_t star, struct imap_seqset *set_r)
{
	size_t n = 1;
	for (const char *q = s; *q; q++)
		if (*q == ',')
			n++;
	if (n > 100000)
		return -1;
	set_r->r = imap_arena_alloc(a, n * sizeof(*set_r->r));
	set_r->n = 0;
	const char *p = s;
	for (;;) {
		uint32_t lo, hi;
		if (seq_number(&p, star, &lo) < 0)
			return -1;
		hi = lo;
		if (*p == ':') {
			p++;
			if (seq_number(&p, star, &hi) < 0)
				return -1;
		}
		if (lo > hi) {
			uint32_t t = lo;
			lo = hi;
			hi = t;
		}
		set_r->r[set_r->n].lo = lo;
		set_r->r[set_r->n].hi = hi;
		set_r->n++;
		if (*p == '\0')
			break;
		if (*p != ',')
			return -1;
		p++;
	}
	return 0;
}

int imap_seqset_contains(const struct imap_seqset *set, uint32_t n)
{
	for (size_t i = 0; i < set->n; i++)
		if (n >= set->r[i].lo && n <= set->r[i].hi)
			return 1;
	return 0;
}
