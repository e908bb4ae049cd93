/* fts_text — a message's searchable text (see fts.h): a MIME walk that
 * decodes transfer encodings and charsets, turns HTML into text, keeps the
 * names of attachments, then folds case. Pure: bytes in, text out, bounded
 * (FTS_TEXT_MAX bytes of text, MIME nesting to DEPTH_MAX).
 *
 * The spam filter's tokenizer (index/spam_token.c) walks MIME the same way
 * for its own purpose (it hashes token windows); the two could share this
 * walker, which is the spam room's call (noted in doc/search.md).
 */
#define _GNU_SOURCE /* memmem */
#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "index/fts.h"
#include "lib/base64.h"
#include "lib/xmalloc.h"

#define DEPTH_MAX 8
#define PARAM_MAX 256

/* A growing text with a hard cap: bytes past FTS_TEXT_MAX are dropped. */
struct tb {
	char *p;
	size_t n, cap;
};

static void tb_add(struct tb *b, const void *s, size_t n)
{
	if (b->n + n > FTS_TEXT_MAX)
		n = FTS_TEXT_MAX - b->n;
	if (n == 0)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->n + n + 1)
			cap *= 2;
		b->p = xreallocarray(b->p, cap, 1);
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void tb_addc(struct tb *b, char c)
{
	tb_add(b, &c, 1);
}

/* --- folding ----------------------------------------------------------------- */

static uint32_t fold_cp(uint32_t c)
{
	if (c < 0x80)
		return c >= 'A' && c <= 'Z' ? c + 32 : c;
	if ((c >= 0xC0 && c <= 0xDE && c != 0xD7))
		return c + 32;
	if (c >= 0x100 && c <= 0x17F) { /* Latin Extended-A: pairs, upper case even (mostly) */
		if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
			return (c & 1) ? c + 1 : c;
		if (c == 0x130 || c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17F)
			return c;
		if (c == 0x178) /* Ÿ: its small letter is Latin-1's ÿ */
			return 0xFF;
		return (c & 1) ? c : c + 1;
	}
	if (c >= 0x391 && c <= 0x3AB && c != 0x3A2)
		return c + 32; /* Greek */
	if (c >= 0x410 && c <= 0x42F)
		return c + 32; /* Cyrillic */
	if (c >= 0x400 && c <= 0x40F)
		return c + 80;
	return c;
}

/* Decodes one UTF-8 character at s (n > 0 bytes); *len_r gets its length.
 * An invalid byte is itself (length 1, value 0xFFFFFFFF: copied as is). */
static uint32_t utf8_next(const unsigned char *s, size_t n, size_t *len_r)
{
	uint32_t c = s[0];
	size_t l = c < 0x80		? 1
		   : (c & 0xE0) == 0xC0 ? 2
		   : (c & 0xF0) == 0xE0 ? 3
		   : (c & 0xF8) == 0xF0 ? 4
					: 0;
	if (l == 0 || l > n) {
		*len_r = 1;
		return 0xFFFFFFFF;
	}
	if (l == 1) {
		*len_r = 1;
		return c;
	}
	c &= 0x7F >> l;
	for (size_t i = 1; i < l; i++) {
		if ((s[i] & 0xC0) != 0x80) {
			*len_r = 1;
			return 0xFFFFFFFF;
		}
		c = c << 6 | (s[i] & 0x3F);
	}
	if ((l == 2 && c < 0x80) || (l == 3 && c < 0x800) ||
	    (l == 4 && (c < 0x10000 || c > 0x10FFFF))) {
		*len_r = 1; /* an overlong form (0xC0 0x80 is no NUL here) */
		return 0xFFFFFFFF;
	}
	*len_r = l;
	return c;
}

static size_t utf8_put(uint32_t c, char *out)
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xC0 | c >> 6);
		out[1] = (char)(0x80 | (c & 0x3F));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xE0 | c >> 12);
		out[1] = (char)(0x80 | (c >> 6 & 0x3F));
		out[2] = (char)(0x80 | (c & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | c >> 18);
	out[1] = (char)(0x80 | (c >> 12 & 0x3F));
	out[2] = (char)(0x80 | (c >> 6 & 0x3F));
	out[3] = (char)(0x80 | (c & 0x3F));
	return 4;
}

