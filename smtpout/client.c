/* client — one outgoing SMTP connection (Postfix's smtp): the destination's
 * addresses in order (resolve.c), TCP connect, greeting, EHLO (HELO if
 * refused), STARTTLS per smtp_tls_security_level, AUTH to the relayhost (only
 * under TLS), then transactions: MAIL, RCPT... and DATA sent at once when the
 * server offers PIPELINING (one command at a time otherwise), the message with
 * its dots doubled, the final reply. The connection then takes the next task
 * of the same destination, or waits smtp_connection_cache_time_limit and
 * says QUIT.
 *
 * Every read has a deadline (smtp_*_timeout); a reply that is not SMTP, a
 * timeout or a lost connection defers the recipients of the transaction in
 * progress ("lost connection with HOST[ADDR] while ...", as Postfix says)
 * and closes; an address that cannot be used (refused, a 4xx/5xx greeting, no
 * TLS where it is required) makes way for the next one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/base64.h"
#include "lib/log.h"
#include "lib/tls.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "smtpout/smtpout.h"

enum cstate {
	C_RESOLVE,
	C_CONNECT,
	C_GREET,
	C_EHLO,
	C_HELO,
	C_STARTTLS,
	C_TLS,
	C_AUTH,
	C_READY, /* idle, or between transactions */
	C_TXN,	 /* MAIL/RCPT/DATA replies */
	C_DOT,	 /* waiting for the reply to the final dot */
	C_RSET,
	C_QUIT,
};

enum expect { X_MAIL, X_RCPT, X_DATA };

struct conn {
	struct server *srv;
	struct dest *d;
	struct bufferevent *bev;
	enum cstate state;
	struct resolve_result *res;
	size_t ti; /* target being tried */
	struct target *tg;
	char peer[340];	      /* "mx.example.com[192.0.2.1]:25" */
	char peer_short[300]; /* "mx.example.com[192.0.2.1]" */
	char last_why[QUEUE_WHY_MAX];
	char last_dsn[16];
	int last_perm;
	int tls, pipelining, esmtp, auth_offered;
	uint64_t size_limit;
	struct event *idle_ev;
	struct conn *idle_next;
	int idle;
	/* the transaction */
	struct task *t;
	enum expect *exp;
	size_t nexp, iexp, nsent;
	int mail_failed;
	struct smtp_reply mail_reply;
	int *accepted;
	size_t naccepted;
	int need_rset;
	double t_conn;
	int reused;
	int dead; /* freed: the struct goes at the next loop turn */
};

static void try_next(struct conn *c);
static void on_read(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);
static void ready(struct conn *c);

static const char *state_words(enum cstate s)
{
	switch (s) {
	case C_CONNECT:
		return "connecting";
	case C_GREET:
		return "receiving the initial server greeting";
	case C_EHLO:
	case C_HELO:
		return "performing the EHLO handshake";
	case C_STARTTLS:
	case C_TLS:
		return "performing the TLS handshake";
	case C_AUTH:
		return "performing SASL authentication";
	case C_TXN:
		return "sending MAIL FROM";
	case C_DOT:
		return "sending message body";
	case C_RSET:
		return "sending RSET";
	default:
		return "sending end of data";
	}
}

static void set_timeout(struct conn *c, double secs)
{
	struct timeval tv = {(time_t)secs, 0};
	bufferevent_set_timeouts(c->bev, &tv, &tv);
}

