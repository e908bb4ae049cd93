/* submission — mail from our own users (RFC 6409): the listeners on 587
 * (STARTTLS) and 465 (implicit TLS), and what an authenticated session may do
 * on any listener.
 *
 *   - AUTH only under TLS (whatever smtpd_tls_auth_only says), MAIL only
 *     after AUTH (530 5.7.0), no postscreen and no MX restrictions: the
 *     password is the test;
 *   - the envelope sender must be an address of the authenticated user, one
 *     of their aliases included (Postfix's smtpd_sender_login_maps with
 *     reject_sender_login_mismatch, answered by the user directory);
 *   - per-user rate limits on messages and recipients;
 *   - remote recipients are queued (index/queue.h) in the same durable write
 *     that stores the local ones; the Received: header names neither the
 *     client's address nor its HELO (a phone's private address) unless
 *     submission_received_client = yes;
 *   - no copy in the sender's Sent mailbox unless submission_copy_to_sent
 *     (clients append it over IMAP themselves).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "index/queue.h"
#include "index/quota.h"
#include "lib/dkim.h"
#include "lib/array.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "smtpin/smtpin.h"

/* --- rate limits: a fixed window per user, kept in memory ------------------- */

struct user_rate {
	char user[DIR_NAME_MAX];
	int64_t window; /* start of the current window */
	uint32_t msgs, rcpts;
};

#define RATE_TABLE_MAX 4096

static struct user_rate *rate_get(struct server *srv, const char *user)
{
	int64_t now = (int64_t)time(NULL), unit = (int64_t)srv->p.smtpd_user_rate_time_unit;
	struct user_rate *free_slot = NULL;

	for (size_t i = 0; i < srv->nrates; i++) {
		struct user_rate *r = &srv->rates[i];
		if (now - r->window >= unit) {
			if (free_slot == NULL)
				free_slot = r;
			if (strcmp(r->user, user) != 0)
				continue;
		}
		if (strcmp(r->user, user) == 0) {
			if (now - r->window >= unit) {
				r->window = now;
				r->msgs = r->rcpts = 0;
			}
			return r;
		}
	}
	if (free_slot == NULL) {
		if (srv->nrates >= RATE_TABLE_MAX)
			return NULL; /* more users than that in one window: no limit for the rest */
		free_slot = ARRAY_PUSH(srv->rates, srv->nrates, srv->rcap);
	}
	memset(free_slot, 0, sizeof(*free_slot));
	mk_strlcpy(free_slot->user, user, sizeof(free_slot->user));
	free_slot->window = now;
	return free_slot;
}

/* 0 if the user may send one more message / recipient now; else a reply. */
static int rate_check(struct session *s, int rcpt, char *reply, size_t size)
{
	struct server *srv = s->srv;
	int64_t limit =
	    rcpt ? srv->p.smtpd_user_recipient_rate_limit : srv->p.smtpd_user_message_rate_limit;
	struct user_rate *r;

	if (limit <= 0 || (r = rate_get(srv, s->sasl_user)) == NULL)
		return 0;
	uint32_t *count = rcpt ? &r->rcpts : &r->msgs;
	if (*count >= (uint64_t)limit) {
		snprintf(reply, size, "450 4.7.1 Error: too many %s from %s, try again later",
			 rcpt ? "recipients" : "messages", s->sasl_user);
		log_warn_as("smtpd",
			    "%s: %s rate limit %lld per %llds reached for sasl_username=%s",
			    s->client, rcpt ? "recipient" : "message", (long long)limit,
			    (long long)srv->p.smtpd_user_rate_time_unit, s->sasl_user);
		return -1;
	}
	(*count)++;
	return 0;
}

/* --- the sender -------------------------------------------------------------- */

struct sender_job {
	struct session *s;
	void (*done)(struct session *s, const char *reply);
	char addr[SMTP_ADDR_MAX + 1];
	int result;
	struct dir_user user;
};

static void sender_work(void *arg)
{
	struct sender_job *j = arg;

	j->result = dir_lookup_address(j->s->srv->dir, j->addr, &j->user);
}

static void sender_done(void *arg)
{
	struct sender_job *j = arg;
	struct session *s = j->s;
	char reply[1200], from[SMTP_ADDR_MAX + 1];

	reply[0] = 0;
	PRINTABLE(from, j->addr);
	if (j->result == DIR_TEMPFAIL || j->result == DIR_ERROR)
		snprintf(reply, sizeof(reply), "451 4.3.0 <%s>: Sender address lookup failed",
			 from);
	else if (j->result != DIR_OK || strcmp(j->user.name, s->sasl_user) != 0)
		snprintf(reply, sizeof(reply),
			 "553 5.7.1 <%s>: Sender address rejected: not owned by user %s", from,
			 s->sasl_user);
	j->done(s, reply[0] ? reply : NULL);
	free(j);
}

