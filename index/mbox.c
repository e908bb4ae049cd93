/* mbox — splitting, quoting and dating mbox files (see mbox.h). */
#define _GNU_SOURCE /* memmem */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "index/mbox.h"
#include "index/store.h"

void mbox_reader_init(struct mbox_reader *r, const void *data, size_t len)
{
	r->data = data;
	r->len = len;
	r->pos = 0;
}

static size_t line_end(const char *p, size_t len)
{
	const char *nl = memchr(p, '\n', len);
	return nl != NULL ? (size_t)(nl - p) : len;
}

/* Fills the from fields of m from the line at p (which starts with "From "). Returns the length
 * including the newline. */
static size_t take_from_line(const char *p, size_t len, struct mbox_msg *m)
{
	size_t n = line_end(p, len);
	size_t text = n;

	m->from_crlf = 0;
	if (text > 0 && p[text - 1] == '\r') {
		text--;
		m->from_crlf = 1;
	}
	m->from = p + 5;
	m->from_len = text - 5;
	return n < len ? n + 1 : n;
}

int mbox_next(struct mbox_reader *r, struct mbox_msg *m)
{
	const char *d = r->data;
	size_t start, end, scan;

	if (r->pos >= r->len)
		return 0;
	if (r->len - r->pos < 5 || memcmp(d + r->pos, "From ", 5) != 0)
		return -1;
	memset(m, 0, sizeof(*m));
	m->offset = r->pos;
	start = r->pos + take_from_line(d + r->pos, r->len - r->pos, m);
	end = r->len;
	scan = start;
	for (;;) {
		const char *hit = NULL;
		if (scan < r->len)
			hit = memmem(d + scan, r->len - scan, "\nFrom ", 6);
		if (hit == NULL)
			break;
		size_t line = (size_t)(hit - d) + 1; /* start of the "From " line */
		scan = line;
		/* the line before must be empty: "\n\n" or "\n\r\n" inside this message */
		size_t blank;
		if (line >= start + 1 && d[line - 2] == '\n')
			blank = 1;
		else if (line >= start + 2 && d[line - 2] == '\r' && d[line - 3] == '\n')
			blank = 2;
		else
			continue;
		size_t n = line_end(d + line, r->len - line);
		if (n > 0 && d[line + n - 1] == '\r')
			n--;
		if (!mbox_is_separator(d + line, n))
			continue;
		end = line - blank;
		r->pos = line;
		m->raw = d + start;
		m->raw_len = end - start;
		return 1;
	}
	/* the last message: drop the empty line that ends an mbox */
	r->pos = r->len;
	m->raw = d + start;
	m->raw_len = end > start ? end - start : 0;
	if (m->raw_len >= 2 && memcmp(m->raw + m->raw_len - 2, "\n\n", 2) == 0)
		m->raw_len--;
	else if (m->raw_len >= 4 && memcmp(m->raw + m->raw_len - 4, "\r\n\r\n", 4) == 0)
		m->raw_len -= 2;
	else if (m->raw_len > 0 && m->raw[m->raw_len - 1] != '\n')
		m->truncated = 1;
	return 1;
}

void mbox_split_from_line(const void *data, size_t len, struct mbox_msg *m)
{
	const char *d = data;
	size_t skip = 0;

	memset(m, 0, sizeof(*m));
	if (len >= 5 && memcmp(d, "From ", 5) == 0)
		skip = take_from_line(d, len, m);
	m->raw = d + skip;
	m->raw_len = len - skip;
	m->truncated = m->raw_len > 0 && m->raw[m->raw_len - 1] != '\n';
}

int mbox_is_separator(const char *line, size_t len)
{
	int64_t t;

	if (len < 5 || memcmp(line, "From ", 5) != 0)
		return 0;
	return mbox_parse_date(line + 5, len - 5, &t) == 0;
}

/* Length of the '>' run at p if it is followed by "From ", else -1. */
static long quoted_from(const char *p, size_t len)
{
	size_t i = 0;

	while (i < len && p[i] == '>')
		i++;
	if (len - i >= 5 && memcmp(p + i, "From ", 5) == 0)
		return (long)i;
	return -1;
}

size_t mbox_unquote(enum mbox_variant v, const char *raw, size_t len, char *out)
{
	size_t i = 0, o = 0;

	while (i < len) {
		/* at the start of a line */
		long q = quoted_from(raw + i, len - i);
		if (q >= 1 && (v == MBOX_RD || q == 1))
			i++;
		size_t n = line_end(raw + i, len - i);
		if (n < len - i)
			n++;
		memmove(out + o, raw + i, n);
		o += n;
		i += n;
	}
	return o;
}

size_t mbox_quoted_len(const char *msg, size_t len)
{
	size_t i = 0, extra = 0;

	while (i < len) {
		if (quoted_from(msg + i, len - i) >= 0)
			extra++;
		size_t n = line_end(msg + i, len - i);
		i += n < len - i ? n + 1 : n;
	}
	return len + extra;
}

