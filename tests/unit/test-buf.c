/* Unit tests of lib/buf.c: limits, formatting, consuming. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/buf.h"

static void test_append_and_nul(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 16);
	assert_null(b.data);
	assert_int_equal(buf_append_str(&b, "hello"), 0);
	assert_int_equal(b.len, 5);
	assert_string_equal(b.data, "hello");
	assert_int_equal(buf_append(&b, " world", 6), 0);
	assert_string_equal(b.data, "hello world");
	assert_true(b.cap >= b.len + 1);
	buf_free(&b);
	assert_null(b.data);
}

static void test_max_enforced(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 8);
	assert_int_equal(buf_append_str(&b, "12345678"), 0);
	assert_int_equal(b.len, 8);
	/* One more byte passes max: refused, buffer unchanged. */
	assert_int_equal(buf_append(&b, "9", 1), -1);
	assert_int_equal(b.len, 8);
	assert_string_equal(b.data, "12345678");
	assert_true(b.cap <= 9);
	/* Appending nothing is fine even when full. */
	assert_int_equal(buf_append(&b, "", 0), 0);
	/* A huge length must not overflow the check. */
	assert_int_equal(buf_append(&b, "x", SIZE_MAX), -1);
	buf_free(&b);
}

static void test_printf(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 20);
	assert_int_equal(buf_printf(&b, "%s=%d", "n", 42), 0);
	assert_string_equal(b.data, "n=42");
	assert_int_equal(buf_printf(&b, ", %05d", 7), 0);
	assert_string_equal(b.data, "n=42, 00007");
	/* Would pass max (20): refused and unchanged. */
	assert_int_equal(buf_printf(&b, "%s", "0123456789"), -1);
	assert_string_equal(b.data, "n=42, 00007");
	assert_int_equal(b.len, 11);
	buf_free(&b);
}

static void test_printf_grows(void **state)
{
	struct buf b;
	size_t i;

	(void)state;
	buf_init(&b, 100000);
	for (i = 0; i < 10000; i++)
		assert_int_equal(buf_printf(&b, "%zu,", i % 10), 0);
	assert_int_equal(b.len, 20000);
	assert_int_equal(b.data[b.len], '\0');
	assert_memory_equal(b.data + 19996, "8,9,", 4);
	buf_free(&b);
}

static void test_consume_reset(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 64);
	assert_int_equal(buf_append_str(&b, "line1\r\nline2\r\n"), 0);
	buf_consume(&b, 7);
	assert_string_equal(b.data, "line2\r\n");
	assert_int_equal(b.len, 7);
	buf_consume(&b, 7);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	assert_int_equal(buf_append_str(&b, "abc"), 0);
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	assert_true(b.cap > 0); /* allocation kept */
	buf_reset(&b);
	buf_free(&b);
	/* reset of a never-used buffer is harmless */
	buf_init(&b, 4);
	buf_reset(&b);
	buf_consume(&b, 0);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

static void test_binary(void **state)
{
	struct buf b;
	const char bin[] = {'a', '\0', 'b'};

	(void)state;
	buf_init(&b, 10);
	assert_int_equal(buf_append(&b, bin, 3), 0);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, bin, 3);
	assert_int_equal(b.data[3], '\0');
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_and_nul), cmocka_unit_test(test_max_enforced),
		cmocka_unit_test(test_printf),	       cmocka_unit_test(test_printf_grows),
		cmocka_unit_test(test_consume_reset),  cmocka_unit_test(test_binary),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
