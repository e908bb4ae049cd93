/* tls — OpenSSL 3 server and client contexts with safe defaults.
 *
 * TLS 1.2 is the minimum; compression and renegotiation are off; the cipher
 * list is OpenSSL's default for TLS 1.3 and ECDHE+AEAD for TLS 1.2.
 */
#ifndef MK_TLS_H
#define MK_TLS_H

#include <openssl/ssl.h>
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
/* Text of the last OpenSSL error (thread-local buffer). */
const char *tls_last_error(void);

#endif