static void send_line(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_line(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	struct evbuffer *out = bufferevent_get_output(c->bev);

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

static void conn_release(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	free(arg);
}

static void conn_free(struct conn *c)
{
	struct server *srv = c->srv;
	struct dest *d = c->d;

	if (c->idle) {
		struct conn **pp = &d->idle;
		for (; *pp; pp = &(*pp)->idle_next)
			if (*pp == c) {
				*pp = c->idle_next;
				break;
			}
	}
	if (c->dead)
		return;
	c->dead = 1;
	if (c->idle_ev)
		event_free(c->idle_ev);
	c->idle_ev = NULL;
	if (c->bev)
		bufferevent_free(c->bev);
	c->bev = NULL;
	resolve_result_free(c->res);
	c->res = NULL;
	free(c->exp);
	free(c->accepted);
	c->exp = NULL;
	c->accepted = NULL;
	/* callbacks of this turn may still hold c: free it on the next */
	struct timeval now = {0, 0};
	event_base_once(srv->base, -1, EV_TIMEOUT, conn_release, c, &now);
	srv->nconn_total--;
	dest_conn_gone(d);
}

/* The task in progress ends with every recipient without a result deferred
 * (or bounced: perm) for why. */
static void fail_task(struct conn *c, int perm, const char *dsn, const char *why)
{
	struct task *t = c->t;

	if (t == NULL)
		return;
	c->t = NULL;
	for (size_t i = 0; i < t->n; i++) {
		struct qrcpt *r = t->r[i];
		if (r->result != QRCPT_UNTRIED)
			continue; /* a reply of its own already (RCPT) */
		qrcpt_set(r, perm ? QUEUE_FAILED : QUEUE_DEFERRED, dsn, why,
			  c->peer[0] ? c->peer : "none");
	}
	task_done(c->srv, t);
}

/* The connection is unusable: the transaction in progress is deferred. */
static void conn_abort(struct conn *c, const char *why)
{
	if (c->t != NULL)
		fail_task(c, 0, "4.4.2", why);
	conn_free(c);
}

/* An address could not be used before any transaction: the next one. */
static void target_failed(struct conn *c, int perm, const char *dsn, const char *why)
{
	mk_strlcpy(c->last_why, why, sizeof(c->last_why));
	mk_strlcpy(c->last_dsn, dsn, sizeof(c->last_dsn));
	c->last_perm = perm;
	log_info_as("smtp", "%s: %s", c->d->name, why);
	if (c->bev) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	c->tls = c->pipelining = c->esmtp = c->auth_offered = 0;
	c->ti++;
	try_next(c);
}

static void remote_said(struct conn *c, const struct smtp_reply *r, const char *cmd, char *out,
			size_t size)
{
	char line[REPLY_TEXT_MAX];
	const char *p = r->text;
	size_t o = 0;

	/* the lines of the reply joined by spaces */
	for (; *p && o + 1 < sizeof(line); p++)
		line[o++] = *p == '\n' ? ' ' : *p;
	line[o] = 0;
	snprintf(out, size, "host %.200s said: %.350s (in reply to %s command)", c->peer_short,
		 line, cmd);
}

/* --- TLS -------------------------------------------------------------------- */

int smtpout_tls_init(struct server *srv, char *err, size_t errsize)
{
	const char *lv = srv->p.smtp_tls_security_level;

	srv->tls_level = strcmp(lv, "none") == 0      ? 0
			 : strcmp(lv, "may") == 0     ? 1
			 : strcmp(lv, "encrypt") == 0 ? 2
			 : strcmp(lv, "verify") == 0  ? 3
						      : -1;
	if (srv->tls_level < 0) {
		snprintf(err, errsize,
			 "smtp_tls_security_level = %s: want none, may, encrypt or verify (dane "
			 "is not supported yet)",
			 lv);
		return -1;
	}
	if (srv->tls_level == 0)
		return 0;
	srv->tls = tls_client_ctx_new(NULL, err, errsize);
	if (srv->tls == NULL)
		return -1;
	/* verification is judged after the handshake (verify), never a reason to
	 * fail one (may, encrypt: opportunistic TLS takes any certificate) */
	if (srv->p.smtp_tls_CAfile[0]) {
		if (SSL_CTX_load_verify_locations(srv->tls, srv->p.smtp_tls_CAfile, NULL) != 1) {
			snprintf(err, errsize, "smtp_tls_CAfile %s: %s", srv->p.smtp_tls_CAfile,
				 tls_last_error());
			return -1;
		}
	} else {
		SSL_CTX_set_default_verify_paths(srv->tls);
	}
	SSL_CTX_set_verify(srv->tls, SSL_VERIFY_NONE, NULL);
	return 0;
}

static void on_tls_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	char why[QUEUE_WHY_MAX];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
		if (c->srv->tls_level >= 3) {
			long v = SSL_get_verify_result(ssl);
			if (v != X509_V_OK) {
				snprintf(why, sizeof(why),
					 "Server certificate not verified: %s (host %s)",
					 X509_verify_cert_error_string(v), c->peer_short);
				target_failed(c, 0, "4.7.5", why);
				return;
			}
		}
		c->tls = 1;
		log_info_as("smtp", "%s TLS connection established to %s: %s with cipher %s",
			    c->srv->tls_level >= 3 ? "Verified" : "Untrusted", c->peer,
			    SSL_get_version(ssl), SSL_get_cipher_name(ssl));
		bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
		set_timeout(c, c->srv->p.smtp_helo_timeout);
		c->state = C_EHLO;
		send_line(c, "EHLO %s", c->srv->p.smtp_helo_name);
		return;
	}
	unsigned long e = bufferevent_get_openssl_error(c->bev);
	char msg[256] = "handshake failed";
	if (e)
		ERR_error_string_n(e, msg, sizeof(msg));
	snprintf(why, sizeof(why), "Cannot start TLS: handshake failure with %s: %s", c->peer_short,
		 msg);
	target_failed(c, 0, "4.7.5", why);
}

