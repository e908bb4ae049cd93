// FUZZ_SOURCES:
/* Fuzzes index/dir_ldap.c's filter building with arbitrary keys (a
 * recipient address or login name comes from the network): whatever the key,
 * the expanded filter has exactly the template's structure — no '(', ')' or
 * '*' of the key's own, every '\' starts a two-hex-digit escape — and escaping
 * never writes past its buffer's limit. */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "index/dir_ldap.h"

static const char *const templates[] = {
	"(mail=%s)",
	"(&(objectClass=posixAccount)(|(mail=%s)(mailAlternateAddress=%s)))",
	"(&(uid=%u)(associatedDomain=%d))",
	"(cn=*%U*)",
	"(x=100%%)(y=%S)(z=%D)",
};

/* Counts '(' ')' '*' outside escapes; aborts on a '\' without two hex digits. */
static void structure(const char *s, size_t len, size_t counts[3])
{
	counts[0] = counts[1] = counts[2] = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\') {
			if (i + 2 >= len)
				abort();
			if (!isxdigit((unsigned char)s[i + 1]) || !isxdigit((unsigned char)s[i + 2]))
				abort();
			i += 2;
		} else if (s[i] == '(') {
			counts[0]++;
		} else if (s[i] == ')') {
			counts[1]++;
		} else if (s[i] == '*') {
			counts[2]++;
		} else if (s[i] == '\0') {
			abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t ntemplates = sizeof templates / sizeof templates[0];
	const char *tmpl;
	char key[512];
	size_t keylen, want[3], got[3];
	struct buf b;
	int rc;

	if (size < 1)
		return 0;
	tmpl = templates[data[0] % ntemplates];
	keylen = size - 1 < sizeof key - 1 ? size - 1 : sizeof key - 1;

	/* escaping the raw bytes, NULs included */
	buf_init(&b, 4 * keylen + 1);
	if (dir_ldap_escape((const char *)data + 1, keylen, &b) != 0)
		abort(); /* 3 bytes per input byte at most: it must fit */
	structure(b.data != NULL ? b.data : "", b.len, got);
	if (got[0] || got[1] || got[2] || b.len > 3 * keylen)
		abort();
	buf_free(&b);

	/* expansion of the key as a C string */
	memcpy(key, data + 1, keylen);
	key[keylen] = '\0';
	buf_init(&b, 8192);
	rc = dir_ldap_expand(tmpl, key, &b);
	if (rc < 0)
		abort(); /* the templates are valid and 8192 bytes are enough */
	structure(tmpl, strlen(tmpl), want);
	structure(b.data != NULL ? b.data : "", b.len, got);
	if (memcmp(want, got, sizeof want) != 0)
		abort();
	buf_free(&b);

	/* a small limit fails cleanly */
	buf_init(&b, 8);
	(void)dir_ldap_expand(tmpl, key, &b);
	if (b.len > 8)
		abort();
	buf_free(&b);
	return 0;
}
