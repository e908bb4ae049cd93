/* queue — the outbound queue, in the store beside the mailboxes (the room's
 * manual; its files are index/queue*.c):
 *
 *   queue.c         messages and recipients: add, read, list, results, hold,
 *                   delete, the schedule
 *   queue_submit.c  one durable write for a submitted message: the bytes once,
 *                   local recipients into their mailboxes, the others queued
 *   queue_dsn.c     RFC 3464 delivery status notifications (bounce, delay)
 *
 * Mail waiting to leave is kept in the same LMDB environment as the mailboxes,
 * so that accepting it is one transaction (the bytes, the local copies and the
 * queue entries; one fsync, shared by the group commit) and the "250" of a
 * submission means what it means for inbound mail: on disk. The bytes are a
 * blob of the store (index/store.h): kept once however many recipients, one
 * reference held by the queue entry, dropped when its last recipient is done.
 *
 * Tables (catalogued in index/store_internal.h; integers big-endian):
 *   DB_QMSG    qid                         -> message record ("key=value\n" text)
 *   DB_QRCPT   qid NUL idx u32             -> recipient record (text)
 *   DB_QSCHED  next_try u64 + qid          -> "" : what is due, in time order
 * A message on hold has no DB_QSCHED entry. A recipient whose delivery
 * succeeded is deleted; one that failed for good stays (state bounced) until
 * the queue manager has written the bounce for it.
 *
 * Every function that changes something takes a write transaction (inside
 * store_write's function); readers take any. All return 0 or a STORE_E* code
 * (store_strerror). Strings in the structs are NUL-terminated copies.
 */
#ifndef MK_QUEUE_H
#define MK_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "index/store.h"

#define QUEUE_ID_MAX 32	   /* bytes of a queue id, with its NUL */
#define QUEUE_ADDR_MAX 520 /* an address, with its NUL (SMTP allows 512 here) */
#define QUEUE_WHY_MAX 600  /* the last reply or reason, printable */
#define QUEUE_RCPT_MAX 100000

enum queue_rcpt_state {
	QUEUE_PENDING = 0, /* not delivered yet (never tried, or deferred) */
	QUEUE_BOUNCED = 1, /* failed for good; a bounce is owed to the sender */
};

struct queue_msg {
	char qid[QUEUE_ID_MAX];
	uint8_t hash[STORE_HASH_LEN]; /* the blob of the message bytes */
	uint64_t size;
	int64_t arrival;	    /* when it was accepted */
	int64_t next_try;	    /* when the queue manager takes it again (0: on hold) */
	int64_t last_try;	    /* 0: never tried */
	uint32_t tries;		    /* delivery attempts so far */
	uint32_t nrcpt;		    /* recipients still in the queue (pending or bounced) */
	int hold;		    /* `mailkeep queue hold`: not delivered until released */
	int warned;		    /* a delay warning was sent */
	char from[QUEUE_ADDR_MAX];  /* envelope sender; "" for the null sender */
	char client[QUEUE_WHY_MAX]; /* "unknown[192.0.2.7]" or "local" */
	char sasl_user[STORE_NAME_MAX + 1]; /* who submitted it, or "" */
	char kind[16];			    /* "" (mail), "bounce", "delay" (a DSN we wrote) */
};

struct queue_rcpt {
	uint32_t idx;
	char addr[QUEUE_ADDR_MAX];
	int state;		   /* enum queue_rcpt_state */
	char dsn[16];		   /* "4.4.1" of the last attempt, "" if none */
	char why[QUEUE_WHY_MAX];   /* the last reply or reason, "" if none */
	char relay[QUEUE_WHY_MAX]; /* "mx.example.com[192.0.2.1]:25" of the last attempt */
};

/* What queue_add needs besides bytes and envelope. */
struct queue_add_info {
	const char *client;    /* NULL: "local" */
	const char *sasl_user; /* NULL: none */
	const char *kind;      /* NULL: mail */
	int hold;	       /* put on hold at once */
};

/* Adds a message for nrcpts recipients (1..QUEUE_RCPT_MAX) under qid
 * (STORE_EEXIST if taken: choose another). The bytes must already be a blob
 * (store_blob_put in the same transaction): queue_add takes one reference.
 * The message is due at now. */
int queue_add(struct store_txn *txn, const char *qid, const uint8_t hash[STORE_HASH_LEN],
	      const char *from, const char *const *rcpts, size_t nrcpts, int64_t now,
	      const struct queue_add_info *info);

/* A queue id that is free now: mk_queue_id's form, tried again while taken. */
int queue_new_id(struct store_txn *txn, char qid_r[QUEUE_ID_MAX]);

int queue_get(struct store_txn *txn, const char *qid, struct queue_msg *msg_r);
/* Calls cb for each recipient still queued, in order; stops when cb returns
 * non-zero (that value is returned). */
