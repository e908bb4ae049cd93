/* commit — every store write of mailkeep-smtpout, on one thread of its own:
 * the results of delivery attempts, local deliveries (a bounce to one of our
 * users), and finishing a message once its last task is over:
 *
 *   - recipients that failed for good get one notification (RFC 3464,
 *     index/queue_dsn.c) queued to the sender in the same write (never to the
 *     null sender: then it is only logged);
 *   - past maximal_queue_lifetime (bounce_queue_lifetime for our own
 *     notifications) the rest fail too: "status=expired, returned to sender";
 *   - past delay_warning_time, once, the sender is told it is late;
 *   - the next try is minimal_backoff_time doubled per attempt, at most
 *     maximal_backoff_time; a message with nobody left is removed.
 *
 * Jobs queue up while a write is on its way and the next write takes them
 * all: one fsync for many results, as the store's group commit does for
 * smtpin's sessions; a batch of results alone is a relaxed commit (one flush;
 * see committer_main). A remote "250" is recorded in the first write after
 * it; a crash between the two sends that message again (the duplicate window
 * every MTA has; doc/sending.md). Log lines that depend on the write are
 * printed once it is durable.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "smtpout/smtpout.h"

struct centry {
	uint32_t idx;
	int result; /* enum queue_result */
	char addr[QUEUE_ADDR_MAX];
	char dsn[16];
	char why[QUEUE_WHY_MAX];
	char relay[300];
	char user[DIR_NAME_MAX]; /* local: the user looked up */
};

enum cjob_kind { J_RESULTS, J_LOCAL };

struct cjob {
	enum cjob_kind kind;
	struct qmsg *m; /* the loop's; only qmgr_message_finished touches it */
	char qid[QUEUE_ID_MAX];
	struct centry *e;
	size_t n;
	int finish;
	double t_active;
	int64_t arrival;
	char from[QUEUE_ADDR_MAX];
	struct buf logs; /* lines to print once the write is durable */
	struct cjob *next;
};

struct committer {
	struct server *srv;
	pthread_t th;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct cjob *todo, **todo_tail;
	struct cjob *done, **done_tail;
	struct event *wake;
	int stop, busy;
	size_t ntodo;
};

#define COMMIT_GATHER_MS 50
#define COMMIT_GATHER_JOBS 64

