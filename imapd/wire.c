/* wire — IMAP strings and the CRLF form of stored bytes (see wire.h). */
#include "imapd/wire.h"

#include <stdio.h>
#include <string.h>

void wire_string(const char *s, size_t len, wire_emit_fn *emit, void *ctx)
{
	if (s == NULL) {
		emit(ctx, "NIL", 3);
		return;
	}
	int quote = len < 1024;
	for (size_t i = 0; quote && i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r' || c == '\n' || c == '\0' || c >= 0x80)
			quote = 0;
	}
	if (!quote) {
		char hdr[32];
		int n = snprintf(hdr, sizeof(hdr), "{%zu}\r\n", len);
		emit(ctx, hdr, (size_t)n);
		emit(ctx, s, len);
		return;
	}
	emit(ctx, "\"", 1);
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\') {
			emit(ctx, s + start, i - start);
			emit(ctx, "\\", 1);
			start = i;
		}
	}
	emit(ctx, s + start, len - start);
	emit(ctx, "\"", 1);
}

static int bare_lf(const char *msg, size_t i)
{
	return msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r');
}

uint64_t wire_crlf_len(const char *msg, size_t start, size_t len)
{
	uint64_t n = len;
	const char *p = msg + start, *end = msg + start + len;
	while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		if (bare_lf(msg, (size_t)(p - msg)))
			n++;
		p++;
	}
	return n;
}

void wire_crlf_open(struct wire_crlf *r, const char *msg, size_t start, size_t len, uint64_t skip,
		    uint64_t count)
{
	r->pos = start;
	r->end = start + len;
	r->cr_sent = 0;
	r->left = UINT64_MAX;
	/* step over skip bytes of CRLF form, a line at a time */
	while (skip > 0 && r->pos < r->end) {
		const char *nl = memchr(msg + r->pos, '\n', r->end - r->pos);
		size_t run = nl ? (size_t)(nl - (msg + r->pos)) : r->end - r->pos;
		if (run > 0) {
			size_t take = run < skip ? run : (size_t)skip;
			r->pos += take;
			skip -= take;
			continue;
		}
		/* at an LF */
		if (bare_lf(msg, r->pos) && !r->cr_sent) {
			r->cr_sent = 1;
			skip--;
			continue;
		}
		r->pos++;
		r->cr_sent = 0;
		skip--;
	}
	r->left = count;
}

size_t wire_crlf_read(struct wire_crlf *r, const char *msg, char *out, size_t room)
{
	size_t o = 0;
	while (r->pos < r->end && r->left > 0 && o < room) {
		size_t lim = r->end - r->pos;
		if (lim > room - o)
			lim = room - o;
		if (lim > r->left)
			lim = (size_t)r->left;
		const char *nl = memchr(msg + r->pos, '\n', lim);
		size_t run = nl ? (size_t)(nl - (msg + r->pos)) : lim;
		if (run == 0) {
			if (bare_lf(msg, r->pos) && !r->cr_sent) {
				out[o++] = '\r';
				r->cr_sent = 1;
			} else {
				out[o++] = '\n';
				r->pos++;
				r->cr_sent = 0;
			}
			r->left--;
			continue;
		}
		memcpy(out + o, msg + r->pos, run);
		o += run;
		r->pos += run;
		r->left -= run;
	}
	return o;
}

int wire_crlf_done(const struct wire_crlf *r)
{
	return r->left == 0 || r->pos >= r->end;
}
