/* Unit tests of lib/base64.c: the strict decoder of SMTP AUTH, IMAP
 * AUTHENTICATE and {SSHA} hashes, the MIME decoder, the encoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/base64.h"

/* (were test-smtp-parse.c's test_base64, when smtpin had its own copy) */
static void test_smtp_auth(void **state)
{
	unsigned char out[64];
	char enc[64];
	(void)state;
	assert_int_equal(base64_decode("AGJvYgBzZWNyZXQ=", 16, out, sizeof(out)), 11);
	assert_memory_equal(out, "\0bob\0secret", 11);
	assert_int_equal(base64_decode("AGJvYgBzZWNyZXQ", 15, out, sizeof(out)), -1);
	assert_int_equal(base64_decode("A=Jv", 4, out, sizeof(out)), -1);
	assert_int_equal(base64_decode("AGJvYgBzZWNyZXQ=", 16, out, 4), -1);
	assert_int_equal(base64_encode((const unsigned char *)"Username:", 9, enc, sizeof(enc)), 0);
	assert_string_equal(enc, "VXNlcm5hbWU6");
}

static void test_strict(void **state)
{
	unsigned char out[16];
	(void)state;
	assert_int_equal(base64_decode("", 0, out, sizeof(out)), 0);
	assert_int_equal(base64_decode("Zg==", 4, out, sizeof(out)), 1);
	assert_memory_equal(out, "f", 1);
	assert_int_equal(base64_decode("Zm8=", 4, out, sizeof(out)), 2);
	assert_int_equal(base64_decode("Zm9v", 4, out, sizeof(out)), 3);
	assert_memory_equal(out, "foo", 3);
	/* white space, the URL alphabet, data after padding, padding too early */
	assert_int_equal(base64_decode("Zm9v\r\n", 6, out, sizeof(out)), -1);
	assert_int_equal(base64_decode("Zm9v Zg==", 9, out, sizeof(out)), -1);
	assert_int_equal(base64_decode("-_-_", 4, out, sizeof(out)), -1);
	assert_int_equal(base64_decode("Zg=a", 4, out, sizeof(out)), -1);
	assert_int_equal(base64_decode("Z===", 4, out, sizeof(out)), -1);
	assert_int_equal(base64_decode("Zm9vZg==Zm9v", 12, out, sizeof(out)), -1);
	/* exactly enough room, and one byte too little */
	assert_int_equal(base64_decode("Zm9v", 4, out, 3), 3);
	assert_int_equal(base64_decode("Zm9v", 4, out, 2), -1);
}

static void test_mime(void **state)
{
	static const char body[] = "SGVsbG8s\r\nIHdvcmxk\r\nIQ==\r\nignored after the end";
	unsigned char out[BASE64_DECODED_MAX(sizeof(body))];
	(void)state;
	assert_int_equal(base64_decode_mime(body, strlen(body), out, sizeof(out)), 13);
	assert_memory_equal(out, "Hello, world!", 13);
	/* junk between the characters is skipped, as RFC 2045 says */
	assert_int_equal(base64_decode_mime("Zm*9v!", 6, out, sizeof(out)), 3);
	assert_memory_equal(out, "foo", 3);
	assert_int_equal(base64_decode_mime("Zm9vYmFy", 8, out, 5), -1);
}

static void test_round_trip(void **state)
{
	unsigned char data[256], back[256];
	char enc[BASE64_ENCODED_SIZE(256)];
	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 7 + 3);
	for (size_t len = 0; len <= sizeof(data); len += 1 + len / 8) {
		assert_int_equal(base64_encode(data, len, enc, BASE64_ENCODED_SIZE(len)), 0);
		assert_int_equal(strlen(enc), BASE64_ENCODED_SIZE(len) - 1);
		assert_int_equal(base64_decode(enc, strlen(enc), back, sizeof(back)), (long)len);
		assert_memory_equal(back, data, len);
		assert_int_equal(base64_decode_mime(enc, strlen(enc), back, sizeof(back)),
				 (long)len);
		assert_memory_equal(back, data, len);
	}
	assert_int_equal(base64_encode(data, 3, enc, 4), -1); /* no room for the NUL */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_smtp_auth),
	    cmocka_unit_test(test_strict),
	    cmocka_unit_test(test_mime),
	    cmocka_unit_test(test_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
