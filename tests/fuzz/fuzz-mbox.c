/* fuzz-mbox — index/mbox.c on arbitrary bytes: splitting stays inside the
 * input and makes progress, mboxrd quoting round-trips exactly, unquoting never
 * grows, dates and Status: flags never read past the end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "index/mbox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mbox_reader r;
	struct mbox_msg m;
	int64_t t;
	int n, count = 0;

	mbox_reader_init(&r, data, size);
	while ((n = mbox_next(&r, &m)) == 1) {
		const char *base = (const char *)data;
		if (m.raw < base || m.raw + m.raw_len > base + size || m.offset >= size)
			abort();
		if (m.from != NULL)
			(void)mbox_parse_date(m.from, m.from_len, &t);
		char *out = malloc(m.raw_len + 1);
		size_t len = mbox_unquote(count & 1 ? MBOX_O : MBOX_RD, m.raw, m.raw_len, out);
		if (len > m.raw_len)
			abort();
		(void)mbox_status_flags(out, len);
		free(out);
		if (++count > (int)size + 1)
			abort(); /* no progress */
	}
	/* quoting then unquoting (mboxrd) gives the bytes back */
	size_t qlen = mbox_quoted_len((const char *)data, size);
	char *q = malloc(qlen + 1), *u = malloc(qlen + 1);
	if (mbox_quote((const char *)data, size, q) != qlen)
		abort();
	if (mbox_unquote(MBOX_RD, q, qlen, u) != size || memcmp(u, data, size) != 0)
		abort();
	free(q);
	free(u);
	mbox_split_from_line(data, size, &m);
	return 0;
}
