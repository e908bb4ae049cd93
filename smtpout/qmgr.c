/* qmgr — the queue manager: takes due messages from the queue, splits each
 * message's recipients by destination (the relayhost, a domain's MX, or
 * local delivery), queues one task per message and destination (at most
 * smtp_destination_recipient_limit recipients), opens connections within
 * smtp_destination_concurrency_limit, and logs every recipient's result in
 * Postfix's shape:
 *
 *   QUEUEID: to=<bob@example.com>, relay=mx.example.com[192.0.2.1]:25,
 *     delay=1.2, delays=0.01/0.02/0.5/0.7, dsn=2.0.0, status=sent (250 2.0.0 Ok)
 *
 * delays = before the queue manager / in it / connection setup / transmission.
 * What happens next (the next try, a bounce, removal) is commit.c's, in the
 * same write that records the results.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/log.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "smtpout/smtpout.h"

void qrcpt_set(struct qrcpt *r, int result, const char *dsn, const char *why, const char *relay)
{
	r->result = result;
	mk_strlcpy(r->dsn, dsn ? dsn : "", sizeof(r->dsn));
	free(r->why);
	free(r->relay);
	r->why = xstrdup(why ? why : "");
	r->relay = xstrdup(relay ? relay : "none");
}

static void qmsg_free(struct qmsg *m)
{
	for (size_t i = 0; i < m->nrcpt; i++) {
		free(m->rcpts[i].addr);
		free(m->rcpts[i].why);
		free(m->rcpts[i].relay);
	}
	free(m->rcpts);
	free(m);
}

/* --- the active messages, by queue id ---------------------------------------- */

static size_t qid_hash(const char *qid, size_t cap)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *qid; qid++)
		h = (h ^ (unsigned char)*qid) * 1099511628211ULL;
	return (size_t)(h & (cap - 1));
}

static struct qmsg *active_find(struct server *srv, const char *qid)
{
	if (srv->active_cap == 0)
		return NULL;
	for (struct qmsg *m = srv->active[qid_hash(qid, srv->active_cap)]; m; m = m->hnext)
		if (strcmp(m->rec.qid, qid) == 0)
			return m;
	return NULL;
}

static void active_add(struct server *srv, struct qmsg *m)
{
	if (srv->active_cap == 0) {
		srv->active_cap = 4096;
		srv->active = xcalloc(srv->active_cap, sizeof(*srv->active));
	}
	size_t h = qid_hash(m->rec.qid, srv->active_cap);
	m->hnext = srv->active[h];
	srv->active[h] = m;
	srv->nactive++;
}

static void active_del(struct server *srv, struct qmsg *m)
{
	struct qmsg **pp = &srv->active[qid_hash(m->rec.qid, srv->active_cap)];

	for (; *pp; pp = &(*pp)->hnext)
		if (*pp == m) {
			*pp = m->hnext;
			srv->nactive--;
			return;
		}
}

/* --- settings ---------------------------------------------------------------- */

static int read_password_map(struct server *srv, char *err, size_t errsize)
{
	const char *path = srv->p.smtp_sasl_password_maps;
	char *data = NULL;
	size_t len;

	if (strncmp(path, "texthash:", 9) == 0)
		path += 9;
	if (mk_read_file(path, 65536, &data, &len) < 0) {
		snprintf(err, errsize, "smtp_sasl_password_maps: cannot read %s", path);
		return -1;
	}
	for (char *line = data, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		while (*line == ' ' || *line == '\t')
			line++;
		if (*line == '#' || *line == 0)
			continue;
		char *sp = strpbrk(line, " \t");
		if (sp == NULL)
			continue;
		*sp++ = 0;
		while (*sp == ' ' || *sp == '\t')
			sp++;
		if (strcasecmp(line, srv->p.relayhost) != 0)
			continue;
		char *colon = strchr(sp, ':');
		if (colon == NULL)
			continue;
		*colon = 0;
		size_t pl = strcspn(colon + 1, "\r \t");
		colon[1 + pl] = 0;
		mk_strlcpy(srv->sasl_user, sp, sizeof(srv->sasl_user));
		mk_strlcpy(srv->sasl_pass, colon + 1, sizeof(srv->sasl_pass));
		break;
	}
	explicit_bzero(data, len);
	free(data);
	if (srv->sasl_user[0] == 0)
		log_warn("smtp_sasl_password_maps: no entry for %s in %s: no AUTH",
			 srv->p.relayhost, path);
	return 0;
}

