// FUZZ_SOURCES: imapd/mime.c imapd/wire.c
/* Fuzzes imapd's MIME code on arbitrary message bytes: the part tree,
 * ENVELOPE/BODY/BODYSTRUCTURE text, the search fields, and section ranges
 * (which must stay inside the message). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imapd/mime.h"

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
	static const char *sections[] = {"", "1", "2", "1.1", "1.2.3", "HEADER", "TEXT", "1.MIME", "2.HEADER",
					 "1.TEXT", "HEADER.FIELDS (From Subject)", "1.HEADER.FIELDS.NOT (To)", "3.1.MIME"};
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		size_t start, len;
		buf_reset(&out);
		if (mime_section(msg, size, sections[i], &start, &len, &out) == 0 && start != SIZE_MAX &&
		    (start > size || len > size - start))
			abort();
	}
	buf_free(&env);
	buf_free(&body);
	buf_free(&bs);
	buf_free(&srch);
	buf_free(&out);
	return 0;
}
