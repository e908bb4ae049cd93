/* dir_ldap — users from an LDAP server (see index/dir_ldap.h).
 *
 * Shape of a call: look in the cache; on a miss take a connection from the
 * pool, connect (and bind as the reader) if it has none, send one synchronous
 * operation bounded by the timeout; if the server went away since the
 * connection was made, drop it and try once more on a fresh one. Whatever
 * fails after that is DIR_TEMPFAIL.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lber.h>
#include <ldap.h>

#include "index/dir_ldap.h"
#include "lib/log.h"
#include "lib/password.h"
#include "lib/util.h"

#define FILTER_MAX 4096
#define URI_MAX 4096
#define PASSWORD_MAX 1024
#define STORED_PASSWORD_MAX 1024
#define NOBODY_ID 65534
#define WARN_EVERY 10.0	     /* seconds between warnings while the server fails */
#define LIST_PAGE 200	     /* entries per page of `user list` */
#define LIST_PAGES_MAX 50000 /* a bound on pages, whatever the server says */

struct ldap_conn {
	LDAP *ld;
	int busy;
	int reader_bound; /* bound with the reader identity (not a user's) */
};

struct cache_entry {
	char key[DIR_NAME_MAX + 2]; /* kind letter + lower-cased key; "" = empty slot */
	double expires;		    /* monotonic seconds */
	enum dir_result result;	    /* DIR_OK or DIR_NOTFOUND */
	struct dir_user user;
};

struct ldap_dir {
	struct directory *dir; /* ours; dir_close() frees it after ldap_close() */

	/* settings, owned copies */
	char *uri; /* space-separated list, libldap tries them in order */
	char *search_base, *query_filter, *alias_attribute, *user_filter, *list_filter;
	char *result_attribute, *uid_attribute, *uidnumber_attribute, *gidnumber_attribute;
	char *quota_storage_attribute, *quota_messages_attribute; /* "" = none */
	char *password_attribute, *bind_dn, *bind_pw, *tls_ca_cert_file;
	int scope, bind, auth_bind, start_tls, tls_require_cert, version;
	int uses_tls; /* start_tls, or an ldaps:// server */
	double timeout, cache_ttl, negative_cache_ttl;

	pthread_mutex_t lock;	/* pool, error text, stats and the server's state below */
	int failing;		/* the last operation could not reach the server */
	double hold_until;	/* after a timeout: fail at once until then (monotonic) */
	double last_warn;	/* when a server failure was last logged */
	unsigned long unlogged; /* server failures not logged since */
	pthread_cond_t conn_free;
	struct ldap_conn *conns;
	int nconns;
	struct dir_ldap_stats stats;

	pthread_mutex_t cache_lock;
	struct cache_entry *cache;
	size_t cache_size;
};

/* ---- pure helpers: escaping and filter templates ---- */

int dir_ldap_escape(const char *value, size_t len, struct buf *out)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)value[i];
		int rc;

		if (c == '*' || c == '(' || c == ')' || c == '\\' || c == '\0')
			rc = buf_printf(out, "\\%02x", c);
		else
			rc = buf_append(out, &value[i], 1);
		if (rc < 0)
			return -1;
	}
	return 0;
}

int dir_ldap_expand(const char *template, const char *key, struct buf *out)
{
	const char *at = strrchr(key, '@');
	size_t keylen = strlen(key);
	int suppressed = 0;

	for (const char *p = template; *p != '\0'; p++) {
		if (*p != '%') {
			if (buf_append(out, p, 1) < 0)
				return -1;
			continue;
		}
		p++;
		switch (*p) {
		case '%':
			if (buf_append(out, "%", 1) < 0)
				return -1;
			break;
		case 's':
		case 'S':
			if (dir_ldap_escape(key, keylen, out) < 0)
				return -1;
			break;
		case 'u':
		case 'U':
			if (dir_ldap_escape(key, at != NULL ? (size_t)(at - key) : keylen, out) < 0)
				return -1;
			break;
		case 'd':
		case 'D':
			if (at == NULL)
				suppressed = 1;
			else if (dir_ldap_escape(at + 1, strlen(at + 1), out) < 0)
				return -1;
			break;
		default: /* includes the NUL after a trailing '%' */
			return -1;
		}
	}
	return suppressed;
}

/* ---- errors and stats ---- */

static void count(struct ldap_dir *d, unsigned long *counter)
{
	pthread_mutex_lock(&d->lock);
	(*counter)++;
	pthread_mutex_unlock(&d->lock);
}

static enum dir_result tempfail(struct ldap_dir *d, const char *what, const char *detail)
{
	char safe[200];

	log_printable(safe, sizeof safe, detail, strlen(detail));
	dir_set_error("LDAP %s: %s", what, safe);
	log_warn("ldap: %s: %s", what, safe);
	count(d, &d->stats.failures);
	return DIR_TEMPFAIL;
}

/* The server could not be reached or did not answer (rc) in a call begun at
 * started. While it stays so, one warning per WARN_EVERY seconds, not one per
 * call; after a slow failure (a timeout, an unreachable host), calls fail at
 * once for `timeout` seconds instead of each waiting as long again. */
static enum dir_result server_failed(struct ldap_dir *d, const char *what, int rc, double started)
{
	double now = mk_monotonic();
	unsigned long more = 0;
	int warn;