static void start_tls(struct conn *c)
{
	SSL *ssl = SSL_new(c->srv->tls);
	struct bufferevent *tb;

	if (ssl == NULL) {
		target_failed(c, 0, "4.7.5", "Cannot start TLS: out of memory");
		return;
	}
	SSL_set_tlsext_host_name(ssl, c->tg->host);
	if (c->srv->tls_level >= 3)
		SSL_set1_host(ssl, c->tg->host);
	tb = bufferevent_openssl_filter_new(c->srv->base, c->bev, ssl, BUFFEREVENT_SSL_CONNECTING,
					    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (tb == NULL) {
		SSL_free(ssl);
		target_failed(c, 0, "4.7.5", "Cannot start TLS");
		return;
	}
	c->bev = tb;
	c->state = C_TLS;
	bufferevent_setcb(tb, NULL, NULL, on_tls_event, c);
	set_timeout(c, c->srv->p.smtp_helo_timeout);
	bufferevent_enable(tb, EV_READ | EV_WRITE);
}

/* --- connecting -------------------------------------------------------------- */

static void try_next(struct conn *c)
{
	struct server *srv = c->srv;
	struct sockaddr_storage ss;
	socklen_t len;

	if (c->res == NULL || c->ti >= c->res->n) {
		/* every address failed: the destination's waiting tasks share the news */
		struct dest *d = c->d;
		if (c->t != NULL)
			fail_task(c, c->last_perm, c->last_dsn[0] ? c->last_dsn : "4.4.1",
				  c->last_why[0] ? c->last_why : "no address to try");
		dest_failed(d, c->last_perm, c->last_dsn[0] ? c->last_dsn : "4.4.1",
			    c->last_why[0] ? c->last_why : "no address to try");
		conn_free(c);
		return;
	}
	c->tg = &c->res->t[c->ti];
	memset(&ss, 0, sizeof(ss));
	if (c->tg->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)c->d->port);
		inet_pton(AF_INET6, c->tg->addr, &s6->sin6_addr);
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)c->d->port);
		inet_pton(AF_INET, c->tg->addr, &s4->sin_addr);
		len = sizeof(*s4);
	}
	snprintf(c->peer_short, sizeof(c->peer_short), "%.230s[%.64s]", c->tg->host, c->tg->addr);
	snprintf(c->peer, sizeof(c->peer), "%s:%d", c->peer_short, c->d->port);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		char why[QUEUE_WHY_MAX];
		snprintf(why, sizeof(why), "connect to %s: %s", c->peer, strerror(errno));
		target_failed(c, 0, "4.4.1", why);
		return;
	}
	if (srv->p.smtp_bind_address[0] && ss.ss_family == AF_INET) {
		struct sockaddr_in b = {.sin_family = AF_INET};
		if (inet_pton(AF_INET, srv->p.smtp_bind_address, &b.sin_addr) == 1)
			(void)bind(fd, (struct sockaddr *)&b, sizeof(b));
	}
	c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(fd);
		target_failed(c, 0, "4.4.1", "out of memory");
		return;
	}
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	set_timeout(c, srv->p.smtp_connect_timeout);
	c->state = C_CONNECT;
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&ss, (int)len) < 0) {
		char why[QUEUE_WHY_MAX];
		snprintf(why, sizeof(why), "connect to %s: %s", c->peer, strerror(errno));
		target_failed(c, 0, "4.4.1", why);
	}
}