/* Folds in place into out (which may be s: folding never lengthens a
 * character's UTF-8 form for the letters it maps). */
static size_t fold_into(const char *s, size_t n, char *out)
{
	size_t i = 0, o = 0;
	while (i < n) {
		size_t l;
		uint32_t c = utf8_next((const unsigned char *)s + i, n - i, &l);
		if (c == 0xFFFFFFFF || c < 0x80) {
			out[o++] = c < 0x80 ? (char)fold_cp(c) : s[i];
		} else {
			char tmp[4];
			size_t w = utf8_put(fold_cp(c), tmp);
			if (w != l) { /* never happens for the ranges above; keep the bytes */
				memmove(out + o, s + i, l);
				o += l;
			} else {
				memcpy(out + o, tmp, w);
				o += w;
			}
		}
		i += l;
	}
	out[o] = '\0';
	return o;
}

char *fts_fold(const char *s, size_t len, size_t *len_r)
{
	char *out = xmalloc(len + 1);
	size_t n = fold_into(s, len, out);
	if (len_r)
		*len_r = n;
	return out;
}

/* --- decoding ------------------------------------------------------------------ */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Quoted-printable (header: '_' is a space, RFC 2047's Q). */
static void decode_qp(const char *s, size_t n, int header, struct tb *out)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '=') {
			if (i + 1 < n && s[i + 1] == '\n') { /* soft line break */
				i++;
				continue;
			}
			if (i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') {
				i += 2;
				continue;
			}
			int h = i + 2 < n ? hexval(s[i + 1]) : -1,
			    l = i + 2 < n ? hexval(s[i + 2]) : -1;
			if (h >= 0 && l >= 0) {
				tb_addc(out, (char)(h << 4 | l));
				i += 2;
				continue;
			}
		}
		tb_addc(out, header && s[i] == '_' ? ' ' : s[i]);
	}
}

static void decode_b64(const char *s, size_t n, struct tb *out)
{
	unsigned char *buf = xmalloc(BASE64_DECODED_MAX(n) + 1);
	long l = base64_decode_mime(s, n, buf, BASE64_DECODED_MAX(n) + 1);
	if (l > 0)
		tb_add(out, buf, (size_t)l);
	free(buf);
}

static int charset_is_utf8(const char *cs)
{
	return cs[0] == 0 || strcasecmp(cs, "utf-8") == 0 || strcasecmp(cs, "utf8") == 0 ||
	       strcasecmp(cs, "us-ascii") == 0 || strcasecmp(cs, "ascii") == 0;
}

/* Appends s converted from charset to UTF-8 (bytes iconv refuses are
 * dropped); the bytes as they are when iconv does not know the charset. */
static void to_utf8(const char *charset, const char *s, size_t n, struct tb *out)
{
	iconv_t cd;

	if (charset_is_utf8(charset) || (cd = iconv_open("UTF-8", charset)) == (iconv_t)-1) {
		tb_add(out, s, n);
		return;
	}
	char *in = (char *)s;
	size_t inleft = n;
	char buf[4096];
	while (inleft > 0) {
		char *o = buf;
		size_t oleft = sizeof(buf);
		size_t r = iconv(cd, &in, &inleft, &o, &oleft);
		tb_add(out, buf, sizeof(buf) - oleft);
		if (r == (size_t)-1 && errno != E2BIG) {
			in++;
			inleft--;
		}
	}
	char *o = buf;
	size_t oleft = sizeof(buf);
	iconv(cd, NULL, NULL, &o, &oleft);
	tb_add(out, buf, sizeof(buf) - oleft);
	iconv_close(cd);
}

/* The end ("?=") of the encoded word at p, or NULL if p does not start one. */
static const char *encoded_word(const char *p, const char *end, const char **q1_r,
				const char **q2_r)
{
	if (end - p < 8 || p[0] != '=' || p[1] != '?')
		return NULL;
	const char *q1 = memchr(p + 2, '?', (size_t)(end - p - 2));
	if (q1 == NULL || end - q1 < 4 || q1[2] != '?')
		return NULL;
	for (const char *e = q1 + 3; e + 1 < end; e++)
		if (e[0] == '?' && e[1] == '=') {
			*q1_r = q1;
			*q2_r = q1 + 2;
			return e;
		}
	return NULL;
}

