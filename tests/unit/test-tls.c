/* Unit tests of lib/tls.c: self-signed certificates, contexts, a real
 * handshake over a socket pair, and the TLS 1.2 floor. */
#include <errno.h>
#include <pthread.h>
#include <pwd.h>
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "lib/net.h"
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

/* Copies a file (the test's "renewal": new contents under the same name). */
static void copy_file(const char *from, const char *to)
{
	char buf[8192];
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	size_t n;

	assert_non_null(in);
	assert_non_null(out);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, out), n);
	fclose(in);
	assert_int_equal(fclose(out), 0);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* The subject of a context's certificate, as "CN=..." */
static void subject_of(SSL_CTX *ctx, char *out, size_t outsize)
{
	X509_NAME_oneline(X509_get_subject_name(SSL_CTX_get0_certificate(ctx)), out, (int)outsize);
}

static void test_holder_reload(void **state)
{
	struct tls_holder h;
	char live_cert[300], live_key[300], msg[1024], name[256];
	SSL_CTX *ctx, *ctx2;
	SSL *old_conn;

	(void)state;
	snprintf(live_cert, sizeof(live_cert), "%s/live-cert.pem", dir);
	snprintf(live_key, sizeof(live_key), "%s/live-key.pem", dir);
	tls_holder_init(&h, live_cert, live_key);
	assert_false(tls_holder_ready(&h));
	assert_null(tls_holder_get(&h));
	/* nothing there yet: an error naming the file, and still nothing served */
	assert_int_equal(tls_holder_load(&h, msg, sizeof(msg)), -1);
	assert_non_null(strstr(msg, live_cert));
	assert_non_null(strstr(msg, "No such file"));
	assert_false(tls_holder_ready(&h));

	copy_file(cert, live_cert);
	copy_file(key, live_key);
	assert_int_equal(tls_holder_load(&h, msg, sizeof(msg)), 0);
	assert_non_null(strstr(msg, "subject CN=mx.example.org"));
	assert_non_null(strstr(msg, "notAfter "));
	assert_null(strstr(msg, "EXPIRED"));
	assert_true(tls_holder_ready(&h));
	/* a connection made now keeps its context whatever happens to the holder */
	ctx = tls_holder_get(&h);
	assert_non_null(ctx);
	old_conn = SSL_new(ctx);
	assert_non_null(old_conn);
	SSL_CTX_free(ctx);

	/* renewal: new files under the same names */
	copy_file(cert2, live_cert);
	copy_file(key2, live_key);
	assert_int_equal(tls_holder_load(&h, msg, sizeof(msg)), 0);
	assert_non_null(strstr(msg, "CN=other.example.org"));
	ctx2 = tls_holder_get(&h);
	subject_of(ctx2, name, sizeof(name));
	assert_string_equal(name, "/CN=other.example.org");
	SSL_CTX_free(ctx2);

	/* broken files: -1 with the file and the reason; the renewed context stays */
	write_file(live_cert, "garbage\n");
	assert_int_equal(tls_holder_load(&h, msg, sizeof(msg)), -1);
	assert_non_null(strstr(msg, live_cert));
	assert_non_null(strstr(msg, "cannot load certificate"));
	copy_file(cert, live_cert); /* key2 does not belong to it */
	assert_int_equal(tls_holder_load(&h, msg, sizeof(msg)), -1);
	assert_non_null(strstr(msg, "does not match"));
	unlink(live_key);
	assert_int_equal(tls_holder_load(&h, msg, sizeof(msg)), -1);
	assert_non_null(strstr(msg, live_key));
	assert_non_null(strstr(msg, "No such file"));
	ctx2 = tls_holder_get(&h);
	subject_of(ctx2, name, sizeof(name));
	assert_string_equal(name, "/CN=other.example.org");
	SSL_CTX_free(ctx2);

	/* the old connection's context outlives the holder (ASan checks the references) */
	tls_holder_destroy(&h);
	subject_of(SSL_get_SSL_CTX(old_conn), name, sizeof(name));
	assert_string_equal(name, "/CN=mx.example.org");
	SSL_free(old_conn);
	unlink(live_cert);
}