static void on_resolved(struct resolve_result *r, void *arg)
{
	struct conn *c = arg;

	c->res = r;
	c->ti = 0;
	try_next(c);
}

static void on_resolved_status(struct resolve_result *r, void *arg)
{
	struct conn *c = arg;

	if (r->status != 0) {
		struct dest *d = c->d;
		int perm = r->status > 0;
		char dsn[16], why[QUEUE_WHY_MAX];
		mk_strlcpy(dsn, r->dsn, sizeof(dsn));
		mk_strlcpy(why, r->why, sizeof(why));
		resolve_result_free(r);
		log_info_as("smtp", "%s: %s", d->name, why);
		dest_failed(d, perm, dsn, why);
		conn_free(c);
		return;
	}
	on_resolved(r, arg);
}

void conn_start(struct server *srv, struct dest *d)
{
	struct conn *c = xcalloc(1, sizeof(*c));

	c->srv = srv;
	c->d = d;
	c->state = C_RESOLVE;
	d->nconn++;
	srv->nconn_total++;
	resolve_dest(srv, d, on_resolved_status, c);
}

/* --- idle connections ----------------------------------------------------------- */

static void quit(struct conn *c)
{
	c->state = C_QUIT;
	send_line(c, "QUIT");
	set_timeout(c, 5);
}

static void on_idle_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct conn **pp = &c->d->idle;

	(void)fd;
	(void)what;
	for (; *pp; pp = &(*pp)->idle_next)
		if (*pp == c) {
			*pp = c->idle_next;
			break;
		}
	c->idle = 0;
	quit(c);
}

void conn_wake(struct conn *c)
{
	struct conn **pp = &c->d->idle;

	for (; *pp; pp = &(*pp)->idle_next)
		if (*pp == c) {
			*pp = c->idle_next;
			break;
		}
	c->idle = 0;
	evtimer_del(c->idle_ev);
	ready(c);
}

void conn_close_idle(struct server *srv)
{
	for (struct dest *d = srv->dests; d; d = d->next)
		while (d->idle != NULL) {
			struct conn *c = d->idle;
			d->idle = c->idle_next;
			c->idle = 0;
			evtimer_del(c->idle_ev);
			quit(c);
		}
}

/* --- transactions ------------------------------------------------------------------ */

static int is_ascii_addr(const char *a)
{
	for (; *a; a++)
		if ((unsigned char)*a >= 0x80)
			return 0;
	return 1;
}

static void send_next_command(struct conn *c)
{
	struct task *t = c->t;

	if (c->nsent == 0) {
		if (c->size_limit > 0)
			send_line(c, "MAIL FROM:<%s> SIZE=%llu%s", t->m->rec.from,
				  (unsigned long long)t->m->rec.size,
				  is_ascii_addr(t->m->rec.from) ? "" : " SMTPUTF8");
		else
			send_line(c, "MAIL FROM:<%s>%s", t->m->rec.from,
				  is_ascii_addr(t->m->rec.from) || !c->esmtp ? "" : " SMTPUTF8");
	} else if (c->nsent <= t->n) {
		send_line(c, "RCPT TO:<%s>", t->r[c->nsent - 1]->addr);
	} else {
		send_line(c, "DATA");
	}
	c->nsent++;
}