/* RFC 2047 encoded words in a header value; 1 if there was one. White
 * space between two encoded words is dropped, as the RFC says. */
static int decode_2047(const char *v, size_t n, struct tb *out)
{
	const char *p = v, *end = v + n, *plain = v;
	int any = 0, after_word = 0;
	while (p < end) {
		const char *q1, *q2, *e = encoded_word(p, end, &q1, &q2);
		if (e == NULL) {
			p++;
			continue;
		}
		int space_only = 1;
		for (const char *k = plain; k < p; k++)
			if (!isspace((unsigned char)*k))
				space_only = 0;
		if (!(after_word && space_only))
			tb_add(out, plain, (size_t)(p - plain));
		char cs[64];
		size_t cl = (size_t)(q1 - p - 2);
		if (cl >= sizeof(cs))
			cl = sizeof(cs) - 1;
		memcpy(cs, p + 2, cl);
		cs[cl] = '\0';
		char *star = strchr(cs, '*'); /* RFC 2231 language */
		if (star)
			*star = '\0';
		struct tb raw = {0};
		if (q1[1] == 'B' || q1[1] == 'b')
			decode_b64(q2 + 1, (size_t)(e - q2 - 1), &raw);
		else
			decode_qp(q2 + 1, (size_t)(e - q2 - 1), 1, &raw);
		if (raw.n)
			to_utf8(cs, raw.p, raw.n, out);
		free(raw.p);
		any = after_word = 1;
		p = plain = e + 2;
	}
	tb_add(out, plain, (size_t)(end - plain));
	return any;
}

/* --- HTML --------------------------------------------------------------------- */

static const struct {
	const char *name;
	uint32_t cp;
} entities[] = {{"amp", '&'},	  {"lt", '<'},	      {"gt", '>'},	 {"quot", '"'},
		{"apos", '\''},	  {"nbsp", ' '},      {"copy", 0xA9},	 {"reg", 0xAE},
		{"euro", 0x20AC}, {"auml", 0xE4},     {"ouml", 0xF6},	 {"uuml", 0xFC},
		{"Auml", 0xC4},	  {"Ouml", 0xD6},     {"Uuml", 0xDC},	 {"szlig", 0xDF},
		{"eacute", 0xE9}, {"egrave", 0xE8},   {"agrave", 0xE0},	 {"ccedil", 0xE7},
		{"ntilde", 0xF1}, {"hellip", 0x2026}, {"mdash", 0x2014}, {"ndash", 0x2013},
		{"laquo", 0xAB},  {"raquo", 0xBB}};

/* One space, unless the text already ends in white space (HTML is read with
 * its runs of white space as one). */
static void tb_space(struct tb *b)
{
	if (b->n > 0 && !isspace((unsigned char)b->p[b->n - 1]))
		tb_addc(b, ' ');
}

/* The values of title= and alt= in a tag's text, each between spaces. */
static void tag_text(const char *t, size_t n, struct tb *out)
{
	for (size_t i = 1; i + 4 < n; i++) {
		size_t nl = 0;
		if (!isspace((unsigned char)t[i - 1]))
			continue;
		if (strncasecmp(t + i, "alt=", 4) == 0)
			nl = 4;
		else if (i + 6 < n && strncasecmp(t + i, "title=", 6) == 0)
			nl = 6;
		if (nl == 0)
			continue;
		size_t j = i + nl, st;
		char q = t[j] == '"' || t[j] == '\'' ? t[j++] : 0;
		for (st = j; j < n && (q ? t[j] != q : !isspace((unsigned char)t[j])); j++)
			;
		tb_space(out);
		tb_add(out, t + st, j - st);
		tb_space(out);
		i = j;
	}
}

/* HTML to text: tags become a space (inline ones such as <b> nothing), script and style
 * contents and comments go, entities are decoded. */
