/* Unit tests of lib/log.c: the printable filter and the shape of stderr lines. */
#include <errno.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/log.h"

static void test_printable(void **state)
{
	char out[64];
	const char in[] = "a\r\nb\x1b[31mc\x7f\xc3\xa9\0z";

	(void)state;
	assert_string_equal(log_printable(out, sizeof(out), in, sizeof(in) - 1), "a??b?[31mc????z");
	assert_string_equal(log_printable(out, sizeof(out), "plain text <a@b>", 16), "plain text <a@b>");
	/* Only len bytes are read. */
	assert_string_equal(log_printable(out, sizeof(out), "abcdef", 3), "abc");
	assert_string_equal(log_printable(out, sizeof(out), "", 0), "");
}

static void test_printable_truncates(void **state)
{
	char out[8];
	char big[100];

	(void)state;
	memset(big, 'x', sizeof(big));
	assert_string_equal(log_printable(out, sizeof(out), big, sizeof(big)), "xxxx...");
	/* Exactly fits: no dots. */
	assert_string_equal(log_printable(out, sizeof(out), "1234567", 7), "1234567");
	assert_string_equal(log_printable(out, sizeof(out), "12345678", 8), "1234...");
	/* Tiny destinations stay NUL-terminated. */
	assert_string_equal(log_printable(out, 1, "abc", 3), "");
	assert_string_equal(log_printable(out, 3, "abc", 3), "ab");
}

/* Runs fn in a child with stderr on a pipe; returns what it wrote and its status. */
static char *capture(void (*fn)(void), int *status_r)
{
	static char text[8192];
	int fds[2];
	size_t len = 0;
	ssize_t n;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], STDERR_FILENO);
		fn();
		_exit(0);
	}
	close(fds[1]);
	while ((n = read(fds[0], text + len, sizeof(text) - 1 - len)) > 0)
		len += (size_t)n;
	text[len] = '\0';
	close(fds[0]);
	assert_int_equal(waitpid(pid, status_r, 0), pid);
	return text;
}

static void lines(void)
{
	log_open("mailkeep/test", LOG_TO_STDERR);
	log_info("4F1A2B3C: to=<%s>, status=sent", "bob@example.org");
	log_warn("disk %s", "full");
	log_debug("invisible");
	log_set_verbose(1);
	log_debug("visible");
}

static void fatal(void)
{
	log_open("mailkeep/test", LOG_TO_STDERR);
	log_fatal("cannot open %s", "/nonexistent");
}

static void panic(void)
{
	log_open("mailkeep/test", LOG_TO_STDERR);
	log_panic("invariant %d broken", 7);
}

static void longline(void)
{
	static char big[20000];

	memset(big, 'y', sizeof(big) - 1);
	log_open("mailkeep/test", LOG_TO_STDERR);
	log_info("%s", big);
	log_info("after");
}

static void assert_matches(const char *text, const char *re)
{
	regex_t r;

	assert_int_equal(regcomp(&r, re, REG_EXTENDED | REG_NEWLINE), 0);
	if (regexec(&r, text, 0, NULL, 0) != 0)
		fail_msg("%s does not match %s", text, re);
	regfree(&r);
}

static void test_stderr_lines(void **state)
{
	int status;
	char *text;

	(void)state;
	text = capture(lines, &status);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_matches(text, "^[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [^ ]+ mailkeep/test\\[[0-9]+\\]: "
			     "4F1A2B3C: to=<bob@example.org>, status=sent$");
	assert_matches(text, "mailkeep/test\\[[0-9]+\\]: warning: disk full$");
	assert_null(strstr(text, "invisible"));
	assert_matches(text, "\\]: visible$");
}

static void test_fatal_panic(void **state)
{
	int status;
	char *text;

	(void)state;
	text = capture(fatal, &status);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	assert_matches(text, "\\]: fatal: cannot open /nonexistent$");
	text = capture(panic, &status);
	assert_true(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0));
	assert_matches(text, "\\]: panic: invariant 7 broken$");
}

static void test_long_line_bounded(void **state)
{
	int status;
	char *text;
	char *nl;

	(void)state;
	text = capture(longline, &status);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	nl = strchr(text, '\n');
	assert_non_null(nl);
	assert_true(nl - text < 4096);
	assert_matches(nl + 1, "\\]: after$");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_printable),    cmocka_unit_test(test_printable_truncates),
		cmocka_unit_test(test_stderr_lines), cmocka_unit_test(test_fatal_panic),
		cmocka_unit_test(test_long_line_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
