/* sieve_mail — what Sieve tests read of a message: header fields (unfolded,
 * RFC 2047 decoded to UTF-8 through libetpan), addresses in them, MIME body
 * parts decoded to UTF-8 (libetpan's MIME parser and decoders, the same
 * library imapd reads BODYSTRUCTURE with), and dates (RFC 5260).
 *
 * The header is split once (at most SV_MAX_FIELDS fields are looked at);
 * the MIME tree is parsed only when a body test asks, and only over the
 * first SV_MAX_BODY bytes of the message.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <libetpan/libetpan.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "index/sieve_priv.h"
#include "lib/array.h"
#include "lib/xmalloc.h"

#define SV_MAX_FIELDS 1000
#define SV_MAX_BODY (4 * 1024 * 1024)
#define SV_MAX_PARTS 200

struct field {
	const char *name; /* points into the message */
	size_t nlen;
	const char *val; /* raw, folded, without the CRLF at the end */
	size_t vlen;
};

struct sv_mail {
	const char *data;
	size_t len;
	size_t body_off;
	struct field *f;
	size_t n, cap;
};

struct sv_mail *sv_mail_open(const char *data, size_t len)
{
	struct sv_mail *m = xcalloc(1, sizeof(*m));
	size_t i = 0;
	m->data = data;
	m->len = len;
	while (i < len) {
		const char *line = data + i;
		const char *nl = memchr(line, '\n', len - i);
		size_t ll = nl ? (size_t)(nl - line) : len - i;
		size_t next = i + ll + (nl ? 1 : 0);
		size_t trimmed = ll > 0 && line[ll - 1] == '\r' ? ll - 1 : ll;
		if (trimmed == 0) { /* the blank line */
			i = next;
			break;
		}
		if ((line[0] == ' ' || line[0] == '\t') && m->n > 0) {
			/* a continuation: the field grows to the end of this line */
			struct field *f = &m->f[m->n - 1];
			f->vlen = (size_t)(line + trimmed - f->val);
		} else {
			const char *colon = memchr(line, ':', trimmed);
			if (colon != NULL && m->n < SV_MAX_FIELDS) {
				struct field *f = ARRAY_PUSH(m->f, m->n, m->cap);
				size_t nl2 = (size_t)(colon - line);
				while (nl2 > 0 && (line[nl2 - 1] == ' ' || line[nl2 - 1] == '\t'))
					nl2--;
				f->name = line;
				f->nlen = nl2;
				f->val = colon + 1;
				f->vlen = (size_t)(line + trimmed - f->val);
			}
		}
		i = next;
	}
	m->body_off = i;
	return m;
}

void sv_mail_free(struct sv_mail **m)
{
	if (m == NULL || *m == NULL)
		return;
	free((*m)->f);
	free(*m);
	*m = NULL;
}

/* Unfolds (CRLF before white space goes) and trims leading and trailing
 * white space, into a new string. */
static char *unfold(const char *v, size_t n, size_t *len_r)
{
	char *out = xmalloc(n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i] == '\r' || v[i] == '\n')
			continue;
		out[o++] = v[i];
	}
	size_t s = 0;
	while (s < o && (out[s] == ' ' || out[s] == '\t'))
		s++;
	while (o > s && (out[o - 1] == ' ' || out[o - 1] == '\t'))
		o--;
	memmove(out, out + s, o - s);
	out[o - s] = '\0';
	*len_r = o - s;
	return out;
}

/* RFC 2047 words into UTF-8; the text as it was when it is not encoded or
 * cannot be decoded. */
static char *decode_2047(char *s, size_t *len)
{
	if (strstr(s, "=?") == NULL)
		return s;
	size_t idx = 0;
	char *res = NULL;
	if (mailmime_encoded_phrase_parse("iso-8859-1", s, *len, &idx, "utf-8", &res) ==
		MAILIMF_NO_ERROR &&
	    res != NULL) {
		free(s);
		*len = strlen(res);
		char *copy = xstrndup(res, *len);
		free(res);
		return copy;
	}
	free(res);
	return s;
}