static void submit(struct server *srv, struct cjob *j)
{
	struct committer *c = srv->commit;

	pthread_mutex_lock(&c->lock);
	j->next = NULL;
	*c->todo_tail = j;
	c->todo_tail = &j->next;
	c->ntodo++;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static struct cjob *new_job(enum cjob_kind kind, struct qmsg *m, size_t n, int finish)
{
	struct cjob *j = xcalloc(1, sizeof(*j));

	j->kind = kind;
	j->m = m;
	mk_strlcpy(j->qid, m->rec.qid, sizeof(j->qid));
	j->e = xcalloc(n ? n : 1, sizeof(*j->e));
	j->n = n;
	j->finish = finish;
	j->t_active = m->t_active;
	j->arrival = m->rec.arrival;
	mk_strlcpy(j->from, m->rec.from, sizeof(j->from));
	buf_init(&j->logs, 1 << 20);
	return j;
}

void commit_task(struct server *srv, struct task *t, int last)
{
	struct cjob *j = new_job(J_RESULTS, t->m, t->n, last);

	for (size_t i = 0; i < t->n; i++) {
		struct qrcpt *r = t->r[i];
		struct centry *e = &j->e[i];
		e->idx = r->idx;
		e->result = r->result;
		mk_strlcpy(e->addr, r->addr, sizeof(e->addr));
		mk_strlcpy(e->dsn, r->dsn, sizeof(e->dsn));
		mk_strlcpy(e->why, r->why ? r->why : "", sizeof(e->why));
		mk_strlcpy(e->relay, r->relay ? r->relay : "", sizeof(e->relay));
	}
	submit(srv, j);
}

void commit_local(struct server *srv, struct task *t, int last)
{
	struct cjob *j = new_job(J_LOCAL, t->m, t->n, last);

	for (size_t i = 0; i < t->n; i++) {
		j->e[i].idx = t->r[i]->idx;
		mk_strlcpy(j->e[i].addr, t->r[i]->addr, sizeof(j->e[i].addr));
	}
	free(t->r);
	free(t);
	submit(srv, j);
}

void commit_finish(struct server *srv, struct qmsg *m)
{
	submit(srv, new_job(J_RESULTS, m, 0, 1));
}

/* --- inside the write -------------------------------------------------------------- */

struct batch {
	struct server *srv;
	struct cjob *jobs;
	int64_t now;
};

struct rlist {
	struct queue_rcpt *v;
	size_t n, cap;
};

static int collect(const struct queue_rcpt *r, void *ctx)
{
	struct rlist *l = ctx;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	l->v[l->n++] = *r;
	return 0;
}

/* A notification about rcpts of m, queued to m's sender. */
static int notify(struct store_txn *txn, struct server *srv, struct cjob *j,
		  const struct queue_msg *m, const struct queue_rcpt *rc, size_t n, int delayed,
		  int64_t now)
{
	struct queue_dsn_rcpt *dr = xcalloc(n, sizeof(*dr));
	const void *orig;
	size_t olen;
	char *data = NULL, newid[QUEUE_ID_MAX];
	size_t len;
	uint8_t hash[STORE_HASH_LEN];
	int rc2;

	if ((rc2 = store_blob_get(txn, m->hash, &orig, &olen)) != 0) {
		free(dr);
		return rc2;
	}
	for (size_t i = 0; i < n; i++) {
		dr[i].addr = rc[i].addr;
		dr[i].dsn = rc[i].dsn;
		dr[i].why = rc[i].why;
		dr[i].relay = rc[i].relay;
	}
	struct queue_dsn d = {
	    .delayed = delayed,
	    .reporting_mta = srv->common.myhostname,
	    .qid = m->qid,
	    .arrival = m->arrival,
	    .now = now,
	    .retry_until = m->arrival + (int64_t)srv->p.maximal_queue_lifetime,
	    .sender = m->from,
	    .rcpts = dr,
	    .nrcpts = n,
	    .orig = orig,
	    .orig_len = olen,
	    .return_limit = (size_t)srv->p.bounce_size_limit,
	};
	rc2 = queue_dsn_make(&d, &data, &len);
	free(dr);
	if (rc2 != 0)
		return rc2;
	const char *to = m->from;
	struct queue_add_info info = {.client = "local", .kind = delayed ? "delay" : "bounce"};
	if ((rc2 = store_blob_put(txn, data, len, hash)) == 0 &&
	    (rc2 = queue_new_id(txn, newid)) == 0)
		rc2 = queue_add(txn, newid, hash, "", &to, 1, now, &info);
	free(data);
	if (rc2 == 0)
		buf_printf(&j->logs, "bounce|%s: sender %s notification: %s\n", m->qid,
			   delayed ? "delay" : "non-delivery", newid);
	return rc2;
}

static int64_t backoff(struct server *srv, uint32_t tries)
{
	double t = srv->p.minimal_backoff_time;

	for (uint32_t i = 1; i < tries && t < srv->p.maximal_backoff_time; i++)
		t *= 2;
	if (t > srv->p.maximal_backoff_time)
		t = srv->p.maximal_backoff_time;
	return (int64_t)t;
}

/* The message's last task is over: bounces, expiry, delay warning, next try. */
static int finish(struct store_txn *txn, struct server *srv, struct cjob *j, int64_t now)
{
	struct queue_msg m;
	struct rlist l = {0};
	int rc;

	if ((rc = queue_get(txn, j->qid, &m)) != 0)
		return rc == STORE_ENOTFOUND ? 0
					     : rc; /* deleted meanwhile (mailkeep queue delete) */
	if ((rc = queue_rcpt_foreach(txn, j->qid, collect, &l)) != 0)
		goto out;
	int own = m.from[0] == 0;
	double lifetime = own ? srv->p.bounce_queue_lifetime : srv->p.maximal_queue_lifetime;
	int expired = (double)(now - m.arrival) >= lifetime;
	size_t npending = 0;
	for (size_t i = 0; i < l.n; i++) {
		if (l.v[i].state == QUEUE_PENDING && expired) {
			l.v[i].state = QUEUE_BOUNCED;
			if (l.v[i].dsn[0] != '5') {
				/* Postfix keeps the last reason; the status becomes permanent */
				char d[16];
				snprintf(d, sizeof(d), "5%s",
					 l.v[i].dsn[0] ? l.v[i].dsn + 1 : ".4.7");
				mk_strlcpy(l.v[i].dsn, d, sizeof(l.v[i].dsn));
			}
			if (l.v[i].why[0] == 0)
				mk_strlcpy(l.v[i].why, "delivery time expired", sizeof(l.v[i].why));
		}
		if (l.v[i].state == QUEUE_PENDING)
			npending++;
	}
	if (expired && !m.hold)
		buf_printf(&j->logs, "qmgr|%s: from=<%s>, status=expired, %s\n", m.qid, m.from,
			   own ? "discarded" : "returned to sender");
	/* the failed ones: one notification, then they leave the queue */
	size_t nb = 0;
	for (size_t i = 0; i < l.n; i++)
		if (l.v[i].state == QUEUE_BOUNCED)
			l.v[nb++] = l.v[i];
	if (nb > 0 && !own && (rc = notify(txn, srv, j, &m, l.v, nb, 0, now)) != 0)
		goto out;
	for (size_t i = 0; i < nb; i++)
		if ((rc = queue_rcpt_result(txn, m.qid, l.v[i].idx, QUEUE_SENT, NULL, NULL,
					    NULL)) != 0)
			goto out;
	if (npending == 0) {
		rc = queue_delete(txn, m.qid);
		if (rc == 0)
			buf_printf(&j->logs, "qmgr|%s: removed\n", m.qid);
		goto out;
	}
	if (m.hold)
		goto out;
	/* still waiting: a delay warning, once */
	if (!own && !m.warned && srv->p.delay_warning_time > 0 &&
	    (double)(now - m.arrival) >= srv->p.delay_warning_time) {
		struct rlist pend = {0};
		queue_rcpt_foreach(txn, m.qid, collect, &pend);
		rc = notify(txn, srv, j, &m, pend.v, pend.n, 1, now);
		free(pend.v);
		if (rc != 0)
			goto out;
		m.warned = 1;
	}
	m.tries++;
	m.last_try = now;
	m.next_try = now + backoff(srv, m.tries);
	/* never past the end of its life by more than a minute */
	int64_t end = m.arrival + (int64_t)lifetime;
	if (m.next_try > end && end > now)
		m.next_try = end;
	rc = queue_update(txn, &m);
out:
	free(l.v);
	return rc;
}

static int local_meta(char *out, size_t size, const char *from, const char *to, const char *qid)
{
	return snprintf(out, size, "from=<%s>\nto=<%s>\nclient=local\nqueue_id=%s\nproto=local\n",
			from, to, qid);
}

static int apply(struct store_txn *txn, struct server *srv, struct cjob *j, int64_t now)
{
	int rc = 0;

	for (size_t i = 0; i < j->n; i++) {
		struct centry *e = &j->e[i];
		if (j->kind == J_LOCAL && e->result == QUEUE_SENT) {
			char meta[STORE_META_MAX];
			local_meta(meta, sizeof(meta), j->from, e->addr, j->qid);
			rc = queue_deliver_local(txn, j->qid, e->idx, e->user, meta, now);
			if (rc == 0) {
				snprintf(e->why, sizeof(e->why), "delivered to INBOX mailbox of %s",
					 e->user);
				continue;
			}
			if (rc == STORE_EFULL || rc == STORE_EIO)
				return rc;
			if (rc == STORE_ENOTFOUND)
				continue; /* deleted meanwhile */
			e->result = QUEUE_DEFERRED;
			mk_strlcpy(e->dsn, rc == STORE_EQUOTA ? "4.2.2" : "4.3.0", sizeof(e->dsn));
			snprintf(e->why, sizeof(e->why), "cannot store: %s", store_strerror(rc));
		}
		rc = queue_rcpt_result(txn, j->qid, e->idx, (enum queue_result)e->result, e->dsn,
				       e->why, e->relay);
		if (rc == STORE_ENOTFOUND)
			rc = 0; /* deleted meanwhile */
		if (rc != 0)
			return rc;
	}
	if (j->finish)
		rc = finish(txn, srv, j, now);
	return rc;
}

static int batch_fn(struct store_txn *txn, void *ctx)
{
	struct batch *b = ctx;

	for (struct cjob *j = b->jobs; j; j = j->next) {
		buf_reset(&j->logs);
		int rc = apply(txn, b->srv, j, b->now);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Local recipients: the directory says who they are, before the write. */
static void lookup_locals(struct server *srv, struct cjob *j)
{
	for (size_t i = 0; i < j->n; i++) {
		struct centry *e = &j->e[i];
		struct dir_user u;
		char addr[QUEUE_ADDR_MAX];
		mk_strlcpy(addr, e->addr, sizeof(addr));
		for (char *p = addr; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		int r = srv->dir ? dir_lookup_address(srv->dir, addr, &u) : DIR_TEMPFAIL;
		mk_strlcpy(e->relay, "local", sizeof(e->relay));
		if (r == DIR_OK) {
			e->result = QUEUE_SENT;
			mk_strlcpy(e->user, u.name, sizeof(e->user));
			mk_strlcpy(e->dsn, "2.0.0", sizeof(e->dsn));
		} else if (r == DIR_NOTFOUND) {
			e->result = QUEUE_FAILED;
			mk_strlcpy(e->dsn, "5.1.1", sizeof(e->dsn));
			mk_strlcpy(e->why, "unknown user", sizeof(e->why));
		} else {
			e->result = QUEUE_DEFERRED;
			mk_strlcpy(e->dsn, "4.3.0", sizeof(e->dsn));
			snprintf(e->why, sizeof(e->why), "user lookup failed: %s", dir_error());
		}
	}
}

static void *committer_main(void *arg)
{
	struct committer *c = arg;
	struct server *srv = c->srv;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (c->todo == NULL && !c->stop)
			pthread_cond_wait(&c->cond, &c->lock);
		if (c->todo == NULL)
			break;
		/* Gather: a few milliseconds more make one write of many results
		 * (every write holds the store's one writer lock, which smtpin's
		 * submissions wait for); a crowd is written at once. */
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += COMMIT_GATHER_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!c->stop && c->ntodo < COMMIT_GATHER_JOBS &&
		       pthread_cond_timedwait(&c->cond, &c->lock, &until) == 0)
			;
		struct cjob *jobs = c->todo;
		c->ntodo = 0;
		c->todo = NULL;
		c->todo_tail = &c->todo;
		c->busy = 1;
		pthread_mutex_unlock(&c->lock);

		for (struct cjob *j = jobs; j; j = j->next)
			if (j->kind == J_LOCAL)
				lookup_locals(srv, j);
		struct batch b = {srv, jobs, (int64_t)time(NULL)};
		int rc, relaxed = 1;
		/* Results only (no message added to a mailbox): a relaxed commit, one
		 * flush instead of two (index/store.h). A system crash may undo it,
		 * and then the recipients it recorded as sent are sent again: a
		 * duplicate, never a loss. Local deliveries add messages, whose UIDs
		 * must never come back: those batches are fully durable. */
		for (struct cjob *j = jobs; j; j = j->next)
			if (j->kind == J_LOCAL)
				relaxed = 0;
		for (int attempt = 0;; attempt++) {
			rc = relaxed ? store_write_relaxed(srv->store, batch_fn, &b)
				     : store_write(srv->store, batch_fn, &b);
			if (rc == 0 || attempt >= 30 || c->stop)
				break;
			log_warn("cannot record delivery results (%s): trying again",
				 store_strerror(rc));
			sleep(1);
		}
		if (rc != 0) {
			log_warn("delivery results lost (%s): those messages will be sent again",
				 store_strerror(rc));
			for (struct cjob *j = jobs; j; j = j->next)
				buf_reset(&j->logs);
		}

		pthread_mutex_lock(&c->lock);
		c->busy = 0;
		int was_empty = c->done == NULL;
		*c->done_tail = jobs;
		while (*c->done_tail)
			c->done_tail = &(*c->done_tail)->next;
		if (was_empty)
			event_active(c->wake, EV_READ, 0);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* On the loop: the log lines of durable writes, and finished messages. */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct committer *c = arg;
	struct cjob *list;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&c->lock);
	list = c->done;
	c->done = NULL;
	c->done_tail = &c->done;
	pthread_mutex_unlock(&c->lock);
	while (list != NULL) {
		struct cjob *next = list->next;
		if (list->kind == J_LOCAL) {
			double now = mk_now();
			for (size_t i = 0; i < list->n; i++) {
				struct centry *e = &list->e[i];
				char to[QUEUE_ADDR_MAX];
				log_printable(to, sizeof(to), e->addr, strlen(e->addr));
				log_info_as(
				    "local",
				    "%s: to=<%s>, relay=local, delay=%.2g, dsn=%s, status=%s (%s)",
				    list->qid, to, now - (double)list->arrival, e->dsn,
				    e->result == QUEUE_SENT	? "sent"
				    : e->result == QUEUE_FAILED ? "bounced"
								: "deferred",
				    e->why);
			}
		}
		for (char *line = list->logs.data; line && *line;) {
			char *nl = strchr(line, '\n');
			if (nl)
				*nl = 0;
			char *bar = strchr(line, '|');
			if (bar) {
				*bar = 0;
				log_info_as(line, "%s", bar + 1);
			}
			line = nl ? nl + 1 : NULL;
		}
		if (list->finish)
			qmgr_message_finished(c->srv, list->m);
		buf_free(&list->logs);
		free(list->e);
		free(list);
		list = next;
	}
}

int commit_start(struct server *srv, char *err, size_t errsize)
{
	struct committer *c = xcalloc(1, sizeof(*c));

	c->srv = srv;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	c->todo_tail = &c->todo;
	c->done_tail = &c->done;
	c->wake = event_new(srv->base, -1, 0, on_wake, c);
	if (c->wake == NULL)
		log_fatal("out of memory (event_new)");
	if (pthread_create(&c->th, NULL, committer_main, c) != 0) {
		snprintf(err, errsize, "cannot start the committer thread");
		return -1;
	}
	srv->commit = c;
	return 0;
}

int commit_idle(struct server *srv)
{
	struct committer *c = srv->commit;
	int idle;

	pthread_mutex_lock(&c->lock);
	idle = c->todo == NULL && c->done == NULL && !c->busy;
	pthread_mutex_unlock(&c->lock);
	return idle;
}

void commit_stop(struct server *srv)
{
	struct committer *c = srv->commit;

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	c->stop = 1;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->th, NULL);
	on_wake(-1, 0, c);
	event_free(c->wake);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
	srv->commit = NULL;
}
