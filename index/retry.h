/* retry — recognising a delivery that is a retry of one already stored.
 *
 * A sender that got no answer after its final "." (our process was killed
 * between the durable commit and the 250, or the connection broke) sends the
 * same message again, and it would be stored twice. A caller of
 * store_deliver may give each recipient a retry key (struct store_rcpt's
 * retry_key: smtpin makes it from the envelope sender, the recipient and the
 * SHA-256 of the bytes the client sent, and only for a message with a
 * Message-ID: smtpin/deliver.c). The store keeps the keys of recent
 * deliveries in DB_RETRIES (user id + key -> when, mbid, uid), written in the
 * delivery's own transaction, so the record exists exactly when the message
 * does; a delivery whose key it finds within the recipient's retry_window
 * adds nothing and reports the first copy (duplicate = 1).
 */
#ifndef MK_INDEX_RETRY_H
#define MK_INDEX_RETRY_H

#include <stdint.h>

#include "index/store.h"

/* Inside a delivery's write transaction (store_msg.c): 1 if r's key was
 * stored for user_id within r->retry_window before now (fills r->mbid,
 * r->uid, r->age), 0 if not, or STORE_E*. */
int store_retry_seen(struct store_txn *txn, uint32_t user_id, struct store_rcpt *r, int64_t now);
/* Records r's key for the message r->mbid/r->uid just added. Returns 0 or STORE_E*. */
int store_retry_record(struct store_txn *txn, uint32_t user_id, const struct store_rcpt *r,
		       int64_t now);
/* Forgets keys older than max_age seconds (smtpin calls it hourly). Returns
 * the number removed, or a negative STORE_E*. */
int store_retry_expire(struct store *store, int64_t now, int64_t max_age);

#endif