int sv_mail_header(struct sv_mail *m, const char *name, int raw,
		   int (*cb)(const char *val, size_t len, void *ctx), void *ctx)
{
	size_t nlen = strlen(name);
	for (size_t i = 0; i < m->n; i++) {
		const struct field *f = &m->f[i];
		if (f->nlen != nlen || strncasecmp(f->name, name, nlen) != 0)
			continue;
		size_t len;
		char *v = unfold(f->val, f->vlen, &len);
		if (!raw)
			v = decode_2047(v, &len);
		int r = cb(v, len, ctx);
		free(v);
		if (r != 0)
			return r;
	}
	return 0;
}

size_t sv_mail_header_count(struct sv_mail *m, const char *name)
{
	size_t nlen = strlen(name), c = 0;
	for (size_t i = 0; i < m->n; i++)
		if (m->f[i].nlen == nlen && strncasecmp(m->f[i].name, name, nlen) == 0)
			c++;
	return c;
}

/* --- addresses ------------------------------------------------------------------- */

/* One address from a piece of an address list: the addr-spec inside <>, or
 * the piece without comments; split at the last '@'. */
static int one_address(const char *s, size_t n,
		       int (*cb)(const char *local, size_t llen, const char *domain, size_t dlen,
				 void *ctx),
		       void *ctx)
{
	char buf[1024];
	size_t o = 0;
	const char *lt = NULL, *gt = NULL;
	int inq = 0, depth = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n) {
			i++;
			continue;
		}
		if (s[i] == '"' && depth == 0)
			inq = !inq;
		else if (!inq && s[i] == '(')
			depth++;
		else if (!inq && s[i] == ')' && depth > 0)
			depth--;
		else if (!inq && depth == 0 && s[i] == '<')
			lt = s + i;
		else if (!inq && depth == 0 && s[i] == '>' && lt != NULL)
			gt = s + i;
	}
	const char *a = s, *e = s + n;
	if (lt != NULL && gt != NULL && gt > lt) {
		a = lt + 1;
		e = gt;
		/* a source route "<@a,@b:x@y>" */
		const char *colon = memchr(a, ':', (size_t)(e - a));
		if (a < e && *a == '@' && colon != NULL)
			a = colon + 1;
	}
	depth = 0;
	for (const char *p = a; p < e && o < sizeof(buf) - 1; p++) {
		if (*p == '(')
			depth++;
		else if (*p == ')' && depth > 0)
			depth--;
		else if (depth == 0 && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			buf[o++] = *p;
	}
	if (o == 0)
		return 0;
	buf[o] = '\0';
	char *at = strrchr(buf, '@');
	if (at == NULL)
		return cb(buf, o, "", 0, ctx);
	return cb(buf, (size_t)(at - buf), at + 1, o - (size_t)(at - buf) - 1, ctx);
}

/* 1 if a piece of an address list is one valid address: an addr-spec in
 * <> with only white space and comments after it, or a bare addr-spec;
 * local part and domain not empty, no white space in them. */
static int address_valid(const char *s, size_t n)
{
	char buf[1024];
	size_t o = 0;
	const char *lt = NULL, *gt = NULL;
	int inq = 0, depth = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n) {
			i++;
			continue;
		}
		if (s[i] == '"' && depth == 0)
			inq = !inq;
		else if (!inq && s[i] == '(')
			depth++;
		else if (!inq && s[i] == ')' && depth > 0)
			depth--;
		else if (!inq && depth == 0 && s[i] == '<' && lt == NULL)
			lt = s + i;
		else if (!inq && depth == 0 && s[i] == '>' && lt != NULL && gt == NULL)
			gt = s + i;
		else if (!inq && depth == 0 && gt != NULL && s[i] != ' ' && s[i] != '\t' &&
			 s[i] != '\r' && s[i] != '\n')
			return 0; /* "<a@b>junk" */
	}
	if (inq || (lt != NULL && gt == NULL))
		return 0;
	const char *a = lt ? lt + 1 : s, *e = lt ? gt : s + n;
	depth = 0;
	int seen_space = 0;
	for (const char *p = a; p < e && o < sizeof(buf) - 1; p++) {
		if (*p == '(')
			depth++;
		else if (*p == ')' && depth > 0)
			depth--;
		else if (depth > 0)
			continue;
		else if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			seen_space = o > 0;
		else if (seen_space && !lt)
			return 0; /* "John Doe john@x" */
		else
			buf[o++] = *p;
	}
	buf[o] = '\0';
	if (lt && buf[0] == '@') { /* a source route */
		char *colon = strchr(buf, ':');
		if (colon == NULL)
			return 0;
		memmove(buf, colon + 1, strlen(colon + 1) + 1);
	}
	char *at = strrchr(buf, '@');
	return at != NULL && at != buf && at[1] != '\0';
}

