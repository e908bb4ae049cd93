/* spam_token — the tokenizer of the spam filter (see spam_token.h): MIME
 * walking, decoding, word splitting and DSPAM's sparse windows. Pure: bytes
 * in, tokens out through a callback. */
#define _GNU_SOURCE
#include "index/spam_token.h"

#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* --- CRC-64, as DSPAM's _ds_getcrc64 ----------------------------------------- */

#define POLY64REV 0xd800000000000000ULL
/* crc_table[k][b]: the CRC of byte b followed by k zero bytes (slicing by 8) */
static uint64_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static int crc_ready;

static void crc_init(void)
{
	for (int i = 0; i < 256; i++) {
		uint64_t part = (uint64_t)i;
		for (int j = 0; j < 8; j++)
			part = (part & 1) ? (part >> 1) ^ POLY64REV : part >> 1;
		crc_table[0][i] = part;
	}
	for (int k = 1; k < 8; k++)
		for (int i = 0; i < 256; i++)
			crc_table[k][i] =
			    (crc_table[k - 1][i] >> 8) ^ crc_table[0][crc_table[k - 1][i] & 0xff];
	__atomic_store_n(&crc_ready, 1, __ATOMIC_RELEASE);
}

uint64_t spam_token_hash(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t crc = 0;
	size_t i = 0;

	if (!__atomic_load_n(&crc_ready, __ATOMIC_ACQUIRE))
		pthread_once(&crc_once, crc_init);
	for (; i + 8 <= len; i += 8) { /* 8 bytes a step, the same CRC */
		uint64_t w = (uint64_t)p[i] | (uint64_t)p[i + 1] << 8 | (uint64_t)p[i + 2] << 16 |
			     (uint64_t)p[i + 3] << 24 | (uint64_t)p[i + 4] << 32 |
			     (uint64_t)p[i + 5] << 40 | (uint64_t)p[i + 6] << 48 |
			     (uint64_t)p[i + 7] << 56;
		crc ^= w;
		crc = crc_table[7][crc & 0xff] ^ crc_table[6][(crc >> 8) & 0xff] ^
		      crc_table[5][(crc >> 16) & 0xff] ^ crc_table[4][(crc >> 24) & 0xff] ^
		      crc_table[3][(crc >> 32) & 0xff] ^ crc_table[2][(crc >> 40) & 0xff] ^
		      crc_table[1][(crc >> 48) & 0xff] ^ crc_table[0][crc >> 56];
	}
	for (; i < len; i++)
		crc = crc_table[0][(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return crc;
}

/* osb4's tokens: the CRC-64 finished with splitmix64's mixer (a bijection).
 * DSPAM's CRC-64 alone spreads short texts unevenly over its top bits, which
 * pick a token's bucket in the store (spam_db.h): one bucket in a hundred
 * held over 2 KB where the median held 180 bytes. sbph and osb keep the
 * plain CRC-64, so that what was learned with them stays comparable. */
uint64_t spam_token_hash_kind(enum spam_tokenizer kind, const void *data, size_t len)
{
	uint64_t z = spam_token_hash(data, len);
	if (kind != SPAM_TOK_OSB4)
		return z;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

int spam_tokenizer_parse(const char *name, enum spam_tokenizer *kind_r)
{
	if (strcasecmp(name, "sbph") == 0)
		*kind_r = SPAM_TOK_SBPH;
	else if (strcasecmp(name, "osb") == 0)
		*kind_r = SPAM_TOK_OSB;
	else if (strcasecmp(name, "osb4") == 0)
		*kind_r = SPAM_TOK_OSB4;
	else
		return -1;
	return 0;
}

const char *spam_tokenizer_name(enum spam_tokenizer kind)
{
	return kind == SPAM_TOK_OSB ? "osb" : kind == SPAM_TOK_OSB4 ? "osb4" : "sbph";
}

/* Inside, each token also says where it came from: its window mask (bit j:
 * the word j+1 places before is part of it; 0 the word alone), -1 for a URL
 * piece. SBPH emits mask 0 first for every word. */
typedef void tok_fn(uint64_t hash, const char *text, size_t len, int mask, void *ctx);

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (q == NULL) {
		fprintf(stderr, "spam: out of memory\n");
		abort();
	}
	return q;
}

/* --- words and windows ------------------------------------------------------- */

/* Delimiters: controls, white space and ASCII punctuation except $ ! ' % _. */
static int is_delim(unsigned char c, int received)
{
	if (c >= 0x80)
		return 0;
	if (isalnum(c))
		return 0;
	switch (c) {
	case '$':
	case '!':
	case '\'':
	case '%':
	case '_':
		return 0;
	case '.':
		return !received;
	default:
		return 1;
	}
}

struct window {
	char word[SPAM_WINDOW - 1][SPAM_WORD_MAX + 1]; /* word[0] is the one just before */
	size_t len[SPAM_WINDOW - 1];
	int n;
};

struct emitter {
	const char *heading;
	enum spam_tokenizer kind;
	tok_fn *fn;
	void *ctx;
	struct window win;
};

static void emit_word(struct emitter *em, const char *w, size_t wl)
{
	char key[SPAM_TOKEN_TEXT_MAX];
	size_t hl = 0;
	struct window *win = &em->win;

	if (em->heading != NULL) {
		hl = strlen(em->heading);
		if (hl > SPAM_HEADING_MAX)
			hl = SPAM_HEADING_MAX;
		memcpy(key, em->heading, hl);
		key[hl++] = '*';
	}
	for (unsigned mask = 0; mask < (1u << win->n); mask++) {
		static const unsigned char ones[16] = {0, 1, 1, 2, 1, 2, 2, 3,
						       1, 2, 2, 3, 2, 3, 3, 4};
		int bits = ones[mask & 15];
		if (em->kind == SPAM_TOK_OSB && bits != 1)
			continue;
		if (em->kind == SPAM_TOK_OSB4 && bits > 1)
			continue; /* the word alone and the pairs */
		size_t k = hl;
		int top = mask ? 31 - __builtin_clz(mask) : -1; /* oldest chosen word */
		for (int j = top; j >= 0; j--) {
			if (mask & (1u << j)) {
				memcpy(key + k, win->word[j], win->len[j]);
				k += win->len[j];
			} else {
				key[k++] = '#';
			}
			key[k++] = '+';
		}
		memcpy(key + k, w, wl);
		k += wl;
		key[k] = 0;
		em->fn(spam_token_hash_kind(em->kind, key, k), key, k, (int)mask, em->ctx);
	}
	for (int j = SPAM_WINDOW - 2; j > 0; j--) {
		memcpy(win->word[j], win->word[j - 1], win->len[j - 1]);
		win->len[j] = win->len[j - 1];
	}
	memcpy(win->word[0], w, wl);
	win->len[0] = wl;
	if (win->n < SPAM_WINDOW - 1)
		win->n++;
}

static int prefix_ci(const char *p, size_t avail, const char *pre)
{
	size_t n = strlen(pre);
	return avail >= n && strncasecmp(p, pre, n) == 0;
}

/* With osb4: the URL's host name ("UrlHost*www.example.co.uk", lower case)
 * and its registered domain, roughly ("UrlDom*example.co.uk": the last two
 * labels, three when the second-to-last is short and the last a country). */
static void emit_url_host(const char *p, size_t end, tok_fn *fn, void *ctx)
{
	char key[8 + SPAM_HOST_MAX + 1];
	size_t i = 0, hs, he;

	if (end >= 7 && strncasecmp(p, "http://", 7) == 0)
		i = 7;
	else if (end >= 8 && strncasecmp(p, "https://", 8) == 0)
		i = 8;
	hs = i;
	while (i < end && p[i] != '/' && p[i] != ':' && p[i] != '?' && p[i] != '#' && p[i] != '@')
		i++;
	if (i < end && p[i] == '@') { /* user@host: the host is after */
		hs = ++i;
		while (i < end && p[i] != '/' && p[i] != ':' && p[i] != '?' && p[i] != '#')
			i++;
	}
	he = i;
	while (he > hs && p[he - 1] == '.')
		he--;
	if (he == hs || he - hs > SPAM_HOST_MAX)
		return;
	size_t k = 8, hl = he - hs;
	memcpy(key, "UrlHost*", 8);
	for (size_t j = 0; j < hl; j++)
		key[k++] = (char)tolower((unsigned char)p[hs + j]);
	key[k] = 0;
	fn(spam_token_hash_kind(SPAM_TOK_OSB4, key, k), key, k, -1, ctx);
	/* the registered domain: count labels from the right */
	const char *h = key + 8;
	size_t dots[3] = {0, 0, 0}, nd = 0;
	for (size_t j = hl; j-- > 0 && nd < 3;)
		if (h[j] == '.')
			dots[nd++] = j;
	size_t start = 0;
	if (nd >= 2) {
		size_t last = hl - dots[0] - 1, second = dots[0] - dots[1] - 1;
		start = dots[1] + 1;
		if (last == 2 && second <= 3 && nd >= 3)
			start = dots[2] + 1;
		else if (last == 2 && second <= 3)
			start = 0;
	}
	int ip = 1;
	for (size_t j = 0; j < hl; j++)
		if (!(isdigit((unsigned char)h[j]) || h[j] == '.'))
			ip = 0;
	char dom[7 + SPAM_HOST_MAX + 1];
	size_t dl = 7;
	memcpy(dom, "UrlDom*", 7);
	if (ip) {
		memcpy(dom + dl, "ip", 2);
		dl += 2;
	} else {
		memcpy(dom + dl, h + start, hl - start);
		dl += hl - start;
	}
	dom[dl] = 0;
	fn(spam_token_hash_kind(SPAM_TOK_OSB4, dom, dl), dom, dl, -1, ctx);
}

/* A URL's pieces, each as "Url*piece", outside the window. Returns its length. */
static size_t emit_url(const char *p, size_t avail, enum spam_tokenizer kind, tok_fn *fn, void *ctx)
{
	char key[4 + SPAM_WORD_MAX + 1] = "Url*";
	size_t end = 0, i = 0;

	while (end < avail && (unsigned char)p[end] > 32 && p[end] != '"' && p[end] != '\'' &&
	       p[end] != '>' && p[end] != '<' && p[end] != ')')
		end++;
	if (kind == SPAM_TOK_OSB4)
		emit_url_host(p, end, fn, ctx);
	while (i < end) {
		while (i < end && is_delim((unsigned char)p[i], 0))
			i++;
		size_t s = i;
		while (i < end && !is_delim((unsigned char)p[i], 0))
			i++;
		size_t l = i - s;
		if (l > 0 && l <= SPAM_WORD_MAX) {
			memcpy(key + 4, p + s, l);
			key[4 + l] = 0;
			fn(spam_token_hash_kind(kind, key, 4 + l), key, 4 + l, -1, ctx);
		}
	}
	return end;
}

static void tokenize_text(const char *text, size_t len, const char *heading, int received,
			  enum spam_tokenizer kind, tok_fn *fn, void *ctx)
{
	struct emitter em = {.heading = heading, .kind = kind, .fn = fn, .ctx = ctx};
	size_t i = 0;

	while (i < len) {
		while (i < len && is_delim((unsigned char)text[i], received)) {
			i++;
			if (heading == NULL && i < len &&
			    (prefix_ci(text + i, len - i, "http://") ||
			     prefix_ci(text + i, len - i, "https://") ||
			     prefix_ci(text + i, len - i, "www.")))
				i += emit_url(text + i, len - i, kind, fn, ctx);
		}
		if (i == 0 && heading == NULL &&
		    (prefix_ci(text, len, "http://") || prefix_ci(text, len, "https://") ||
		     prefix_ci(text, len, "www."))) {
			i += emit_url(text, len, kind, fn, ctx);
			continue;
		}
		size_t s = i;
		while (i < len && !is_delim((unsigned char)text[i], received))
			i++;
		size_t l = i - s;
		if (l > 0 && l <= SPAM_WORD_MAX)
			emit_word(&em, text + s, l);
	}
}

/* The public callback has no mask. */
struct plain {
	spam_token_fn *fn;
	void *ctx;
};

static void plain_fn(uint64_t hash, const char *text, size_t len, int mask, void *ctx)
{
	struct plain *p = ctx;
	(void)mask;
	p->fn(hash, text, len, p->ctx);
}

void spam_tokenize_text(const char *text, size_t len, const char *heading, int received,
			enum spam_tokenizer kind, spam_token_fn *fn, void *ctx)
{
	struct plain p = {fn, ctx};
	tokenize_text(text, len, heading, received, kind, plain_fn, &p);
}

/* --- decoding -------------------------------------------------------------------- */

/* A growable byte string (the hard limit is the caller's). */
struct sb {
	char *p;
	size_t len, cap;
};

static void sb_add(struct sb *b, const void *data, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void sb_addc(struct sb *b, char c)
{
	sb_add(b, &c, 1);
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Quoted-printable; header = 1 for RFC 2047's Q ('_' is a space). */
static void decode_qp(const char *s, size_t n, int header, struct sb *out)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '=' && i + 1 < n) {
			if (s[i + 1] == '\n') {
				i += 1;
				continue;
			}
			if (s[i + 1] == '\r' && i + 2 < n && s[i + 2] == '\n') {
				i += 2;
				continue;
			}
			if (i + 2 < n) {
				int h = hexval((unsigned char)s[i + 1]),
				    l = hexval((unsigned char)s[i + 2]);
				if (h >= 0 && l >= 0) {
					sb_addc(out, (char)(h << 4 | l));
					i += 2;
					continue;
				}
			}
		}
		sb_addc(out, header && c == '_' ? ' ' : c);
	}
}

static void decode_b64(const char *s, size_t n, struct sb *out)
{
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int v;
		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '+')
			v = 62;
		else if (c == '/')
			v = 63;
		else if (c == '=')
			break;
		else
			continue;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			sb_addc(out, (char)(acc >> bits & 0xff));
		}
	}
}

