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

struct store_txn {
	struct store *store;
	MDB_txn *txn;
	int writable;
	int touched;
	int locked; /* holds store->maplock for reading */
};

struct store {
	MDB_env *env;
	MDB_dbi dbi[DB_COUNT];
	char dir[4096];
	int read_only;
	uint64_t map_size, map_max;
	pthread_rwlock_t maplock; /* readers and the writer hold it shared; a resize holds it exclusive */
	pthread_mutex_t wlock;    /* the group-commit queue */
	pthread_cond_t wcond;
	struct store_wjob *queue;
	struct store_wjob **queue_tail;
	int leader_active;
	/* Relaxed commits (store_write_relaxed): the leader's last batch, then,
	 * under wlock, whether the last commit still waits for its meta flush. */
	int batch_committed, batch_relaxed;
	uint64_t commit_gen; /* commits of this process, under wlock */
	int unsynced;        /* the last commit was relaxed and nothing flushed it yet */
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
/* Calls cb with every key of db that starts with prefix; deletes them if del. */
int store_delete_prefix(struct store_txn *txn, enum store_db db, const void *prefix, size_t len);
int store_meta_get_u64(struct store_txn *txn, const char *name, uint64_t *v_r);
int store_meta_put_u64(struct store_txn *txn, const char *name, uint64_t v);
/* Deletes all messages of a mailbox (no expunge records) and its records. */
int store_mailbox_purge(struct store_txn *txn, const struct store_mailbox *mb);
int store_msg_copy_impl(struct store_txn *txn, uint32_t mbid, uint32_t uid, uint32_t dst_mbid, int moving,
			struct store_msg *copy_r);
int store_name_valid(const char *name);

#endif