static void start_transaction(struct conn *c, struct task *t)
{
	c->t = t;
	t->t_conn = c->reused ? t->t_start : c->t_conn;
	if (t->t_conn < t->t_start)
		t->t_conn = t->t_start;
	c->nexp = t->n + 2;
	c->exp = xreallocarray(c->exp, c->nexp, sizeof(*c->exp));
	c->accepted = xreallocarray(c->accepted, t->n ? t->n : 1, sizeof(*c->accepted));
	memset(c->accepted, 0, (t->n ? t->n : 1) * sizeof(*c->accepted));
	c->exp[0] = X_MAIL;
	for (size_t i = 0; i < t->n; i++)
		c->exp[1 + i] = X_RCPT;
	c->exp[t->n + 1] = X_DATA;
	c->iexp = c->nsent = 0;
	c->mail_failed = 0;
	c->naccepted = 0;
	c->state = C_TXN;
	if (c->size_limit > 0 && t->m->rec.size > c->size_limit) {
		char why[QUEUE_WHY_MAX];
		snprintf(why, sizeof(why), "message size %llu exceeds size limit %llu of server %s",
			 (unsigned long long)t->m->rec.size, (unsigned long long)c->size_limit,
			 c->peer_short);
		fail_task(c, 1, "5.3.4", why);
		ready(c);
		return;
	}
	set_timeout(c, c->srv->p.smtp_rcpt_timeout);
	if (c->pipelining)
		while (c->nsent < c->nexp)
			send_next_command(c);
	else
		send_next_command(c);
}

static void ready(struct conn *c)
{
	struct task *t;

	if (c->need_rset) {
		c->need_rset = 0;
		c->state = C_RSET;
		set_timeout(c, c->srv->p.smtp_rcpt_timeout);
		send_line(c, "RSET");
		return;
	}
	c->state = C_READY;
	c->d->ready_once = 1;
	if (!c->srv->stopping && (t = dest_next_task(c->d)) != NULL) {
		start_transaction(c, t);
		c->reused = 1;
		return;
	}
	/* idle: wait a little for more mail to the same place */
	if (c->srv->stopping || c->srv->p.smtp_connection_cache_time_limit <= 0) {
		quit(c);
		return;
	}
	if (c->idle_ev == NULL &&
	    (c->idle_ev = evtimer_new(c->srv->base, on_idle_timeout, c)) == NULL)
		log_fatal("out of memory (evtimer_new)");
	c->idle = 1;
	c->idle_next = c->d->idle;
	c->d->idle = c;
	set_timeout(c, 3600);
	double w = c->srv->p.smtp_connection_cache_time_limit;
	struct timeval tv = {(time_t)w, (suseconds_t)((w - (double)(time_t)w) * 1e6)};
	evtimer_add(c->idle_ev, &tv);
	/* tasks may have come meanwhile */
	if (c->d->ntasks > 0)
		conn_wake(c);
}

/* The message, its dots doubled, lines ended by CRLF, then the final dot. */
static int send_message(struct conn *c)
{
	struct store_txn *txn;
	const void *data;
	size_t len;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	int rc;

	if ((rc = store_read_begin(c->srv->store, &txn)) != 0)
		return rc;
	if ((rc = store_blob_get(txn, c->t->m->rec.hash, &data, &len)) != 0) {
		store_read_end(&txn);
		return rc;
	}
	const char *p = data, *end = p + len;
	int bol = 1;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl + 1 : end;
		if (bol && *p == '.')
			evbuffer_add(out, ".", 1);
		evbuffer_add(out, p, (size_t)(le - p));
		bol = nl != NULL;
		p = le;
	}
	store_read_end(&txn);
	if (len > 0 && ((const char *)data)[len - 1] != '\n')
		evbuffer_add(out, "\r\n", 2);
	evbuffer_add(out, ".\r\n", 3);
	return 0;
}

