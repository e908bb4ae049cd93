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

#include "index/quota.h"
#include "index/sieve_deliver.h"
#include "lib/array.h"
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
	/* over quota already (or with the SIZE= announced): refused now, for this
	 * recipient alone, as Dovecot's LMTP does (lmtp_rcpt_check_quota) */
	if (j->result == DIR_OK && srv->store != NULL &&
	    quota_check(srv->store, j->user.name, j->s->from.has_size ? j->s->from.size : 0) ==
		STORE_EQUOTA)
		j->result = DELIVER_OVERQUOTA;
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
	/* Sieve (index/sieve_deliver.h): a plan per recipient, and the store's
	 * recipients made from them: one per mailbox the message goes to */
	struct sieve_plan *plans;
	struct store_rcpt *targets;
	size_t *owner; /* the recipient each target belongs to */
	size_t ntargets, cap;
	int all_rejected; /* SMTP: every recipient's script rejected: one 550 */
};

/* Each recipient's scripts, after the spam verdict: where its copy goes. */
static void deliver_plan(struct deliver_job *j)
{
	struct session *s = j->s;
	struct store *store = s->srv->store;
	size_t nrej = 0;

	j->plans = xcalloc(j->n, sizeof(*j->plans));
	for (size_t i = 0; i < j->n; i++) {
		store_classify(store, &j->rcpts[i], s->msg.data, s->msg.len);
		sieve_plan(store, &j->rcpts[i], s->msg.data, s->msg.len, s->from.addr,
			   s->rcpts[i].addr, s->qid, &j->plans[i]);
		nrej += j->plans[i].reject != 0;
	}
	/* SMTP has one reply after DATA: a rejection is said only when every
	 * recipient rejects; otherwise the rejecting ones keep the message */
	if (!s->lmtp && nrej > 0 && nrej < j->n)
		for (size_t i = 0; i < j->n; i++)
			sieve_plan_keep(&j->plans[i]);
	j->all_rejected = !s->lmtp && nrej == j->n;
	for (size_t i = 0; i < j->n; i++) {
		const struct sieve_plan *p = &j->plans[i];
		for (size_t t = 0; t < p->ntargets && !p->reject; t++) {
			ARRAY_RESERVE(j->owner, j->cap, j->ntargets + 1);
			j->targets = xreallocarray(j->targets, j->cap, sizeof(*j->targets));
			struct store_rcpt *r = &j->targets[j->ntargets];
			j->owner[j->ntargets++] = i;
			*r = j->rcpts[i];
			/* the implicit keep ("") goes where delivery would have put
			 * it: Junk for an enforced DMARC quarantine, else INBOX or
			 * the spam filter's choice */
			if (p->targets[t].mailbox[0])
				r->mailbox = p->targets[t].mailbox;
			r->flags = p->targets[t].flags;
			r->keywords = p->targets[t].keywords[0] ? p->targets[t].keywords : NULL;
			r->create = p->targets[t].create;
			r->no_quota = 0;
		}
	}
}

/* Stores the targets (again: only those that failed, for LMTP). */
static int deliver_targets(struct deliver_job *j, int again)
{
	struct session *s = j->s;
	if (j->ntargets == 0)
		return 0;
	if (!s->lmtp)
		return store_deliver_atomic(s->srv->store, s->msg.data, s->msg.len,
					    (int64_t)time(NULL), j->targets, j->ntargets, j->hash);
	if (!again)
		return store_deliver(s->srv->store, s->msg.data, s->msg.len, (int64_t)time(NULL),
				     j->targets, j->ntargets, j->hash);
	/* LMTP: what was stored stays; the failed copies are stored now */
	struct store_rcpt *redo = xcalloc(j->ntargets, sizeof(*redo));
	size_t *at = xcalloc(j->ntargets, sizeof(*at)), n = 0;
	for (size_t t = 0; t < j->ntargets; t++)
		if (j->targets[t].result != 0) {
			at[n] = t;
			redo[n++] = j->targets[t];
		}
	int rc = n ? store_deliver(s->srv->store, s->msg.data, s->msg.len, (int64_t)time(NULL),
				   redo, n, j->hash)
		   : 0;
	for (size_t k = 0; k < n; k++)
		j->targets[at[k]] = redo[k];
	free(redo);
	free(at);
	return rc == STORE_ENOTFOUND ? 0 : rc;
}

