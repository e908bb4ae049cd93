/* anvil — per-client connection counts, connection rates and the
 * authentication penalty, shared by every process of an instance (Postfix's
 * anvil server and Dovecot's anvil process, as a table in shared memory).
 *
 * smtpin and imapd are separate processes, and a client that guesses
 * passwords over SMTP AUTH and IMAP LOGIN at once, or opens connections to
 * both, must meet one account of what it did. The table is a file under the
 * run directory ($run_directory/anvil, ~2 MB), mapped by every process with
 * MAP_SHARED and guarded by one process-shared robust mutex: an update is a
 * few memory writes, so a separate server process (and its round trip on
 * every connection) would cost more than it saves. Nothing in it must
 * survive a restart of the machine: a file written before the last boot is
 * started afresh (the boot id is kept in its header), and each process
 * clears its own column of connection counts when it opens the table (its
 * earlier incarnation's connections died with it).
 *
 * Clients are keyed by network: an IPv4 address cut to ipv4_prefix bits
 * (default 32), an IPv6 one to ipv6_prefix bits (default 64: one customer's
 * /64 is one client, not 2^64).
 *
 * The penalty: each client network and each target user (the login name as
 * given, lower-cased) has a failure count. An attempt waits its turn: while
 * another attempt for the same network or user is being checked, or until the
 * penalty of the last failure has passed (auth_penalty, doubling with each
 * failure up to auth_penalty_max), anvil_auth_begin answers ANVIL_WAIT; an
 * attempt that has waited longer than auth_penalty_max * 2 is refused
 * (ANVIL_BUSY) without its password being looked at. So a client gets at most
 * one password check per penalty period however many connections it opens,
 * and across protocols. A success clears both counts. The user's penalty and
 * the lockout (lockout_failures failures within lockout_window, off by
 * default) do not apply to a network from which a login succeeded within
 * known_time, so a guesser elsewhere cannot lock the owner out of their own
 * phone.
 *
 * Every function is safe to call from any thread of any process that opened
 * the table. Times are CLOCK_MONOTONIC seconds (one clock for the machine).
 */
#ifndef MK_ANVIL_H
#define MK_ANVIL_H

#include <stddef.h>
#include <stdint.h>

/* Processes that count connections: one column each. Submission is a
 * listener of smtpin, ManageSieve one of imapd: they share their column. */
enum anvil_column { ANVIL_SMTPIN = 0, ANVIL_IMAPD = 1, ANVIL_COLUMNS = 4 };

#define ANVIL_USER_MAX 64 /* bytes of a user key kept (longer ones are hashed) */

struct anvil_settings {
	int ipv4_prefix, ipv6_prefix; /* bits of an address that make the client key */
	double rate_unit;	      /* seconds: the connection rate's time unit */
	double penalty;		      /* seconds after the first failure; doubles */
	double penalty_max;	      /* its ceiling */
	unsigned
	    lockout_failures;  /* failures of a user within lockout_window that lock it; 0 = off */
	double lockout_window; /* seconds */
	double known_time;     /* a network with a successful login is known this long */
};

struct anvil_key {
	uint8_t family; /* 4 or 6 */
	uint8_t prefix; /* bits kept */
	uint8_t addr[16];
};

struct anvil;

/* The key of a client address ("192.0.2.7", "2001:db8::1", v4-mapped v6 is
 * v4). Returns 0, or -1 if addr is not an IP address. */
int anvil_key_parse(const char *addr, const struct anvil_settings *s, struct anvil_key *k_r);
/* "192.0.2.7", "192.0.2.0/24", "2001:db8:1:2::/64". */
void anvil_key_str(const struct anvil_key *k, char *out, size_t size);

/* Opens (creating or starting afresh when needed) the table at path. column:
 * the caller's (its counts are cleared), or -1 to only read and write the
 * penalty (mailkeep status). owner: when running as root, the file is given
 * to this user (mail_owner) so that services that dropped privileges can
 * open it after a restart; NULL or "" leaves it. Returns 0, or -1 with err. */
