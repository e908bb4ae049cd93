/* tls — OpenSSL 3 contexts with safe defaults, a server context that SIGHUP
 * can replace (certificate renewal), and self-signed certificates for
 * `mailkeep init` (see tls.h). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lib/log.h"
#include "lib/tls.h"
#include "lib/xmalloc.h"

/* TLS 1.2 ciphers: forward secrecy and AEAD only. TLS 1.3 keeps OpenSSL's list. */
#define TLS12_CIPHERS                                                                                  \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
	"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

const char *tls_last_error(void)
{
	static __thread char text[256];
	/* the first error queued is the cause ("PEM routines::no start line");
	 * the ones after it say what failed because of it ("SSL routines::PEM lib") */
	unsigned long e = ERR_peek_error();

	if (e == 0)
		return "no OpenSSL error";
	ERR_error_string_n(e, text, sizeof(text));
	ERR_clear_error();
	return text;
}

static SSL_CTX *ctx_new(const SSL_METHOD *method, char *err, size_t errsize)
{
	SSL_CTX *ctx = SSL_CTX_new(method);

	if (ctx == NULL) {
		snprintf(err, errsize, "SSL_CTX_new: %s", tls_last_error());
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
		snprintf(err, errsize, "TLS settings: %s", tls_last_error());
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* libevent's bufferevent_openssl may retry a write from a moved buffer. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return ctx;
}

SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errsize)
{
	SSL_CTX *ctx = ctx_new(TLS_server_method(), err, errsize);

	if (ctx == NULL)
		return NULL;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		snprintf(err, errsize, "%s: cannot load certificate: %s", cert_file, tls_last_error());
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		/* the usual renewal mistake: one file renewed and not the other */
		if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
			snprintf(err, errsize, "%s does not match the certificate in %s: %s",
				 key_file, cert_file, tls_last_error());
		else
			snprintf(err, errsize, "%s: cannot load private key: %s", key_file,
				 tls_last_error());
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errsize, "%s does not match %s: %s", key_file, cert_file, tls_last_error());
		goto fail;
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"mailkeep", 8);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

void tls_ctx_describe(SSL_CTX *ctx, char *out, size_t outsize)
{
	X509 *x = ctx != NULL ? SSL_CTX_get0_certificate(ctx) : NULL;
	BIO *b;
	int n;

	if (outsize == 0)
		return;
	out[0] = '\0';
	if (x == NULL) {
		snprintf(out, outsize, "no certificate");
		return;
	}
	b = BIO_new(BIO_s_mem());
	if (b == NULL) {
		snprintf(out, outsize, "(cannot describe the certificate: out of memory)");
		return;
	}
	/* RFC 2253 form escapes control characters: the line is safe to log */
	BIO_puts(b, "subject ");
	X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253);
	BIO_puts(b, ", issuer ");
	X509_NAME_print_ex(b, X509_get_issuer_name(x), 0, XN_FLAG_RFC2253);
	BIO_puts(b, ", notAfter ");
	ASN1_TIME_print(b, X509_get0_notAfter(x));
	if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
		BIO_puts(b, ", EXPIRED");
	if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
		BIO_puts(b, ", NOT YET VALID (notBefore ");
		ASN1_TIME_print(b, X509_get0_notBefore(x));
		BIO_puts(b, ")");
	}
	n = BIO_read(b, out, (int)(outsize > 1 ? outsize - 1 : 0));
	out[n > 0 ? n : 0] = '\0';
	BIO_free(b);
}

