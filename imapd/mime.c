/* mime — MIME structure, ENVELOPE and BODYSTRUCTURE over the exact stored bytes. */
#include "imapd/mime.h"
#include "imapd/wire.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libetpan/libetpan.h>
#include <openssl/evp.h>

#include "lib/util.h"
#include "lib/array.h"
#include "lib/xmalloc.h"

/* --- headers ------------------------------------------------------------------ */

size_t mime_header_len(const char *msg, size_t len)
{
	/* an empty header */
	if (len >= 2 && msg[0] == '\r' && msg[1] == '\n')
		return 2;
	if (len >= 1 && msg[0] == '\n')
		return 1;
	for (size_t i = 0; i + 1 < len; i++) {
		if (msg[i] != '\n')
			continue;
		if (msg[i + 1] == '\n')
			return i + 2;
		if (msg[i + 1] == '\r' && i + 2 < len && msg[i + 2] == '\n')
			return i + 3;
	}
	return len;
}

/* Calls cb for each field: name, name length, raw value (with folding). */
static const char *next_field(const char *p, const char *end, const char **name_r, size_t *nlen_r,
			      const char **val_r, size_t *vlen_r)
{
	while (p < end) {
		const char *line = p;
		const char *colon = NULL;
		/* find the end of the field (folded lines continue it) */
		const char *e = p;
		for (;;) {
			const char *nl = memchr(e, '\n', (size_t)(end - e));
			if (nl == NULL) {
				e = end;
				break;
			}
			e = nl + 1;
			if (e >= end || (*e != ' ' && *e != '\t'))
				break;
		}
		colon = memchr(line, ':', (size_t)(e - line));
		p = e;
		if (colon == NULL || colon == line)
			continue; /* not a field (the empty line, or junk) */
		const char *ne = colon;
		while (ne > line && (ne[-1] == ' ' || ne[-1] == '\t'))
			ne--;
		*name_r = line;
		*nlen_r = (size_t)(ne - line);
		*val_r = colon + 1;
		*vlen_r = (size_t)(e - colon - 1);
		return p;
	}
	return NULL;
}

/* Unfolds and trims a raw value into out. */
static void unfold(const char *v, size_t vlen, char *out, size_t outsize)
{
	size_t o = 0;
	for (size_t i = 0; i < vlen && o + 1 < outsize; i++) {
		if (v[i] == '\r' || v[i] == '\n')
			continue;
		out[o++] = v[i];
	}
	out[o] = '\0';
	size_t s = 0;
	while (out[s] == ' ' || out[s] == '\t')
		s++;
	while (o > s && (out[o - 1] == ' ' || out[o - 1] == '\t'))
		o--;
	memmove(out, out + s, o - s);
	out[o - s] = '\0';
}

int mime_header_next(const char *hdr, size_t len, size_t *pos, const char *name, char *out,
		     size_t outsize)
{
	const char *p = hdr + *pos, *end = hdr + len;
	const char *n, *v;
	size_t nl, vl, want = strlen(name);
	while (p < end && (p = next_field(p, end, &n, &nl, &v, &vl)) != NULL) {
		if (nl == want && strncasecmp(n, name, nl) == 0) {
			*pos = (size_t)(p - hdr);
			unfold(v, vl, out, outsize);
			return 1;
		}
	}
	*pos = len;
	if (outsize)
		out[0] = '\0';
	return 0;
}

int mime_header_get(const char *hdr, size_t len, const char *name, char *out, size_t outsize)
{
	size_t pos = 0;
	return mime_header_next(hdr, len, &pos, name, out, outsize);
}

/* --- structure ------------------------------------------------------------------ */

struct ctype {
	char type[64], subtype[64];
	char boundary[256];
};

static void lower_copy(char *dst, size_t size, const char *src)
{
	size_t i = 0;
	for (; src[i] && i + 1 < size; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[i] = '\0';
}

static void content_type_basic(const char *hdr, size_t hlen, int digest_parent, struct ctype *ct)
{
	char v[2048];
	memset(ct, 0, sizeof(*ct));
	if (digest_parent) {
		mk_strlcpy(ct->type, "message", sizeof(ct->type));
		mk_strlcpy(ct->subtype, "rfc822", sizeof(ct->subtype));
	} else {
		mk_strlcpy(ct->type, "text", sizeof(ct->type));
		mk_strlcpy(ct->subtype, "plain", sizeof(ct->subtype));
	}
	if (!mime_header_get(hdr, hlen, "Content-Type", v, sizeof(v)))
		return;
	/* type/subtype */
	char *slash = strchr(v, '/');
	if (slash == NULL)
		return;
	size_t tl = (size_t)(slash - v);
	char *se = slash + 1;
	while (*se && *se != ';' && *se != ' ' && *se != '\t' && *se != '(')
		se++;
	if (tl == 0 || tl >= sizeof(ct->type) || se == slash + 1 ||
	    (size_t)(se - slash - 1) >= sizeof(ct->subtype))
		return;
	char t[64], st[64];
	memcpy(t, v, tl);
	t[tl] = '\0';
	memcpy(st, slash + 1, (size_t)(se - slash - 1));
	st[se - slash - 1] = '\0';
	lower_copy(ct->type, sizeof(ct->type), t);
	lower_copy(ct->subtype, sizeof(ct->subtype), st);
	/* boundary=... (quoted or not) */
	for (const char *p = se; (p = strchr(p, ';')) != NULL;) {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, "boundary", 8) != 0)
			continue;
		const char *q = p + 8;
		while (*q == ' ' || *q == '\t')
			q++;
		if (*q != '=')
			continue;
		q++;
		while (*q == ' ' || *q == '\t')
			q++;
		size_t bl = 0;
		if (*q == '"') {
			q++;
			while (q[bl] && q[bl] != '"' && bl + 1 < sizeof(ct->boundary))
				bl++;
		} else {
			while (q[bl] && q[bl] != ';' && q[bl] != ' ' && q[bl] != '\t' &&
			       bl + 1 < sizeof(ct->boundary))
				bl++;
		}
		memcpy(ct->boundary, q, bl);
		ct->boundary[bl] = '\0';
		break;
	}
}

struct pstate {
	const char *msg;
	size_t parts;
};

static void parse_entity(struct pstate *ps, struct mime_part *e, size_t start, size_t len,
			 int depth, int digest_parent);