static int charset_is_utf8(const char *cs)
{
	return cs[0] == 0 || strcasecmp(cs, "utf-8") == 0 || strcasecmp(cs, "utf8") == 0 ||
	       strcasecmp(cs, "us-ascii") == 0 || strcasecmp(cs, "ascii") == 0;
}

/* Appends s converted from charset to UTF-8 (unconvertible bytes dropped);
 * the bytes as they are when iconv does not know the charset. */
static void to_utf8(const char *charset, const char *s, size_t n, struct sb *out)
{
	iconv_t cd;

	if (charset_is_utf8(charset) || (cd = iconv_open("UTF-8", charset)) == (iconv_t)-1) {
		sb_add(out, s, n);
		return;
	}
	char *in = (char *)s;
	size_t inleft = n;
	char buf[4096];
	while (inleft > 0) {
		char *o = buf;
		size_t oleft = sizeof(buf);
		size_t r = iconv(cd, &in, &inleft, &o, &oleft);
		sb_add(out, buf, sizeof(buf) - oleft);
		if (r == (size_t)-1) {
			if (errno == E2BIG)
				continue;
			/* EILSEQ / EINVAL: skip the bad byte */
			in++;
			inleft--;
		}
	}
	char *o = buf;
	size_t oleft = sizeof(buf);
	iconv(cd, NULL, NULL, &o, &oleft);
	sb_add(out, buf, sizeof(buf) - oleft);
	iconv_close(cd);
}

