/* limits — imapd's side of the connection policy and the authentication
 * penalty (lib/anvil.h, shared with smtpin): per-network limits on
 * connections that have not logged in and on the connection rate, slots kept
 * for networks with a recent login and mynetworks, the oldest connection of
 * the busiest client dropped when the strangers' slots are full, a login
 * time that shrinks under stress, and the penalty before a password is
 * looked at. One set per process (the functions use process-wide state). */
#ifndef MK_IMAP_LIMITS_H
#define MK_IMAP_LIMITS_H

#include <stddef.h>

struct session;
struct common_params;
struct imapd_params;

/* Reads the settings and opens the shared table (before privileges are
 * dropped); the settings must outlive the process's use of them. Returns 0
 * or -1 with err. */
int imap_limits_init(const struct common_params *common, const struct imapd_params *p, char *err,
		     size_t errsize);
/* A connection was accepted on fd (main thread), with active connections
 * served now. Returns 0 to serve it, or -1 if it is refused (answered and
 * closed here). */
int imap_limits_accept(int fd, int implicit_tls, int active);
/* Called by the main loop at least once a second: connections that have not
 * logged in within imap_login_timeout (imap_login_stress_timeout under
 * stress) are shut down. */
void imap_limits_tick(void);
/* The session on fd logged in: it stops counting against its network. */
void imap_limits_login(int fd);
/* The session on fd ends (before fd is closed). */
void imap_limits_close(int fd);
/* Waits for this attempt's turn (auth_penalty). Returns 0 to check the
 * password now, or -1 when it was refused without a check (the tagged NO is
 * sent and the line logged). */
int imap_limits_auth_wait(struct session *s, const char *login, const char *method);
/* The same for a listener without an IMAP session (ManageSieve): waits for
 * the turn (flushing io), logs a refusal as "<proto> authentication failed"
 * and returns -1 without answering the client. */
struct io;
int imap_limits_auth_turn(const char *id, const char *ip, const char *proto, struct io *io,
			  const char *login, const char *method);
unsigned imap_limits_auth_done(const char *id, const char *ip, const char *login, int ok);
/* The checked attempt's result (1 ok, 0 wrong, -1 temporary failure);
 * returns the client network's failure count. */
unsigned imap_limits_auth_result(struct session *s, const char *login, int ok);

#endif
