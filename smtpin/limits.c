/* limits — the connection policy and the authentication penalty for smtpin
 * (see limits.h, lib/anvil.h and doc/smtpin.md, "Limits under attack").
 *
 * At accept: a client (a network: anvil_ipv4/ipv6_prefix_length) over
 * smtpd_client_connection_rate_limit or smtpd_client_connection_count_limit
 * (counted with its unauthenticated IMAP connections) gets Postfix's 421 and
 * Postfix's anvil warning. The server keeps smtpd_connection_reserve of its
 * smtpd_connection_limit sessions for mynetworks and networks with a recent
 * login; when the rest is full, the oldest session of the client that holds
 * the most makes room (Dovecot's login processes drop their oldest
 * unauthenticated client the same way), so one network, or forty, cannot
 * starve a newcomer. Under stress (half the strangers' slots in use) idle
 * strangers are cut after smtpd_stress_timeout instead of smtpd_timeout, as
 * Postfix's stress-adaptive smtpd_timeout does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "index/params.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "smtpin/smtpin.h"

struct limits {
	struct anvil_settings as;
	struct anvil *anvil;
	int count_limit, rate_limit, reserve;
	double stress_timeout;
	int strangers; /* sessions of strangers in this process (not quitting) */
	int live;      /* sessions admitted and not quitting */
	struct event *tick;
};

int limits_init(struct server *srv, char *err, size_t errsize)
{
	struct limits *l = xcalloc(1, sizeof(*l));
	char path[1024], e[512];

	params_anvil_settings(&srv->common, &l->as);
	l->count_limit = srv->conn_per_client;
	l->rate_limit = (int)srv->p.smtpd_client_connection_rate_limit;
	l->reserve = (int)srv->p.smtpd_connection_reserve;
	if (l->reserve >= srv->conn_limit)
		l->reserve = srv->conn_limit / 2;
	l->stress_timeout = srv->p.smtpd_stress_timeout;
	const char *rundir = srv->common.run_directory;
	mk_mkdirs(rundir, 0755);
	snprintf(path, sizeof(path), "%s/anvil", rundir);
	if (anvil_open(path, &l->as, ANVIL_SMTPIN, srv->common.mail_owner, &l->anvil, e,
		       sizeof(e)) < 0) {
		snprintf(err, errsize, "the connection table: %s", e);
		free(l);
		return -1;
	}
	srv->limits = l;
	return 0;
}

void limits_reload(struct server *srv)
{
	struct limits *l = srv->limits;

	l->count_limit = srv->conn_per_client;
	l->rate_limit = (int)srv->p.smtpd_client_connection_rate_limit;
	l->reserve = (int)srv->p.smtpd_connection_reserve;
	if (l->reserve >= srv->conn_limit)
		l->reserve = srv->conn_limit / 2;
	l->stress_timeout = srv->p.smtpd_stress_timeout;
}

static int stressed(struct server *srv)
{
	struct limits *l = srv->limits;
	return l->strangers * 2 >= srv->conn_limit - l->reserve;
}

int limits_stressed(struct server *srv)
{
	return stressed(srv);
}

/* Once a second under stress: strangers idle longer than smtpd_stress_timeout go. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	struct limits *l = srv->limits;
	double now = mk_now();

	(void)fd;
	(void)what;
	if (!stressed(srv))
		return;
	struct session *next;
	for (struct session *s = srv->sessions; s != NULL; s = next) {
		next = s->next;
		if (!s->lim.stranger || s->busy || s->quitting || s->closed ||
		    now - s->lim.t_active < l->stress_timeout)
			continue;
		anvil_event(l->anvil, ANVIL_EV_STRESS_TIMEOUT);
		session_reply(s, "421 4.4.2 %s Error: timeout exceeded", srv->hostname);
		log_info_as("smtpd", "timeout after %s from %s (under stress: %.0fs)",
			    s->last_cmd[0] ? s->last_cmd : "CONNECT", s->client, l->stress_timeout);
		session_quit(s);
	}
}

void limits_start(struct server *srv)
{
	struct limits *l = srv->limits;
	struct timeval second = {1, 0};

	l->tick = event_new(srv->base, -1, EV_PERSIST, on_tick, srv);
	event_add(l->tick, &second);
}

void limits_fini(struct server *srv)
{
	struct limits *l = srv->limits;

	if (l == NULL)
		return;
	if (l->tick != NULL)
		event_free(l->tick);
	anvil_close(&l->anvil);
	free(l);
	srv->limits = NULL;
}

void limits_activity(struct session *s)
{
	s->lim.t_active = mk_now();
}

void limits_release(struct session *s)
{
	struct limits *l = s->srv->limits;

	if (l == NULL)
		return;
	if (s->lim.counted) {
		anvil_disconnect(l->anvil, &s->lim.key);
		s->lim.counted = 0;
	}
	if (s->lim.stranger) {
		s->lim.stranger = 0;
		l->strangers--;
	}
	if (s->lim.live) {
		s->lim.live = 0;
		l->live--;
	}
}

static int key_cmp(const void *a, const void *b)
{
	const struct session *const *x = a, *const *y = b;
	int c = memcmp(&(*x)->lim.key, &(*y)->lim.key, sizeof((*x)->lim.key));
	if (c != 0)
		return c;
	return (*x)->t_connect < (*y)->t_connect ? -1 : (*x)->t_connect > (*y)->t_connect;
}

/* The server is full for s: makes room by closing the oldest idle session of
 * the client with the most strangers' sessions, if that client holds more
 * than s's own. Returns 1 if there is room now. */