/* RFC 2047: decodes =?charset?B|Q?text?= words in a header value. */
static void decode_2047(const char *v, size_t n, struct sb *out)
{
	size_t i = 0;
	while (i < n) {
		if (i + 1 < n && v[i] == '=' && v[i + 1] == '?') {
			size_t cs = i + 2, ce = cs;
			while (ce < n && v[ce] != '?' && ce - cs < 40)
				ce++;
			if (ce + 2 < n && v[ce] == '?' && v[ce + 2] == '?') {
				char enc = (char)toupper((unsigned char)v[ce + 1]);
				size_t ts = ce + 3, te = ts;
				while (te + 1 < n && !(v[te] == '?' && v[te + 1] == '='))
					te++;
				if (te + 1 < n && (enc == 'B' || enc == 'Q')) {
					char charset[48];
					size_t cl = ce - cs;
					memcpy(charset, v + cs, cl);
					charset[cl] = 0;
					char *star = strchr(charset, '*'); /* RFC 2231 language */
					if (star)
						*star = 0;
					struct sb raw = {0};
					if (enc == 'B')
						decode_b64(v + ts, te - ts, &raw);
					else
						decode_qp(v + ts, te - ts, 1, &raw);
					if (raw.len)
						to_utf8(charset, raw.p, raw.len, out);
					free(raw.p);
					i = te + 2;
					/* white space between two encoded words is dropped */
					size_t k = i;
					while (k < n && (v[k] == ' ' || v[k] == '\t'))
						k++;
					if (k + 1 < n && v[k] == '=' && v[k + 1] == '?')
						i = k;
					continue;
				}
			}
		}
		sb_addc(out, v[i]);
		i++;
	}
}