	pthread_mutex_lock(&d->lock);
	d->failing = 1;
	d->stats.failures++;
	if (rc == LDAP_TIMEOUT || now - started >= d->timeout / 2)
		d->hold_until = now + d->timeout;
	warn = now - d->last_warn >= WARN_EVERY || d->last_warn == 0;
	if (warn) {
		more = d->unlogged;
		d->unlogged = 0;
		d->last_warn = now;
	} else {
		d->unlogged++;
	}
	pthread_mutex_unlock(&d->lock);
	dir_set_error("LDAP %s: %s", what, ldap_err2string(rc));
	if (warn && more > 0)
		log_warn("ldap: %s: %s (and %lu more failures since the last warning)", what,
			 ldap_err2string(rc), more);
	else if (warn)
		log_warn("ldap: %s: %s", what, ldap_err2string(rc));
	return DIR_TEMPFAIL;
}

/* Returns 1 (with a DIR_TEMPFAIL error set) while calls are held back after a timeout. */
static int server_held(struct ldap_dir *d)
{
	double now = mk_monotonic();
	int held;

	pthread_mutex_lock(&d->lock);
	held = now < d->hold_until;
	if (held) {
		d->stats.failures++;
		d->unlogged++;
	}
	double wait = d->hold_until - now;
	pthread_mutex_unlock(&d->lock);
	if (held)
		dir_set_error("LDAP server did not answer within timeout; next try in %.1fs", wait);
	return held;
}

/* The server answered: say so once if it had not before. */
static void server_answered(struct ldap_dir *d)
{
	unsigned long failures = 0;
	int was_failing;

	pthread_mutex_lock(&d->lock);
	was_failing = d->failing;
	if (was_failing) {
		failures = d->unlogged;
		d->failing = 0;
		d->hold_until = 0;
		d->unlogged = 0;
		d->last_warn = 0;
	}
	pthread_mutex_unlock(&d->lock);
	if (was_failing && failures > 0)
		log_info("ldap: the server answers again (%lu failures were not logged)", failures);
	else if (was_failing)
		log_info("ldap: the server answers again");
}

/* Result codes that say the connection itself is gone or unusable. */
static int conn_broken(int rc)
{
	return rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR || rc == LDAP_TIMEOUT ||
	       rc == LDAP_UNAVAILABLE || rc == LDAP_BUSY || rc == LDAP_LOCAL_ERROR ||
	       rc == LDAP_ENCODING_ERROR || rc == LDAP_DECODING_ERROR || rc == LDAP_OTHER;
}

/* ---- the cache ---- */

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

/* Cache keys: a kind letter ('a' address, 'n' name) + the key in lower case
 * (mail and uid match case-insensitively in the standard schemas). */
static int cache_key(char kind, const char *key, char *out, size_t outsize)
{
	size_t n = strlen(key);

	if (n + 2 > outsize)
		return -1;
	out[0] = kind;
	for (size_t i = 0; i < n; i++)
		out[i + 1] = (char)tolower((unsigned char)key[i]);
	out[n + 1] = '\0';
	return 0;
}

static int cache_get(struct ldap_dir *d, const char *ckey, enum dir_result *result_r,
		     struct dir_user *user_r)
{
	int hit = 0;

	if (d->cache == NULL)
		return 0;
	pthread_mutex_lock(&d->cache_lock);
	struct cache_entry *e = &d->cache[fnv1a(ckey) % d->cache_size];
	if (e->key[0] != '\0' && strcmp(e->key, ckey) == 0) {
		if (mk_monotonic() < e->expires) {
			*result_r = e->result;
			if (e->result == DIR_OK && user_r != NULL)
				*user_r = e->user;
			hit = 1;
			d->stats
			    .cache_hits++; /* cache_lock also covers this counter's writes here */
		} else {
			e->key[0] = '\0';
		}
	}
	pthread_mutex_unlock(&d->cache_lock);
	return hit;
}

static void cache_put(struct ldap_dir *d, const char *ckey, enum dir_result result,
		      const struct dir_user *user)
{
	double ttl = result == DIR_OK ? d->cache_ttl : d->negative_cache_ttl;

	if (d->cache == NULL || ttl <= 0 || (result != DIR_OK && result != DIR_NOTFOUND))
		return;
	pthread_mutex_lock(&d->cache_lock);
	struct cache_entry *e = &d->cache[fnv1a(ckey) % d->cache_size];
	mk_strlcpy(e->key, ckey, sizeof e->key);
	e->expires = mk_monotonic() + ttl;
	e->result = result;
	if (result == DIR_OK)
		e->user = *user;
	else
		memset(&e->user, 0, sizeof e->user);
	pthread_mutex_unlock(&d->cache_lock);
}

/* ---- connections ---- */

static void conn_give(struct ldap_dir *d, struct ldap_conn *c)
{
	pthread_mutex_lock(&d->lock);
	c->busy = 0;
	pthread_cond_signal(&d->conn_free);
	pthread_mutex_unlock(&d->lock);
}

/* Takes a free connection, waiting for one at most until `timeout` seconds
 * after started (a call began then): with a frozen server every connection
 * is held by a call that waits for its own timeout, and a queue behind them
 * must not wait its turn for as long again each. Once it has a connection,
 * it looks again at the server's state: if a call that held it ended in a
 * timeout meanwhile, this one fails at once too (the hold). Returns NULL,
 * with a DIR_TEMPFAIL error set, when it waited too long or the server is
 * held. */
static struct ldap_conn *conn_take(struct ldap_dir *d, double started)
{
	struct ldap_conn *c = NULL;
	double deadline = started + d->timeout;
	int timed_out = 0;

