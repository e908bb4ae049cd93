/* Unit tests of lib/password.c. The vectors were made by real tools when the
 * test was written: slappasswd (OpenLDAP 2.5, with -o module-load=pw-sha2 for
 * SHA-2), openssl passwd (3.0), and Python's crypt module (libxcrypt) for
 * bcrypt and yescrypt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/password.h"

#define PW "S3cret p\xc3\xa4ssw\xc3\xb6rd!"

static const char *const good[] = {
	/* slappasswd -h '{SSHA}' -s PW */
	"{SSHA}YK73EM1Y7v2OCxA2pf1tNcjsYjlgE5DS",
	/* slappasswd -o module-load=pw-sha2 -h '{SSHA256}' / '{SSHA512}' / '{SHA256}' */
	"{SSHA256}DwxGiCTU76iv/IrzGCqJmZCjAmszjGqcCzkfaOMpdW6NUv9+I2LXFw==",
	"{SSHA512}wlI3e3i6mGI2YYRcuWXlTVGJlYODlMYSKl0renc2JARo/u8gEsbW356ft6gQN5viO2vWMasyl9hVRTlwvF0940q/HqnFMGSw",
	"{SHA256}FRS6tBKOyPnP//+Zyden4oUW4Edbown9VxM1VxSaWrY=",
	/* slappasswd -h '{SHA}' */
	"{SHA}OKTQIfH8mTyXxgDcqrXTs6JHvho=",
	/* openssl passwd -6 / -5 / -1 (bare and with {CRYPT}) */
	"$6$dAqSs5E/tdzYcNmM$uhFiKW.nob1F8wXfAi2m0.1innH29Z2nlVXDujNaRr2Rlp7cIklceaJSCTwyxvvtpUyShV652lJDO4zHlSlxa1",
	"{CRYPT}$6$dAqSs5E/tdzYcNmM$uhFiKW.nob1F8wXfAi2m0.1innH29Z2nlVXDujNaRr2Rlp7cIklceaJSCTwyxvvtpUyShV652lJDO4zHlSlxa1",
	"{crypt}$5$ipd0GT7K59sHvFru$Jd9Lk/XsUUdAcs.dotG1e5j.EHoqbkLxle0cTyaoI33",
	"$1$0u6yXbm6$3BrmEQo/SH.fr99f.Pzq..",
	/* Python crypt (libxcrypt): bcrypt and yescrypt */
	"$2b$12$IY6SLLZriGq.hfQjoUm76O2Z3C8f3uCRG9cN8sA2k6Oc0DLFxLxxm",
	"{CRYPT}$y$j9T$F5Jx5fExrKuPp53xLKQ..1$bz/hCK350evs.Wae9e9s.GXKs5PUr0TJ5OKJYImiqr7",
	/* slappasswd -h '{CRYPT}' (libxcrypt's bigcrypt for long passwords) */
	"{CRYPT}Y6CZi9DROjkQYDBZ.G.q5fP2Mw4JRwWR0Kw",
	/* slappasswd -h '{CLEARTEXT}' */
	"{CLEARTEXT}" PW,
	"{PLAIN}" PW,
};

/* slappasswd -s 'correct horse' made these. */
static const char *const other[] = {
	"{SSHA}gMUZPhALxKoi3lrEltJRiphDK9RagssY",
	"{CRYPT}7DTzFuX.mlZKsraqBbqzd9bU",
	"{SSHA256}Fd5ZG6Gw7zKCoFNR7HzjUKOG7quKhY7JO/VXLp8Csyc+tp/6wDQTUg==",
	"{SSHA512}ZBUTUEuUCdLd07W9zIbx2/A2hEqi3LFAA0acbS9y2nuFWKKqKjCCyi4RPbcjjJCW1358u9dtCqhGApJ5uhvfpRDCRRBj9Ucj",
	"{CRYPT}$5$ryk/FBb9rA/HIcO6$EGfJChRKWg6cv9E3G4knMni0z9t3MWQV9ymh.ckuVn0",
	"{CRYPT}$6$rounds=5000$2H5k8mkQhFZn1ilN$VY9VDDOoN6aOiV4xesY.KEdC2gvRoPK3kswAY3xYRr0ef2aoJi36VwIxz5Z0vfH48Nc5ybDMJJ."
	"BgIz1t8pJA0",
};

