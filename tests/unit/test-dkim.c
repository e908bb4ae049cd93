/* test-dkim — lib/dkim.c: the From: domain, key generation (file mode, the
 * TXT record, no overwrite), signing with RSA and Ed25519 keys side by side
 * (one field each, relaxed/relaxed, CRLF folding), and no key, no signature.
 * That the signatures verify is tests/integration/send/test_dkim.py's job,
 * with dkimpy as the verifier. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/dkim.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test-dkim.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_from_domain(void **state)
{
	char d[256];
	(void)state;
	const char *m1 = "Subject: x\r\nFROM: Alice <Alice@Example.ORG>\r\n\r\nFrom: no@body.example\r\n";
	assert_int_equal(dkim_from_domain(m1, strlen(m1), d, sizeof(d)), 0);
	assert_string_equal(d, "example.org");
	const char *m2 = "From: bob@example.net (Bob)\r\n\r\n";
	assert_int_equal(dkim_from_domain(m2, strlen(m2), d, sizeof(d)), 0);
	assert_string_equal(d, "example.net");
	const char *m3 = "From:\r\n \"A, B\" <ab@folded.example>\r\n\r\n";
	assert_int_equal(dkim_from_domain(m3, strlen(m3), d, sizeof(d)), 0);
	assert_string_equal(d, "folded.example");
	const char *m4 = "Subject: none\r\n\r\nFrom: x@y.example\r\n";
	assert_int_equal(dkim_from_domain(m4, strlen(m4), d, sizeof(d)), -1);
	const char *m5 = "From: nobody\r\n\r\n";
	assert_int_equal(dkim_from_domain(m5, strlen(m5), d, sizeof(d)), -1);
}

static void test_keygen_and_sign(void **state)
{
	char txt[4096], err[512], path[256], *hdrs = NULL;
	size_t len = 0;
	struct stat st;
	(void)state;

	assert_int_equal(dkim_keygen(dir, "example.org", "r1", 0, 1024, NULL, txt, sizeof(txt), err,
				     sizeof(err)),
			 0);
	assert_non_null(strstr(txt, "r1._domainkey.example.org. IN TXT ( \"v=DKIM1; k=rsa; \""));
	assert_int_equal(dkim_keygen(dir, "example.org", "e1", 1, 0, NULL, txt, sizeof(txt), err,
				     sizeof(err)),
			 0);
	assert_non_null(strstr(txt, "k=ed25519; "));
	snprintf(path, sizeof(path), "%s/example.org/e1.key", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* no overwrite; no path tricks */
	assert_int_equal(dkim_keygen(dir, "example.org", "e1", 1, 0, NULL, txt, sizeof(txt), err,
				     sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "exists already"));
	assert_int_equal(dkim_keygen(dir, "../x.org", "s", 1, 0, NULL, txt, sizeof(txt), err, sizeof(err)),
			 -1);
	assert_int_equal(dkim_keygen(dir, "example.org", "a/b", 1, 0, NULL, txt, sizeof(txt), err,
				     sizeof(err)),
			 -1);

	const char *msg = "From: a@example.org\r\nTo: b@example.net\r\nSubject: s\r\n\r\nbody\r\n";
	assert_int_equal(dkim_sign_message(dir, "example.org", msg, strlen(msg), &hdrs, &len, err,
					   sizeof(err)),
			 0);
	assert_non_null(hdrs);
	assert_int_equal(strlen(hdrs), len);
	assert_non_null(strstr(hdrs, "a=ed25519-sha256; c=relaxed/relaxed; d=example.org;"));
	assert_non_null(strstr(hdrs, "a=rsa-sha256; c=relaxed/relaxed; d=example.org;"));
	/* every line ends in CRLF */
	for (size_t i = 0; i < len; i++)
		if (hdrs[i] == '\n')
			assert_true(i > 0 && hdrs[i - 1] == '\r');
	free(hdrs);
	/* a domain without keys: nothing, no error */
	assert_int_equal(dkim_sign_message(dir, "other.example", msg, strlen(msg), &hdrs, &len, err,
					   sizeof(err)),
			 0);
	assert_null(hdrs);
	assert_int_equal(len, 0);
	/* the TXT of an existing key is the one keygen printed */
	char again[4096];
	snprintf(path, sizeof(path), "%s/example.org/r1.key", dir);
	assert_int_equal(dkim_txt_record(path, "example.org", "r1", again, sizeof(again), err,
					 sizeof(err)),
			 0);
	assert_non_null(strstr(again, "r1._domainkey.example.org."));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_from_domain),
	    cmocka_unit_test(test_keygen_and_sign),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
