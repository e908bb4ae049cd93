/* Unit tests of lib/tls.c: self-signed certificates, contexts, a real
 * handshake over a socket pair, and the TLS 1.2 floor. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "lib/tls.h"

static char dir[128], cert[256], key[256], cert2[256], key2[256];

static int setup(void **state)
{
	char err[256];

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/mk-test-tls.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(cert2, sizeof(cert2), "%s/cert2.pem", dir);
	snprintf(key2, sizeof(key2), "%s/key2.pem", dir);
	if (tls_make_self_signed("mx.example.org", cert, key, err, sizeof(err)) < 0 ||
	    tls_make_self_signed("other.example.org", cert2, key2, err, sizeof(err)) < 0) {
		fprintf(stderr, "setup: %s\n", err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(cert);
	unlink(key);
	unlink(cert2);
	unlink(key2);
	rmdir(dir);
	return 0;
}

static void test_self_signed_files(void **state)
{
	struct stat st;
	FILE *f;
	X509 *x;
	GENERAL_NAMES *names;
	const GENERAL_NAME *gn;
	time_t nine_years = time(NULL) + 9L * 365 * 86400;
	EVP_PKEY *pub;

	(void)state;
	assert_int_equal(stat(key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	f = fopen(cert, "r");
	assert_non_null(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	assert_non_null(names);
	assert_int_equal(sk_GENERAL_NAME_num(names), 1);
	gn = sk_GENERAL_NAME_value(names, 0);
	assert_int_equal(gn->type, GEN_DNS);
	assert_string_equal((const char *)ASN1_STRING_get0_data(gn->d.dNSName), "mx.example.org");
	GENERAL_NAMES_free(names);
	assert_int_equal(X509_check_host(x, "mx.example.org", 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(x, "evil.example.org", 0, 0, NULL), 0);
	assert_true(X509_cmp_time(X509_get0_notAfter(x), &nine_years) > 0);
	/* Self-signed: its own key verifies it. */
	pub = X509_get0_pubkey(x);
	assert_int_equal(X509_verify(x, pub), 1);
	X509_free(x);
}