/* Splits body [start, start+len) at --boundary lines. */
static void split_multipart(struct pstate *ps, struct mime_part *e, const char *boundary, int depth,
			    int digest)
{
	const char *msg = ps->msg;
	size_t bl = strlen(boundary);
	size_t pos = e->body_start, end = e->body_start + e->body_len;
	size_t part_start = SIZE_MAX;
	size_t cap = 0;
	while (pos < end) {
		/* pos is at the start of a line */
		const char *nl = memchr(msg + pos, '\n', end - pos);
		size_t line_end = nl ? (size_t)(nl - msg) + 1 : end;
		if (line_end - pos >= bl + 2 && msg[pos] == '-' && msg[pos + 1] == '-' &&
		    memcmp(msg + pos + 2, boundary, bl) == 0) {
			int closing = line_end - pos >= bl + 4 && msg[pos + bl + 2] == '-' &&
				      msg[pos + bl + 3] == '-';
			if (part_start != SIZE_MAX) {
				/* the CRLF before the delimiter belongs to the delimiter */
				size_t pe = pos;
				if (pe > part_start && msg[pe - 1] == '\n')
					pe--;
				if (pe > part_start && msg[pe - 1] == '\r')
					pe--;
				if (e->nchildren == cap) {
					cap = cap ? cap * 2 : 4;
					e->children =
					    xreallocarray(e->children, cap, sizeof(*e->children));
				}
				struct mime_part *c = &e->children[e->nchildren++];
				memset(c, 0, sizeof(*c));
				parse_entity(ps, c, part_start, pe - part_start, depth + 1, digest);
			}
			if (closing) {
				part_start = SIZE_MAX;
				break;
			}
			part_start = line_end;
			if (ps->parts >= MIME_MAX_PARTS)
				break;
		}
		pos = line_end;
	}
	if (part_start != SIZE_MAX && part_start <= end) {
		/* no closing delimiter: the last part runs to the end */
		if (e->nchildren == cap) {
			cap = cap ? cap * 2 : 4;
			e->children = xreallocarray(e->children, cap, sizeof(*e->children));
		}
		struct mime_part *c = &e->children[e->nchildren++];
		memset(c, 0, sizeof(*c));
		parse_entity(ps, c, part_start, end - part_start, depth + 1, digest);
	}
}

static void parse_entity(struct pstate *ps, struct mime_part *e, size_t start, size_t len,
			 int depth, int digest_parent)
{
	struct ctype ct;
	ps->parts++;
	size_t hl = mime_header_len(ps->msg + start, len);
	e->hdr_start = start;
	e->hdr_len = hl;
	e->body_start = start + hl;
	e->body_len = len - hl;
	if (depth >= MIME_MAX_DEPTH || ps->parts > MIME_MAX_PARTS)
		return;
	content_type_basic(ps->msg + start, hl, digest_parent, &ct);
	if (strcmp(ct.type, "multipart") == 0 && ct.boundary[0] != '\0') {
		e->multipart = 1;
		split_multipart(ps, e, ct.boundary, depth, strcmp(ct.subtype, "digest") == 0);
		if (e->nchildren == 0)
			e->multipart = 0;
	} else if (strcmp(ct.type, "message") == 0 && strcmp(ct.subtype, "rfc822") == 0) {
		e->rfc822 = 1;
		e->msg = xcalloc(1, sizeof(*e->msg));
		parse_entity(ps, e->msg, e->body_start, e->body_len, depth + 1, 0);
	}
}

struct mime_part *mime_parse(const char *msg, size_t len)
{
	struct pstate ps = {.msg = msg};
	struct mime_part *root = xcalloc(1, sizeof(*root));
	parse_entity(&ps, root, 0, len, 0, 0);
	return root;
}

static void part_free(struct mime_part *p)
{
	for (size_t i = 0; i < p->nchildren; i++)
		part_free(&p->children[i]);
	free(p->children);
	if (p->msg != NULL) {
		part_free(p->msg);
		free(p->msg);
	}
}

void mime_free(struct mime_part **root)
{
	if (*root == NULL)
		return;
	part_free(*root);
	free(*root);
	*root = NULL;
}

/* --- IMAP text ------------------------------------------------------------------- */

static void buf_emit(void *ctx, const void *data, size_t len)
{
	buf_append(ctx, data, len);
}

/* A string as IMAP sends it (wire.c's quoter). */
static void put_string(struct buf *b, const char *s, size_t len)
{
	wire_string(s, len, buf_emit, b);
}

static void put_nstring(struct buf *b, const char *s)
{
	put_string(b, s, s ? strlen(s) : 0);
}

static void put_upper(struct buf *b, const char *s)
{
	char u[256];
	size_t i = 0;
	for (; s[i] && i + 1 < sizeof(u); i++)
		u[i] = (char)toupper((unsigned char)s[i]);
	u[i] = '\0';
	put_string(b, u, i);
}

/* The value of a header field or NULL, in a static-free per-call buffer. */
static const char *field(const char *hdr, size_t hlen, const char *name, char *out, size_t size)
{
	return mime_header_get(hdr, hlen, name, out, size) && out[0] ? out : NULL;
}

/* --- addresses --------------------------------------------------------------------
 *
 * RFC 5322 3.4 address lists, with the obsolete forms (routes, phrases with
 * dots, comments anywhere), parsed by hand as Dovecot's message-address.c
 * does: libetpan's parser drops comments, and IMAP needs them — a mailbox
 * written "user@domain (Real Name)" has "Real Name" as its ENVELOPE name. */

#define ADDR_MAX 1000 /* addresses (and group markers) kept of one field */
#define ADDR_TEXT 256 /* bytes kept of one name, route, mailbox or host */

struct addr {
	/* NIL where have_* is 0 */
	char name[ADDR_TEXT], adl[ADDR_TEXT], mailbox[ADDR_TEXT], host[ADDR_TEXT];
	int have_name, have_adl, have_mailbox, have_host;
	int group; /* 1: a group's start (mailbox is its name), 2: its end */
};

struct addrs {
	struct addr *v;
	size_t n, cap;
};

struct aparser {
	const char *p, *end;
	char comment[ADDR_TEXT]; /* the last comment passed over */
	int have_comment;
};

static void tcat(char *dst, const char *src, size_t len)
{
	size_t dl = strlen(dst);
	if (dl + 1 >= ADDR_TEXT)
		return;
	if (len > ADDR_TEXT - 1 - dl)
		len = ADDR_TEXT - 1 - dl;
	memcpy(dst + dl, src, len);
	dst[dl + len] = '\0';
}

/* Passes over white space and (nested) comments; keeps the last comment. */
static void skip_cfws(struct aparser *ap)
{
	for (;;) {
		while (ap->p < ap->end &&
		       (*ap->p == ' ' || *ap->p == '\t' || *ap->p == '\r' || *ap->p == '\n'))
			ap->p++;
		if (ap->p >= ap->end || *ap->p != '(')
			return;
		int depth = 0;
		const char *start = ap->p + 1;
		char text[ADDR_TEXT] = "";
		for (; ap->p < ap->end; ap->p++) {
			char c = *ap->p;
			if (c == '\\' && ap->p + 1 < ap->end) {
				ap->p++;
				if (depth == 1)
					tcat(text, ap->p, 1);
				continue;
			}
			if (c == '(') {
				if (depth++ > 0)
					tcat(text, ap->p, 1);
				continue;
			}
			if (c == ')') {
				if (--depth == 0) {
					ap->p++;
					break;
				}
				tcat(text, ap->p, 1);
				continue;
			}
			if (c != '\r' && c != '\n')
				tcat(text, ap->p, 1);
		}
		(void)start;
		/* trim */
		size_t l = strlen(text), b = 0;
		while (b < l && (text[b] == ' ' || text[b] == '\t'))
			b++;
		while (l > b && (text[l - 1] == ' ' || text[l - 1] == '\t'))
			l--;
		memcpy(ap->comment, text + b, l - b);
		ap->comment[l - b] = '\0';
		ap->have_comment = 1;
	}
}

static int atext(unsigned char c)
{
	return c > 0x20 && c != 0x7f && strchr("()<>[]:;@\\,.\"", c) == NULL;
}