int qmgr_init(struct server *srv, char *err, size_t errsize)
{
	const char *rh = srv->p.relayhost;

	if (rh != NULL && rh[0] != 0) {
		char host[256];
		const char *port = NULL;
		if (rh[0] == '[') {
			const char *end = strchr(rh, ']');
			if (end == NULL || (size_t)(end - rh - 1) >= sizeof(host)) {
				snprintf(err, errsize, "relayhost: bad value \"%s\"", rh);
				return -1;
			}
			memcpy(host, rh + 1, (size_t)(end - rh - 1));
			host[end - rh - 1] = 0;
			srv->relay_mx = 0;
			if (end[1] == ':')
				port = end + 2;
			else if (end[1] != 0) {
				snprintf(err, errsize, "relayhost: bad value \"%s\"", rh);
				return -1;
			}
		} else {
			mk_strlcpy(host, rh, sizeof(host));
			char *colon = strchr(host, ':');
			if (colon != NULL) {
				*colon = 0;
				port = rh + (colon - host) + 1;
			}
			srv->relay_mx = 1;
		}
		uint64_t pn = 25;
		if (port != NULL && mk_parse_u64(port, 1, 65535, &pn) < 0) {
			snprintf(err, errsize, "relayhost: bad port in \"%s\"", rh);
			return -1;
		}
		mk_strlcpy(srv->relay_host, host, sizeof(srv->relay_host));
		srv->relay_port = (int)pn;
		if (srv->p.smtp_sasl_auth_enable && srv->p.smtp_sasl_password_maps[0] &&
		    read_password_map(srv, err, errsize) < 0)
			return -1;
	}
	return 0;
}

/* --- destinations -------------------------------------------------------------- */

static struct dest *dest_get(struct server *srv, const char *domain, int local)
{
	char name[300];

	if (local)
		mk_strlcpy(name, "local", sizeof(name));
	else if (srv->relay_host[0])
		snprintf(name, sizeof(name), "%s", srv->p.relayhost);
	else
		mk_strlcpy(name, domain, sizeof(name));
	for (struct dest *d = srv->dests; d; d = d->next)
		if (strcasecmp(d->name, name) == 0)
			return d;
	struct dest *d = xcalloc(1, sizeof(*d));
	d->srv = srv;
	mk_strlcpy(d->name, name, sizeof(d->name));
	if (!local && srv->relay_host[0]) {
		mk_strlcpy(d->host, srv->relay_host, sizeof(d->host));
		d->port = srv->relay_port;
		d->mx = srv->relay_mx;
		d->relay = 1;
	} else if (!local) {
		mk_strlcpy(d->host, domain, sizeof(d->host));
		/* a domain literal [192.0.2.1] */
		size_t l = strlen(d->host);
		if (d->host[0] == '[' && l > 2 && d->host[l - 1] == ']') {
			memmove(d->host, d->host + 1, l - 2);
			d->host[l - 2] = 0;
		}
		d->port = (int)srv->p.smtp_port;
		d->mx = 1;
	}
	d->next = srv->dests;
	srv->dests = d;
	return d;
}

static int domain_is_local(struct server *srv, const char *domain)
{
	const struct config_list *l = &srv->common.mydestination;

	for (size_t i = 0; i < l->n; i++)
		if (strcasecmp(l->item[i], domain) == 0)
			return 1;
	return 0;
}

static void task_enqueue(struct dest *d, struct task *t)
{
	t->d = d;
	t->next = NULL;
	if (d->tail)
		d->tail->next = t;
	else
		d->head = t;
	d->tail = t;
	d->ntasks++;
}

struct task *dest_next_task(struct dest *d)
{
	struct task *t = d->head;

	if (t == NULL)
		return NULL;
	d->head = t->next;
	if (d->head == NULL)
		d->tail = NULL;
	d->ntasks--;
	t->next = NULL;
	t->t_start = mk_now();
	return t;
}

void dest_failed(struct dest *d, int permanent, const char *dsn, const char *why)
{
	struct task *t;

	if (!permanent) {
		/* short of the first retry, so that a retry is a real one */
		double dead = d->srv->p.minimal_backoff_time / 2;
		d->dead_until = mk_monotonic() + (dead > 10 ? 10 : dead);
		mk_strlcpy(d->dead_why, why, sizeof(d->dead_why));
		mk_strlcpy(d->dead_dsn, dsn, sizeof(d->dead_dsn));
	}
	while ((t = dest_next_task(d)) != NULL) {
		for (size_t i = 0; i < t->n; i++)
			qrcpt_set(t->r[i], permanent ? QUEUE_FAILED : QUEUE_DEFERRED, dsn, why,
				  "none");
		task_done(d->srv, t);
	}
}

