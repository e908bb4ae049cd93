/* Unit tests of index/maildir_name.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "index/maildir_name.h"
#include "index/store.h"

static void test_parse(void **state)
{
	(void)state;
	char base[128];
	uint32_t flags;
	int fwd;

	assert_int_equal(maildir_name_parse("1700000000.M4711.host,S=5123:2,FRS", base,
					    sizeof(base), &flags, &fwd),
			 0);
	assert_string_equal(base, "1700000000.M4711.host,S=5123");
	assert_int_equal(flags, STORE_F_FLAGGED | STORE_F_ANSWERED | STORE_F_SEEN);
	assert_int_equal(fwd, 0);
	assert_int_equal(maildir_name_parse("abc:2,DPTa", base, sizeof(base), &flags, &fwd), 0);
	assert_int_equal(flags, STORE_F_DRAFT | STORE_F_DELETED);
	assert_int_equal(fwd, 1);
	assert_int_equal(maildir_name_parse("plain", base, sizeof(base), &flags, NULL), 0);
	assert_string_equal(base, "plain");
	assert_int_equal(flags, 0);
	assert_int_equal(maildir_name_parse(".hidden", base, sizeof(base), &flags, NULL), -1);
	assert_int_equal(maildir_name_parse("", base, sizeof(base), &flags, NULL), -1);
	assert_int_equal(maildir_name_parse("a\nb", base, sizeof(base), &flags, NULL), -1);
	assert_int_equal(maildir_name_parse("toolong:2,S", base, 4, &flags, NULL), -1);
}

static void test_format(void **state)
{
	(void)state;
	char out[64];

	assert_int_equal(maildir_name_format(
			     "b", STORE_F_SEEN | STORE_F_DRAFT | STORE_F_ANSWERED | STORE_F_RECENT,
			     "foo $Forwarded", out, sizeof(out)),
			 0);
	assert_string_equal(out, "b:2,DPRS");
	assert_int_equal(maildir_name_format("b", 0, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "b:2,");
	assert_int_equal(maildir_name_format("0123456789", 0, NULL, out, 8), -1);
	assert_true(maildir_base_valid("1700000000.M1.mailkeep"));
	assert_false(maildir_base_valid("a:b"));
	assert_false(maildir_base_valid(".a"));
	assert_false(maildir_base_valid("a b"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_parse),
					   cmocka_unit_test(test_format)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
