/* Unit tests of lib/anvil.c: keys by prefix, counts shared between two
 * processes (fork: each maps the file itself), columns cleared at open, rate,
 * the penalty's turns, the lockout, known networks, a process dying in the
 * middle of a check. */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/anvil.h"

static char dir[128], path[256];

static const struct anvil_settings S = {
    .ipv4_prefix = 32,
    .ipv6_prefix = 64,
    .rate_unit = 60,
    .penalty = 0.2,
    .penalty_max = 0.8,
    .lockout_failures = 0,
    .lockout_window = 3600,
    .known_time = 3600,
};

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/mk-test-anvil.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/anvil", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	rmdir(dir);
	return 0;
}

static int fresh(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

static void test_keys(void **state)
{
	struct anvil_key a, b;
	char text[64];
	struct anvil_settings s = S;

	(void)state;
	assert_int_equal(anvil_key_parse("2001:db8:1:2::1", &s, &a), 0);
	assert_int_equal(anvil_key_parse("[2001:db8:1:2:ffff:1:2:3]", &s, &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	anvil_key_str(&a, text, sizeof(text));
	assert_string_equal(text, "2001:db8:1:2::/64");
	assert_int_equal(anvil_key_parse("2001:db8:1:3::1", &s, &b), 0);
	assert_memory_not_equal(&a, &b, sizeof(a));
	assert_int_equal(anvil_key_parse("192.0.2.7", &s, &a), 0);
	anvil_key_str(&a, text, sizeof(text));
	assert_string_equal(text, "192.0.2.7");
	assert_int_equal(anvil_key_parse("::ffff:192.0.2.7", &s, &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	s.ipv4_prefix = 24;
	assert_int_equal(anvil_key_parse("192.0.2.77", &s, &b), 0);
	anvil_key_str(&b, text, sizeof(text));
	assert_string_equal(text, "192.0.2.0/24");
	assert_int_equal(anvil_key_parse("unix", &s, &b), -1);
	assert_int_equal(anvil_key_parse("", &s, &b), -1);
}

static void test_counts_shared_between_processes(void **state)
{
	struct anvil *a = NULL, *b = NULL;
	struct anvil_key k;
	struct anvil_client c;
	char err[256];

	(void)state;
	assert_int_equal(anvil_open(path, &S, ANVIL_SMTPIN, NULL, &a, err, sizeof(err)), 0);
	anvil_key_parse("192.0.2.7", &S, &k);
	anvil_connect(a, &k, &c);
	anvil_connect(a, &k, &c);
	assert_int_equal(c.conns, 2);
	pid_t pid = fork();
	if (pid == 0) {
		/* another process (imapd) opens the file itself and sees smtpin's two */
		struct anvil *x = NULL;
		struct anvil_client cc;
		if (anvil_open(path, &S, ANVIL_IMAPD, NULL, &x, err, sizeof(err)) < 0)
			_exit(1);
		anvil_connect(x, &k, &cc);
		_exit(cc.conns == 3 && cc.rate >= 2.9 ? 0 : 2);
		/* exits without closing: its column stays until it opens again */
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 0);
	anvil_connect(a, &k, &c);
	assert_int_equal(c.conns, 4);
	/* imapd starts again: its dead incarnation's count is cleared */
	assert_int_equal(anvil_open(path, &S, ANVIL_IMAPD, NULL, &b, err, sizeof(err)), 0);
	anvil_connect(a, &k, &c);
	assert_int_equal(c.conns, 4);
	anvil_disconnect(a, &k);
	anvil_disconnect(a, &k);
	anvil_disconnect(a, &k);
	anvil_disconnect(a, &k);
	anvil_disconnect(a, &k); /* one too many: stays at 0 */
	anvil_connect(b, &k, &c);
	assert_int_equal(c.conns, 1);
	assert_true(c.rate >= 5.9); /* 6 connections in this minute */
	anvil_close(&b);
	anvil_close(&a);
	assert_null(a);
}

static void test_attempt_of_a_dead_process(void **state)
{
	struct anvil *a = NULL;
	struct anvil_key k;
	struct anvil_auth r;
	char err[256];

	(void)state;
	assert_int_equal(anvil_open(path, &S, ANVIL_SMTPIN, NULL, &a, err, sizeof(err)), 0);
	anvil_key_parse("192.0.2.8", &S, &k);
	pid_t pid = fork();
	if (pid == 0) {
		/* a service that dies while it checks a password */
		struct anvil *x = NULL;
		if (anvil_open(path, &S, ANVIL_IMAPD, NULL, &x, err, sizeof(err)) < 0)
			_exit(1);
		if (anvil_auth_begin(x, &k, "bob", 0, &r) != ANVIL_GO)
			_exit(2);
		raise(SIGKILL);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	/* its turn is not held for the network or the user */
	assert_int_equal(anvil_auth_begin(a, &k, "bob", 0, &r), ANVIL_GO);
	anvil_auth_end(a, &k, "bob", 1, 0, &r);
	anvil_close(&a);
}

static void test_penalty_turns(void **state)
{
	struct anvil *a = NULL;
	struct anvil_key k, other;
	struct anvil_auth r;
	char err[256];

	(void)state;
	assert_int_equal(anvil_open(path, &S, ANVIL_IMAPD, NULL, &a, err, sizeof(err)), 0);
	anvil_key_parse("198.51.100.1", &S, &k);
	anvil_key_parse("198.51.100.2", &S, &other);
	/* first attempt goes at once; a parallel one waits for it */
	assert_int_equal(anvil_auth_begin(a, &k, "bob", 0, &r), ANVIL_GO);
	assert_int_equal(anvil_auth_begin(a, &k, "alice", 0, &r), ANVIL_WAIT);
	assert_true(r.wait > 0 && r.wait <= 0.1);
	/* the same user from another network waits too (the user's turn) */
	assert_int_equal(anvil_auth_begin(a, &other, "BOB", 0, &r), ANVIL_WAIT);
	anvil_auth_end(a, &k, "bob", 0, 0, &r);
	assert_int_equal(r.net_failures, 1);
	assert_int_equal(r.user_failures, 1);
	/* now the penalty: 0.2 s */
	assert_int_equal(anvil_auth_begin(a, &k, "alice", 0, &r), ANVIL_WAIT);
	assert_true(r.wait > 0.1 && r.wait <= 0.2);
	usleep(210000);
	assert_int_equal(anvil_auth_begin(a, &k, "alice", 0.21, &r), ANVIL_GO);
	anvil_auth_end(a, &k, "alice", 0, 0, &r);
	assert_int_equal(r.net_failures, 2);
	assert_int_equal(anvil_auth_begin(a, &k, "carol", 0, &r), ANVIL_WAIT);
	assert_true(r.wait > 0.3 && r.wait <= 0.4); /* doubled */
	/* waited past two ceilings: refused without a check */
	assert_int_equal(anvil_auth_begin(a, &k, "carol", 2 * S.penalty_max + 0.9, &r), ANVIL_BUSY);
	/* a temporary failure counts for nothing */
	usleep(410000);
	assert_int_equal(anvil_auth_begin(a, &k, "carol", 0, &r), ANVIL_GO);
	anvil_auth_end(a, &k, "carol", 0, 1, &r);
	assert_int_equal(r.net_failures, 2);
	/* the ceiling */
	assert_true(fabs(anvil_penalty(&S, 1) - 0.2) < 1e-9);
	assert_true(fabs(anvil_penalty(&S, 3) - 0.8) < 1e-9);
	assert_true(fabs(anvil_penalty(&S, 30) - 0.8) < 1e-9);
	assert_true(fabs(anvil_penalty(&S, 0) - 0) < 1e-9);
	/* success clears the network's and the user's penalty */
	usleep(410000);
	assert_int_equal(anvil_auth_begin(a, &k, "bob", 0, &r), ANVIL_GO);
	anvil_auth_end(a, &k, "bob", 1, 0, &r);
	assert_int_equal(r.net_failures, 0);
	assert_int_equal(r.user_failures, 0);
	assert_int_equal(anvil_auth_begin(a, &k, "bob", 0, &r), ANVIL_GO);
	anvil_auth_end(a, &k, "bob", 1, 0, &r);
	assert_true(anvil_known(a, &k));
	assert_false(anvil_known(a, &other));
	struct anvil_net_info nets[8];
	struct anvil_user_info users[8];
	struct anvil_column_info cols[ANVIL_COLUMNS];
	size_t nn, nu;
	anvil_snapshot(a, nets, 8, &nn, users, 8, &nu, cols);
	assert_int_equal(cols[ANVIL_IMAPD].pid, getpid());
	/* alice still has a failure; carol only had a temporary one, bob a success */
	assert_int_equal(nu, 1);
	assert_string_equal(users[0].name, "alice");
	anvil_close(&a);
}

static void test_lockout_and_known_network(void **state)
{
	struct anvil *a = NULL;
	struct anvil_key home, guesser;
	struct anvil_auth r;
	struct anvil_settings s = S;
	char err[256];

	(void)state;
	s.penalty = 0; /* no waiting: only the lock */
	s.lockout_failures = 3;
	s.lockout_window = 0.5;
	assert_int_equal(anvil_open(path, &s, ANVIL_SMTPIN, NULL, &a, err, sizeof(err)), 0);
	anvil_key_parse("203.0.113.1", &s, &home);
	anvil_key_parse("2001:db8:9::1", &s, &guesser);
	/* the owner logged in from home once */
	assert_int_equal(anvil_auth_begin(a, &home, "dave", 0, &r), ANVIL_GO);
	anvil_auth_end(a, &home, "dave", 1, 0, &r);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(anvil_auth_begin(a, &guesser, "dave", 0, &r), ANVIL_GO);
		anvil_auth_end(a, &guesser, "dave", 0, 0, &r);
	}
	assert_true(r.locked_for > 0);
	assert_int_equal(anvil_auth_begin(a, &guesser, "Dave", 0, &r), ANVIL_LOCKED);
	assert_true(r.locked_for > 0.3);
	/* but not from the network the owner logs in from */
	assert_int_equal(anvil_auth_begin(a, &home, "dave", 0, &r), ANVIL_GO);
	anvil_auth_end(a, &home, "dave", 1, 0, &r);
	/* which cleared the lock */
	assert_int_equal(anvil_auth_begin(a, &guesser, "dave", 0, &r), ANVIL_GO);
	anvil_auth_end(a, &guesser, "dave", 0, 0, &r);
	anvil_close(&a);
}

static void test_stale_file_started_afresh(void **state)
{
	struct anvil *a = NULL;
	struct anvil_key k;
	struct anvil_client c;
	char err[256];
	FILE *f;

	(void)state;
	/* a file of another size (an older layout, or garbage) */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("not an anvil table", f);
	fclose(f);
	assert_int_equal(anvil_open(path, &S, ANVIL_SMTPIN, NULL, &a, err, sizeof(err)), 0);
	anvil_key_parse("192.0.2.9", &S, &k);
	anvil_connect(a, &k, &c);
	assert_int_equal(c.conns, 1);
	anvil_close(&a);
	/* a path that cannot be made */
	assert_int_equal(anvil_open("/nonexistent/dir/anvil", &S, 0, NULL, &a, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "/nonexistent/dir/anvil"));
}

static void test_many_networks_churn(void **state)
{
	struct anvil *a = NULL;
	struct anvil_key k;
	struct anvil_client c;
	char err[256], addr[64];

	(void)state;
	assert_int_equal(anvil_open(path, &S, ANVIL_SMTPIN, NULL, &a, err, sizeof(err)), 0);
	/* more networks than entries: old idle ones are reused, live ones stay */
	anvil_key_parse("10.9.9.9", &S, &k);
	anvil_connect(a, &k, &c);
	for (int i = 0; i < 40000; i++) {
		struct anvil_key x;
		snprintf(addr, sizeof(addr), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255,
			 i & 255);
		anvil_key_parse(addr, &S, &x);
		anvil_connect(a, &x, &c);
		anvil_disconnect(a, &x);
	}
	anvil_connect(a, &k, &c);
	assert_int_equal(c.conns, 2);
	anvil_close(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keys),
	    cmocka_unit_test_setup(test_counts_shared_between_processes, fresh),
	    cmocka_unit_test_setup(test_attempt_of_a_dead_process, fresh),
	    cmocka_unit_test_setup(test_penalty_turns, fresh),
	    cmocka_unit_test_setup(test_lockout_and_known_network, fresh),
	    cmocka_unit_test_setup(test_stale_file_started_afresh, fresh),
	    cmocka_unit_test_setup(test_many_networks_churn, fresh),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