int sv_addresses(const char *val, size_t len,
		 int (*cb)(const char *local, size_t llen, const char *domain, size_t dlen,
			   void *ctx),
		 void *ctx)
{
	/* Two passes: first whether the list is valid; a list that is not (an
	 * empty field, junk after an address, an address without a domain) is
	 * taken as one address, the whole value, which only :all matches (RFC
	 * 5228 2.7.4; Pigeonhole does the same). */
	for (int pass = 0; pass < 2; pass++) {
		size_t start = 0;
		int inq = 0, depth = 0, angle = 0, count = 0, valid = 1, group = 0;
		for (size_t i = 0; i <= len; i++) {
			char c = i < len ? val[i] : ',';
			if (i < len && c == '\\' && i + 1 < len) {
				i++;
				continue;
			}
			if (c == '"' && depth == 0)
				inq = !inq;
			else if (!inq && c == '(')
				depth++;
			else if (!inq && c == ')' && depth > 0)
				depth--;
			else if (!inq && depth == 0 && c == '<')
				angle = 1;
			else if (!inq && depth == 0 && c == '>')
				angle = 0;
			else if (!inq && depth == 0 && !angle &&
				 (c == ',' || c == ';' || (c == ':' && i < len))) {
				/* "group: a, b;" — the group's name is no address */
				if (c == ':') {
					group = 1;
				} else {
					const char *p = val + start;
					size_t n = i - start, k = 0;
					while (k < n && (p[k] == ' ' || p[k] == '\t' ||
							 p[k] == '\r' || p[k] == '\n'))
						k++;
					if (k == n) {
						/* an empty piece: "a, , b" (obsolete syntax) or
						 * "group:;" */
					} else if (pass == 0) {
						if (!address_valid(p, n))
							valid = 0;
						count++;
					} else {
						int r = one_address(p, n, cb, ctx);
						if (r != 0)
							return r;
						if (++count > 1000)
							return 0;
					}
				}
				start = i + 1;
			}
		}
		if (pass == 0 && (!valid || inq || (count == 0 && !group))) {
			size_t s = 0, e = len;
			while (s < e && (val[s] == ' ' || val[s] == '\t'))
				s++;
			while (e > s && (val[e - 1] == ' ' || val[e - 1] == '\t'))
				e--;
			return cb(val + s, e - s, NULL, 0, ctx);
		}
	}
	return 0;
}

/* --- body ------------------------------------------------------------------------ */

static void type_of(struct mailmime_content *ct, char *out, size_t size)
{
	const char *t = "text";
	if (ct == NULL || ct->ct_type == NULL) {
		snprintf(out, size, "text/plain");
		return;
	}
	if (ct->ct_type->tp_type == MAILMIME_TYPE_DISCRETE_TYPE) {
		struct mailmime_discrete_type *d = ct->ct_type->tp_data.tp_discrete_type;
		switch (d->dt_type) {
		case MAILMIME_DISCRETE_TYPE_TEXT:
			t = "text";
			break;
		case MAILMIME_DISCRETE_TYPE_IMAGE:
			t = "image";
			break;
		case MAILMIME_DISCRETE_TYPE_AUDIO:
			t = "audio";
			break;
		case MAILMIME_DISCRETE_TYPE_VIDEO:
			t = "video";
			break;
		case MAILMIME_DISCRETE_TYPE_APPLICATION:
			t = "application";
			break;
		default:
			t = d->dt_extension ? d->dt_extension : "x";
			break;
		}
	} else {
		struct mailmime_composite_type *c = ct->ct_type->tp_data.tp_composite_type;
		t = c->ct_type == MAILMIME_COMPOSITE_TYPE_MESSAGE ? "message"
		    : c->ct_type == MAILMIME_COMPOSITE_TYPE_MULTIPART
			? "multipart"
			: (c->ct_token ? c->ct_token : "x");
	}
	snprintf(out, size, "%s/%s", t, ct->ct_subtype ? ct->ct_subtype : "");
	for (char *p = out; *p; p++)
		*p = (char)tolower((unsigned char)*p);
}