/* After a failed delivery: the copies into a named mailbox that failed
 * for the mailbox's sake go to INBOX. 1 if there is something to try again. */
static int deliver_fallback(struct deliver_job *j)
{
	int again = 0;
	for (size_t t = 0; t < j->ntargets; t++) {
		struct store_rcpt *r = &j->targets[t];
		int tr = r->result;
		if (r->mailbox == NULL || strcmp(r->mailbox, "INBOX") == 0 ||
		    (tr != STORE_EINVAL && tr != STORE_ENOTFOUND && tr != STORE_EEXIST))
			continue;
		/* SMTP: all or none, so a failure anywhere failed every copy; only
		 * mailboxes that do not exist could be the cause */
		char who[STORE_NAME_MAX + 1];
		log_printable(who, sizeof(who), r->mailbox, strlen(r->mailbox));
		log_warn_as(
		    "local",
		    "%s: to user %s: mailbox %s cannot take the message (%s): INBOX instead",
		    j->s->qid, r->user, who, store_strerror(tr));
		r->mailbox = "INBOX";
		r->create = 0;
		again = 1;
	}
	return again;
}

static void deliver_work(void *arg)
{
	struct deliver_job *j = arg;
	struct session *s = j->s;

	deliver_plan(j);
	/* LMTP answers per recipient. SMTP has one reply for all of them, so
	 * there it is all or none: a 250 after a partial store would lose the
	 * mail of the recipients that failed, and a 451 would make the client
	 * retry and duplicate it for those that did not. */
	j->rc = deliver_targets(j, 0);
	/* A mailbox a script named that cannot be made (or vanished meanwhile)
	 * must not keep the message out (the sender would retry it for days):
	 * those copies go to INBOX instead, once. */
	if (deliver_fallback(j))
		j->rc = deliver_targets(j, 1);
	/* a recipient's result: its first target that failed, else 0 (a
	 * discarded or rejected copy stores nothing and fails nothing) */
	for (size_t i = 0; i < j->n; i++) {
		j->rcpts[i].result = 0;
		j->rcpts[i].duplicate = 0;
	}
	/* a retry (index/retry.h): every copy was stored before */
	size_t *dups = xcalloc(j->n, sizeof(*dups)), *copies = xcalloc(j->n, sizeof(*copies));
	for (size_t t = 0; t < j->ntargets; t++) {
		struct store_rcpt *r = &j->rcpts[j->owner[t]];
		int tr = j->rc != 0 ? j->rc : j->targets[t].result;
		if (r->result == 0)
			r->result = tr;
		copies[j->owner[t]]++;
		if (j->targets[t].duplicate) {
			dups[j->owner[t]]++;
			r->age = j->targets[t].age;
		}
	}
	for (size_t i = 0; i < j->n; i++)
		j->rcpts[i].duplicate = copies[i] > 0 && dups[i] == copies[i];
	free(dups);
	free(copies);
	if (j->rc == 0)
		for (size_t i = 0; i < j->n; i++)
			if (j->rcpts[i].result == 0 && !j->rcpts[i].duplicate) {
				int frc = sieve_finish(s->srv->store, &j->plans[i]);
				/* a redirect that could not be queued: not a 250 (the
				 * copy may be nowhere else); the client tries again.
				 * SMTP has one reply for all: a 4xx for all (the stored
				 * copies are retries then, index/retry.h) */
				if (frc != 0 && j->plans[i].nredirect > 0) {
					j->rcpts[i].result = frc;
					if (!s->lmtp)
						j->rc = frc;
				}
			}
}

