// FUZZ_SOURCES: fs/names.c
/* Fuzzes the Maildir name parser: any bytes must parse or be refused without
 * crashing, and what parses must format back to a name that parses the same. */
#include <stdint.h>
#include <string.h>

#include "fs/names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mdname mn, again;
	char out[MDNAME_MAX + 1];
	int len;

	if (mdname_parse((const char *)data, size, &mn) != 0)
		return 0;
	len = mdname_format(out, sizeof(out), mn.base, mn.size, mn.flags);
	if (len < 0)
		return 0; /* the canonical name may not fit in NAME_MAX */
	if (mdname_parse(out, (size_t)len, &again) != 0 || strcmp(again.base, mn.base) != 0 ||
	    again.flags != mn.flags || again.size != mn.size)
		__builtin_trap();
	if (!mdname_matches(&again, mn.base, mn.size, mn.flags))
		__builtin_trap();
	/* the store base a new message gets must be shown under a name that finds it */
	const char *nb = mdname_new_base(&mn);
	if (nb && (len = mdname_format(out, sizeof(out), nb, mn.size, mn.flags)) > 0) {
		if (mdname_parse(out, (size_t)len, &again) != 0 ||
		    !mdname_matches(&again, nb, mn.size, mn.flags))
			__builtin_trap();
	}
	return 0;
}