int queue_rcpt_foreach(struct store_txn *txn, const char *qid,
		       int (*cb)(const struct queue_rcpt *r, void *ctx), void *ctx);
int queue_rcpt_get(struct store_txn *txn, const char *qid, uint32_t idx, struct queue_rcpt *r_r);

/* Calls cb for each queued message in queue id order (cb non-zero stops). */
int queue_foreach(struct store_txn *txn, int (*cb)(const struct queue_msg *m, void *ctx),
		  void *ctx);
/* Calls cb for messages due at or before now, in due order, at most limit of
 * them (0: no limit); cb non-zero stops. Messages on hold are never due. */
int queue_due(struct store_txn *txn, int64_t now, size_t limit,
	      int (*cb)(const char *qid, int64_t next_try, void *ctx), void *ctx);
/* The earliest next_try of any message (not on hold), or STORE_ENOTFOUND. */
int queue_next_due(struct store_txn *txn, int64_t *when_r);
/* Messages and recipients in the queue, and how many are on hold. */
int queue_count(struct store_txn *txn, uint64_t *msgs_r, uint64_t *rcpts_r, uint64_t *held_r);

/* The result of one delivery attempt for one recipient. */
enum queue_result { QUEUE_SENT, QUEUE_DEFERRED, QUEUE_FAILED };
int queue_rcpt_result(struct store_txn *txn, const char *qid, uint32_t idx,
		      enum queue_result result, const char *dsn, const char *why,
		      const char *relay);

/* Delivers the queued message into user's INBOX (as store_deliver adds a
 * message: \Recent, meta as its per-recipient metadata) and takes recipient
 * idx off the queue, in the caller's write. */
int queue_deliver_local(struct store_txn *txn, const char *qid, uint32_t idx, const char *user,
			const char *meta, int64_t now);

/* Rewrites the message record (next_try, tries, warned, hold, ...) and its
 * place in the schedule; nrcpt is kept as stored. */
int queue_update(struct store_txn *txn, const struct queue_msg *msg);

/* Removes the message and its recipients and drops its blob reference. */
int queue_delete(struct store_txn *txn, const char *qid);
/* hold: 1 takes it out of the schedule, 0 makes it due now. */
int queue_hold(struct store_txn *txn, const char *qid, int hold);
/* Makes a message (not on hold) due now; "" or NULL: every message. */
int queue_flush(struct store_txn *txn, const char *qid, int64_t now);

/* For store_fsck: calls ref once per queued message (the blob reference it
 * holds) and problem once per inconsistency (a recipient count that does not
 * match, a schedule entry or recipient of a message that is gone). */
int queue_check(struct store_txn *txn, void (*ref)(const uint8_t hash[STORE_HASH_LEN], void *ctx),
		void (*problem)(const char *what, void *ctx), void *ctx);

/* --- submission (queue_submit.c) ----------------------------------------- */

/* One accepted message: the bytes stored once, a message in a mailbox for
 * each local recipient (as store_deliver; the store's classify hook runs for
 * those whose mailbox is NULL) and one queue entry for the remote ones, in one
 * durable write: all or nothing. qid_r gets the queue id used (qid if free,
 * else a new one); it is "" if no recipient is remote. */
struct queue_submission {
	const void *data;
	size_t len;
	const char *from;
	const char *qid; /* wished-for queue id (the session's), or NULL */
	struct store_rcpt *local;
	size_t nlocal;
	const char *const *remote;
	size_t nremote;
	struct queue_add_info info;
	int64_t now;
};
int queue_submit(struct store *store, struct queue_submission *sub, char qid_r[QUEUE_ID_MAX],
		 uint8_t hash_r[STORE_HASH_LEN]);

/* --- notifications (queue_dsn.c) ------------------------------------------ */

struct queue_dsn_rcpt {
	const char *addr;
	const char *dsn;   /* "5.1.1" */
	const char *why;   /* the remote reply or our reason */
	const char *relay; /* "mx.example.com[192.0.2.1]:25", or "" */
};

struct queue_dsn {
	int delayed;		   /* 0: failure (bounce), 1: delay warning */
	const char *reporting_mta; /* myhostname */
	const char *qid;
	int64_t arrival;
	int64_t now;
	int64_t retry_until; /* delay warnings: when it will be given up */
	const char *sender;  /* who gets it */
	const struct queue_dsn_rcpt *rcpts;
	size_t nrcpts;
	const void *orig; /* the original message */
	size_t orig_len;
	size_t return_limit; /* bounce_size_limit: beyond, headers only */
};
/* Writes the notification (a complete RFC 5322 message with CRLF line ends:
 * multipart/report; report-type=delivery-status, RFC 3464) into a malloc'd
 * buffer. Returns 0, or STORE_EINVAL for a DSN to the null sender. */
int queue_dsn_make(const struct queue_dsn *d, char **data_r, size_t *len_r);

#endif
