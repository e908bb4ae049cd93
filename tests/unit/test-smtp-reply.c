/* test-smtp-reply — smtpout/reply.c, the client's reply parser: single and
 * multi-line replies, bytes fed in pieces, enhanced status codes, EHLO
 * keywords, and what is refused (a code that changes, a line too long, not a
 * reply at all). The parser is compiled in (it lives in a program folder). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "smtpout/reply.c"

static struct smtp_reply r;

static void test_single_and_multi(void **state)
{
	size_t used;
	(void)state;
	const char *one = "250 2.1.5 Ok\r\nNEXT";
	assert_int_equal(smtp_reply_parse(one, strlen(one), &r, &used), 1);
	assert_int_equal(r.code, 250);
	assert_string_equal(r.dsn, "2.1.5");
	assert_string_equal(r.text, "250 2.1.5 Ok");
	assert_int_equal(used, 14);
	const char *ehlo = "250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-AUTH PLAIN "
			   "LOGIN\r\n250 STARTTLS\r\n";
	assert_int_equal(smtp_reply_parse(ehlo, strlen(ehlo), &r, &used), 1);
	assert_int_equal(used, strlen(ehlo));
	assert_int_equal(r.nlines, 5);
	assert_string_equal(r.dsn, "2.0.0"); /* none given: from the code */
	char p[64];
	assert_true(smtp_reply_has(&r, "pipelining", NULL, 0));
	assert_true(smtp_reply_has(&r, "SIZE", p, sizeof(p)));
	assert_string_equal(p, "10240000");
	assert_true(smtp_reply_has(&r, "AUTH", p, sizeof(p)));
	assert_string_equal(p, "PLAIN LOGIN");
	assert_true(smtp_reply_has(&r, "STARTTLS", NULL, 0));
	assert_false(smtp_reply_has(&r, "CHUNKING", NULL, 0));
	assert_false(smtp_reply_has(&r, "SIZ", NULL, 0));
	/* a bare "250" and a bare LF */
	assert_int_equal(smtp_reply_parse("250\n", 4, &r, &used), 1);
	assert_int_equal(r.code, 250);
	assert_int_equal(used, 4);
}

static void test_pieces(void **state)
{
	const char *all = "550-5.1.1 first\r\n550 5.1.1 <x@y>: unknown\r\n";
	size_t used;
	(void)state;
	for (size_t n = 0; n < strlen(all); n++)
		assert_int_equal(smtp_reply_parse(all, n, &r, &used), 0);
	assert_int_equal(smtp_reply_parse(all, strlen(all), &r, &used), 1);
	assert_string_equal(r.dsn, "5.1.1");
	char line[128];
	smtp_reply_line(&r, line, sizeof(line));
	assert_string_equal(line, "550-5.1.1 first");
}

static void test_refused(void **state)
{
	size_t used;
	char big[REPLY_LINE_MAX + 64];
	(void)state;
	assert_int_equal(smtp_reply_parse("HELLO\r\n", 7, &r, &used), -1);
	assert_int_equal(smtp_reply_parse("2\x00\xff\r\n", 5, &r, &used), -1);
	assert_int_equal(smtp_reply_parse("250-a\r\n550 b\r\n", 14, &r, &used), -1);
	assert_int_equal(smtp_reply_parse("250xyz\r\n", 8, &r, &used), -1);
	assert_int_equal(smtp_reply_parse("650 no\r\n", 8, &r, &used), -1);
	memset(big, 'a', sizeof(big));
	memcpy(big, "250 ", 4);
	assert_int_equal(smtp_reply_parse(big, sizeof(big), &r, &used), -1);
	/* an enhanced code of another class than the reply is not taken */
	assert_int_equal(smtp_reply_parse("450 5.1.1 odd\r\n", 15, &r, &used), 1);
	assert_string_equal(r.dsn, "4.0.0");
	/* control characters are made printable */
	assert_int_equal(smtp_reply_parse("250 a\tb\x1b\r\n", 10, &r, &used), 1);
	assert_string_equal(r.text, "250 a?b?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_single_and_multi),
	    cmocka_unit_test(test_pieces),
	    cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
