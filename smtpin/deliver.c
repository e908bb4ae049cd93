/* deliver — recipients through the directory, and the message into the store.
 *
 * Both block (an LDAP round trip; store_deliver waits for the durable group
 * commit), so both run on the job pool and answer on the loop thread. "250"
 * is said only after store_deliver returned 0; a full store or disk is
 * "452 4.3.1" (RFC 3463: mail system full), any other store error "451 4.3.0",
 * and, store_deliver being one transaction, nothing was stored. The bytes
 * stored are our Received: header followed by exactly what the client sent;
 * the envelope goes into each recipient's metadata, never into the bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "smtpin/smtpin.h"

struct lookup_job {
	struct session *s;
	void (*done)(struct session *s, int result, const char *user);
	char addr[SMTP_ADDR_MAX + 1];
	int result;
	struct dir_user user;
};

static void lookup_work(void *arg)
{
	struct lookup_job *j = arg;
	struct server *srv = j->s->srv;

	if (srv->dir == NULL) {
		j->result = DIR_TEMPFAIL;
		return;
	}
	j->result = dir_lookup_address(srv->dir, j->addr, &j->user);
	if (j->result == DIR_TEMPFAIL || j->result == DIR_ERROR) {
		char addr[SMTP_ADDR_MAX + 1];
		PRINTABLE(addr, j->addr);
		log_warn_as("smtpd", "recipient lookup of <%s> failed: %s", addr, dir_error());
	}
}

static void lookup_done(void *arg)
{
	struct lookup_job *j = arg;

	j->done(j->s, j->result, j->user.name);
	free(j);
}

void deliver_lookup_rcpt(struct session *s,
			 void (*done)(struct session *s, int result, const char *user))
{
	struct lookup_job *j = xcalloc(1, sizeof(*j));

	j->s = s;
	j->done = done;
	if (strcasecmp(s->cur.addr, "postmaster") == 0)
		snprintf(j->addr, sizeof(j->addr), "postmaster@%s", s->srv->hostname);
	else
		mk_strlcpy(j->addr, s->cur.addr, sizeof(j->addr));
	smtp_lower(j->addr);
	job_submit(s->srv, lookup_work, lookup_done, j);
}

void deliver_received_header(struct session *s)
{
	struct server *srv = s->srv;
	char date[64], helo[256], proto[16];
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	/* the HELO name is the client's word: keep it printable and without parentheses */
	mk_strlcpy(helo, s->helo[0] ? s->helo : s->addr, sizeof(helo));
	for (char *c = helo; *c; c++)
		if (*c == '(' || *c == ')' || *c == ';')
			*c = '?';
	if (s->lmtp)
		mk_strlcpy(proto, "LMTP", sizeof(proto));
	else
		snprintf(proto, sizeof(proto), "%s%s%s", s->esmtp ? "ESMTP" : "SMTP",
			 s->tls ? "S" : "", s->authed ? "A" : "");
	if (submission_received_header(s, date))
		return;
	buf_printf(&s->msg, "Received: from %s (%s [%s])\r\n", helo, s->name, s->addr);
	if (s->tls && srv->tls_received && s->tls_info[0])
		buf_printf(&s->msg, "\t(using %s)\r\n", s->tls_info);
	buf_printf(&s->msg, "\tby %s (mailkeep) with %s id %s", srv->hostname, proto, s->qid);
	if (s->nrcpt == 1) {
		char to[SMTP_ADDR_MAX + 1];
		PRINTABLE(to, s->rcpts[0].addr);
		buf_printf(&s->msg, "\r\n\tfor <%s>", to);
	}
	buf_printf(&s->msg, "; %s\r\n", date);
}

struct deliver_job {
	struct session *s;
	struct store_rcpt *rcpts;
	uint8_t (*retry_keys)[STORE_HASH_LEN];
	char **metas;
	size_t n;
	int rc;
	double t_start;
	uint8_t hash[STORE_HASH_LEN];
};

static void deliver_work(void *arg)
{
	struct deliver_job *j = arg;
	struct session *s = j->s;

	/* LMTP answers per recipient. SMTP has one reply for all of them, so
	 * there it is all or none: a 250 after a partial store would lose the
	 * mail of the recipients that failed, and a 451 would make the client
	 * retry and duplicate it for those that did not. */
	if (s->lmtp)
		j->rc = store_deliver(s->srv->store, s->msg.data, s->msg.len, (int64_t)time(NULL),
				      j->rcpts, j->n, j->hash);
	else
		j->rc = store_deliver_atomic(s->srv->store, s->msg.data, s->msg.len,
					     (int64_t)time(NULL), j->rcpts, j->n, j->hash);
}

/* The reply code and enhanced status for a store error: 452 4.3.1 for a full
 * store (the sender keeps the mail and retries; Postfix says the same when its
 * queue file system is full), 451 4.3.0 for anything else. */
static const char *store_reply_code(int err, const char **dsn_r)
{
	if (err == STORE_EFULL) {
		*dsn_r = "4.3.1";
		return "452";
	}
	*dsn_r = "4.3.0";
	return "451";
}

