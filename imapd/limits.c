/* limits — the connection policy and the authentication penalty for imapd
 * (see limits.h, lib/anvil.h and doc/imapd.md, "Limits under attack").
 *
 * Only connections that have not logged in count against a client: a
 * phone's five IDLE sessions are no threat, a thousand idle strangers are.
 * Those are kept in a small registry (fd, network, when it connected) under
 * a mutex, so the main thread can shut one down (shutdown(2) wakes the
 * session thread wherever it blocks: in the TLS handshake, a read, the
 * penalty's wait) without racing the thread's close: a session leaves the
 * registry before it closes its fd.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "imapd/limits.h"
#include "imapd/params.h"
#include "imapd/session.h"
#include "index/params.h"
#include "lib/anvil.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/util.h"
#include "lib/xmalloc.h"

struct conn {
	int fd;
	int stranger; /* counts in the strangers' slots */
	int counted;  /* counted in anvil (not logged in) */
	int doomed;   /* shut down by us: no longer a stranger */
	double t_connect;
	struct anvil_key key;
	int has_key;
	char ip[64];
	char net[64];
};

static struct {
	struct anvil_settings as;
	struct anvil *anvil;
	int count_limit, rate_limit, max_conns, reserve;
	double login_timeout, stress_timeout;
	char **mynetworks;
	size_t nmynetworks;
	pthread_mutex_t lock;
	struct conn *conns;
	size_t n, cap;
	int strangers;
} L = {.lock = PTHREAD_MUTEX_INITIALIZER};

int imap_limits_init(const struct common_params *common, const struct imapd_params *p, char *err,
		     size_t errsize)
{
	char path[1024], e[512];

	params_anvil_settings(common, &L.as);
	L.count_limit = (int)p->imap_client_connection_count_limit;
	L.rate_limit = (int)p->imap_client_connection_rate_limit;
	L.max_conns = (int)p->imap_max_connections;
	L.reserve = (int)p->imap_connection_reserve;
	if (L.reserve >= L.max_conns)
		L.reserve = L.max_conns / 2;
	L.login_timeout = p->imap_login_timeout;
	L.stress_timeout = p->imap_login_stress_timeout;
	L.mynetworks = common->mynetworks.item;
	L.nmynetworks = common->mynetworks.n;
	const char *rundir = common->run_directory;
	mk_mkdirs(rundir, 0755);
	snprintf(path, sizeof(path), "%s/anvil", rundir);
	if (anvil_open(path, &L.as, ANVIL_IMAPD, common->mail_owner, &L.anvil, e, sizeof(e)) < 0) {
		snprintf(err, errsize, "the connection table: %s", e);
		return -1;
	}
	return 0;
}

static int stressed(void)
{
	return L.strangers * 2 >= L.max_conns - L.reserve;
}

/* Under the lock: the registry entry of fd, or NULL. */
static struct conn *find(int fd)
{
	for (size_t i = 0; i < L.n; i++)
		if (L.conns[i].fd == fd)
			return &L.conns[i];
	return NULL;
}

/* Under the lock: c stops being a stranger (logged in, or shut down by us). */
static void unstranger(struct conn *c)
{
	if (c->stranger) {
		c->stranger = 0;
		L.strangers--;
	}
}

static void drop(struct conn *c, const char *why)
{
	log_info("%s: [%s]: %s", "anvil", c->ip, why);
	c->doomed = 1;
	unstranger(c);
	shutdown(c->fd, SHUT_RDWR);
}

static int same_key(const struct conn *a, const struct anvil_key *k)
{
	return a->has_key && memcmp(&a->key, k, sizeof(*k)) == 0;
}

/* Under the lock: the strangers' slots are full for a newcomer of key k
 * (NULL: a newcomer that is no stranger); shuts down the oldest connection
 * of the network with the most strangers, if it has more than k's. Returns
 * 1 if room was made. */
static int make_room(const struct anvil_key *k, const char *newcomer)
{
	size_t best = SIZE_MAX, best_n = 0, own_n = k != NULL ? 1 : 0;

	/* O(n^2) over at most imap_max_connections entries, only when full */
	for (size_t i = 0; i < L.n; i++) {
		struct conn *c = &L.conns[i];
		if (!c->stranger)
			continue;
		if (k != NULL && same_key(c, k))
			own_n++;
		size_t m = 0, oldest = i;
		for (size_t j = 0; j < L.n; j++) {
			struct conn *o = &L.conns[j];
			if (o->stranger && o->has_key == c->has_key &&
			    (!c->has_key || same_key(o, &c->key))) {
				m++;
				if (o->t_connect < L.conns[oldest].t_connect)
					oldest = j;
			}
		}
		if (m > best_n) {
			best_n = m;
			best = oldest;
		}
	}
	if (best == SIZE_MAX || best_n <= own_n)
		return 0;
	char why[300];
	anvil_event(L.anvil, ANVIL_EV_EVICTED);
	snprintf(why, sizeof(why),
		 "server full: closing the oldest connection not logged in of %s (%zu from %s) for "
		 "[%s]",
		 L.conns[best].ip, best_n, L.conns[best].net, newcomer);
	drop(&L.conns[best], why);
	return 1;
}

