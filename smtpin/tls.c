/* tls — STARTTLS and implicit TLS for sessions, on libevent's OpenSSL
 * bufferevents. The context comes from lib/tls.c (TLS 1.2 minimum, no
 * compression or renegotiation); the files are smtpd_tls_cert_file and
 * smtpd_tls_key_file, loaded again on SIGHUP (a renewed certificate) for the
 * connections that start after it. */
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/tls.h"
#include "smtpin/smtpin.h"

int smtpin_tls_init(struct server *srv, char *err, size_t errsize)
{
	const char *cert = srv->p.smtpd_tls_cert_file;
	const char *key = srv->p.smtpd_tls_key_file;
	char msg[1024];

	tls_holder_init(&srv->tls, cert, key);
	if (srv->tls_level == 0)
		return 0;
	if (cert == NULL || key == NULL || access(cert, R_OK) != 0 || access(key, R_OK) != 0) {
		if (srv->tls_level == 2) {
			snprintf(err, errsize,
				 "smtpd_tls_security_level = encrypt, but %s or %s cannot be read",
				 cert ? cert : "(cert)", key ? key : "(key)");
			return -1;
		}
		log_warn_as("smtpd",
			    "no TLS certificate (%s): no STARTTLS until a SIGHUP loads one",
			    cert ? cert : "smtpd_tls_cert_file");
		return 0;
	}
	if (tls_holder_load(&srv->tls, msg, sizeof(msg)) < 0) {
		snprintf(err, errsize, "%s", msg);
		return -1;
	}
	log_info_as("smtpd", "TLS certificate %s: %s", cert, msg);
	return 0;
}

void smtpin_tls_reload(struct server *srv)
{
	if (srv->tls_level == 0) {
		log_info_as("smtpd",
			    "SIGHUP: no certificate to reload (smtpd_tls_security_level = none)");
		return;
	}
	tls_holder_reload(&srv->tls, "smtpd");
}

int smtpin_tls_ready(struct server *srv)
{
	return srv->tls_level > 0 && tls_holder_ready(&srv->tls);
}

void tls_describe(struct bufferevent *bev, char *out, size_t outsize)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	int bits = 0, alg = 0;

	if (ssl == NULL) {
		out[0] = 0;
		return;
	}
	bits = SSL_get_cipher_bits(ssl, &alg);
	snprintf(out, outsize, "%s with cipher %s (%d/%d bits)", SSL_get_version(ssl),
		 SSL_get_cipher_name(ssl), bits, alg);
}

/* An SSL for one connection on the current context; the SSL keeps its own
 * reference, so a context replaced by SIGHUP lives until its last session. */
static SSL *ssl_new(struct server *srv)
{
	SSL_CTX *ctx;
	SSL *ssl;

	if (srv->tls_level == 0 || (ctx = tls_holder_get(&srv->tls)) == NULL)
		return NULL;
	ssl = SSL_new(ctx);
	SSL_CTX_free(ctx);
	return ssl;
}

struct bufferevent *tls_accept_bev(struct server *srv, int fd)
{
	SSL *ssl = ssl_new(srv);

	if (ssl == NULL)
		return NULL;
	struct bufferevent *bev = bufferevent_openssl_socket_new(
	    srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		SSL_free(ssl);
	return bev;
}

static void on_handshake(struct bufferevent *bev, short what, void *arg);

int session_starttls(struct session *s)
{
	SSL *ssl = ssl_new(s->srv);
	struct bufferevent *tbev;

	if (ssl == NULL)
		return -1;
	tbev = bufferevent_openssl_filter_new(s->srv->base, s->bev, ssl, BUFFEREVENT_SSL_ACCEPTING,
					      BEV_OPT_CLOSE_ON_FREE);
	if (tbev == NULL) {
		SSL_free(ssl);
		return -1;
	}
	s->bev = tbev;
	s->tls = 1;
	/* session.c's callbacks come back once the handshake is done */
	bufferevent_setcb(tbev, NULL, NULL, on_handshake, s);
	struct timeval tv = {(time_t)s->srv->timeout, 0};
	bufferevent_set_timeouts(tbev, &tv, &tv);
	bufferevent_enable(tbev, EV_READ | EV_WRITE);
	return 0;
}

static void on_handshake(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		tls_describe(s->bev, s->tls_info, sizeof(s->tls_info));
		log_info_as("smtpd", "Anonymous TLS connection established from %s: %s", s->client,
			    s->tls_info);
		session_tls_ready(s);
		return;
	}
	session_tls_failed(s);
}