	pthread_mutex_lock(&d->lock);
	for (;;) {
		/* prefer a connection that is already open */
		for (int i = 0; i < d->nconns; i++) {
			if (!d->conns[i].busy &&
			    (c == NULL || (c->ld == NULL && d->conns[i].ld != NULL)))
				c = &d->conns[i];
		}
		if (c != NULL)
			break;
		double now = mk_monotonic();
		if (now >= deadline) {
			timed_out = 1;
			break;
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		double wait = deadline - now;
		ts.tv_sec += (time_t)wait;
		ts.tv_nsec += (long)((wait - (double)(time_t)wait) * 1e9);
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&d->conn_free, &d->lock, &ts);
	}
	if (c != NULL)
		c->busy = 1;
	if (timed_out) {
		d->stats.failures++;
		d->unlogged++;
	}
	pthread_mutex_unlock(&d->lock);
	if (timed_out) {
		dir_set_error(
		    "LDAP: all %d connections stayed busy for %.0fs (the server answers slowly "
		    "or not at all)",
		    d->nconns, d->timeout);
		return NULL;
	}
	if (server_held(d)) {
		conn_give(d, c);
		return NULL;
	}
	return c;
}

static void conn_drop(struct ldap_conn *c)
{
	if (c->ld != NULL)
		ldap_unbind_ext_s(c->ld, NULL, NULL);
	c->ld = NULL;
	c->reader_bound = 0;
}

static struct timeval timeval_of(double seconds)
{
	struct timeval tv;

	tv.tv_sec = (time_t)seconds;
	tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
	if (tv.tv_sec == 0 && tv.tv_usec == 0)
		tv.tv_sec = 1;
	return tv;
}

static int simple_bind(struct ldap_dir *d, LDAP *ld, const char *dn, const char *pw)
{
	struct berval cred;

	cred.bv_val = (char *)pw;
	cred.bv_len = strlen(pw);
	count(d, &d->stats.binds);
	return ldap_sasl_bind_s(ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
}

/* Makes sure c is connected and bound as the reader. Returns an LDAP result
 * code; on failure the connection is dropped and *what_r says which step. */
static int conn_ready(struct ldap_dir *d, struct ldap_conn *c, const char **what_r)
{
	struct timeval tv = timeval_of(d->timeout);
	int rc, opt;

	if (c->ld != NULL && c->reader_bound)
		return LDAP_SUCCESS;
	if (c->ld == NULL) {
		*what_r = "connect";
		rc = ldap_initialize(&c->ld, d->uri);
		if (rc != LDAP_SUCCESS) {
			c->ld = NULL;
			return rc;
		}
		count(d, &d->stats.connects);
		opt = d->version;
		ldap_set_option(c->ld, LDAP_OPT_PROTOCOL_VERSION, &opt);
		ldap_set_option(c->ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
		ldap_set_option(c->ld, LDAP_OPT_RESTART, LDAP_OPT_ON);
		ldap_set_option(c->ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
		ldap_set_option(c->ld, LDAP_OPT_TIMEOUT, &tv);
		if (d->uses_tls) { /* a TLS context of this handle's own: TLS 1.2+, our CA, verified
				    */
			opt = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2;
			ldap_set_option(c->ld, LDAP_OPT_X_TLS_PROTOCOL_MIN, &opt);
			opt = d->tls_require_cert ? LDAP_OPT_X_TLS_DEMAND : LDAP_OPT_X_TLS_NEVER;
			ldap_set_option(c->ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &opt);
			if (d->tls_ca_cert_file[0] != '\0')
				ldap_set_option(c->ld, LDAP_OPT_X_TLS_CACERTFILE,
						d->tls_ca_cert_file);
			opt = 0;
			rc = ldap_set_option(c->ld, LDAP_OPT_X_TLS_NEWCTX, &opt);
			if (rc != LDAP_OPT_SUCCESS) {
				*what_r = "TLS set-up (tls_ca_cert_file?)";
				rc = LDAP_LOCAL_ERROR;
				goto fail;
			}
		}
		if (d->start_tls) {
			*what_r = "STARTTLS";
			rc = ldap_start_tls_s(c->ld, NULL, NULL);
			if (rc != LDAP_SUCCESS)
				goto fail;
		}
	}
	*what_r = "bind";
	if (d->bind && d->bind_dn[0] != '\0')
		rc = simple_bind(d, c->ld, d->bind_dn, d->bind_pw);
	else if (c->reader_bound == 0 && c->ld != NULL)
		rc = simple_bind(d, c->ld, "", ""); /* anonymous; also undoes a user's bind */
	else
		rc = LDAP_SUCCESS;
	if (rc != LDAP_SUCCESS)
		goto fail;
	c->reader_bound = 1;
	return LDAP_SUCCESS;
fail:
	conn_drop(c);
	return rc;
}

/* ---- searching ---- */

static int valid_user_name(const char *s)
{
	if (s[0] == '\0' || s[0] == '.' || strlen(s) >= DIR_NAME_MAX)
		return 0;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '/')
			return 0;
	}
	return 1;
}

/* Copies the first value of attr into out; returns 1 if there was one that
 * fits, 0 if none, -1 if too long or containing a NUL. */
static int first_value(LDAP *ld, LDAPMessage *entry, const char *attr, char *out, size_t outsize)
{
	struct berval **vals = ldap_get_values_len(ld, entry, attr);
	int ret = 0;

	out[0] = '\0';
	if (vals != NULL && vals[0] != NULL) {
		if (vals[0]->bv_len >= outsize ||
		    memchr(vals[0]->bv_val, '\0', vals[0]->bv_len) != NULL) {
			ret = -1;
		} else {
			memcpy(out, vals[0]->bv_val, vals[0]->bv_len);
			out[vals[0]->bv_len] = '\0';
			ret = 1;
		}
	}
	ldap_value_free_len(vals);
	return ret;
}

static id_t id_value(struct ldap_dir *d, LDAP *ld, LDAPMessage *entry, const char *attr,
		     const char *dn)
{
	char text[32];
	uint64_t v;

	if (first_value(ld, entry, attr, text, sizeof text) == 1 &&
	    mk_parse_u64(text, 0, 0xfffffffeULL, &v) == 0)
		return (id_t)v;
	log_warn("ldap: %s has no usable %s, using %d", dn, attr, NOBODY_ID);
	(void)d;
	return NOBODY_ID;
}

/* A quota attribute's value: bytes or a count, with an optional k, m, g, t
 * (1024-based). 1 with *v_r, or 0 when there is none (or it is unusable:
 * logged; the default applies). */
static int quota_value(LDAP *ld, LDAPMessage *entry, const char *attr, const char *dn, uint64_t *v_r)
{
	char text[32], *end;
	if (attr == NULL || attr[0] == '\0' || first_value(ld, entry, attr, text, sizeof text) != 1)
		return 0;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	int shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	}
	if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || v > (UINT64_MAX >> shift)) {
		log_warn("ldap: %s has an unusable %s (\"%s\"): the default quota applies", dn, attr, text);
		return 0;
	}
	*v_r = (uint64_t)v << shift;
	return 1;
}

