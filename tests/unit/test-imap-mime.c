/* Unit tests of imapd/mime.c: part ranges, sections, BODYSTRUCTURE and
 * ENVELOPE text, search fields. (The module is included: unit binaries link
 * libindex/libmk only.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "imapd/mime.c"
#include "imapd/wire.c"

static const char msg[] =
	"From: \"Doe, John\" <john@example.org>\r\n"
	"To: a@example.org, Friends: b@x.org;\r\n"
	"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
	"Date: Tue, 3 Feb 2004 10:00:00 +0100\r\n"
	"Message-ID: <id@example.org>\r\n"
	"Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
	"\r\n"
	"preamble\r\n"
	"--XX\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"\r\n"
	"line one\r\nline two\r\n"
	"--XX\r\n"
	"Content-Type: message/rfc822\r\n"
	"\r\n"
	"Subject: inner\r\n"
	"\r\n"
	"inner text\r\n"
	"--XX--\r\n"
	"epilogue\r\n";

static void section(const char *spec, const char *want)
{
	size_t start, len;
	struct buf out;
	buf_init(&out, 1 << 16);
	assert_int_equal(mime_section(msg, sizeof(msg) - 1, spec, &start, &len, &out), 0);
	if (start == SIZE_MAX) {
		assert_int_equal(out.len, strlen(want));
		assert_memory_equal(out.data, want, out.len);
	} else {
		assert_int_equal(len, strlen(want));
		assert_memory_equal(msg + start, want, len);
	}
	buf_free(&out);
}

static void test_sections(void **state)
{
	(void)state;
	section("1", "line one\r\nline two");
	section("1.MIME", "Content-Type: text/plain; charset=utf-8\r\n\r\n");
	section("2", "Subject: inner\r\n\r\ninner text");
	section("2.HEADER", "Subject: inner\r\n\r\n");
	section("2.TEXT", "inner text");
	section("2.1", "inner text");
	section("HEADER.FIELDS (subject message-id)",
		"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nMessage-ID: <id@example.org>\r\n\r\n");
	section("3", "");      /* no such part: empty */
	section("1.1", "");    /* a text part has no sub-parts */
	size_t s, l;
	struct buf out;
	buf_init(&out, 1024);
	assert_int_equal(mime_section(msg, sizeof(msg) - 1, "BOGUS", &s, &l, &out), -1);
	assert_int_equal(mime_section(msg, sizeof(msg) - 1, "MIME", &s, &l, &out), -1);
	assert_int_equal(mime_section(msg, sizeof(msg) - 1, "0", &s, &l, &out), -1);
	buf_free(&out);
}

static void test_describe(void **state)
{
	struct buf env, body, bs;
	(void)state;
	buf_init(&env, 1 << 16);
	buf_init(&body, 1 << 16);
	buf_init(&bs, 1 << 16);
	assert_int_equal(mime_describe(msg, sizeof(msg) - 1, &env, &body, &bs), 0);
	assert_string_equal(env.data,
			    "(\"Tue, 3 Feb 2004 10:00:00 +0100\" \"=?utf-8?q?Gr=C3=BC=C3=9Fe?=\" "
			    "((\"Doe, John\" NIL \"john\" \"example.org\")) ((\"Doe, John\" NIL \"john\" \"example.org\")) "
			    "((\"Doe, John\" NIL \"john\" \"example.org\")) ((NIL NIL \"a\" \"example.org\")"
			    "(NIL NIL \"Friends\" NIL)(NIL NIL \"b\" \"x.org\")(NIL NIL NIL NIL)) NIL NIL NIL "
			    "\"<id@example.org>\")");
	assert_string_equal(body.data,
			    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 18 1)"
			    "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 28 (NIL \"inner\" NIL NIL NIL NIL NIL NIL NIL NIL) "
			    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 10 0) 2) \"MIXED\")");
	assert_non_null(strstr(bs.data, "\"MIXED\" (\"BOUNDARY\" \"XX\") NIL NIL NIL)"));
	buf_free(&env);
	buf_free(&body);
	buf_free(&bs);
}

static void test_search_fields(void **state)
{
	struct buf b;
	(void)state;
	buf_init(&b, 1 << 16);
	assert_int_equal(mime_search_fields(msg, sizeof(msg) - 1, &b), 0);
	/* Subject: raw, TAB, decoded */
	assert_string_equal(b.data, "=?utf-8?q?Gr=C3=BC=C3=9Fe?=\tGrüße");
	const char *p = b.data;
	for (int i = 0; i < 5; i++)
		p += strlen(p) + 1;
	char want[32];
	snprintf(want, sizeof(want), "%lld", mime_days_from_civil(2004, 2, 3));
	assert_string_equal(p, want);
	assert_int_equal(mime_days_from_civil(1970, 1, 1), 0);
	assert_int_equal(mime_days_from_civil(2000, 3, 1), 11017);
	buf_free(&b);
}

static void test_degenerate(void **state)
{
	struct buf env, bs;
	(void)state;
	buf_init(&env, 1 << 16);
	buf_init(&bs, 1 << 16);
	/* no header/body separator, a multipart without its boundary, deep nesting */
	const char *weird[] = {"Subject: x", "", "\r\n", "Content-Type: multipart/mixed\r\n\r\nbody\r\n",
			       "Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n--a\r\n--a--"};
	for (size_t i = 0; i < sizeof(weird) / sizeof(weird[0]); i++) {
		buf_reset(&env);
		buf_reset(&bs);
		assert_int_equal(mime_describe(weird[i], strlen(weird[i]), &env, NULL, &bs), 0);
		assert_true(bs.len > 0 && bs.data[0] == '(');
	}
	char deep[4096];
	size_t o = 0;
	for (int i = 0; i < 60; i++)
		o += (size_t)snprintf(deep + o, sizeof(deep) - o, "Content-Type: message/rfc822\r\n\r\n");
	assert_int_equal(mime_describe(deep, o, &env, NULL, &bs), 0);
	buf_free(&env);
	buf_free(&bs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sections),
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_search_fields),
		cmocka_unit_test(test_degenerate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