/* atom or quoted-string, appended to out (unquoted). 0, or -1 if neither. */
static int parse_word(struct aparser *ap, char *out)
{
	skip_cfws(ap);
	if (ap->p >= ap->end)
		return -1;
	if (*ap->p == '"') {
		ap->p++;
		while (ap->p < ap->end && *ap->p != '"') {
			if (*ap->p == '\\' && ap->p + 1 < ap->end)
				ap->p++;
			if (*ap->p != '\r' && *ap->p != '\n')
				tcat(out, ap->p, 1);
			ap->p++;
		}
		if (ap->p < ap->end)
			ap->p++;
		return 0;
	}
	const char *s = ap->p;
	while (ap->p < ap->end && atext((unsigned char)*ap->p))
		ap->p++;
	if (ap->p == s)
		return -1;
	tcat(out, s, (size_t)(ap->p - s));
	return 0;
}

/* phrase: words (and, obsolete, dots) joined by one space. */
static int parse_phrase(struct aparser *ap, char *out)
{
	int n = 0;
	out[0] = '\0';
	for (;;) {
		const char *save = ap->p;
		skip_cfws(ap);
		if (ap->p < ap->end && *ap->p == '.' && n > 0) {
			ap->p++;
			tcat(out, ".", 1);
			continue;
		}
		char w[ADDR_TEXT] = "";
		if (parse_word(ap, w) < 0) {
			ap->p = save;
			break;
		}
		if (n++ > 0 && out[0] != '\0' && out[strlen(out) - 1] != '.')
			tcat(out, " ", 1);
		tcat(out, w, strlen(w));
	}
	return n > 0 ? 0 : -1;
}

/* After a first word: *("." word), CFWS around the dots allowed; a dot
 * with nothing after it is kept ("user.@x"). */
static void parse_dots(struct aparser *ap, char *out)
{
	for (;;) {
		const char *save = ap->p;
		skip_cfws(ap);
		if (ap->p >= ap->end || *ap->p != '.') {
			ap->p = save;
			return;
		}
		ap->p++;
		tcat(out, ".", 1);
		if (parse_word(ap, out) < 0)
			return;
	}
}

/* local-part: word *("." word) */
static int parse_local(struct aparser *ap, char *out)
{
	out[0] = '\0';
	if (parse_word(ap, out) < 0)
		return -1;
	parse_dots(ap, out);
	return 0;
}

/* domain: dot-atom or [domain literal] */
static int parse_domain(struct aparser *ap, char *out)
{
	out[0] = '\0';
	skip_cfws(ap);
	if (ap->p < ap->end && *ap->p == '[') {
		const char *s = ap->p;
		while (ap->p < ap->end && *ap->p != ']')
			ap->p += *ap->p == '\\' && ap->p + 1 < ap->end ? 2 : 1;
		if (ap->p < ap->end)
			ap->p++;
		tcat(out, s, (size_t)(ap->p - s));
		return 0;
	}
	if (parse_word(ap, out) < 0)
		return -1;
	parse_dots(ap, out);
	return 0;
}

static int parse_addr_spec(struct aparser *ap, struct addr *a)
{
	if (parse_local(ap, a->mailbox) < 0)
		return -1;
	a->have_mailbox = 1;
	const char *save = ap->p;
	skip_cfws(ap);
	if (ap->p < ap->end && *ap->p == '@') {
		ap->p++;
		if (parse_domain(ap, a->host) == 0)
			a->have_host = 1;
	} else {
		ap->p = save;
	}
	return 0;
}

/* "<" [route ":"] addr-spec ">"; ap->p is at "<". */
static int parse_angle(struct aparser *ap, struct addr *a)
{
	ap->p++;
	const char *route = ap->p;
	skip_cfws(ap);
	if (ap->p < ap->end && *ap->p == '@') {
		/* obsolete route "@a,@b:", kept as written without white space */
		const char *q = ap->p;
		while (q < ap->end && *q != ':' && *q != '>')
			q++;
		if (q < ap->end && *q == ':') {
			for (const char *r = route; r < q; r++)
				if (*r != ' ' && *r != '\t' && *r != '\r' && *r != '\n')
					tcat(a->adl, r, 1);
			a->have_adl = 1;
			ap->p = q + 1;
		}
	}
	skip_cfws(ap);
	if (ap->p < ap->end && *ap->p == '>') {
		/* "<>": the null address */
		ap->p++;
		a->have_mailbox = 1;
		return 0;
	}
	if (parse_addr_spec(ap, a) < 0)
		return -1;
	skip_cfws(ap);
	if (ap->p < ap->end && *ap->p == '>')
		ap->p++;
	return 0;
}

static int parse_mailbox(struct aparser *ap, struct addr *a)
{
	const char *start = ap->p;
	memset(a, 0, sizeof(*a));
	ap->have_comment = 0;
	char phrase[ADDR_TEXT];
	if (parse_phrase(ap, phrase) == 0) {
		skip_cfws(ap);
		if (ap->p < ap->end && *ap->p == '<') {
			mk_strlcpy(a->name, phrase, sizeof(a->name));
			a->have_name = 1;
			return parse_angle(ap, a);
		}
	}
	ap->p = start;
	skip_cfws(ap);
	if (ap->p < ap->end && *ap->p == '<')
		return parse_angle(ap, a);
	ap->have_comment = 0;
	if (parse_addr_spec(ap, a) < 0)
		return -1;
	/* "user@domain (Real Name)": the comment is the name */
	const char *save = ap->p;
	skip_cfws(ap);
	if (ap->have_comment && ap->comment[0] != '\0') {
		mk_strlcpy(a->name, ap->comment, sizeof(a->name));
		a->have_name = 1;
	}
	if (ap->p >= ap->end || *ap->p == ',' || *ap->p == ';')
		return 0;
	ap->p = save;
	return 0;
}

static struct addr *addrs_push(struct addrs *l)
{
	if (l->n >= ADDR_MAX)
		return NULL;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 4;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	struct addr *a = &l->v[l->n++];
	memset(a, 0, sizeof(*a));
	return a;
}

/* Skips to the next top-level ',' (or ';' in a group) after junk. */
static void skip_junk(struct aparser *ap, int in_group)
{
	while (ap->p < ap->end && *ap->p != ',' && !(in_group && *ap->p == ';')) {
		if (*ap->p == '"' || *ap->p == '(') {
			char tmp[ADDR_TEXT] = "";
			if (*ap->p == '"')
				parse_word(ap, tmp);
			else
				skip_cfws(ap);
			continue;
		}
		ap->p++;
	}
}

static void parse_address_list(const char *v, size_t len, struct addrs *out)
{
	struct aparser ap = {.p = v, .end = v + len};
	while (ap.p < ap.end) {
		skip_cfws(&ap);
		if (ap.p >= ap.end)
			break;
		if (*ap.p == ',') {
			ap.p++;
			continue;
		}
		/* a group: phrase ":" [mailbox-list] ";" */
		const char *start = ap.p;
		char phrase[ADDR_TEXT];
		if (parse_phrase(&ap, phrase) == 0) {
			skip_cfws(&ap);
			if (ap.p < ap.end && *ap.p == ':') {
				ap.p++;
				struct addr *g = addrs_push(out);
				if (g == NULL)
					return;
				mk_strlcpy(g->mailbox, phrase, sizeof(g->mailbox));
				g->have_mailbox = 1;
				g->group = 1;
				for (;;) {
					skip_cfws(&ap);
					if (ap.p >= ap.end)
						break;
					if (*ap.p == ';') {
						ap.p++;
						break;
					}
					if (*ap.p == ',') {
						ap.p++;
						continue;
					}
					struct addr a;
					if (parse_mailbox(&ap, &a) == 0) {
						struct addr *slot = addrs_push(out);
						if (slot == NULL)
							return;
						*slot = a;
					}
					skip_cfws(&ap);
					if (ap.p < ap.end && *ap.p != ',' && *ap.p != ';')
						skip_junk(&ap, 1);
				}
				struct addr *end =
				    addrs_push(out); /* the group's end: (NIL NIL NIL NIL) */
				if (end == NULL)
					return;
				end->group = 2;
				continue;
			}
		}
		ap.p = start;
		struct addr a;
		if (parse_mailbox(&ap, &a) == 0) {
			struct addr *slot = addrs_push(out);
			if (slot == NULL)
				return;
			*slot = a;
		}
		skip_cfws(&ap);
		if (ap.p < ap.end && *ap.p != ',')
			skip_junk(&ap, 0);
	}
}

