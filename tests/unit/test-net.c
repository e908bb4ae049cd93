/* Unit tests of lib/net.c: listen/connect specs, Unix sockets, CIDR, privileges. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/net.h"

static char tmpdir[128];

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/mk-test-net.XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	char p[256];

	(void)state;
	snprintf(p, sizeof(p), "%s/s.sock", tmpdir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/file", tmpdir);
	unlink(p);
	rmdir(tmpdir);
	return 0;
}

static int have_ipv6(void)
{
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	int ok;

	if (fd < 0)
		return 0;
	ok = bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;
	close(fd);
	return ok;
}

static int bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* Connects to spec and checks accept() sees a peer whose address is expect. */
static void roundtrip(int lfd, const char *spec, const char *expect)
{
	char err[256] = "", addr[64];
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int cfd, afd, fl;
	char c = 0;

	cfd = net_connect(spec, 5, err, sizeof(err));
	if (cfd < 0)
		fail_msg("connect %s: %s", spec, err);
	fl = fcntl(cfd, F_GETFL);
	assert_int_equal(fl & O_NONBLOCK, 0); /* callers get a blocking socket */
	assert_true(fcntl(cfd, F_GETFD) & FD_CLOEXEC);
	/* The listener is non-blocking: the connection is already queued. */
	afd = accept(lfd, (struct sockaddr *)&ss, &len);
	assert_true(afd >= 0);
	net_addr_str((struct sockaddr *)&ss, len, addr, sizeof(addr));
	assert_string_equal(addr, expect);
	assert_int_equal(write(cfd, "x", 1), 1);
	assert_int_equal(read(afd, &c, 1), 1);
	assert_int_equal(c, 'x');
	close(afd);
	close(cfd);
}

static void test_tcp_v4(void **state)
{
	char err[256], spec[64];
	int fd;

	(void)state;
	fd = net_listen("127.0.0.1:0", 16, err, sizeof(err));
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	snprintf(spec, sizeof(spec), "127.0.0.1:%d", bound_port(fd));
	roundtrip(fd, spec, "127.0.0.1");
	snprintf(spec, sizeof(spec), "localhost:%d", bound_port(fd));
	close(fd);
	/* Nobody listens any more: refused, with the spec in the message. */
	assert_int_equal(net_connect(spec, 2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, spec));
}

static void test_tcp_any_and_v6(void **state)
{
	char err[256], spec[64];
	int fd;

	(void)state;
	fd = net_listen(":0", 16, err, sizeof(err));
	if (fd < 0)
		fail_msg(":0: %s", err);
	snprintf(spec, sizeof(spec), "127.0.0.1:%d", bound_port(fd));
	roundtrip(fd, spec, "127.0.0.1"); /* v4 on a dual-stack socket shows as v4 */
	if (have_ipv6()) {
		snprintf(spec, sizeof(spec), "[::1]:%d", bound_port(fd));
		roundtrip(fd, spec, "::1");
	}
	close(fd);
	if (!have_ipv6()) {
		skip();
		return;
	}
	fd = net_listen("[::1]:0", 16, err, sizeof(err));
	if (fd < 0)
		fail_msg("[::1]:0: %s", err);
	snprintf(spec, sizeof(spec), "[::1]:%d", bound_port(fd));
	roundtrip(fd, spec, "::1");
	close(fd);
}

static void test_bad_specs(void **state)
{
	static const char *const bad[] = {"nohost", "127.0.0.1", "::1:25", "[::1]", "[::1]25", "127.0.0.1:",
					  "unix:", "no.such.host.invalid:25", "127.0.0.1:http"};
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (net_listen(bad[i], 4, err, sizeof(err)) != -1)
			fail_msg("listen accepted %s", bad[i]);
		assert_true(err[0] != '\0');
		err[0] = '\0';
		assert_int_equal(net_connect(bad[i], 1, err, sizeof(err)), -1);
		assert_true(err[0] != '\0');
	}
	/* ":port" is for listening only. */
	assert_int_equal(net_connect(":25", 1, err, sizeof(err)), -1);
	/* A port in use. */
	{
		int a = net_listen("127.0.0.1:0", 4, err, sizeof(err)), b;
		char spec[64];

		assert_true(a >= 0);
		snprintf(spec, sizeof(spec), "127.0.0.1:%d", bound_port(a));
		b = net_listen(spec, 4, err, sizeof(err));
		assert_int_equal(b, -1);
		assert_non_null(strstr(err, "in use"));
		close(a);
	}
}

