/* Unit tests of lib/utf7.c: modified UTF-7 both ways, and refusal of every
 * non-canonical or dangerous form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/utf7.h"

static void roundtrip(const char *utf8, const char *utf7)
{
	char out[256];
	assert_int_equal(utf8_to_utf7(utf8, out, sizeof(out)), 0);
	assert_string_equal(out, utf7);
	assert_int_equal(utf7_to_utf8(utf7, out, sizeof(out)), 0);
	assert_string_equal(out, utf8);
}

static void test_roundtrips(void **state)
{
	(void)state;
	roundtrip("INBOX", "INBOX");
	roundtrip("Entwürfe", "Entw&APw-rfe");
	roundtrip("A&B", "A&-B");
	roundtrip("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
	roundtrip("😀", "&2D3eAA-");
	roundtrip("Gesendete Objekte", "Gesendete Objekte");
}

static void test_rejects(void **state)
{
	char out[64];
	const char *bad[] = {
		"&",          /* unterminated */
		"&AGE-",      /* an encoded printable ASCII 'a' */
		"&2D0-",      /* a lone high surrogate */
		"&3gA-",      /* a lone low surrogate */
		"&AAA-",      /* an encoded NUL */
		"&-&",        /* unterminated after a good one */
		"&AP*-",      /* not base64 */
		"\xc3\xa9",   /* 8-bit bytes */
		"&APw",       /* no '-' */
		"&APx-",      /* bits left that are not zero */
		"a\tb",       /* a control character */
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(utf7_to_utf8(bad[i], out, sizeof(out)), -1);
	assert_int_equal(utf8_to_utf7("\xff", out, sizeof(out)), -1);
	assert_int_equal(utf8_to_utf7("\xc0\xae", out, sizeof(out)), -1); /* overlong '.' */
	assert_int_equal(utf8_to_utf7("\xed\xa0\x80", out, sizeof(out)), -1); /* a surrogate */
	assert_int_equal(utf8_to_utf7("Entwürfe", out, 5), -1);           /* too small */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrips),
		cmocka_unit_test(test_rejects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