/* RFC 5173 5.2: "" matches every type, "type" its subtypes, "type/sub" exactly. */
static int type_wanted(const char *type, const struct sv_strlist *types)
{
	if (types == NULL)
		return strncmp(type, "text/", 5) == 0;
	for (size_t i = 0; i < types->n; i++) {
		const char *w = types->s[i];
		size_t wl = types->len[i];
		if (wl == 0)
			return 1;
		if (memchr(w, '/', wl) != NULL) {
			if (strlen(type) == wl && strncasecmp(type, w, wl) == 0)
				return 1;
		} else if (strncasecmp(type, w, wl) == 0 && type[wl] == '/') {
			return 1;
		}
	}
	return 0;
}

/* RFC 5173 :text of an HTML part: its text, without tags, comments,
 * scripts and styles, with the common entities decoded (as Pigeonhole's
 * :text does), so that words in attributes (href="mailto:...") do not
 * match. Returns a malloc'd string. */
static char *html_text(const char *h, size_t n, size_t *len_r)
{
	char *out = xmalloc(n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		if (h[i] == '<') {
			size_t j = i + 1;
			const char *skip_to = NULL;
			if (n - i >= 4 && memcmp(h + i, "<!--", 4) == 0)
				skip_to = "-->";
			else if (n - i >= 7 && strncasecmp(h + i, "<script", 7) == 0)
				skip_to = "</script";
			else if (n - i >= 6 && strncasecmp(h + i, "<style", 6) == 0)
				skip_to = "</style";
			if (skip_to != NULL) {
				size_t sl = strlen(skip_to);
				j = i + 1;
				while (j + sl <= n && strncasecmp(h + j, skip_to, sl) != 0)
					j++;
				j += sl;
			}
			while (j < n && h[j] != '>')
				j++;
			i = j + 1;
			if (o > 0 && out[o - 1] != ' ')
				out[o++] = ' ';
			continue;
		}
		if (h[i] == '&') {
			static const struct {
				const char *e;
				char c;
			} ents[] = {{"&amp;", '&'},  {"&lt;", '<'},   {"&gt;", '>'},
				    {"&quot;", '"'}, {"&nbsp;", ' '}, {"&apos;", '\''}};
			size_t k;
			for (k = 0; k < sizeof(ents) / sizeof(ents[0]); k++) {
				size_t el = strlen(ents[k].e);
				if (n - i >= el && strncasecmp(h + i, ents[k].e, el) == 0) {
					out[o++] = ents[k].c;
					i += el;
					break;
				}
			}
			if (k < sizeof(ents) / sizeof(ents[0]))
				continue;
		}
		out[o++] = h[i++];
	}
	out[o] = '\0';
	*len_r = o;
	return out;
}

struct body_walk {
	int text; /* :text: HTML parts as their text */
	const struct sv_strlist *types;
	int (*cb)(const char *text, size_t len, void *ctx);
	void *ctx;
	int parts, result;
};