static void html_to_text(const char *s, size_t n, struct tb *out)
{
	size_t i = 0;
	while (i < n) {
		char c = s[i];
		if (c == '<') {
			if (i + 3 < n && memcmp(s + i, "<!--", 4) == 0) {
				const char *e = memmem(s + i + 4, n - i - 4, "-->", 3);
				i = e ? (size_t)(e - s) + 3 : n;
				continue;
			}
			int skip = 0, inline_tag = 0;
			static const char *const inl[] = {
			    "b",    "i",     "u",   "s",   "a",	  "em", "strong", "span",
			    "font", "small", "big", "sub", "sup", "tt", "code",	  "abbr"};
			size_t t0 = i + 1 + (i + 1 < n && s[i + 1] == '/'), t1 = t0;
			while (t1 < n && isalpha((unsigned char)s[t1]))
				t1++;
			for (size_t k = 0; k < sizeof(inl) / sizeof(inl[0]); k++)
				if (strlen(inl[k]) == t1 - t0 &&
				    strncasecmp(s + t0, inl[k], t1 - t0) == 0)
					inline_tag = 1;
			if (i + 7 < n && strncasecmp(s + i, "<script", 7) == 0)
				skip = 1;
			if (i + 6 < n && strncasecmp(s + i, "<style", 6) == 0)
				skip = 2;
			const char *e = memchr(s + i, '>', n - i);
			/* what a reader may see of a tag: its title (a tooltip) and alt (an
			 * image's text) */
			tag_text(s + i, e ? (size_t)(e - s - i) : n - i, out);
			i = e ? (size_t)(e - s) + 1 : n;
			if (skip) {
				const char *close = skip == 1 ? "</script" : "</style";
				size_t cl = strlen(close);
				while (i + cl <= n && strncasecmp(s + i, close, cl) != 0)
					i++;
				e = i < n ? memchr(s + i, '>', n - i) : NULL;
				i = e ? (size_t)(e - s) + 1 : n;
			}
			if (!inline_tag) /* <b>, <span>, ... are inside words and sentences */
				tb_space(out);
			continue;
		}
		if (c == '&') {
			size_t j = i + 1;
			while (j < n && j - i < 12 && (isalnum((unsigned char)s[j]) || s[j] == '#'))
				j++;
			if (j < n && s[j] == ';' && j > i + 1) {
				uint32_t cp = 0;
				if (s[i + 1] == '#') {
					int hex = i + 2 < j && (s[i + 2] == 'x' || s[i + 2] == 'X');
					for (size_t k = i + 2 + (size_t)hex; k < j; k++) {
						int d = hex ? hexval(s[k])
							: isdigit((unsigned char)s[k]) ? s[k] - '0'
										       : -1;
						if (d < 0 || cp > 0x10FFFF) {
							cp = 0;
							break;
						}
						cp = cp * (hex ? 16 : 10) + (uint32_t)d;
					}
				} else {
					for (size_t k = 0;
					     k < sizeof(entities) / sizeof(entities[0]); k++)
						if (strlen(entities[k].name) == j - i - 1 &&
						    memcmp(entities[k].name, s + i + 1,
							   j - i - 1) == 0)
							cp = entities[k].cp;
				}
				if (cp > 0 && cp <= 0x10FFFF) {
					char u[4];
					tb_add(out, u, utf8_put(cp, u));
					i = j + 1;
					continue;
				}
			}
		}
		if (isspace((unsigned char)c))
			tb_space(out);
		else
			tb_addc(out, c);
		i++;
	}
}

/* --- MIME ---------------------------------------------------------------------- */

struct part {
	char type[64], subtype[64], charset[64], boundary[PARAM_MAX], name[PARAM_MAX];
	int b64, qp;
};

struct walk {
	struct tb hdr, body, names;
};

/* The value of parameter name in a Content-Type / Content-Disposition value
 * (quoted or not; RFC 2231 name*=charset''percent-encoded). */