/* Removes HTML comments and short or closing tags (DSPAM's prefilter), and
 * turns entities into spaces. The contents of the other tags (attributes:
 * "FONT color=#0000ff size=2") move to markup, to be tokenized apart from the
 * text. In place; returns the new length. */
static size_t strip_html(char *s, size_t n, struct sb *markup)
{
	size_t r = 0, w = 0;
	while (r < n) {
		if (s[r] == '<') {
			if (r + 3 < n && memcmp(s + r, "<!--", 4) == 0) {
				char *e = memmem(s + r + 4, n - r - 4, "-->", 3);
				r = e ? (size_t)(e - s) + 3 : n;
				s[w++] = ' ';
				continue;
			}
			/* bounded: a '<' with no '>' near it is text (no quadratic scan) */
			char *e = memchr(s + r, '>', n - r < SPAM_TAG_MAX ? n - r : SPAM_TAG_MAX);
			if (e != NULL) {
				size_t tl = (size_t)(e - (s + r));
				char *sp = memchr(s + r, ' ', tl);
				if (tl <= 15 || s[r + 1] == '/' || s[r + 1] == '!' || sp == NULL) {
					r += tl + 1;
					s[w++] = ' ';
					continue;
				}
				sb_add(markup, s + r + 1, tl - 1);
				sb_addc(markup, ' ');
				r += tl + 1;
				s[w++] = ' ';
				continue;
			}
			s[w++] = ' ';
			r++;
			continue;
		}
		if (s[r] == '&') {
			size_t k = r + 1;
			while (k < n && k - r < 10 && (isalnum((unsigned char)s[k]) || s[k] == '#'))
				k++;
			if (k < n && s[k] == ';' && k > r + 1) {
				r = k + 1;
				s[w++] = ' ';
				continue;
			}
		}
		s[w++] = s[r++];
	}
	return w;
}

/* The words inside HTML tags, each alone as "Html*word", outside the
 * windows (URLs as in text). Formatting is not language: in the text's
 * windows one tag gave dozens of windows ("FONT+#+0000ff", "color+#+We", ...)
 * that all tell the same thing, and chi-square counted each as evidence. */
static void tokenize_markup(const char *text, size_t len, enum spam_tokenizer kind, tok_fn *fn,
			    void *ctx)
{
	char key[5 + SPAM_WORD_MAX + 1] = "Html*";
	size_t i = 0;

	while (i < len) {
		while (i < len && is_delim((unsigned char)text[i], 0)) {
			i++;
			if (i < len && (prefix_ci(text + i, len - i, "http://") ||
					prefix_ci(text + i, len - i, "https://") ||
					prefix_ci(text + i, len - i, "www.")))
				i += emit_url(text + i, len - i, kind, fn, ctx);
		}
		size_t st = i;
		while (i < len && !is_delim((unsigned char)text[i], 0))
			i++;
		size_t l = i - st;
		if (l > 0 && l <= SPAM_WORD_MAX) {
			memcpy(key + 5, text + st, l);
			key[5 + l] = 0;
			fn(spam_token_hash_kind(kind, key, 5 + l), key, 5 + l, -1, ctx);
		}
	}
}

/* --- MIME ------------------------------------------------------------------------ */

struct walk {
	enum spam_tokenizer kind;
	tok_fn *fn;
	void *ctx;
	size_t text_left;   /* SPAM_TEXT_MAX budget */
	size_t header_left; /* SPAM_HEADER_MAX budget */
	int top;	    /* in the message's own header */
	unsigned hops;	    /* Received fields of the message's own header */
	struct sb *shape;   /* osb4: the MIME types, in order, with their depth */
};

struct part_info {
	char type[64]; /* "text/plain", lower case; "" if absent */
	char charset[48];
	char boundary[128];
	char cte[32]; /* lower case */
	int attachment;
};

/* Value of a parameter (name=value or name="value") in a header value. */
static void get_param(const char *v, const char *name, char *out, size_t outsize)
{
	size_t nl = strlen(name);
	const char *p = v;

	out[0] = 0;
	while ((p = strchr(p, ';')) != NULL) {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, name, nl) != 0)
			continue;
		const char *q = p + nl;
		while (*q == ' ' || *q == '\t')
			q++;
		if (*q != '=')
			continue;
		q++;
		while (*q == ' ' || *q == '\t')
			q++;
		size_t k = 0;
		if (*q == '"') {
			q++;
			while (*q && *q != '"' && k + 1 < outsize)
				out[k++] = *q++;
		} else {
			while (*q && *q != ';' && *q != ' ' && *q != '\t' && k + 1 < outsize)
				out[k++] = *q++;
		}
		out[k] = 0;
		return;
	}
}