static void put_text_or_nil(struct buf *b, const char *s, int have)
{
	put_string(b, have ? s : NULL, have ? strlen(s) : 0);
}

static void put_address_list(struct buf *b, const char *hdr, size_t hlen, const char *name)
{
	char v[8192];
	struct addrs l = {0};
	if (mime_header_get(hdr, hlen, name, v, sizeof(v)) && v[0] != '\0')
		parse_address_list(v, strlen(v), &l);
	if (l.n == 0) {
		buf_append_str(b, "NIL");
		free(l.v);
		return;
	}
	buf_append_str(b, "(");
	for (size_t i = 0; i < l.n; i++) {
		const struct addr *a = &l.v[i];
		buf_append_str(b, "(");
		put_text_or_nil(b, a->name, a->have_name);
		buf_append_str(b, " ");
		put_text_or_nil(b, a->adl, a->have_adl);
		buf_append_str(b, " ");
		put_text_or_nil(b, a->mailbox, a->have_mailbox);
		buf_append_str(b, " ");
		put_text_or_nil(b, a->host, a->have_host);
		buf_append_str(b, ")");
	}
	buf_append_str(b, ")");
	free(l.v);
}

/* A display name with its RFC 2047 words decoded (as it stands when it has none
 * or they do not decode). */
static void put_decoded_name(struct buf *out, const char *name)
{
	size_t idx = 0;
	char *dec = NULL;

	if (strstr(name, "=?") != NULL &&
	    mailmime_encoded_phrase_parse("utf-8", name, strlen(name), &idx, "utf-8", &dec) ==
		MAILIMF_NO_ERROR &&
	    dec != NULL) {
		buf_append_str(out, dec);
		free(dec);
	} else {
		buf_append_str(out, name);
	}
}

/* The addresses of a field as SEARCH sees them: "name <mailbox@host>, ...",
 * with RFC 2047 words in names decoded. */
static void put_search_addresses(struct buf *out, const char *v)
{
	struct addrs l = {0};
	parse_address_list(v, strlen(v), &l);
	size_t written = 0;
	for (size_t i = 0; i < l.n; i++) {
		const struct addr *a = &l.v[i];
		if (!a->have_mailbox || a->group)
			continue;
		if (written++ > 0)
			buf_append_str(out, ", ");
		if (a->have_name && a->name[0]) {
			put_decoded_name(out, a->name);
			buf_append_str(out, " ");
		}
		buf_printf(out, "<%s%s%s>", a->mailbox, a->have_host ? "@" : "",
			   a->have_host ? a->host : "");
	}
	free(l.v);
}

static void put_envelope(struct buf *b, const char *hdr, size_t hlen)
{
	char v[8192];
	buf_append_str(b, "(");
	put_nstring(b, field(hdr, hlen, "Date", v, sizeof(v)));
	buf_append_str(b, " ");
	put_nstring(b, field(hdr, hlen, "Subject", v, sizeof(v)));
	buf_append_str(b, " ");
	put_address_list(b, hdr, hlen, "From");
	buf_append_str(b, " ");
	put_address_list(b, hdr, hlen,
			 field(hdr, hlen, "Sender", v, sizeof(v)) ? "Sender" : "From");
	buf_append_str(b, " ");
	put_address_list(b, hdr, hlen,
			 field(hdr, hlen, "Reply-To", v, sizeof(v)) ? "Reply-To" : "From");
	buf_append_str(b, " ");
	put_address_list(b, hdr, hlen, "To");
	buf_append_str(b, " ");
	put_address_list(b, hdr, hlen, "Cc");
	buf_append_str(b, " ");
	put_address_list(b, hdr, hlen, "Bcc");
	buf_append_str(b, " ");
	put_nstring(b, field(hdr, hlen, "In-Reply-To", v, sizeof(v)));
	buf_append_str(b, " ");
	put_nstring(b, field(hdr, hlen, "Message-ID", v, sizeof(v)));
	buf_append_str(b, ")");
}

/* ("name" "value" ...) or NIL, from a clist of struct mailmime_parameter. */
static void put_params(struct buf *b, clist *params, const char *skip)
{
	int n = 0;
	for (clistiter *it = params ? clist_begin(params) : NULL; it; it = clist_next(it)) {
		struct mailmime_parameter *p = clist_content(it);
		if (p->pa_name == NULL || p->pa_value == NULL ||
		    (skip && strcasecmp(p->pa_name, skip) == 0))
			continue;
		buf_append_str(b, n++ ? " " : "(");
		put_upper(b, p->pa_name);
		buf_append_str(b, " ");
		put_nstring(b, p->pa_value);
	}
	buf_append_str(b, n ? ")" : "NIL");
}

static void put_type_params(struct buf *b, const char *hdr, size_t hlen, const struct ctype *ct)
{
	char v[4096];
	int done = 0;
	if (mime_header_get(hdr, hlen, "Content-Type", v, sizeof(v)) && v[0]) {
		size_t idx = 0;
		struct mailmime_content *c = NULL;
		if (mailmime_content_parse(v, strlen(v), &idx, &c) == MAILIMF_NO_ERROR &&
		    c != NULL) {
			put_params(b, c->ct_parameters, NULL);
			mailmime_content_free(c);
			done = 1;
		}
	}
	if (!done) {
		if (strcmp(ct->type, "text") == 0)
			buf_append_str(b, "(\"CHARSET\" \"US-ASCII\")");
		else
			buf_append_str(b, "NIL");
	}
}

