/* Unit tests of imapd/parse.c: framing with literals and limits, argument
 * trees, sequence sets. The parser is pure, so it is tested byte by byte.
 * (Unit test binaries link libindex/libmk only: the module is included.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "imapd/parse.c"

static int frame_all(struct imap_framer *f, const char *s, size_t *len_r)
{
	return imap_frame(f, s, strlen(s), len_r);
}

static void test_frame_simple(void **state)
{
	struct imap_framer f;
	size_t len = 0;
	(void)state;
	imap_frame_init(&f, 100, 1000);
	assert_int_equal(frame_all(&f, "a1 NOOP", &len), IMAP_PARSE_MORE);
	assert_int_equal(frame_all(&f, "a1 NOOP\r\nb2 NOOP\r\n", &len), IMAP_PARSE_DONE);
	assert_int_equal(len, 9);
}

static void test_frame_byte_by_byte(void **state)
{
	const char *cmd = "a1 LOGIN {5}\r\nalice {6+}\r\nsecret\r\n";
	struct imap_framer f;
	size_t len = 0, n = strlen(cmd);
	int conts = 0, r = IMAP_PARSE_MORE;
	(void)state;
	imap_frame_init(&f, 100, 1000);
	for (size_t i = 1; i <= n; i++) {
		r = imap_frame(&f, cmd, i, &len);
		if (r == IMAP_PARSE_MORE && f.need_continuation)
			conts++;
		if (r != IMAP_PARSE_MORE)
			break;
	}
	assert_int_equal(r, IMAP_PARSE_DONE);
	assert_int_equal(len, n);
	assert_int_equal(conts, 1); /* only the synchronising literal asks for "+" */
}

static void test_frame_literal_holds_crlf(void **state)
{
	const char *cmd = "a APPEND INBOX {4}\r\n\r\n\r\n\r\n";
	struct imap_framer f;
	size_t len;
	(void)state;
	imap_frame_init(&f, 100, 1000);
	assert_int_equal(frame_all(&f, cmd, &len), IMAP_PARSE_MORE);
	assert_true(f.need_continuation);
	assert_int_equal(frame_all(&f, cmd, &len), IMAP_PARSE_DONE);
	assert_int_equal(len, strlen(cmd));
}

static void test_frame_limits(void **state)
{
	struct imap_framer f;
	size_t len;
	char big[300];
	(void)state;
	imap_frame_init(&f, 100, 1000);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(frame_all(&f, big, &len), IMAP_PARSE_ERROR); /* no newline, too long */
	imap_frame_init(&f, 100, 1000);
	assert_int_equal(frame_all(&f, "a APPEND INBOX {1001}\r\n", &len), IMAP_PARSE_ERROR);
	assert_true(f.literal_too_big);
	assert_true(f.literal_sync);
	imap_frame_init(&f, 100, 1000);
	assert_int_equal(frame_all(&f, "a APPEND INBOX {99999999999999999999999}\r\n", &len),
			 IMAP_PARSE_ERROR);
	assert_true(f.literal_too_big);
	imap_frame_init(&f, 100, 1000);
	assert_int_equal(frame_all(&f, "a APPEND INBOX {18446744073709551616+}\r\n", &len),
			 IMAP_PARSE_ERROR);
	imap_frame_init(&f, 100, 1000);
	assert_int_equal(frame_all(&f, "a APPEND INBOX {2000+}\r\n", &len), IMAP_PARSE_ERROR);
	assert_false(f.literal_sync);
}

static void test_parse_args(void **state)
{
	struct imap_arena *a = imap_arena_new();
	struct imap_command c;
	const char *err = NULL;
	const char *s = "A001 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100> "
			"\"q\\\"x\" NIL) {3}\r\nabc\r\n";
	(void)state;
	assert_int_equal(imap_parse_command(a, s, strlen(s), &c, &err), 0);
	assert_string_equal(c.tag, "A001");
	assert_string_equal(c.name, "FETCH");
	assert_true(c.uid);
	assert_int_equal(c.nargs, 3);
	assert_int_equal(c.args[0].type, IMAP_ARG_ATOM);
	assert_string_equal(c.args[0].str, "1:*");
	assert_int_equal(c.args[1].type, IMAP_ARG_LIST);
	assert_int_equal(c.args[1].len, 4);
	assert_string_equal(c.args[1].list[1].str, "BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>");
	assert_int_equal(c.args[1].list[2].type, IMAP_ARG_QUOTED);
	assert_string_equal(c.args[1].list[2].str, "q\"x");
	assert_int_equal(c.args[1].list[3].type, IMAP_ARG_NIL);
	assert_int_equal(c.args[2].type, IMAP_ARG_LITERAL);
	assert_int_equal(c.args[2].len, 3);
	assert_memory_equal(c.args[2].str, "abc", 3);
	imap_arena_free(&a);
	assert_null(a);
}