static void lower_token(const char *v, char *out, size_t outsize)
{
	size_t k = 0;
	while (*v == ' ' || *v == '\t')
		v++;
	while (*v && *v != ';' && *v != ' ' && *v != '\t' && k + 1 < outsize)
		out[k++] = (char)tolower((unsigned char)*v++);
	out[k] = 0;
}

static int ignored_field(const char *name)
{
	/* verdicts of filters, ours and others': they must not teach the filter */
	return strncasecmp(name, "X-Spam-", 7) == 0 || strncasecmp(name, "X-DSPAM-", 8) == 0 ||
	       strncasecmp(name, "X-Bogosity", 10) == 0;
}

static void field(struct walk *wk, const char *name, const char *value, size_t vlen,
		  struct part_info *pi)
{
	if (strcasecmp(name, "Content-Type") == 0) {
		lower_token(value, pi->type, sizeof(pi->type));
		get_param(value, "charset", pi->charset, sizeof(pi->charset));
		get_param(value, "boundary", pi->boundary, sizeof(pi->boundary));
	} else if (strcasecmp(name, "Content-Transfer-Encoding") == 0) {
		lower_token(value, pi->cte, sizeof(pi->cte));
	} else if (strcasecmp(name, "Content-Disposition") == 0) {
		char d[32];
		lower_token(value, d, sizeof(d));
		pi->attachment = strcmp(d, "attachment") == 0;
	}
	if (ignored_field(name))
		return;
	if (wk->top && strcasecmp(name, "Received") == 0)
		wk->hops++;
	if (vlen > wk->header_left)
		vlen = wk->header_left;
	wk->header_left -= vlen;
	if (vlen == 0)
		return;
	struct sb dec = {0};
	decode_2047(value, vlen, &dec);
	if (dec.len)
		tokenize_text(dec.p, dec.len, name, strcasecmp(name, "Received") == 0, wk->kind,
			      wk->fn, wk->ctx);
	free(dec.p);
}

#define FIELD_VALUE_MAX 8192

/* Reads the header block of an entity; returns the offset of its body. */
static size_t parse_header(struct walk *wk, const char *d, size_t n, struct part_info *pi)
{
	size_t i = 0;
	char name[SPAM_HEADING_MAX + 1];
	struct sb val = {0};
	int have = 0;

	memset(pi, 0, sizeof(*pi));
	while (i < n) {
		const char *nl = memchr(d + i, '\n', n - i);
		size_t le = nl ? (size_t)(nl - d) : n; /* line end */
		size_t ll = le - i;
		if (ll > 0 && d[le - 1] == '\r')
			ll--;
		size_t next = nl ? le + 1 : n;
		if (ll == 0) { /* the empty line: the body starts */
			i = next;
			break;
		}
		if (d[i] == ' ' || d[i] == '\t') {
			if (have && val.len < FIELD_VALUE_MAX) {
				sb_addc(&val, ' ');
				sb_add(&val, d + i, ll < FIELD_VALUE_MAX ? ll : FIELD_VALUE_MAX);
			}
			i = next;
			continue;
		}
		if (have)
			field(wk, name, val.p ? val.p : "", val.len, pi);
		have = 0;
		val.len = 0;
		if (val.p)
			val.p[0] = 0;
		const char *colon = memchr(d + i, ':', ll);
		if (colon == NULL) {
			/* not a header line (an mbox "From " line, or a body without a header) */
			if (i == 0 && ll >= 5 && memcmp(d, "From ", 5) == 0) {
				i = next;
				continue;
			}
			break;
		}
		size_t nlen = (size_t)(colon - (d + i));
		if (nlen == 0 || memchr(d + i, ' ', nlen) || memchr(d + i, '\t', nlen)) {
			i = next;
			continue;
		}
		if (nlen > SPAM_HEADING_MAX)
			nlen = SPAM_HEADING_MAX;
		memcpy(name, d + i, nlen);
		name[nlen] = 0;
		size_t vs = (size_t)(colon - d) + 1;
		size_t vl = le - vs;
		if (vl > 0 && d[vs + vl - 1] == '\r')
			vl--;
		sb_add(&val, d + vs, vl < FIELD_VALUE_MAX ? vl : FIELD_VALUE_MAX);
		have = 1;
		i = next;
	}
	if (have)
		field(wk, name, val.p ? val.p : "", val.len, pi);
	free(val.p);
	return i;
}

static void entity(struct walk *wk, const char *d, size_t n, int depth, const char *default_type);

