/* Unit tests of lib/xmalloc.c (one out-of-memory policy: log and exit 1)
 * and lib/array.c (the growable array). */
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

#include "lib/array.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#ifdef __SANITIZE_ADDRESS__
/* Under ASan a failed malloc aborts by default; a real libc returns NULL,
 * which is what xmalloc must meet. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}
#endif

static void test_copies(void **state)
{
	(void)state;
	char *s = xstrdup("mailkeep");
	assert_string_equal(s, "mailkeep");
	free(s);
	s = xstrndup("mailkeep", 4);
	assert_string_equal(s, "mail");
	free(s);
	s = xstrndup("ab", 10); /* shorter than n */
	assert_string_equal(s, "ab");
	free(s);
	void *p = xmemdup("a\0b", 3);
	assert_memory_equal(p, "a\0b", 3);
	free(p);
	p = xmalloc(0); /* a pointer all the same */
	assert_non_null(p);
	free(p);
	int *v = xcalloc(4, sizeof(int));
	assert_int_equal(v[0] | v[1] | v[2] | v[3], 0);
	v = xreallocarray(v, 1000, sizeof(int));
	v[999] = 7;
	assert_int_equal(v[999], 7);
	free(v);
}

/* Runs fn in a child; returns its exit status and what it wrote to stderr. */
static int in_child(void (*fn)(void), char *err, size_t errsize)
{
	int fds[2], status;
	ssize_t n;

	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], 2);
		log_open("test-xmalloc", LOG_TO_STDERR);
		fn();
		_exit(0); /* not reached if fn ran out of memory */
	}
	close(fds[1]);
	size_t got = 0;
	while (got < errsize - 1 && (n = read(fds[0], err + got, errsize - 1 - got)) > 0)
		got += (size_t)n;
	err[got] = '\0';
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void huge_malloc(void)
{
	void *volatile p = xmalloc(SIZE_MAX - 4096);
	(void)p;
}

static void overflowing_calloc(void)
{
	void *volatile p = xcalloc(SIZE_MAX / 2, 3);
	(void)p;
}

static void overflowing_array(void)
{
	char *v = NULL;
	size_t cap = 0;
	ARRAY_RESERVE(v, cap, SIZE_MAX);
}

static void test_out_of_memory_is_fatal(void **state)
{
	char err[1024];
	(void)state;
	assert_int_equal(in_child(huge_malloc, err, sizeof(err)), 1);
	assert_non_null(strstr(err, "fatal: out of memory"));
	assert_int_equal(in_child(overflowing_calloc, err, sizeof(err)), 1);
	assert_non_null(strstr(err, "fatal: out of memory"));
	assert_int_equal(in_child(overflowing_array, err, sizeof(err)), 1);
	assert_non_null(strstr(err, "fatal: out of memory"));
}

struct pair {
	int a, b;
};

static void test_array(void **state)
{
	struct pair *v = NULL;
	size_t n = 0, cap = 0;
	(void)state;
	for (int i = 0; i < 1000; i++) {
		struct pair *p = ARRAY_PUSH(v, n, cap);
		p->a = i;
		p->b = -i;
	}
	assert_int_equal(n, 1000);
	assert_true(cap >= 1000 && cap < 2048);
	for (int i = 0; i < 1000; i++)
		assert_true(v[i].a == i && v[i].b == -i);
	size_t before = cap;
	ARRAY_RESERVE(v, cap, 10); /* never shrinks */
	assert_int_equal(cap, before);
	free(v);

	uint32_t *u = NULL;
	size_t un = 0, ucap = 0;
	ARRAY_RESERVE(u, ucap, 3);
	assert_int_equal(ucap, 8); /* the smallest array */
	*ARRAY_PUSH(u, un, ucap) = 42;
	assert_int_equal(u[0], 42);
	assert_int_equal(un, 1);
	free(u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_copies),
	    cmocka_unit_test(test_out_of_memory_is_fatal),
	    cmocka_unit_test(test_array),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
