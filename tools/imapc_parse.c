/* imapc_parse — the IMAP client's response parser (see imapc_parse.h). */
#include "tools/imapc_parse.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/util.h"
#include "lib/xmalloc.h"

/* 1 if the word after the tag ("* OK", "a1 NO") is a status: its line
 * carries human text, never a literal. */
static int status_line(const char *p, size_t len)
{
	static const char *const words[] = {"OK", "NO", "BAD", "BYE", "PREAUTH"};
	size_t i = 0, w;

	if (len > 0 && p[0] == '+')
		return 1;
	while (i < len && p[i] != ' ')
		i++;
	i++;
	for (w = i; w < len && p[w] != ' ' && p[w] != '\r'; w++)
		;
	for (size_t k = 0; i < len && k < sizeof(words) / sizeof(words[0]); k++)
		if (w - i == strlen(words[k]) && strncasecmp(p + i, words[k], w - i) == 0)
			return 1;
	return 0;
}

/* If the line [start, end) (without CRLF) ends in "{N}" or "{N+}" (or "~{N}"),
 * the literal's length; else -1; -2 if malformed. */
static int64_t literal_at_end(const char *p, size_t start, size_t end)
{
	size_t i = end;
	uint64_t n = 0, mul = 1;

	if (i <= start || p[i - 1] != '}')
		return -1;
	i--;
	if (i > start && p[i - 1] == '+')
		i--;
	size_t digits_end = i;
	while (i > start && p[i - 1] >= '0' && p[i - 1] <= '9') {
		if (digits_end - i >= 18)
			return -2;
		n += (uint64_t)(p[i - 1] - '0') * mul;
		mul *= 10;
		i--;
	}
	if (i == digits_end || i == start || p[i - 1] != '{')
		return -1;
	return (int64_t)n;
}

ssize_t imapc_response_end(const char *buf, size_t len, uint64_t max_literal)
{
	size_t pos = 0;
	int first = 1, status = 0;

	for (;;) {
		if (pos >= len)
			return 0; /* nothing yet (buf may be NULL) */
		const char *nl = memchr(buf + pos, '\n', len - pos);
		if (nl == NULL)
			return len - pos > IMAPC_LINE_MAX ? -1 : 0;
		size_t eol = (size_t)(nl - buf), end = eol;
		if (end - pos > IMAPC_LINE_MAX)
			return -1;
		if (end > pos && buf[end - 1] == '\r')
			end--;
		if (first) {
			status = status_line(buf + pos, end - pos);
			first = 0;
		}
		int64_t lit = status ? -1 : literal_at_end(buf, pos, end);
		if (lit == -2 || (lit >= 0 && (uint64_t)lit > max_literal))
			return -1;
		if (lit < 0)
			return (ssize_t)(eol + 1);
		if ((uint64_t)(len - (eol + 1)) < (uint64_t)lit)
			return 0;
		pos = eol + 1 + (size_t)lit;
	}
}

struct pstate {
	char *p;
	size_t len, pos;
	struct imapc_resp *r;
	int depth;
};

static int32_t node_new(struct pstate *s, enum imapc_node_type type)
{
	struct imapc_resp *r = s->r;

	if (r->nnodes >= IMAPC_NODES_MAX)
		return -1;
	if (r->nnodes == r->capnodes) {
		size_t cap = r->capnodes ? r->capnodes * 2 : 64;
		r->nodes = xreallocarray(r->nodes, cap, sizeof(*r->nodes));
		r->capnodes = cap;
	}
	struct imapc_node *n = &r->nodes[r->nnodes];
	memset(n, 0, sizeof(*n));
	n->type = (uint8_t)type;
	n->first = n->next = -1;
	return (int32_t)r->nnodes++;
}

static int at_end_of_line(const struct pstate *s)
{
	return s->pos >= s->len || s->p[s->pos] == '\r' || s->p[s->pos] == '\n';
}

/* One token at s->pos; returns its node, -1 on error, -2 at a closing
 * character (')' or, with in_code, ']') or the end of the line. */
static int32_t parse_token(struct pstate *s, int in_code);

/* Tokens until close (')' or ']') or the end of the line (close 0), as
 * children of list. */
static int parse_seq(struct pstate *s, int32_t list, char close)
{
	int32_t last = -1;

	for (;;) {
		while (s->pos < s->len && s->p[s->pos] == ' ')
			s->pos++;
		if (at_end_of_line(s))
			return close == 0 ? 0 : -1;
		if (close != 0 && s->p[s->pos] == close) {
			s->pos++;
			return 0;
		}
		int32_t n = parse_token(s, close == ']');
		if (n < 0)
			return -1;
		if (last < 0) {
			if (list >= 0)
				s->r->nodes[list].first = n;
			else
				s->r->first = n;
		} else {
			s->r->nodes[last].next = n;
		}
		last = n;
	}
}