size_t mbox_quote(const char *msg, size_t len, char *out)
{
	size_t i = 0, o = 0;

	while (i < len) {
		if (quoted_from(msg + i, len - i) >= 0)
			out[o++] = '>';
		size_t n = line_end(msg + i, len - i);
		if (n < len - i)
			n++;
		memcpy(out + o, msg + i, n);
		o += n;
		i += n;
	}
	return o;
}

static const char months[12][4] = {"jan", "feb", "mar", "apr", "may", "jun",
				   "jul", "aug", "sep", "oct", "nov", "dec"};

static int all_digits(const char *p, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)p[i]))
			return 0;
	return 1;
}

static int num(const char *p, size_t n)
{
	int v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (p[i] - '0');
	return v;
}

int mbox_parse_date(const char *text, size_t len, int64_t *t_r)
{
	int mon = -1, day = -1, year = -1, hh = -1, mm = -1, ss = 0, zone = 0, havezone = 0;
	size_t i = 0;

	while (i < len) {
		while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == ','))
			i++;
		size_t s = i;
		while (i < len && text[i] != ' ' && text[i] != '\t' && text[i] != ',')
			i++;
		const char *tok = text + s;
		size_t n = i - s;
		if (n == 0)
			break;
		if (n == 3 && mon < 0) {
			for (int k = 0; k < 12; k++)
				if (strncasecmp(tok, months[k], 3) == 0)
					mon = k;
		} else if ((n == 5 || n == 8) && hh < 0 && all_digits(tok, 2) && tok[2] == ':' &&
			   all_digits(tok + 3, 2) &&
			   (n == 5 || (tok[5] == ':' && all_digits(tok + 6, 2)))) {
			hh = num(tok, 2);
			mm = num(tok + 3, 2);
			ss = n == 8 ? num(tok + 6, 2) : 0;
		} else if (n == 4 && all_digits(tok, 4) && year < 0 && hh >= 0) {
			year = num(tok, 4);
		} else if (n == 4 && all_digits(tok, 4) && year < 0 && day >= 0 && mon >= 0) {
			year = num(tok, 4); /* "22 Aug 2002 12:36" */
		} else if (n <= 2 && all_digits(tok, n) && day < 0 && (mon >= 0 || hh < 0)) {
			day = num(tok, n);
		} else if (n == 5 && (tok[0] == '+' || tok[0] == '-') && all_digits(tok + 1, 4) &&
			   hh >= 0 && !havezone) {
			zone = (num(tok + 1, 2) * 60 + num(tok + 3, 2)) * (tok[0] == '-' ? -1 : 1);
			havezone = 1;
		}
	}
	if (mon < 0 || day < 1 || day > 31 || year < 1900 || year > 9999 || hh < 0 || hh > 23 ||
	    mm > 59 || ss > 60)
		return -1;
	struct tm tm = {.tm_year = year - 1900,
			.tm_mon = mon,
			.tm_mday = day,
			.tm_hour = hh,
			.tm_min = mm,
			.tm_sec = ss};
	*t_r = (int64_t)timegm(&tm) - (int64_t)zone * 60;
	return 0;
}

void mbox_format_date(int64_t t, char out[32])
{
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char mons[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	snprintf(out, 32, "%.3s %.3s %2u %02u:%02u:%02u %04u", days[(unsigned)tm.tm_wday % 7u],
		 mons[(unsigned)tm.tm_mon % 12u], (unsigned)tm.tm_mday % 32u,
		 (unsigned)tm.tm_hour % 24u, (unsigned)tm.tm_min % 60u, (unsigned)tm.tm_sec % 61u,
		 (unsigned)(tm.tm_year + 1900) % 10000u);
}

uint32_t mbox_status_flags(const char *msg, size_t len)
{
	uint32_t flags = 0;
	size_t i = 0;

	while (i < len) {
		size_t n = line_end(msg + i, len - i);
		const char *line = msg + i;
		size_t text = n > 0 && line[n - 1] == '\r' ? n - 1 : n;
		if (text == 0)
			break; /* end of the header */
		const char *val = NULL;
		int x = 0;
		if (text >= 7 && strncasecmp(line, "Status:", 7) == 0)
			val = line + 7;
		else if (text >= 9 && strncasecmp(line, "X-Status:", 9) == 0) {
			val = line + 9;
			x = 1;
		}
		for (const char *p = val; p != NULL && p < line + text; p++) {
			if (!x && *p == 'R')
				flags |= STORE_F_SEEN;
			else if (x && *p == 'A')
				flags |= STORE_F_ANSWERED;
			else if (x && *p == 'F')
				flags |= STORE_F_FLAGGED;
			else if (x && *p == 'D')
				flags |= STORE_F_DELETED;
			else if (x && *p == 'T')
				flags |= STORE_F_DRAFT;
		}
		i += n < len - i ? n + 1 : n;
	}
	return flags;
}