static void test_unix(void **state)
{
	char err[256], spec[300], path[256];
	struct stat st;
	int fd, fd2;

	(void)state;
	snprintf(path, sizeof(path), "%s/s.sock", tmpdir);
	snprintf(spec, sizeof(spec), "unix:%s", path);
	fd = net_listen(spec, 8, err, sizeof(err));
	if (fd < 0)
		fail_msg("%s", err);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0666);
	roundtrip(fd, spec, "unix");
	/* A second listener while the first is alive: refused. */
	assert_int_equal(net_listen(spec, 8, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "in use"));
	/* The first one dies without unlinking: the stale socket is replaced. */
	close(fd);
	fd2 = net_listen(spec, 8, err, sizeof(err));
	if (fd2 < 0)
		fail_msg("stale: %s", err);
	roundtrip(fd2, spec, "unix");
	close(fd2);
	/* A regular file in the way is never removed. */
	snprintf(path, sizeof(path), "%s/file", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	snprintf(spec, sizeof(spec), "unix:%s", path);
	assert_int_equal(net_listen(spec, 8, err, sizeof(err)), -1);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	/* Connecting to a missing socket. */
	snprintf(spec, sizeof(spec), "unix:%s/missing", tmpdir);
	assert_int_equal(net_connect(spec, 1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "No such file"));
}

static void test_cidr(void **state)
{
	struct net_cidr c;

	(void)state;
	assert_int_equal(net_cidr_parse("192.168.1.0/24", &c), 0);
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.prefix, 24);
	assert_true(net_cidr_match(&c, "192.168.1.0"));
	assert_true(net_cidr_match(&c, "192.168.1.255"));
	assert_false(net_cidr_match(&c, "192.168.2.1"));
	assert_false(net_cidr_match(&c, "::1"));
	assert_false(net_cidr_match(&c, "garbage"));
	assert_false(net_cidr_match(&c, ""));
	assert_true(net_cidr_match(&c, "::ffff:192.168.1.7")); /* mapped v4 */
	/* Odd prefix and host bits set in the network. */
	assert_int_equal(net_cidr_parse("10.1.2.3/15", &c), 0);
	assert_true(net_cidr_match(&c, "10.0.0.1"));
	assert_true(net_cidr_match(&c, "10.1.255.255"));
	assert_false(net_cidr_match(&c, "10.2.0.0"));
	/* Bare address: /32. */
	assert_int_equal(net_cidr_parse("127.0.0.1", &c), 0);
	assert_int_equal(c.prefix, 32);
	assert_true(net_cidr_match(&c, "127.0.0.1"));
	assert_false(net_cidr_match(&c, "127.0.0.2"));
	/* /0 matches all of its family. */
	assert_int_equal(net_cidr_parse("0.0.0.0/0", &c), 0);
	assert_true(net_cidr_match(&c, "8.8.8.8"));
	assert_false(net_cidr_match(&c, "2001:db8::1"));
	/* v6, with and without brackets. */
	assert_int_equal(net_cidr_parse("[2001:db8::]/32", &c), 0);
	assert_int_equal(c.family, AF_INET6);
	assert_true(net_cidr_match(&c, "2001:db8:ffff::1"));
	assert_true(net_cidr_match(&c, "[2001:db8::1]"));
	assert_false(net_cidr_match(&c, "2001:db9::1"));
	assert_int_equal(net_cidr_parse("fe80::/10", &c), 0);
	assert_true(net_cidr_match(&c, "febf::1"));
	assert_false(net_cidr_match(&c, "fec0::1"));
	assert_int_equal(net_cidr_parse("[::1]/128", &c), 0);
	assert_true(net_cidr_match(&c, "::1"));
	assert_false(net_cidr_match(&c, "::2"));
}

static void test_cidr_bad(void **state)
{
	static const char *const bad[] = {"",	     "/8",	   "1.2.3.4/",	   "1.2.3.4/33", "1.2.3/8",
					  "1.2.3.4/-1", "1.2.3.4/ 8", "::1/129",	   "[::1/64",	 "host.example/8",
					  "1.2.3.4/8/8", "1.2.3.4/08x", "[1.2.3.4]]/8", "300.1.1.1"};
	struct net_cidr c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (net_cidr_parse(bad[i], &c) != -1)
			fail_msg("parsed %s", bad[i]);
}

