/* session — one SMTP or LMTP conversation: reads lines and message data from
 * a bufferevent, runs the command state machine, and hands the slow parts
 * (restrictions, directory, delivery) to async helpers that resume it.
 *
 * Input is bounded before it is parsed: a command line longer than
 * line_length_limit is skipped up to its end and answered with 500; DATA and
 * BDAT go through data.c, which keeps at most message_size_limit bytes. While
 * a session is busy it does not read (EV_READ off), which also stops its idle
 * timer; what the client pipelined meanwhile waits in the input buffer.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "index/quota.h"
#include "lib/array.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "smtpin/smtpin.h"

#define RECEIVED_MAX 2048

static void session_input(struct session *s);
static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

void session_ref(struct session *s)
{
	s->refs++;
}

static void session_free(struct session *s)
{
	s->srv->nalive--;
	smtpin_reload_session_gone(s->srv, s->gen); /* reload.c: old settings may go */
	buf_free(&s->msg);
	free(s->rcpts);
	free(s);
}

void session_unref(struct session *s)
{
	if (--s->refs == 0)
		session_free(s);
}

void session_reply(struct session *s, const char *fmt, ...)
{
	va_list ap;

	if (s->closed)
		return;
	if (fmt[0] == '4' || fmt[0] == '5')
		s->errors++;
	struct evbuffer *out = bufferevent_get_output(s->bev);
	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

static void set_timeouts(struct session *s)
{
	struct timeval tv = {(time_t)s->srv->timeout, 0};
	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

static void install_bev(struct session *s, struct bufferevent *bev)
{
	s->bev = bev;
	bufferevent_setcb(bev, on_read, on_write, on_event, s);
	set_timeouts(s);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* The counts Postfix prints at disconnect: "ehlo=1 mail=1 rcpt=0/1 quit=1 commands=2/3". */
static void log_disconnect(struct session *s)
{
	static const enum smtp_verb order[] = {SMTP_HELO, SMTP_EHLO, SMTP_LHLO, SMTP_STARTTLS,
					       SMTP_AUTH, SMTP_MAIL, SMTP_RCPT, SMTP_DATA,
					       SMTP_BDAT, SMTP_RSET, SMTP_NOOP, SMTP_VRFY,
					       SMTP_EXPN, SMTP_HELP, SMTP_ETRN, SMTP_QUIT};
	char line[512], *p = line;
	size_t left = sizeof(line);
	unsigned total = 0, ok = 0;

	line[0] = 0;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		enum smtp_verb v = order[i];
		if (s->cnt_total[v] == 0)
			continue;
		char name[16];
		mk_strlcpy(name, smtp_verb_name(v), sizeof(name));
		for (char *c = name; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		int n = s->cnt_ok[v] == s->cnt_total[v]
			    ? snprintf(p, left, " %s=%u", name, s->cnt_total[v])
			    : snprintf(p, left, " %s=%u/%u", name, s->cnt_ok[v], s->cnt_total[v]);
		if (n > 0 && (size_t)n < left) {
			p += n;
			left -= (size_t)n;
		}
		total += s->cnt_total[v];
		ok += s->cnt_ok[v];
	}
	if (s->cnt_unknown) {
		int n = snprintf(p, left, " unknown=0/%u", s->cnt_unknown);
		if (n > 0 && (size_t)n < left) {
			p += n;
			left -= (size_t)n;
		}
		total += s->cnt_unknown;
	}
	if (ok == total)
		snprintf(p, left, " commands=%u", total);
	else
		snprintf(p, left, " commands=%u/%u", ok, total);
	log_info_as("smtpd", "disconnect from %s%s", s->client, line);
}

static void reset_transaction(struct session *s)
{
	s->mail_seen = 0;
	s->qid[0] = 0;
	memset(&s->from, 0, sizeof(s->from));
	s->nrcpt = 0;
	s->in_bdat = 0;
	s->bdat_bad = 0;
	s->bdat_left = 0;
	s->hdr_len = 0;
	buf_free(&s->msg);
	buf_init(&s->msg, s->srv->size_limit + RECEIVED_MAX);
}

void session_close(struct session *s, const char *why)
{
	struct server *srv = s->srv;

	if (s->closed)
		return;
	if (why != NULL)
		log_info_as("smtpd", "%s after %s from %s", why,
			    s->last_cmd[0] ? s->last_cmd : "CONNECT", s->client);
	log_disconnect(s);
	limits_close(s);
	if (s->lst->kind != LISTEN_LMTP)
		postscreen_end(s);
	s->closed = 1;
	if (s->greet_ev != NULL) {
		event_free(s->greet_ev);
		s->greet_ev = NULL;
	}
	if (s->close_ev != NULL) {
		event_free(s->close_ev);
		s->close_ev = NULL;
	}
	if (s->sleep_ev != NULL && evtimer_pending(s->sleep_ev, NULL)) {
		/* the sleep's reference is dropped here, not by the timer */
		evtimer_del(s->sleep_ev);
		session_unref(s);
	}
	if (s->sleep_ev != NULL) {
		event_free(s->sleep_ev);
		s->sleep_ev = NULL;
	}
	bufferevent_free(s->bev);
	s->bev = NULL;
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	srv->nsessions--;
	session_unref(s);
	if (srv->stopping && srv->nsessions == 0)
		server_shutdown(srv);
}

/* All output is on the wire: ours, and under TLS the encrypted layer's too. */
static int flushed(struct session *s)
{
	struct bufferevent *under = bufferevent_get_underlying(s->bev);

	return evbuffer_get_length(bufferevent_get_output(s->bev)) == 0 &&
	       (under == NULL || evbuffer_get_length(bufferevent_get_output(under)) == 0);
}

/* Closing: once our replies are on the wire, a plain connection is shut
 * for writing and closed when the client closes its side (or after a few
 * seconds): closing with unread input would send a RST that can destroy the
 * last reply in flight. A TLS connection is closed once flushed. */
static void on_close_timer(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	struct timeval tv = {0, 20000};

	(void)fd;
	(void)what;
	if (s->closed)
		return;
	s->close_polls++;
	if (s->close_polls > 250) {
		session_close(s, NULL);
		return;
	}
	if (flushed(s)) {
		if (s->tls) {
			/* the encrypted layer is filled from deferred callbacks: look twice */
			if (s->flushed_once++ > 0) {
				session_close(s, NULL);
				return;
			}
		} else if (!s->shut_wr) {
			s->shut_wr = 1;
			shutdown(bufferevent_getfd(s->bev), SHUT_WR);
		}
	}
	evtimer_add(s->close_ev, &tv);
}

void session_quit(struct session *s)
{
	limits_release(s); /* a closing session holds no slot */
	s->quitting = 1;
	/* reading stays on: input is drained (and TLS needs it to write) */
	bufferevent_enable(s->bev, EV_READ);
	if (s->close_ev == NULL) {
		s->close_ev = evtimer_new(s->srv->base, on_close_timer, s);
		if (s->close_ev == NULL)
			log_fatal("out of memory (evtimer_new)");
		struct timeval tv = {0, 0};
		evtimer_add(s->close_ev, &tv);
	}
}

static void on_write(struct bufferevent *bev, void *arg)
{
	(void)bev;
	(void)arg;
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		/* implicit TLS: the handshake is done */
		tls_describe(s->bev, s->tls_info, sizeof(s->tls_info));
		log_info_as("smtpd", "Anonymous TLS connection established from %s: %s", s->client,
			    s->tls_info);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (!s->quitting) {
			session_reply(s, "421 4.4.2 %s Error: timeout exceeded", s->srv->hostname);
			log_info_as("smtpd", "timeout after %s from %s",
				    s->last_cmd[0] ? s->last_cmd : "CONNECT", s->client);
			/* if the peer does not read either, the next timeout closes */
			struct timeval tv = {5, 0};
			bufferevent_set_timeouts(s->bev, &tv, &tv);
			session_quit(s);
			return;
		}
		session_close(s, NULL);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		if (s->quitting) {
			session_close(s, NULL);
			return;
		}
		if (what & BEV_EVENT_ERROR && s->tls) {
			unsigned long e = bufferevent_get_openssl_error(s->bev);
			if (e != 0) {
				char msg[256];
				ERR_error_string_n(e, msg, sizeof(msg));
				log_info_as("smtpd", "SSL error from %s: %s", s->client, msg);
			}
		}
		if (s->busy) {
			/* the pending job finishes, sees closed, and drops its reference */
			session_close(s, "lost connection");
			return;
		}
		session_close(s, "lost connection");
	}
}

void session_tls_ready(struct session *s)
{
	bufferevent_setcb(s->bev, on_read, on_write, on_event, s);
	set_timeouts(s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	session_input(s);
}

void session_tls_failed(struct session *s)
{
	unsigned long e = bufferevent_get_openssl_error(s->bev);
	char msg[256] = "handshake failed";

	if (e != 0)
		ERR_error_string_n(e, msg, sizeof(msg));
	log_info_as("smtpd", "SSL_accept error from %s: %s", s->client, msg);
	session_close(s, "lost connection");
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	if (s->quitting) {
		struct evbuffer *in = bufferevent_get_input(bev);
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	limits_activity(s);
	session_input(s);
}

void session_resume(struct session *s)
{
	s->busy = 0;
	if (s->closed)
		return;
	if (s->srv->stopping && !s->quitting && s->state == SS_CMD && !s->mail_seen) {
		session_reply(s, "421 4.3.2 %s Service shutting down", s->srv->hostname);
		session_quit(s);
		return;
	}
	if (!s->quitting)
		bufferevent_enable(s->bev, EV_READ);
	session_input(s);
}

static void go_busy(struct session *s)
{
	s->busy = 1;
	bufferevent_disable(s->bev, EV_READ);
}

void session_logreject(struct session *s, const char *stage, const char *reply)
{
	char from[SMTP_ADDR_MAX + 1], to[SMTP_ADDR_MAX + 1];

	PRINTABLE(from, s->from.addr);
	PRINTABLE(to, s->cur.addr);
	if (strcmp(stage, "RCPT") == 0)
		log_info_as("smtpd",
			    "%s: reject: RCPT from %s: %s; from=<%s> to=<%s> proto=%s helo=<%s>",
			    s->nrcpt ? s->qid : "NOQUEUE", s->client, reply, from, to,
			    s->lmtp    ? "LMTP"
			    : s->esmtp ? "ESMTP"
				       : "SMTP",
			    s->helo);
	else
		log_info_as("smtpd", "%s: reject: %s from %s: %s; from=<%s> proto=%s helo=<%s>",
			    s->nrcpt ? s->qid : "NOQUEUE", stage, s->client, reply, from,
			    s->lmtp    ? "LMTP"
			    : s->esmtp ? "ESMTP"
				       : "SMTP",
			    s->helo);
}

/* --- commands ---------------------------------------------------------- */

static void send_ehlo(struct session *s)
{
	struct server *srv = s->srv;
	int tls_offer = !s->tls && smtpin_tls_ready(srv);
	int auth_offer = srv->sasl && srv->dir != NULL &&
			 (s->tls || (!srv->tls_auth_only && !s->submission)) && !s->lmtp;

	session_reply(s, "250-%s", srv->hostname);
	session_reply(s, "250-PIPELINING");
	session_reply(s, "250-SIZE %llu", (unsigned long long)srv->size_limit);
	if (tls_offer && !s->lmtp)
		session_reply(s, "250-STARTTLS");
	if (auth_offer)
		session_reply(s, "250-AUTH PLAIN LOGIN");
	session_reply(s, "250-ENHANCEDSTATUSCODES");
	session_reply(s, "250-8BITMIME");
	session_reply(s, "250-CHUNKING");
	session_reply(s, "250 SMTPUTF8");
}

static void helo_done(struct session *s, const struct restr_result *r)
{
	if (s->closed) {
		session_unref(s);
		return;
	}
	if (r->verdict == V_REJECT || r->verdict == V_DEFER) {
		session_logreject(s, s->esmtp ? "EHLO" : "HELO", r->reply);
		session_reply(s, "%s", r->reply);
		s->helo_seen = 0;
	} else {
		s->cnt_ok[s->lmtp ? SMTP_LHLO : s->esmtp ? SMTP_EHLO : SMTP_HELO]++;
		if (s->esmtp)
			send_ehlo(s);
		else
			session_reply(s, "250 %s", s->srv->hostname);
	}
	session_resume(s);
	session_unref(s);
}

static void cmd_helo(struct session *s, const struct smtp_command *c)
{
	if (c->arg_len == 0) {
		session_reply(s, "501 5.5.4 Syntax: %s hostname", c->name);
		return;
	}
	if (s->lmtp != (c->verb == SMTP_LHLO)) {
		session_reply(s, "500 5.5.1 Error: %s not allowed here; use %s", c->name,
			      s->lmtp ? "LHLO" : "EHLO");
		return;
	}
	reset_transaction(s);
	log_printable(s->helo, sizeof(s->helo), c->arg, c->arg_len);
	s->esmtp = c->verb != SMTP_HELO;
	s->helo_seen = 1;
	if (!s->srv->delay_reject && s->srv->r_helo.n + s->srv->r_client.n > 0) {
		session_ref(s);
		go_busy(s);
		restrictions_check(s, "HELO", helo_done);
		return;
	}
	s->cnt_ok[c->verb]++;
	if (s->esmtp)
		send_ehlo(s);
	else
		session_reply(s, "250 %s", s->srv->hostname);
}

static void mail_done(struct session *s, const struct restr_result *r)
{
	if (s->closed) {
		session_unref(s);
		return;
	}
	if (r->verdict == V_REJECT || r->verdict == V_DEFER) {
		session_logreject(s, "MAIL", r->reply);
		session_reply(s, "%s", r->reply);
		reset_transaction(s);
	} else {
		s->cnt_ok[SMTP_MAIL]++;
		session_reply(s, "250 2.1.0 Ok");
	}
	session_resume(s);
	session_unref(s);
}

static void sender_checked(struct session *s, const char *reply)
{
	struct restr_result r = {.verdict = reply ? V_REJECT : V_DUNNO};

	if (reply)
		mk_strlcpy(r.reply, reply, sizeof(r.reply));
	mail_done(s, &r);
}

static void cmd_mail(struct session *s, const struct smtp_command *c)
{
	struct server *srv = s->srv;
	const char *why;

	if (srv->helo_required && !s->helo_seen) {
		session_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		return;
	}
	if (s->lmtp && !s->helo_seen) {
		session_reply(s, "503 5.5.1 Error: send LHLO first");
		return;
	}
	if (srv->tls_level == 2 && !s->tls && !s->lmtp) {
		session_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
		return;
	}
	if (s->mail_seen) {
		session_reply(s, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	if (s->submission && !s->authed) {
		session_reply(s, "530 5.7.0 Authentication required");
		return;
	}
	if (smtp_parse_path(c->arg, c->arg_len, 1, srv->strict, &s->cur, &why) < 0) {
		if (strcmp(why, "unsupported parameter") == 0)
			session_reply(s, "555 5.5.4 Unsupported option");
		else
			session_reply(s, "501 5.1.7 Bad sender address syntax");
		return;
	}
	if (s->cur.utf8 && !s->cur.smtputf8) {
		session_reply(s, "553 5.6.7 Must declare SMTPUTF8 to send non-ASCII addresses");
		return;
	}
	if (s->cur.has_size && s->cur.size > srv->size_limit) {
		session_reply(s, "552 5.3.4 Message size exceeds fixed limit");
		return;
	}
	reset_transaction(s);
	s->from = s->cur;
	s->mail_seen = 1;
	mk_queue_id(s->qid, sizeof(s->qid));
	if (s->authed) {
		session_ref(s);
		go_busy(s);
		submission_check_sender(s, sender_checked);
		return;
	}
	if (!srv->delay_reject && srv->r_sender.n > 0) {
		session_ref(s);
		go_busy(s);
		restrictions_check(s, "MAIL", mail_done);
		return;
	}
	s->cnt_ok[SMTP_MAIL]++;
	session_reply(s, "250 2.1.0 Ok");
}

static void rcpt_reject(struct session *s, const char *reply)
{
	session_logreject(s, "RCPT", reply);
	session_reply(s, "%s", reply);
}

static void rcpt_lookup_done(struct session *s, int result, const char *user)
{
	char reply[700], to[SMTP_ADDR_MAX + 1];

	if (s->closed) {
		session_unref(s);
		return;
	}
	PRINTABLE(to, s->cur.addr);
	if (result == DELIVER_OVERQUOTA) {
		/* RFC 3463 4.2.2 / 5.2.2: mailbox full (quota_full_tempfail) */
		snprintf(reply, sizeof(reply), quota_tempfail() ? "452 4.2.2 <%s>: Mailbox full: over quota"
								 : "552 5.2.2 <%s>: Mailbox full: over quota",
			 to);
		rcpt_reject(s, reply);
	} else if (result == DIR_NOTFOUND && s->srv->reject_unlisted) {
		snprintf(reply, sizeof(reply),
			 "550 5.1.1 <%s>: Recipient address rejected: User unknown in local "
			 "recipient table",
			 to);
		rcpt_reject(s, reply);
	} else if (result != DIR_OK && result != DIR_NOTFOUND) {
		snprintf(reply, sizeof(reply), "451 4.3.0 <%s>: Temporary lookup failure", to);
		rcpt_reject(s, reply);
	} else if (result == DIR_NOTFOUND) {
		snprintf(reply, sizeof(reply),
			 "550 5.1.1 <%s>: Recipient address rejected: User unknown", to);
		rcpt_reject(s, reply);
	} else {
		ARRAY_RESERVE(s->rcpts, s->rcap, s->nrcpt + 1);
		for (size_t i = 0; i < s->nrcpt && !s->lmtp; i++) {
			if (strcmp(s->rcpts[i].user, user) == 0) {
				/* the same mailbox twice (an alias and its user): one copy, as
				 * Postfix does */
				s->cnt_ok[SMTP_RCPT]++;
				session_reply(s, "250 2.1.5 Ok");
				goto done;
			}
		}
		struct rcpt *r = &s->rcpts[s->nrcpt++];
		mk_strlcpy(r->addr, s->cur.addr, sizeof(r->addr));
		mk_strlcpy(r->user, user, sizeof(r->user));
		r->remote = 0;
		if (s->nrcpt == 1) {
			if (s->authed)
				log_info_as("smtpd",
					    "%s: client=%s, sasl_method=%s, sasl_username=%s",
					    s->qid, s->client, s->sasl_method, s->sasl_user);
			else
				log_info_as("smtpd", "%s: client=%s", s->qid, s->client);
		}
		s->cnt_ok[SMTP_RCPT]++;
		session_reply(s, "250 2.1.5 Ok");
	}
done:
	session_resume(s);
	session_unref(s);
}

static void rcpt_restrictions_done(struct session *s, const struct restr_result *r)
{
	char reply[700], to[SMTP_ADDR_MAX + 1];

	if (s->closed) {
		session_unref(s);
		return;
	}
	PRINTABLE(to, s->cur.addr);
	if (r->verdict == V_REJECT || r->verdict == V_DEFER) {
		rcpt_reject(s, r->reply);
		goto done;
	}
	/* An authenticated user's mail to another domain is queued for smtpout
	 * (submission.c); nobody else's is ever relayed. */
	if (s->authed && !smtp_addr_routing_trick(&s->cur) &&
	    !domain_is_local(s->srv, s->cur.domain) && strcasecmp(s->cur.addr, "postmaster") != 0) {
		if (submission_remote_rcpt(s, reply, sizeof(reply)) < 0) {
			rcpt_reject(s, reply);
		} else {
			s->cnt_ok[SMTP_RCPT]++;
			session_reply(s, "250 2.1.5 Ok");
		}
		goto done;
	}
	/* A domain we are a backup MX for: valid recipients are queued (relay.c). */
	if (!smtp_addr_routing_trick(&s->cur) && !domain_is_local(s->srv, s->cur.domain) &&
	    relay_domain(s->srv, s->cur.domain)) {
		relay_rcpt(s); /* replies, resumes, drops the reference */
		return;
	}
	/* Anything else but a plain address in one of our domains is refused
	 * here, after the admin's restrictions. */
	if (strcasecmp(s->cur.addr, "postmaster") != 0 &&
	    (smtp_addr_routing_trick(&s->cur) || !domain_is_local(s->srv, s->cur.domain))) {
		snprintf(reply, sizeof(reply), "554 5.7.1 <%s>: Relay access denied", to);
		rcpt_reject(s, reply);
		goto done;
	}
	/* the directory answers; the session stays busy */
	deliver_lookup_rcpt(s, rcpt_lookup_done);
	return;
done:
	session_resume(s);
	session_unref(s);
}

static void cmd_rcpt(struct session *s, const struct smtp_command *c)
{
	struct server *srv = s->srv;
	const char *why;

	if (!s->mail_seen) {
		session_reply(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (s->nrcpt >= (size_t)srv->rcpt_limit) {
		session_reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	if (smtp_parse_path(c->arg, c->arg_len, 0, srv->strict, &s->cur, &why) < 0) {
		if (strcmp(why, "unsupported parameter") == 0)
			session_reply(s, "555 5.5.4 Unsupported option");
		else
			session_reply(s, "501 5.1.3 Bad recipient address syntax");
		return;
	}
	if (s->cur.utf8 && !s->from.smtputf8) {
		session_reply(s, "553 5.6.7 Must declare SMTPUTF8 to send non-ASCII addresses");
		return;
	}
	if (s->ps_enforce[0]) {
		rcpt_reject(s, s->ps_enforce);
		return;
	}
	if (strcasecmp(s->cur.addr, "postmaster") == 0) {
		/* RFC 5321 4.5.1: <postmaster> alone is ours */
		mk_strlcpy(s->cur.domain, s->srv->hostname, sizeof(s->cur.domain));
	}
	session_ref(s);
	go_busy(s);
	if (s->submission) {
		/* the password was the test: no MX restrictions on submission */
		struct restr_result ok = {.verdict = V_DUNNO};
		rcpt_restrictions_done(s, &ok);
		return;
	}
	restrictions_check(s, "RCPT", rcpt_restrictions_done);
}

static void start_message(struct session *s)
{
	buf_reset(&s->msg);
	deliver_received_header(s);
	s->hdr_len = s->msg.len;
	smtp_data_init(&s->data, &s->msg, s->srv->size_limit);
	s->t_data = mk_now();
}

static void data_done(struct session *s, const struct restr_result *r)
{
	if (s->closed) {
		session_unref(s);
		return;
	}
	if (r->verdict == V_REJECT || r->verdict == V_DEFER) {
		session_logreject(s, "DATA", r->reply);
		session_reply(s, "%s", r->reply);
	} else {
		start_message(s);
		s->state = SS_DATA;
		session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	}
	session_resume(s);
	session_unref(s);
}

static void cmd_data(struct session *s, const struct smtp_command *c)
{
	if (c->arg_len != 0) {
		session_reply(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (!s->mail_seen) {
		session_reply(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (s->nrcpt == 0) {
		session_reply(s, "554 5.5.1 Error: no valid recipients");
		return;
	}
	if (s->in_bdat) {
		session_reply(s, "503 5.5.1 Error: DATA after BDAT");
		return;
	}
	if (s->srv->r_data.n > 0) {
		session_ref(s);
		go_busy(s);
		restrictions_check(s, "DATA", data_done);
		return;
	}
	start_message(s);
	s->state = SS_DATA;
	session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

/* The whole message is in (DATA's dot or BDAT LAST): refuse or deliver. */
static void message_end(struct session *s)
{
	const char *refuse = NULL;

	s->state = SS_CMD;
	if ((s->data.bare_cr || s->data.bare_lf) && s->srv->forbid_bare)
		refuse = "550 5.5.2 Error: bare <CR> or <LF> received";
	else if (s->data.too_big)
		refuse = "552 5.3.4 Error: message file too big";
	else if (s->nrcpt == 0 || !s->mail_seen)
		refuse = "554 5.5.1 Error: no valid recipients";
	if (refuse) {
		char from[SMTP_ADDR_MAX + 1];
		PRINTABLE(from, s->from.addr);
		log_info_as("smtpd", "%s: reject: %s from %s: %s; from=<%s> proto=%s helo=<%s>",
			    s->qid[0] ? s->qid : "NOQUEUE", s->in_bdat ? "BDAT" : "END-OF-MESSAGE",
			    s->client, refuse, from, s->lmtp ? "LMTP" : "ESMTP", s->helo);
		if (s->lmtp && s->nrcpt > 0)
			for (size_t i = 0; i < s->nrcpt; i++)
				session_reply(s, "%s", refuse);
		else
			session_reply(s, "%s", refuse);
		reset_transaction(s);
		return;
	}
	session_ref(s);
	go_busy(s);
	authres_deliver(s); /* checks, then delivers: replies, resets the transaction, resumes */
}

static void cmd_bdat(struct session *s, const struct smtp_command *c)
{
	char arg[64], *sp;
	uint64_t size;

	if (c->arg_len == 0 || c->arg_len >= sizeof(arg)) {
		session_reply(s, "501 5.5.4 Syntax: BDAT size [LAST]");
		session_quit(s); /* the chunk size is unknown: we cannot stay in step */
		return;
	}
	memcpy(arg, c->arg, c->arg_len);
	arg[c->arg_len] = 0;
	sp = strchr(arg, ' ');
	s->bdat_last = 0;
	if (sp != NULL) {
		*sp++ = 0;
		while (*sp == ' ')
			sp++;
		if (strcasecmp(sp, "LAST") != 0) {
			session_reply(s, "501 5.5.4 Syntax: BDAT size [LAST]");
			session_quit(s);
			return;
		}
		s->bdat_last = 1;
	}
	if (mk_parse_u64(arg, 0, UINT64_MAX / 2, &size) < 0) {
		session_reply(s, "501 5.5.4 Syntax: BDAT size [LAST]");
		session_quit(s);
		return;
	}
	if (!s->in_bdat) {
		s->in_bdat = 1;
		s->bdat_bad = !s->mail_seen || s->nrcpt == 0;
		start_message(s);
	}
	s->bdat_left = size;
	s->state = SS_BDAT;
}

static void bdat_chunk_end(struct session *s)
{
	s->state = SS_CMD;
	if (s->bdat_bad) {
		session_reply(s, "%s",
			      !s->mail_seen ? "503 5.5.1 Error: need MAIL command"
					    : "554 5.5.1 Error: no valid recipients");
		if (s->bdat_last) {
			s->in_bdat = 0;
			reset_transaction(s);
		}
		return;
	}
	if (!s->bdat_last) {
		s->cnt_ok[SMTP_BDAT]++;
		session_reply(s, "250 2.0.0 Ok: %llu bytes", (unsigned long long)s->data.size);
		return;
	}
	smtp_bdat_last(&s->data);
	message_end(s);
}

static void cmd_starttls(struct session *s, const struct smtp_command *c)
{
	if (c->arg_len != 0) {
		session_reply(s, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	if (s->tls) {
		session_reply(s, "554 5.5.1 Error: TLS already active");
		return;
	}
	if (!smtpin_tls_ready(s->srv) || s->lmtp) {
		session_reply(s, "502 5.5.1 Error: command not implemented");
		return;
	}
	session_reply(s, "220 2.0.0 Ready to start TLS");
	/* RFC 3207 5: whatever the client sent with STARTTLS is thrown away (STARTTLS injection) */
	struct evbuffer *in = bufferevent_get_input(s->bev);
	evbuffer_drain(in, evbuffer_get_length(in));
	if (session_starttls(s) < 0) {
		session_close(s, "cannot start TLS");
		return;
	}
	s->cnt_ok[SMTP_STARTTLS]++;
	/* RFC 3207 4.2: forget everything learned before TLS */
	s->helo_seen = 0;
	s->esmtp = 0;
	s->helo[0] = 0;
	reset_transaction(s);
}

static int is_nonsmtp(struct session *s, const struct smtp_command *c, const char *line, size_t len)
{
	for (size_t i = 0; i < s->srv->ps_nforbidden; i++)
		if (strcasecmp(c->name, s->srv->ps_forbidden[i]) == 0)
			return 1;
	/* a header line: "Name: value" (a client talking HTTP or mail headers) */
	size_t i = 0;
	while (i < len && (isalnum((unsigned char)line[i]) || line[i] == '-'))
		i++;
	return i > 0 && i < len && line[i] == ':' && c->verb == SMTP_UNKNOWN;
}

static void do_command(struct session *s, const char *line, size_t len)
{
	struct smtp_command c;

	if (smtp_parse_command(line, len, &c) < 0) {
		s->cnt_unknown++;
		session_reply(s, "500 5.5.2 Error: bad syntax");
		return;
	}
	if (s->ps_subject && s->ps_fresh) {
		if (s->srv->ps_nonsmtp && is_nonsmtp(s, &c, line, len)) {
			char text[100];
			log_printable(text, sizeof(text), line, len);
			if (postscreen_fail(s, "NON-SMTP COMMAND", s->srv->ps_nonsmtp_action, text))
				return;
		}
		if (s->srv->ps_bare && s->bare_lf_line) {
			if (postscreen_fail(s, "BARE NEWLINE", s->srv->ps_bare_action, c.name))
				return;
		}
		if (s->srv->ps_pipe && s->pipelined) {
			if (postscreen_fail(s, "COMMAND PIPELINING", s->srv->ps_pipe_action,
					    c.name))
				return;
		}
	}
	mk_strlcpy(s->last_cmd, c.verb == SMTP_UNKNOWN ? "UNKNOWN" : c.name, sizeof(s->last_cmd));
	if (c.verb == SMTP_UNKNOWN)
		s->cnt_unknown++;
	else
		s->cnt_total[c.verb]++;
	switch (c.verb) {
	case SMTP_HELO:
	case SMTP_EHLO:
	case SMTP_LHLO:
		cmd_helo(s, &c);
		break;
	case SMTP_MAIL:
		cmd_mail(s, &c);
		break;
	case SMTP_RCPT:
		cmd_rcpt(s, &c);
		break;
	case SMTP_DATA:
		cmd_data(s, &c);
		break;
	case SMTP_BDAT:
		cmd_bdat(s, &c);
		break;
	case SMTP_RSET:
		reset_transaction(s);
		s->cnt_ok[c.verb]++;
		session_reply(s, "250 2.0.0 Ok");
		break;
	case SMTP_NOOP:
		s->cnt_ok[c.verb]++;
		session_reply(s, "250 2.0.0 Ok");
		break;
	case SMTP_QUIT:
		s->cnt_ok[c.verb]++;
		session_reply(s, "221 2.0.0 Bye");
		session_quit(s);
		break;
	case SMTP_HELP:
		s->cnt_ok[c.verb]++;
		session_reply(s,
			      "214 2.0.0 Commands: %s MAIL RCPT DATA BDAT RSET NOOP QUIT HELP%s%s",
			      s->lmtp ? "LHLO" : "HELO EHLO",
			      smtpin_tls_ready(s->srv) && !s->lmtp ? " STARTTLS" : "",
			      s->srv->sasl ? " AUTH" : "");
		break;
	case SMTP_VRFY:
	case SMTP_EXPN:
		session_reply(s, "502 5.5.1 %s command is disabled", c.name);
		break;
	case SMTP_STARTTLS:
		cmd_starttls(s, &c);
		break;
	case SMTP_AUTH:
		if (s->lmtp) {
			session_reply(s, "502 5.5.1 Error: command not implemented");
			break;
		}
		auth_start(s, c.arg);
		break;
	case SMTP_ETRN:
		session_reply(s, "502 5.5.1 Error: command not implemented");
		break;
	default:
		session_reply(s, "502 5.5.2 Error: command not recognized");
		break;
	}
}

static void on_error_sleep(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)what;
	session_resume(s);
	session_unref(s);
}

static void error_sleep(struct session *s)
{
	struct timeval tv = {1, 0};

	if (s->sleep_ev == NULL &&
	    (s->sleep_ev = evtimer_new(s->srv->base, on_error_sleep, s)) == NULL)
		log_fatal("out of memory (evtimer_new)");
	session_ref(s);
	go_busy(s);
	evtimer_add(s->sleep_ev, &tv);
}

/* Reads what is buffered until it runs out or the session has to wait. */
static void session_input(struct session *s)
{
	session_ref(s);
	while (!s->closed && !s->busy && !s->quitting) {
		struct evbuffer *in = bufferevent_get_input(s->bev);
		size_t avail = evbuffer_get_length(in);

		if (s->errors >= s->srv->hard_errors) {
			session_reply(s, "421 4.7.0 %s Error: too many errors", s->srv->hostname);
			log_info_as("smtpd", "too many errors after %s from %s", s->last_cmd,
				    s->client);
			session_quit(s);
			break;
		}
		if (s->state == SS_GREET) {
			if (avail > 0)
				postscreen_pregreet(s);
			break;
		}
		/* a BDAT chunk that is complete (BDAT 0 LAST, or its bytes came with
		 * the command) is answered now, not when the client sends more */
		if (s->state == SS_BDAT && s->bdat_left == 0) {
			bdat_chunk_end(s);
			continue;
		}
		if (avail == 0)
			break;
		if (s->state == SS_DATA) {
			struct evbuffer_iovec v;
			if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
				break;
			size_t used;
			int r = smtp_data_feed(&s->data, v.iov_base, v.iov_len, &used);
			evbuffer_drain(in, used);
			if (r == 0)
				message_end(s);
			continue;
		}
		if (s->state == SS_BDAT) {
			if (s->bdat_left > 0) {
				struct evbuffer_iovec v;
				if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
					break;
				size_t n =
				    v.iov_len < s->bdat_left ? v.iov_len : (size_t)s->bdat_left;
				smtp_bdat_feed(&s->data, v.iov_base, n);
				evbuffer_drain(in, n);
				s->bdat_left -= n;
			}
			if (s->bdat_left == 0)
				bdat_chunk_end(s);
			continue;
		}
		/* a command line (or an AUTH continuation) */
		size_t eol_len = 0;
		struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
		if (eol.pos < 0) {
			if (avail > s->srv->line_max) {
				session_reply(s, "500 5.5.0 Error: line too long");
				log_info_as("smtpd", "line too long (%zu bytes) from %s", avail,
					    s->client);
				session_quit(s);
			}
			break;
		}
		size_t len = (size_t)eol.pos;
		if (len > s->srv->line_max) {
			evbuffer_drain(in, len + eol_len);
			session_reply(s, "500 5.5.0 Error: line too long");
			continue;
		}
		char *line = xmalloc(len + 1);
		evbuffer_remove(in, line, len);
		evbuffer_drain(in, eol_len);
		s->bare_lf_line = !(len > 0 && line[len - 1] == '\r');
		if (!s->bare_lf_line)
			len--;
		line[len] = 0;
		/* more input already here: sent before our reply to this line */
		if (evbuffer_get_length(in) > 0 && !s->esmtp)
			s->pipelined = 1;
		int errors_before = s->errors;
		if (s->state == SS_AUTH)
			auth_continue(s, line, len);
		else
			do_command(s, line, len);
		/* past smtpd_soft_error_limit, each error costs the client a second */
		if (s->errors > errors_before && s->errors >= s->srv->soft_errors && !s->closed &&
		    !s->busy && !s->quitting)
			error_sleep(s);
		/* DATA content sent before our 354 */
		if (s->state == SS_DATA && evbuffer_get_length(in) > 0)
			s->pipelined = 1;
		free(line);
	}
	session_unref(s);
}

void session_greet_done(struct session *s)
{
	s->state = SS_CMD;
	session_reply(s, "220 %s", s->srv->banner);
	session_input(s);
}

void session_accept(struct listener *lst, int fd, const struct sockaddr *sa, socklen_t salen)
{
	struct server *srv = lst->srv;
	struct session *s = xcalloc(1, sizeof(*s));
	s->gen = lst->srv->gen;
	lst->srv->nalive++;
	struct bufferevent *bev;

	s->srv = srv;
	s->lst = lst;
	s->refs = 1;
	s->t_connect = mk_now();
	s->lmtp = lst->kind == LISTEN_LMTP;
	s->submission = lst->kind == LISTEN_SUBMISSION || lst->kind == LISTEN_SUBMISSIONS;
	buf_init(&s->msg, srv->size_limit + RECEIVED_MAX);
	if (sa->sa_family == AF_UNIX) {
		mk_strlcpy(s->addr, "127.0.0.1", sizeof(s->addr));
		mk_strlcpy(s->port, "0", sizeof(s->port));
		mk_strlcpy(s->name, "localhost", sizeof(s->name));
	} else {
		net_addr_str(sa, salen, s->addr, sizeof(s->addr));
		unsigned port = sa->sa_family == AF_INET
				    ? ntohs(((const struct sockaddr_in *)sa)->sin_port)
				    : ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
		snprintf(s->port, sizeof(s->port), "%u", port);
		mk_strlcpy(s->name, "unknown", sizeof(s->name));
	}
	snprintf(s->client, sizeof(s->client), "%s[%s]", s->name, s->addr);
	snprintf(s->ps_client, sizeof(s->ps_client), "[%s]:%s", s->addr, s->port);
	s->mynetworks = client_in_mynetworks(srv, s->addr);
	/* the client's and the server's limits, before anything is set up for
	 * a client that is refused (limits.c) */
	if (limits_accept(s, fd) < 0) {
		session_free(s);
		return;
	}

	if (lst->kind == LISTEN_SMTPS || lst->kind == LISTEN_SUBMISSIONS) {
		bev = tls_accept_bev(srv, fd);
		s->tls = 1;
	} else {
		bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	if (bev == NULL) {
		log_warn_as("smtpd", "cannot set up a connection from %s", s->client);
		limits_release(s);
		close(fd);
		session_free(s);
		return;
	}
	s->next = srv->sessions;
	if (srv->sessions)
		srv->sessions->prev = s;
	srv->sessions = s;
	srv->nsessions++;
	install_bev(s, bev);
	log_info_as("smtpd", "connect from %s", s->client);
	limits_started(s);
	if (s->lmtp) {
		s->state = SS_CMD;
		session_reply(s, "220 %s LMTP mailkeep", srv->hostname);
		return;
	}
	if (s->submission) {
		/* our own users: no postscreen */
		session_greet_done(s);
		return;
	}
	s->state = SS_GREET;
	postscreen_start(s);
}