int anvil_open(const char *path, const struct anvil_settings *s, int column, const char *owner,
	       struct anvil **a_r, char *err, size_t errsize);
void anvil_close(struct anvil **a);

/* What the table says about a client when it connects. */
struct anvil_client {
	unsigned conns; /* its connections counted now, in every process, this one included */
	double rate;	/* its connections within the last rate_unit, this one included */
	int known;	/* a login succeeded from its network within known_time */
};
/* A connection from k: counted in the caller's column and in the rate. */
void anvil_connect(struct anvil *a, const struct anvil_key *k, struct anvil_client *c_r);
/* It is closed, or authenticated (authenticated sessions do not count against
 * the client's limit). Exactly once per anvil_connect. */
void anvil_disconnect(struct anvil *a, const struct anvil_key *k);
/* 1 if a login succeeded from k's network within known_time. */
int anvil_known(struct anvil *a, const struct anvil_key *k);

/* Events counted per column for `mailkeep status`. */
enum anvil_event {
	ANVIL_EV_CONN_REFUSED, /* a client over its concurrency or rate limit */
	ANVIL_EV_EVICTED,      /* a session dropped to make room for another client */
	ANVIL_EV_STRESS_TIMEOUT,
	ANVIL_EV_AUTH_REFUSED, /* an attempt refused without a check (busy or locked) */
	ANVIL_EV_COUNT
};
void anvil_event(struct anvil *a, enum anvil_event ev);

enum anvil_turn { ANVIL_GO, ANVIL_WAIT, ANVIL_BUSY, ANVIL_LOCKED };
struct anvil_auth {
	double wait;		/* ANVIL_WAIT: ask again after this many seconds */
	unsigned net_failures;	/* failures of the network, of the user */
	unsigned user_failures; /* (after anvil_auth_end: including this one) */
	double locked_for;	/* ANVIL_LOCKED: seconds left */
};
/* May an attempt to log in as user from k be checked now? waited: seconds
 * this attempt has waited so far. ANVIL_GO: check it, then call
 * anvil_auth_end exactly once; ANVIL_WAIT: call again after r->wait;
 * ANVIL_BUSY (waited too long) and ANVIL_LOCKED (the user is locked out):
 * refuse without checking. */
enum anvil_turn anvil_auth_begin(struct anvil *a, const struct anvil_key *k, const char *user,
				 double waited, struct anvil_auth *r);
/* The result of a checked attempt: ok clears both penalties and makes the
 * network known; a failure counts for both. tempfail (the directory did not
 * answer): neither. */
void anvil_auth_end(struct anvil *a, const struct anvil_key *k, const char *user, int ok,
		    int tempfail, struct anvil_auth *r);

/* For `mailkeep status`: every client with something to show. */
struct anvil_net_info {
	struct anvil_key key;
	unsigned conns[ANVIL_COLUMNS];
	double rate;
	unsigned failures;
	double penalty_left; /* seconds until its next attempt may be checked */
	double known_left;
};
struct anvil_user_info {
	char name[ANVIL_USER_MAX];
	unsigned failures;
	double penalty_left;
	double locked_left;
};
struct anvil_column_info {
	long pid; /* the process that opened the column last (0: none) */
	unsigned long events[ANVIL_EV_COUNT];
};
/* Copies the table's entries that hold connections, failures, a penalty or a
 * lock (at most max of each) and the columns' counters; returns 0. */
int anvil_snapshot(struct anvil *a, struct anvil_net_info *nets, size_t max_nets, size_t *nnets_r,
		   struct anvil_user_info *users, size_t max_users, size_t *nusers_r,
		   struct anvil_column_info cols[ANVIL_COLUMNS]);

/* The penalty after n failures (0 for n == 0). */
double anvil_penalty(const struct anvil_settings *s, unsigned n);

#endif