/* 0 if this process can open path for reading; else -1 with why in msg. */
static int check_readable(const char *path, const char *what, char *msg, size_t msgsize)
{
	struct passwd pw, *pwp = NULL;
	struct group gr, *grp = NULL;
	char pwbuf[2048], grbuf[2048], uname[64], gname[64];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY), e;

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	e = errno;
	if (e != EACCES || geteuid() == 0) {
		snprintf(msg, msgsize, "%s: cannot read the %s: %s", path, what, strerror(e));
		return -1;
	}
	/* The daemons read the files as root at start, then drop privileges. */
	if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof(pwbuf), &pwp) == 0 && pwp != NULL)
		snprintf(uname, sizeof(uname), "%s", pw.pw_name);
	else
		snprintf(uname, sizeof(uname), "%ld", (long)geteuid());
	if (getgrgid_r(getegid(), &gr, grbuf, sizeof(grbuf), &grp) == 0 && grp != NULL)
		snprintf(gname, sizeof(gname), "%s", gr.gr_name);
	else
		snprintf(gname, sizeof(gname), "%ld", (long)getegid());
	snprintf(msg, msgsize,
		 "%s: cannot read the %s: %s; this process runs as user %s (group %s) since it "
		 "dropped privileges, so a file only root can read cannot be read again: make it "
		 "readable by a group of that user (Debian: chgrp ssl-cert, chmod 0640, adduser %s "
		 "ssl-cert) and the directories above it searchable",
		 path, what, strerror(e), uname, gname, uname);
	return -1;
}

void tls_holder_init(struct tls_holder *h, const char *cert_file, const char *key_file)
{
	memset(h, 0, sizeof(*h));
	pthread_mutex_init(&h->lock, NULL);
	h->cert_file = xstrdup(cert_file != NULL ? cert_file : "");
	h->key_file = xstrdup(key_file != NULL ? key_file : "");
}

int tls_holder_load(struct tls_holder *h, char *msg, size_t msgsize)
{
	SSL_CTX *ctx, *old;

	if (h->cert_file[0] == '\0' || h->key_file[0] == '\0') {
		snprintf(msg, msgsize, "no %s file is set",
			 h->cert_file[0] == '\0' ? "certificate" : "key");
		return -1;
	}
	if (check_readable(h->cert_file, "certificate", msg, msgsize) < 0 ||
	    check_readable(h->key_file, "private key", msg, msgsize) < 0)
		return -1;
	ctx = tls_server_ctx_new(h->cert_file, h->key_file, msg, msgsize);
	if (ctx == NULL)
		return -1;
	tls_ctx_describe(ctx, msg, msgsize);
	pthread_mutex_lock(&h->lock);
	old = h->ctx;
	h->ctx = ctx;
	pthread_mutex_unlock(&h->lock);
	/* connections on the old context hold their own references (SSL_new) */
	SSL_CTX_free(old);
	return 0;
}

/* One log line, as svc (log_info_as) or as the program itself (svc NULL). */
static void say(const char *svc, int warn, const char *line)
{
	if (svc != NULL && warn)
		log_warn_as(svc, "%s", line);
	else if (svc != NULL)
		log_info_as(svc, "%s", line);
	else if (warn)
		log_warn("%s", line);
	else
		log_info("%s", line);
}

int tls_holder_reload(struct tls_holder *h, const char *svc)
{
	char msg[1024], old[512], line[2600];
	SSL_CTX *ctx;

	if (tls_holder_load(h, msg, sizeof(msg)) == 0) {
		snprintf(line, sizeof(line),
			 "TLS certificate reloaded from %s and %s: %s; new connections use it",
			 h->cert_file, h->key_file, msg);
		say(svc, 0, line);
		return 0;
	}
	ctx = tls_holder_get(h);
	if (ctx == NULL) {
		snprintf(line, sizeof(line), "TLS certificate not loaded: %s; TLS stays off", msg);
	} else {
		tls_ctx_describe(ctx, old, sizeof(old));
		SSL_CTX_free(ctx);
		snprintf(
		    line, sizeof(line),
		    "TLS certificate not reloaded: %s; still serving the one loaded before (%s)",
		    msg, old);
	}
	say(svc, 1, line);
	return -1;
}

SSL_CTX *tls_holder_get(struct tls_holder *h)
{
	SSL_CTX *ctx;

	pthread_mutex_lock(&h->lock);
	ctx = h->ctx;
	if (ctx != NULL && SSL_CTX_up_ref(ctx) != 1)
		ctx = NULL;
	pthread_mutex_unlock(&h->lock);
	return ctx;
}

int tls_holder_ready(struct tls_holder *h)
{
	int ready;

	pthread_mutex_lock(&h->lock);
	ready = h->ctx != NULL;
	pthread_mutex_unlock(&h->lock);
	return ready;
}