void submission_check_sender(struct session *s, void (*done)(struct session *s, const char *reply))
{
	char reply[512];

	if (rate_check(s, 0, reply, sizeof(reply)) < 0) {
		done(s, reply);
		return;
	}
	/* the null sender (a DSN or MDN a client sends) owns no address */
	if (s->from.addr[0] == 0 || !s->srv->p.smtpd_sender_login_check) {
		done(s, NULL);
		return;
	}
	struct sender_job *j = xcalloc(1, sizeof(*j));
	j->s = s;
	j->done = done;
	mk_strlcpy(j->addr, s->from.addr, sizeof(j->addr));
	smtp_lower(j->addr);
	job_submit(s->srv, sender_work, sender_done, j);
}

/* --- recipients ---------------------------------------------------------------- */

void session_add_remote_rcpt(struct session *s)
{
	for (size_t i = 0; i < s->nrcpt; i++)
		if (s->rcpts[i].remote && strcasecmp(s->rcpts[i].addr, s->cur.addr) == 0)
			return; /* twice the same: once */
	ARRAY_RESERVE(s->rcpts, s->rcap, s->nrcpt + 1);
	struct rcpt *r = &s->rcpts[s->nrcpt++];
	memset(r, 0, sizeof(*r));
	mk_strlcpy(r->addr, s->cur.addr, sizeof(r->addr));
	r->remote = 1;
	if (s->nrcpt == 1 && s->authed)
		log_info_as("smtpd", "%s: client=%s, sasl_method=%s, sasl_username=%s", s->qid,
			    s->client, s->sasl_method, s->sasl_user);
	else if (s->nrcpt == 1)
		log_info_as("smtpd", "%s: client=%s", s->qid, s->client);
}

int submission_remote_rcpt(struct session *s, char *reply, size_t size)
{
	if (rate_check(s, 1, reply, size) < 0)
		return -1;
	session_add_remote_rcpt(s);
	return 0;
}

int submission_needs_queue(const struct session *s)
{
	if (s->authed && s->srv->p.submission_copy_to_sent)
		return 1;
	for (size_t i = 0; i < s->nrcpt; i++)
		if (s->rcpts[i].remote)
			return 1;
	return 0;
}

/* The Received: header of an authenticated session: "by" and "with" only,
 * unless submission_received_client asks for the "from" clause too. */
int submission_received_header(struct session *s, const char *date)
{
	if (!s->authed || s->srv->p.submission_received_client)
		return 0;
	buf_printf(&s->msg, "Received: by %s (mailkeep) with ESMTPSA id %s", s->srv->hostname,
		   s->qid);
	if (s->nrcpt == 1) {
		char to[SMTP_ADDR_MAX + 1];
		PRINTABLE(to, s->rcpts[0].addr);
		buf_printf(&s->msg, "\r\n\tfor <%s>", to);
	}
	buf_printf(&s->msg, "; %s\r\n", date);
	return 1;
}

/* --- delivery through the queue ---------------------------------------------------- */

struct submit_job {
	struct session *s;
	struct store_rcpt *local;
	const char **local_addr;
	char **metas;
	size_t nlocal;
	const char **remote;
	size_t nremote;
	int rc;
	char qid[QUEUE_ID_MAX];
	char *dkim; /* DKIM-Signature fields to put in front */
	size_t dkim_len;
};

/* What an authenticated user sends is signed with the keys of its From:
 * domain (lib/dkim.h) before it is stored; a key that cannot be used is
 * logged and the mail goes unsigned (as OpenDKIM's milter lets it pass). */
static void dkim_sign_job(struct submit_job *j)
{
	struct session *s = j->s;
	struct server *srv = s->srv;
	char domain[256], err[512];

	if (!s->authed || !srv->common.dkim_sign ||
	    dkim_from_domain(s->msg.data, s->msg.len, domain, sizeof(domain)) < 0)
		return;
	if (dkim_sign_message(srv->common.dkim_key_directory, domain, s->msg.data, s->msg.len,
			      &j->dkim, &j->dkim_len, err, sizeof(err)) < 0) {
		log_warn_as("smtpd", "%s: DKIM signing failed: %s", s->qid, err);
		return;
	}
	if (j->dkim_len > 0)
		log_info_as("smtpd", "%s: DKIM-Signature field added (d=%s)", s->qid, domain);
}

