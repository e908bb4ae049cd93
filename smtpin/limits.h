/* limits — smtpin's side of the connection policy (lib/anvil.h): per-client
 * concurrency and rate limits counted with imapd's, slots kept for mynetworks
 * and clients that logged in recently, a shorter timeout under stress, the
 * oldest session of the busiest client dropped when the server is full, and
 * the authentication penalty around SMTP AUTH. */
#ifndef SMTPIN_LIMITS_H
#define SMTPIN_LIMITS_H

#include "lib/anvil.h"

struct server;
struct session;
struct limits;

/* Per session. */
struct session_limits {
	struct anvil_key key;
	int has_key;  /* an IP client (not a Unix socket) */
	int counted;  /* counted in anvil as an unauthenticated connection */
	int stranger; /* counted in this process's strangers: not mynetworks, not authenticated */
	int live;     /* holds one of the server's smtpd_connection_limit slots */
	int known;    /* a login succeeded from its network recently */
	double t_active;
	char net[64]; /* the key as text, for logs */
};

/* Reads the settings and opens the shared table (as root, before privileges
 * are dropped; the file is given to mail_owner). Returns 0 or -1 with err. */
int limits_init(struct server *srv, char *err, size_t errsize);
/* Starts the stress timer (after the event base exists). */
void limits_start(struct server *srv);
void limits_fini(struct server *srv);
/* A new session on fd (s has its address, mynetworks and lmtp set; no
 * connection is set up yet): counts it, applies the client and server
 * limits. Returns 0, or -1 if it was refused: the 421 was written and fd
 * closed here, so a flood of refused connections costs little. */
int limits_accept(struct session *s, int fd);
/* 1 while half the strangers' slots are in use (stress: shorter timeouts,
 * and postscreen's greet wait is at most 2 s). */
int limits_stressed(struct server *srv);
/* Its connection is set up: under stress, the shorter timeout. */
void limits_started(struct session *s);
/* Input arrived (the stress timeout counts idle time). */
void limits_activity(struct session *s);
/* The session is closing (QUIT, refused, dropped): it no longer holds a
 * slot or counts against its client. Idempotent. */
void limits_release(struct session *s);
/* The session ends. */
void limits_close(struct session *s);

typedef void limits_job_fn(void *arg);
/* Runs work on the pool and done on the loop once the penalty gives this
 * attempt to log in as login its turn (the session is busy meanwhile); if it
 * is refused (too many attempts queued, or the user locked out), calls
 * refused(arg, why) on the loop thread instead, why being the text for the
 * log and the reply. */
void limits_auth_submit(struct session *s, const char *login, limits_job_fn *work,
			limits_job_fn *done, void (*refused)(void *arg, const char *why),
			void *arg);
/* The checked attempt's result: ok (1), a wrong password (0), or a temporary
 * failure (-1). On success the session stops counting as a stranger. */
void limits_auth_result(struct session *s, const char *login, int ok);

#endif