/* The attributes a user's entry is read with (the quota ones when set). */
static void user_attrs(struct ldap_dir *d, char *attrs[7])
{
	size_t n = 0;
	attrs[n++] = d->uid_attribute;
	attrs[n++] = d->result_attribute;
	attrs[n++] = d->uidnumber_attribute;
	attrs[n++] = d->gidnumber_attribute;
	if (d->quota_storage_attribute[0] != '\0')
		attrs[n++] = d->quota_storage_attribute;
	if (d->quota_messages_attribute[0] != '\0')
		attrs[n++] = d->quota_messages_attribute;
	attrs[n] = NULL;
}

/* Fills user from an entry. Returns 0, or -1 with a reason in why. */
static int entry_to_user(struct ldap_dir *d, LDAP *ld, LDAPMessage *entry, struct dir_user *user,
			 char *why, size_t whysize)
{
	char *dn = ldap_get_dn(ld, entry);
	int ret = -1;

	memset(user, 0, sizeof *user);
	if (dn == NULL) {
		snprintf(why, whysize, "entry without a DN");
		goto fail;
	}
	if (mk_strlcpy(user->dn, dn, sizeof user->dn) >= sizeof user->dn) {
		snprintf(why, whysize, "DN too long");
		goto fail;
	}
	if (first_value(ld, entry, d->uid_attribute, user->name, sizeof user->name) != 1 ||
	    !valid_user_name(user->name)) {
		snprintf(why, whysize, "%.200s has no usable %s", dn, d->uid_attribute);
		goto fail;
	}
	if (first_value(ld, entry, d->result_attribute, user->mail, sizeof user->mail) < 0) {
		snprintf(why, whysize, "%.200s has an unusable %s", dn, d->result_attribute);
		goto fail;
	}
	user->uid = (uid_t)id_value(d, ld, entry, d->uidnumber_attribute, user->dn);
	user->gid = (gid_t)id_value(d, ld, entry, d->gidnumber_attribute, user->dn);
	user->quota_known = d->quota_storage_attribute[0] != '\0' || d->quota_messages_attribute[0] != '\0';
	if (quota_value(ld, entry, d->quota_storage_attribute, user->dn, &user->quota_storage))
		user->has_quota |= 1;
	if (quota_value(ld, entry, d->quota_messages_attribute, user->dn, &user->quota_messages))
		user->has_quota |= 2;
	ret = 0;
fail:
	ldap_memfree(dn);
	return ret;
}

/* One synchronous search on a ready connection. If *c_io is NULL a connection
 * is taken from the pool, and the search is retried once on a fresh connection
 * if the kept one turns out to be dead; else *c_io is used as it is (a next
 * page). With page_cookie, a paged-results control (RFC 2696) asks for
 * LIST_PAGE entries after that cookie. On success *res_r holds the result (the
 * caller frees it with ldap_msgfree) and *c_io the connection, still taken
 * (the caller gives it back). On failure the connection is given back and
 * *c_io is NULL; DIR_NOTFOUND (connection given back too) when a base-scope
 * search names an entry that does not exist. */
static enum dir_result search(struct ldap_dir *d, const char *base, int scope, const char *filter,
			      char **attrs, int sizelimit, struct berval *page_cookie,
			      struct ldap_conn **c_io, LDAPMessage **res_r)
{
	int next_page = *c_io != NULL;
	struct ldap_conn *c;
	struct timeval tv = timeval_of(d->timeout);
	const char *what = "search";
	int rc = LDAP_OTHER;
	double started = mk_monotonic();

