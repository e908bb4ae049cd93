/* dir_ldap — the LDAP backend of the user directory (index/dir.h); this header
 * is the backend's own, for dir_ldap_config.c and the tests.
 *
 * Users live in an LDAP server (OpenLDAP's inetOrgPerson + posixAccount, as the
 * seed set-ups keep them): an address is found with query_filter (and an
 * optional alias attribute such as mailAlternateAddress), a login name with
 * user_filter; the entry's uid attribute is the store's user name, its mail
 * attribute (result_attribute) the primary address, uidNumber/gidNumber the
 * owner of the user's files on the mount.
 *
 * Passwords are checked either by binding as the user's DN (auth_bind = 1) or,
 * with a reader DN allowed to read userPassword, by password_verify() on the
 * stored value ({SSHA}, {SSHA256}, {SSHA512}, {CRYPT}). An empty password is
 * refused here, before any LDAP traffic: an RFC 4513 "unauthenticated bind"
 * (a DN with an empty password) succeeds on some servers.
 *
 * Resilience: answers (found and not found) are kept in a small cache for a
 * bounded time, so a burst of deliveries asks the server once. Any failure to
 * get an answer from the server (down, timeout, broken configuration on the
 * server side, an address matching several entries) is DIR_TEMPFAIL, never
 * DIR_NOTFOUND, and is not cached. Connections are made lazily, dropped when
 * the server goes away and made again on the next call.
 *
 * Thread safety: every call may come from any thread. A small pool of
 * connections (max_connections) is shared under a mutex; a call holds one
 * connection for its duration. Callers should ignore SIGPIPE (daemons do):
 * libldap may write to a socket the server has closed.
 *
 * dir_ldap.c knows LDAP and nothing of mailkeep's config tables:
 * dir_ldap_config.c turns settings into a struct ldap_settings.
 */
#ifndef MK_DIR_LDAP_H
#define MK_DIR_LDAP_H

#include <stddef.h>

#include "lib/buf.h"
#include "index/dir.h"

struct ldap_settings {
	/* Servers tried in order (failover): "host", "host:port" or an LDAP URL
	 * ("ldap://host:port", "ldaps://host", "ldapi://%2Frun%2Fslapd.sock"). */
	const char *const *server_host;
	size_t server_host_count;
	int server_port;                /* for items without a port; 389 */
	const char *search_base;        /* e.g. "ou=people,dc=example,dc=org" */
	const char *scope;              /* "sub", "one" or "base" */
	const char *query_filter;       /* addresses, e.g. "(mail=%s)"; %s %u %d %% */
	const char *alias_attribute;    /* "" or e.g. "mailAlternateAddress" */
	const char *user_filter;        /* login names, e.g. "(uid=%s)" */
	const char *list_filter;        /* every user, e.g. "(&(uid=*)(mail=*))" */
	const char *result_attribute;   /* the primary address: "mail" */
	const char *uid_attribute;      /* the login name: "uid" */
	const char *uidnumber_attribute; /* "uidNumber" */
	const char *gidnumber_attribute; /* "gidNumber" */
	const char *quota_storage_attribute;  /* "" or e.g. "mailQuota" (bytes) */
	const char *quota_messages_attribute; /* "" or a message count's attribute */
	const char *password_attribute; /* "userPassword" (auth_bind = 0 only) */
	int bind;                       /* 1: bind as bind_dn/bind_pw; 0: anonymous */
	const char *bind_dn;
	const char *bind_pw;
	int auth_bind;                  /* 1: check passwords by binding as the user */
	int start_tls;
	const char *tls_ca_cert_file;   /* "" = the system's */
	int tls_require_cert;           /* 1: the server's certificate must verify */
	int version;                    /* 2 or 3 */
	double timeout;                 /* seconds, for connecting and for each operation */
	double cache_ttl;               /* seconds an answer "found" is kept; 0 = no cache */
	double negative_cache_ttl;      /* seconds an answer "not found" is kept */
	size_t cache_size;              /* entries in the cache (bounded) */
	int max_connections;            /* connections kept to the server, >= 1 */
};

/* Opens the backend. Nothing is sent to the server yet: a server that is down
 * now gives DIR_TEMPFAIL on the first call, not an error here. Every string in
 * s is copied. Returns NULL with a sentence in err on a bad setting. */
struct directory *dir_ldap_open(const struct ldap_settings *s, char *err, size_t errsize);

/* Counters, for logs and tests. */
struct dir_ldap_stats {
	unsigned long searches;     /* search operations sent */
	unsigned long binds;        /* bind operations sent (reader and users) */
	unsigned long cache_hits;
	unsigned long connects;     /* connections made */
	unsigned long failures;     /* calls that ended in DIR_TEMPFAIL */
};
/* Fills st for a directory opened by dir_ldap_open (zeros for another). */
void dir_ldap_get_stats(struct directory *dir, struct dir_ldap_stats *st);

/* RFC 4515: appends len bytes of value to out with '*', '(', ')', '\' and
 * NUL written as \2a, \28, \29, \5c and \00. Returns 0, or -1 if out is full. */
int dir_ldap_escape(const char *value, size_t len, struct buf *out);

/* Expands a filter template as Postfix's ldap_table(5) does, escaping what it
 * inserts: %s the whole key, %u its local part (the whole key if it has no
 * '@'), %d its domain, %% a '%'; upper-case %S %U %D are the same. Returns 0;
 * 1 if the template uses %d and the key has no domain (the query is then not
 * made: nothing matches); -1 on an unknown %-sequence or a full out. */
int dir_ldap_expand(const char *template, const char *key, struct buf *out);

#endif
