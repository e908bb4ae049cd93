/* test-dir-sync — index/dir_sync.c: users a directory returns are recorded in
 * the store with the directory's uid and gid; failures change nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "index/dir.h"
#include "index/store.h"
#include "lib/util.h"

/* A directory that knows "bob" with a uid the test sets, and is "down" on request. */
static uid_t fake_uid = 10001;
static int fake_down;

static enum dir_result fake_find(struct directory *dir, const char *key, struct dir_user *u)
{
	(void)dir;
	if (fake_down) {
		dir_set_error("LDAP connect: Can't contact LDAP server");
		return DIR_TEMPFAIL;
	}
	if (strcmp(key, "bob") != 0 && strcmp(key, "bob@example.org") != 0)
		return DIR_NOTFOUND;
	memset(u, 0, sizeof *u);
	mk_strlcpy(u->name, "bob", sizeof u->name);
	mk_strlcpy(u->mail, "bob@example.org", sizeof u->mail);
	u->uid = fake_uid;
	u->gid = fake_uid + 1;
	return DIR_OK;
}

static enum dir_result fake_auth(struct directory *dir, const char *login, const char *pw, struct dir_user *u)
{
	enum dir_result r = fake_find(dir, login, u);

	return r == DIR_OK && strcmp(pw, "secret") != 0 ? DIR_BADPASS : r;
}

static enum dir_result fake_list(struct directory *dir, int (*cb)(const struct dir_user *, void *), void *ctx)
{
	struct dir_user u;

	if (fake_find(dir, "bob", &u) == DIR_OK)
		cb(&u, ctx);
	return DIR_OK;
}

static int closed;
static void fake_close(struct directory *dir)
{
	(void)dir;
	closed++;
}

static const struct directory_ops fake_ops = {"fake", fake_find, fake_find, fake_auth, fake_list, fake_close};

struct fixture {
	char dir[64];
	struct store *store;
	struct directory *d;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	struct directory *inner = calloc(1, sizeof *inner);
	char err[256];

	snprintf(f->dir, sizeof f->dir, "/tmp/mk-test-dirsync-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(store_open(f->dir, NULL, &f->store, err, sizeof err), 0);
	inner->ops = &fake_ops;
	f->d = dir_sync_wrap(inner, f->store);
	fake_uid = 10001;
	fake_down = 0;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char path[128];
	const char *names[] = {"data.mdb", "lock.mdb", "changes"};

	dir_close(&f->d);
	store_close(&f->store);
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/%s", f->dir, names[i]);
		unlink(path);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

/* The store's uid/gid of name, or -1 if absent. */
static long long stored_uid(struct fixture *f, const char *name, uint32_t *gid_r)
{
	struct store_txn *txn = NULL;
	struct store_user su;
	int rc;

	assert_int_equal(store_read_begin(f->store, &txn), 0);
	rc = store_user_get(txn, name, &su);
	store_read_end(&txn);
	if (rc != 0)
		return -1;
	*gid_r = su.gid;
	return su.uid;
}

static void test_lookup_records_user(void **state)
{
	struct fixture *f = *state;
	struct dir_user u;
	uint32_t gid = 0;

	assert_int_equal(stored_uid(f, "bob", &gid), -1);
	assert_int_equal(dir_lookup_address(f->d, "bob@example.org", &u), DIR_OK);
	assert_string_equal(u.name, "bob");
	assert_int_equal(stored_uid(f, "bob", &gid), 10001);
	assert_int_equal(gid, 10002);
	/* the user has the usual mailboxes, as after a first delivery */
	struct store_txn *txn = NULL;
	struct store_user su;
	struct store_mailbox mb;
	assert_int_equal(store_read_begin(f->store, &txn), 0);
	assert_int_equal(store_user_get(txn, "bob", &su), 0);
	assert_int_equal(store_mailbox_get(txn, su.id, "INBOX", &mb), 0);
	store_read_end(&txn);
}

static void test_change_follows(void **state)
{
	struct fixture *f = *state;
	struct dir_user u;
	uint32_t gid = 0;

	assert_int_equal(dir_get_user(f->d, "bob", &u), DIR_OK);
	fake_uid = 20001;
	assert_int_equal(dir_authenticate(f->d, "bob", "secret", &u), DIR_OK);
	assert_int_equal(stored_uid(f, "bob", &gid), 20001);
	assert_int_equal(gid, 20002);
}

static void test_failures_record_nothing(void **state)
{
	struct fixture *f = *state;
	struct dir_user u;
	uint32_t gid = 0;

	assert_int_equal(dir_lookup_address(f->d, "ghost@example.org", &u), DIR_NOTFOUND);
	assert_int_equal(dir_authenticate(f->d, "bob", "wrong", &u), DIR_BADPASS);
	assert_int_equal(stored_uid(f, "bob", &gid), -1);
	fake_down = 1;
	assert_int_equal(dir_get_user(f->d, "bob", &u), DIR_TEMPFAIL);
	/* the wrapper tells why, as the backend does */
	assert_non_null(strstr(dir_error(), "Can't contact"));
	assert_int_equal(stored_uid(f, "bob", &gid), -1);
}

static int count_cb(const struct dir_user *u, void *ctx)
{
	(void)u;
	(*(int *)ctx)++;
	return 0;
}

static void test_list_and_close(void **state)
{
	struct fixture *f = *state;
	int n = 0;

	assert_int_equal(dir_list(f->d, count_cb, &n), DIR_OK);
	assert_int_equal(n, 1);
	assert_string_equal(f->d->ops->name, "ldap");
	closed = 0;
	dir_close(&f->d);
	assert_null(f->d);
	assert_int_equal(closed, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lookup_records_user, setup, teardown),
		cmocka_unit_test_setup_teardown(test_change_follows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failures_record_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_and_close, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