static void get_param(const char *v, size_t n, const char *name, char *out, size_t outsize)
{
	size_t nl = strlen(name);
	for (size_t i = 0; i + nl < n; i++) {
		if ((i == 0 || v[i - 1] == ';' || isspace((unsigned char)v[i - 1])) &&
		    strncasecmp(v + i, name, nl) == 0) {
			size_t j = i + nl;
			int ext = 0;
			if (j < n && v[j] == '*') {
				ext = 1;
				j++;
				while (j < n && (isdigit((unsigned char)v[j]) || v[j] == '*'))
					j++;
			}
			while (j < n && isspace((unsigned char)v[j]))
				j++;
			if (j >= n || v[j] != '=')
				continue;
			j++;
			while (j < n && isspace((unsigned char)v[j]))
				j++;
			size_t o = 0;
			if (j < n && v[j] == '"') {
				j++;
				while (j < n && v[j] != '"' && o + 1 < outsize) {
					if (v[j] == '\\' && j + 1 < n)
						j++;
					out[o++] = v[j++];
				}
			} else {
				while (j < n && v[j] != ';' && !isspace((unsigned char)v[j]) &&
				       o + 1 < outsize)
					out[o++] = v[j++];
			}
			out[o] = '\0';
			if (ext) { /* charset'lang'percent-encoded: keep the bytes (UTF-8 mostly) */
				char *q = strchr(out, '\'');
				char *q2 = q ? strchr(q + 1, '\'') : NULL;
				if (q2) {
					size_t w = 0;
					for (char *r = q2 + 1; *r; r++) {
						if (*r == '%' && hexval(r[1]) >= 0 &&
						    hexval(r[2]) >= 0) {
							out[w++] = (char)(hexval(r[1]) << 4 |
									  hexval(r[2]));
							r += 2;
						} else {
							out[w++] = *r;
						}
					}
					out[w] = '\0';
				}
			}
			return;
		}
	}
}

static void lower_copy(char *out, size_t outsize, const char *s, size_t n)
{
	size_t o = 0;
	while (o < n && o + 1 < outsize && !isspace((unsigned char)s[o]) && s[o] != ';' &&
	       s[o] != '/') {
		out[o] = (char)tolower((unsigned char)s[o]);
		o++;
	}
	out[o] = '\0';
}

static void field(struct walk *w, struct tb *to, const char *name, size_t nl, const char *v,
		  size_t vl, struct part *pi)
{
	tb_add(to, name, nl);
	tb_add(to, ": ", 2);
	tb_add(to, v, vl);
	tb_addc(to, '\n');
	if (memmem(v, vl, "=?", 2) != NULL) {
		size_t before = to->n;
		tb_add(to, name, nl);
		tb_add(to, ": ", 2);
		if (decode_2047(v, vl, to)) {
			tb_addc(to, '\n');
		} else {
			to->n = before;
			to->p[before] = '\0';
		}
	}
	if (nl == 12 && strncasecmp(name, "content-type", 12) == 0) {
		size_t i = 0;
		while (i < vl && isspace((unsigned char)v[i]))
			i++;
		lower_copy(pi->type, sizeof(pi->type), v + i, vl - i);
		const char *slash = memchr(v + i, '/', vl - i);
		if (slash)
			lower_copy(pi->subtype, sizeof(pi->subtype), slash + 1,
				   (size_t)(v + vl - slash - 1));
		get_param(v, vl, "charset", pi->charset, sizeof(pi->charset));
		get_param(v, vl, "boundary", pi->boundary, sizeof(pi->boundary));
		if (!pi->name[0])
			get_param(v, vl, "name", pi->name, sizeof(pi->name));
	} else if (nl == 25 && strncasecmp(name, "content-transfer-encoding", 25) == 0) {
		size_t i = 0;
		while (i < vl && isspace((unsigned char)v[i]))
			i++;
		pi->b64 = vl - i >= 6 && strncasecmp(v + i, "base64", 6) == 0;
		pi->qp = vl - i >= 16 && strncasecmp(v + i, "quoted-printable", 16) == 0;
	} else if (nl == 19 && strncasecmp(name, "content-disposition", 19) == 0) {
		char fn[PARAM_MAX] = "";
		get_param(v, vl, "filename", fn, sizeof(fn));
		if (fn[0])
			memcpy(pi->name, fn, sizeof(fn));
	}
	(void)w;
}

