/* postscreen — Postfix postscreen's tests, in front of each SMTP session.
 *
 * A client not allowed by postscreen_access_list and not in the cache of
 * clients that passed gets a "220-" first line and postscreen_greet_wait
 * seconds of silence, during which its address is looked up in every
 * postscreen_dnsbl_sites list at once. Talking before the final "220 " line
 * is PREGREET; a DNSBL score at or over postscreen_dnsbl_threshold is DNSBL.
 * The deep tests (pipelining, non-SMTP command, bare newline) are checked by
 * session.c on each command. A failed test takes its action: ignore (log),
 * enforce (the session goes on, every RCPT gets 550), or drop (521, hang up).
 * Log lines use postscreen's words (CONNECT, PREGREET, DNSBL rank, PASS NEW,
 * PASS OLD, ...) so tools written for postscreen logs read them.
 */
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/log.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "smtpin/smtpin.h"

enum ps_action ps_action_parse(const char *text)
{
	if (strcasecmp(text, "enforce") == 0)
		return PS_ENFORCE;
	if (strcasecmp(text, "drop") == 0)
		return PS_DROP;
	return PS_IGNORE;
}

static int action_setting(const char *v, const char *name, enum ps_action *a, char *err,
			  size_t errsize)
{

	if (v == NULL || (strcasecmp(v, "ignore") != 0 && strcasecmp(v, "enforce") != 0 &&
			  strcasecmp(v, "drop") != 0)) {
		snprintf(err, errsize, "%s: want ignore, enforce or drop", name);
		return -1;
	}
	*a = ps_action_parse(v);
	return 0;
}

int postscreen_load(struct server *srv, char *err, size_t errsize)
{
	const struct smtpin_params *p = &srv->p;
	char **items = NULL;
	size_t n = 0;

#define ACTION(name, a) action_setting(p->name, #name, a, err, errsize)
	if (ACTION(postscreen_denylist_action, &srv->ps_deny_action) < 0 ||
	    ACTION(postscreen_greet_action, &srv->ps_greet_action) < 0 ||
	    ACTION(postscreen_dnsbl_action, &srv->ps_dnsbl_action) < 0 ||
	    ACTION(postscreen_pipelining_action, &srv->ps_pipe_action) < 0 ||
	    ACTION(postscreen_non_smtp_command_action, &srv->ps_nonsmtp_action) < 0 ||
	    ACTION(postscreen_bare_newline_action, &srv->ps_bare_action) < 0)
		return -1;
#undef ACTION
	srv->ps_greet_wait = p->postscreen_greet_wait;
	srv->ps_greet_ttl = p->postscreen_greet_ttl;
	srv->ps_dnsbl_ttl = p->postscreen_dnsbl_ttl;
	srv->ps_threshold = (int)p->postscreen_dnsbl_threshold;
	srv->ps_allow_threshold = (int)p->postscreen_dnsbl_allowlist_threshold;
	srv->ps_pipe = p->postscreen_pipelining_enable;
	srv->ps_nonsmtp = p->postscreen_non_smtp_command_enable;
	srv->ps_bare = p->postscreen_bare_newline_enable;
	const char *pb = p->postscreen_greet_banner;
	mk_strlcpy(srv->ps_banner, pb ? pb : srv->banner, sizeof(srv->ps_banner));
	srv->ps_forbidden = p->postscreen_forbidden_commands.item;
	srv->ps_nforbidden = p->postscreen_forbidden_commands.n;

	items = p->postscreen_dnsbl_sites.item;
	n = p->postscreen_dnsbl_sites.n;
	srv->ps_sites = xcalloc(n ? n : 1, sizeof(*srv->ps_sites));
	for (size_t i = 0; i < n; i++) {
		if (dnsbl_site_parse(items[i], &srv->ps_sites[i], 1) < 0) {
			snprintf(err, errsize,
				 "postscreen_dnsbl_sites: bad entry \"%s\" (want "
				 "domain[=pattern][*weight])",
				 items[i]);
			return -1;
		}
	}
	srv->ps_nsites = n;

	items = p->postscreen_access_list.item;
	n = p->postscreen_access_list.n;
	for (size_t i = 0; i < n; i++) {
		if (strcasecmp(items[i], "permit_mynetworks") == 0) {
			srv->ps_access_mynetworks = 1;
		} else if (strncmp(items[i], "cidr:", 5) == 0) {
			if (srv->ps_cidr != NULL) {
				snprintf(err, errsize,
					 "postscreen_access_list: one cidr: table only");
				return -1;
			}
			if (cidr_load(items[i] + 5, &srv->ps_cidr, &srv->ps_ncidr, err, errsize) <
			    0) {
				return -1;
			}
		} else {
			snprintf(err, errsize, "postscreen_access_list: unknown entry \"%s\"",
				 items[i]);
			return -1;
		}
	}
	return 0;
}

