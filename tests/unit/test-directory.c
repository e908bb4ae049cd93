/* Unit tests of index/dir.c: result names and dir_close's ownership rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "index/dir.h"

static int closed;

static void fake_close(struct directory *dir)
{
	free(dir->impl);
	dir->impl = NULL;
	closed++;
}

static const struct directory_ops fake_ops = {.name = "fake", .close = fake_close};

static void test_result_str(void **state)
{
	(void)state;
	assert_string_equal(dir_result_str(DIR_OK), "ok");
	assert_string_equal(dir_result_str(DIR_NOTFOUND), "not found");
	assert_string_equal(dir_result_str(DIR_BADPASS), "bad password");
	assert_string_equal(dir_result_str(DIR_TEMPFAIL), "temporary failure");
	assert_string_equal(dir_result_str(DIR_READONLY), "read-only directory");
	assert_string_equal(dir_result_str(DIR_ERROR), "error");
	assert_string_equal(dir_result_str((enum dir_result)42), "unknown result");
}

static void test_close(void **state)
{
	struct directory *dir = calloc(1, sizeof(*dir));

	(void)state;
	assert_non_null(dir);
	dir->ops = &fake_ops;
	dir->impl = malloc(16); /* freed by the backend's close; ASan catches leaks */
	closed = 0;
	dir_close(&dir);
	assert_null(dir);
	assert_int_equal(closed, 1);
	dir_close(&dir); /* NULL: no-op */
	dir_close(NULL);
	assert_int_equal(closed, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_result_str),
		cmocka_unit_test(test_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