static void text_body(struct walk *wk, const char *d, size_t n, const struct part_info *pi,
		      int html)
{
	struct sb raw = {0}, utf = {0};
	const char *s = d;
	size_t sl = n;

	if (wk->text_left == 0)
		return;
	/* no more encoded input than can give the text still wanted */
	if (n > 3 * wk->text_left + 16)
		n = 3 * wk->text_left + 16;
	if (strcmp(pi->cte, "quoted-printable") == 0) {
		decode_qp(d, n, 0, &raw);
		s = raw.p ? raw.p : "";
		sl = raw.len;
	} else if (strcmp(pi->cte, "base64") == 0) {
		decode_b64(d, n, &raw);
		s = raw.p ? raw.p : "";
		sl = raw.len;
	}
	if (sl > wk->text_left)
		sl = wk->text_left;
	wk->text_left -= sl;
	to_utf8(pi->charset, s, sl, &utf);
	if (utf.len) {
		struct sb markup = {0};
		size_t l = html ? strip_html(utf.p, utf.len, &markup) : utf.len;
		tokenize_text(utf.p, l, NULL, 0, wk->kind, wk->fn, wk->ctx);
		if (markup.len)
			tokenize_markup(markup.p, markup.len, wk->kind, wk->fn, wk->ctx);
		free(markup.p);
	}
	free(raw.p);
	free(utf.p);
}

/* Finds the next line "--boundary" at or after off; returns its offset or n. */
static size_t find_boundary(const char *d, size_t n, size_t off, const char *b, size_t bl)
{
	size_t i = off;
	while (i + 2 + bl <= n) {
		if ((i == 0 || d[i - 1] == '\n') && d[i] == '-' && d[i + 1] == '-' &&
		    memcmp(d + i + 2, b, bl) == 0)
			return i;
		const char *nl = memchr(d + i, '\n', n - i);
		if (nl == NULL)
			break;
		i = (size_t)(nl - d) + 1;
	}
	return n;
}

static void multipart(struct walk *wk, const char *d, size_t n, int depth,
		      const struct part_info *pi)
{
	size_t bl = strlen(pi->boundary);
	const char *def =
	    strcmp(pi->type, "multipart/digest") == 0 ? "message/rfc822" : "text/plain";
	size_t pos = find_boundary(d, n, 0, pi->boundary, bl);

	while (pos < n) {
		size_t after = pos + 2 + bl;
		if (after + 1 < n && d[after] == '-' && d[after + 1] == '-')
			break; /* closing delimiter */
		const char *nl = memchr(d + after, '\n', n - after);
		if (nl == NULL)
			break;
		size_t start = (size_t)(nl - d) + 1;
		size_t end = find_boundary(d, n, start, pi->boundary, bl);
		size_t pl = end - start;
		/* the CRLF before the delimiter belongs to it */
		if (pl > 0 && d[start + pl - 1] == '\n')
			pl--;
		if (pl > 0 && d[start + pl - 1] == '\r')
			pl--;
		entity(wk, d + start, pl, depth + 1, def);
		pos = end;
	}
}

static void entity(struct walk *wk, const char *d, size_t n, int depth, const char *default_type)
{
	struct part_info pi;
	wk->top = depth == 0;
	size_t body = parse_header(wk, d, n, &pi);
	wk->top = 0;

	if (pi.type[0] == 0)
		snprintf(pi.type, sizeof(pi.type), "%s", default_type);
	if (wk->shape != NULL && wk->shape->len < SPAM_WORD_MAX * 8) {
		char one[80];
		int l =
		    snprintf(one, sizeof(one), "%s%d%s", wk->shape->len ? "," : "", depth, pi.type);
		if (l > 0)
			sb_add(wk->shape, one,
			       (size_t)l < sizeof(one) ? (size_t)l : sizeof(one) - 1);
	}
	if (depth >= SPAM_DEPTH_MAX)
		return;
	if (strncmp(pi.type, "multipart/", 10) == 0) {
		if (pi.boundary[0] == 0) {
			/* no boundary: read it as text */
			snprintf(pi.type, sizeof(pi.type), "text/plain");
		} else {
			multipart(wk, d + body, n - body, depth, &pi);
			return;
		}
	}
	if (strcmp(pi.type, "message/rfc822") == 0 || strcmp(pi.type, "message/global") == 0) {
		entity(wk, d + body, n - body, depth + 1, "text/plain");
		return;
	}
	if (strncmp(pi.type, "text/", 5) == 0) {
		if (pi.attachment && strcmp(pi.type, "text/plain") != 0 &&
		    strcmp(pi.type, "text/html") != 0)
			return;
		text_body(wk, d + body, n - body, &pi, strcmp(pi.type, "text/html") == 0);
		return;
	}
	/* images, archives, applications: their header fields count, not their bytes */
}

/* osb4: the byte 4-grams of the message's first SPAM_GRAM_BYTES bytes (an
 * mbox "From " line and the fields of other filters' verdicts left out), as
 * "G*" and the 4 bytes: what words miss (odd spellings, header layout, the
 * mailer's habits), as Goodman & Yih's and Sculley's byte n-grams. */