static void test_parse_errors(void **state)
{
	const char *bad[] = {
	    "\r\n",
	    "A\r\n",
	    "A NOOP (\r\n",
	    "A NOOP )\r\n",
	    "A NOOP \"abc\r\n",
	    "A NOOP {5}\r\nab\r\n",
	    "A NOOP BODY[abc\r\n",
	    "+ NOOP\r\n",
	    "A NOOP \"a\"b\r\n",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct imap_arena *a = imap_arena_new();
		struct imap_command c;
		const char *err = NULL;
		assert_int_equal(imap_parse_command(a, bad[i], strlen(bad[i]), &c, &err), -1);
		assert_non_null(err);
		imap_arena_free(&a);
	}
}

/* '[' is an atom character; only fetch attributes read "[...]" with spaces */
static void test_parse_brackets(void **state)
{
	(void)state;
	const char *s = "A SELECT !#$&'+,-.0123456789:;<=>?@^_`|[}\r\n";
	struct imap_arena *a = imap_arena_new();
	struct imap_command c;
	const char *err = NULL;
	assert_int_equal(imap_parse_command(a, s, strlen(s), &c, &err), 0);
	assert_int_equal(c.nargs, 1);
	assert_string_equal(c.args[0].str, "!#$&'+,-.0123456789:;<=>?@^_`|[}");
	const char *l = "A LIST \"\" foo[bar x]%\r\n";
	assert_int_equal(imap_parse_command(a, l, strlen(l), &c, &err), 0);
	assert_int_equal(c.nargs, 3);
	assert_string_equal(c.args[1].str, "foo[bar");
	const char *f =
	    "A FETCH 1 (BINARY.PEEK[1]<0.7> BINARY.SIZE[2] BODY[HEADER.FIELDS (A B)])\r\n";
	assert_int_equal(imap_parse_command(a, f, strlen(f), &c, &err), 0);
	assert_int_equal(c.args[1].len, 3);
	assert_string_equal(c.args[1].list[2].str, "BODY[HEADER.FIELDS (A B)]");
	imap_arena_free(&a);
}

/* A synchronising literal sent before "+" is framed from what is buffered. */
static void test_frame_early_literal(void **state)
{
	(void)state;
	const char *s = "t APPEND INBOX {3}\r\nabc\r\n";
	struct imap_framer f;
	size_t len;
	imap_frame_init(&f, 1024, 1024);
	assert_int_equal(imap_frame(&f, s, strlen(s), &len), IMAP_PARSE_MORE);
	assert_true(f.need_continuation);
	assert_true(f.pos < strlen(s)); /* the caller sees bytes left and frames again */
	assert_int_equal(imap_frame(&f, s, strlen(s), &len), IMAP_PARSE_DONE);
	assert_int_equal(len, strlen(s));
}

static void test_parse_depth(void **state)
{
	char s[200];
	struct imap_arena *a = imap_arena_new();
	struct imap_command c;
	const char *err;
	size_t o = 0;
	(void)state;
	o += (size_t)snprintf(s, sizeof(s), "A SEARCH ");
	for (int i = 0; i < 40; i++)
		s[o++] = '(';
	s[o++] = 'A';
	for (int i = 0; i < 40; i++)
		s[o++] = ')';
	memcpy(s + o, "\r\n", 3);
	assert_int_equal(imap_parse_command(a, s, strlen(s), &c, &err), -1);
	assert_string_equal(err, "Lists nested too deeply");
	imap_arena_free(&a);
}

static void test_seqset(void **state)
{
	struct imap_arena *a = imap_arena_new();
	struct imap_seqset s;
	(void)state;
	assert_int_equal(imap_seqset_parse(a, "1:3,7,10:*", 12, &s), 0);
	assert_int_equal(s.n, 3);
	assert_true(imap_seqset_contains(&s, 2));
	assert_false(imap_seqset_contains(&s, 5));
	assert_true(imap_seqset_contains(&s, 12));
	assert_int_equal(imap_seqset_parse(a, "*:4", 2, &s), 0);
	assert_int_equal(s.r[0].lo, 2);
	assert_int_equal(s.r[0].hi, 4);
	assert_int_equal(imap_seqset_parse(a, "0", 5, &s), -1);
	assert_int_equal(imap_seqset_parse(a, "1,", 5, &s), -1);
	assert_int_equal(imap_seqset_parse(a, "4294967296", 5, &s), -1);
	assert_int_equal(imap_seqset_parse(a, "1:2:3", 5, &s), -1);
	imap_arena_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_frame_simple),
	    cmocka_unit_test(test_frame_byte_by_byte),
	    cmocka_unit_test(test_frame_literal_holds_crlf),
	    cmocka_unit_test(test_frame_limits),
	    cmocka_unit_test(test_parse_args),
	    cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_parse_depth),
	    cmocka_unit_test(test_seqset),
	    cmocka_unit_test(test_parse_brackets),
	    cmocka_unit_test(test_frame_early_literal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