static int32_t parse_token(struct pstate *s, int in_code)
{
	char *p = s->p;
	size_t start = s->pos;
	int32_t n;

	if (p[start] == '(') {
		if (++s->depth > IMAPC_DEPTH_MAX)
			return -1;
		if ((n = node_new(s, IMAPC_LIST)) < 0)
			return -1;
		s->pos++;
		if (parse_seq(s, n, ')') < 0)
			return -1;
		s->depth--;
		return n;
	}
	if (p[start] == ')' || (in_code && p[start] == ']'))
		return -1;
	if (p[start] == '"') {
		size_t w = start + 1, i = start + 1;
		for (;;) {
			if (i >= s->len || p[i] == '\r' || p[i] == '\n')
				return -1;
			if (p[i] == '"')
				break;
			if (p[i] == '\\') {
				if (i + 1 >= s->len)
					return -1;
				i++;
			}
			p[w++] = p[i++];
		}
		if ((n = node_new(s, IMAPC_STRING)) < 0)
			return -1;
		s->r->nodes[n].s = p + start + 1;
		s->r->nodes[n].len = w - start - 1;
		s->pos = i + 1;
		return n;
	}
	if (p[start] == '{' || (p[start] == '~' && start + 1 < s->len && p[start + 1] == '{')) {
		size_t i = start + (p[start] == '~' ? 2 : 1);
		uint64_t v = 0;
		int digits = 0;
		while (i < s->len && p[i] >= '0' && p[i] <= '9' && digits < 18) {
			v = v * 10 + (uint64_t)(p[i] - '0');
			i++;
			digits++;
		}
		if (digits == 0)
			return -1;
		if (i < s->len && p[i] == '+')
			i++;
		if (i + 2 >= s->len || p[i] != '}' || p[i + 1] != '\r' || p[i + 2] != '\n')
			return -1;
		i += 3;
		if (v > s->len - i)
			return -1;
		if ((n = node_new(s, IMAPC_STRING)) < 0)
			return -1;
		s->r->nodes[n].literal = 1;
		s->r->nodes[n].s = p + i;
		s->r->nodes[n].len = (size_t)v;
		s->pos = i + (size_t)v;
		return n;
	}
	/* an atom; brackets may hold spaces and parentheses: BODY[HEADER.FIELDS (A B)]<0> */
	int bracket = 0;
	size_t i = start;
	while (i < s->len) {
		char c = p[i];
		if (c == '\r' || c == '\n')
			break;
		if (bracket == 0 && (c == ' ' || c == '(' || c == ')' || (in_code && c == ']')))
			break;
		if (c == '[')
			bracket++;
		else if (c == ']' && bracket > 0)
			bracket--;
		i++;
	}
	if (i == start || bracket != 0)
		return -1;
	n = node_new(s, i - start == 3 && strncasecmp(p + start, "NIL", 3) == 0 ? IMAPC_NIL
										: IMAPC_ATOM);
	if (n < 0)
		return -1;
	s->r->nodes[n].s = p + start;
	s->r->nodes[n].len = i - start;
	s->pos = i;
	return n;
}

static enum imapc_status status_of(const char *w, size_t len)
{
	static const struct {
		const char *word;
		enum imapc_status st;
	} t[] = {{"OK", IMAPC_OK},
		 {"NO", IMAPC_NO},
		 {"BAD", IMAPC_BAD},
		 {"BYE", IMAPC_BYE},
		 {"PREAUTH", IMAPC_PREAUTH}};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (len == strlen(t[i].word) && strncasecmp(w, t[i].word, len) == 0)
			return t[i].st;
	return IMAPC_DATA;
}

/* resp-text: optional "[CODE args]" then text up to the end of the line. */
static int parse_text(struct pstate *s)
{
	struct imapc_resp *r = s->r;
	size_t end;

	if (s->pos < s->len && s->p[s->pos] == ' ')
		s->pos++;
	if (s->pos < s->len && s->p[s->pos] == '[') {
		if ((r->code = node_new(s, IMAPC_LIST)) < 0)
			return -1;
		s->pos++;
		if (parse_seq(s, r->code, ']') < 0)
			return -1;
		if (s->pos < s->len && s->p[s->pos] == ' ')
			s->pos++;
	}
	for (end = s->pos; end < s->len && s->p[end] != '\r' && s->p[end] != '\n'; end++)
		;
	r->text = s->p + s->pos;
	r->textlen = end - s->pos;
	return 0;
}

