/* greylist — what smtpin remembers about clients, kept in the store: the
 * greylist's triplets (greylist.c) and postscreen's cache of clients that
 * passed its tests (greylist_pscache.c). The room's manual; programs other
 * than smtpin never need it.
 *
 * Tables (store tables owned by this room, opened with the store's;
 * integers big-endian):
 *   DB_GREYLIST  "t" + SHA-256(network NUL sender NUL recipient) -> record (a triplet)
 *                "c" + network                                   -> record (a client network)
 *                record: first seen u64, last seen u64, passes u32 (20 bytes)
 *   DB_PSCACHE   client address text -> pass expiry u64 (seconds)
 *
 * --- the greylist (greylist.c) ---
 * Shared by smtpin's check_greylist restriction and its Postfix policy service.
 *
 * A triplet is (client network, sender, recipient): the client's /24 (IPv4)
 * or /64 (IPv6), the envelope sender lower-cased ("" for <>) and the
 * recipient lower-cased. The first attempt of a triplet is deferred; a retry
 * after `delay` and within `retry_window` passes, and the triplet then passes
 * at once until it goes unseen for `max_age`. A client network that passed
 * `auto_allow` triplets skips greylisting (as postgrey's auto-whitelist).
 *
 * Every check that changes a record is a durable store_write (group commit),
 * so call it off the event loop. A triplet that already passed and was seen
 * within the last hour is answered from a read transaction, without a write.
 */
#ifndef MK_GREYLIST_H
#define MK_GREYLIST_H

#include <stdint.h>

#include "index/store.h"

struct greylist_params {
	int64_t delay;	      /* seconds a new triplet waits (60) */
	int64_t retry_window; /* seconds within which the retry must come (2 days) */
	int64_t max_age;      /* seconds after which unseen records are forgotten (35 days) */
	uint32_t auto_allow;  /* passes after which the network is allowed; 0 = never */
};

enum greylist_verdict {
	GREYLIST_PASS = 0,  /* accept */
	GREYLIST_DEFER = 1, /* answer 450 4.7.1; *wait_r says for how long */
};

/* Checks and records one delivery attempt at time now (seconds). Returns 0
 * with *verdict_r (and *wait_r, seconds left, for DEFER), or a STORE_E* code
 * (callers then accept the mail: an unreachable greylist never loses mail). */
int greylist_check(struct store *store, const char *client_addr, const char *sender,
		   const char *rcpt, int64_t now, const struct greylist_params *p,
		   enum greylist_verdict *verdict_r, int64_t *wait_r);
/* Deletes records not seen since now - max_age. Returns the number deleted or STORE_E*. */
int greylist_expire(struct store *store, int64_t now, int64_t max_age);
/* The network part of an address: "192.0.2" for 192.0.2.7, the first four
 * groups for IPv6. Returns 0 or -1 (not an address). */
int greylist_network(const char *addr, char *out, size_t outsize);

/* --- postscreen's cache (greylist_pscache.c): clients that passed, until when --- */

/* *until_r = the time the pass expires, 0 if none. Returns 0 or STORE_E*. */
int pscache_get(struct store *store, const char *addr, int64_t *until_r);
/* Records a pass until `until` (durable write). */
int pscache_put(struct store *store, const char *addr, int64_t until);

#endif