int postscreen_fail(struct session *s, const char *test, enum ps_action action, const char *detail)
{
	s->ps_failed = 1;
	log_info_as("postscreen", "%s from %s after %s: %s", test, s->ps_client,
		    s->last_cmd[0] ? s->last_cmd : "CONNECT", detail);
	if (action == PS_DROP) {
		session_reply(s, "521 5.5.1 %s Protocol error", s->srv->hostname);
		log_info_as("postscreen", "DISCONNECT %s", s->ps_client);
		session_quit(s);
		return 1;
	}
	if (action == PS_ENFORCE && s->ps_enforce[0] == 0)
		snprintf(s->ps_enforce, sizeof(s->ps_enforce), "550 5.5.1 Protocol error");
	return 0;
}

static void greet_finish(struct session *s)
{
	struct server *srv = s->srv;

	if (s->closed || s->quitting)
		return;
	if (srv->ps_nsites > 0) {
		if (s->dnsbl_score >= srv->ps_threshold && s->dnsbl_score > 0) {
			s->ps_failed = 1;
			log_info_as("postscreen", "DNSBL rank %d for %s", s->dnsbl_score,
				    s->ps_client);
			if (srv->ps_dnsbl_action == PS_DROP) {
				session_reply(
				    s,
				    "521 5.7.1 Service unavailable; client [%s] blocked using %s",
				    s->addr, s->dnsbl_hit);
				log_info_as("postscreen", "DISCONNECT %s", s->ps_client);
				session_quit(s);
				return;
			}
			if (srv->ps_dnsbl_action == PS_ENFORCE)
				snprintf(
				    s->ps_enforce, sizeof(s->ps_enforce),
				    "550 5.7.1 Service unavailable; client [%s] blocked using %s",
				    s->addr, s->dnsbl_hit);
		} else if (srv->ps_allow_threshold < 0 &&
			   s->dnsbl_score <= srv->ps_allow_threshold) {
			log_info_as("postscreen", "PASS NEW %s (allowlisted by DNS, score %d)",
				    s->ps_client, s->dnsbl_score);
			s->ps_subject = 0;
		}
	}
	if (s->ps_subject && !s->ps_failed) {
		log_info_as("postscreen", "PASS NEW %s", s->ps_client);
		/* without deep tests the verdict is final now; with them, at the end */
		if (!srv->ps_pipe && !srv->ps_nonsmtp && !srv->ps_bare)
			postscreen_end(s);
	}
	session_greet_done(s);
}

static void greet_timer(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)what;
	s->greet_over = 1;
	if (s->dnsbl_pending == 0)
		greet_finish(s);
}

struct ps_dns {
	struct session *s;
	size_t site;
};

static void dnsbl_answer(const struct dns_answer *a, void *arg)
{
	struct ps_dns *d = arg;
	struct session *s = d->s;
	const struct dnsbl_site *site = &s->srv->ps_sites[d->site];

	if (a->status == 0 && dnsbl_site_match(site, a)) {
		s->dnsbl_score += site->weight;
		if (site->weight > 0 && s->dnsbl_hit[0] == 0)
			mk_strlcpy(s->dnsbl_hit, site->domain, sizeof(s->dnsbl_hit));
	}
	free(d);
	s->dnsbl_pending--;
	if (s->dnsbl_pending == 0 && s->greet_over)
		greet_finish(s);
	session_unref(s);
}

static int cache_passed(struct session *s)
{
	int64_t until = 0;

	if (pscache_get(s->srv->store, s->addr, &until) != 0)
		return 0;
	return until > (int64_t)time(NULL);
}

