/* Unit tests of imapd/managesieve_parse.c: commands, quoted strings and
 * literals, prefixes ("need more"), errors that skip to the line's end, a
 * literal over the limit. (Unit test binaries link libindex/libmk only: the
 * module is included.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "imapd/managesieve_parse.c"

#define S(x) x, sizeof(x) - 1

static void test_commands(void **state)
{
	struct ms_cmd c;
	(void)state;
	assert_int_equal(ms_parse(S("LOGOUT\r\n"), 100, &c), MS_DONE);
	assert_string_equal(c.name, "LOGOUT");
	assert_int_equal(c.nargs, 0);
	assert_int_equal(c.consumed, 8);
	ms_cmd_free(&c);
	assert_int_equal(
	    ms_parse(S("putScript \"my \\\"one\\\"\" {5+}\r\nkeep;\r\nNOOP\r\n"), 100, &c),
	    MS_DONE);
	assert_string_equal(c.name, "PUTSCRIPT");
	assert_int_equal(c.nargs, 2);
	assert_string_equal(c.args[0].s, "my \"one\"");
	assert_int_equal(c.args[1].len, 5);
	assert_memory_equal(c.args[1].s, "keep;", 5);
	assert_true(c.args[1].literal);
	assert_int_equal(c.consumed, strlen("putScript \"my \\\"one\\\"\" {5+}\r\nkeep;\r\n"));
	ms_cmd_free(&c);
	assert_int_equal(ms_parse(S("HAVESPACE \"x\" 1000\n"), 100, &c), MS_DONE);
	assert_string_equal(c.args[1].s, "1000");
	ms_cmd_free(&c);
	/* a SASL response line: a string without a command name */
	assert_int_equal(ms_parse_response(S("\"AGJvYgBzZWNyZXQ=\"\r\n"), 100, &c), MS_DONE);
	assert_string_equal(c.args[0].s, "AGJvYgBzZWNyZXQ=");
	ms_cmd_free(&c);
	assert_int_equal(ms_parse_response(S("*\r\n"), 100, &c), MS_DONE);
	assert_string_equal(c.args[0].s, "*");
	ms_cmd_free(&c);
}

static void test_prefixes_need_more(void **state)
{
	const char cmd[] = "PUTSCRIPT \"a\" {11+}\r\nif true {}\n\r\n";
	struct ms_cmd c;
	(void)state;
	for (size_t n = 0; n < sizeof(cmd) - 1; n++)
		assert_int_equal(ms_parse(cmd, n, 100, &c), MS_MORE);
	assert_int_equal(ms_parse(cmd, sizeof(cmd) - 1, 100, &c), MS_DONE);
	assert_memory_equal(c.args[1].s, "if true {}\n", 11);
	ms_cmd_free(&c);
}

static void test_errors_and_limits(void **state)
{
	struct ms_cmd c;
	(void)state;
	assert_int_equal(ms_parse(S("PUTSCRIPT \"a\nNOOP\r\n"), 100, &c), MS_ERROR);
	assert_int_equal(c.consumed, strlen("PUTSCRIPT \"a\n"));
	assert_string_equal(c.err, "bad quoted string");
	assert_int_equal(ms_parse(S("\"x\"\r\n"), 100, &c), MS_ERROR);
	assert_int_equal(ms_parse(S("NOOP a b c d e\r\n"), 100, &c), MS_ERROR);
	assert_string_equal(c.err, "too many arguments");
	/* a literal over the limit: skipped, not buffered */
	assert_int_equal(ms_parse(S("PUTSCRIPT \"big\" {1048576+}\r\n"), 524288, &c), MS_TOOBIG);
	assert_int_equal(c.skip, 1048576);
	assert_int_equal(c.consumed, strlen("PUTSCRIPT \"big\" {1048576+}\r\n"));
	assert_int_equal(ms_parse(S("PUTSCRIPT \"a\" {99999999999999999999+}\r\n"), 100, &c),
			 MS_ERROR);
	/* a line without its end, longer than MS_MAX_LINE: an error, not a wait */
	static char longline[MS_MAX_LINE + 100];
	memset(longline, 'A', sizeof(longline));
	assert_int_equal(ms_parse(longline, sizeof(longline), 100, &c), MS_ERROR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_commands),
	    cmocka_unit_test(test_prefixes_need_more),
	    cmocka_unit_test(test_errors_and_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
