// FUZZ_SOURCES: tools/imapc_parse.c
/* fuzz-imapc-response — the IMAP client's response parser (tools/imapc_parse.c)
 * on arbitrary server bytes: the measured response stays inside the input,
 * parsing never reads past it, every token points inside it, lists are
 * well-formed, and the helpers (numbers, dates, list lookups) stay in bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tools/imapc_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imapc_resp r = {0};
	char *buf = malloc(size + 1);
	size_t pos = 0;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	while (pos < size) {
		ssize_t end = imapc_response_end(buf + pos, size - pos, 1 << 20);
		if (end <= 0)
			break;
		if ((size_t)end > size - pos)
			abort();
		if (imapc_parse(buf + pos, (size_t)end, &r) == 0) {
			for (size_t i = 0; i < r.nnodes; i++) {
				const struct imapc_node *n = &r.nodes[i];
				if (n->type != IMAPC_LIST &&
				    (n->s < buf + pos || n->s + n->len > buf + pos + end))
					abort();
				if (n->next >= (int32_t)r.nnodes || n->first >= (int32_t)r.nnodes)
					abort();
				int64_t t;
				char out[64];
				(void)imapc_number(&r, (int32_t)i);
				(void)imapc_copy(&r, (int32_t)i, out, sizeof(out));
				if (n->type != IMAPC_LIST)
					(void)imapc_parse_date(n->s, n->len, &t);
				if (n->type == IMAPC_LIST)
					(void)imapc_list_get(&r, (int32_t)i, "UID");
			}
			if (r.text != NULL &&
			    (r.text < buf + pos || r.text + r.textlen > buf + pos + end))
				abort();
		}
		pos += (size_t)end;
	}
	imapc_resp_free(&r);
	free(buf);
	return 0;
}