static int body_part(struct body_walk *bw, struct mailmime *mm, int depth)
{
	if (depth > 20 || ++bw->parts > SV_MAX_PARTS)
		return 0;
	if (mm->mm_type == MAILMIME_MULTIPLE) {
		for (clistiter *it = clist_begin(mm->mm_data.mm_multipart.mm_mp_list); it;
		     it = clist_next(it))
			if (body_part(bw, clist_content(it), depth + 1) != 0)
				return 1;
		return 0;
	}
	if (mm->mm_type == MAILMIME_MESSAGE) {
		/* RFC 5173: the header of an attached message is not body; its body is */
		if (mm->mm_data.mm_message.mm_msg_mime != NULL)
			return body_part(bw, mm->mm_data.mm_message.mm_msg_mime, depth + 1);
		return 0;
	}
	char type[128];
	type_of(mm->mm_content_type, type, sizeof(type));
	if (!type_wanted(type, bw->types))
		return 0;
	struct mailmime_data *d = mm->mm_data.mm_single;
	if (d == NULL || d->dt_type != MAILMIME_DATA_TEXT)
		return 0;
	size_t idx = 0, dlen = 0;
	char *dec = NULL;
	if (mailmime_part_parse(d->dt_data.dt_text.dt_data, d->dt_data.dt_text.dt_length, &idx,
				d->dt_encoding, &dec, &dlen) != MAILIMF_NO_ERROR)
		return 0;
	char *cs = mm->mm_content_type ? mailmime_content_charset_get(mm->mm_content_type) : NULL;
	char *conv = NULL, *html = NULL;
	size_t clen = 0;
	int r;
	const char *text = dec;
	size_t tlen = dlen;
	if (cs != NULL && strcasecmp(cs, "utf-8") != 0 && strcasecmp(cs, "us-ascii") != 0 &&
	    strncmp(type, "text/", 5) == 0 &&
	    charconv_buffer("utf-8", cs, dec, dlen, &conv, &clen) == MAIL_CHARCONV_NO_ERROR) {
		text = conv;
		tlen = clen;
	}
	if (bw->text && strcmp(type, "text/html") == 0) {
		html = html_text(text, tlen, &tlen);
		text = html;
	}
	r = bw->cb(text, tlen, bw->ctx);
	free(html);
	if (conv != NULL)
		charconv_buffer_free(conv);
	mmap_string_unref(dec);
	if (r != 0) {
		bw->result = r;
		return 1;
	}
	return 0;
}

int sv_mail_body(struct sv_mail *m, enum sv_bodyx x, const struct sv_strlist *types,
		 int (*cb)(const char *text, size_t len, void *ctx), void *ctx)
{
	if (x == B_RAW) {
		size_t n = m->len - m->body_off;
		return cb(m->data + m->body_off, n > SV_MAX_BODY ? SV_MAX_BODY : n, ctx);
	}
	struct mailmime *mm = NULL;
	size_t idx = 0;
	size_t len = m->len > SV_MAX_BODY ? SV_MAX_BODY : m->len;
	if (mailmime_parse(m->data, len, &idx, &mm) != MAILIMF_NO_ERROR || mm == NULL)
		return 0;
	struct body_walk bw = {
	    .text = x == B_TEXT, .types = x == B_CONTENT ? types : NULL, .cb = cb, .ctx = ctx};
	struct mailmime *top = mm;
	if (top->mm_type == MAILMIME_MESSAGE && top->mm_data.mm_message.mm_msg_mime != NULL)
		top = top->mm_data.mm_message.mm_msg_mime;
	body_part(&bw, top, 0);
	mailmime_free(mm);
	return bw.result;
}

/* --- dates ------------------------------------------------------------------------ */

static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* How many digits the year of a date-time has: the digits after the month's name. */
static int year_digits(const char *s, size_t len)
{
	static const char *const mon[] = {"jan", "feb", "mar", "apr", "may", "jun",
					  "jul", "aug", "sep", "oct", "nov", "dec"};
	for (size_t i = 0; i + 3 <= len; i++) {
		for (int m = 0; m < 12; m++) {
			if (strncasecmp(s + i, mon[m], 3) != 0)
				continue;
			size_t j = i + 3, n = 0;
			while (j < len && (s[j] == ' ' || s[j] == '\t'))
				j++;
			while (j + n < len && isdigit((unsigned char)s[j + n]))
				n++;
			if (n > 0)
				return (int)n;
		}
	}
	return 4;
}