void postscreen_start(struct session *s)
{
	struct server *srv = s->srv;
	int tests = srv->ps_greet_action != PS_IGNORE || srv->ps_nsites > 0;
	int deep = srv->ps_pipe || srv->ps_nonsmtp || srv->ps_bare;

	if (!tests && !deep) {
		session_greet_done(s);
		return;
	}
	log_info_as("postscreen", "CONNECT from %s to [%s]:%s", s->ps_client, s->lst->spec, "smtp");
	if (srv->ps_access_mynetworks && s->mynetworks) {
		log_info_as("postscreen", "ALLOWLISTED %s", s->ps_client);
		session_greet_done(s);
		return;
	}
	const char *action =
	    srv->ps_cidr ? cidr_lookup(srv->ps_cidr, srv->ps_ncidr, s->addr) : NULL;
	if (action != NULL &&
	    (strcasecmp(action, "permit") == 0 || strcasecmp(action, "ok") == 0)) {
		log_info_as("postscreen", "ALLOWLISTED %s", s->ps_client);
		session_greet_done(s);
		return;
	}
	if (action != NULL && strcasecmp(action, "reject") == 0) {
		log_info_as("postscreen", "DENYLISTED %s", s->ps_client);
		s->ps_failed = 1;
		if (srv->ps_deny_action == PS_DROP) {
			session_reply(s, "521 5.3.2 %s Service currently unavailable",
				      srv->hostname);
			log_info_as("postscreen", "DISCONNECT %s", s->ps_client);
			session_quit(s);
			return;
		}
		if (srv->ps_deny_action == PS_ENFORCE)
			snprintf(s->ps_enforce, sizeof(s->ps_enforce),
				 "550 5.3.2 Service currently unavailable");
	}
	if (!s->ps_failed && cache_passed(s)) {
		log_info_as("postscreen", "PASS OLD %s", s->ps_client);
		session_greet_done(s);
		return;
	}
	s->ps_subject = 1;
	s->ps_fresh = 1;
	if (!tests) {
		session_greet_done(s);
		return;
	}
	session_reply(s, "220-%s", srv->ps_banner);
	for (size_t i = 0; i < srv->ps_nsites; i++) {
		char rev[128], name[512];
		if (dns_reverse_name(s->addr, rev, sizeof(rev)) < 0)
			break;
		snprintf(name, sizeof(name), "%s.%s", rev, srv->ps_sites[i].domain);
		struct ps_dns *d = xcalloc(1, sizeof(*d));
		d->s = s;
		d->site = i;
		s->dnsbl_pending++;
		session_ref(s);
		dns_lookup_a(srv, name, dnsbl_answer, d);
	}
	/* under stress, as Postfix's postscreen_greet_wait = ${stress?{2}:{6}}s */
	double wait = limits_stressed(srv) && srv->ps_greet_wait > 2 ? 2 : srv->ps_greet_wait;
	struct timeval tv = {(time_t)wait, (suseconds_t)((wait - (time_t)wait) * 1e6)};
	s->greet_ev = evtimer_new(srv->base, greet_timer, s);
	if (s->greet_ev == NULL)
		log_fatal("out of memory (evtimer_new)");
	evtimer_add(s->greet_ev, &tv);
}

void postscreen_pregreet(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	char text[128], raw[64];
	size_t n = evbuffer_get_length(in);

	if (s->ps_failed && s->ps_enforce[0])
		return; /* already judged; the input waits for the final 220 */
	if (s->srv->ps_greet_action == PS_IGNORE) {
		return;
	}
	size_t k = evbuffer_copyout(in, raw, n < sizeof(raw) ? n : sizeof(raw));
	log_printable(text, sizeof(text), raw, k);
	s->ps_failed = 1;
	log_info_as("postscreen", "PREGREET %zu after %.2f from %s: %s", n, mk_now() - s->t_connect,
		    s->ps_client, text);
	if (s->srv->ps_greet_action == PS_DROP) {
		session_reply(s, "521 5.5.1 %s Protocol error", s->srv->hostname);
		log_info_as("postscreen", "DISCONNECT %s", s->ps_client);
		session_quit(s);
		return;
	}
	snprintf(s->ps_enforce, sizeof(s->ps_enforce), "550 5.5.1 Protocol error");
}

struct ps_put_job {
	struct server *srv;
	char addr[64];
	int64_t until;
	int rc;
};

static void put_work(void *arg)
{
	struct ps_put_job *j = arg;

	j->rc = pscache_put(j->srv->store, j->addr, j->until);
}

static void put_done(void *arg)
{
	struct ps_put_job *j = arg;

	if (j->rc != 0)
		log_warn_as("postscreen", "postscreen cache: cannot record %s: %s", j->addr,
			    store_strerror(j->rc));
	free(j);
}

void postscreen_end(struct session *s)
{
	struct server *srv = s->srv;

	if (!s->ps_subject || !s->ps_fresh || s->ps_failed || !s->greet_over || s->ps_cached)
		return;
	s->ps_cached = 1;
	double ttl = srv->ps_greet_ttl;
	if (srv->ps_nsites > 0 && srv->ps_dnsbl_ttl < ttl)
		ttl = srv->ps_dnsbl_ttl;
	if (ttl <= 0)
		return;
	struct ps_put_job *j = xcalloc(1, sizeof(*j));
	j->srv = srv;
	mk_strlcpy(j->addr, s->addr, sizeof(j->addr));
	j->until = (int64_t)time(NULL) + (int64_t)ttl;
	job_submit(srv, put_work, put_done, j);
}
