/* Unit tests of fs/pending.c: files being written on the mount, in memory
 * and bounded. fs/ is a program: its file is compiled in here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fs/inodes.c"
#include "fs/pending.c"

static void setup_fs(struct fs *fs, uint64_t max, uint64_t total)
{
	memset(fs, 0, sizeof(*fs));
	pthread_mutex_init(&fs->lock, NULL);
	fs->tmp_max_size = max;
	fs->tmp_max_total = total;
}

static uint64_t serial_of(uint64_t ino)
{
	return fsi_decode(ino).serial;
}

static void test_create_write_read(void **state)
{
	struct fs fs;
	struct fs_owner owner = {.uid = 7, .gid = 8};
	struct stat st;
	uint64_t ino, ino2;
	char buf[64];
	size_t len;
	(void)state;

	setup_fs(&fs, 1024, 65536);
	assert_int_equal(fs_pending_create(&fs, 3, FSI_TMP, "a", 0644, &ino, &st, &owner), 0);
	assert_int_equal(fsi_decode(ino).kind, FSI_PENDING);
	assert_int_equal(st.st_uid, 7);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(fs_pending_create(&fs, 3, FSI_TMP, "a", 0644, &ino2, &st, &owner), EEXIST);
	/* the same name elsewhere is another file */
	assert_int_equal(fs_pending_create(&fs, 3, FSI_CUR, "a", 0644, &ino2, &st, &owner), 0);
	assert_true(ino != ino2);

	assert_int_equal(fs_pending_write(&fs, serial_of(ino), "hello", 5, 0), 0);
	assert_int_equal(fs_pending_write(&fs, serial_of(ino), "XY", 2, 10), 0); /* a hole */
	assert_int_equal(fs_pending_read(&fs, serial_of(ino), buf, sizeof(buf), 0, &len), 0);
	assert_int_equal(len, 12);
	assert_memory_equal(buf, "hello\0\0\0\0\0XY", 12);
	assert_int_equal(fs_pending_read(&fs, serial_of(ino), buf, 3, 4, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(buf, "o\0\0", 3);
	assert_int_equal(fs_pending_read(&fs, serial_of(ino), buf, 3, 100, &len), 0);
	assert_int_equal(len, 0);
	assert_int_equal(fs_pending_stat(&fs, serial_of(ino), &owner, &st, NULL), 0);
	assert_int_equal(st.st_size, 12);
	assert_int_equal(fs.pending_bytes, 12);

	assert_int_equal(fs_pending_truncate(&fs, serial_of(ino), 5), 0);
	assert_int_equal(fs.pending_bytes, 5);
	assert_int_equal(fs_pending_lookup(&fs, 3, FSI_TMP, "a", &ino2), 0);
	assert_int_equal(ino2, ino);
	assert_int_equal(fs_pending_lookup(&fs, 3, FSI_NEW, "a", &ino2), ENOENT);
	fs_pending_free(&fs);
	assert_int_equal(fs.pending_bytes, 0);
}

static void test_bounds(void **state)
{
	struct fs fs;
	struct fs_owner owner = {0};
	struct stat st;
	uint64_t a, b;
	char data[600];
	(void)state;

	memset(data, 'x', sizeof(data));
	setup_fs(&fs, 1000, 1500 + 2 * 4096);
	assert_int_equal(fs_pending_create(&fs, 1, FSI_TMP, "a", 0600, &a, &st, &owner), 0);
	assert_int_equal(fs_pending_create(&fs, 1, FSI_TMP, "b", 0600, &b, &st, &owner), 0);
	/* one file past fs_tmp_max_size */
	assert_int_equal(fs_pending_write(&fs, serial_of(a), data, 600, 500), EFBIG);
	assert_int_equal(fs_pending_write(&fs, serial_of(a), data, 1, (off_t)1 << 62), EFBIG);
	assert_int_equal(fs_pending_truncate(&fs, serial_of(a), 1001), EFBIG);
	/* all of them past fs_tmp_max_total */
	assert_int_equal(fs_pending_write(&fs, serial_of(a), data, 600, 0), 0);
	assert_int_equal(fs_pending_write(&fs, serial_of(a), data, 300, 600), 0);
	assert_int_equal(fs_pending_write(&fs, serial_of(b), data, 600, 0), 0);
	assert_int_equal(fs_pending_write(&fs, serial_of(b), data, 1, 600), ENOSPC);
	assert_int_equal(fs.pending_bytes, 1500);
	/* a third file does not fit: each counts a page */
	assert_int_equal(fs_pending_create(&fs, 1, FSI_TMP, "c", 0600, &b, &st, &owner), ENOSPC);
	assert_int_equal(fs_pending_lookup(&fs, 1, FSI_TMP, "b", &b), 0);
	/* removing one frees its bytes */
	assert_int_equal(fs_pending_unlink(&fs, 1, FSI_TMP, "a"), 0);
	assert_int_equal(fs.pending_bytes, 600);
	assert_int_equal(fs_pending_write(&fs, serial_of(b), data, 1, 600), 0);
	assert_int_equal(fs_pending_write(&fs, serial_of(a), data, 1, 0), ENOENT);
	fs_pending_free(&fs);
}

static int collect(const char *name, uint64_t ino, void *ctx)
{
	char *out = ctx;
	size_t n = strlen(out), k = strlen(name);
	(void)ino;
	assert_true(n + k + 2 <= 256);
	memcpy(out + n, name, k);
	out[n + k] = ';';
	out[n + k + 1] = '\0';
	return 0;
}

static int count_cb(const char *name, uint64_t ino, void *ctx)
{
	(void)name;
	(void)ino;
	(*(int *)ctx)++;
	return 0;
}

/* A file stored by fsync while still open is found by inode only, refuses
 * writes; a claimed file is claimed once. */
static void test_stored_and_claimed(void **state)
{
	struct fs fs;
	struct fs_owner owner = {.uid = 7, .gid = 8};
	struct stat st;
	uint64_t ino, ino2;
	uint32_t mbid;
	enum fsi_sub sub;
	char name[MDNAME_MAX + 1];
	size_t len;
	int flags, n = 0;
	(void)state;

	setup_fs(&fs, 1024, 65536);
	assert_int_equal(fs_pending_create(&fs, 3, FSI_NEW, "m1", 0600, &ino, &st, &owner), 0);
	assert_int_equal(fs_pending_write(&fs, serial_of(ino), "mail", 4, 0), 0);
	assert_int_equal(fs_pending_claim(&fs, serial_of(ino)), 0);
	assert_int_equal(fs_pending_claim(&fs, serial_of(ino)), EBUSY);
	fs_pending_unclaim(&fs, serial_of(ino));
	assert_int_equal(fs_pending_claim(&fs, serial_of(ino)), 0);
	fs_pending_set_stored(&fs, serial_of(ino));
	/* gone by name and from listings, there by inode */
	assert_int_equal(fs_pending_lookup(&fs, 3, FSI_NEW, "m1", &ino2), ENOENT);
	fs_pending_list(&fs, 3, FSI_NEW, 0, count_cb, &n);
	assert_int_equal(n, 0);
	assert_int_equal(fs_pending_info(&fs, serial_of(ino), &mbid, &sub, name, &flags, &len), 0);
	assert_int_equal(flags, FS_PENDING_STORED);
	assert_int_equal(len, 4);
	assert_int_equal(fs_pending_write(&fs, serial_of(ino), "x", 1, 4), EPERM);
	assert_int_equal(fs_pending_truncate(&fs, serial_of(ino), 1), EPERM);
	assert_int_equal(fs_pending_truncate(&fs, serial_of(ino), 4), 0);
	/* the name is free for a new file */
	assert_int_equal(fs_pending_create(&fs, 3, FSI_NEW, "m1", 0600, &ino2, &st, &owner), 0);
	fs_pending_remove(&fs, serial_of(ino));
	fs_pending_remove(&fs, serial_of(ino2));
	assert_int_equal(fs.pending_count, 0);
	assert_int_equal(fs.pending_bytes, 0);
	assert_int_equal(fs_pending_claim(&fs, serial_of(ino)), ENOENT);
	fs_pending_free(&fs);
}

static void test_rename_list_copy(void **state)
{
	struct fs fs;
	struct fs_owner owner = {0};
	struct stat st;
	uint64_t a, b, c;
	char names[256] = "";
	char *data;
	size_t len;
	struct timespec mt = {.tv_sec = 1700000000}, got;
	(void)state;

	setup_fs(&fs, 1000, 65536);
	fs_pending_create(&fs, 1, FSI_TMP, "one", 0600, &a, &st, &owner);
	fs_pending_create(&fs, 1, FSI_TMP, "two", 0600, &b, &st, &owner);
	fs_pending_create(&fs, 1, FSI_TMP, "three", 0600, &c, &st, &owner);
	fs_pending_write(&fs, serial_of(a), "AAA", 3, 0);
	fs_pending_write(&fs, serial_of(b), "BB", 2, 0);
	/* oldest first, and skip counts entries of that directory */
	assert_int_equal(fs_pending_list(&fs, 1, FSI_TMP, 0, collect, names), 3);
	assert_string_equal(names, "one;two;three;");
	names[0] = '\0';
	assert_int_equal(fs_pending_list(&fs, 1, FSI_TMP, 2, collect, names), 1);
	assert_string_equal(names, "three;");
	/* rename replaces the target, as rename(2) does */
	assert_int_equal(fs_pending_rename(&fs, serial_of(a), 1, FSI_TMP, "two"), 0);
	assert_int_equal(fs_pending_lookup(&fs, 1, FSI_TMP, "one", &c), ENOENT);
	assert_int_equal(fs_pending_lookup(&fs, 1, FSI_TMP, "two", &c), 0);
	assert_int_equal(c, a);
	assert_int_equal(fs.pending_bytes, 3);
	/* a copy with the mtime (the internal date of the message it becomes) */
	assert_int_equal(fs_pending_set_times(&fs, serial_of(a), &mt), 0);
	assert_int_equal(fs_pending_copy(&fs, serial_of(a), &data, &len, &got), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(data, "AAA", 3);
	assert_int_equal(got.tv_sec, 1700000000);
	free(data);
	fs_pending_remove(&fs, serial_of(a));
	assert_int_equal(fs.pending_bytes, 0);
	assert_int_equal(fs_pending_copy(&fs, serial_of(a), &data, &len, &got), ENOENT);
	fs_pending_free(&fs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_write_read),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_rename_list_copy),
	    cmocka_unit_test(test_stored_and_claimed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