int sv_parse_date(const char *s, size_t len, int64_t *t_r, int *zone_r)
{
	struct mailimf_date_time *dt = NULL;
	size_t idx = 0;
	if (mailimf_date_time_parse(s, len, &idx, &dt) != MAILIMF_NO_ERROR || dt == NULL)
		return -1;
	int ok = dt->dt_month >= 1 && dt->dt_month <= 12 && dt->dt_day >= 1 && dt->dt_day <= 31 &&
		 dt->dt_hour >= 0 && dt->dt_hour < 24 && dt->dt_min >= 0 && dt->dt_min < 60 &&
		 dt->dt_sec >= 0 && dt->dt_sec <= 60 && dt->dt_year > 0 && dt->dt_year < 10000;
	/* RFC 5322 4.3: a two-digit year is 19xx or 20xx, a three-digit one
	 * 19xx; four digits are the year as written ("0102" is the year 102,
	 * which no mail has: the date cannot be used, as Pigeonhole says too) */
	int ydigits = year_digits(s, len);
	int year = dt->dt_year;
	if (ydigits <= 2)
		year += year < 50 ? 2000 : 1900;
	else if (ydigits == 3)
		year += 1900;
	if (year < 1900)
		ok = 0;
	if (ok) {
		int z = dt->dt_zone, az = z < 0 ? -z : z;
		int zone = (z < 0 ? -1 : 1) * (az / 100 * 60 + az % 100);
		int64_t t = days_from_civil(year, dt->dt_month, dt->dt_day) * 86400 +
			    dt->dt_hour * 3600 + dt->dt_min * 60 + dt->dt_sec;
		*t_r = t - (int64_t)zone * 60;
		*zone_r = zone;
	}
	mailimf_date_time_free(dt);
	return ok ? 0 : -1;
}

int sv_parse_zone(const char *s, int *zone_r)
{
	if (strlen(s) != 5 || (s[0] != '+' && s[0] != '-'))
		return -1;
	for (int i = 1; i < 5; i++)
		if (!isdigit((unsigned char)s[i]))
			return -1;
	int h = (s[1] - '0') * 10 + (s[2] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
	if (h > 14 || m > 59)
		return -1;
	*zone_r = (s[0] == '-' ? -1 : 1) * (h * 60 + m);
	return 0;
}

int sv_date_part(int64_t t, int zone, const char *part, char *out, size_t size)
{
	time_t local = (time_t)(t + (int64_t)zone * 60);
	struct tm tm;
	char z[16];
	static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

	if (gmtime_r(&local, &tm) == NULL)
		return -1;
	int az = zone < 0 ? -zone : zone;
	snprintf(z, sizeof(z), "%c%02d%02d", zone < 0 ? '-' : '+', az / 60, az % 60);
	if (strcasecmp(part, "year") == 0)
		snprintf(out, size, "%04d", tm.tm_year + 1900);
	else if (strcasecmp(part, "month") == 0)
		snprintf(out, size, "%02d", tm.tm_mon + 1);
	else if (strcasecmp(part, "day") == 0)
		snprintf(out, size, "%02d", tm.tm_mday);
	else if (strcasecmp(part, "date") == 0)
		snprintf(out, size, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
	else if (strcasecmp(part, "julian") == 0) /* the Modified Julian Day */
		snprintf(out, size, "%lld",
			 (long long)(((int64_t)local - (((int64_t)local % 86400 + 86400) % 86400)) /
					 86400 +
				     40587));
	else if (strcasecmp(part, "hour") == 0)
		snprintf(out, size, "%02d", tm.tm_hour);
	else if (strcasecmp(part, "minute") == 0)
		snprintf(out, size, "%02d", tm.tm_min);
	else if (strcasecmp(part, "second") == 0)
		snprintf(out, size, "%02d", tm.tm_sec);
	else if (strcasecmp(part, "time") == 0)
		snprintf(out, size, "%02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec);
	else if (strcasecmp(part, "iso8601") == 0)
		snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 zone < 0 ? '-' : '+', az / 60, az % 60);
	else if (strcasecmp(part, "std11") == 0)
		snprintf(out, size, "%s, %02d %s %04d %02d:%02d:%02d %s", wd[tm.tm_wday],
			 tm.tm_mday, mo[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, z);
	else if (strcasecmp(part, "zone") == 0)
		snprintf(out, size, "%s", z);
	else if (strcasecmp(part, "weekday") == 0)
		snprintf(out, size, "%d", tm.tm_wday);
	else
		return -1;
	return 0;
}
