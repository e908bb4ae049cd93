/* test-greylist — index/greylist.c on a temporary store: first attempt
 * deferred, early retry deferred, retry after the delay passes, the /24
 * network counts as one client, auto-allow, expiry; postscreen's cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "index/greylist.h"

static char dir[64];
static struct store *st;

static int setup(void **state)
{
	char err[256];
	struct store_options o = {0};
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test-greylist.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	return store_open(dir, &o, &st, err, sizeof(err)) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	store_close(&st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_triplet(void **state)
{
	struct greylist_params p = {
	    .delay = 60, .retry_window = 3600, .max_age = 86400, .auto_allow = 3};
	enum greylist_verdict v;
	int64_t wait, t0 = 1000000;
	(void)state;
	assert_int_equal(
	    greylist_check(st, "192.0.2.7", "a@x.example", "bob@example.org", t0, &p, &v, &wait),
	    0);
	assert_int_equal(v, GREYLIST_DEFER);
	assert_int_equal(wait, 60);
	assert_int_equal(greylist_check(st, "192.0.2.8", "A@X.example", "bob@example.org", t0 + 10,
					&p, &v, &wait),
			 0);
	assert_int_equal(v, GREYLIST_DEFER); /* same /24, case-insensitive: the same triplet */
	assert_int_equal(wait, 50);
	assert_int_equal(greylist_check(st, "192.0.2.7", "a@x.example", "bob@example.org", t0 + 61,
					&p, &v, &wait),
			 0);
	assert_int_equal(v, GREYLIST_PASS);
	assert_int_equal(greylist_check(st, "192.0.2.7", "a@x.example", "bob@example.org", t0 + 62,
					&p, &v, &wait),
			 0);
	assert_int_equal(v, GREYLIST_PASS);
	/* another sender is a new triplet */
	assert_int_equal(greylist_check(st, "192.0.2.7", "b@x.example", "bob@example.org", t0 + 70,
					&p, &v, &wait),
			 0);
	assert_int_equal(v, GREYLIST_DEFER);
	/* a retry after the retry window starts over */
	assert_int_equal(greylist_check(st, "192.0.2.7", "b@x.example", "bob@example.org",
					t0 + 70 + 4000, &p, &v, &wait),
			 0);
	assert_int_equal(v, GREYLIST_DEFER);
}

static void test_auto_allow_and_expire(void **state)
{
	struct greylist_params p = {
	    .delay = 10, .retry_window = 3600, .max_age = 86400, .auto_allow = 2};
	enum greylist_verdict v;
	int64_t wait, t = 5000000;
	char rcpt[64];
	(void)state;
	for (int i = 0; i < 2; i++) {
		snprintf(rcpt, sizeof(rcpt), "u%d@example.org", i);
		greylist_check(st, "198.51.100.1", "s@x.example", rcpt, t, &p, &v, &wait);
		assert_int_equal(v, GREYLIST_DEFER);
		greylist_check(st, "198.51.100.1", "s@x.example", rcpt, t + 11, &p, &v, &wait);
		assert_int_equal(v, GREYLIST_PASS);
	}
	/* two passes: the network is allowed for any triplet */
	assert_int_equal(greylist_check(st, "198.51.100.9", "new@y.example", "z@example.org",
					t + 20, &p, &v, &wait),
			 0);
	assert_int_equal(v, GREYLIST_PASS);
	assert_true(greylist_expire(st, t + 200000, 86400) > 0);
	assert_int_equal(greylist_check(st, "198.51.100.9", "new@y.example", "z@example.org",
					t + 200001, &p, &v, &wait),
			 0);
	assert_int_equal(v, GREYLIST_DEFER);
}

static void test_network_and_pscache(void **state)
{
	char net[64];
	int64_t until;
	(void)state;
	assert_int_equal(greylist_network("192.0.2.77", net, sizeof(net)), 0);
	assert_string_equal(net, "192.0.2");
	assert_int_equal(greylist_network("2001:db8:1:2:3::1", net, sizeof(net)), 0);
	assert_string_equal(net, "2001:db8:1:2");
	assert_int_equal(greylist_network("nonsense", net, sizeof(net)), -1);
	assert_int_equal(pscache_get(st, "192.0.2.1", &until), 0);
	assert_int_equal(until, 0);
	assert_int_equal(pscache_put(st, "192.0.2.1", 12345), 0);
	assert_int_equal(pscache_get(st, "192.0.2.1", &until), 0);
	assert_int_equal(until, 12345);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_triplet),
	    cmocka_unit_test(test_auto_allow_and_expire),
	    cmocka_unit_test(test_network_and_pscache),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