/* Reads a header block into to; returns the offset of the body. */
static size_t parse_header(struct walk *w, struct tb *to, const char *d, size_t n, struct part *pi)
{
	size_t i = 0;
	struct tb line = {0};
	while (i < n) {
		if (d[i] == '\n' || (d[i] == '\r' && i + 1 < n && d[i + 1] == '\n')) {
			i += d[i] == '\r' ? 2 : 1;
			break; /* the empty line */
		}
		/* a field with its continuation lines, unfolded */
		line.n = 0;
		size_t s = i;
		for (;;) {
			const char *nl = memchr(d + i, '\n', n - i);
			size_t e = nl ? (size_t)(nl - d) : n;
			size_t ce = e > s && d[e - 1] == '\r' ? e - 1 : e;
			tb_add(&line, d + s, ce - s);
			i = nl ? e + 1 : n;
			if (i < n && (d[i] == ' ' || d[i] == '\t')) {
				s = i;
				continue;
			}
			break;
		}
		if (line.n == 0)
			continue;
		const char *colon = memchr(line.p, ':', line.n);
		if (colon == NULL)
			continue;
		size_t nl = (size_t)(colon - line.p);
		const char *v = colon + 1;
		size_t vl = line.n - nl - 1;
		while (vl > 0 && (*v == ' ' || *v == '\t'))
			v++, vl--;
		field(w, to, line.p, nl, v, vl, pi);
	}
	free(line.p);
	return i;
}

static void entity(struct walk *w, struct tb *hdrs, const char *d, size_t n, int depth, int digest);

static void text_part(struct walk *w, const char *d, size_t n, const struct part *pi)
{
	struct tb dec = {0}, utf = {0};
	const char *s = d;
	size_t sl = n;
	if (pi->b64) {
		decode_b64(d, n, &dec);
		s = dec.p;
		sl = dec.n;
	} else if (pi->qp) {
		decode_qp(d, n, 0, &dec);
		s = dec.p;
		sl = dec.n;
	}
	if (sl > 0) {
		to_utf8(pi->charset, s, sl, &utf);
		if (strcmp(pi->subtype, "html") == 0)
			html_to_text(utf.p, utf.n, &w->body);
		else
			tb_add(&w->body, utf.p, utf.n);
		tb_addc(&w->body, '\n');
	}
	free(dec.p);
	free(utf.p);
}

/* The parts between "--boundary" lines, up to "--boundary--". A part's own
 * header fields (Content-Type, its file name) are header text, not body, as
 * Dovecot's BODY search has them; a message inside a message is body. */
static void multipart(struct walk *w, const char *d, size_t n, int depth, const struct part *pi)
{
	size_t bl = strlen(pi->boundary);
	size_t start = SIZE_MAX, i = 0;
	while (i < n) {
		const char *nl = memchr(d + i, '\n', n - i);
		size_t e = nl ? (size_t)(nl - d) : n;
		if (e - i >= bl + 2 && d[i] == '-' && d[i + 1] == '-' &&
		    memcmp(d + i + 2, pi->boundary, bl) == 0) {
			int last = e - i >= bl + 4 && d[i + bl + 2] == '-' && d[i + bl + 3] == '-';
			if (start != SIZE_MAX) {
				size_t end = i;
				if (end > start && d[end - 1] == '\n')
					end--;
				if (end > start && d[end - 1] == '\r')
					end--;
				entity(w, &w->hdr, d + start, end - start, depth + 1,
				       strcmp(pi->subtype, "digest") == 0);
			}
			if (last)
				return;
			start = nl ? e + 1 : n;
		}
		i = nl ? e + 1 : n;
	}
	if (start != SIZE_MAX && start < n)
		entity(w, &w->hdr, d + start, n - start, depth + 1,
		       strcmp(pi->subtype, "digest") == 0);
}

