/* test-dir-embedded — the embedded user directory over a real store. */
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
#include "index/params.h"
#include "lib/password.h"

struct fx {
	char dir[64];
	struct store *store;
	struct config *cfg;
	struct directory *d;
};

static int setup_fn(struct store_txn *txn, void *ctx)
{
	(void)ctx;
	struct store_user bob = {.uid = 1001, .gid = 1001}, eve = {0};
	int rc;

	snprintf(bob.name, sizeof(bob.name), "bob");
	if (password_hash("s3cret pass", bob.password, sizeof(bob.password)) != 0)
		return STORE_EIO;
	snprintf(eve.name, sizeof(eve.name), "eve@other.example");
	if ((rc = store_user_add(txn, &bob, NULL)) != 0 || (rc = store_user_add(txn, &eve, NULL)) != 0)
		return rc;
	if ((rc = store_alias_add(txn, "postmaster", "bob")) != 0 ||
	    (rc = store_alias_add(txn, "info@example.org", "sales@example.org")) != 0 ||
	    (rc = store_alias_add(txn, "sales@example.org", "bob")) != 0 ||
	    (rc = store_alias_add(txn, "loop1@example.org", "loop2@example.org")) != 0)
		return rc;
	return store_alias_add(txn, "loop2@example.org", "loop1@example.org");
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];
	static const char conf[] = "mydestination = example.org, localhost\n";

	snprintf(f->dir, sizeof(f->dir), "/tmp/mk-test-dir-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(store_open(f->dir, NULL, &f->store, err, sizeof(err)), 0);
	assert_int_equal(config_parse(conf, sizeof(conf) - 1, "test.conf", &f->cfg, err, sizeof(err)), 0);
	params_add_all(f->cfg);
	assert_int_equal(store_write(f->store, setup_fn, NULL), 0);
	assert_int_equal(directory_open(f->cfg, f->store, &f->d, err, sizeof(err)), 0);
	assert_string_equal(f->d->ops->name, "embedded");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char path[128];

	dir_close(&f->d);
	assert_null(f->d);
	config_free(&f->cfg);
	store_close(&f->store);
	for (const char *const *n = (const char *const[]){"data.mdb", "lock.mdb", "changes", NULL}; *n; n++) {
		snprintf(path, sizeof(path), "%s/%s", f->dir, *n);
		unlink(path);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static void test_lookup(void **state)
{
	struct fx *f = *state;
	struct dir_user u;

	assert_int_equal(dir_lookup_address(f->d, "bob@example.org", &u), DIR_OK);
	assert_string_equal(u.name, "bob");
	assert_int_equal(u.uid, 1001);
	assert_int_equal(dir_lookup_address(f->d, "BOB@Example.ORG", &u), DIR_OK);
	assert_int_equal(dir_lookup_address(f->d, "bob+lists@example.org", &u), DIR_OK);
	assert_string_equal(u.name, "bob");
	assert_int_equal(dir_lookup_address(f->d, "postmaster@localhost", &u), DIR_OK);
	assert_string_equal(u.name, "bob");
	assert_int_equal(dir_lookup_address(f->d, "info@example.org", &u), DIR_OK); /* alias chain */
	assert_string_equal(u.name, "bob");
	assert_int_equal(dir_lookup_address(f->d, "eve@other.example", &u), DIR_OK); /* user named by address */
	/* Not a local domain: the local part alone must not match. */
	assert_int_equal(dir_lookup_address(f->d, "bob@elsewhere.example", &u), DIR_NOTFOUND);
	assert_int_equal(dir_lookup_address(f->d, "nobody@example.org", &u), DIR_NOTFOUND);
	assert_int_equal(dir_lookup_address(f->d, "loop1@example.org", &u), DIR_NOTFOUND);
	assert_int_equal(dir_lookup_address(f->d, "", &u), DIR_NOTFOUND);
}

static void test_authenticate(void **state)
{
	struct fx *f = *state;
	struct dir_user u;

	assert_int_equal(dir_authenticate(f->d, "bob", "s3cret pass", &u), DIR_OK);
	assert_string_equal(u.name, "bob");
	assert_int_equal(dir_authenticate(f->d, "bob@example.org", "s3cret pass", &u), DIR_OK);
	assert_int_equal(dir_authenticate(f->d, "bob", "wrong", &u), DIR_BADPASS);
	assert_int_equal(dir_authenticate(f->d, "bob", "", &u), DIR_BADPASS);
	/* A user with no password set can never log in. */
	assert_int_equal(dir_authenticate(f->d, "eve@other.example", "", &u), DIR_BADPASS);
	assert_int_equal(dir_authenticate(f->d, "eve@other.example", "x", &u), DIR_BADPASS);
	assert_int_equal(dir_authenticate(f->d, "mallory", "x", &u), DIR_NOTFOUND);
}

static int count_cb(const struct dir_user *u, void *ctx)
{
	(void)u;
	(*(int *)ctx)++;
	return 0;
}

static void test_get_and_list(void **state)
{
	struct fx *f = *state;
	struct dir_user u;
	int n = 0;

	assert_int_equal(dir_get_user(f->d, "bob", &u), DIR_OK);
	assert_int_equal(u.gid, 1001);
	assert_int_equal(dir_get_user(f->d, "nobody", &u), DIR_NOTFOUND);
	assert_int_equal(dir_list(f->d, count_cb, &n), DIR_OK);
	assert_int_equal(n, 2);
}

static void test_unknown_backend(void **state)
{
	struct fx *f = *state;
	struct directory *d;
	char err[256];

	config_set(f->cfg, "user_directory", "nis:whatever");
	assert_int_equal(directory_open(f->cfg, f->store, &d, err, sizeof(err)), -1);
	assert_null(d);
	assert_non_null(strstr(err, "nis:whatever"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_authenticate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_and_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_backend, setup, teardown),
	};
	return cmocka_run_group_tests_name("dir-embedded", tests, NULL, NULL);
}