static void put_disposition(struct buf *b, const char *hdr, size_t hlen)
{
	char v[4096];
	if (!mime_header_get(hdr, hlen, "Content-Disposition", v, sizeof(v)) || !v[0]) {
		buf_append_str(b, "NIL");
		return;
	}
	size_t idx = 0;
	struct mailmime_disposition *d = NULL;
	if (mailmime_disposition_parse(v, strlen(v), &idx, &d) != MAILIMF_NO_ERROR || d == NULL) {
		buf_append_str(b, "NIL");
		return;
	}
	const char *type = d->dsp_type->dsp_type == MAILMIME_DISPOSITION_TYPE_INLINE ? "INLINE"
			   : d->dsp_type->dsp_type == MAILMIME_DISPOSITION_TYPE_ATTACHMENT
			       ? "ATTACHMENT"
			   : d->dsp_type->dsp_extension ? d->dsp_type->dsp_extension
							: "ATTACHMENT";
	buf_append_str(b, "(");
	put_upper(b, type);
	buf_append_str(b, " ");
	int n = 0;
	for (clistiter *it = d->dsp_parms ? clist_begin(d->dsp_parms) : NULL; it;
	     it = clist_next(it)) {
		struct mailmime_disposition_parm *p = clist_content(it);
		const char *name = NULL, *value = NULL;
		char size[32];
		switch (p->pa_type) {
		case MAILMIME_DISPOSITION_PARM_FILENAME:
			name = "FILENAME";
			value = p->pa_data.pa_filename;
			break;
		case MAILMIME_DISPOSITION_PARM_CREATION_DATE:
			name = "CREATION-DATE";
			value = p->pa_data.pa_creation_date;
			break;
		case MAILMIME_DISPOSITION_PARM_MODIFICATION_DATE:
			name = "MODIFICATION-DATE";
			value = p->pa_data.pa_modification_date;
			break;
		case MAILMIME_DISPOSITION_PARM_READ_DATE:
			name = "READ-DATE";
			value = p->pa_data.pa_read_date;
			break;
		case MAILMIME_DISPOSITION_PARM_SIZE:
			snprintf(size, sizeof(size), "%zu", p->pa_data.pa_size);
			name = "SIZE";
			value = size;
			break;
		case MAILMIME_DISPOSITION_PARM_PARAMETER:
			name = p->pa_data.pa_parameter->pa_name;
			value = p->pa_data.pa_parameter->pa_value;
			break;
		}
		if (name == NULL || value == NULL)
			continue;
		buf_append_str(b, n++ ? " " : "(");
		put_upper(b, name);
		buf_append_str(b, " ");
		put_nstring(b, value);
	}
	buf_append_str(b, n ? "))" : "NIL)");
	mailmime_disposition_free(d);
}

static size_t count_lines(const char *s, size_t len)
{
	size_t n = 0;
	for (const char *p = s; (p = memchr(p, '\n', (size_t)(s + len - p))) != NULL; p++)
		n++;
	return n;
}

static void put_bodystructure(struct buf *b, const char *msg, const struct mime_part *e, int ext,
			      int digest_parent)
{
	const char *hdr = msg + e->hdr_start;
	size_t hlen = e->hdr_len;
	char v[4096];
	struct ctype ct;
	content_type_basic(hdr, hlen, digest_parent, &ct);
	if (e->multipart) {
		int digest = strcmp(ct.subtype, "digest") == 0;
		buf_append_str(b, "(");
		for (size_t i = 0; i < e->nchildren; i++)
			put_bodystructure(b, msg, &e->children[i], ext, digest);
		buf_append_str(b, " ");
		put_upper(b, ct.subtype);
		if (ext) {
			buf_append_str(b, " ");
			put_type_params(b, hdr, hlen, &ct);
			buf_append_str(b, " ");
			put_disposition(b, hdr, hlen);
			buf_append_str(b, " ");
			put_nstring(b, field(hdr, hlen, "Content-Language", v, sizeof(v)));
			buf_append_str(b, " ");
			put_nstring(b, field(hdr, hlen, "Content-Location", v, sizeof(v)));
		}
		buf_append_str(b, ")");
		return;
	}
	if (strcmp(ct.type, "multipart") == 0) {
		/* a multipart without parts: show it as text/plain */
		mk_strlcpy(ct.type, "text", sizeof(ct.type));
		mk_strlcpy(ct.subtype, "plain", sizeof(ct.subtype));
	}
	buf_append_str(b, "(");
	put_upper(b, ct.type);
	buf_append_str(b, " ");
	put_upper(b, ct.subtype);
	buf_append_str(b, " ");
	put_type_params(b, hdr, hlen, &ct);
	buf_append_str(b, " ");
	put_nstring(b, field(hdr, hlen, "Content-ID", v, sizeof(v)));
	buf_append_str(b, " ");
	put_nstring(b, field(hdr, hlen, "Content-Description", v, sizeof(v)));
	buf_append_str(b, " ");
	if (field(hdr, hlen, "Content-Transfer-Encoding", v, sizeof(v)))
		put_upper(b, v);
	else
		buf_append_str(b, "\"7BIT\"");
	/* sizes of the CRLF form, as the client will get the part (wire.h) */
	buf_printf(b, " %llu", (unsigned long long)wire_crlf_len(msg, e->body_start, e->body_len));
	if (e->rfc822 && e->msg != NULL) {
		buf_append_str(b, " ");
		put_envelope(b, msg + e->msg->hdr_start, e->msg->hdr_len);
		buf_append_str(b, " ");
		put_bodystructure(b, msg, e->msg, ext, 0);
		buf_printf(b, " %zu", count_lines(msg + e->body_start, e->body_len));
	} else if (strcmp(ct.type, "text") == 0) {
		buf_printf(b, " %zu", count_lines(msg + e->body_start, e->body_len));
	}
	if (ext) {
		buf_append_str(b, " ");
		put_nstring(b, field(hdr, hlen, "Content-MD5", v, sizeof(v)));
		buf_append_str(b, " ");
		put_disposition(b, hdr, hlen);
		buf_append_str(b, " ");
		put_nstring(b, field(hdr, hlen, "Content-Language", v, sizeof(v)));
		buf_append_str(b, " ");
		put_nstring(b, field(hdr, hlen, "Content-Location", v, sizeof(v)));
	}
	buf_append_str(b, ")");
}

int mime_describe(const char *msg, size_t len, struct buf *envelope, struct buf *body,
		  struct buf *bodystructure)
{
	struct mime_part *root = mime_parse(msg, len);
	if (envelope != NULL)
		put_envelope(envelope, msg + root->hdr_start, root->hdr_len);
	if (body != NULL)
		put_bodystructure(body, msg, root, 0, 0);
	if (bodystructure != NULL)
		put_bodystructure(bodystructure, msg, root, 1, 0);
	mime_free(&root);
	/* a buffer that hit its max dropped an append: the text is broken */
	if ((envelope && envelope->len + 64 > envelope->max) ||
	    (body && body->len + 64 > body->max) ||
	    (bodystructure && bodystructure->len + 64 > bodystructure->max))
		return -1;
	return 0;
}

/* --- sections ------------------------------------------------------------------------ */

/* Appends msg[start..start+len) in CRLF form. */
static void buf_append_crlf(struct buf *out, const char *msg, size_t start, size_t len)
{
	struct wire_crlf r;
	char tmp[4096];
	size_t n;
	wire_crlf_open(&r, msg, start, len, 0, UINT64_MAX);
	while ((n = wire_crlf_read(&r, msg, tmp, sizeof(tmp))) > 0)
		buf_append(out, tmp, n);
}

/* Copies the header lines whose names are (or, with not, are not) in the
 * list, in CRLF form. */
static int header_fields(const char *hdr, size_t hlen, const char *list, int not, struct buf *out)
{
	/* list: "(A B C)" */
	const char *p = list;
	while (*p == ' ')
		p++;
	if (*p != '(')
		return -1;
	p++;
	char names[64][128];
	size_t n = 0;
	while (*p && *p != ')') {
		while (*p == ' ')
			p++;
		if (*p == ')')
			break;
		size_t l = 0;
		int quoted = *p == '"';
		if (quoted)
			p++;
		while (p[l] && (quoted ? p[l] != '"' : (p[l] != ' ' && p[l] != ')')))
			l++;
		if (l == 0 || l >= sizeof(names[0]) || n >= sizeof(names) / sizeof(names[0]))
			return -1;
		memcpy(names[n], p, l);
		names[n][l] = '\0';
		n++;
		p += l + (quoted && p[l] == '"');
	}
	if (*p != ')' || n == 0)
		return -1;
	const char *q = hdr, *end = hdr + hlen;
	const char *fn, *fv;
	size_t fnl, fvl;
	while ((q = next_field(q, end, &fn, &fnl, &fv, &fvl)) != NULL) {
		int found = 0;
		for (size_t i = 0; i < n && !found; i++)
			if (strlen(names[i]) == fnl && strncasecmp(names[i], fn, fnl) == 0)
				found = 1;
		if (found != not )
			buf_append_crlf(out, hdr, (size_t)(fn - hdr), (size_t)(fv + fvl - fn));
	}
	buf_append(out, "\r\n", 2);
	return 0;
}

