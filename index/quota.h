/* quota — per-user limits on the bytes and the number of a user's messages
 * (the room's manual; its file is index/quota.c).
 *
 * What counts is what the user references: the sum of the sizes of the
 * user's messages in every mailbox, as a Maildir (or Dovecot's quota) would
 * count them, whether or not the bytes are shared with other messages or
 * users. That sum is the mailboxes' own counters (bytes, messages), which
 * every store transaction that adds, copies or expunges a message already
 * keeps in step: the use is read from them (one row per mailbox), never
 * recounted from the messages. The bytes the user's messages take once
 * deduplicated are shown by quota_dedup_bytes (a scan, for `mailkeep user
 * show`), never used for a limit: a limit must not depend on what other
 * users happen to have received.
 *
 * Limits: a user's own (`mailkeep user quota`, or LDAP attributes copied
 * into the store as uid/gid are, index/dir.h), else the defaults
 * quota_storage_limit / quota_message_limit; 0 is no limit.
 *
 * The store calls quota_admit in every write that adds a message for a
 * user (delivery, APPEND, COPY, a file on the mount), so a limit holds for
 * every way in, in the same transaction: STORE_EQUOTA and nothing stored.
 * A move never changes the use. Crossing a quota_warning_percent level
 * adds one warning message to the user's INBOX in that same transaction
 * (once, until the use drops below the level again).
 *
 * Table DB_QUOTA: user u32 -> storage u64, messages u64, own u8 (bit 0:
 * storage is the user's own, bit 1: messages), warned u8 (the highest
 * warning level sent, in percent). All functions return 0 or STORE_E*.
 */
#ifndef MK_QUOTA_H
#define MK_QUOTA_H

#include <stdint.h>

#include "index/store.h"
#include "lib/config.h"

struct quota_limits {
	uint64_t storage;  /* bytes; 0 = no limit */
	uint64_t messages; /* 0 = no limit */
};

struct quota_usage {
	uint64_t bytes;
	uint64_t messages;
};

/* Reads the quota settings (defaults, warning levels, the SMTP reply) for
 * this process; call once at start (every program that writes). Returns 0
 * or -1 with a sentence in err. */
int quota_attach(struct config *cfg, char *err, size_t errsize);
/* 1 if over quota is 452 4.2.2 (quota_full_tempfail), 0 for 552 5.2.2. */
int quota_tempfail(void);

/* The user's own limits: 0, or STORE_ENOTFOUND when the user has none (the
 * defaults apply). has_r (may be NULL) gets bit 0 for storage, bit 1 for
 * messages. */
int quota_get_own(struct store_txn *txn, uint32_t user_id, struct quota_limits *own_r,
		  unsigned *has_r);
/* Sets the user's own limits (has: bit 0 storage, bit 1 messages; a bit
 * not set goes back to the default). In a write. */
int quota_set_own(struct store_txn *txn, uint32_t user_id, const struct quota_limits *own,
		  unsigned has);
/* The limits in force for the user (own, else default). */
int quota_limits(struct store_txn *txn, uint32_t user_id, struct quota_limits *lim_r);
/* What the user uses now (the mailboxes' counters). */
int quota_usage(struct store_txn *txn, uint32_t user_id, struct quota_usage *use_r);
/* The bytes of the distinct messages the user references (a scan). */
int quota_dedup_bytes(struct store_txn *txn, uint32_t user_id, uint64_t *bytes_r);

/* For the store, inside a write that adds bytes and msgs for the user:
 * STORE_EQUOTA if that would go past a limit; 1 if a warning message was
 * added to a mailbox of the user (the caller reads its mailbox again); 0. */
int quota_admit(struct store_txn *txn, uint32_t user_id, uint64_t bytes, uint32_t msgs);
/* A read-only check before a message arrives (SMTP RCPT): STORE_EQUOTA if
 * the user (by name; an unknown user is never over) is at or over a limit,
 * or would be with bytes more. */
int quota_check(struct store *store, const char *user, uint64_t bytes);
/* The same for the user of a mailbox (the mount's writes). */
int quota_check_mailbox(struct store *store, uint32_t mbid, uint64_t bytes);

#endif
