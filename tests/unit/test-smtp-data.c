/* test-smtp-data — smtpin/data.c: only CRLF.CRLF ends DATA, every SMTP
 * smuggling end-of-data variant is content (and flagged bare), dot
 * unstuffing, byte-by-byte feeding, the size limit, BDAT's checks. */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "smtpin/data.c"

/* Feeds in pieces of `step` bytes. Returns bytes consumed at the end, or -1. */
static long feed(struct smtp_data *d, const char *in, size_t len, size_t step)
{
	size_t off = 0;
	while (off < len) {
		size_t n = len - off < step ? len - off : step, used;
		int r = smtp_data_feed(d, in + off, n, &used);
		off += used;
		if (r == 0)
			return (long)off;
	}
	return -1;
}

static void test_end_and_unstuffing(void **state)
{
	static const char in[] = "Subject: x\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n";
	(void)state;
	for (size_t step = 1; step <= sizeof(in); step++) {
		struct buf b;
		struct smtp_data d;
		buf_init(&b, 1 << 20);
		smtp_data_init(&d, &b, 1 << 20);
		long used = feed(&d, in, sizeof(in) - 1, step);
		assert_int_equal(used, sizeof(in) - 1 - strlen("QUIT\r\n"));
		assert_string_equal(b.data, "Subject: x\r\n\r\n.leading dot\r\n");
		assert_false(d.bare_cr || d.bare_lf || d.too_big);
		buf_free(&b);
	}
}

static void test_empty_message(void **state)
{
	struct buf b;
	struct smtp_data d;
	(void)state;
	buf_init(&b, 100);
	smtp_data_init(&d, &b, 100);
	assert_int_equal(feed(&d, ".\r\n", 3, 1), 3);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

static void test_smuggling_variants(void **state)
{
	static const char *ends[] = {
	    "\n.\n",   "\n.\r\n", "\r.\r",	 "\r.\n",	"\n.\r",	 "\r.\r\n",
	    "\r\n.\r", "\r\n.\n", "\r\n\0.\r\n", "\r\n.\r\r\n", "\r\r\n.\r\r\n",
	};
	static const size_t lens[] = {3, 4, 3, 3, 3, 4, 4, 4, 6, 6, 7};
	(void)state;
	for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
		char in[256];
		size_t n = 0;
		memcpy(in + n, "Subject: x\r\n\r\nbody", 18);
		n += 18;
		memcpy(in + n, ends[i], lens[i]);
		n += lens[i];
		const char *smuggled = "MAIL FROM:<e@x>\r\nRCPT TO:<v@y>\r\nDATA\r\nevil\r\n";
		memcpy(in + n, smuggled, strlen(smuggled));
		n += strlen(smuggled);
		memcpy(in + n, "\r\n.\r\n", 5);
		n += 5;
		for (size_t step = 1; step <= n; step += 3) {
			struct buf b;
			struct smtp_data d;
			buf_init(&b, 4096);
			smtp_data_init(&d, &b, 4096);
			/* the only end is the final CRLF.CRLF: the smuggled commands are content */
			assert_int_equal(feed(&d, in, n, step), (long)n);
			assert_non_null(memmem(b.data, b.len, "MAIL FROM:<e@x>", 15));
			if (i != 8) /* "\r\n\0.\r\n" has no bare CR or LF, only a NUL */
				assert_true(d.bare_cr || d.bare_lf);
			else
				assert_true(d.nul);
			buf_free(&b);
		}
	}
}

static void test_size_limit(void **state)
{
	struct buf b;
	struct smtp_data d;
	char line[1000];
	size_t used;
	(void)state;
	memset(line, 'x', sizeof(line) - 2);
	line[998] = '\r';
	line[999] = '\n';
	buf_init(&b, 1 << 20);
	buf_append(&b, "Received: ours\r\n", 16);
	smtp_data_init(&d, &b, 5000);
	for (int i = 0; i < 100; i++)
		assert_int_equal(smtp_data_feed(&d, line, sizeof(line), &used), SMTP_DATA_MORE);
	assert_true(d.too_big);
	assert_true(b.len <= 5000 + 16);
	assert_int_equal(smtp_data_feed(&d, ".\r\n", 3, &used), 0);
	assert_int_equal(d.size, 100000);
	buf_free(&b);
}

static void test_bdat(void **state)
{
	struct buf b;
	struct smtp_data d;
	(void)state;
	buf_init(&b, 1000);
	smtp_data_init(&d, &b, 1000);
	smtp_bdat_feed(&d, "a\r", 2);
	smtp_bdat_feed(&d, "\nb\r\n", 4);
	smtp_bdat_last(&d);
	assert_false(d.bare_cr || d.bare_lf);
	assert_string_equal(b.data, "a\r\nb\r\n");
	smtp_data_init(&d, &b, 1000);
	smtp_bdat_feed(&d, "a\r", 2);
	smtp_bdat_last(&d);
	assert_true(d.bare_cr);
	smtp_data_init(&d, &b, 1000);
	smtp_bdat_feed(&d, "a\nb", 3);
	assert_true(d.bare_lf);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_end_and_unstuffing),
	    cmocka_unit_test(test_empty_message),
	    cmocka_unit_test(test_smuggling_variants),
	    cmocka_unit_test(test_size_limit),
	    cmocka_unit_test(test_bdat),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
