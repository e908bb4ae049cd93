/* store_priv — what the store's own files (store*.c) share: the
 * struct behind struct store_txn and the record codecs. Nothing outside the
 * store_*.c files includes it. */
#ifndef MK_STORE_PRIV_H
#define MK_STORE_PRIV_H

#include <lmdb.h>
#include <pthread.h>
#include <stdint.h>

#include "index/store.h"
#include "index/store_internal.h"

/* Decoded (decompressed) blobs a transaction hands out: the last
 * STORE_TXN_KEPT of them stay valid (see store_blob_get in store.h). */
struct blob_decoded;

struct store_txn {
	struct store *store;
	MDB_txn *txn;
	int writable;
	int touched;
	int locked; /* holds store->maplock for reading */
	struct blob_decoded *decoded[STORE_TXN_KEPT];
	unsigned ndecoded;
};

struct store {
	MDB_env *env;
	MDB_dbi dbi[DB_COUNT];
	char dir[4096];
	int read_only;
	uint64_t map_size, map_max;
	pthread_rwlock_t
	    maplock; /* readers and the writer hold it shared; a resize holds it exclusive */
	pthread_mutex_t wlock; /* the group-commit queue */
	pthread_cond_t wcond;
	struct store_wjob *queue;
	struct store_wjob **queue_tail;
	int leader_active;
	/* Relaxed commits (store_write_relaxed): the leader's last batch, then,
	 * under wlock, whether the last commit still waits for its meta flush. */
	int batch_committed, batch_relaxed;
	uint64_t commit_gen; /* commits of this process, under wlock */
	int unsynced;	     /* the last commit was relaxed and nothing flushed it yet */
	int syncer_started, syncer_stop;
	pthread_t syncer;
	pthread_cond_t synccond; /* wakes the syncer (CLOCK_MONOTONIC) */
	/* Gathering (relaxed batches only), under wlock: see gather() in store.c. */
	int queued, gathering, last_relaxed_n;
	long last_commit_ns;
	pthread_cond_t gathercond; /* an enqueue wakes a gathering leader (CLOCK_MONOTONIC) */
	int notify_fd; /* <dir>/changes, rewritten after each commit that changed something */
	int lock_fd;   /* <dir>/lock.mdb, held until after mdb_env_close (see store.c) */
	struct store_hooks hooks;
	int has_hooks;
	struct blob_codec *codec; /* dictionaries and the decoded-blob cache (store_blob.c) */
	int compress_level;	  /* new blobs: zstd level; 0 = stored raw */
	size_t page_room;	  /* bytes for nodes in a leaf page: the page size - 16 */
	int missing[DB_COUNT];	  /* a read-only open of an older store: tables it has not yet */
};

#define MSG_KEY_LEN 8
static inline void msg_key(uint8_t key[MSG_KEY_LEN], uint32_t mbid, uint32_t uid)
{
	store_put_be32(key, mbid);
	store_put_be32(key + 4, uid);
}

/* Records (all integers big-endian, for a store that outlives the machine). */
int store_msg_decode(const MDB_val *key, const MDB_val *val, struct store_msg *msg_r);
int store_mailbox_decode(uint32_t user_id, const char *name, size_t namelen, const MDB_val *val,
			 struct store_mailbox *mb_r);
int store_mailbox_put(struct store_txn *txn, const struct store_mailbox *mb);
/* store_blob.c: the codec's life with the store's, and a transaction's end. */
void store_blob_codec_init(struct store *s);
void store_blob_codec_free(struct store *s);
void store_txn_release(struct store_txn *txn);
/* Decodes a blob whose record is bi into a new malloc'ed buffer (*buf_r,
 * the caller frees it) or, raw, a pointer into the map (*buf_r = NULL). */
int store_blob_decode(struct store_txn *txn, const struct store_blob_info *bi, const void **data_r,
		      size_t *len_r, void **buf_r);
/* At most this many bytes of a PACKED blob's frame per chunk: LMDB's node
 * limit on 4 KB pages (store_blob.c says why). */
#define STORE_CHUNK_MAX 2022
/* An encoded form of a blob (store_blob.c), for compaction (store_compact.c). */
struct blob_enc {
	uint8_t encoding; /* RAW: compression would not take less room (no frame) */
	uint32_t dict;
	uint8_t *frame; /* malloc'ed zstd frame */
	size_t len;
};
/* Compresses data with dictionary dict (0 = none) at level. */
int store_blob_encode(struct store_txn *txn, const void *data, size_t len, uint32_t dict, int level,
		      struct blob_enc *e);
/* Replaces the stored bytes of the blob bi (its record as it is now) by e
 * (not RAW), keeping its references; bi is updated. */
int store_blob_rewrite(struct store_txn *txn, struct store_blob_info *bi, const struct blob_enc *e);
/* Calls cb with every key of db that starts with prefix; deletes them if del. */
int store_delete_prefix(struct store_txn *txn, enum store_db db, const void *prefix, size_t len);
int store_meta_get_u64(struct store_txn *txn, const char *name, uint64_t *v_r);
int store_meta_put_u64(struct store_txn *txn, const char *name, uint64_t v);
/* Deletes all messages of a mailbox (no expunge records) and its records. */
int store_mailbox_purge(struct store_txn *txn, const struct store_mailbox *mb);
int store_msg_copy_impl(struct store_txn *txn, uint32_t mbid, uint32_t uid, uint32_t dst_mbid,
			int moving, struct store_msg *copy_r);
int store_name_valid(const char *name);

#endif