/* Where a recipient's copy went, for the log line. */
static void where_to(const struct deliver_job *j, size_t i, char *out, size_t size)
{
	out[0] = '\0';
	for (size_t t = 0; t < j->ntargets; t++) {
		if (j->owner[t] != i)
			continue;
		const struct store_rcpt *r = &j->targets[t];
		size_t o = strlen(out);
		char name[200];
		const char *m = r->mailbox ? r->mailbox : r->special_use ? "Junk" : "INBOX";
		log_printable(name, sizeof(name), m, strlen(m));
		snprintf(out + o, size - o, "%s%s", o ? ", " : "", name);
	}
	if (out[0] == '\0')
		snprintf(out, size, "no mailbox (discarded by Sieve)");
}

/* The reply code and enhanced status for a store error: 452 4.3.1 for a full
 * store (the sender keeps the mail and retries; Postfix says the same when its
 * queue file system is full), 451 4.3.0 for anything else. */
static const char *store_reply_code(int err, const char **dsn_r)
{
	if (err == STORE_EQUOTA) { /* RFC 3463: mailbox full */
		*dsn_r = quota_tempfail() ? "4.2.2" : "5.2.2";
		return quota_tempfail() ? "452" : "552";
	}
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
		const struct sieve_plan *plan = &j->plans[i];
		if (r == 0 && plan->reject) {
			log_info_as(
			    "local",
			    "%s: to=<%s>, relay=local, delay=%.2f, dsn=5.7.1, status=bounced "
			    "(rejected by the recipient's Sieve script: %s)",
			    s->qid, to, delay, plan->reason);
			if (s->lmtp && !s->closed)
				session_reply(s, "550 5.7.1 <%s> %s", to,
					      plan->reason[0] ? plan->reason : "Rejected");
			continue;
		}
		if (r == 0 && j->rcpts[i].duplicate) {
			ok++;
			log_info_as(
			    "local",
			    "%s: to=<%s>, relay=local, delay=%.2f, dsn=2.0.0, status=sent "
			    "(a retry of the message stored %llds ago for %s: not stored again)",
			    s->qid, to, delay, (long long)j->rcpts[i].age, j->rcpts[i].user);
		} else if (r == 0) {
			char where[600];
			where_to(j, i, where, sizeof(where));
			ok++;
			log_info_as("local",
				    "%s: to=<%s>, relay=local, delay=%.2f, dsn=2.0.0, status=sent "
				    "(delivered to %s mailbox of %s)",
				    s->qid, to, delay, where, j->rcpts[i].user);
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
			else if (r == STORE_EQUOTA)
				session_reply(s, "%s %s <%s> Mailbox full: over quota", code, dsn,
					      to);
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
	if (!s->lmtp && !s->closed && j->all_rejected) {
		session_reply(s, "550 5.7.1 %s",
			      j->plans[0].reason[0] ? j->plans[0].reason : "Rejected");
	} else if (!s->lmtp && !s->closed) {
		if (ok > 0) {
			s->cnt_ok[s->in_bdat ? SMTP_BDAT : SMTP_DATA]++;
			session_reply(s, "250 2.0.0 Ok: queued as %s", s->qid);
		} else {
			int r = j->rc != 0 ? j->rc : j->rcpts[0].result;
			const char *dsn, *code = store_reply_code(r, &dsn);
			if (r == STORE_EQUOTA)
				session_reply(s, "%s %s Mailbox full: a recipient is over quota",
					      code, dsn);
			else if (r == STORE_EFULL)
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
	for (size_t i = 0; i < j->n; i++) {
		free(j->metas[i]);
		sieve_plan_free(&j->plans[i]);
	}
	free(j->plans);
	free(j->targets);
	free(j->owner);
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
		j->rcpts[i].mailbox =
		    s->authres_junk ? "Junk" : NULL; /* DMARC quarantine, enforced */
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
