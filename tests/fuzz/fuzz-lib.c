// FUZZ_SOURCES:
/* Fuzzes lib's small parsers of untrusted text: CIDR entries and addresses
 * (net.c), stored password values of the LDAP digest schemes and their base64
 * (password.c), log_printable (log.c) and list splitting (config.c).
 * crypt(3) strings are left out: their cost is in the input by design. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/config.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/password.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s, *sep, out[64], **items;
	size_t n, i;
	struct net_cidr c;

	log_printable(out, sizeof(out), (const char *)data, size);
	if (strlen(out) >= sizeof(out))
		abort();
	for (i = 0; out[i] != '\0'; i++)
		if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] >= 0x7f)
			abort();
	s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (config_split_list(s, &items, &n) == 0) {
		for (i = 0; i < n; i++)
			if (items[i][0] == '\0')
				abort();
		free(items);
	}
	/* "cidr\naddress" */
	sep = strchr(s, '\n');
	if (sep != NULL) {
		*sep = '\0';
		if (net_cidr_parse(s, &c) == 0) {
			if (c.prefix < 0 || c.prefix > (c.family == 2 ? 32 : 128))
				abort();
			(void)net_cidr_match(&c, sep + 1);
		}
		*sep = '\n';
	}
	/* "password\tstored" */
	sep = strchr(s, '\t');
	if (sep != NULL) {
		*sep = '\0';
		if (sep[1] != '$' && strncasecmp(sep + 1, "{CRYPT}", 7) != 0 && password_verify(s, sep + 1) &&
		    s[0] == '\0')
			abort(); /* an empty password never verifies */
	}
	free(s);
	return 0;
}