static void test_cidr_list(void **state)
{
	const char *const list[] = {"127.0.0.0/8", "bogus", "[::1]/128", "192.0.2.0/24"};

	(void)state;
	assert_true(net_cidr_match_list("127.9.9.9", list, 4));
	assert_true(net_cidr_match_list("::1", list, 4));
	assert_true(net_cidr_match_list("192.0.2.200", list, 4));
	assert_false(net_cidr_match_list("198.51.100.1", list, 4));
	assert_false(net_cidr_match_list("192.0.2.200", list, 3));
	assert_false(net_cidr_match_list("127.0.0.1", list, 0));
}

static void test_addr_str(void **state)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	char out[64];

	(void)state;
	inet_pton(AF_INET, "192.0.2.5", &sin.sin_addr);
	net_addr_str((struct sockaddr *)&sin, sizeof(sin), out, sizeof(out));
	assert_string_equal(out, "192.0.2.5");
	inet_pton(AF_INET6, "2001:db8::5", &sin6.sin6_addr);
	net_addr_str((struct sockaddr *)&sin6, sizeof(sin6), out, sizeof(out));
	assert_string_equal(out, "2001:db8::5");
	inet_pton(AF_INET6, "::ffff:192.0.2.9", &sin6.sin6_addr);
	net_addr_str((struct sockaddr *)&sin6, sizeof(sin6), out, sizeof(out));
	assert_string_equal(out, "192.0.2.9");
	net_addr_str((struct sockaddr *)&sun, sizeof(sun), out, sizeof(out));
	assert_string_equal(out, "unix");
	/* Too short a length: not read past. */
	net_addr_str((struct sockaddr *)&sin6, 4, out, sizeof(out));
	assert_string_equal(out, "unknown");
	net_addr_str(NULL, 0, out, sizeof(out));
	assert_string_equal(out, "unknown");
	/* A tiny output buffer stays terminated. */
	inet_pton(AF_INET, "192.0.2.5", &sin.sin_addr);
	net_addr_str((struct sockaddr *)&sin, sizeof(sin), out, 4);
	assert_true(strlen(out) < 4);
}

/* A user listed as a member of a group in /etc/group (Debian: a daemon user
 * in ssl-cert) keeps that group once privileges are dropped. Uses the first
 * such user of this machine; there is none on some machines. */
static void drop_keeps_supplementary_groups(void)
{
	char user[64] = "", err[256];
	gid_t gid = 0;
	struct group *gr;
	pid_t pid;
	int status;

	setgrent();
	while (user[0] == '\0' && (gr = getgrent()) != NULL) {
		for (char **m = gr->gr_mem; *m != NULL; m++) {
			struct passwd *pw = getpwnam(*m);
			if (pw != NULL && pw->pw_uid != 0 && pw->pw_gid != gr->gr_gid) {
				snprintf(user, sizeof(user), "%s", *m);
				gid = gr->gr_gid;
				break;
			}
		}
	}
	endgrent();
	if (user[0] == '\0')
		return;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		gid_t groups[256];
		int n;

		if (net_drop_privileges(user, err, sizeof(err)) != 0)
			_exit(2);
		n = getgroups(256, groups);
		for (int i = 0; i < n; i++)
			if (groups[i] == gid)
				_exit(0);
		_exit(3);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_drop_privileges(void **state)
{
	char err[256];
	struct passwd *pw;
	pid_t pid;
	int status;

	(void)state;
	assert_int_equal(net_drop_privileges(NULL, err, sizeof(err)), 0);
	assert_int_equal(net_drop_privileges("", err, sizeof(err)), 0);
	if (geteuid() != 0) {
		/* Not root: a no-op, whatever the name. */
		assert_int_equal(net_drop_privileges("nobody", err, sizeof(err)), 0);
		return;
	}
	assert_int_equal(net_drop_privileges("no-such-user-mk", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no-such-user-mk"));
	assert_int_equal(net_drop_privileges("root", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "uid 0"));
	pw = getpwnam("nobody");
	assert_non_null(pw);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		uid_t uid = pw->pw_uid;

		if (net_drop_privileges("nobody", err, sizeof(err)) != 0)
			_exit(2);
		if (getuid() != uid || geteuid() != uid)
			_exit(3);
		if (setuid(0) == 0)
			_exit(4);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	drop_keeps_supplementary_groups();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_v4),	  cmocka_unit_test(test_tcp_any_and_v6), cmocka_unit_test(test_bad_specs),
		cmocka_unit_test(test_unix),	  cmocka_unit_test(test_cidr),		  cmocka_unit_test(test_cidr_bad),
		cmocka_unit_test(test_cidr_list), cmocka_unit_test(test_addr_str),	  cmocka_unit_test(test_drop_privileges),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
