// FUZZ_SOURCES: imapd/mime.c imapd/wire.c
/* Fuzzes imapd's MIME code on arbitrary message bytes: the part tree,
 * ENVELOPE/BODY/BODYSTRUCTURE text, the search and sort fields, section
 * ranges (which must stay inside the message), BINARY decoding, the base64
 * rewrite of binary parts (whose result, when it gives one, holds no NUL), and the CRLF form
 * (read in pieces, it must be as long as wire_crlf_len says). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imapd/mime.h"
#include "imapd/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data;
	struct buf env, body, bs, srch, out;
	buf_init(&env, 1 << 20);
	buf_init(&body, 4 << 20);
	buf_init(&bs, 4 << 20);
	buf_init(&srch, 1 << 20);
	buf_init(&out, 1 << 20);
	mime_describe(msg, size, &env, &body, &bs);
	mime_search_fields(msg, size, &srch);
	static const char *sections[] = {"",
					 "1",
					 "2",
					 "1.1",
					 "1.2.3",
					 "HEADER",
					 "TEXT",
					 "1.MIME",
					 "2.HEADER",
					 "1.TEXT",
					 "HEADER.FIELDS (From Subject)",
					 "1.HEADER.FIELDS.NOT (To)",
					 "3.1.MIME"};
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		size_t start, len;
		buf_reset(&out);
		if (mime_section(msg, size, sections[i], &start, &len, &out) == 0 &&
		    start != SIZE_MAX && (start > size || len > size - start))
			abort();
	}
	buf_reset(&srch);
	mime_sort_fields(msg, size, &srch);
	static const char *parts[] = {"", "1", "2", "1.1", "2.1.3"};
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		buf_reset(&out);
		mime_binary(msg, size, parts[i], &out);
	}
	buf_reset(&out);
	if (mime_binary_to_base64(msg, size, &out) == 1 && memchr(out.data, '\0', out.len) != NULL)
		abort();
	struct wire_crlf r;
	char piece[7];
	size_t n, total = 0;
	uint64_t want = wire_crlf_len(msg, 0, size);
	wire_crlf_open(&r, msg, 0, size, size / 3, UINT64_MAX);
	while ((n = wire_crlf_read(&r, msg, piece, sizeof(piece))) > 0)
		total += n;
	wire_crlf_open(&r, msg, 0, size, 0, UINT64_MAX);
	size_t all = 0;
	while ((n = wire_crlf_read(&r, msg, piece, sizeof(piece))) > 0)
		all += n;
	if (all != want || total > want)
		abort();
	buf_free(&env);
	buf_free(&body);
	buf_free(&bs);
	buf_free(&srch);
	buf_free(&out);
	return 0;
}
