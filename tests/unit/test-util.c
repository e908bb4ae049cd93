/* Unit tests of lib/util.c. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/util.h"

static char tmpdir[256];

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/mk-test-util.XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	char cmd[512];

	(void)state;
	/* Tests create only a few known names. */
	snprintf(cmd, sizeof(cmd), "%s/a/b/c", tmpdir);
	rmdir(cmd);
	snprintf(cmd, sizeof(cmd), "%s/a/b", tmpdir);
	rmdir(cmd);
	snprintf(cmd, sizeof(cmd), "%s/a", tmpdir);
	rmdir(cmd);
	snprintf(cmd, sizeof(cmd), "%s/file", tmpdir);
	unlink(cmd);
	snprintf(cmd, sizeof(cmd), "%s/empty", tmpdir);
	unlink(cmd);
	rmdir(tmpdir);
	return 0;
}

static void test_strlcpy(void **state)
{
	char d[6];

	(void)state;
	assert_int_equal(mk_strlcpy(d, "abc", sizeof(d)), 3);
	assert_string_equal(d, "abc");
	assert_int_equal(mk_strlcpy(d, "abcdefgh", sizeof(d)), 8);
	assert_string_equal(d, "abcde");
	assert_int_equal(mk_strlcpy(d, "", sizeof(d)), 0);
	assert_string_equal(d, "");
	d[0] = 'x';
	assert_int_equal(mk_strlcpy(d, "abc", 0), 3);
	assert_int_equal(d[0], 'x');
}

static void test_parse_u64(void **state)
{
	uint64_t v = 99;

	(void)state;
	assert_int_equal(mk_parse_u64("0", 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(mk_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
	v = 7;
	assert_int_equal(mk_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -1);
	assert_int_equal(mk_parse_u64("", 0, 10, &v), -1);
	assert_int_equal(mk_parse_u64("-1", 0, 10, &v), -1);
	assert_int_equal(mk_parse_u64("+1", 0, 10, &v), -1);
	assert_int_equal(mk_parse_u64(" 1", 0, 10, &v), -1);
	assert_int_equal(mk_parse_u64("1 ", 0, 10, &v), -1);
	assert_int_equal(mk_parse_u64("12a", 0, 100, &v), -1);
	assert_int_equal(mk_parse_u64("11", 0, 10, &v), -1);
	assert_int_equal(mk_parse_u64("4", 5, 10, &v), -1);
	assert_int_equal(v, 7); /* untouched on failure */
	assert_int_equal(mk_parse_u64(NULL, 0, 10, &v), -1);
}

static void test_hex(void **state)
{
	const uint8_t in[] = {0x00, 0x01, 0xab, 0xff, 0x7e};
	uint8_t out[5];
	char hex[11];

	(void)state;
	mk_hex(in, sizeof(in), hex);
	assert_string_equal(hex, "0001abff7e");
	assert_int_equal(mk_unhex(hex, out, sizeof(out)), 0);
	assert_memory_equal(in, out, sizeof(in));
	assert_int_equal(mk_unhex("0001ABFF7E", out, sizeof(out)), 0);
	assert_memory_equal(in, out, sizeof(in));
	assert_int_equal(mk_unhex("0001abff7", out, sizeof(out)), -1); /* short */
	assert_int_equal(mk_unhex("0001abfg7e", out, sizeof(out)), -1);
	assert_int_equal(mk_unhex("zz", out, 1), -1);
	mk_hex(in, 0, hex);
	assert_string_equal(hex, "");
}

static void test_time(void **state)
{
	double a, b, n;

	(void)state;
	a = mk_monotonic();
	b = mk_monotonic();
	assert_true(b >= a);
	n = mk_now();
	assert_true(n > 1.6e9); /* after 2020 */
}

static void test_queue_id(void **state)
{
	char ids[1000][24];
	size_t i, j;

	(void)state;
	for (i = 0; i < 1000; i++) {
		mk_queue_id(ids[i], sizeof(ids[i]));
		assert_true(strlen(ids[i]) >= 10);
		for (j = 0; ids[i][j] != '\0'; j++)
			assert_non_null(strchr("0123456789ABCDEF", ids[i][j]));
	}
	for (i = 0; i < 1000; i++)
		for (j = i + 1; j < 1000; j++)
			assert_string_not_equal(ids[i], ids[j]);
}

static void test_write_read_file(void **state)
{
	char path[300], *data = NULL;
	size_t len = 0;
	char big[100000];
	int fd;

	(void)state;
	memset(big, 'x', sizeof(big));
	big[5] = '\0'; /* binary content survives */
	snprintf(path, sizeof(path), "%s/file", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(mk_write_all(fd, big, sizeof(big)), 0);
	close(fd);
	assert_int_equal(mk_read_file(path, sizeof(big), &data, &len), 0);
	assert_int_equal(len, sizeof(big));
	assert_memory_equal(data, big, sizeof(big));
	assert_int_equal(data[len], '\0');
	free(data);
	data = NULL;
	/* Over max: EFBIG. */
	errno = 0;
	assert_int_equal(mk_read_file(path, sizeof(big) - 1, &data, &len), -1);
	assert_int_equal(errno, EFBIG);
	assert_null(data);
	/* Missing file: ENOENT. */
	snprintf(path, sizeof(path), "%s/missing", tmpdir);
	assert_int_equal(mk_read_file(path, 100, &data, &len), -1);
	assert_int_equal(errno, ENOENT);
	/* Empty file. */
	snprintf(path, sizeof(path), "%s/empty", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(mk_read_file(path, 0, &data, &len), 0);
	assert_int_equal(len, 0);
	assert_string_equal(data, "");
	free(data);
	/* Writing to a bad fd fails with errno. */
	assert_int_equal(mk_write_all(-1, "x", 1), -1);
	assert_int_equal(errno, EBADF);
}

static void test_mkdirs(void **state)
{
	char path[300];
	struct stat st;

	(void)state;
	snprintf(path, sizeof(path), "%s/a/b/c/", tmpdir);
	assert_int_equal(mk_mkdirs(path, 0700), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	/* Again: already there is fine. */
	assert_int_equal(mk_mkdirs(path, 0700), 0);
	/* A file in the way. */
	snprintf(path, sizeof(path), "%s/file", tmpdir);
	assert_int_equal(mk_mkdirs(path, 0700), -1);
	assert_int_equal(errno, ENOTDIR);
	snprintf(path, sizeof(path), "%s/file/sub", tmpdir);
	assert_int_equal(mk_mkdirs(path, 0700), -1);
	assert_int_equal(mk_mkdirs("", 0700), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strlcpy),	       cmocka_unit_test(test_parse_u64), cmocka_unit_test(test_hex),
		cmocka_unit_test(test_time),	       cmocka_unit_test(test_queue_id),
		cmocka_unit_test(test_write_read_file), cmocka_unit_test(test_mkdirs),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
