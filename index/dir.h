/* dir — the user directory: look up an address, authenticate, list users.
 * The room's manual; its files are index/dir*.c:
 *
 *   dir.c            result names, per-thread errors, closing (any backend)
 *   dir_open.c       directory_open(): the backend user_directory names
 *   dir_embedded.c   users and aliases kept in the store (`mailkeep user`)
 *   dir_ldap.c       users in an LDAP server (its own header: dir_ldap.h)
 *   dir_ldap_config.c  the LDAP settings (index/params_ldap.def) -> dir_ldap.c
 *   dir_sync.c       keeps the store's record of LDAP users' uid/gid in step
 *
 * One interface, several backends behind a table of functions (OpenSMTPD's
 * table_*.c way). Programs include this header only.
 *
 * Backends are thread-safe: calls may come from many threads at once (the
 * embedded one reads the store in its own read transaction, the LDAP one
 * keeps a pool of connections), so that one slow lookup never holds up the
 * others. Every call returns one of enum dir_result. DIR_TEMPFAIL means "cannot tell
 * now" (server down, timeout): callers answer 4xx / NO [UNAVAILABLE], never
 * "user unknown".
 */
#ifndef MK_DIR_H
#define MK_DIR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "index/store.h"
#include "lib/config.h"

enum dir_result {
	DIR_OK = 0,
	DIR_NOTFOUND = 1, /* no such user or address */
	DIR_BADPASS = 2,  /* the user exists, the password is wrong (or empty) */
	DIR_TEMPFAIL = 3, /* the backend cannot answer now */
	DIR_READONLY = 4, /* the backend does not take changes (LDAP) */
	DIR_ERROR = 5,	  /* anything else: bad argument, internal error */
};

#define DIR_NAME_MAX 256

struct dir_user {
	char name[DIR_NAME_MAX]; /* login name; also the store's user name */
	char mail[DIR_NAME_MAX]; /* primary address */
	char dn[512];		 /* LDAP DN, "" for embedded users */
	uid_t uid;		 /* owner of the user's files on the mount */
	gid_t gid;
	/* quota limits from the directory (LDAP's quota_*_attribute; the
	 * embedded users' are in the store already): has_quota bit 0 storage,
	 * bit 1 messages; a limit without its bit is the default */
	unsigned has_quota;
	uint64_t quota_storage, quota_messages;
	int quota_known; /* the directory says the quota (LDAP with a quota attribute set) */
};

struct directory;

struct directory_ops {
	const char *name; /* "embedded", "ldap" */
	/* Resolves a recipient address (after alias expansion) to a user. */
	enum dir_result (*lookup_address)(struct directory *dir, const char *address,
					  struct dir_user *user_r);
	/* Looks a user up by login name. */
	enum dir_result (*get_user)(struct directory *dir, const char *name,
				    struct dir_user *user_r);
	/* Checks a password. login may be a name or an address. */
	enum dir_result (*authenticate)(struct directory *dir, const char *login,
					const char *password, struct dir_user *user_r);
	/* Calls cb once per user; stops early if cb returns non-zero. */
	enum dir_result (*list)(struct directory *dir,
				int (*cb)(const struct dir_user *user, void *ctx), void *ctx);
	/* Frees impl and what the backend holds, NOT the struct directory itself:
	 * dir_close() frees that (the backend's open malloc's it with calloc). */
	void (*close)(struct directory *dir);
};

struct directory {
	const struct directory_ops *ops;
	void *impl;
};

const char *dir_result_str(enum dir_result r);

#define DIR_ERROR_MAX 256
/* The words of the last failure of a directory call made by this thread, for
 * logs and CLI messages; "" if none. Thread-local, so that calls made at once
 * from several threads (the backends are thread-safe) never mix their errors. */