/* A reply during the transaction. */
static void txn_reply(struct conn *c, const struct smtp_reply *r)
{
	struct task *t = c->t;
	enum expect e = c->exp[c->iexp];
	char why[QUEUE_WHY_MAX];

	if (e == X_MAIL) {
		if (r->code / 100 != 2) {
			c->mail_failed = 1;
			c->mail_reply = *r;
		}
	} else if (e == X_RCPT) {
		size_t k = c->iexp - 1;
		struct qrcpt *q = t->r[k];
		if (c->mail_failed) {
			remote_said(c, &c->mail_reply, "MAIL FROM", why, sizeof(why));
			qrcpt_set(q, c->mail_reply.code / 100 == 5 ? QUEUE_FAILED : QUEUE_DEFERRED,
				  c->mail_reply.dsn, why, c->peer);
		} else if (r->code / 100 == 2) {
			c->accepted[k] = 1;
			c->naccepted++;
		} else {
			remote_said(c, r, "RCPT TO", why, sizeof(why));
			qrcpt_set(q, r->code / 100 == 5 ? QUEUE_FAILED : QUEUE_DEFERRED, r->dsn,
				  why, c->peer);
		}
	} else { /* DATA */
		c->iexp++;
		if (r->code == 354) {
			if (c->naccepted == 0) {
				/* RFC 2920: DATA accepted but nobody to send to: an empty end */
				evbuffer_add(bufferevent_get_output(c->bev), ".\r\n", 3);
			} else if (send_message(c) != 0) {
				fail_task(c, 0, "4.3.0", "cannot read the message from the store");
				conn_abort(c, "store error");
				return;
			}
			t->t_xfer = mk_now();
			c->state = C_DOT;
			set_timeout(c, c->srv->p.smtp_data_done_timeout);
			struct timeval w = {(time_t)c->srv->p.smtp_data_xfer_timeout, 0};
			struct timeval rd = {(time_t)c->srv->p.smtp_data_done_timeout, 0};
			bufferevent_set_timeouts(c->bev, &rd, &w);
			return;
		}
		/* DATA refused: the accepted recipients get its reply */
		for (size_t k = 0; k < t->n; k++) {
			if (!c->accepted[k])
				continue;
			struct qrcpt *q = t->r[k];
			remote_said(c, r, "DATA", why, sizeof(why));
			qrcpt_set(q, r->code / 100 == 5 ? QUEUE_FAILED : QUEUE_DEFERRED, r->dsn,
				  why, c->peer);
		}
		c->need_rset = 1;
		c->t = NULL;
		task_done(c->srv, t);
		ready(c);
		return;
	}
	c->iexp++;
	/* MAIL refused: no point going on without pipelining */
	if (!c->pipelining) {
		if (c->mail_failed && c->iexp == 1) {
			for (size_t k = 0; k < t->n; k++) {
				struct qrcpt *q = t->r[k];
				remote_said(c, &c->mail_reply, "MAIL FROM", why, sizeof(why));
				qrcpt_set(q,
					  c->mail_reply.code / 100 == 5 ? QUEUE_FAILED
									: QUEUE_DEFERRED,
					  c->mail_reply.dsn, why, c->peer);
			}
			c->need_rset = 1;
			c->t = NULL;
			task_done(c->srv, t);
			ready(c);
			return;
		}
		if (c->iexp == t->n + 1 && c->naccepted == 0) {
			/* every RCPT refused: no DATA */
			c->need_rset = 1;
			c->t = NULL;
			task_done(c->srv, t);
			ready(c);
			return;
		}
		send_next_command(c);
	}
}

static void dot_reply(struct conn *c, const struct smtp_reply *r)
{
	struct task *t = c->t;
	char line[REPLY_TEXT_MAX], why[QUEUE_WHY_MAX];

	smtp_reply_line(r, line, sizeof(line));
	for (size_t k = 0; k < t->n; k++) {
		if (!c->accepted[k])
			continue;
		struct qrcpt *q = t->r[k];
		if (r->code / 100 == 2) {
			qrcpt_set(q, QUEUE_SENT, r->dsn, line, c->peer);
		} else {
			remote_said(c, r, "end of DATA", why, sizeof(why));
			qrcpt_set(q, r->code / 100 == 5 ? QUEUE_FAILED : QUEUE_DEFERRED, r->dsn,
				  why, c->peer);
		}
	}
	c->need_rset = r->code / 100 != 2 || c->naccepted < t->n;
	c->t = NULL;
	task_done(c->srv, t);
	ready(c);
}

