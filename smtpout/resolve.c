/* resolve — where a destination's mail goes: MX records in preference order
 * (equal preferences shuffled), the implicit MX of a domain without one, the
 * null MX (RFC 7505), and the A/AAAA addresses of each host, through
 * libunbound on the event loop (its fd is watched; ub_process runs the
 * callbacks here). smtp_dns_resolver names the servers (tests point it at a
 * local dnsmasq); empty means /etc/resolv.conf.
 *
 * libunbound rather than libevent's evdns (which smtpin uses for DNSBLs):
 * evdns has no MX queries. libunbound also validates DNSSEC when given a trust
 * anchor, which DANE (smtp_tls_security_level = dane) will need; that is
 * not done yet (doc/sending.md).
 *
 * Hosts that are this one (myhostname), and every MX of the same or a worse
 * preference, are left out, as Postfix does, so a backup MX hands mail to the
 * primary and never to itself.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unbound.h>

#include "lib/dnsq.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "smtpout/smtpout.h"

#define MX_HOSTS_MAX 16
#define RR_A 1
#define RR_MX 15
#define RR_AAAA 28

struct resolver {
	struct ub_ctx *ub;
	struct event *ev;
};

struct mxhost {
	char name[256];
	int pref;
	int rnd;
	char v4[8][16];
	char v6[8][64];
	int n4, n6;
};

struct rjob {
	struct server *srv;
	void (*cb)(struct resolve_result *r, void *arg);
	void *arg;
	char host[256];
	int port;
	struct mxhost mx[MX_HOSTS_MAX];
	int nmx;
	int pending;
	int temp_errors;
	char last_why[QUEUE_WHY_MAX];
};

struct rq {
	struct rjob *j;
	int mx; /* index into j->mx */
	int type;
};

static void on_ub(evutil_socket_t fd, short what, void *arg)
{
	struct resolver *r = arg;
	(void)fd;
	(void)what;
	int rc = ub_process(r->ub);
	if (rc != 0)
		log_warn("resolver: %s", ub_strerror(rc));
}

int resolver_start(struct server *srv, char *err, size_t errsize)
{
	struct resolver *r = xcalloc(1, sizeof(*r));
	const struct config_list *ns = &srv->p.smtp_dns_resolver;
	int rc;

	r->ub = ub_ctx_create();
	if (r->ub == NULL) {
		snprintf(err, errsize, "cannot start libunbound");
		free(r);
		return -1;
	}
	ub_ctx_set_option(r->ub, "do-not-query-localhost:", "no");
	if (strcmp(srv->p.inet_protocols, "ipv4") == 0)
		ub_ctx_set_option(r->ub, "do-ip6:", "no");
	if (ns->n == 0) {
		if ((rc = ub_ctx_resolvconf(r->ub, NULL)) != 0)
			log_warn("resolver: /etc/resolv.conf: %s", ub_strerror(rc));
	}
	for (size_t i = 0; i < ns->n; i++) {
		/* "ip" or "ip:port" (as dns_resolver), "[v6]:port"; unbound wants ip@port */
		char spec[128], *colon;
		const char *s = ns->item[i];
		if (s[0] == '[') {
			mk_strlcpy(spec, s + 1, sizeof(spec));
			char *br = strchr(spec, ']');
			if (br != NULL) {
				*br = 0;
				if (br[1] == ':') {
					size_t l = strlen(spec);
					snprintf(spec + l, sizeof(spec) - l, "@%s", br + 2);
				}
			}
		} else {
			mk_strlcpy(spec, s, sizeof(spec));
			colon = strchr(spec, ':');
			if (colon != NULL && strchr(colon + 1, ':') == NULL)
				*colon = '@';
		}
		if ((rc = ub_ctx_set_fwd(r->ub, spec)) != 0) {
			snprintf(err, errsize, "smtp_dns_resolver: bad name server \"%s\": %s", s,
				 ub_strerror(rc));
			ub_ctx_delete(r->ub);
			free(r);
			return -1;
		}
	}
	if ((rc = ub_ctx_async(r->ub, 1)) != 0) {
		snprintf(err, errsize, "libunbound: %s", ub_strerror(rc));
		ub_ctx_delete(r->ub);
		free(r);
		return -1;
	}
	r->ev = event_new(srv->base, ub_fd(r->ub), EV_READ | EV_PERSIST, on_ub, r);
	if (r->ev == NULL)
		log_fatal("out of memory (event_new)");
	event_add(r->ev, NULL);
	srv->res = r;
	return 0;
}

void resolver_stop(struct server *srv)
{
	struct resolver *r = srv->res;

	if (r == NULL)
		return;
	event_free(r->ev);
	ub_ctx_delete(r->ub);
	free(r);
	srv->res = NULL;
}