void dest_kick(struct server *srv, struct dest *d)
{
	if (d->ntasks == 0)
		return;
	if (strcmp(d->name, "local") == 0) {
		struct task *t;
		while ((t = dest_next_task(d)) != NULL)
			commit_local(srv, t, --t->m->tasks_out == 0);
		return;
	}
	while (d->idle != NULL && d->ntasks > 0)
		conn_wake(d->idle);
	if (d->ntasks > 0 && d->dead_until > mk_monotonic()) {
		/* every address failed a moment ago: no new connection yet */
		dest_failed(d, 0, d->dead_dsn, d->dead_why);
		return;
	}
	size_t limit = (size_t)srv->p.smtp_destination_concurrency_limit;
	size_t want = d->ready_once ? d->ntasks : 1;
	if (want > limit)
		want = limit;
	while ((size_t)d->nconn < want && d->ntasks > 0 && !srv->stopping)
		conn_start(srv, d);
}

void dest_conn_gone(struct dest *d)
{
	d->nconn--;
	if (d->ntasks > 0)
		dest_kick(d->srv, d);
	else
		server_shutdown_check(d->srv);
}

/* --- taking messages ----------------------------------------------------------- */

struct load {
	struct qmsg *m;
	size_t cap;
	int bounced;
};

static int load_rcpt(const struct queue_rcpt *qr, void *ctx)
{
	struct load *l = ctx;
	struct qmsg *m = l->m;

	if (qr->state == QUEUE_BOUNCED) {
		l->bounced++;
		return 0;
	}
	if (m->nrcpt == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		m->rcpts = xreallocarray(m->rcpts, l->cap, sizeof(*m->rcpts));
	}
	struct qrcpt *r = &m->rcpts[m->nrcpt++];
	memset(r, 0, sizeof(*r));
	r->idx = qr->idx;
	r->result = QRCPT_UNTRIED;
	r->addr = xstrdup(qr->addr);
	return 0;
}

struct due_list {
	struct server *srv;
	char (*qid)[QUEUE_ID_MAX];
	size_t n, cap, room;
};

static int due_cb(const char *qid, int64_t when, void *ctx)
{
	struct due_list *l = ctx;

	(void)when;
	if (active_find(l->srv, qid) != NULL)
		return 0;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->qid = xreallocarray(l->qid, l->cap, sizeof(*l->qid));
	}
	mk_strlcpy(l->qid[l->n++], qid, QUEUE_ID_MAX);
	return l->n >= l->room;
}

static void activate(struct server *srv, struct qmsg *m)
{
	size_t limit = (size_t)srv->p.smtp_destination_recipient_limit;
	struct dest *touched[64];
	size_t ntouched = 0;
	char from[QUEUE_ADDR_MAX];

	/* domains point into each recipient's own (heap) address */
	for (size_t i = 0; i < m->nrcpt; i++) {
		const char *at = strrchr(m->rcpts[i].addr, '@');
		m->rcpts[i].domain = at ? at + 1 : "";
	}
	log_printable(from, sizeof(from), m->rec.from, strlen(m->rec.from));
	log_info_as("qmgr", "%s: from=<%s>, size=%llu, nrcpt=%zu (queue active)", m->rec.qid, from,
		    (unsigned long long)m->rec.size, m->nrcpt);
	active_add(srv, m);
	/* recipients by destination, in order; a task holds up to limit of them */
	int *taken = xcalloc(m->nrcpt ? m->nrcpt : 1, sizeof(int));
	for (size_t i = 0; i < m->nrcpt; i++) {
		if (taken[i])
			continue;
		int local = domain_is_local(srv, m->rcpts[i].domain);
		struct dest *d = dest_get(srv, m->rcpts[i].domain, local);
		struct task *t = NULL;
		for (size_t k = i; k < m->nrcpt; k++) {
			if (taken[k])
				continue;
			int lk = domain_is_local(srv, m->rcpts[k].domain);
			if (dest_get(srv, m->rcpts[k].domain, lk) != d)
				continue;
			if (t == NULL || t->n == limit) {
				t = xcalloc(1, sizeof(*t));
				t->m = m;
				t->r = xcalloc(limit, sizeof(*t->r));
				task_enqueue(d, t);
				m->tasks_out++;
			}
			t->r[t->n++] = &m->rcpts[k];
			taken[k] = 1;
		}
		size_t j;
		for (j = 0; j < ntouched && touched[j] != d; j++)
			;
		if (j == ntouched && ntouched < 64)
			touched[ntouched++] = d;
		else if (j == ntouched)
			dest_kick(srv, d);
	}
	free(taken);
	if (m->tasks_out == 0) {
		commit_finish(srv, m);
		return;
	}
	for (size_t j = 0; j < ntouched; j++)
		dest_kick(srv, touched[j]);
}