/* As root: after dropping privileges (as the daemons do), a key only root may
 * read gives a message that says so and names the user. */
static void test_holder_unreadable_after_drop(void **state)
{
	char live_cert[300], live_key[300];
	pid_t pid;
	int status;

	(void)state;
	if (geteuid() != 0 || getpwnam("nobody") == NULL) {
		/* not root: the same check on an unreadable file, without the drop */
		struct tls_holder h;
		char msg[1024];
		tls_holder_init(&h, "/nonexistent-dir/cert.pem", key);
		assert_int_equal(tls_holder_load(&h, msg, sizeof(msg)), -1);
		assert_non_null(strstr(msg, "/nonexistent-dir/cert.pem"));
		tls_holder_destroy(&h);
		return;
	}
	snprintf(live_cert, sizeof(live_cert), "%s/drop-cert.pem", dir);
	snprintf(live_key, sizeof(live_key), "%s/drop-key.pem", dir);
	copy_file(cert, live_cert);
	copy_file(key, live_key);
	assert_int_equal(chmod(dir, 0755), 0);
	assert_int_equal(chmod(live_cert, 0644), 0);
	assert_int_equal(chmod(live_key, 0600), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct tls_holder h;
		char msg[1024], err[256];
		int ok;

		tls_holder_init(&h, live_cert, live_key);
		if (tls_holder_load(&h, msg, sizeof(msg)) != 0) /* as root */
			_exit(2);
		if (net_drop_privileges("nobody", err, sizeof(err)) != 0)
			_exit(3);
		ok = tls_holder_load(&h, msg, sizeof(msg)) == -1 && strstr(msg, live_key) != NULL &&
		     strstr(msg, "Permission denied") != NULL &&
		     strstr(msg, "user nobody") != NULL && strstr(msg, "ssl-cert") != NULL &&
		     tls_holder_ready(&h);
		if (!ok)
			fprintf(stderr, "message: %s\n", msg);
		tls_holder_destroy(&h);
		_exit(ok ? 0 : 4);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	unlink(live_cert);
	unlink(live_key);
	chmod(dir, 0700);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

struct swapper_arg {
	struct tls_holder *h;
	int made;
};

static void *holder_user(void *p)
{
	struct swapper_arg *a = p;

	for (int i = 0; i < 2000; i++) {
		SSL_CTX *ctx = tls_holder_get(a->h);
		if (ctx == NULL)
			continue;
		SSL *ssl = SSL_new(ctx);
		SSL_CTX_free(ctx);
		if (ssl != NULL) {
			a->made++;
			SSL_free(ssl);
		}
	}
	return NULL;
}

/* Sessions take contexts while another thread swaps them (as SIGHUP does). */
static void test_holder_threads(void **state)
{
	struct tls_holder h;
	struct swapper_arg a[4];
	pthread_t th[4];
	char msg[1024];

	(void)state;
	tls_holder_init(&h, cert, key);
	assert_int_equal(tls_holder_load(&h, msg, sizeof(msg)), 0);
	for (int i = 0; i < 4; i++) {
		a[i].h = &h;
		a[i].made = 0;
		assert_int_equal(pthread_create(&th[i], NULL, holder_user, &a[i]), 0);
	}
	for (int i = 0; i < 30; i++)
		assert_int_equal(tls_holder_load(&h, msg, sizeof(msg)), 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(a[i].made, 2000);
	}
	tls_holder_destroy(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_self_signed_files),
	    cmocka_unit_test(test_self_signed_bad),
	    cmocka_unit_test(test_contexts),
	    cmocka_unit_test(test_handshake),
	    cmocka_unit_test(test_holder_reload),
	    cmocka_unit_test(test_holder_unreadable_after_drop),
	    cmocka_unit_test(test_holder_threads),
	};
	signal(SIGPIPE, SIG_IGN); /* a refused peer closes the socket pair */
	return cmocka_run_group_tests(tests, setup, teardown);
}