const char *dir_error(void);
/* For backends: sets this thread's error text (every dir_* call clears it). */
void dir_clear_error(void);
void dir_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static inline enum dir_result dir_lookup_address(struct directory *d, const char *a,
						 struct dir_user *u)
{
	dir_clear_error();
	return d->ops->lookup_address(d, a, u);
}
static inline enum dir_result dir_get_user(struct directory *d, const char *n, struct dir_user *u)
{
	dir_clear_error();
	return d->ops->get_user(d, n, u);
}
static inline enum dir_result dir_authenticate(struct directory *d, const char *l, const char *p,
					       struct dir_user *u)
{
	dir_clear_error();
	return d->ops->authenticate(d, l, p, u);
}
static inline enum dir_result dir_list(struct directory *d,
				       int (*cb)(const struct dir_user *, void *), void *ctx)
{
	dir_clear_error();
	return d->ops->list(d, cb, ctx);
}
/* Closes and frees: calls ops->close (impl), then free()s the struct
 * directory; sets *dir to NULL. NULL or *dir NULL is a no-op. */
void dir_close(struct directory **dir);

/* --- opening (dir_open.c, dir_embedded.c) ----------------------------------
 *   user_directory = embedded                     users and aliases in the store
 *   user_directory = ldap:/etc/mailkeep/ldap.cf   LDAP, settings as Postfix's ldap_table(5)
 *   user_directory = ldap                         LDAP, ldap_* settings in mailkeep.conf
 * Recipient addresses are matched against mydestination first by the callers;
 * the directory answers for the local part and full address. */

/* Opens the directory. The embedded backend uses store (which must outlive the
 * directory); with LDAP and a store, answers are synced into it (dir_sync).
 * Returns 0, or -1 with a sentence in err. */
int directory_open(struct config *cfg, struct store *store, struct directory **dir_r, char *err,
		   size_t errsize);
/* The embedded backend alone. */
struct directory *dir_embedded_open(struct store *store, struct config *cfg);

/* --- LDAP from mailkeep's configuration (dir_ldap_config.c) ----------------
 * A relative .cf file name is taken relative to config_directory; the file has
 * mailkeep.conf's (main.cf's) syntax. See doc/ldap.md. */

/* Returns 1 if a user_directory value names the LDAP backend ("ldap" or "ldap:..."). */
int dir_ldap_spec(const char *user_directory);
/* Opens the backend that spec (user_directory's value) names; cfg is
 * mailkeep.conf. Returns 0, or -1 with a sentence ("file:line: ..." for a bad
 * file) in err. No connection is made yet (see index/dir_ldap.h). */
int dir_ldap_open_config(struct config *cfg, const char *spec, struct directory **dir_r, char *err,
			 size_t errsize);
/* Opens the backend from a .cf file alone. Returns 0 or -1 with err. */
int dir_ldap_open_file(const char *path, struct directory **dir_r, char *err, size_t errsize);
/* For `mailkeep check`: loads the .cf file that spec names (nothing to do for
 * "ldap": mailkeep.conf is checked with params_ldap) and calls report once per
 * problem ("file:line: what is wrong"), including settings the backend refuses.
 * Returns the number of problems. */
int dir_ldap_check(struct config *cfg, const char *spec, void (*report)(const char *msg, void *ctx),
		   void *ctx);

/* --- the store's copy of directory users (dir_sync.c) ----------------------
 * The store knows a user from LDAP from their first message on (store_deliver
 * creates the record); the mount takes a user's file owner from that record.
 * So that the owner is what LDAP says (uidNumber/gidNumber), every successful
 * lookup, get_user or authenticate through a directory wrapped by
 * dir_sync_wrap() makes sure the store has the user with the same uid and gid
 * (a short read transaction when nothing changed; a write only for a new user
 * or a changed number). directory_open() wraps the LDAP backend this way
 * whenever it is given a store, so smtpin (at RCPT) and imapd (at login) keep
 * the store right without knowing about it. */

/* Creates the store user u->name if absent and sets its uid and gid to u's,
 * and, when u->quota_known, its own quota limits (index/quota.h).
 * Returns 0 or a store error code (store_strerror). */
int dir_sync_store_user(struct store *store, const struct dir_user *u);
/* A directory that answers as inner does and syncs each user it returns into
 * store (a failure to sync is logged, the answer stays). Takes ownership of
 * inner (closed with the wrapper); store must outlive the wrapper. */
struct directory *dir_sync_wrap(struct directory *inner, struct store *store);

#endif
