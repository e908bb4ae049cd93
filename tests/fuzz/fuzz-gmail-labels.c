/* fuzz-gmail-labels — index/gmail_labels.c on arbitrary message bytes: the
 * X-Gmail-Labels header of a Takeout mbox is whatever the file says. Every
 * mailbox name it gives is a bounded, NUL-terminated string without '/'. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "index/gmail_labels.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gmail_labels g;

	(void)gmail_labels_present((const char *)data, size);
	(void)gmail_labels_parse((const char *)data, size, &g);
	if (g.n == 0 || g.n > GMAIL_LABELS_MAX)
		abort();
	for (size_t i = 0; i < g.n; i++)
		if (strnlen(g.mailbox[i], STORE_NAME_MAX + 1) > STORE_NAME_MAX ||
		    strchr(g.mailbox[i], '/') != NULL || g.mailbox[i][0] == '\0')
			abort();
	return 0;
}