static int make_room(struct session *s)
{
	struct server *srv = s->srv;
	struct session **all = xcalloc((size_t)srv->nsessions + 1, sizeof(*all));
	size_t n = 0;
	int made = 0;

	for (struct session *o = srv->sessions; o != NULL; o = o->next)
		if (o != s && o->lim.stranger && !o->quitting && !o->closed)
			all[n++] = o;
	qsort(all, n, sizeof(*all), key_cmp);
	/* the biggest client that has a session not in the middle of something
	 * (a delivery, a password check, an error pause): its oldest such one */
	size_t best_n = 0, own_n = 1;
	struct session *victim = NULL;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		struct session *idle = NULL;
		while (j < n &&
		       memcmp(&all[j]->lim.key, &all[i]->lim.key, sizeof(all[i]->lim.key)) == 0) {
			if (idle == NULL && !all[j]->busy)
				idle = all[j];
			j++;
		}
		if (memcmp(&all[i]->lim.key, &s->lim.key, sizeof(s->lim.key)) == 0)
			own_n += j - i;
		else if (idle != NULL && j - i > best_n) {
			best_n = j - i;
			victim = idle;
		}
		i = j;
	}
	if (best_n > own_n) {
		if (victim != NULL) {
			anvil_event(srv->limits->anvil, ANVIL_EV_EVICTED);
			session_reply(
			    victim,
			    "421 4.7.0 %s Error: too many connections from %s; the server is "
			    "full",
			    srv->hostname, victim->addr);
			log_info_as("smtpd",
				    "server full (%d sessions): closing the oldest session of %s "
				    "(%zu sessions from %s) for %s",
				    srv->limits->live, victim->client, best_n, victim->lim.net,
				    s->client);
			session_quit(victim); /* which releases its slot (limits_release) */
			made = 1;
		}
	}
	free(all);
	return made;
}

/* Refuses s at connect: the 421 straight on the socket (a client that has
 * just connected has sent nothing, so closing at once loses no reply), the
 * counts released, fd closed. */
