// FUZZ_SOURCES: imapd/parse.c
/* Fuzzes imapd's command parser: framing (literals, limits) fed in random
 * slices, then argument parsing, sequence sets and mailbox-name decoding. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "imapd/parse.h"
#include "lib/utf7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_framer f;
	const char *buf = (const char *)data;
	size_t pos = 0;
	imap_frame_init(&f, 4096, 65536);
	/* feed in slices whose sizes come from the data itself */
	size_t step = size ? (size_t)(data[0] % 7) + 1 : 1;
	for (size_t avail = step; pos < size; avail += step) {
		if (avail > size - pos)
			avail = size - pos;
		size_t len;
		int r = imap_frame(&f, buf + pos, avail, &len);
		if (r == IMAP_PARSE_ERROR)
			break;
		if (r == IMAP_PARSE_MORE) {
			if (avail == size - pos)
				break;
			continue;
		}
		struct imap_arena *a = imap_arena_new();
		struct imap_command c;
		const char *err;
		if (imap_parse_command(a, buf + pos, len, &c, &err) == 0) {
			for (size_t i = 0; i < c.nargs; i++) {
				const char *s = imap_arg_astring(a, &c.args[i]);
				if (s == NULL)
					continue;
				struct imap_seqset set;
				imap_seqset_parse(a, s, 1000, &set);
				char out[512], back[2048];
				if (utf7_to_utf8(s, out, sizeof(out)) == 0)
					utf8_to_utf7(out, back, sizeof(back));
			}
		}
		imap_arena_free(&a);
		pos += len;
		imap_frame_reset(&f);
		avail = 0;
	}
	return 0;
}