void resolve_result_free(struct resolve_result *r)
{
	if (r == NULL)
		return;
	free(r->t);
	free(r);
}

static int mx_cmp(const void *a, const void *b)
{
	const struct mxhost *x = a, *y = b;

	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	return x->rnd < y->rnd ? -1 : x->rnd > y->rnd;
}

static void finish(struct rjob *j)
{
	struct server *srv = j->srv;
	struct resolve_result *res = xcalloc(1, sizeof(*res));
	size_t limit = (size_t)srv->p.smtp_mx_address_limit;
	int v6first = strcmp(srv->p.smtp_address_preference, "ipv4") != 0;

	res->t = xcalloc(limit, sizeof(*res->t));
	for (int i = 0; i < j->nmx && res->n < limit; i++) {
		struct mxhost *m = &j->mx[i];
		for (int pass = 0; pass < 2; pass++) {
			int six = (pass == 0) == v6first;
			int n = six ? m->n6 : m->n4;
			for (int k = 0; k < n && res->n < limit; k++) {
				struct target *t = &res->t[res->n++];
				mk_strlcpy(t->host, m->name, sizeof(t->host));
				mk_strlcpy(t->addr, six ? m->v6[k] : m->v4[k], sizeof(t->addr));
				t->family = six ? AF_INET6 : AF_INET;
				t->pref = m->pref;
			}
		}
	}
	if (res->n == 0) {
		if (j->temp_errors) {
			res->status = -1;
			mk_strlcpy(res->dsn, "4.4.3", sizeof(res->dsn));
		} else {
			res->status = 1;
			mk_strlcpy(res->dsn, "5.4.4", sizeof(res->dsn));
		}
		if (j->last_why[0])
			mk_strlcpy(res->why, j->last_why, sizeof(res->why));
		else
			snprintf(
			    res->why, sizeof(res->why),
			    "Host or domain name not found. Name service error for name=%s type=A: "
			    "Host not found",
			    j->host);
	}
	j->cb(res, j->arg);
	free(j);
}

static void addr_done(void *arg, int err, struct ub_result *result)
{
	struct rq *q = arg;
	struct rjob *j = q->j;
	struct mxhost *m = &j->mx[q->mx];

	if (err != 0 || result == NULL) {
		j->temp_errors++;
		snprintf(j->last_why, sizeof(j->last_why),
			 "Name service error for name=%s type=%s: %s", m->name,
			 q->type == RR_A ? "A" : "AAAA", ub_strerror(err));
	} else if (result->rcode == 2 /* SERVFAIL */) {
		j->temp_errors++;
		snprintf(j->last_why, sizeof(j->last_why),
			 "Name service error for name=%s type=%s: Host not found, try again",
			 m->name, q->type == RR_A ? "A" : "AAAA");
	} else if (result->havedata) {
		for (int i = 0; result->data[i] != NULL; i++) {
			if (q->type == RR_A && result->len[i] == 4 && m->n4 < 8)
				inet_ntop(AF_INET, result->data[i], m->v4[m->n4++],
					  sizeof(m->v4[0]));
			else if (q->type == RR_AAAA && result->len[i] == 16 && m->n6 < 8)
				inet_ntop(AF_INET6, result->data[i], m->v6[m->n6++],
					  sizeof(m->v6[0]));
		}
	}
	if (result != NULL)
		ub_resolve_free(result);
	free(q);
	if (--j->pending == 0)
		finish(j);
}

static void query(struct rjob *j, int mx, int type)
{
	struct rq *q = xcalloc(1, sizeof(*q));
	int rc;

	q->j = j;
	q->mx = mx;
	q->type = type;
	j->pending++;
	rc = ub_resolve_async(j->srv->res->ub, j->mx[mx].name, type, 1, q, addr_done, NULL);
	if (rc != 0) {
		j->pending--;
		j->temp_errors++;
		snprintf(j->last_why, sizeof(j->last_why), "resolver: %s", ub_strerror(rc));
		free(q);
	}
}

static void resolve_hosts(struct rjob *j)
{
	const char *proto = j->srv->p.inet_protocols;
	int v4 = strcmp(proto, "ipv6") != 0, v6 = strcmp(proto, "ipv4") != 0;

	j->pending = 1; /* held until every query is started */
	for (int i = 0; i < j->nmx; i++) {
		if (v4)
			query(j, i, RR_A);
		if (v6)
			query(j, i, RR_AAAA);
	}
	if (--j->pending == 0)
		finish(j);
}