static void submit_work(void *arg)
{
	struct submit_job *j = arg;
	struct session *s = j->s;
	struct buf signed_msg = {0};

	dkim_sign_job(j);
	if (j->dkim_len > 0) {
		buf_init(&signed_msg, j->dkim_len + s->msg.len);
		buf_append(&signed_msg, j->dkim, j->dkim_len);
		buf_append(&signed_msg, s->msg.data, s->msg.len);
	}
	struct queue_submission sub = {
	    .data = j->dkim_len > 0 ? signed_msg.data : s->msg.data,
	    .len = j->dkim_len > 0 ? signed_msg.len : s->msg.len,
	    .from = s->from.addr,
	    .qid = s->qid,
	    .local = j->local,
	    .nlocal = j->nlocal,
	    .remote = j->remote,
	    .nremote = j->nremote,
	    .info = {.client = s->client, .sasl_user = s->authed ? s->sasl_user : NULL},
	};

	j->rc = queue_submit(s->srv->store, &sub, j->qid, NULL);
	buf_free(&signed_msg);
}

static void submit_done(void *arg)
{
	struct submit_job *j = arg;
	struct session *s = j->s;
	char from[SMTP_ADDR_MAX + 1];

	PRINTABLE(from, s->from.addr);
	if (j->rc == 0) {
		for (size_t i = 0; i < j->nlocal; i++) {
			char to[SMTP_ADDR_MAX + 1];
			PRINTABLE(to, j->local_addr[i]);
			j->local_addr[i] = to;
			log_info_as("local",
				    "%s: to=<%s>, relay=local, delay=%.2f, dsn=2.0.0, status=sent "
				    "(delivered to %s mailbox of %s)",
				    s->qid, j->local_addr[i], mk_now() - s->t_data,
				    j->local[i].mailbox	      ? j->local[i].mailbox
				    : j->local[i].special_use ? "Junk"
							      : "INBOX",
				    j->local[i].user);
		}
		if (j->nremote > 0)
			log_info_as("qmgr", "%s: from=<%s>, size=%zu, nrcpt=%zu (queued as %s)",
				    s->qid, from, s->msg.len, j->nremote, j->qid);
		if (!s->closed) {
			s->cnt_ok[s->in_bdat ? SMTP_BDAT : SMTP_DATA]++;
			session_reply(s, "250 2.0.0 Ok: queued as %s", j->qid[0] ? j->qid : s->qid);
		}
	} else {
		int full = j->rc == STORE_EFULL;
		log_warn_as("smtpd", "%s: from=<%s>: not queued (store: %s)", s->qid, from,
			    store_strerror(j->rc));
		if (s->closed)
			;
		else if (j->rc == STORE_EQUOTA) /* a local recipient (or the Sent copy) */
			session_reply(s, "%s Mailbox full: a recipient is over quota",
				      quota_tempfail() ? "452 4.2.2" : "552 5.2.2");
		else
			session_reply(s, "%s Error: %s (%s)", full ? "452 4.3.1" : "451 4.3.0",
				      full ? "insufficient system storage"
					   : "could not queue the message",
				      store_strerror(j->rc));
	}
	for (size_t i = 0; i < j->nlocal; i++)
		free(j->metas[i]);
	free(j->metas);
	free(j->local);
	free(j->local_addr);
	free(j->remote);
	free(j->dkim);
	free(j);
	s->mail_seen = 0;
	s->nrcpt = 0;
	s->in_bdat = 0;
	s->qid[0] = 0;
	buf_reset(&s->msg);
	session_resume(s);
	session_unref(s);
}

void submission_deliver(struct session *s)
{
	struct submit_job *j = xcalloc(1, sizeof(*j));
	size_t extra = s->authed && s->srv->p.submission_copy_to_sent ? 1 : 0;

	j->s = s;
	j->local = xcalloc(s->nrcpt + extra, sizeof(*j->local));
	j->metas = xcalloc(s->nrcpt + extra, sizeof(*j->metas));
	j->local_addr = xcalloc(s->nrcpt + extra, sizeof(*j->local_addr));
	j->remote = xcalloc(s->nrcpt, sizeof(*j->remote));
	for (size_t i = 0; i < s->nrcpt; i++) {
		if (s->rcpts[i].remote) {
			j->remote[j->nremote++] = s->rcpts[i].addr;
			continue;
		}
		struct store_rcpt *r = &j->local[j->nlocal];
		j->local_addr[j->nlocal] = s->rcpts[i].addr;
		j->metas[j->nlocal] = deliver_meta(s, s->rcpts[i].addr);
		r->user = s->rcpts[i].user;
		r->meta = j->metas[j->nlocal];
		j->nlocal++;
	}
	if (extra) {
		/* the sender's own copy: in Sent, already read */
		struct store_rcpt *r = &j->local[j->nlocal];
		j->local_addr[j->nlocal] = s->from.addr;
		j->metas[j->nlocal] = deliver_meta(s, s->from.addr);
		r->user = s->sasl_user;
		r->mailbox = "Sent";
		r->flags = STORE_F_SEEN;
		r->meta = j->metas[j->nlocal];
		j->nlocal++;
	}
	job_submit(s->srv, submit_work, submit_done, j);
}
