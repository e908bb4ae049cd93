// FUZZ_SOURCES: smtpin/data.c
/* fuzz-smtp-data — the DATA and BDAT readers. The first byte picks a feed
 * step; the input is fed in those steps and must give the same result as fed
 * whole (the end of data found at the same offset, the same kept bytes), and
 * an end is only ever right after CR LF "." CR LF. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpin/data.h"

static int run(const uint8_t *in, size_t len, size_t step, struct buf *b, size_t *end_r,
	       struct smtp_data *d)
{
	size_t off = 0;

	smtp_data_init(d, b, 4096);
	while (off < len) {
		size_t n = len - off < step ? len - off : step, used;
		int r = smtp_data_feed(d, (const char *)in + off, n, &used);
		if (used > n)
			abort();
		off += used;
		if (r == 0) {
			*end_r = off;
			return 1;
		}
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf a, b;
	struct smtp_data da, db;
	size_t ea = 0, eb = 0;

	if (size < 1 || size > 65536)
		return 0;
	size_t step = data[0] % 16 + 1;
	data++;
	size--;
	buf_init(&a, 1 << 20);
	buf_init(&b, 1 << 20);
	int fa = run(data, size, size ? size : 1, &a, &ea, &da);
	int fb = run(data, size, step, &b, &eb, &db);
	if (fa != fb || ea != eb || a.len != b.len ||
	    (a.len && memcmp(a.data, b.data, a.len) != 0) || da.too_big != db.too_big ||
	    da.bare_cr != db.bare_cr || da.bare_lf != db.bare_lf)
		abort();
	/* the end is CR LF . CR LF (or the message starts with ".\r\n") */
	if (fa && !(ea == 3 || (ea >= 5 && memcmp(data + ea - 5, "\r\n.\r\n", 5) == 0)))
		abort();
	if (fa && ea == 3 && memcmp(data, ".\r\n", 3) != 0)
		abort();
	/* BDAT over the same bytes: never crashes, flags are consistent */
	smtp_data_init(&da, &a, 4096);
	buf_reset(&a);
	smtp_bdat_feed(&da, (const char *)data, size);
	smtp_bdat_last(&da);
	buf_free(&a);
	buf_free(&b);
	return 0;
}
