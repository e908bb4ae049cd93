/* password — hashing and verifying user passwords (see password.h).
 *
 * crypt(3) schemes go through libxcrypt (crypt_rn, crypt_gensalt_rn), which
 * knows yescrypt, bcrypt, SHA-crypt and the legacy ones, and takes salt from
 * the kernel. The LDAP salted-digest schemes ({SSHA}, {SSHA256}, {SSHA512},
 * as slappasswd and its pw-sha2 module write them: base64 of digest || salt)
 * use OpenSSL's EVP digests. Comparisons use CRYPTO_memcmp. */
#include <crypt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "lib/base64.h"
#include "lib/password.h"
#include "lib/xmalloc.h"

#define SALT_MAX 256 /* longest salt accepted in a {SSHA*} value */

int password_hash(const char *password, char *out, size_t outsize)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd = NULL;
	const char *h;
	int ret = -1;

	if (password == NULL || *password == '\0' || outsize < 160)
		return -1;
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, setting, sizeof(setting)) == NULL)
		goto fail;
	cd = xcalloc(1, sizeof(*cd));
	h = crypt_rn(password, setting, cd, sizeof(*cd));
	if (h == NULL || h[0] != '$')
		goto fail;
	if ((size_t)snprintf(out, outsize, "{CRYPT}%s", h) >= outsize)
		goto fail;
	ret = 0;
fail:
	if (cd != NULL) {
		OPENSSL_cleanse(cd, sizeof(*cd));
		free(cd);
	}
	return ret;
}

/* {SSHA*}: stored is base64(digest(password || salt) || salt). */
static int verify_salted(const EVP_MD *md, const char *password, const char *b64, int salted)
{
	uint8_t raw[EVP_MAX_MD_SIZE + SALT_MAX], digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	size_t mdlen = (size_t)EVP_MD_get_size(md);
	EVP_MD_CTX *ctx = NULL;
	long n = base64_decode(b64, strlen(b64), raw, sizeof(raw));
	int ok = 0;

	if (n < 0 || (size_t)n < mdlen || (!salted && (size_t)n != mdlen))
		return 0;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestInit_ex(ctx, md, NULL) != 1 ||
	    EVP_DigestUpdate(ctx, password, strlen(password)) != 1 ||
	    EVP_DigestUpdate(ctx, raw + mdlen, (size_t)n - mdlen) != 1 || EVP_DigestFinal_ex(ctx, digest, &dlen) != 1 ||
	    dlen != mdlen)
		goto done;
	ok = CRYPTO_memcmp(digest, raw, mdlen) == 0;
done:
	EVP_MD_CTX_free(ctx);
	return ok;
}

static int verify_crypt(const char *password, const char *stored)
{
	struct crypt_data *cd;
	const char *h;
	size_t len = strlen(stored);
	int ok = 0;

	if (*stored == '\0' || *stored == '*' || *stored == '!')
		return 0; /* locked or disabled accounts */
	cd = xcalloc(1, sizeof(*cd));
	h = crypt_rn(password, stored, cd, sizeof(*cd));
	if (h != NULL && h[0] != '*' && strlen(h) == len)
		ok = CRYPTO_memcmp(h, stored, len) == 0;
	OPENSSL_cleanse(cd, sizeof(*cd));
	free(cd);
	return ok;
}

/* Compares plain text through SHA-256 so that timing does not show where they differ. */
static int verify_plain(const char *password, const char *stored)
{
	uint8_t a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)password, strlen(password), a);
	SHA256((const unsigned char *)stored, strlen(stored), b);
	return CRYPTO_memcmp(a, b, sizeof(a)) == 0 && strcmp(password, stored) == 0;
}

enum scheme { S_UNKNOWN, S_CRYPT, S_BARE_CRYPT, S_SHA, S_SSHA, S_SHA256, S_SSHA256, S_SHA512, S_SSHA512, S_PLAIN };

static const struct {
	const char *prefix;
	enum scheme scheme;
} schemes[] = {
	{"{CRYPT}", S_CRYPT},	  {"{SSHA}", S_SSHA},	  {"{SHA}", S_SHA},	    {"{SSHA256}", S_SSHA256},
	{"{SHA256}", S_SHA256},	  {"{SSHA512}", S_SSHA512}, {"{SHA512}", S_SHA512}, {"{PLAIN}", S_PLAIN},
	{"{CLEARTEXT}", S_PLAIN},
};

/* Finds the scheme of stored and where its value starts. */
static enum scheme scheme_of(const char *stored, const char **value_r)
{
	size_t i;

	*value_r = stored;
	if (stored == NULL)
		return S_UNKNOWN;
	if (stored[0] == '$') {
		return crypt_checksalt(stored) == CRYPT_SALT_INVALID ? S_UNKNOWN : S_BARE_CRYPT;
	}
	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t n = strlen(schemes[i].prefix);

		if (strncasecmp(stored, schemes[i].prefix, n) == 0) {
			*value_r = stored + n;
			if (schemes[i].scheme == S_CRYPT && crypt_checksalt(stored + n) == CRYPT_SALT_INVALID)
				return S_UNKNOWN;
			return schemes[i].scheme;
		}
	}
	return S_UNKNOWN;
}

int password_scheme_known(const char *stored)
{
	const char *value;

	return scheme_of(stored, &value) != S_UNKNOWN;
}

int password_verify(const char *password, const char *stored)
{
	const char *value;

	if (password == NULL || *password == '\0')
		return 0;
	switch (scheme_of(stored, &value)) {
	case S_CRYPT:
	case S_BARE_CRYPT:
		return verify_crypt(password, value);
	case S_SHA:
		return verify_salted(EVP_sha1(), password, value, 0);
	case S_SSHA:
		return verify_salted(EVP_sha1(), password, value, 1);
	case S_SHA256:
		return verify_salted(EVP_sha256(), password, value, 0);
	case S_SSHA256:
		return verify_salted(EVP_sha256(), password, value, 1);
	case S_SHA512:
		return verify_salted(EVP_sha512(), password, value, 0);
	case S_SSHA512:
		return verify_salted(EVP_sha512(), password, value, 1);
	case S_PLAIN:
		return *value != '\0' && verify_plain(password, value);
	case S_UNKNOWN:
		break;
	}
	return 0;
}