static void emit_grams(const char *d, size_t n, tok_fn *fn, void *ctx)
{
	char buf[SPAM_GRAM_BYTES];
	size_t bl = 0, i = 0;
	int in_header = 1, skipping = 0;

	size_t cap = sizeof(buf);
	while (i < n && bl < cap) {
		const char *nl = memchr(d + i, '\n', n - i);
		size_t le = nl ? (size_t)(nl - d) + 1 : n;
		if (in_header) {
			if (i == 0 && le - i >= 5 && memcmp(d, "From ", 5) == 0) {
				i = le;
				continue;
			}
			if (d[i] == '\n' || (d[i] == '\r' && i + 1 < n && d[i + 1] == '\n')) {
				in_header = 0;
			} else if (d[i] != ' ' && d[i] != '\t') {
				char name[SPAM_HEADING_MAX + 1];
				size_t k = 0;
				while (i + k < le && d[i + k] != ':' && k < SPAM_HEADING_MAX) {
					name[k] = d[i + k];
					k++;
				}
				name[k] = 0;
				skipping = ignored_field(name);
			}
			if (skipping) {
				i = le;
				continue;
			}
		}
		size_t take = le - i;
		if (take > cap - bl)
			take = cap - bl;
		memcpy(buf + bl, d + i, take);
		for (size_t k = bl; k < bl + take; k++)
			if (buf[k] == 0)
				buf[k] = ' '; /* a token's text is a C string */
		bl += take;
		i = le;
	}
	for (size_t j = 0; j + 4 <= bl; j++) {
		char key[7] = {'G', '*', buf[j], buf[j + 1], buf[j + 2], buf[j + 3], 0};
		fn(spam_token_hash_kind(SPAM_TOK_OSB4, key, 6), key, 6, -1, ctx);
	}
}

static void tokenize_message(const void *data, size_t len, enum spam_tokenizer kind, tok_fn *fn,
			     void *ctx)
{
	struct sb shape = {0};
	struct walk wk = {.kind = kind,
			  .fn = fn,
			  .ctx = ctx,
			  .text_left = SPAM_TEXT_MAX,
			  .header_left = SPAM_HEADER_MAX,
			  .shape = kind == SPAM_TOK_OSB4 ? &shape : NULL};

	if (kind == SPAM_TOK_OSB4)
		emit_grams(data, len, fn, ctx);
	entity(&wk, data, len, 0, "text/plain");
	if (kind == SPAM_TOK_OSB4) {
		/* the message's shape: its MIME tree, and how many hops it made */
		char key[SPAM_TOKEN_TEXT_MAX];
		int l = snprintf(key, sizeof(key), "Mime*%s", shape.p ? shape.p : "");
		if (l > 0) {
			size_t kl = (size_t)l < sizeof(key) ? (size_t)l : sizeof(key) - 1;
			fn(spam_token_hash_kind(SPAM_TOK_OSB4, key, kl), key, kl, -1, ctx);
		}
		l = snprintf(key, sizeof(key), "Hops*%u", wk.hops < 20 ? wk.hops : 20);
		fn(spam_token_hash_kind(SPAM_TOK_OSB4, key, (size_t)l), key, (size_t)l, -1, ctx);
	}
	free(shape.p);
}

void spam_tokenize_message(const void *data, size_t len, enum spam_tokenizer kind,
			   spam_token_fn *fn, void *ctx)
{
	struct plain p = {fn, ctx};
	tokenize_message(data, len, kind, plain_fn, &p);
}

/* --- token sets ------------------------------------------------------------------ */

struct entry {
	uint64_t hash;
	size_t off;   /* text offset in the arena, or SIZE_MAX */
	uint32_t pos; /* word position (SPAM_COLLECT_WINDOWS), or UINT32_MAX for a URL piece */
	int mask;     /* window mask, -1 for a URL piece */
};

struct collect {
	struct entry *e;
	size_t n, cap;
	int flags;
	uint32_t npos;
	struct spam_tokens *set;
};

static void collect_one(uint64_t hash, const char *text, size_t len, int mask, void *ctx)
{
	struct collect *c = ctx;
	struct spam_tokens *set = c->set;

	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 1024;
		c->e = xrealloc(c->e, c->cap * sizeof(*c->e));
	}
	struct entry *e = &c->e[c->n++];
	e->hash = hash;
	e->off = SIZE_MAX;
	e->mask = mask;
	e->pos = UINT32_MAX;
	if (mask == 0) /* SBPH emits mask 0 first at every word */
		c->npos++;
	if (mask >= 0 && c->npos > 0)
		e->pos = c->npos - 1;
	if (c->flags & SPAM_COLLECT_TEXT) {
		if (set->arena_len + len + 1 > set->arena_cap) {
			size_t cap = set->arena_cap ? set->arena_cap : 8192;
			while (cap < set->arena_len + len + 1)
				cap *= 2;
			set->arena = xrealloc(set->arena, cap);
			set->arena_cap = cap;
		}
		memcpy(set->arena + set->arena_len, text, len + 1);
		e->off = set->arena_len;
		set->arena_len += len + 1;
	}
}

/* Sorts by hash, stably (LSD radix, a byte a pass): among equal hashes the
 * first occurrence stays first, so its text is the one kept. */