static void entity(struct walk *w, struct tb *hdrs, const char *d, size_t n, int depth, int digest)
{
	struct part pi = {0};
	size_t body = parse_header(w, hdrs, d, n, &pi);
	if (pi.type[0] == '\0')
		snprintf(pi.type, sizeof(pi.type), "%s", digest ? "message" : "text");
	if (pi.subtype[0] == '\0' && !strcmp(pi.type, "text"))
		snprintf(pi.subtype, sizeof(pi.subtype), "plain");
	if (pi.name[0]) {
		struct tb dec = {0};
		if (decode_2047(pi.name, strlen(pi.name), &dec))
			tb_add(&w->names, dec.p, dec.n);
		else
			tb_add(&w->names, pi.name, strlen(pi.name));
		tb_addc(&w->names, '\n');
		free(dec.p);
	}
	if (depth >= DEPTH_MAX || body > n)
		return;
	d += body;
	n -= body;
	if (!strcmp(pi.type, "multipart") && pi.boundary[0])
		multipart(w, d, n, depth, &pi);
	else if (!strcmp(pi.type, "message") &&
		 (!strcmp(pi.subtype, "rfc822") || !strcmp(pi.subtype, "global") || digest))
		entity(w, &w->body, d, n, depth + 1, 0);
	else if (!strcmp(pi.type, "text") && !pi.name[0])
		text_part(w, d, n, &pi);
	else if (!strcmp(pi.type, "text") &&
		 (!strcmp(pi.subtype, "plain") || !strcmp(pi.subtype, "html")))
		text_part(w, d, n, &pi); /* a named text attachment is text too */
}

static char *finish(struct tb *b, size_t *len_r)
{
	if (b->p == NULL) {
		b->p = xstrdup("");
		b->n = 0;
	}
	for (size_t i = 0; i < b->n; i++) /* a NUL in a message is no text: the text is a string */
		if (b->p[i] == '\0')
			b->p[i] = ' ';
	*len_r = fold_into(b->p, b->n, b->p);
	return b->p;
}

void fts_text_extract(const void *msg, size_t len, struct fts_text *t)
{
	struct walk w = {0};
	entity(&w, &w.hdr, msg, len, 0, 0);
	t->hdr = finish(&w.hdr, &t->hdrlen);
	t->body = finish(&w.body, &t->bodylen);
	t->names = finish(&w.names, &t->nameslen);
}

void fts_text_free(struct fts_text *t)
{
	free(t->hdr);
	free(t->body);
	free(t->names);
	memset(t, 0, sizeof(*t));
}

/* --- matching and words ------------------------------------------------------------ */

int fts_text_contains(const struct fts_text *t, enum fts_field field, const char *needle,
		      size_t nlen)
{
	if (nlen == 0)
		return 1;
	if (field != FTS_HEADERS && memmem(t->body, t->bodylen, needle, nlen))
		return 1;
	if (field == FTS_BODY)
		return 0;
	if (memmem(t->hdr, t->hdrlen, needle, nlen))
		return 1;
	return field == FTS_TEXT && memmem(t->names, t->nameslen, needle, nlen) != NULL;
}

int fts_match(const void *msg, size_t len, enum fts_field field, const char *needle)
{
	struct fts_text t;
	size_t nl;
	char *f = fts_fold(needle, strlen(needle), &nl);
	fts_text_extract(msg, len, &t);
	int r = fts_text_contains(&t, field, f, nl);
	fts_text_free(&t);
	free(f);
	return r;
}

static int word_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80 ||
	       (c >= 'A' && c <= 'Z');
}

static void words_of(const char *s, size_t n, void (*fn)(const char *w, size_t len, void *ctx),
		     void *ctx)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && !word_byte((unsigned char)s[i]))
			i++;
		size_t st = i;
		while (i < n && word_byte((unsigned char)s[i]))
			i++;
		size_t l = i - st;
		if (l == 0)
			continue;
		if (l <= FTS_WORD_MAX) {
			fn(s + st, l, ctx);
			continue;
		}
		for (size_t o = 0; o + FTS_WORD_MAX <= l; o += FTS_WORD_MAX / 2)
			fn(s + st + o, FTS_WORD_MAX, ctx);
		fn(s + st + l - FTS_WORD_MAX, FTS_WORD_MAX, ctx);
	}
}

void fts_text_words(const struct fts_text *t, void (*fn)(const char *w, size_t len, void *ctx),
		    void *ctx)
{
	words_of(t->hdr, t->hdrlen, fn, ctx);
	words_of(t->body, t->bodylen, fn, ctx);
	words_of(t->names, t->nameslen, fn, ctx);
}
