// FUZZ_SOURCES: smtpout/reply.c
/* fuzz-smtp-reply — smtpout's reply parser: whatever a remote server sends,
 * parsed reply after reply as the client does, then the EHLO keyword lookup
 * and the first-line copy. Nothing may crash or read out of bounds. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smtpout/reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct smtp_reply r;
	char p[64], line[256];
	size_t used, off = 0;

	while (off < size) {
		int rc = smtp_reply_parse((const char *)data + off, size - off, &r, &used);
		if (rc <= 0)
			break;
		smtp_reply_has(&r, "SIZE", p, sizeof(p));
		smtp_reply_has(&r, "PIPELINING", NULL, 0);
		smtp_reply_line(&r, line, sizeof(line));
		off += used;
	}
	return 0;
}