static void fail(struct rjob *j, int status, const char *dsn, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(struct rjob *j, int status, const char *dsn, const char *fmt, ...)
{
	struct resolve_result *res = xcalloc(1, sizeof(*res));
	va_list ap;

	res->status = status;
	mk_strlcpy(res->dsn, dsn, sizeof(res->dsn));
	va_start(ap, fmt);
	vsnprintf(res->why, sizeof(res->why), fmt, ap);
	va_end(ap);
	j->cb(res, j->arg);
	free(j);
}

static void mx_done(void *arg, int err, struct ub_result *result)
{
	struct rjob *j = arg;
	const char *me = j->srv->common.myhostname;

	if (err != 0 || result == NULL) {
		if (result)
			ub_resolve_free(result);
		fail(j, -1, "4.4.3", "Name service error for name=%s type=MX: %s", j->host,
		     ub_strerror(err));
		return;
	}
	if (result->nxdomain) {
		ub_resolve_free(result);
		fail(j, 1, "5.4.4",
		     "Host or domain name not found. Name service error for name=%s type=MX: Host "
		     "not found",
		     j->host);
		return;
	}
	if (result->rcode != 0) {
		ub_resolve_free(result);
		fail(j, -1, "4.4.3",
		     "Host or domain name not found. Name service error for name=%s type=MX: Host "
		     "not found, try again",
		     j->host);
		return;
	}
	if (!result->havedata) {
		/* no MX: the domain itself (RFC 5321 5.1) */
		mk_strlcpy(j->mx[0].name, j->host, sizeof(j->mx[0].name));
		j->nmx = 1;
		ub_resolve_free(result);
		resolve_hosts(j);
		return;
	}
	for (int i = 0; result->data[i] != NULL && j->nmx < MX_HOSTS_MAX; i++) {
		const unsigned char *p = (const unsigned char *)result->data[i];
		size_t len = (size_t)result->len[i];
		struct mxhost *m = &j->mx[j->nmx];
		if (len < 3)
			continue;
		memset(m, 0, sizeof(*m));
		m->pref = p[0] << 8 | p[1];
		if (dnsq_wire_name(p + 2, len - 2, m->name, sizeof(m->name)) < 0)
			continue;
		m->rnd = rand();
		j->nmx++;
	}
	ub_resolve_free(result);
	if (j->nmx == 1 && j->mx[0].name[0] == 0) {
		fail(j, 1, "5.1.10", "Domain %s does not accept mail (nullMX)", j->host);
		return;
	}
	qsort(j->mx, (size_t)j->nmx, sizeof(j->mx[0]), mx_cmp);
	/* this host and every MX not better than it are left out */
	for (int i = 0; i < j->nmx; i++) {
		if (strcasecmp(j->mx[i].name, me) == 0) {
			if (i == 0) {
				fail(j, 1, "5.4.6", "mail for %s loops back to myself", j->host);
				return;
			}
			int cut = i;
			while (cut > 0 && j->mx[cut - 1].pref == j->mx[i].pref)
				cut--;
			j->nmx = cut;
			if (j->nmx == 0) {
				fail(j, 1, "5.4.6", "mail for %s loops back to myself", j->host);
				return;
			}
			break;
		}
	}
	for (int i = 0; i < j->nmx; i++)
		if (j->mx[i].name[0] == 0)
			j->nmx = i;
	resolve_hosts(j);
}

void resolve_dest(struct server *srv, struct dest *d,
		  void (*cb)(struct resolve_result *r, void *arg), void *arg)
{
	struct rjob *j = xcalloc(1, sizeof(*j));
	unsigned char buf[16];
	char lit[256];

	j->srv = srv;
	j->cb = cb;
	j->arg = arg;
	j->port = d->port;
	mk_strlcpy(j->host, d->host, sizeof(j->host));
	/* an address: no lookup */
	mk_strlcpy(lit, d->host, sizeof(lit));
	if (strncasecmp(lit, "ipv6:", 5) == 0)
		memmove(lit, lit + 5, strlen(lit + 5) + 1);
	int fam = inet_pton(AF_INET, lit, buf) == 1    ? AF_INET
		  : inet_pton(AF_INET6, lit, buf) == 1 ? AF_INET6
						       : 0;
	if (fam != 0) {
		struct resolve_result *res = xcalloc(1, sizeof(*res));
		res->t = xcalloc(1, sizeof(*res->t));
		res->n = 1;
		mk_strlcpy(res->t[0].host, lit, sizeof(res->t[0].host));
		mk_strlcpy(res->t[0].addr, lit, sizeof(res->t[0].addr));
		res->t[0].family = fam;
		free(j);
		cb(res, arg);
		return;
	}
	if (d->mx) {
		int rc = ub_resolve_async(srv->res->ub, j->host, RR_MX, 1, j, mx_done, NULL);
		if (rc != 0)
			fail(j, -1, "4.4.3", "resolver: %s", ub_strerror(rc));
		return;
	}
	mk_strlcpy(j->mx[0].name, j->host, sizeof(j->mx[0].name));
	j->nmx = 1;
	resolve_hosts(j);
}
