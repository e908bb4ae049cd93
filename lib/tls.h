/* tls — OpenSSL 3 server and client contexts with safe defaults.
 *
 * TLS 1.2 is the minimum; compression and renegotiation are off; the cipher
 * list is OpenSSL's default for TLS 1.3 and ECDHE+AEAD for TLS 1.2.
 */
#ifndef MK_TLS_H
#define MK_TLS_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <stddef.h>

/* A server context from a PEM certificate chain and key. On error returns NULL
 * and writes what went wrong (file and OpenSSL's reason) into err. */
SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errsize);
/* A client context; ca_file may be NULL (no verification: for tests and
 * opportunistic TLS only). */
SSL_CTX *tls_client_ctx_new(const char *ca_file, char *err, size_t errsize);
/* Writes a self-signed certificate and key (RSA 2048 or P-256, 10 years) for
 * hostname. Returns 0 or -1 with err. The key file is created mode 0600. */
int tls_make_self_signed(const char *hostname, const char *cert_file, const char *key_file, char *err,
			 size_t errsize);
/* One line on a context's certificate, for the log: "subject CN=..., issuer
 * CN=..., notAfter Mar  1 12:00:00 2027 GMT" (", EXPIRED" when it is). */
void tls_ctx_describe(SSL_CTX *ctx, char *out, size_t outsize);

/* A server context that can be replaced while sessions run: the daemons load
 * the certificate chain and key again on SIGHUP (certificate renewal) and the
 * new context serves every new connection and STARTTLS. A session takes its
 * own reference with tls_holder_get() and gives it back with SSL_CTX_free()
 * once SSL_new() took one for the connection; so a context that was swapped
 * out lives on until its last connection ends. All functions are thread-safe.
 *
 * The file names are kept from tls_holder_init(): a reload reads the same
 * paths again (certbot's live/NAME/fullchain.pem and privkey.pem are stable
 * symbolic links to the newest files). */
struct tls_holder {
	pthread_mutex_t lock;
	SSL_CTX *ctx; /* NULL: nothing loaded (yet) */
	char *cert_file, *key_file;
};

/* Remembers the files; loads nothing (see tls_holder_load). Out of memory is fatal. */
void tls_holder_init(struct tls_holder *h, const char *cert_file, const char *key_file);
/* Loads the files into a new context and makes it the current one. Returns 0
 * and describes the new certificate in msg (tls_ctx_describe), or -1 and says
 * in msg which file could not be used and why; then the current context, if
 * any, stays. A file the process cannot read for lack of permission (the
 * daemons have dropped privileges by then) gets a hint naming the user the
 * process runs as. */
int tls_holder_load(struct tls_holder *h, char *msg, size_t msgsize);
/* What SIGHUP does: tls_holder_load, then one log line (as service svc, see
 * log_info_as; NULL: the program's own name). On success, an info line with
 * the files and the new certificate; on failure a warning with the reason and
 * the certificate still served (or that TLS stays off). Never exits. Returns
 * as tls_holder_load. */
int tls_holder_reload(struct tls_holder *h, const char *svc);
/* The current context with a reference the caller owns (SSL_CTX_free it), or
 * NULL if none was ever loaded. */
SSL_CTX *tls_holder_get(struct tls_holder *h);
/* 1 if a context is loaded (STARTTLS can be offered), else 0. */
int tls_holder_ready(struct tls_holder *h);
/* Drops the holder's reference and frees the file names. */
void tls_holder_destroy(struct tls_holder *h);

/* Text of the OpenSSL error that came first (the cause) in this thread's
 * queue, which is then cleared (thread-local buffer). */
const char *tls_last_error(void);

#endif