static void refuse(int fd, int tls, const char *ip, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void refuse(int fd, int tls, const char *ip, const char *fmt, ...)
{
	static const char bye[] =
	    "* BYE Too many connections from your network, try again later\r\n";
	char id[24], text[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	mk_queue_id(id, sizeof(id));
	/* fail2ban: see doc/fail2ban/mailkeep-imapd.conf */
	log_warn("%s: [%s]: %s", id, ip, text);
	if (!tls)
		(void)!write(fd, bye, sizeof(bye) - 1);
	anvil_event(L.anvil, ANVIL_EV_CONN_REFUSED);
	close(fd);
}

int imap_limits_accept(int fd, int implicit_tls, int active)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct conn c;
	struct anvil_client ac = {0};

	memset(&c, 0, sizeof(c));
	c.fd = fd;
	c.t_connect = mk_monotonic();
	mk_strlcpy(c.ip, "unknown", sizeof(c.ip));
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
		net_addr_str((struct sockaddr *)&ss, sl, c.ip, sizeof(c.ip));
	c.has_key = anvil_key_parse(c.ip, &L.as, &c.key) == 0;
	int exempt = net_cidr_match_list(c.ip, (const char *const *)L.mynetworks, L.nmynetworks);
	if (c.has_key) {
		anvil_key_str(&c.key, c.net, sizeof(c.net));
		anvil_connect(L.anvil, &c.key, &ac);
		c.counted = 1;
		if (!exempt && L.rate_limit > 0 && ac.rate > L.rate_limit) {
			anvil_disconnect(L.anvil, &c.key);
			refuse(fd, implicit_tls, c.ip,
			       "connection rate limit exceeded: %.0f from %s within %.0fs "
			       "(imap_client_connection_rate_limit=%d)",
			       ac.rate, c.net, L.as.rate_unit, L.rate_limit);
			return -1;
		}
		if (!exempt && L.count_limit > 0 && ac.conns > (unsigned)L.count_limit) {
			anvil_disconnect(L.anvil, &c.key);
			refuse(fd, implicit_tls, c.ip,
			       "connection concurrency limit exceeded: %u from %s "
			       "(imap_client_connection_count_limit=%d)",
			       ac.conns, c.net, L.count_limit);
			return -1;
		}
	}
	c.stranger = !exempt && !ac.known;
	pthread_mutex_lock(&L.lock);
	/* every connection is taken: a stranger waits, anyone else has a
	 * stranger's oldest connection make room */
	if (active >= L.max_conns && (c.stranger || !make_room(NULL, c.ip))) {
		pthread_mutex_unlock(&L.lock);
		if (c.counted)
			anvil_disconnect(L.anvil, &c.key);
		static const char bye[] = "* BYE Too many connections, try again later\r\n";
		if (!implicit_tls)
			(void)!write(fd, bye, sizeof(bye) - 1);
		close(fd);
		anvil_event(L.anvil, ANVIL_EV_CONN_REFUSED);
		log_warn("too many connections (%d): refused one from [%s]", L.max_conns, c.ip);
		return -1;
	}
	if (c.stranger && L.strangers + 1 > L.max_conns - L.reserve &&
	    !make_room(c.has_key ? &c.key : &(struct anvil_key){0}, c.ip)) {
		pthread_mutex_unlock(&L.lock);
		if (c.counted)
			anvil_disconnect(L.anvil, &c.key);
		refuse(fd, implicit_tls, c.ip,
		       "server full: %d connections not logged in from networks without a recent "
		       "login (imap_max_connections=%d, imap_connection_reserve=%d)",
		       L.strangers, L.max_conns, L.reserve);
		return -1;
	}
	if (L.n == L.cap) {
		L.cap = L.cap ? L.cap * 2 : 64;
		L.conns = xreallocarray(L.conns, L.cap, sizeof(*L.conns));
	}
	if (c.stranger)
		L.strangers++;
	L.conns[L.n++] = c;
	pthread_mutex_unlock(&L.lock);
	return 0;
}

void imap_limits_tick(void)
{
	double now = mk_monotonic();
	char why[200];

	pthread_mutex_lock(&L.lock);
	int stress = stressed();
	for (size_t i = 0; i < L.n; i++) {
		struct conn *c = &L.conns[i];
		if (!c->counted || c->doomed)
			continue;
		double limit = stress && c->stranger ? L.stress_timeout : L.login_timeout;
		if (now - c->t_connect < limit)
			continue;
		if (stress && c->stranger)
			anvil_event(L.anvil, ANVIL_EV_STRESS_TIMEOUT);
		snprintf(why, sizeof(why), "not logged in after %.0fs%s: disconnected", limit,
			 stress && c->stranger ? " (under stress)" : "");
		drop(c, why);
	}
	pthread_mutex_unlock(&L.lock);
}

void imap_limits_login(int fd)
{
	pthread_mutex_lock(&L.lock);
	struct conn *c = find(fd);
	if (c != NULL) {
		unstranger(c);
		if (c->counted) {
			anvil_disconnect(L.anvil, &c->key);
			c->counted = 0;
		}
	}
	pthread_mutex_unlock(&L.lock);
}

void imap_limits_close(int fd)
{
	pthread_mutex_lock(&L.lock);
	struct conn *c = find(fd);
	if (c != NULL) {
		unstranger(c);
		if (c->counted)
			anvil_disconnect(L.anvil, &c->key);
		*c = L.conns[--L.n];
	}
	pthread_mutex_unlock(&L.lock);
}

int imap_limits_auth_turn(const char *id, const char *ip, const char *proto, struct io *io,
			  const char *login, const char *method)
{
	struct anvil_key k;
	int has_key = anvil_key_parse(ip, &L.as, &k) == 0;
	double started = mk_monotonic();
	struct anvil_auth r;
	char plogin[128], net[64] = "";

	if (has_key)
		anvil_key_str(&k, net, sizeof(net));
	for (;;) {
		enum anvil_turn t = anvil_auth_begin(L.anvil, has_key ? &k : NULL, login,
						     mk_monotonic() - started, &r);
		if (t == ANVIL_GO)
			return 0;
		if (t == ANVIL_WAIT) {
			io_flush(io);
			double w = r.wait > 1 ? 1 : r.wait;
			usleep((useconds_t)(w * 1e6));
			continue;
		}
		anvil_event(L.anvil, ANVIL_EV_AUTH_REFUSED);
		log_printable(plogin, sizeof(plogin), login, strlen(login));
		/* fail2ban: the shape of a failed login */
		if (t == ANVIL_LOCKED)
			log_warn(
			    "%s: [%s]: %s authentication failed: method=%s, user=<%s>, refused: "
			    "locked out for %.0fs after %u failures",
			    id, ip, proto, method, plogin, r.locked_for, r.user_failures);
		else
			log_warn(
			    "%s: [%s]: %s authentication failed: method=%s, user=<%s>, refused: "
			    "too many attempts waiting (network %s: %u failures, user: %u)",
			    id, ip, proto, method, plogin, net, r.net_failures, r.user_failures);
		return -1;
	}
}

int imap_limits_auth_wait(struct session *s, const char *login, const char *method)
{
	if (imap_limits_auth_turn(s->id, s->ip, "IMAP", &s->io, login, method) == 0)
		return 0;
	sess_tagged(s, "NO", "[UNAVAILABLE] Too many failed logins, try again later.");
	return -1;
}

unsigned imap_limits_auth_done(const char *id, const char *ip, const char *login, int ok)
{
	struct anvil_key k;
	int has_key = anvil_key_parse(ip, &L.as, &k) == 0;
	struct anvil_auth r;
	char plogin[128], net[64] = "";

	anvil_auth_end(L.anvil, has_key ? &k : NULL, login, ok == 1, ok < 0, &r);
	if (ok == 0) {
		if (has_key)
			anvil_key_str(&k, net, sizeof(net));
		log_printable(plogin, sizeof(plogin), login, strlen(login));
		double pn = anvil_penalty(&L.as, r.net_failures),
		       pu = anvil_penalty(&L.as, r.user_failures);
		log_info(
		    "%s: [%s]: authentication penalty: %.0fs (network %s: %u failures; user <%s>: "
		    "%u failures%s)",
		    id, ip, pn > pu ? pn : pu, net, r.net_failures, plogin, r.user_failures,
		    r.locked_for > 0 ? ", now locked out" : "");
	}
	return r.net_failures;
}

unsigned imap_limits_auth_result(struct session *s, const char *login, int ok)
{
	return imap_limits_auth_done(s->id, s->ip, login, ok);
}