static void test_self_signed_bad(void **state)
{
	char err[256], path[300];

	(void)state;
	assert_int_equal(tls_make_self_signed("", cert2, key2, err, sizeof(err)), -1);
	assert_int_equal(tls_make_self_signed("a b", cert2, key2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bad host name"));
	snprintf(path, sizeof(path), "%s/missing/cert.pem", dir);
	err[0] = '\0';
	assert_int_equal(tls_make_self_signed("x.example", path, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "No such file"));
}

static void test_contexts(void **state)
{
	char err[512];
	SSL_CTX *ctx;

	(void)state;
	ctx = tls_server_ctx_new(cert, key, err, sizeof(err));
	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
	assert_true(SSL_CTX_get_options(ctx) & SSL_OP_NO_COMPRESSION);
	assert_true(SSL_CTX_get_options(ctx) & SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_free(ctx);
	/* Missing files and a key that does not belong to the certificate. */
	assert_null(tls_server_ctx_new("/nonexistent/cert.pem", key, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/cert.pem"));
	assert_null(tls_server_ctx_new(cert, "/nonexistent/key.pem", err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/key.pem"));
	assert_null(tls_server_ctx_new(cert, key2, err, sizeof(err)));
	assert_non_null(strstr(err, key2));
	assert_true(strstr(err, "mismatch") != NULL || strstr(err, "does not match") != NULL);
	/* A key file where the certificate should be. */
	assert_null(tls_server_ctx_new(key, key, err, sizeof(err)));
	ctx = tls_client_ctx_new(NULL, err, sizeof(err));
	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
	SSL_CTX_free(ctx);
	assert_null(tls_client_ctx_new("/nonexistent/ca.pem", err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/ca.pem"));
	assert_true(strlen(tls_last_error()) > 0);
}

struct server_arg {
	SSL_CTX *ctx;
	int fd;
	int ok;
	char got[16];
};

static void *server_main(void *p)
{
	struct server_arg *a = p;
	SSL *ssl = SSL_new(a->ctx);
	int n;

	SSL_set_fd(ssl, a->fd);
	if (SSL_accept(ssl) == 1) {
		n = SSL_read(ssl, a->got, sizeof(a->got) - 1);
		if (n > 0) {
			a->got[n] = '\0';
			a->ok = SSL_write(ssl, "pong", 4) == 4;
		}
	}
	SSL_shutdown(ssl);
	SSL_free(ssl);
	close(a->fd);
	return NULL;
}

/* Runs a handshake; client_max is the client's highest version (0 = any).
 * Returns the negotiated version, or 0 if the handshake failed. */
static int handshake(const char *ca, const char *host, int client_max, int *verified_r)
{
	char err[512], buf[8];
	struct server_arg a = {0};
	SSL_CTX *cctx;
	SSL *ssl;
	pthread_t th;
	int sv[2], version = 0;

	a.ctx = tls_server_ctx_new(cert, key, err, sizeof(err));
	assert_non_null(a.ctx);
	cctx = tls_client_ctx_new(ca, err, sizeof(err));
	assert_non_null(cctx);
	if (client_max != 0) {
		SSL_CTX_set_min_proto_version(cctx, 0);
		SSL_CTX_set_max_proto_version(cctx, client_max);
		SSL_CTX_set_security_level(cctx, 0);
		SSL_CTX_set_cipher_list(cctx, "ALL:@SECLEVEL=0");
	}
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	a.fd = sv[1];
	assert_int_equal(pthread_create(&th, NULL, server_main, &a), 0);
	ssl = SSL_new(cctx);
	SSL_set_fd(ssl, sv[0]);
	if (host != NULL)
		SSL_set1_host(ssl, host);
	if (SSL_connect(ssl) == 1) {
		version = SSL_version(ssl);
		*verified_r = SSL_get_verify_result(ssl) == X509_V_OK;
		assert_int_equal(SSL_write(ssl, "ping", 4), 4);
		assert_int_equal(SSL_read(ssl, buf, 4), 4);
		assert_memory_equal(buf, "pong", 4);
	}
	SSL_shutdown(ssl);
	SSL_free(ssl);
	close(sv[0]);
	pthread_join(th, NULL);
	if (version != 0) {
		assert_true(a.ok);
		assert_string_equal(a.got, "ping");
	}
	SSL_CTX_free(a.ctx);
	SSL_CTX_free(cctx);
	return version;
}

static void test_handshake(void **state)
{
	int verified = 0;

	(void)state;
	/* Verified against the self-signed certificate as its own CA, with the right name. */
	assert_int_equal(handshake(cert, "mx.example.org", 0, &verified), TLS1_3_VERSION);
	assert_true(verified);
	/* The wrong name, or the wrong CA: the verifying client refuses. */
	assert_int_equal(handshake(cert, "evil.example.org", 0, &verified), 0);
	assert_int_equal(handshake(cert2, "mx.example.org", 0, &verified), 0);
	/* Opportunistic client: no verification, still encrypted. */
	assert_int_equal(handshake(NULL, NULL, 0, &verified), TLS1_3_VERSION);
	/* A TLS 1.2 client is served with an ECDHE AEAD cipher. */
	assert_int_equal(handshake(cert, "mx.example.org", TLS1_2_VERSION, &verified), TLS1_2_VERSION);
	/* TLS 1.1 and 1.0 are refused by the server. */
	assert_int_equal(handshake(NULL, NULL, TLS1_1_VERSION, &verified), 0);
	assert_int_equal(handshake(NULL, NULL, TLS1_VERSION, &verified), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_self_signed_files),
		cmocka_unit_test(test_self_signed_bad),
		cmocka_unit_test(test_contexts),
		cmocka_unit_test(test_handshake),
	};
	signal(SIGPIPE, SIG_IGN); /* a refused peer closes the socket pair */
	return cmocka_run_group_tests(tests, setup, teardown);
}