/* --- the conversation before transactions ---------------------------------------------- */

static void after_ehlo(struct conn *c, const struct smtp_reply *r)
{
	struct server *srv = c->srv;
	char params[256];

	c->pipelining = smtp_reply_has(r, "PIPELINING", NULL, 0);
	c->auth_offered = smtp_reply_has(r, "AUTH", params, sizeof(params));
	c->size_limit = 0;
	char sz[64];
	if (smtp_reply_has(r, "SIZE", sz, sizeof(sz)) && sz[0]) {
		uint64_t v;
		if (mk_parse_u64(sz, 0, UINT64_MAX, &v) == 0)
			c->size_limit = v;
	}
	if (!c->tls && srv->tls_level >= 1) {
		if (smtp_reply_has(r, "STARTTLS", NULL, 0) && srv->tls != NULL) {
			c->state = C_STARTTLS;
			send_line(c, "STARTTLS");
			return;
		}
		if (srv->tls_level >= 2) {
			char why[QUEUE_WHY_MAX];
			snprintf(why, sizeof(why),
				 "TLS is required, but was not offered by host %s", c->peer_short);
			target_failed(c, 0, "4.7.4", why);
			return;
		}
	}
	if (c->d->relay && srv->p.smtp_sasl_auth_enable && srv->sasl_user[0] && c->auth_offered) {
		if (!c->tls) {
			char why[QUEUE_WHY_MAX];
			snprintf(why, sizeof(why),
				 "refusing to send the password to %s without TLS", c->peer_short);
			target_failed(c, 0, "4.7.0", why);
			return;
		}
		char plain[600], b64[900];
		size_t ul = strlen(srv->sasl_user), pl = strlen(srv->sasl_pass);
		plain[0] = 0;
		memcpy(plain + 1, srv->sasl_user, ul);
		plain[1 + ul] = 0;
		memcpy(plain + 2 + ul, srv->sasl_pass, pl);
		if (base64_encode((unsigned char *)plain, 2 + ul + pl, b64, sizeof(b64)) < 0) {
			target_failed(c, 0, "4.7.0", "SASL credentials too long");
			return;
		}
		explicit_bzero(plain, sizeof(plain));
		c->state = C_AUTH;
		send_line(c, "AUTH PLAIN %s", b64);
		explicit_bzero(b64, sizeof(b64));
		return;
	}
	c->t_conn = mk_now();
	ready(c);
}

