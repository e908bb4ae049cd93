/* import_state — where an import from a mail server stopped, kept in the
 * store beside the messages it covers.
 *
 * `mailkeep import USER imaps://...` copies each folder of the server in UID
 * order. For each (user, source, folder) this table keeps the folder's
 * UIDVALIDITY, the highest UID whose message (and every one below it) is in
 * the store, and the folder's HIGHESTMODSEQ (CONDSTORE) when it was finished.
 * The importer writes the record in the same write transaction as the
 * messages it covers, so after a crash at any point the record and the
 * messages agree: the next run fetches from last_uid + 1 and adds those
 * messages without looking for duplicates.
 *
 * source is a string naming the server and login ("imaps://bob@host:993"),
 * folder the server's name of the folder as it came on the wire (modified
 * UTF-7). Records are never read by anything but the importer; they stay
 * when a user is deleted (user ids are not reused).
 *
 * Every function returns 0 or a negative STORE_E* code.
 */
#ifndef MK_IMPORT_STATE_H
#define MK_IMPORT_STATE_H

#include <stdint.h>

#include "index/store.h"

#define IMPORT_STATE_KEY_MAX 1024 /* source + folder, bytes */

struct import_state {
	uint32_t uidvalidity;	/* 0: nothing recorded */
	uint32_t last_uid;	/* every message up to here is in the store */
	uint64_t highestmodseq; /* the folder's when it was last finished; 0 if unknown */
	uint64_t messages;	/* copied from this folder so far (for the summary) */
	uint32_t hi_uid;	/* the highest UID taken: between last_uid and here some
				   messages may be in the store (a server may answer
				   pipelined FETCHes out of order): compared by content */
	uint32_t by_content;	/* 1: the folder is being copied by content (no record
				   before, or UIDVALIDITY changed) until it is finished */
};

/* The record of (user, source, folder); STORE_ENOTFOUND if none. */
int import_state_get(struct store_txn *txn, uint32_t user_id, const char *source,
		     const char *folder, struct import_state *st_r);
/* Writes (replaces) the record. Only inside store_write. STORE_EINVAL if
 * source and folder are longer than IMPORT_STATE_KEY_MAX together. */
int import_state_put(struct store_txn *txn, uint32_t user_id, const char *source,
		     const char *folder, const struct import_state *st);
/* Removes every record of (user, source): the next import starts over
 * (and finds what is already there by content). */
int import_state_clear(struct store_txn *txn, uint32_t user_id, const char *source);
/* Calls cb for each record of (user, source), in folder order. */
int import_state_foreach(struct store_txn *txn, uint32_t user_id, const char *source,
			 int (*cb)(const char *folder, const struct import_state *st, void *ctx),
			 void *ctx);

#endif