int imapc_parse(char *buf, size_t len, struct imapc_resp *r)
{
	struct pstate s = {buf, len, 0, r, 0};
	size_t i;

	r->nnodes = 0;
	r->tag = r->text = NULL;
	r->taglen = r->textlen = 0;
	r->code = r->first = -1;
	r->status = IMAPC_DATA;
	if (len < 2 || buf[len - 1] != '\n')
		return -1;
	if (buf[0] == '+') {
		r->kind = IMAPC_CONTINUE;
		s.pos = 1;
		return parse_text(&s);
	}
	for (i = 0; i < len && buf[i] != ' ' && buf[i] != '\r' && buf[i] != '\n'; i++)
		;
	if (i == 0 || i >= len || buf[i] != ' ')
		return -1;
	if (i == 1 && buf[0] == '*') {
		r->kind = IMAPC_UNTAGGED;
	} else {
		r->kind = IMAPC_TAGGED;
		r->tag = buf;
		r->taglen = i;
	}
	s.pos = i + 1;
	size_t w = s.pos;
	while (w < len && buf[w] != ' ' && buf[w] != '\r' && buf[w] != '\n')
		w++;
	r->status = status_of(buf + s.pos, w - s.pos);
	if (r->status != IMAPC_DATA) {
		s.pos = w;
		return parse_text(&s);
	}
	if (r->kind == IMAPC_TAGGED)
		return -1; /* a tagged response is always a status */
	if (parse_seq(&s, -1, 0) < 0)
		return -1;
	/* what follows must be the line end */
	return s.pos + 2 == len && buf[s.pos] == '\r' ? 0 : (s.pos + 1 == len ? 0 : -1);
}

void imapc_resp_free(struct imapc_resp *r)
{
	free(r->nodes);
	r->nodes = NULL;
	r->nnodes = r->capnodes = 0;
}

int imapc_is_atom(const struct imapc_resp *r, int32_t n, const char *word)
{
	const struct imapc_node *x = imapc_node(r, n);
	return x != NULL && x->type == IMAPC_ATOM && x->len == strlen(word) &&
	       strncasecmp(x->s, word, x->len) == 0;
}

int64_t imapc_number(const struct imapc_resp *r, int32_t n)
{
	const struct imapc_node *x = imapc_node(r, n);
	int64_t v = 0;

	if (x == NULL || (x->type != IMAPC_ATOM && x->type != IMAPC_STRING) || x->len == 0 ||
	    x->len > 18)
		return -1;
	for (size_t i = 0; i < x->len; i++) {
		if (x->s[i] < '0' || x->s[i] > '9')
			return -1;
		v = v * 10 + (x->s[i] - '0');
	}
	return v;
}

int32_t imapc_list_get(const struct imapc_resp *r, int32_t list, const char *name)
{
	const struct imapc_node *l = imapc_node(r, list);

	if (l == NULL || l->type != IMAPC_LIST)
		return -1;
	for (int32_t n = l->first; n >= 0; n = r->nodes[n].next) {
		int32_t v = r->nodes[n].next;
		if (v < 0)
			return -1;
		if (imapc_is_atom(r, n, name))
			return v;
		n = v;
	}
	return -1;
}

int imapc_copy(const struct imapc_resp *r, int32_t n, char *out, size_t outsize)
{
	const struct imapc_node *x = imapc_node(r, n);

	if (x == NULL || (x->type != IMAPC_ATOM && x->type != IMAPC_STRING) || x->len >= outsize ||
	    memchr(x->s, '\0', x->len) != NULL)
		return -1;
	memcpy(out, x->s, x->len);
	out[x->len] = '\0';
	return 0;
}

static int digits(const char *s, size_t n, int *v)
{
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*v = *v * 10 + (s[i] - '0');
	}
	return 0;
}

int imapc_parse_date(const char *s, size_t len, int64_t *t_r)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	char b[32];
	int day, year, hh, mm, ss, zh, zm, mon = -1;
	struct tm tm;

	/* "d-Mon-yyyy hh:mm:ss +zzzz", the day may be " 7" or "7" */
	while (len > 0 && *s == ' ') {
		s++;
		len--;
	}
	if (len < 25 || len > 26)
		return -1;
	memcpy(b, s, len);
	b[len] = '\0';
	if (len == 25) { /* one-digit day: make it two */
		memmove(b + 1, b, 26);
		b[0] = '0';
	}
	if (digits(b, 2, &day) < 0 || b[2] != '-' || b[6] != '-' || digits(b + 7, 4, &year) < 0 ||
	    b[11] != ' ' || digits(b + 12, 2, &hh) < 0 || b[14] != ':' ||
	    digits(b + 15, 2, &mm) < 0 || b[17] != ':' || digits(b + 18, 2, &ss) < 0 ||
	    b[20] != ' ' || (b[21] != '+' && b[21] != '-') || digits(b + 22, 2, &zh) < 0 ||
	    digits(b + 24, 2, &zm) < 0)
		return -1;
	for (int i = 0; i < 12; i++)
		if (strncasecmp(b + 3, months + 3 * i, 3) == 0)
			mon = i;
	if (mon < 0 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 || zm > 59)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = mon;
	tm.tm_mday = day;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	int64_t t = (int64_t)timegm(&tm);
	int64_t off = (int64_t)(zh * 3600 + zm * 60);
	*t_r = b[21] == '+' ? t - off : t + off;
	return 0;
}