int mime_section(const char *msg, size_t len, const char *section, size_t *start_r, size_t *len_r,
		 struct buf *out)
{
	/* Sections of the top-level message need only its header's length: no
	 * walk over the parts of a large message for BODY[], HEADER or TEXT. */
	if (!(section[0] >= '0' && section[0] <= '9')) {
		size_t hl = mime_header_len(msg, len);
		*start_r = 0;
		*len_r = 0;
		if (section[0] == '\0') {
			*len_r = len;
		} else if (strcasecmp(section, "HEADER") == 0) {
			*len_r = hl;
		} else if (strcasecmp(section, "TEXT") == 0) {
			*start_r = hl;
			*len_r = len - hl;
		} else if (strncasecmp(section, "HEADER.FIELDS.NOT", 17) == 0 &&
			   (section[17] == ' ' || section[17] == '(')) {
			if (header_fields(msg, hl, section + 17, 1, out) < 0)
				return -1;
			*start_r = SIZE_MAX;
		} else if (strncasecmp(section, "HEADER.FIELDS", 13) == 0 &&
			   (section[13] == ' ' || section[13] == '(')) {
			if (header_fields(msg, hl, section + 13, 0, out) < 0)
				return -1;
			*start_r = SIZE_MAX;
		} else {
			return -1;
		}
		return 0;
	}
	struct mime_part *root = mime_parse(msg, len);
	const struct mime_part *c = root, *e = root;
	const char *p = section;
	int have_part = 0, ret = 0;
	*start_r = 0;
	*len_r = 0;
	while (*p >= '0' && *p <= '9') {
		uint64_t n = 0;
		while (*p >= '0' && *p <= '9') {
			n = n * 10 + (uint64_t)(*p - '0');
			if (n > 100000)
				goto bad;
			p++;
		}
		if (n == 0)
			goto bad;
		if (have_part) {
			if (e->rfc822 && e->msg)
				c = e->msg;
			else if (e->multipart)
				c = e;
			else
				goto empty;
		}
		if (c->multipart) {
			if (n > c->nchildren)
				goto empty;
			e = &c->children[n - 1];
		} else {
			if (n != 1)
				goto empty;
			e = c;
		}
		have_part = 1;
		if (*p == '.')
			p++;
		else if (*p != '\0')
			goto bad;
	}
	if (*p == '\0') {
		if (!have_part) {
			*len_r = len;
		} else {
			*start_r = e->body_start;
			*len_r = e->body_len;
		}
		goto done;
	}
	if (strcasecmp(p, "MIME") == 0) {
		if (!have_part)
			goto bad;
		*start_r = e->hdr_start;
		*len_r = e->hdr_len;
		goto done;
	}
	/* HEADER, TEXT, HEADER.FIELDS: of the message, or of the embedded message */
	const struct mime_part *m = root;
	if (have_part) {
		if (!e->rfc822 || e->msg == NULL) {
			if (strncasecmp(p, "HEADER", 6) != 0 && strcasecmp(p, "TEXT") != 0)
				goto bad;
			goto empty;
		}
		m = e->msg;
	}
	if (strcasecmp(p, "HEADER") == 0) {
		*start_r = m->hdr_start;
		*len_r = m->hdr_len;
	} else if (strcasecmp(p, "TEXT") == 0) {
		*start_r = m->body_start;
		*len_r = m->body_len;
	} else if (strncasecmp(p, "HEADER.FIELDS.NOT", 17) == 0 && (p[17] == ' ' || p[17] == '(')) {
		if (header_fields(msg + m->hdr_start, m->hdr_len, p + 17, 1, out) < 0)
			goto bad;
		*start_r = SIZE_MAX;
	} else if (strncasecmp(p, "HEADER.FIELDS", 13) == 0 && (p[13] == ' ' || p[13] == '(')) {
		if (header_fields(msg + m->hdr_start, m->hdr_len, p + 13, 0, out) < 0)
			goto bad;
		*start_r = SIZE_MAX;
	} else {
		goto bad;
	}
	goto done;
empty:
	*start_r = 0;
	*len_r = 0;
	goto done;
bad:
	ret = -1;
done:
	mime_free(&root);
	return ret;
}

/* --- search fields --------------------------------------------------------------------- */

static const char *search_fields[] = {"Subject", "From", "To", "Cc", "Bcc"};

int mime_search_field_index(const char *name)
{
	for (int i = 0; i < 5; i++)
		if (strcasecmp(name, search_fields[i]) == 0)
			return i;
	return -1;
}