static void test_real_vectors(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (password_verify(PW, good[i]) != 1)
			fail_msg("does not verify: %s", good[i]);
		assert_int_equal(password_scheme_known(good[i]), 1);
		/* Wrong passwords: one letter off, a prefix, an extension, case. */
		assert_int_equal(password_verify("S3cret p\xc3\xa4ssw\xc3\xb6rd?", good[i]), 0);
		assert_int_equal(password_verify("S3cret", good[i]), 0);
		assert_int_equal(password_verify(PW "x", good[i]), 0);
		assert_int_equal(password_verify("s3cret p\xc3\xa4ssw\xc3\xb6rd!", good[i]), 0);
	}
	for (i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		if (password_verify("correct horse", other[i]) != 1)
			fail_msg("does not verify: %s", other[i]);
		assert_int_equal(password_verify(PW, other[i]), 0);
	}
}

static void test_empty_never_verifies(void **state)
{
	(void)state;
	assert_int_equal(password_verify("", "{PLAIN}"), 0);
	assert_int_equal(password_verify("", "{CLEARTEXT}"), 0);
	assert_int_equal(password_verify("", good[0]), 0);
	assert_int_equal(password_verify(NULL, good[0]), 0);
	assert_int_equal(password_verify("x", ""), 0);
	assert_int_equal(password_verify("x", NULL), 0);
	/* base64(sha1("" + "abcd") + "abcd"): even a stored hash of "" refuses "". */
	assert_int_equal(password_verify("", "{SSHA}gf6L/odXbD7LIkJvjleEc4KRes9hYmNk"), 0);
	{
		char h[200];

		assert_int_equal(password_hash("", h, sizeof(h)), -1);
	}
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
		"{SSHA}",                                  /* nothing */
		"{SSHA}YK73EM1Y7v2OCxA2pf1tNcjsYjlgE5D",   /* not a multiple of 4 */
		"{SSHA}YK73EM1Y7v2OCxA2pf1tNcjsYjlgE5D*",  /* bad character */
		"{SSHA}YK73EM1Y7v2O",                      /* shorter than a digest */
		"{SHA}OKTQIfH8mTyXxgDcqrXTs6JHvho=AAAA",   /* data after padding */
		"{SSHA512}wlI3e3i6",                       /* too short */
		"{CRYPT}*",                                /* locked */
		"{CRYPT}!$6$dAqSs5E/tdzYcNmM$uhFiKW",      /* disabled */
		"$6$dAqSs5E/tdzYcNmM$uhFiKW.nob1F8wXfAi2", /* truncated hash */
		"{MD4}abcd",                               /* unknown scheme */
		"{SSHA",                                   /* no brace */
		PW,                                        /* plain text without a scheme */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (password_verify(PW, bad[i]) != 0)
			fail_msg("verifies: %s", bad[i]);
	assert_int_equal(password_scheme_known("{MD4}abcd"), 0);
	assert_int_equal(password_scheme_known(PW), 0);
	assert_int_equal(password_scheme_known("$zz$abc"), 0);
	assert_int_equal(password_scheme_known(NULL), 0);
	assert_int_equal(password_scheme_known("{ssha512}x"), 1);
}

static void test_hash_roundtrip(void **state)
{
	char a[200], b[200];

	(void)state;
	assert_int_equal(password_hash(PW, a, sizeof(a)), 0);
	assert_int_equal(strncmp(a, "{CRYPT}$y$", 10), 0);
	assert_int_equal(password_verify(PW, a), 1);
	assert_int_equal(password_verify("wrong", a), 0);
	assert_int_equal(password_scheme_known(a), 1);
	/* Salted: the same password hashes differently each time. */
	assert_int_equal(password_hash(PW, b, sizeof(b)), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(password_verify(PW, b), 1);
	/* Too small an output buffer. */
	assert_int_equal(password_hash(PW, a, 100), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_vectors),
		cmocka_unit_test(test_empty_never_verifies),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_hash_roundtrip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