static void deliver_done(void *arg)
{
	struct deliver_job *j = arg;
	struct session *s = j->s;
	double delay = mk_now() - s->t_data;
	size_t ok = 0;
	char from[SMTP_ADDR_MAX + 1];

	PRINTABLE(from, s->from.addr);
	log_info_as("qmgr", "%s: from=<%s>, size=%zu, nrcpt=%zu (queue active)", s->qid, from,
		    s->msg.len, j->n);
	for (size_t i = 0; i < j->n; i++) {
		char to[SMTP_ADDR_MAX + 1];
		int r = j->rc != 0 ? j->rc : j->rcpts[i].result;
		PRINTABLE(to, s->rcpts[i].addr);
		if (r == 0 && j->rcpts[i].duplicate) {
			ok++;
			log_info_as(
			    "local",
			    "%s: to=<%s>, relay=local, delay=%.2f, dsn=2.0.0, status=sent "
			    "(a retry of the message stored %llds ago for %s: not stored again)",
			    s->qid, to, delay, (long long)j->rcpts[i].age, j->rcpts[i].user);
		} else if (r == 0) {
			ok++;
			log_info_as("local",
				    "%s: to=<%s>, relay=local, delay=%.2f, dsn=2.0.0, status=sent "
				    "(delivered to %s mailbox of %s)",
				    s->qid, to, delay, j->rcpts[i].special_use ? "Junk" : "INBOX",
				    j->rcpts[i].user);
		} else {
			const char *dsn;
			store_reply_code(r, &dsn);
			log_warn_as("local",
				    "%s: to=<%s>, relay=local, delay=%.2f, dsn=%s, status=deferred "
				    "(store: %s)",
				    s->qid, to, delay, dsn, store_strerror(r));
		}
		if (s->lmtp && !s->closed) {
			const char *dsn, *code = store_reply_code(r, &dsn);
			if (r == 0)
				session_reply(s, "250 2.0.0 <%s> Ok: queued as %s", to, s->qid);
			else if (r == STORE_EFULL)
				session_reply(s,
					      "%s %s <%s> Error: insufficient system storage (%s)",
					      code, dsn, to, store_strerror(r));
			else
				session_reply(s,
					      "%s %s <%s> Error: could not store the message (%s)",
					      code, dsn, to, store_strerror(r));
		}
	}
	if (!s->lmtp && !s->closed) {
		if (ok > 0) {
			s->cnt_ok[s->in_bdat ? SMTP_BDAT : SMTP_DATA]++;
			session_reply(s, "250 2.0.0 Ok: queued as %s", s->qid);
		} else {
			int r = j->rc != 0 ? j->rc : j->rcpts[0].result;
			const char *dsn, *code = store_reply_code(r, &dsn);
			if (r == STORE_EFULL)
				session_reply(s, "%s %s Error: insufficient system storage (%s)",
					      code, dsn, store_strerror(r));
			else
				session_reply(s, "%s %s Error: could not store the message (%s)",
					      code, dsn, store_strerror(r));
		}
	} else if (s->lmtp && ok > 0) {
		s->cnt_ok[s->in_bdat ? SMTP_BDAT : SMTP_DATA]++;
	}
	if (ok > 0)
		log_info_as("qmgr", "%s: removed", s->qid);
	for (size_t i = 0; i < j->n; i++)
		free(j->metas[i]);
	free(j->metas);
	free(j->rcpts);
	free(j->retry_keys);
	free(j);
	/* a new transaction may follow on the same connection */
	s->mail_seen = 0;
	s->nrcpt = 0;
	s->in_bdat = 0;
	s->qid[0] = 0;
	buf_reset(&s->msg);
	session_resume(s);
	session_unref(s);
}

char *deliver_meta(struct session *s, const char *to)
{
	struct buf m;

	buf_init(&m, STORE_META_MAX - 1);
	if (buf_printf(&m, "from=<%s>\nto=<%s>\nclient=%s\nhelo=%s\nqueue_id=%s\nproto=%s\n",
		       s->from.addr, to, s->client, s->helo, s->qid,
		       s->lmtp ? "LMTP" : "ESMTP") < 0) {
		buf_reset(&m);
		buf_printf(&m, "to=<%s>\nqueue_id=%s\n", to, s->qid);
	}
	if (s->authed)
		buf_printf(&m, "sasl_username=%s\n", s->sasl_user);
	if (s->authres_meta[0])
		buf_append_str(&m, s->authres_meta);
	return m.data ? m.data : xstrdup("");
}

void deliver_message(struct session *s)
{
	struct deliver_job *j;

	/* remote recipients (or a copy to Sent): the queue's one write */
	if (submission_needs_queue(s)) {
		submission_deliver(s);
		return;
	}
	j = xcalloc(1, sizeof(*j));

	j->s = s;
	j->n = s->nrcpt;
	j->rcpts = xcalloc(j->n, sizeof(*j->rcpts));
	j->metas = xcalloc(j->n, sizeof(*j->metas));
	j->retry_keys = xcalloc(j->n, sizeof(*j->retry_keys));
	for (size_t i = 0; i < j->n; i++) {
		j->metas[i] = deliver_meta(s, s->rcpts[i].addr);
		j->rcpts[i].user = s->rcpts[i].user;
		j->rcpts[i].mailbox = s->authres_junk ? "Junk" : NULL; /* DMARC quarantine, enforced */
		j->rcpts[i].meta = j->metas[i];
		/* a retry of a message already stored (the client saw no 250) is
		 * answered 250 without a second copy (retrykey.c, index/retry.h) */
		if (s->srv->retry_window > 0 &&
		    smtpin_retry_key(s, s->rcpts[i].addr, s->rcpts[i].user, j->retry_keys[i]) ==
			0) {
			j->rcpts[i].retry_key = j->retry_keys[i];
			j->rcpts[i].retry_window = s->srv->retry_window;
		}
	}
	job_submit(s->srv, deliver_work, deliver_done, j);
}
