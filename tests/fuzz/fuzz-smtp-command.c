// FUZZ_SOURCES: smtpin/parse.c
/* fuzz-smtp-command — smtpin's command parser: a command line, then the
 * same bytes as MAIL/RCPT arguments (strict and not), the routing-trick and
 * name checks, and base64 (AUTH). Nothing may crash or read out of bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base64.h"
#include "smtpin/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_command c;
	struct smtp_path p;
	const char *why;
	unsigned char out[1024];
	char *copy;

	if (size > 4096)
		return 0;
	copy = malloc(size + 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = 0;
	if (smtp_parse_command(copy, size, &c) == 0 && c.arg_len <= size) {
		for (int strict = 0; strict < 2; strict++) {
			if (smtp_parse_path(c.arg, c.arg_len, 1, strict, &p, &why) == 0) {
				(void)smtp_addr_routing_trick(&p);
				(void)smtp_domain_is_fqdn(p.domain);
			}
			if (smtp_parse_path(c.arg, c.arg_len, 0, strict, &p, &why) == 0)
				(void)smtp_addr_routing_trick(&p);
		}
	}
	(void)smtp_helo_valid(copy);
	(void)base64_decode(copy, size, out, sizeof(out));
	free(copy);
	return 0;
}