	*res_r = NULL;
	if (!next_page && server_held(d))
		return DIR_TEMPFAIL;
	c = next_page ? *c_io : conn_take(d, started);
	*c_io = NULL;
	if (c == NULL)
		return DIR_TEMPFAIL;
	for (int attempt = 0; attempt < 2; attempt++) {
		int was_open = c->ld != NULL;

		rc = next_page ? LDAP_SUCCESS : conn_ready(d, c, &what);
		if (rc == LDAP_SUCCESS) {
			LDAPControl *page = NULL, *ctrls[2] = {NULL, NULL};

			what = "search";
			if (page_cookie != NULL) {
				rc = ldap_create_page_control(c->ld, LIST_PAGE, page_cookie, 0,
							      &page);
				if (rc != LDAP_SUCCESS)
					break;
				ctrls[0] = page;
			}
			count(d, &d->stats.searches);
			rc = ldap_search_ext_s(c->ld, base, scope, filter, attrs, 0,
					       page != NULL ? ctrls : NULL, NULL, &tv, sizelimit,
					       res_r);
			ldap_control_free(page);
			if (rc == LDAP_SUCCESS || rc == LDAP_SIZELIMIT_EXCEEDED) {
				*c_io = c;
				server_answered(d);
				return rc == LDAP_SUCCESS ? DIR_OK : DIR_ERROR;
			}
			ldap_msgfree(*res_r);
			*res_r = NULL;
			if (rc == LDAP_NO_SUCH_OBJECT && scope == LDAP_SCOPE_BASE) {
				/* an entry read by its DN is gone: an answer, not a failure */
				conn_give(d, c);
				server_answered(d);
				return DIR_NOTFOUND;
			}
			if (!conn_broken(rc))
				break;
			conn_drop(c);
		}
		/* a fresh connection failed: the server is really unavailable; a
		 * timeout says the server is slow, not that the kept connection died */
		if (!was_open || next_page || rc == LDAP_TIMEOUT)
			break;
	}
	/* the server's state first, then the connection: a call waiting for it
	 * must see the hold (conn_take) */
	enum dir_result r = server_failed(d, what, rc, started);
	conn_give(d, c);
	return r;
}

/* Searches for exactly one user with filter. */
static enum dir_result find_user(struct ldap_dir *d, const char *filter, struct dir_user *user_r)
{
	char *attrs[7];
	user_attrs(d, attrs);
	struct ldap_conn *c = NULL;
	LDAPMessage *res = NULL, *entry;
	char why[300];
	enum dir_result r;
	int n;

	r = search(d, d->search_base, d->scope, filter, attrs, 2, NULL, &c, &res);
	if (r == DIR_TEMPFAIL)
		return r;
	if (r == DIR_ERROR) { /* size limit: more than one entry */
		ldap_msgfree(res);
		conn_give(d, c);
		return tempfail(d, "lookup",
				"more than one entry matches; fix the directory or query_filter");
	}
	n = ldap_count_entries(c->ld, res);
	if (n == 0) {
		r = DIR_NOTFOUND;
	} else if (n > 1) {
		r = DIR_ERROR;
		snprintf(why, sizeof why,
			 "more than one entry matches; fix the directory or query_filter");
	} else {
		entry = ldap_first_entry(c->ld, res);
		r = entry_to_user(d, c->ld, entry, user_r, why, sizeof why) == 0 ? DIR_OK
										 : DIR_ERROR;
	}
	ldap_msgfree(res);
	conn_give(d, c);
	if (r == DIR_ERROR)
		return tempfail(d, "lookup", why);
	return r;
}

/* Looks key up with a template, through the cache. */
static enum dir_result lookup(struct ldap_dir *d, char kind, const char *key,
			      struct dir_user *user_r)
{
	char ckey[DIR_NAME_MAX + 2];
	struct dir_user user;
	struct buf filter;
	enum dir_result r;
	int rc;

	if (key == NULL || key[0] == '\0' || strlen(key) >= DIR_NAME_MAX)
		return DIR_NOTFOUND;
	cache_key(kind, key, ckey, sizeof ckey);
	if (cache_get(d, ckey, &r, &user)) {
		if (r == DIR_OK && user_r != NULL)
			*user_r = user;
		return r;
	}

	buf_init(&filter, FILTER_MAX);
	if (kind == 'a' && d->alias_attribute[0] != '\0') {
		rc = buf_append_str(&filter, "(|");
		if (rc == 0)
			rc = dir_ldap_expand(d->query_filter, key, &filter);
		if (rc >= 0 && buf_printf(&filter, "(%s=", d->alias_attribute) == 0 &&
		    dir_ldap_escape(key, strlen(key), &filter) == 0 &&
		    buf_append_str(&filter, "))") == 0)
			rc = 0; /* the alias attribute still matches when %d suppresses query_filter
				 */
		else
			rc = -1;
	} else {
		rc = dir_ldap_expand(kind == 'a' ? d->query_filter : d->user_filter, key, &filter);
	}
	if (rc < 0) {
		r = DIR_ERROR;
		dir_set_error("LDAP filter too long or invalid");
	} else if (rc == 1) {
		r = DIR_NOTFOUND;
	} else {
		r = find_user(d, filter.data, &user);
	}
	buf_free(&filter);
	cache_put(d, ckey, r, &user);
	if (r == DIR_OK && user_r != NULL)
		*user_r = user;
	return r;
}

static struct ldap_dir *impl_of(struct directory *dir)
{
	return (struct ldap_dir *)dir->impl;
}

static enum dir_result ldap_lookup_address(struct directory *dir, const char *address,
					   struct dir_user *user_r)
{
	return lookup(impl_of(dir), 'a', address, user_r);
}

static enum dir_result ldap_get_user(struct directory *dir, const char *name,
				     struct dir_user *user_r)
{
	return lookup(impl_of(dir), 'n', name, user_r);
}

/* ---- authentication ---- */

/* Binds as the user's DN on a pooled connection (which must then bind as the
 * reader again before its next search). */