void qmgr_scan(struct server *srv)
{
	struct store_txn *txn;
	struct due_list l = {srv, NULL, 0, 0, 0};
	int64_t now = (int64_t)time(NULL), next = 0;
	size_t limit = (size_t)srv->p.qmgr_message_active_limit;
	struct qmsg **loaded = NULL;
	size_t nloaded = 0;

	if (srv->stopping)
		return;
	if (srv->nactive < limit && store_read_begin(srv->store, &txn) == 0) {
		l.room = limit - srv->nactive;
		queue_due(txn, now, 0, due_cb, &l);
		loaded = xcalloc(l.n ? l.n : 1, sizeof(*loaded));
		for (size_t i = 0; i < l.n; i++) {
			struct qmsg *m = xcalloc(1, sizeof(*m));
			struct load ld = {m, 0, 0};
			if (queue_get(txn, l.qid[i], &m->rec) != 0 ||
			    queue_rcpt_foreach(txn, l.qid[i], load_rcpt, &ld) != 0) {
				qmsg_free(m);
				continue;
			}
			m->t_active = mk_now();
			loaded[nloaded++] = m;
		}
		if (queue_next_due(txn, &next) != 0)
			next = 0;
		store_read_end(&txn);
	}
	for (size_t i = 0; i < nloaded; i++)
		activate(srv, loaded[i]);
	free(loaded);
	free(l.qid);
	/* the next due message, at the latest in a minute (a release, a clock step) */
	double wait = 60;
	if (next > 0 && next > now && next - now < wait)
		wait = (double)(next - now);
	else if (next > 0 && next <= now)
		wait = 1; /* due but active, or over the active limit */
	struct timeval tv = {(time_t)wait, (suseconds_t)((wait - (double)(time_t)wait) * 1e6)};
	evtimer_add(srv->timer_ev, &tv);
}

/* --- results ------------------------------------------------------------------- */

void task_done(struct server *srv, struct task *t)
{
	struct qmsg *m = t->m;
	double now = mk_now();
	double arrival = (double)m->rec.arrival;
	double a = m->t_active - arrival, b = 0, c = 0, d = 0;

	if (a < 0)
		a = 0;
	if (t->t_start > 0)
		b = t->t_start - m->t_active;
	if (t->t_conn > 0)
		c = t->t_conn - t->t_start;
	if (t->t_xfer > 0)
		d = now - (t->t_conn > 0 ? t->t_conn : t->t_start);
	if (b < 0)
		b = 0;
	if (c < 0)
		c = 0;
	for (size_t i = 0; i < t->n; i++) {
		struct qrcpt *r = t->r[i];
		char to[QUEUE_ADDR_MAX];
		log_printable(to, sizeof(to), r->addr, strlen(r->addr));
		if (r->result == QRCPT_UNTRIED)
			qrcpt_set(r, QUEUE_DEFERRED, "4.3.0", "delivery not completed", "none");
		const char *status = r->result == QUEUE_SENT	 ? "sent"
				     : r->result == QUEUE_FAILED ? "bounced"
								 : "deferred";
		char line[2400];
		snprintf(line, sizeof(line),
			 "%s: to=<%s>, relay=%s, delay=%.2g, delays=%.2g/%.2g/%.2g/%.2g, dsn=%s, "
			 "status=%s (%s)",
			 m->rec.qid, to, r->relay && r->relay[0] ? r->relay : "none", now - arrival,
			 a, b, c, d, r->dsn[0] ? r->dsn : "4.0.0", status, r->why ? r->why : "");
		if (r->result == QUEUE_SENT)
			log_info_as("smtp", "%s", line);
		else
			log_warn_as("smtp", "%s", line);
		r->done = 1;
	}
	commit_task(srv, t, --m->tasks_out == 0);
	free(t->r);
	free(t);
}

void qmgr_message_finished(struct server *srv, struct qmsg *m)
{
	active_del(srv, m);
	qmsg_free(m);
	if (srv->stopping) {
		server_shutdown_check(srv);
		return;
	}
	/* more may be due (a freed slot, a new bounce) */
	if (!srv->scan_pending) {
		srv->scan_pending = 1;
		struct timeval tv = {0, 20000};
		evtimer_add(srv->scan_ev, &tv);
	}
}