static void handle_reply(struct conn *c, const struct smtp_reply *r)
{
	char why[QUEUE_WHY_MAX], line[REPLY_TEXT_MAX];

	switch (c->state) {
	case C_GREET:
		if (r->code != 220) {
			smtp_reply_line(r, line, sizeof(line));
			snprintf(why, sizeof(why), "host %.200s refused to talk to me: %.300s",
				 c->peer_short, line);
			target_failed(c, r->code / 100 == 5, r->dsn, why);
			return;
		}
		c->state = C_EHLO;
		set_timeout(c, c->srv->p.smtp_helo_timeout);
		send_line(c, "EHLO %s", c->srv->p.smtp_helo_name);
		return;
	case C_EHLO:
		if (r->code / 100 != 2) {
			c->state = C_HELO;
			send_line(c, "HELO %s", c->srv->p.smtp_helo_name);
			return;
		}
		c->esmtp = 1;
		after_ehlo(c, r);
		return;
	case C_HELO:
		if (r->code / 100 != 2) {
			remote_said(c, r, "HELO", why, sizeof(why));
			target_failed(c, 0, r->dsn, why);
			return;
		}
		after_ehlo(c, r);
		return;
	case C_STARTTLS:
		if (r->code != 220) {
			if (c->srv->tls_level >= 2) {
				remote_said(c, r, "STARTTLS", why, sizeof(why));
				target_failed(c, 0, "4.7.4", why);
				return;
			}
			/* may: on in plain text */
			c->t_conn = mk_now();
			ready(c);
			return;
		}
		start_tls(c);
		return;
	case C_AUTH:
		if (r->code != 235) {
			char said[QUEUE_WHY_MAX];
			smtp_reply_line(r, line, sizeof(line));
			snprintf(said, sizeof(said),
				 "SASL authentication failed; server %.200s said: %.300s",
				 c->peer_short, line);
			target_failed(c, 0, "4.7.0", said);
			return;
		}
		c->t_conn = mk_now();
		ready(c);
		return;
	case C_TXN:
		txn_reply(c, r);
		return;
	case C_DOT:
		dot_reply(c, r);
		return;
	case C_RSET:
		if (r->code / 100 != 2) {
			quit(c);
			return;
		}
		ready(c);
		return;
	case C_QUIT:
		conn_free(c);
		return;
	case C_READY:
		/* a reply nobody asked for (an idle server's 421): done with it */
		conn_free(c);
		return;
	default:
		return;
	}
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	static struct smtp_reply r;

	for (;;) {
		size_t avail = evbuffer_get_length(in), used;
		if (avail == 0)
			return;
		size_t take = avail > REPLY_TEXT_MAX * 2 ? REPLY_TEXT_MAX * 2 : avail;
		const char *p = (const char *)evbuffer_pullup(in, (ssize_t)take);
		int rc = smtp_reply_parse(p, take, &r, &used);
		if (rc == 0)
			return;
		if (rc < 0) {
			char why[QUEUE_WHY_MAX];
			snprintf(why, sizeof(why),
				 "host %.200s talked to me nonsense while %s: %.100s",
				 c->peer_short, state_words(c->state), r.text);
			log_warn_as("smtp", "%s", why);
			if (c->state <= C_AUTH) {
				target_failed(c, 0, "4.4.2", why);
				return;
			}
			conn_abort(c, why);
			return;
		}
		evbuffer_drain(in, used);
		struct bufferevent *bev_before = c->bev;
		handle_reply(c, &r);
		/* the connection may be gone, or its bufferevent replaced (TLS, next target) */
		if (c->dead || c->bev != bev_before || c->state == C_TLS)
			return;
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	char why[QUEUE_WHY_MAX];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		c->state = C_GREET;
		set_timeout(c, c->srv->p.smtp_helo_timeout);
		return;
	}
	if (c->state == C_QUIT) {
		conn_free(c);
		return;
	}
	if (c->state == C_CONNECT) {
		int e = EVUTIL_SOCKET_ERROR();
		if (what & BEV_EVENT_TIMEOUT)
			snprintf(why, sizeof(why), "connect to %s: Connection timed out", c->peer);
		else
			snprintf(why, sizeof(why), "connect to %s: %s", c->peer,
				 e ? evutil_socket_error_to_string(e) : "Connection refused");
		target_failed(c, 0, "4.4.1", why);
		return;
	}
	const char *doing = state_words(c->state);
	if (c->state == C_DOT && !(what & BEV_EVENT_WRITING) &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		doing = "sending end of data -- message may be sent more than once";
	if (what & BEV_EVENT_TIMEOUT)
		snprintf(why, sizeof(why), "conversation with %s timed out while %s", c->peer_short,
			 doing);
	else
		snprintf(why, sizeof(why), "lost connection with %s while %s", c->peer_short,
			 doing);
	if (c->state == C_READY && c->t == NULL) {
		conn_free(c); /* an idle connection the server closed */
		return;
	}
	if (c->state < C_READY) {
		target_failed(c, 0, "4.4.2", why);
		return;
	}
	log_info_as("smtp", "%s", why);
	conn_abort(c, why);
}