static enum dir_result auth_by_bind(struct ldap_dir *d, const struct dir_user *user,
				    const char *password)
{
	struct ldap_conn *c;
	const char *what = "bind";
	int rc = LDAP_OTHER;
	double started = mk_monotonic();

	if (server_held(d))
		return DIR_TEMPFAIL;
	c = conn_take(d, started);
	if (c == NULL)
		return DIR_TEMPFAIL;

	for (int attempt = 0; attempt < 2; attempt++) {
		int was_open = c->ld != NULL;

		rc = conn_ready(d, c, &what);
		if (rc == LDAP_SUCCESS) {
			what = "user bind";
			c->reader_bound = 0;
			rc = simple_bind(d, c->ld, user->dn, password);
			if (rc == LDAP_SUCCESS || rc == LDAP_INVALID_CREDENTIALS ||
			    rc == LDAP_INAPPROPRIATE_AUTH) {
				conn_give(d, c);
				server_answered(d);
				return rc == LDAP_SUCCESS ? DIR_OK : DIR_BADPASS;
			}
			conn_drop(c);
			if (!conn_broken(rc))
				break;
		}
		if (!was_open || rc == LDAP_TIMEOUT)
			break;
	}
	/* the server's state first, then the connection: a call waiting for it
	 * must see the hold (conn_take) */
	enum dir_result r = server_failed(d, what, rc, started);
	conn_give(d, c);
	return r;
}

/* Reads the password attribute with the reader's rights and verifies it. */
static enum dir_result auth_by_compare(struct ldap_dir *d, const struct dir_user *user,
				       const char *password)
{
	char *attrs[] = {d->password_attribute, NULL};
	struct ldap_conn *c = NULL;
	LDAPMessage *res = NULL, *entry;
	struct berval **vals = NULL;
	enum dir_result r;

	r = search(d, user->dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 1, NULL, &c, &res);
	if (r == DIR_TEMPFAIL || r == DIR_NOTFOUND)
		return r; /* NOTFOUND: deleted since the (cached) lookup */
	r = DIR_BADPASS;
	entry = res != NULL ? ldap_first_entry(c->ld, res) : NULL;
	if (entry == NULL) {
		r = DIR_NOTFOUND; /* gone since the lookup */
		goto done;
	}
	vals = ldap_get_values_len(c->ld, entry, d->password_attribute);
	for (size_t i = 0; vals != NULL && vals[i] != NULL; i++) {
		char stored[STORED_PASSWORD_MAX];

		if (vals[i]->bv_len == 0 || vals[i]->bv_len >= sizeof stored ||
		    memchr(vals[i]->bv_val, '\0', vals[i]->bv_len) != NULL)
			continue;
		memcpy(stored, vals[i]->bv_val, vals[i]->bv_len);
		stored[vals[i]->bv_len] = '\0';
		if (password_verify(password, stored) == 1)
			r = DIR_OK;
		explicit_bzero(stored, sizeof stored);
		if (r == DIR_OK)
			break;
	}
	if (vals == NULL)
		log_warn("ldap: cannot read %s of %s: does bind_dn have the right to read it?",
			 d->password_attribute, user->dn);
done:
	ldap_value_free_len(vals);
	ldap_msgfree(res);
	conn_give(d, c);
	return r;
}

static enum dir_result ldap_authenticate(struct directory *dir, const char *login,
					 const char *password, struct dir_user *user_r)
{
	struct ldap_dir *d = impl_of(dir);
	struct dir_user user;
	enum dir_result r;

	/* RFC 4513 5.1.2: a DN with an empty password is an unauthenticated bind,
	 * which some servers accept. Never let it near the server. */
	if (password == NULL || password[0] == '\0' || strlen(password) >= PASSWORD_MAX)
		return DIR_BADPASS;
	if (login == NULL)
		return DIR_NOTFOUND;
	r = strchr(login, '@') != NULL ? lookup(d, 'a', login, &user)
				       : lookup(d, 'n', login, &user);
	if (r != DIR_OK)
		return r;
	r = d->auth_bind ? auth_by_bind(d, &user, password) : auth_by_compare(d, &user, password);
	if (r == DIR_OK && user_r != NULL)
		*user_r = user;
	return r;
}

/* ---- listing ---- */

/* Every user, a page at a time (RFC 2696 paged results), so a server's size
 * limit (slapd's default: 500) does not cut the list short. */
static enum dir_result ldap_list(struct directory *dir,
				 int (*cb)(const struct dir_user *user, void *ctx), void *ctx)
{
	struct ldap_dir *d = impl_of(dir);
	char *attrs[7];
	user_attrs(d, attrs);
	struct ldap_conn *c = NULL;
	struct berval cookie = {0, NULL};
	enum dir_result r;
	int stop = 0;

	for (int pages = 0; !stop; pages++) {
		LDAPMessage *res = NULL;
		LDAPControl **rctrls = NULL, *resp;
		int err = LDAP_SUCCESS;

		r = search(d, d->search_base, d->scope, d->list_filter, attrs, 0, &cookie, &c,
			   &res);
		ber_memfree(cookie.bv_val);
		cookie.bv_val = NULL;
		cookie.bv_len = 0;
		if (r == DIR_TEMPFAIL)
			return r;
		if (r == DIR_ERROR)
			log_warn("ldap: the server's size limit cut the user list short");
		for (LDAPMessage *e = ldap_first_entry(c->ld, res); e != NULL && !stop;
		     e = ldap_next_entry(c->ld, e)) {
			struct dir_user user;
			char why[300];

			if (entry_to_user(d, c->ld, e, &user, why, sizeof why) < 0) {
				log_warn("ldap: skipped in list: %s", why);
				continue;
			}
			stop = cb(&user, ctx) != 0;
		}
		/* the next page's cookie; none (or a server without paging) ends the list */
		if (!stop &&
		    ldap_parse_result(c->ld, res, &err, NULL, NULL, NULL, &rctrls, 0) ==
			LDAP_SUCCESS &&
		    (resp = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, rctrls, NULL)) != NULL) {
			ber_int_t estimate;

			if (ldap_parse_pageresponse_control(c->ld, resp, &estimate, &cookie) !=
			    LDAP_SUCCESS) {
				cookie.bv_val = NULL;
				cookie.bv_len = 0;
			}
		}
		ldap_controls_free(rctrls);
		ldap_msgfree(res);
		if (cookie.bv_len == 0 || pages >= LIST_PAGES_MAX)
			stop = 1;
		if (stop) {
			conn_give(d, c);
			c = NULL;
		}
	}
	ber_memfree(cookie.bv_val);
	return DIR_OK;
}

