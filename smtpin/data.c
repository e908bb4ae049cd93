/* data — DATA (dot-terminated) and BDAT (sized chunks) message readers.
 * Only CR LF "." CR LF ends DATA; every other way of writing an end of line
 * is content, and a bare CR or LF is recorded so the caller can refuse the
 * message. Bytes are copied in runs, not one by one. */
#include "smtpin/data.h"

#include <string.h>

enum {
	S_BOL,	 /* at the start of a line (after CR LF) */
	S_LINE,	 /* inside a line */
	S_CR,	 /* saw CR inside a line */
	S_DOT,	 /* a line started with '.', which was dropped */
	S_DOTCR, /* CR LF "." CR: one LF more ends the message; the CR is held */
};

void smtp_data_init(struct smtp_data *d, struct buf *out, uint64_t limit)
{
	memset(d, 0, sizeof(*d));
	d->out = out;
	d->limit = limit;
	d->state = S_BOL;
}

static void emit(struct smtp_data *d, const char *p, size_t n)
{
	if (n == 0)
		return;
	d->size += n;
	if (d->size > d->limit)
		d->too_big = 1;
	if (d->too_big)
		return;
	if (buf_append(d->out, p, n) < 0)
		d->too_big = 1;
}

int smtp_data_feed(struct smtp_data *d, const char *in, size_t len, size_t *used_r)
{
	size_t run = 0; /* start of bytes not yet emitted */

	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		switch (d->state) {
		case S_BOL:
			if (c == '.') {
				emit(d, in + run, i - run);
				run = i + 1;
				d->state = S_DOT;
			} else if (c == '\r') {
				d->state = S_CR;
			} else {
				if (c == '\n')
					d->bare_lf = 1;
				d->state = S_LINE;
			}
			break;
		case S_LINE:
			if (c == '\r')
				d->state = S_CR;
			else if (c == '\n')
				d->bare_lf = 1;
			break;
		case S_CR:
			if (c == '\n') {
				d->state = S_BOL;
			} else if (c == '\r') {
				d->bare_cr = 1;
			} else {
				d->bare_cr = 1;
				d->state = S_LINE;
			}
			break;
		case S_DOT:
			if (c == '\r') {
				/* hold the CR: it is either the end or content */
				run = i + 1;
				d->state = S_DOTCR;
			} else {
				if (c == '\n')
					d->bare_lf = 1;
				d->state = S_LINE;
			}
			break;
		case S_DOTCR:
			if (c == '\n') {
				*used_r = i + 1;
				return 0;
			}
			d->bare_cr = 1;
			emit(d, "\r", 1);
			d->state = c == '\r' ? S_CR : S_LINE;
			break;
		}
		if (c == 0)
			d->nul = 1;
	}
	if (d->state != S_DOTCR)
		emit(d, in + run, len - run);
	*used_r = len;
	return SMTP_DATA_MORE;
}

void smtp_bdat_feed(struct smtp_data *d, const char *in, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (d->prev_cr && c != '\n')
			d->bare_cr = 1;
		if (c == '\n' && !d->prev_cr)
			d->bare_lf = 1;
		if (c == 0)
			d->nul = 1;
		d->prev_cr = c == '\r';
	}
	emit(d, in, len);
}

void smtp_bdat_last(struct smtp_data *d)
{
	if (d->prev_cr)
		d->bare_cr = 1;
}