void tls_holder_destroy(struct tls_holder *h)
{
	pthread_mutex_lock(&h->lock);
	SSL_CTX_free(h->ctx);
	h->ctx = NULL;
	pthread_mutex_unlock(&h->lock);
	pthread_mutex_destroy(&h->lock);
	free(h->cert_file);
	free(h->key_file);
	h->cert_file = h->key_file = NULL;
}

SSL_CTX *tls_client_ctx_new(const char *ca_file, char *err, size_t errsize)
{
	SSL_CTX *ctx = ctx_new(TLS_client_method(), err, errsize);

	if (ctx == NULL)
		return NULL;
	if (ca_file != NULL && *ca_file != '\0') {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
			snprintf(err, errsize, "%s: cannot load CA certificates: %s", ca_file, tls_last_error());
			SSL_CTX_free(ctx);
			return NULL;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	return ctx;
}

/* Writes a PEM file through a fresh file of mode; replaced atomically. */
static int write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert, char *err, size_t errsize)
{
	char tmp[4096];
	FILE *f = NULL;
	int fd = -1, ok;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp)) {
		snprintf(err, errsize, "%s: path too long", path);
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		snprintf(err, errsize, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	if (fchmod(fd, mode) < 0 || (f = fdopen(fd, "w")) == NULL) {
		snprintf(err, errsize, "%s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	ok = key != NULL ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, cert);
	if (!ok) {
		snprintf(err, errsize, "%s: %s", path, tls_last_error());
		fclose(f);
		unlink(tmp);
		return -1;
	}
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		snprintf(err, errsize, "%s: %s", tmp, strerror(errno));
		fclose(f);
		unlink(tmp);
		return -1;
	}
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

int tls_make_self_signed(const char *hostname, const char *cert_file, const char *key_file, char *err,
			 size_t errsize)
{
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	X509_NAME *name;
	X509_EXTENSION *ext = NULL;
	X509V3_CTX v3;
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	char san[600];
	int ret = -1;

	if (hostname == NULL || *hostname == '\0' || strlen(hostname) > 253 ||
	    strpbrk(hostname, ",:/ \t\r\n") != NULL) {
		snprintf(err, errsize, "bad host name for a certificate: \"%s\"", hostname != NULL ? hostname : "");
		return -1;
	}
	key = EVP_EC_gen("P-256");
	if (key == NULL) {
		snprintf(err, errsize, "key generation: %s", tls_last_error());
		goto fail;
	}
	cert = X509_new();
	if (cert == NULL || X509_set_version(cert, 2) != 1)
		goto ssl_fail;
	if (RAND_bytes(serial, sizeof(serial)) != 1)
		goto ssl_fail;
	serial[0] &= 0x7f; /* positive */
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) == NULL)
		goto ssl_fail;
	if (X509_gmtime_adj(X509_getm_notBefore(cert), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(cert), 10L * 366 * 24 * 3600) == NULL)
		goto ssl_fail;
	name = X509_get_subject_name(cert);
	if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)hostname, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(cert, name) != 1 || X509_set_pubkey(cert, key) != 1)
		goto ssl_fail;
	X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
	snprintf(san, sizeof(san), "DNS:%s", hostname);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
	if (ext == NULL || X509_add_ext(cert, ext, -1) != 1)
		goto ssl_fail;
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:FALSE");
	if (ext == NULL || X509_add_ext(cert, ext, -1) != 1)
		goto ssl_fail;
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_ext_key_usage, "serverAuth");
	if (ext == NULL || X509_add_ext(cert, ext, -1) != 1)
		goto ssl_fail;
	X509_EXTENSION_free(ext);
	ext = NULL;
	if (X509_sign(cert, key, EVP_sha256()) == 0)
		goto ssl_fail;
	/* The key first, so a certificate never exists without its key. */
	if (write_pem(key_file, 0600, key, NULL, err, errsize) < 0 ||
	    write_pem(cert_file, 0644, NULL, cert, err, errsize) < 0)
		goto fail;
	ret = 0;
	goto fail;
ssl_fail:
	snprintf(err, errsize, "certificate for %s: %s", hostname, tls_last_error());
fail:
	X509_EXTENSION_free(ext);
	BN_free(bn);
	X509_free(cert);
	EVP_PKEY_free(key);
	return ret;
}