/* ---- opening and closing ---- */

/* Frees everything but dir itself, which dir_close() frees. */
static void ldap_close(struct directory *dir)
{
	struct ldap_dir *d = impl_of(dir);

	for (int i = 0; i < d->nconns; i++)
		conn_drop(&d->conns[i]);
	free(d->conns);
	free(d->cache);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->conn_free);
	pthread_mutex_destroy(&d->cache_lock);
	if (d->bind_pw != NULL)
		explicit_bzero(d->bind_pw, strlen(d->bind_pw));
	char **strs[] = {&d->uri,
			 &d->search_base,
			 &d->query_filter,
			 &d->alias_attribute,
			 &d->user_filter,
			 &d->list_filter,
			 &d->result_attribute,
			 &d->uid_attribute,
			 &d->uidnumber_attribute,
			 &d->gidnumber_attribute,
			 &d->quota_storage_attribute,
			 &d->quota_messages_attribute,
			 &d->password_attribute,
			 &d->bind_dn,
			 &d->bind_pw,
			 &d->tls_ca_cert_file};
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
		free(*strs[i]);
	free(d);
}

static const struct directory_ops ldap_ops = {
    .name = "ldap",
    .lookup_address = ldap_lookup_address,
    .get_user = ldap_get_user,
    .authenticate = ldap_authenticate,
    .list = ldap_list,
    .close = ldap_close,
};

void dir_ldap_get_stats(struct directory *dir, struct dir_ldap_stats *st)
{
	memset(st, 0, sizeof *st);
	if (dir == NULL || dir->ops != &ldap_ops)
		return;
	struct ldap_dir *d = impl_of(dir);
	pthread_mutex_lock(&d->lock);
	pthread_mutex_lock(&d->cache_lock);
	*st = d->stats;
	pthread_mutex_unlock(&d->cache_lock);
	pthread_mutex_unlock(&d->lock);
}

static char *xstrdup(const char *s)
{
	char *p = strdup(s != NULL ? s : "");

	if (p == NULL)
		log_fatal("out of memory");
	return p;
}

/* Turns the server_host list into libldap's space-separated URL list. */
static int build_uri(const struct ldap_settings *s, struct buf *uri, char *err, size_t errsize)
{
	for (size_t i = 0; i < s->server_host_count; i++) {
		const char *h = s->server_host[i];
		int rc;

		if (h[0] == '\0')
			continue;
		for (const char *p = h; *p != '\0'; p++) {
			if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p)) {
				snprintf(err, errsize, "server_host: bad item \"%.100s\"", h);
				return -1;
			}
		}
		if (uri->len > 0 && buf_append_str(uri, " ") < 0)
			goto toolong;
		if (strstr(h, "://") != NULL) {
			if (strncmp(h, "ldap://", 7) != 0 && strncmp(h, "ldaps://", 8) != 0 &&
			    strncmp(h, "ldapi://", 8) != 0) {
				snprintf(err, errsize,
					 "server_host: \"%.100s\" is not an ldap://, ldaps:// or "
					 "ldapi:// URL",
					 h);
				return -1;
			}
			rc = buf_append_str(uri, h);
		} else if (strchr(h, ':') != NULL && h[0] != '[') {
			rc = buf_printf(uri, "ldap://%s", h);
		} else {
			rc = buf_printf(uri, "ldap://%s:%d", h, s->server_port);
		}
		if (rc < 0)
			goto toolong;
	}
	if (uri->len == 0) {
		snprintf(err, errsize, "server_host is empty: name at least one LDAP server");
		return -1;
	}
	return 0;
toolong:
	snprintf(err, errsize, "server_host: list too long");
	return -1;
}

static int check_template(const char *name, const char *tmpl, char *err, size_t errsize)
{
	struct buf b;
	int rc;

	buf_init(&b, FILTER_MAX);
	rc = dir_ldap_expand(tmpl, "user@example.org", &b);
	buf_free(&b);
	if (rc < 0) {
		snprintf(err, errsize,
			 "%s: only %%s, %%u, %%d and %%%% may follow a %%: \"%.100s\"", name, tmpl);
		return -1;
	}
	if (tmpl[0] != '(') {
		snprintf(err, errsize, "%s: an LDAP filter starts with '(': \"%.100s\"", name,
			 tmpl);
		return -1;
	}
	return 0;
}

static int valid_attribute(const char *name, const char *v, int may_be_empty, char *err,
			   size_t errsize)
{
	if (v == NULL || v[0] == '\0') {
		if (may_be_empty)
			return 0;
		snprintf(err, errsize, "%s must name an LDAP attribute", name);
		return -1;
	}
	for (const char *p = v; *p != '\0'; p++) {
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != ';' && *p != '.') {
			snprintf(err, errsize, "%s: \"%.100s\" is not an attribute name", name, v);
			return -1;
		}
	}
	return 0;
}

struct directory *dir_ldap_open(const struct ldap_settings *s, char *err, size_t errsize)
{
	struct ldap_dir *d = NULL;
	struct buf uri;
	int scope, v;

