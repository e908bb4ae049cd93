/* store_internal — for the rooms inside index/ only (greylist, spam):
 * the raw LMDB handles behind a struct store_txn. Programs never include this.
 *
 * Key layouts (all integers big-endian so LMDB's byte order is numeric order):
 *   DB_BLOBINFO  hash[32]                      -> blobinfo record (refs, encoding, size)
 *   DB_BLOBDATA  hash[32]                      -> encoded bytes (encodings RAW, ZSTD)
 *   DB_BLOBCHUNKS seq u64                      -> a piece (<= 2022 bytes) of a PACKED blob's frame
 *   DB_DICTS     id u32                        -> a zstd dictionary (never changed, never deleted)
 *   DB_USERS     name                          -> user record
 *   DB_USERIDS   id u32                        -> name
 *   DB_ALIASES   address                       -> target
 *   DB_MAILBOXES user_id u32 + name            -> mailbox record
 *   DB_MBIDS     mbid u32                      -> user_id u32 + name
 *   DB_MSGS      mbid u32 + uid u32            -> message record
 *   DB_MSGBASES  mbid u32 + base               -> uid u32
 *   DB_MSGMETA   mbid u32 + uid u32            -> metadata text
 *   DB_EXPUNGED  mbid u32 + modseq u64         -> uid u32
 *   DB_CACHE     hash[32] + kind               -> bytes
 *   DB_META      "version", "next_user", "next_mbid", "changeseq", ...
 *   DB_IMPORT_STATE user_id u32 + source + NUL + folder -> import state record
 * The other tables belong to other rooms of index/, each documented in its
 * room's header: DB_GREYLIST and DB_PSCACHE in index/greylist.h, DB_SPAM_* in
 * index/spam_db.h, DB_SIEVE in index/sieve_store.c, DB_QUOTA in index/quota.h,
 * DB_FTS_* in index/fts.h, DB_Q* in index/queue.h (whose message records hold one
 * reference on their blob each: store_fsck counts them). The store opens every table of the environment at
 * store_open (one catalog: LMDB's maxdbs and the format check are in one
 * place), so their ids are listed here.
 */
#ifndef MK_STORE_INTERNAL_H
#define MK_STORE_INTERNAL_H

#include <lmdb.h>
#include <stdint.h>

#include "index/store.h"

enum store_db {
	DB_META,
	DB_BLOBINFO,
	DB_BLOBDATA,
	DB_USERS,
	DB_USERIDS,
	DB_ALIASES,
	DB_MAILBOXES,
	DB_MBIDS,
	DB_MSGS,
	DB_MSGBASES,
	DB_MSGMETA,
	DB_EXPUNGED,
	DB_CACHE,
	DB_GREYLIST,     /* the greylist room (index/greylist.h): triplets */
	DB_PSCACHE,      /* the greylist room: postscreen's passes */
	DB_SPAM_TOKENS,  /* the spam room (index/spam*.h): per-user token counts */
	DB_SPAM_STATS,   /* per-user totals */
	DB_SPAM_SIGS,    /* per-message token signatures */
	DB_RETRIES,      /* index/retry.c: deliveries recent enough to recognise a retry */
	DB_IMPORT_STATE, /* index/import_state.c: where an import from a server stopped */
	DB_SIEVE,        /* the sieve room (index/sieve_store.c): scripts, vacation and error memories */
	DB_QUOTA,        /* the quota room (index/quota.h): per-user limits and warnings */
	DB_BLOBCHUNKS,   /* packed (compressed) blobs, in chunks: see store_blob.c */
	DB_DICTS,        /* compression dictionaries */
	DB_FTS_QUEUE,    /* the full-text room (index/fts.h): blobs waiting to be indexed */
	DB_FTS_DOCS,     /* docid -> blob hash */
	DB_FTS_HASHES,   /* blob hash -> docid */
	DB_FTS_WORDS,    /* word + first docid -> docids */
	DB_QMSG,         /* the queue room (index/queue.h): messages waiting to leave */
	DB_QRCPT,        /* their recipients */
	DB_QSCHED,       /* when each is due */
	DB_COUNT
};

MDB_txn *store_txn_mdb(struct store_txn *txn);
MDB_dbi store_txn_dbi(struct store_txn *txn, enum store_db db);
/* 1 inside store_write's function, 0 in a read transaction. */
int store_txn_writable(const struct store_txn *txn);
/* Marks the write as a change, so the change sequence is bumped and watchers wake. */
void store_txn_touch(struct store_txn *txn);
/* 0 if a read-only open found the table missing (a store of an older
 * mailkeep: the table is empty for it), 1 otherwise. */
int store_txn_has(struct store_txn *txn, enum store_db db);
/* Maps an LMDB / errno code to STORE_E*. */
int store_mdb_error(int rc);
/* Adds delta references to a blob; frees the bytes and cached derivations
 * when the count drops to zero. */
int store_blob_ref(struct store_txn *txn, const uint8_t hash[STORE_HASH_LEN], int delta);
/* For rooms that deliver inside their own write (the queue): the store's
 * classify hook for each recipient whose mailbox is NULL (call it before
 * store_write, outside any transaction), then, in the write, one message for
 * one recipient pointing at an existing blob, as store_deliver adds it. */
void store_classify_rcpts(struct store *store, struct store_rcpt *rcpts, size_t n, const void *data,
			  size_t len);
int store_deliver_rcpt(struct store_txn *txn, const uint8_t hash[STORE_HASH_LEN], int64_t internaldate,
		       struct store_rcpt *rcpt);

static inline void store_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}
static inline uint32_t store_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void store_put_be64(uint8_t *p, uint64_t v)
{
	store_put_be32(p, v >> 32); store_put_be32(p + 4, (uint32_t)v);
}
static inline uint64_t store_get_be64(const uint8_t *p)
{
	return (uint64_t)store_get_be32(p) << 32 | store_get_be32(p + 4);
}

#endif
