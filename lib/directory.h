/* directory — the users interface: look up an address, authenticate, list.
 *
 * One interface, several backends behind a table of functions (OpenSMTPD's
 * table_*.c way): the embedded one keeps users and aliases in the store
 * (index/dir_embedded.c), the LDAP one asks slapd (lib/directory_ldap.c).
 * index/directory_open.c picks the backend from mailkeep.conf.
 *
 * Backends are thread-safe: calls may come from many threads at once (the
 * embedded one reads the store in its own read transaction, the LDAP one
 * keeps a pool of connections), so that one slow lookup never holds up the
 * others. Every call returns one of enum dir_result. DIR_TEMPFAIL means "cannot tell
 * now" (server down, timeout): callers answer 4xx / NO [UNAVAILABLE], never
 * "user unknown".
 */
#ifndef MK_DIRECTORY_H
#define MK_DIRECTORY_H

#include <stddef.h>
#include <sys/types.h>

enum dir_result {
	DIR_OK = 0,
	DIR_NOTFOUND = 1,  /* no such user or address */
	DIR_BADPASS = 2,   /* the user exists, the password is wrong (or empty) */
	DIR_TEMPFAIL = 3,  /* the backend cannot answer now */
	DIR_READONLY = 4,  /* the backend does not take changes (LDAP) */
	DIR_ERROR = 5,     /* anything else: bad argument, internal error */
};

#define DIR_NAME_MAX 256

struct dir_user {
	char name[DIR_NAME_MAX];  /* login name; also the store's user name */
	char mail[DIR_NAME_MAX];  /* primary address */
	char dn[512];             /* LDAP DN, "" for embedded users */
	uid_t uid;                /* owner of the user's files on the mount */
	gid_t gid;
};

struct directory;

struct directory_ops {
	const char *name; /* "embedded", "ldap" */
	/* Resolves a recipient address (after alias expansion) to a user. */
	enum dir_result (*lookup_address)(struct directory *dir, const char *address,
					  struct dir_user *user_r);
	/* Looks a user up by login name. */
	enum dir_result (*get_user)(struct directory *dir, const char *name, struct dir_user *user_r);
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

static inline enum dir_result dir_lookup_address(struct directory *d, const char *a, struct dir_user *u)
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
static inline enum dir_result dir_list(struct directory *d, int (*cb)(const struct dir_user *, void *),
				       void *ctx)
{
	dir_clear_error();
	return d->ops->list(d, cb, ctx);
}
/* Closes and frees: calls ops->close (impl), then free()s the struct
 * directory; sets *dir to NULL. NULL or *dir NULL is a no-op. */
void dir_close(struct directory **dir);

#endif