	buf_init(&uri, URI_MAX);
	if (build_uri(s, &uri, err, errsize) < 0)
		goto fail;
	if (s->search_base == NULL || s->search_base[0] == '\0') {
		snprintf(err, errsize,
			 "search_base is empty: name the subtree that holds the users");
		goto fail;
	}
	if (s->scope == NULL || strcmp(s->scope, "sub") == 0)
		scope = LDAP_SCOPE_SUBTREE;
	else if (strcmp(s->scope, "one") == 0)
		scope = LDAP_SCOPE_ONELEVEL;
	else if (strcmp(s->scope, "base") == 0)
		scope = LDAP_SCOPE_BASE;
	else {
		snprintf(err, errsize, "scope: \"%.50s\" is not sub, one or base", s->scope);
		goto fail;
	}
	if (s->version != 2 && s->version != 3) {
		snprintf(err, errsize, "version: must be 2 or 3");
		goto fail;
	}
	if (s->start_tls && s->version != 3) {
		snprintf(err, errsize, "start_tls needs version = 3");
		goto fail;
	}
	if (!(s->timeout > 0) || s->timeout > 3600 || !(s->cache_ttl >= 0) ||
	    !(s->negative_cache_ttl >= 0) || s->max_connections < 1 || s->max_connections > 64) {
		snprintf(err, errsize, "timeout, cache TTLs or max_connections out of range");
		goto fail;
	}
	if (check_template("query_filter", s->query_filter, err, errsize) < 0 ||
	    check_template("user_filter", s->user_filter, err, errsize) < 0 ||
	    check_template("list_filter", s->list_filter, err, errsize) < 0 ||
	    valid_attribute("alias_attribute", s->alias_attribute, 1, err, errsize) < 0 ||
	    valid_attribute("result_attribute", s->result_attribute, 0, err, errsize) < 0 ||
	    valid_attribute("uid_attribute", s->uid_attribute, 0, err, errsize) < 0 ||
	    valid_attribute("uidnumber_attribute", s->uidnumber_attribute, 0, err, errsize) < 0 ||
	    valid_attribute("gidnumber_attribute", s->gidnumber_attribute, 0, err, errsize) < 0 ||
	    valid_attribute("quota_storage_attribute", s->quota_storage_attribute, 1, err, errsize) < 0 ||
	    valid_attribute("quota_messages_attribute", s->quota_messages_attribute, 1, err, errsize) < 0 ||
	    valid_attribute("password_attribute", s->password_attribute, s->auth_bind, err,
			    errsize) < 0)
		goto fail;
	if (!s->auth_bind && (!s->bind || s->bind_dn == NULL || s->bind_dn[0] == '\0')) {
		snprintf(err, errsize,
			 "auth_bind = no needs bind = yes and a bind_dn that may read %s",
			 s->password_attribute);
		goto fail;
	}

	/* libldap's global options are set up on first use: do it here, in one thread. */
	ldap_get_option(NULL, LDAP_OPT_PROTOCOL_VERSION, &v);

	d = calloc(1, sizeof *d);
	if (d == NULL)
		log_fatal("out of memory");
	d->uri = xstrdup(uri.data);
	d->search_base = xstrdup(s->search_base);
	d->query_filter = xstrdup(s->query_filter);
	d->alias_attribute = xstrdup(s->alias_attribute);
	d->user_filter = xstrdup(s->user_filter);
	d->list_filter = xstrdup(s->list_filter);
	d->result_attribute = xstrdup(s->result_attribute);
	d->uid_attribute = xstrdup(s->uid_attribute);
	d->uidnumber_attribute = xstrdup(s->uidnumber_attribute);
	d->gidnumber_attribute = xstrdup(s->gidnumber_attribute);
	d->quota_storage_attribute = xstrdup(s->quota_storage_attribute ? s->quota_storage_attribute : "");
	d->quota_messages_attribute = xstrdup(s->quota_messages_attribute ? s->quota_messages_attribute : "");
	d->password_attribute = xstrdup(s->password_attribute);
	d->bind_dn = xstrdup(s->bind ? s->bind_dn : "");
	d->bind_pw = xstrdup(s->bind ? s->bind_pw : "");
	d->tls_ca_cert_file = xstrdup(s->tls_ca_cert_file);
	d->scope = scope;
	d->bind = s->bind;
	d->auth_bind = s->auth_bind;
	d->start_tls = s->start_tls;
	d->uses_tls = s->start_tls || strstr(d->uri, "ldaps://") != NULL;
	d->tls_require_cert = s->tls_require_cert;
	d->version = s->version;
	d->timeout = s->timeout;
	d->cache_ttl = s->cache_ttl;
	d->negative_cache_ttl = s->negative_cache_ttl;
	d->nconns = s->max_connections;
	d->conns = calloc((size_t)d->nconns, sizeof *d->conns);
	if (d->conns == NULL)
		log_fatal("out of memory");
	if (s->cache_size > 0 && (s->cache_ttl > 0 || s->negative_cache_ttl > 0)) {
		d->cache_size = s->cache_size;
		d->cache = calloc(d->cache_size, sizeof *d->cache);
		if (d->cache == NULL)
			log_fatal("out of memory");
	}
	pthread_mutex_init(&d->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->conn_free, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&d->cache_lock, NULL);
	d->dir = calloc(1, sizeof *d->dir);
	if (d->dir == NULL)
		log_fatal("out of memory");
	d->dir->ops = &ldap_ops;
	d->dir->impl = d;
	buf_free(&uri);
	return d->dir;
fail:
	buf_free(&uri);
	return NULL;
}