long long mime_days_from_civil(long long y, unsigned m, unsigned d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

int mime_search_fields(const char *msg, size_t len, struct buf *out)
{
	size_t hlen = mime_header_len(msg, len);
	char v[16384];
	for (int i = 0; i < 5; i++) {
		/* every occurrence of the field: raw '\t' decoded '\t' addresses, each
		 * occurrence's pieces after the one before's (joined by '\t') */
		size_t pos = 0;
		int any = 0;
		while (mime_header_next(msg, hlen, &pos, search_fields[i], v, sizeof(v))) {
			for (char *p = v; *p; p++)
				if (*p == '\t')
					*p = ' ';
			if (any++)
				buf_append(out, "\t", 1);
			buf_append_str(out, v);
			buf_append(out, "\t", 1);
			size_t idx = 0;
			char *dec = NULL;
			if (strstr(v, "=?") != NULL &&
			    mailmime_encoded_phrase_parse("utf-8", v, strlen(v), &idx, "utf-8",
							  &dec) == MAILIMF_NO_ERROR &&
			    dec != NULL) {
				buf_append_str(out, dec);
				free(dec);
			}
			if (i > 0) { /* From, To, Cc, Bcc */
				buf_append(out, "\t", 1);
				put_search_addresses(out, v);
			}
		}
		buf_append(out, "", 1); /* an absent field leaves the piece empty */
	}
	int have_day = 0;
	if (mime_header_get(msg, hlen, "Date", v, sizeof(v))) {
		size_t idx = 0;
		struct mailimf_date_time *dt = NULL;
		if (mailimf_date_time_parse(v, strlen(v), &idx, &dt) == MAILIMF_NO_ERROR &&
		    dt != NULL) {
			if (dt->dt_month >= 1 && dt->dt_month <= 12 && dt->dt_day >= 1 &&
			    dt->dt_day <= 31) {
				buf_printf(out, "%lld",
					   mime_days_from_civil(dt->dt_year, (unsigned)dt->dt_month,
								(unsigned)dt->dt_day));
				have_day = 1;
			}
			mailimf_date_time_free(dt);
		}
	}
	if (!have_day)
		buf_append(out, "-", 1);
	buf_append(out, "", 1);
	return out->len + 64 > out->max ? -1 : 0;
}

/* --- SORT and THREAD fields ------------------------------------------------------------ */

static int is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* Length of a subj-blob ("[" *BLOBCHAR "]" *WSP) at s, or 0. */
static size_t subj_blob(const char *s)
{
	if (*s != '[')
		return 0;
	size_t i = 1;
	while (s[i] && s[i] != '[' && s[i] != ']')
		i++;
	if (s[i] != ']')
		return 0;
	i++;
	while (is_wsp(s[i]))
		i++;
	return i;
}

/* Length of a subj-leader ending in subj-refwd (*subj-blob ("re" / "fw"
 * ["d"]) *WSP [subj-blob] ":"), or 0. */
static size_t subj_refwd_leader(const char *s)
{
	size_t i = 0, b;
	while ((b = subj_blob(s + i)) > 0)
		i += b;
	if (strncasecmp(s + i, "re", 2) == 0)
		i += 2;
	else if (strncasecmp(s + i, "fwd", 3) == 0)
		i += 3;
	else if (strncasecmp(s + i, "fw", 2) == 0)
		i += 2;
	else
		return 0;
	while (is_wsp(s[i]))
		i++;
	i += subj_blob(s + i);
	return s[i] == ':' ? i + 1 : 0;
}

int mime_base_subject(const char *subject, char *out, size_t outsize)
{
	int reply = 0;
	size_t o = 0;
	if (outsize == 0)
		return 0;
	/* (1) white space runs become one space */
	for (const char *p = subject; *p && o + 1 < outsize; p++) {
		char c = *p == '\t' || *p == '\r' || *p == '\n' ? ' ' : *p;
		if (c == ' ' && (o == 0 || out[o - 1] == ' '))
			continue;
		out[o++] = c;
	}
	out[o] = '\0';
	for (;;) {
		/* (2) trailers: "(fwd)" and white space */
		size_t l = strlen(out);
		for (;;) {
			if (l > 0 && is_wsp(out[l - 1]))
				l--;
			else if (l >= 5 && strncasecmp(out + l - 5, "(fwd)", 5) == 0)
				l -= 5;
			else
				break;
		}
		out[l] = '\0';
		/* (3) leaders, (4) a leading blob that leaves something behind */
		int changed;
		do {
			changed = 0;
			size_t cut = 0;
			if (is_wsp(out[0]))
				cut = 1;
			else if ((cut = subj_refwd_leader(out)) > 0)
				reply = 1;
			else if ((cut = subj_blob(out)) > 0 && out[cut] == '\0')
				cut = 0;
			if (cut > 0) {
				memmove(out, out + cut, strlen(out + cut) + 1);
				changed = 1;
			}
		} while (changed);
		/* (5) "[fwd: ... ]" */
		l = strlen(out);
		if (l >= 6 && strncasecmp(out, "[fwd:", 5) == 0 && out[l - 1] == ']') {
			out[l - 1] = '\0';
			memmove(out, out + 5, l - 5);
			reply = 1;
			continue;
		}
		break;
	}
	return reply;
}

/* The first mailbox of an address field: its local part and display form. */
static void first_mailbox(const char *hdr, size_t hlen, const char *name, struct buf *mailbox,
			  struct buf *display)
{
	char v[8192];
	struct addrs l = {0};
	if (mime_header_get(hdr, hlen, name, v, sizeof(v)) && v[0])
		parse_address_list(v, strlen(v), &l);
	for (size_t i = 0; i < l.n; i++) {
		const struct addr *a = &l.v[i];
		/* the first entry, a group's name included (as Dovecot sorts) */
		if (!a->have_mailbox)
			continue;
		buf_append_str(mailbox, a->mailbox);
		if (a->group) {
			buf_append_str(display, a->mailbox);
			break;
		}
		if (a->have_name && a->name[0]) {
			put_decoded_name(display, a->name);
		} else {
			buf_printf(display, "%s%s%s", a->mailbox, a->have_host ? "@" : "",
				   a->have_host ? a->host : "");
		}
		break;
	}
	free(l.v);
}

/* The "<...>" message ids in v, space-separated, at most max of them. */
static void msg_ids(const char *v, struct buf *out, size_t max)
{
	size_t n = 0;
	for (const char *p = v; (p = strchr(p, '<')) != NULL && n < max;) {
		const char *e = strchr(p, '>');
		if (e == NULL)
			break;
		if (e - p > 2 && memchr(p + 1, '<', (size_t)(e - p - 1)) == NULL) {
			if (n++)
				buf_append(out, " ", 1);
			buf_append(out, p, (size_t)(e - p + 1));
		}
		p = e + 1;
	}
}

int mime_sort_fields(const char *msg, size_t len, struct buf *out)
{
	size_t hlen = mime_header_len(msg, len);
	char v[16384], base[4096];
	/* 0, 1: base subject, "R" if it was a reply or forward */
	int reply = 0;
	if (mime_header_get(msg, hlen, "Subject", v, sizeof(v))) {
		size_t idx = 0;
		char *dec = NULL;
		if (strstr(v, "=?") != NULL &&
		    mailmime_encoded_phrase_parse("utf-8", v, strlen(v), &idx, "utf-8", &dec) ==
			MAILIMF_NO_ERROR &&
		    dec != NULL) {
			reply = mime_base_subject(dec, base, sizeof(base));
			free(dec);
		} else {
			reply = mime_base_subject(v, base, sizeof(base));
		}
		buf_append_str(out, base);
	}
	buf_append(out, "", 1);
	buf_append_str(out, reply ? "R" : "");
	buf_append(out, "", 1);
	/* 2: the sent date in seconds since the epoch (UTC), or nothing */
	if (mime_header_get(msg, hlen, "Date", v, sizeof(v))) {
		size_t idx = 0;
		struct mailimf_date_time *dt = NULL;
		if (mailimf_date_time_parse(v, strlen(v), &idx, &dt) == MAILIMF_NO_ERROR &&
		    dt != NULL) {
			if (dt->dt_month >= 1 && dt->dt_month <= 12 && dt->dt_day >= 1 &&
			    dt->dt_day <= 31 && dt->dt_hour >= 0 && dt->dt_hour < 24 &&
			    dt->dt_min >= 0 && dt->dt_min < 60) {
				int z = dt->dt_zone < 0 ? -dt->dt_zone : dt->dt_zone;
				long long off = (long long)(z / 100 * 3600 + z % 100 * 60) *
						(dt->dt_zone < 0 ? -1 : 1);
				long long t =
				    mime_days_from_civil(dt->dt_year, (unsigned)dt->dt_month,
							 (unsigned)dt->dt_day) *
					86400 +
				    dt->dt_hour * 3600 + dt->dt_min * 60 + dt->dt_sec - off;
				buf_printf(out, "%lld", t);
			}
			mailimf_date_time_free(dt);
		}
	}
	buf_append(out, "", 1);
	/* 3-7: From, To, Cc mailboxes; From and To as displayed */
	struct buf dfrom, dto, dcc;
	buf_init(&dfrom, 4096);
	buf_init(&dto, 4096);
	buf_init(&dcc, 4096);
	first_mailbox(msg, hlen, "From", out, &dfrom);
	buf_append(out, "", 1);
	first_mailbox(msg, hlen, "To", out, &dto);
	buf_append(out, "", 1);
	first_mailbox(msg, hlen, "Cc", out, &dcc);
	buf_append(out, "", 1);
	if (dfrom.len)
		buf_append(out, dfrom.data, dfrom.len);
	buf_append(out, "", 1);
	if (dto.len)
		buf_append(out, dto.data, dto.len);
	buf_append(out, "", 1);
	buf_free(&dfrom);
	buf_free(&dto);
	buf_free(&dcc);
	/* 8: Message-ID; 9: References (or else In-Reply-To's first id) */
	if (mime_header_get(msg, hlen, "Message-ID", v, sizeof(v)))
		msg_ids(v, out, 1);
	buf_append(out, "", 1);
	size_t before = out->len;
	if (mime_header_get(msg, hlen, "References", v, sizeof(v)))
		msg_ids(v, out, 1000);
	if (out->len == before && mime_header_get(msg, hlen, "In-Reply-To", v, sizeof(v)))
		msg_ids(v, out, 1);
	buf_append(out, "", 1);
	return out->len + 64 > out->max ? -1 : 0;
}

/* --- BINARY (RFC 3516) ------------------------------------------------------------------- */

static int hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
				      : -1;
}