static int refuse(struct session *s, int fd, const char *reply)
{
	char line[700];

	anvil_event(s->srv->limits->anvil, ANVIL_EV_CONN_REFUSED);
	if (s->lst->kind != LISTEN_SMTPS && s->lst->kind != LISTEN_SUBMISSIONS) {
		int n = snprintf(line, sizeof(line), "%s\r\n", reply);
		if (n > 0 && (size_t)n < sizeof(line))
			(void)!send(fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
		shutdown(fd, SHUT_WR);
	}
	limits_release(s);
	close(fd);
	return -1;
}

int limits_accept(struct session *s, int fd)
{
	struct server *srv = s->srv;
	struct limits *l = srv->limits;
	struct anvil_client c;
	char reply[600];
	int exempt = s->lmtp || s->mynetworks;

	s->lim.t_active = mk_now();
	s->lim.has_key = anvil_key_parse(s->addr, &l->as, &s->lim.key) == 0 && !s->lmtp;
	if (s->lim.has_key) {
		anvil_key_str(&s->lim.key, s->lim.net, sizeof(s->lim.net));
		anvil_connect(l->anvil, &s->lim.key, &c);
		s->lim.counted = 1;
		s->lim.known = c.known;
		snprintf(reply, sizeof(reply), "421 4.7.0 %s Error: too many connections from %s",
			 srv->hostname, s->addr);
		if (!exempt && l->rate_limit > 0 && c.rate > l->rate_limit) {
			log_warn_as("smtpd",
				    "Connection rate limit exceeded: %.0f from %s for service smtp",
				    c.rate, s->client);
			return refuse(s, fd, reply);
		}
		if (!exempt && l->count_limit > 0 && c.conns > (unsigned)l->count_limit) {
			log_warn_as(
			    "smtpd",
			    "Connection concurrency limit exceeded: %u from %s for service smtp",
			    c.conns, s->client);
			return refuse(s, fd, reply);
		}
	}
	int stranger = !exempt && !s->lim.known;
	/* the server's own limit: strangers may use all but the reserve; a
	 * session that is closing (refused, evicted, QUIT) no longer counts */
	int full = l->live + 1 > srv->conn_limit ||
		   (stranger && l->strangers + 1 > srv->conn_limit - l->reserve);
	if (full && !make_room(s)) {
		log_warn_as(
		    "smtpd",
		    "connection limit %d reached (%d for clients not in mynetworks): %s refused",
		    srv->conn_limit, srv->conn_limit - l->reserve, s->client);
		snprintf(reply, sizeof(reply), "421 4.3.2 %s Service currently unavailable",
			 srv->hostname);
		return refuse(s, fd, reply);
	}
	s->lim.live = 1;
	l->live++;
	if (stranger) {
		s->lim.stranger = 1;
		l->strangers++;
	}
	return 0;
}

void limits_started(struct session *s)
{
	struct limits *l = s->srv->limits;

	if (stressed(s->srv) && s->lim.stranger) {
		struct timeval tv = {(time_t)l->stress_timeout, 0};
		bufferevent_set_timeouts(s->bev, &tv, &tv);
	}
}

void limits_close(struct session *s)
{
	limits_release(s);
}

/* ---- the penalty ---- */

struct auth_wait {
	struct session *s;
	char login[DIR_NAME_MAX];
	limits_job_fn *work, *done;
	void (*refused)(void *arg, const char *why);
	void *arg;
	double started;
	struct event *ev;
};

static void auth_try(evutil_socket_t fd, short what, void *arg);

static void auth_step(struct auth_wait *w)
{
	struct session *s = w->s;
	struct limits *l = s->srv->limits;
	struct anvil_auth r;
	char why[700], login[DIR_NAME_MAX];

	if (s->closed) {
		w->refused(w->arg, NULL);
		goto free;
	}
	enum anvil_turn t = anvil_auth_begin(l->anvil, s->lim.has_key ? &s->lim.key : NULL,
					     w->login, mk_monotonic() - w->started, &r);
	if (t == ANVIL_GO) {
		job_submit(s->srv, w->work, w->done, w->arg);
		goto free;
	}
	if (t == ANVIL_WAIT) {
		struct timeval tv = {(time_t)r.wait,
				     (suseconds_t)((r.wait - (time_t)r.wait) * 1e6)};
		if (w->ev == NULL)
			w->ev = evtimer_new(s->srv->base, auth_try, w);
		evtimer_add(w->ev, &tv);
		return;
	}
	anvil_event(l->anvil, ANVIL_EV_AUTH_REFUSED);
	PRINTABLE(login, w->login);
	if (t == ANVIL_LOCKED)
		snprintf(why, sizeof(why), "user <%s> locked out for %.0fs after %u failures",
			 login, r.locked_for, r.user_failures);
	else
		snprintf(why, sizeof(why),
			 "too many attempts waiting (network %s: %u failures, user <%s>: %u)",
			 s->lim.net, r.net_failures, login, r.user_failures);
	w->refused(w->arg, why);
free:
	if (w->ev != NULL)
		event_free(w->ev);
	free(w);
}

static void auth_try(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	auth_step(arg);
}

void limits_auth_submit(struct session *s, const char *login, limits_job_fn *work,
			limits_job_fn *done, void (*refused)(void *arg, const char *why), void *arg)
{
	struct auth_wait *w = xcalloc(1, sizeof(*w));

	w->s = s;
	mk_strlcpy(w->login, login, sizeof(w->login));
	w->work = work;
	w->done = done;
	w->refused = refused;
	w->arg = arg;
	w->started = mk_monotonic();
	auth_step(w);
}

void limits_auth_result(struct session *s, const char *login, int ok)
{
	struct limits *l = s->srv->limits;
	struct anvil_auth r;
	char plogin[DIR_NAME_MAX];

	anvil_auth_end(l->anvil, s->lim.has_key ? &s->lim.key : NULL, login, ok == 1, ok < 0, &r);
	if (ok == 1) {
		/* an authenticated session is no stranger and no longer counts
		 * against its client's limit */
		if (s->lim.counted) {
			anvil_disconnect(l->anvil, &s->lim.key);
			s->lim.counted = 0;
		}
		if (s->lim.stranger) {
			s->lim.stranger = 0;
			l->strangers--;
		}
		return;
	}
	if (ok == 0) {
		PRINTABLE(plogin, login);
		double pn = anvil_penalty(&l->as, r.net_failures),
		       pu = anvil_penalty(&l->as, r.user_failures);
		log_info_as("smtpd",
			    "authentication penalty for %s: %.0fs (network %s: %u failures; user "
			    "<%s>: %u failures%s)",
			    s->client, pn > pu ? pn : pu, s->lim.net, r.net_failures, plogin,
			    r.user_failures, r.locked_for > 0 ? ", now locked out" : "");
	}
}