static void sort_entries(struct entry *e, size_t n)
{
	size_t count[8][256];
	struct entry *tmp, *src = e, *dst;

	if (n < 2)
		return;
	memset(count, 0, sizeof(count));
	for (size_t i = 0; i < n; i++)
		for (int b = 0; b < 8; b++)
			count[b][(e[i].hash >> (8 * b)) & 0xff]++;
	tmp = xrealloc(NULL, n * sizeof(*tmp));
	dst = tmp;
	for (int b = 0; b < 8; b++) {
		size_t sum = 0;
		if (count[b][(e[0].hash >> (8 * b)) & 0xff] == n)
			continue; /* all the same in this byte */
		for (int v = 0; v < 256; v++) {
			size_t c = count[b][v];
			count[b][v] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[count[b][(src[i].hash >> (8 * b)) & 0xff]++] = src[i];
		struct entry *t = src;
		src = dst;
		dst = t;
	}
	if (src != e)
		memcpy(e, src, n * sizeof(*e));
	free(tmp);
}

/* Sorts hashes alone (LSD radix, a byte a pass): a third of the memory
 * traffic of sorting entries, for the sets classifying and learning use. */
static void sort_hashes(uint64_t *h, size_t n)
{
	size_t count[8][256];
	uint64_t *tmp, *src = h, *dst;

	if (n < 2)
		return;
	memset(count, 0, sizeof(count));
	for (size_t i = 0; i < n; i++)
		for (int b = 0; b < 8; b++)
			count[b][(h[i] >> (8 * b)) & 0xff]++;
	tmp = xrealloc(NULL, n * sizeof(*tmp));
	dst = tmp;
	for (int b = 0; b < 8; b++) {
		size_t sum = 0;
		if (count[b][(h[0] >> (8 * b)) & 0xff] == n)
			continue;
		for (int v = 0; v < 256; v++) {
			size_t c = count[b][v];
			count[b][v] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[count[b][(src[i] >> (8 * b)) & 0xff]++] = src[i];
		uint64_t *t = src;
		src = dst;
		dst = t;
	}
	if (src != h)
		memcpy(h, src, n * sizeof(*h));
	free(tmp);
}

static void build_set(struct spam_tokens *set, struct entry *e, size_t n, int flags, uint32_t npos)
{
	int want_text = flags & SPAM_COLLECT_TEXT;

	if (flags & SPAM_COLLECT_UNSORTED) {
		set->hash = xrealloc(NULL, n * sizeof(*set->hash));
		for (size_t i = 0; i < n; i++)
			set->hash[i] = e[i].hash;
		set->n = set->cap = n;
		return;
	}
	if (!(flags & (SPAM_COLLECT_TEXT | SPAM_COLLECT_WINDOWS))) {
		/* hashes only: sort them alone and keep one of each */
		set->hash = xrealloc(NULL, n * sizeof(*set->hash));
		for (size_t i = 0; i < n; i++)
			set->hash[i] = e[i].hash;
		sort_hashes(set->hash, n);
		set->n = 0;
		for (size_t i = 0; i < n; i++)
			if (set->n == 0 || set->hash[set->n - 1] != set->hash[i])
				set->hash[set->n++] = set->hash[i];
		set->cap = n;
		return;
	}

	sort_entries(e, n);
	set->hash = xrealloc(NULL, n * sizeof(*set->hash));
	set->text = want_text ? xrealloc(NULL, n * sizeof(*set->text)) : NULL;
	set->n = 0;
	set->cap = n;
	if (flags & SPAM_COLLECT_WINDOWS) {
		set->nwin = npos;
		set->win =
		    xrealloc(NULL, (npos ? npos : 1) * SPAM_WINDOW_MASKS * sizeof(*set->win));
		memset(set->win, 0xff, npos * SPAM_WINDOW_MASKS * sizeof(*set->win));
		set->level = xrealloc(NULL, n ? n : 1);
	}
	for (size_t i = 0; i < n; i++) {
		if (set->n == 0 || set->hash[set->n - 1] != e[i].hash) {
			set->hash[set->n] = e[i].hash;
			if (set->text)
				/* arena pointers are fixed only now that it stopped growing */
				set->text[set->n] =
				    e[i].off == SIZE_MAX ? NULL : set->arena + e[i].off;
			if (set->level)
				set->level[set->n] = UINT8_MAX;
			set->n++;
		}
		if (set->level) {
			size_t k = set->n - 1;
			uint8_t lv =
			    e[i].mask > 0 ? (uint8_t)__builtin_popcount((unsigned)e[i].mask) : 0;
			if (lv < set->level[k])
				set->level[k] = lv;
			if (e[i].pos != UINT32_MAX)
				set->win[(size_t)e[i].pos * SPAM_WINDOW_MASKS +
					 (unsigned)e[i].mask] = (uint32_t)k;
		}
	}
}

void spam_tokens_collect(struct spam_tokens *set, const void *data, size_t len,
			 enum spam_tokenizer kind, int flags)
{
	struct collect c = {.flags = flags, .set = set};

	memset(set, 0, sizeof(*set));
	if (kind != SPAM_TOK_SBPH)
		c.flags &= ~SPAM_COLLECT_WINDOWS; /* OSB's windows lack the word alone */
	tokenize_message(data, len, kind, collect_one, &c);
	build_set(set, c.e, c.n, c.flags, c.npos);
	free(c.e);
}

void spam_tokens_from_hashes(struct spam_tokens *set, const uint64_t *hash, size_t n)
{
	struct entry *e = xrealloc(NULL, n * sizeof(*e));

	memset(set, 0, sizeof(*set));
	for (size_t i = 0; i < n; i++) {
		e[i].hash = hash[i];
		e[i].off = SIZE_MAX;
		e[i].pos = UINT32_MAX;
		e[i].mask = -1;
	}
	build_set(set, e, n, 0, 0);
	free(e);
}

long spam_tokens_find(const struct spam_tokens *set, uint64_t hash)
{
	size_t lo = 0, hi = set->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (set->hash[mid] == hash)
			return (long)mid;
		if (set->hash[mid] < hash)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

void spam_tokens_free(struct spam_tokens *set)
{
	free(set->hash);
	free(set->text);
	free(set->arena);
	free(set->win);
	free(set->level);
	memset(set, 0, sizeof(*set));
}