/* Quoted-printable (RFC 2045 6.7): white space at line ends dropped, "="
 * at a line end joins it with the next, "=XX" a byte; lines end in CRLF.
 * (libetpan's decoder keeps the trailing white space.) */
static void qp_decode(const char *p, size_t len, struct buf *out)
{
	const char *end = p + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		const char *e = le;
		if (e > p && e[-1] == '\r')
			e--;
		while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		int soft = e > p && e[-1] == '=';
		if (soft)
			e--;
		for (const char *q = p; q < e; q++) {
			int hi, lo;
			if (*q == '=' && q + 2 < e && (hi = hexval(q[1])) >= 0 &&
			    (lo = hexval(q[2])) >= 0) {
				char c = (char)(hi << 4 | lo);
				buf_append(out, &c, 1);
				q += 2;
			} else {
				buf_append(out, q, 1);
			}
		}
		if (nl != NULL && !soft)
			buf_append(out, "\r\n", 2);
		p = nl ? nl + 1 : end;
	}
}

int mime_binary(const char *msg, size_t len, const char *section, struct buf *out)
{
	size_t start, plen, hstart, hlen;
	struct buf tmp;
	char mimesec[300];
	int ret = 0;
	for (const char *p = section; *p; p++)
		if (!((*p >= '0' && *p <= '9') || *p == '.'))
			return MIME_BINARY_BAD;
	buf_init(&tmp, 1 << 20);
	if (mime_section(msg, len, section, &start, &plen, &tmp) < 0 || start == SIZE_MAX) {
		buf_free(&tmp);
		return MIME_BINARY_BAD;
	}
	/* the part's own header says how it is encoded (the message's for "" and "1" of a single
	 * part) */
	int mech = MAILMIME_MECHANISM_7BIT;
	if (section[0] != '\0' &&
	    snprintf(mimesec, sizeof(mimesec), "%s.MIME", section) < (int)sizeof(mimesec) &&
	    mime_section(msg, len, mimesec, &hstart, &hlen, &tmp) == 0 && hstart != SIZE_MAX) {
		char v[256];
		if (mime_header_get(msg + hstart, hlen, "Content-Transfer-Encoding", v,
				    sizeof(v)) &&
		    v[0]) {
			if (strcasecmp(v, "base64") == 0)
				mech = MAILMIME_MECHANISM_BASE64;
			else if (strcasecmp(v, "quoted-printable") == 0)
				mech = MAILMIME_MECHANISM_QUOTED_PRINTABLE;
			else if (strcasecmp(v, "binary") == 0)
				mech = MAILMIME_MECHANISM_BINARY;
			else if (strcasecmp(v, "7bit") != 0 && strcasecmp(v, "8bit") != 0)
				ret = MIME_BINARY_UNKNOWN_CTE;
		}
	}
	buf_free(&tmp);
	if (ret != 0)
		return ret;
	if (mech == MAILMIME_MECHANISM_BINARY) {
		if (buf_append(out, msg + start, plen) < 0)
			return MIME_BINARY_TOOBIG;
		return 0;
	}
	if (mech == MAILMIME_MECHANISM_7BIT) {
		buf_append_crlf(out, msg, start, plen);
		return out->len + 64 > out->max ? MIME_BINARY_TOOBIG : 0;
	}
	if (mech == MAILMIME_MECHANISM_QUOTED_PRINTABLE) {
		qp_decode(msg + start, plen, out);
		return out->len + 64 > out->max ? MIME_BINARY_TOOBIG : 0;
	}
	size_t idx = 0, dlen = 0;
	char *dec = NULL;
	if (mailmime_part_parse(msg + start, plen, &idx, mech, &dec, &dlen) != MAILIMF_NO_ERROR ||
	    dec == NULL)
		return MIME_BINARY_UNKNOWN_CTE;
	if (dlen > 0 && buf_append(out, dec, dlen) < 0)
		ret = MIME_BINARY_TOOBIG;
	mmap_string_unref(dec);
	return ret;
}

/* Collects the leaf parts (no multipart, no embedded message) in order. */
static void collect_leaves(const struct mime_part *p, const struct mime_part ***v, size_t *n,
			   size_t *cap)
{
	if (p->multipart) {
		for (size_t i = 0; i < p->nchildren; i++)
			collect_leaves(&p->children[i], v, n, cap);
		return;
	}
	if (p->rfc822 && p->msg != NULL) {
		collect_leaves(p->msg, v, n, cap);
		return;
	}
	*ARRAY_PUSH(*v, *n, *cap) = p;
}

int mime_binary_to_base64(const char *msg, size_t len, struct buf *out)
{
	if (memchr(msg, '\0', len) == NULL)
		return 0;
	struct mime_part *root = mime_parse(msg, len);
	const struct mime_part **leaves = NULL;
	size_t n = 0, cap = 0, pos = 0;
	int converted = 0;
	collect_leaves(root, &leaves, &n, &cap);
	for (size_t i = 0; i < n; i++) {
		const struct mime_part *p = leaves[i];
		if (p->body_len == 0 || memchr(msg + p->body_start, '\0', p->body_len) == NULL)
			continue;
		/* everything before this part's header as it was */
		buf_append(out, msg + pos, p->hdr_start - pos);
		/* its header without Content-Transfer-Encoding, then base64's */
		const char *q = msg + p->hdr_start, *hend = msg + p->hdr_start + p->hdr_len;
		const char *fn, *fv;
		size_t fnl, fvl;
		while ((q = next_field(q, hend, &fn, &fnl, &fv, &fvl)) != NULL)
			if (!(fnl == 25 && strncasecmp(fn, "Content-Transfer-Encoding", 25) == 0))
				buf_append(out, fn, (size_t)(fv + fvl - fn));
		buf_append_str(out, "Content-Transfer-Encoding: base64\r\n\r\n");
		/* the body in lines of 76 */
		for (size_t o = 0; o < p->body_len; o += 57) {
			unsigned char enc[80];
			size_t take = p->body_len - o < 57 ? p->body_len - o : 57;
			int w = EVP_EncodeBlock(enc, (const unsigned char *)msg + p->body_start + o,
						(int)take);
			buf_append(out, enc, (size_t)w);
			buf_append(out, "\r\n", 2);
		}
		pos = p->body_start + p->body_len;
		converted = 1;
	}
	if (converted)
		buf_append(out, msg + pos, len - pos);
	free(leaves);
	mime_free(&root);
	if (out->len + 64 > out->max)
		return -1;
	/* NUL left in a header, a preamble or an epilogue: not a message IMAP can show */
	if (!converted || memchr(out->data, '\0', out->len) != NULL)
		return -2;
	return 1;
}
