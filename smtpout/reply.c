/* reply — SMTP replies, parsed without I/O (smtpout/reply.h). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "smtpout/reply.h"

static int is_code(const char *p)
{
	return p[0] >= '2' && p[0] <= '5' && isdigit((unsigned char)p[1]) &&
	       isdigit((unsigned char)p[2]);
}

/* "5.1.1" at the start of text: class.subject.detail, 1-3 digits each. */
static size_t enhanced_code(const char *t, size_t len)
{
	size_t i = 0;

	if (len < 5 || (t[0] != '2' && t[0] != '4' && t[0] != '5') || t[1] != '.')
		return 0;
	i = 2;
	for (int part = 0; part < 2; part++) {
		size_t start = i;
		while (i < len && isdigit((unsigned char)t[i]) && i - start < 3)
			i++;
		if (i == start)
			return 0;
		if (part == 0) {
			if (i >= len || t[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && t[i] != ' ')
		return 0;
	return i;
}

int smtp_reply_parse(const char *buf, size_t len, struct smtp_reply *r, size_t *used_r)
{
	size_t pos = 0, tl = 0;

	r->code = 0;
	r->dsn[0] = 0;
	r->text[0] = 0;
	r->nlines = 0;
	*used_r = 0;
	for (;;) {
		const char *line = buf + pos;
		size_t left = len - pos;
		const char *nl =
		    memchr(line, '\n', left > REPLY_LINE_MAX + 2 ? REPLY_LINE_MAX + 2 : left);
		if (nl == NULL) {
			if (left > REPLY_LINE_MAX + 1) {
				snprintf(r->text, sizeof(r->text), "reply line too long");
				return -1;
			}
			return 0;
		}
		size_t ll = (size_t)(nl - line);
		if (ll > 0 && line[ll - 1] == '\r')
			ll--;
		if (ll < 3 || !is_code(line) || (ll > 3 && line[3] != ' ' && line[3] != '-')) {
			snprintf(r->text, sizeof(r->text), "malformed reply line");
			return -1;
		}
		int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		if (r->nlines > 0 && code != r->code) {
			snprintf(r->text, sizeof(r->text), "reply lines with different codes");
			return -1;
		}
		r->code = code;
		/* append "ddd text" printable */
		if (tl + ll + 2 >= sizeof(r->text)) {
			snprintf(r->text, sizeof(r->text), "reply too long");
			return -1;
		}
		if (r->nlines > 0)
			r->text[tl++] = '\n';
		for (size_t i = 0; i < ll; i++) {
			unsigned char c = (unsigned char)line[i];
			r->text[tl++] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
		}
		r->text[tl] = 0;
		if (r->nlines == 0 && ll > 4) {
			size_t el = enhanced_code(line + 4, ll - 4);
			if (el > 0 && el < sizeof(r->dsn) && line[4] == line[0]) {
				memcpy(r->dsn, line + 4, el);
				r->dsn[el] = 0;
			}
		}
		r->nlines++;
		pos += (size_t)(nl - line) + 1;
		if (ll == 3 || line[3] == ' ')
			break;
		if (pos >= len)
			return 0;
	}
	if (r->dsn[0] == 0)
		snprintf(r->dsn, sizeof(r->dsn), "%d.0.0", r->code / 100);
	*used_r = pos;
	return 1;
}

int smtp_reply_has(const struct smtp_reply *r, const char *ext, char *params_r, size_t size)
{
	size_t el = strlen(ext);
	const char *p = r->text;

	if (params_r && size)
		params_r[0] = 0;
	while (p && *p) {
		const char *e = strchr(p, '\n');
		size_t ll = e ? (size_t)(e - p) : strlen(p);
		if (ll >= 4 + el && strncasecmp(p + 4, ext, el) == 0 &&
		    (ll == 4 + el || p[4 + el] == ' ' || p[4 + el] == '=')) {
			if (params_r && size) {
				size_t pl = ll > 5 + el ? ll - 5 - el : 0;
				if (pl >= size)
					pl = size - 1;
				memcpy(params_r, p + 5 + el, pl);
				params_r[pl] = 0;
			}
			return 1;
		}
		p = e ? e + 1 : NULL;
	}
	return 0;
}

void smtp_reply_line(const struct smtp_reply *r, char *out, size_t size)
{
	size_t i = 0;

	for (; r->text[i] && r->text[i] != '\n' && i + 1 < size; i++)
		out[i] = r->text[i];
	out[i] = 0;
}
