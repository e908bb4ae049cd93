/* Unit tests of index/mbox.c: splitting, quoting both ways, dates, Status flags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "index/mbox.h"
#include "index/store.h"

#define S(x) x, sizeof(x) - 1

static void test_split_three(void **state)
{
	(void)state;
	const char box[] =
	    "From a@x Thu Aug 22 12:36:23 2002\nSubject: 1\n\nbody\n>From here\nFrom nodate\n\n"
	    "From b@x Fri Aug 23 01:02:03 2002\nSubject: 2\n\nFrom this is no separator: no blank "
	    "line before? yes it is\n\n"
	    "From c@x  Sat Aug 24 01:02:03 2002\r\nSubject: 3\r\n\r\nlast\r\n\r\n";
	struct mbox_reader r;
	struct mbox_msg m;

	mbox_reader_init(&r, box, sizeof(box) - 1);
	assert_int_equal(mbox_next(&r, &m), 1);
	assert_int_equal(m.from_len, strlen("a@x Thu Aug 22 12:36:23 2002"));
	assert_memory_equal(m.from, "a@x", 3);
	assert_int_equal(m.raw_len, strlen("Subject: 1\n\nbody\n>From here\nFrom nodate\n"));
	assert_memory_equal(m.raw, "Subject: 1\n\nbody\n>From here\nFrom nodate\n", m.raw_len);
	assert_int_equal(m.offset, 0);
	assert_int_equal(mbox_next(&r, &m), 1);
	assert_memory_equal(m.raw, "Subject: 2\n", 11);
	assert_int_equal(m.raw[m.raw_len - 1], '\n');
	assert_int_equal(mbox_next(&r, &m), 1);
	assert_int_equal(m.from_crlf, 1);
	assert_int_equal(m.raw_len, strlen("Subject: 3\r\n\r\nlast\r\n"));
	assert_false(m.truncated);
	assert_int_equal(mbox_next(&r, &m), 0);
}

static void test_not_mbox_and_truncated(void **state)
{
	(void)state;
	struct mbox_reader r;
	struct mbox_msg m;

	mbox_reader_init(&r, S("Subject: x\n\nhi\n"));
	assert_int_equal(mbox_next(&r, &m), -1);
	mbox_reader_init(&r, S("From a Thu Aug 22 12:36:23 2002\nSubject: x\n\nhalf a li"));
	assert_int_equal(mbox_next(&r, &m), 1);
	assert_true(m.truncated);
	assert_int_equal(m.raw_len, strlen("Subject: x\n\nhalf a li"));
	mbox_reader_init(&r, "", 0);
	assert_int_equal(mbox_next(&r, &m), 0);
}

static void test_quote_roundtrip(void **state)
{
	(void)state;
	const char msg[] = "From: x\n\nFrom me\n>From you\n>>From them\nno From\nFrom";
	size_t qlen = mbox_quoted_len(msg, sizeof(msg) - 1);
	char *q = malloc(qlen), *u = malloc(qlen);

	assert_int_equal(qlen, sizeof(msg) - 1 + 3);
	assert_int_equal(mbox_quote(msg, sizeof(msg) - 1, q), qlen);
	assert_memory_equal(q, "From: x\n\n>From me\n>>From you\n>>>From them\nno From\nFrom",
			    qlen);
	assert_int_equal(mbox_unquote(MBOX_RD, q, qlen, u), sizeof(msg) - 1);
	assert_memory_equal(u, msg, sizeof(msg) - 1);
	/* mboxo: only one level */
	const char o[] = ">From a\n>>From b\n";
	size_t n = mbox_unquote(MBOX_O, o, sizeof(o) - 1, u);
	assert_int_equal(n, sizeof(o) - 2);
	assert_memory_equal(u, "From a\n>>From b\n", n);
	free(q);
	free(u);
}

static void test_dates(void **state)
{
	(void)state;
	int64_t t;
	char out[32];

	assert_int_equal(mbox_parse_date(S("exmh@redhat.com  Thu Aug 22 12:36:23 2002"), &t), 0);
	assert_int_equal(t, 1030019783);
	mbox_format_date(t, out);
	assert_string_equal(out, "Thu Aug 22 12:36:23 2002");
	assert_int_equal(mbox_parse_date(S("x Thu Aug 22 14:36:23 2002 +0200"), &t), 0);
	assert_int_equal(t, 1030019783);
	assert_int_equal(mbox_parse_date(S("x Thu Aug  2 12:36 2002"), &t), 0);
	assert_int_equal(mbox_parse_date(S("the mountains"), &t), -1);
	assert_int_equal(mbox_parse_date(S("me on Thursday at 12:36"), &t), -1);
	assert_true(mbox_is_separator(S("From MAILER-DAEMON Mon Jan  1 00:00:00 2024")));
	assert_false(mbox_is_separator(S("From the desk of the CEO")));
}

static void test_split_from_line(void **state)
{
	(void)state;
	struct mbox_msg m;

	mbox_split_from_line(
	    S("From a Thu Aug 22 12:36:23 2002\nSubject: x\n\nFrom b Thu Aug 22 12:36:23 2002\n"),
	    &m);
	assert_non_null(m.from);
	assert_int_equal(m.raw_len, strlen("Subject: x\n\nFrom b Thu Aug 22 12:36:23 2002\n"));
	mbox_split_from_line(S("Subject: x\n\nbody\n"), &m);
	assert_null(m.from);
	assert_int_equal(m.raw_len, strlen("Subject: x\n\nbody\n"));
}

static void test_status(void **state)
{
	(void)state;
	assert_int_equal(
	    mbox_status_flags(S("Subject: a\nStatus: RO\nX-Status: AF\n\nStatus: D\n")),
	    STORE_F_SEEN | STORE_F_ANSWERED | STORE_F_FLAGGED);
	assert_int_equal(mbox_status_flags(S("Status: O\r\n\r\n")), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_split_three),	    cmocka_unit_test(test_not_mbox_and_truncated),
	    cmocka_unit_test(test_quote_roundtrip), cmocka_unit_test(test_dates),
	    cmocka_unit_test(test_split_from_line), cmocka_unit_test(test_status),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
