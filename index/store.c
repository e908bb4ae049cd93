/* store — the LMDB environment, transactions, group commit, change notice,
 * blobs and the derived-data cache. Users, mailboxes and messages are in
 * store_user.c, store_mailbox.c and store_msg.c; the checker in store_fsck.c.
 *
 * Group commit: store_write queues the caller's function; the first waiting
 * thread becomes the leader, takes every queued job, runs each in a nested
 * transaction of one write transaction, commits once (one fsync), and wakes
 * them all with their own result. While it commits, new jobs queue up for the
 * next leader, so under load many deliveries share one fsync.
 *
 * Relaxed commits: a batch whose jobs all came through store_write_relaxed
 * (flag changes, cache entries) is committed with MDB_NOMETASYNC, set on the
 * environment only around that commit by the leader: the data pages are
 * flushed before the meta page is written (so a crash can never leave a meta
 * page pointing at unwritten pages), but the meta page itself is not flushed.
 * It becomes durable with the next commit of any process (LMDB flushes the
 * data file before writing the next meta page) or when the syncer thread,
 * started on the first relaxed commit, flushes it STORE_RELAXED_SYNC_MS later
 * if no commit came in between. A system crash before then falls back to the
 * previous meta page: it undoes that one commit, never an earlier one, and the
 * store stays consistent (LMDB keeps the pages of the last two snapshots).
 * MDB_NOSYNC is never used: it may write the meta page before the data.
 *
 * Map growth: the map starts at store_map_size and doubles (up to
 * store_map_max) when a write hits MDB_MAP_FULL; the failed jobs run again in
 * the bigger map. A resize needs no transaction open in this process, so every
 * transaction holds maplock shared and a resize takes it exclusive. Another
 * process's resize shows as MDB_MAP_RESIZED and is adopted the same way.
 */
#define _GNU_SOURCE /* fallocate */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "index/store_priv.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#define STORE_FORMAT_VERSION 1
#define BATCH_MAX 512
#define BLOB_MAX ((uint64_t)2 << 30)
/* Less free than this after a short write: the disk is full. */
#define DISK_SLACK ((uint64_t)1 << 20)
#define STORE_RELAXED_SYNC_MS 200
#define STORE_GATHER_MAX_NS 1000000L /* 1 ms */

static const char *const db_names[DB_COUNT] = {
	[DB_META] = "meta",
	[DB_BLOBINFO] = "blobinfo",
	[DB_BLOBDATA] = "blobdata",
	[DB_USERS] = "users",
	[DB_USERIDS] = "userids",
	[DB_ALIASES] = "aliases",
	[DB_MAILBOXES] = "mailboxes",
	[DB_MBIDS] = "mbids",
	[DB_MSGS] = "msgs",
	[DB_MSGBASES] = "msgbases",
	[DB_MSGMETA] = "msgmeta",
	[DB_EXPUNGED] = "expunged",
	[DB_CACHE] = "cache",
	[DB_GREYLIST] = "greylist",
	[DB_PSCACHE] = "pscache",
	[DB_SPAM_TOKENS] = "spamtokens",
	[DB_SPAM_STATS] = "spamstats",
	[DB_SPAM_SIGS] = "spamsigs",
	[DB_RETRIES] = "retries",
	[DB_IMPORT_STATE] = "importstate",
	[DB_SIEVE] = "sieve",
	[DB_QUOTA] = "quota",
	[DB_BLOBCHUNKS] = "blobchunks",
	[DB_DICTS] = "dicts",
	[DB_FTS_QUEUE] = "fts_queue",
	[DB_FTS_DOCS] = "fts_docs",
	[DB_FTS_HASHES] = "fts_hashes",
	[DB_FTS_WORDS] = "fts_words",
	[DB_QMSG] = "qmsg",
	[DB_QRCPT] = "qrcpt",
	[DB_QSCHED] = "qsched",
};

/* Tables a store made by an older mailkeep may lack: a read-only open goes on
 * without them (they are empty for it); a writable one creates them. */
static int db_optional(int i)
{
	/* retries are only read and written by deliveries, the import state by
	 * imports from a server (writable opens both) */
	return i == DB_BLOBCHUNKS || i == DB_DICTS || (i >= DB_FTS_QUEUE && i <= DB_FTS_WORDS) ||
	       i == DB_RETRIES || i == DB_IMPORT_STATE;
}

struct store_wjob {
	store_write_fn *fn;
	void *ctx;
	int result;
	int done;
	int retry_full; /* failed for want of map room: run again after growing the map */
	int relaxed;	/* store_write_relaxed: a system crash may undo it */
	struct store_wjob *next;
};

const char *store_strerror(int err)
{
	switch (err) {
	case STORE_OK:
		return "success";
	case STORE_ENOTFOUND:
		return "not found";
	case STORE_EEXIST:
		return "already exists";
	case STORE_EFULL:
		return "the store is full (map size limit or disk full)";
	case STORE_EIO:
		return "input/output error in the store";
	case STORE_EINVAL:
		return "invalid argument";
	case STORE_ECORRUPT:
		return "a store record is corrupt";
	case STORE_EMODIFIED:
		return "modified since the given modseq";
	case STORE_ENOTEMPTY:
		return "the mailbox has children";
	case STORE_ETOOBIG:
		return "the message is too big for the store";
	case STORE_EQUOTA:
		return "over quota";
	default:
		return "unknown store error";
	}
}

int store_mdb_error(int rc)
{
	switch (rc) {
	case 0:
		return STORE_OK;
	case MDB_NOTFOUND:
		return STORE_ENOTFOUND;
	case MDB_KEYEXIST:
		return STORE_EEXIST;
	case MDB_MAP_FULL:
	case ENOSPC:
	case EDQUOT:
		return STORE_EFULL;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
		return STORE_ECORRUPT;
	case MDB_BAD_VALSIZE:
	case EINVAL:
		return STORE_EINVAL;
	default:
		return STORE_EIO;
	}
}

MDB_txn *store_txn_mdb(struct store_txn *txn)
{
	return txn->txn;
}

MDB_dbi store_txn_dbi(struct store_txn *txn, enum store_db db)
{
	return txn->store->dbi[db];
}

int store_txn_has(struct store_txn *txn, enum store_db db)
{
	return !txn->store->missing[db];
}

int store_txn_writable(const struct store_txn *txn)
{
	return txn->writable;
}

void store_txn_touch(struct store_txn *txn)
{
	txn->touched = 1;
}

struct store *store_txn_store(struct store_txn *txn)
{
	return txn->store;
}

const char *store_dir(const struct store *store)
{
	return store->dir;
}

void store_classify(struct store *store, struct store_rcpt *rcpt, const void *data, size_t len)
{
	rcpt->special_use = 0;
	rcpt->hook_meta[0] = '\0';
	if (store->has_hooks && store->hooks.classify != NULL &&
	    store->hooks.classify(store, rcpt, data, len, store->hooks.ctx) != 0) {
		rcpt->special_use = 0;
		rcpt->hook_meta[0] = '\0';
	}
	rcpt->classified = 1;
}

void store_set_hooks(struct store *store, const struct store_hooks *hooks)
{
	if (hooks == NULL) {
		store->has_hooks = 0;
		memset(&store->hooks, 0, sizeof(store->hooks));
	} else {
		store->hooks = *hooks;
		store->has_hooks = 1;
	}
}

/* --- opening -------------------------------------------------------------- */

/* The order of LMDB's default (bytes, then length), 8 bytes at a time: the
 * spam filter's token table (6-byte bucket keys; 12-byte keys before issue
 * 16) is searched thousands of times per message. Being the same order, programs without it read
 * the table alike. */
static int cmp_bytes(const MDB_val *a, const MDB_val *b)
{
	const uint8_t *x = a->mv_data, *y = b->mv_data;
	size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size, i = 0;

	if (a->mv_size == 6 && b->mv_size == 6) { /* a bucket key: user + bucket (spam_db.c) */
		uint64_t u = (uint64_t)store_get_be32(x) << 16 | (uint64_t)x[4] << 8 | x[5];
		uint64_t v = (uint64_t)store_get_be32(y) << 16 | (uint64_t)y[4] << 8 | y[5];
		return u < v ? -1 : u > v;
	}

	for (; i + 8 <= n; i += 8) {
		uint64_t u = store_get_be64(x + i), v = store_get_be64(y + i);
		if (u != v)
			return u < v ? -1 : 1;
	}
	for (; i < n; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return a->mv_size < b->mv_size ? -1 : a->mv_size > b->mv_size;
}

static void notify_change(struct store *s, uint64_t seq);

/* Opens every table and checks the format version. A read-only open commits
 * its read transaction too: aborting it would close the handles it opened
 * (mdb_dbi_open's handles outlive only a committed transaction). */
static int open_dbis(struct store *s, char *err, size_t errsize)
{
	MDB_txn *txn;
	MDB_val k = {7, (void *)"version"}, v;
	int rc = mdb_txn_begin(s->env, NULL, s->read_only ? MDB_RDONLY : 0, &txn);

	if (rc != 0) {
		snprintf(err, errsize, "cannot begin a transaction in %s: %s", s->dir,
			 mdb_strerror(rc));
		return store_mdb_error(rc);
	}
	for (int i = 0; i < DB_COUNT; i++) {
		if (db_names[i] == NULL)
			log_fatal("store: table %d has no name (store.c db_names)", i);
		rc = mdb_dbi_open(txn, db_names[i], s->read_only ? 0 : MDB_CREATE, &s->dbi[i]);
		if (rc == MDB_NOTFOUND && s->read_only && db_optional(i)) {
			s->missing[i] = 1;
			s->dbi[i] = s->dbi[DB_META]; /* never read: see store_txn_has */
			continue;
		}
		if (rc != 0) {
			const char *why = mdb_strerror(rc);
			if (rc == MDB_NOTFOUND && i == 0)
				why = "the store was never initialised";
			else if (rc == MDB_NOTFOUND) /* a store made by an older mailkeep */
				why = "missing (start a mailkeep daemon once to add it)";
			snprintf(err, errsize, "cannot open table %s in %s: %s", db_names[i],
				 s->dir, why);
			mdb_txn_abort(txn);
			return store_mdb_error(rc);
		}
		if (i == DB_SPAM_TOKENS)
			mdb_set_compare(txn, s->dbi[i], cmp_bytes);
	}
	rc = mdb_get(txn, s->dbi[DB_META], &k, &v);
	if (rc == MDB_NOTFOUND && !s->read_only) {
		char ver[] = {'0' + STORE_FORMAT_VERSION};
		v.mv_size = 1;
		v.mv_data = ver;
		rc = mdb_put(txn, s->dbi[DB_META], &k, &v, 0);
	} else if (rc == MDB_NOTFOUND) {
		rc = 0; /* a store nobody wrote to yet */
	} else if (rc == 0 &&
		   (v.mv_size != 1 || ((char *)v.mv_data)[0] != '0' + STORE_FORMAT_VERSION)) {
		snprintf(err, errsize,
			 "%s: store format version %.*s is not known to this mailkeep", s->dir,
			 (int)(v.mv_size > 8 ? 8 : v.mv_size), (char *)v.mv_data);
		mdb_txn_abort(txn);
		return STORE_EINVAL;
	}
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	if (rc != 0) {
		snprintf(err, errsize, "cannot %s the store in %s: %s",
			 s->read_only ? "read" : "initialise", s->dir, mdb_strerror(rc));
		return store_mdb_error(rc);
	}
	return 0;
}

/* LMDB sizes its lock file (the reader table) with ftruncate, which leaves it
 * sparse, and writes reader slots through a shared map: on a full disk, the
 * first use of an untouched page of it would be a SIGBUS rather than an error.
 * Allocating its blocks now makes a full disk an error code, never a crash.
 * The descriptor stays open until after mdb_env_close: closing any descriptor
 * of the lock file would drop this process's fcntl locks on it, which LMDB
 * relies on. fallocate (not posix_fallocate, whose fallback writes zeros into
 * a file other processes are writing) leaves the bytes alone. */
static void reserve_lock_file(struct store *s)
{
	char path[4200];
	struct stat st;

	snprintf(path, sizeof(path), "%s/lock.mdb", s->dir);
	if ((s->lock_fd = open(path, O_RDWR | O_CLOEXEC)) < 0)
		return;
	/* best effort: ENOSPC now is no worse than without */
	if (fstat(s->lock_fd, &st) == 0 && st.st_size > 0)
		(void)fallocate(s->lock_fd, 0, 0, st.st_size);
}

int store_open(const char *dir, const struct store_options *opt, struct store **store_r, char *err,
	       size_t errsize)
{
	struct store_options defaults = {0};
	struct store *s;
	char path[4200];
	int rc, dead = 0;

	if (opt == NULL)
		opt = &defaults;
	*store_r = NULL;
	if (strlen(dir) >= sizeof(s->dir)) {
		snprintf(err, errsize, "store directory name too long");
		return STORE_EINVAL;
	}
	if (!opt->read_only && mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errsize, "cannot create %s: %s", dir, strerror(errno));
		return STORE_EIO;
	}
	s = xcalloc(1, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	s->read_only = opt->read_only;
	s->notify_fd = -1;
	s->lock_fd = -1;
	s->map_size = opt->map_size ? opt->map_size : (uint64_t)1 << 30;
	s->map_max = opt->map_max ? opt->map_max : (uint64_t)1 << 40;
	if (s->map_size > s->map_max)
		s->map_size = s->map_max;
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&s->maplock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&s->wlock, NULL);
	pthread_cond_init(&s->wcond, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->synccond, &ca);
	pthread_cond_init(&s->gathercond, &ca);
	pthread_condattr_destroy(&ca);
	s->queue_tail = &s->queue;
	/* zstd level 6: 6% smaller than 3 on mail, about 80 MB/s here */
	s->compress_level = opt->compress_level < 0    ? 0
			    : opt->compress_level == 0 ? 6
						       : opt->compress_level;
	store_blob_codec_init(s);

	if ((rc = mdb_env_create(&s->env)) != 0)
		goto mdb_fail;
	mdb_env_set_maxdbs(s->env, 64);
	mdb_env_set_maxreaders(s->env, opt->max_readers > 0 ? (unsigned)opt->max_readers : 512);
	/* A bigger file (another process grew it) wins over our initial size. */
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	struct stat st;
	if (stat(path, &st) == 0 && (uint64_t)st.st_size > s->map_size)
		s->map_size = st.st_size;
	if ((rc = mdb_env_set_mapsize(s->env, s->map_size)) != 0)
		goto mdb_fail;
	rc = mdb_env_open(s->env, dir, MDB_NOTLS | (s->read_only ? MDB_RDONLY : 0), 0600);
	if (rc == ENOENT && s->read_only) {
		snprintf(err, errsize, "there is no store in %s (make one with `mailkeep init`)",
			 dir);
		rc = STORE_ENOTFOUND;
		goto fail;
	}
	if (rc != 0)
		goto mdb_fail;
	mdb_reader_check(s->env, &dead);
	reserve_lock_file(s);
	MDB_envinfo info;
	mdb_env_info(s->env, &info);
	s->map_size = info.me_mapsize;
	MDB_stat est;
	mdb_env_stat(s->env, &est);
	s->page_room = est.ms_psize - 16;
	rc = open_dbis(s, err, errsize);
	if (rc != 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/changes", dir);
	s->notify_fd = open(path, (s->read_only ? O_RDONLY : O_RDWR | O_CREAT) | O_CLOEXEC, 0644);
	/* Its 8 bytes exist from now on: a change notice never needs new room. */
	if (!s->read_only && s->notify_fd >= 0 && fstat(s->notify_fd, &st) == 0 && st.st_size < 8)
		notify_change(s, 0);
	*store_r = s;
	return 0;

mdb_fail:
	snprintf(err, errsize, "cannot open the store in %s: %s", dir, mdb_strerror(rc));
	rc = store_mdb_error(rc);
fail:
	if (s->env != NULL)
		mdb_env_close(s->env);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	pthread_rwlock_destroy(&s->maplock);
	pthread_mutex_destroy(&s->wlock);
	pthread_cond_destroy(&s->wcond);
	pthread_cond_destroy(&s->synccond);
	pthread_cond_destroy(&s->gathercond);
	store_blob_codec_free(s);
	free(s);
	return rc;
}

void store_close(struct store **store)
{
	struct store *s = *store;

	if (s == NULL)
		return;
	*store = NULL;
	pthread_mutex_lock(&s->wlock);
	s->syncer_stop = 1;
	pthread_cond_broadcast(&s->synccond);
	pthread_mutex_unlock(&s->wlock);
	if (s->syncer_started)
		pthread_join(s->syncer, NULL);
	if (s->unsynced)
		mdb_env_sync(s->env, 1);
	mdb_env_close(s->env);
	if (s->lock_fd >= 0)
		close(s->lock_fd); /* after mdb_env_close: see reserve_lock_file */
	if (s->notify_fd >= 0)
		close(s->notify_fd);
	pthread_rwlock_destroy(&s->maplock);
	pthread_mutex_destroy(&s->wlock);
	pthread_cond_destroy(&s->wcond);
	pthread_cond_destroy(&s->synccond);
	pthread_cond_destroy(&s->gathercond);
	store_blob_codec_free(s);
	free(s);
}

/* Adopts another process's bigger map, or grows ours to at least want bytes.
 * Takes maplock exclusive: no transaction of this process is open meanwhile. */
static int store_resize(struct store *s, uint64_t want)
{
	int rc = 0;

	pthread_rwlock_wrlock(&s->maplock);
	if (want == 0) {
		rc = mdb_env_set_mapsize(s->env, 0);
	} else if (want > s->map_size) {
		if (want > s->map_max)
			want = s->map_max;
		rc = mdb_env_set_mapsize(s->env, want);
	}
	if (rc == 0) {
		MDB_envinfo info;
		mdb_env_info(s->env, &info);
		s->map_size = info.me_mapsize;
	}
	pthread_rwlock_unlock(&s->maplock);
	return rc;
}

static int store_txn_begin(struct store *s, MDB_txn *parent, unsigned flags, MDB_txn **txn_r)
{
	for (int tries = 0;; tries++) {
		int rc = mdb_txn_begin(s->env, parent, flags, txn_r);
		if (rc != MDB_MAP_RESIZED || parent != NULL || tries > 3)
			return rc;
		/* Our caller holds maplock shared; give it up to adopt the new size. */
		pthread_rwlock_unlock(&s->maplock);
		store_resize(s, 0);
		pthread_rwlock_rdlock(&s->maplock);
	}
}

/* --- read transactions ------------------------------------------------------------------ */

int store_read_begin(struct store *store, struct store_txn **txn_r)
{
	struct store_txn *t = xcalloc(1, sizeof(*t));
	int rc;

	t->store = store;
	pthread_rwlock_rdlock(&store->maplock);
	rc = store_txn_begin(store, NULL, MDB_RDONLY, &t->txn);
	if (rc != 0) {
		pthread_rwlock_unlock(&store->maplock);
		free(t);
		*txn_r = NULL;
		return store_mdb_error(rc);
	}
	t->locked = 1;
	*txn_r = t;
	return 0;
}

void store_read_end(struct store_txn **txn)
{
	struct store_txn *t = *txn;

	if (t == NULL)
		return;
	*txn = NULL;
	store_txn_release(t);
	mdb_txn_abort(t->txn);
	if (t->locked)
		pthread_rwlock_unlock(&t->store->maplock);
	free(t);
}

/* --- write transactions: group commit ------------------------------------------------------ */

static void notify_change(struct store *s, uint64_t seq)
{
	uint8_t buf[8];

	if (s->notify_fd < 0)
		return;
	store_put_be64(buf, seq);
	/* A failed notice only delays watchers until their next periodic check. */
	if (pwrite(s->notify_fd, buf, sizeof(buf), 0) < 0)
		return;
}

/* 1 if the file system holding the store has (next to) no room left. Asked
 * when LMDB says EIO: a short write, which is how a full disk shows in the
 * middle of a commit (a write that fails outright says ENOSPC or EDQUOT).
 * Root may use the blocks reserved for it, so count them for root. */
static int disk_full(const struct store *s)
{
	struct statvfs vfs;

	if (statvfs(s->dir, &vfs) != 0)
		return 0;
	uint64_t avail = (uint64_t)(geteuid() == 0 ? vfs.f_bfree : vfs.f_bavail) * vfs.f_frsize;
	uint64_t total = (uint64_t)vfs.f_blocks * vfs.f_frsize;
	return avail < DISK_SLACK || avail < total / 1000;
}

/* What a failed write becomes. from_mdb: rc is an LMDB or errno code (a
 * failed begin or commit), else a STORE_E* from the job's function. Sets
 * *grow if growing the map may help: a full map does, a full disk does not. */
static int write_error(struct store *s, int rc, int from_mdb, int *grow)
{
	int err = from_mdb ? store_mdb_error(rc) : rc;

	*grow = 0;
	if (from_mdb && rc == MDB_MAP_FULL) {
		*grow = s->map_size < s->map_max;
		return STORE_EFULL;
	}
	if (from_mdb && (rc == ENOSPC || rc == EDQUOT))
		return STORE_EFULL;
	if (err == STORE_EIO && disk_full(s))
		return STORE_EFULL;
	/* A job's STORE_EFULL is MDB_MAP_FULL from a put, unless the disk is full
	 * (LMDB may spill a big transaction's pages to the file). */
	if (!from_mdb && err == STORE_EFULL)
		*grow = s->map_size < s->map_max && !disk_full(s);
	return err < 0 ? err : STORE_EIO;
}

/* Runs one batch in one write transaction. Returns 1 if some jobs must run
 * again after the map grew, 0 otherwise; every other job is done. */
static int run_batch(struct store *s, struct store_wjob *batch)
{
	struct store_txn st = {.store = s, .writable = 1};
	MDB_txn *parent;
	uint64_t seq = 0;
	int rc, any_ok = 0, touched = 0, need_grow = 0, relaxed = 1;

	pthread_rwlock_rdlock(&s->maplock);
	rc = store_txn_begin(s, NULL, 0, &parent);
	if (rc != 0)
		goto fail_all;
	for (struct store_wjob *j = batch; j != NULL; j = j->next) {
		MDB_txn *child;
		j->retry_full = 0;
		relaxed &= j->relaxed;
		rc = mdb_txn_begin(s->env, parent, 0, &child);
		if (rc != 0) {
			j->result = write_error(s, rc, 1, &j->retry_full);
			continue;
		}
		st.txn = child;
		st.touched = 0;
		int r = j->fn(&st, j->ctx);
		store_txn_release(&st);
		if (r == 0) {
			rc = mdb_txn_commit(child);
			if (rc == 0) {
				j->result = 0;
				any_ok = 1;
				touched |= st.touched;
				continue;
			}
			j->result = write_error(s, rc, 1, &j->retry_full);
		} else {
			mdb_txn_abort(child);
			j->result = write_error(s, r, 0, &j->retry_full);
		}
	}
	if (touched) {
		struct store_txn pt = {.store = s, .txn = parent};
		rc = store_meta_get_u64(&pt, "changeseq", &seq);
		if (rc == 0 || rc == STORE_ENOTFOUND)
			rc = store_meta_put_u64(&pt, "changeseq", ++seq);
		if (rc != 0) {
			/* a put into a transaction that holds the batch: no room */
			mdb_txn_abort(parent);
			rc = MDB_MAP_FULL;
			goto fail_all;
		}
	}
	if (!any_ok) {
		mdb_txn_abort(parent);
	} else {
		/* Only this thread (the leader) changes the environment's flags. */
		if (relaxed)
			mdb_env_set_flags(s->env, MDB_NOMETASYNC, 1);
		rc = mdb_txn_commit(parent);
		if (relaxed)
			mdb_env_set_flags(s->env, MDB_NOMETASYNC, 0);
		if (rc != 0)
			goto fail_all;
		s->batch_committed = 1;
		s->batch_relaxed = relaxed;
	}
	pthread_rwlock_unlock(&s->maplock);
	if (touched)
		notify_change(s, seq);
	for (struct store_wjob *j = batch; j != NULL; j = j->next)
		need_grow |= j->retry_full;
	return need_grow;

fail_all:
	/* Nothing of this batch is stored (a failed commit leaves the last
	 * committed state). A full map: grow and run them all again. */
	pthread_rwlock_unlock(&s->maplock);
	int err, grow;
	err = write_error(s, rc, 1, &grow);
	for (struct store_wjob *j = batch; j != NULL; j = j->next) {
		j->result = err;
		j->retry_full = grow;
		need_grow |= grow;
	}
	return need_grow;
}

static void run_batch_growing(struct store *s, struct store_wjob *batch)
{
	for (int round = 0; round < 8 && batch != NULL; round++) {
		if (!run_batch(s, batch))
			break;
		if (store_resize(s, s->map_size * 2) != 0)
			break;
		/* Run again only the jobs that failed for want of room. */
		struct store_wjob *again = NULL, **tail = &again;
		for (struct store_wjob *j = batch; j != NULL; j = j->next) {
			if (j->retry_full) {
				*tail = j;
				tail = &j->next;
			}
		}
		*tail = NULL;
		batch = again;
	}
}

/* Flushes a relaxed commit that no later commit flushed within
 * STORE_RELAXED_SYNC_MS (see the top of this file). */
static void *relaxed_syncer(void *arg)
{
	struct store *s = arg;

	pthread_mutex_lock(&s->wlock);
	while (!s->syncer_stop) {
		if (!s->unsynced) {
			pthread_cond_wait(&s->synccond, &s->wlock);
			continue;
		}
		uint64_t gen = s->commit_gen;
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += STORE_RELAXED_SYNC_MS * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		while (!s->syncer_stop && s->commit_gen == gen &&
		       pthread_cond_timedwait(&s->synccond, &s->wlock, &until) != ETIMEDOUT)
			;
		if (s->syncer_stop || s->commit_gen != gen)
			continue; /* a newer commit flushed this one; wait for its own turn */
		pthread_mutex_unlock(&s->wlock);
		int rc = mdb_env_sync(s->env, 1);
		pthread_mutex_lock(&s->wlock);
		if (rc == 0 && s->commit_gen == gen)
			s->unsynced = 0;
	}
	pthread_mutex_unlock(&s->wlock);
	return NULL;
}

static long mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Called by a new leader, under wlock. When the last commit was a relaxed one
 * of several writers (IMAP sessions changing flags), most of them are on
 * their way back with their next change: they were answered together and now
 * arrive one after the other. Without waiting, the first one to come back
 * commits alone and the rest wait a whole commit for the next one (batches of
 * 1, n-1, 1, n-1, ...). So wait for as many as last time, at most half a
 * commit's time, then take what is there. Durable writes never wait here. */
static void gather(struct store *s)
{
	if (s->last_relaxed_n < 2 || s->queued >= s->last_relaxed_n || !s->queue->relaxed)
		return;
	long wait = s->last_commit_ns / 2;
	if (wait > STORE_GATHER_MAX_NS)
		wait = STORE_GATHER_MAX_NS;
	long until_ns = mono_ns() + wait;
	struct timespec until = {.tv_sec = until_ns / 1000000000L,
				 .tv_nsec = until_ns % 1000000000L};
	s->gathering = 1;
	while (s->queued < s->last_relaxed_n &&
	       pthread_cond_timedwait(&s->gathercond, &s->wlock, &until) != ETIMEDOUT)
		;
	s->gathering = 0;
}

static int write_job(struct store *store, store_write_fn *fn, void *ctx, int relaxed)
{
	struct store_wjob job = {.fn = fn, .ctx = ctx, .relaxed = relaxed};

	if (store->read_only)
		return STORE_EINVAL;
	pthread_mutex_lock(&store->wlock);
	*store->queue_tail = &job;
	store->queue_tail = &job.next;
	store->queued++;
	if (store->gathering)
		pthread_cond_signal(&store->gathercond);
	while (!job.done) {
		if (store->leader_active) {
			pthread_cond_wait(&store->wcond, &store->wlock);
			continue;
		}
		/* Lead: take up to BATCH_MAX queued jobs (ours is among them). */
		store->leader_active = 1;
		gather(store);
		struct store_wjob *batch = store->queue, **tail = &store->queue;
		for (int n = 0; *tail != NULL && n < BATCH_MAX; n++, store->queued--)
			tail = &(*tail)->next;
		store->queue = *tail;
		if (store->queue == NULL)
			store->queue_tail = &store->queue;
		*tail = NULL;
		pthread_mutex_unlock(&store->wlock);

		/* run_batch_growing relinks next pointers; remember the members first. */
		struct store_wjob *members[BATCH_MAX];
		int n = 0;
		for (struct store_wjob *j = batch; j != NULL; j = j->next)
			members[n++] = j;
		store->batch_committed = 0;
		long t0 = mono_ns();
		run_batch_growing(store, batch);
		long took = mono_ns() - t0;

		pthread_mutex_lock(&store->wlock);
		store->last_relaxed_n = store->batch_committed && store->batch_relaxed ? n : 0;
		store->last_commit_ns = took;
		if (store->batch_committed) {
			store->commit_gen++;
			store->unsynced = store->batch_relaxed;
			if (store->unsynced && !store->syncer_started) {
				if (pthread_create(&store->syncer, NULL, relaxed_syncer, store) ==
				    0)
					store->syncer_started = 1;
				else if (mdb_env_sync(store->env, 1) ==
					 0) /* no thread: flush it now */
					store->unsynced = 0;
			}
			if (store->unsynced)
				pthread_cond_signal(&store->synccond);
		}
		for (int i = 0; i < n; i++)
			members[i]->done = 1;
		store->leader_active = 0;
		pthread_cond_broadcast(&store->wcond);
	}
	pthread_mutex_unlock(&store->wlock);
	return job.result;
}

int store_write(struct store *store, store_write_fn *fn, void *ctx)
{
	return write_job(store, fn, ctx, 0);
}

int store_write_relaxed(struct store *store, store_write_fn *fn, void *ctx)
{
	return write_job(store, fn, ctx, 1);
}

/* --- meta counters ------------------------------------------------------------------------- */

int store_meta_get_u64(struct store_txn *txn, const char *name, uint64_t *v_r)
{
	MDB_val k = {strlen(name), (void *)name}, v;
	int rc = mdb_get(txn->txn, txn->store->dbi[DB_META], &k, &v);

	if (rc != 0)
		return store_mdb_error(rc);
	if (v.mv_size != 8)
		return STORE_ECORRUPT;
	*v_r = store_get_be64(v.mv_data);
	return 0;
}

int store_meta_put_u64(struct store_txn *txn, const char *name, uint64_t value)
{
	uint8_t buf[8];
	MDB_val k = {strlen(name), (void *)name}, v = {8, buf};

	store_put_be64(buf, value);
	return store_mdb_error(mdb_put(txn->txn, txn->store->dbi[DB_META], &k, &v, 0));
}

int store_change_seq(struct store_txn *txn, uint64_t *seq_r)
{
	int rc = store_meta_get_u64(txn, "changeseq", seq_r);

	if (rc == STORE_ENOTFOUND) {
		*seq_r = 0;
		rc = 0;
	}
	return rc;
}

/* --- change notification ----------------------------------------------------------------- */

int store_watch_open(struct store *store)
{
	char path[4200];
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

	if (fd < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/changes", store->dir);
	if (inotify_add_watch(fd, path, IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

void store_watch_drain(int fd)
{
	char buf[4096];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

/* --- prefixes ----------------------------------------------------------------------------- */

int store_delete_prefix(struct store_txn *txn, enum store_db db, const void *prefix, size_t len)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = mdb_cursor_open(txn->txn, txn->store->dbi[db], &cur);

	if (rc != 0)
		return store_mdb_error(rc);
	for (;;) {
		k.mv_size = len;
		k.mv_data = (void *)prefix;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc != 0 || k.mv_size < len || memcmp(k.mv_data, prefix, len) != 0)
			break;
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		txn->touched = 1;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : store_mdb_error(rc);
}

/* --- cache ---------------------------------------------------------------------------------- */

static int cache_key(uint8_t *key, const uint8_t hash[STORE_HASH_LEN], const char *kind,
		     size_t *len_r)
{
	size_t kl = strlen(kind);

	if (kl == 0 || kl > 64)
		return STORE_EINVAL;
	memcpy(key, hash, STORE_HASH_LEN);
	memcpy(key + STORE_HASH_LEN, kind, kl);
	*len_r = STORE_HASH_LEN + kl;
	return 0;
}

int store_cache_get(struct store_txn *txn, const uint8_t hash[STORE_HASH_LEN], const char *kind,
		    const void **data_r, size_t *len_r)
{
	uint8_t key[STORE_HASH_LEN + 64];
	MDB_val k, v;
	int rc = cache_key(key, hash, kind, &k.mv_size);

	if (rc != 0)
		return rc;
	k.mv_data = key;
	rc = mdb_get(txn->txn, txn->store->dbi[DB_CACHE], &k, &v);
	if (rc != 0)
		return store_mdb_error(rc);
	*data_r = v.mv_data;
	*len_r = v.mv_size;
	return 0;
}

int store_cache_put(struct store_txn *txn, const uint8_t hash[STORE_HASH_LEN], const char *kind,
		    const void *data, size_t len)
{
	uint8_t key[STORE_HASH_LEN + 64];
	MDB_val k, v = {len, (void *)data};
	int rc = cache_key(key, hash, kind, &k.mv_size);

	if (rc != 0)
		return rc;
	if (!txn->writable)
		return STORE_EINVAL;
	k.mv_data = key;
	/* Only for stored blobs: a cache entry must go when its blob goes. */
	struct store_blob_info bi;
	if ((rc = store_blob_info(txn, hash, &bi)) != 0)
		return rc;
	return store_mdb_error(mdb_put(txn->txn, txn->store->dbi[DB_CACHE], &k, &v, 0));
}

/* --- maintenance ------------------------------------------------------------------------------ */

/* Sums a cursor's values with sum(v); 0 or a STORE_E* code. */
static int stats_walk(struct store_txn *txn, enum store_db db, uint64_t *total,
		      uint64_t (*sum)(const MDB_val *k, const MDB_val *v))
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = mdb_cursor_open(txn->txn, txn->store->dbi[db], &cur);

	if (rc != 0)
		return store_mdb_error(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
		*total += sum(&k, &v);
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : store_mdb_error(rc);
}

static uint64_t blob_size(const MDB_val *k, const MDB_val *v)
{
	(void)k;
	return v->mv_size >= 21 ? store_get_be64((uint8_t *)v->mv_data + 5) : 0;
}

static uint64_t blob_encoded(const MDB_val *k, const MDB_val *v)
{
	(void)k;
	return v->mv_size >= 21 ? store_get_be64((uint8_t *)v->mv_data + 13) : 0;
}

static uint64_t blob_compressed(const MDB_val *k, const MDB_val *v)
{
	(void)k;
	return v->mv_size >= 21 && ((uint8_t *)v->mv_data)[4] != STORE_ENC_RAW;
}

/* Pages on LMDB's free list (table 0): each value is a count and that many page numbers. */
static int free_pages(struct store_txn *txn, uint64_t *pages_r)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = mdb_cursor_open(txn->txn, 0, &cur);

	*pages_r = 0;
	if (rc != 0)
		return store_mdb_error(rc);
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0)
		if (v.mv_size >= sizeof(size_t))
			*pages_r += *(size_t *)v.mv_data;
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : store_mdb_error(rc);
}

static uint64_t msg_size(const MDB_val *k, const MDB_val *v)
{
	struct store_msg m;
	return store_msg_decode(k, v, &m) == 0 ? m.size : 0;
}

int store_stats(struct store *store, struct store_stats *st)
{
	const enum store_db dbs[] = {DB_USERS, DB_MAILBOXES, DB_MSGS, DB_ALIASES, DB_BLOBINFO};
	uint64_t *const counts[] = {&st->users, &st->mailboxes, &st->messages, &st->aliases,
				    &st->blobs};
	struct store_txn *txn;
	MDB_stat ms;
	MDB_envinfo info;
	int rc;

	memset(st, 0, sizeof(*st));
	if ((rc = store_read_begin(store, &txn)) != 0)
		return rc;
	for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]) && rc == 0; i++) {
		rc = store_mdb_error(mdb_stat(txn->txn, store->dbi[dbs[i]], &ms));
		if (rc == 0)
			*counts[i] = ms.ms_entries;
	}
	if (rc == 0)
		rc = stats_walk(txn, DB_BLOBINFO, &st->bytes_stored, blob_size);
	if (rc == 0)
		rc = stats_walk(txn, DB_BLOBINFO, &st->bytes_encoded, blob_encoded);
	if (rc == 0)
		rc = stats_walk(txn, DB_BLOBINFO, &st->blobs_compressed, blob_compressed);
	if (rc == 0 && !store->missing[DB_DICTS] &&
	    (rc = store_mdb_error(mdb_stat(txn->txn, store->dbi[DB_DICTS], &ms))) == 0)
		st->dicts = ms.ms_entries;
	uint64_t freep = 0;
	if (rc == 0)
		rc = free_pages(txn, &freep);
	if (rc == 0)
		rc = stats_walk(txn, DB_MSGS, &st->bytes_referenced, msg_size);
	if (rc == 0)
		rc = store_mdb_error(mdb_env_info(store->env, &info));
	if (rc == 0)
		rc = store_mdb_error(mdb_env_stat(store->env, &ms));
	if (rc == 0) {
		st->map_size = info.me_mapsize;
		st->file_bytes = (uint64_t)(info.me_last_pgno + 1) * ms.ms_psize;
		st->free_bytes = freep * ms.ms_psize;
	}
	store_read_end(&txn);
	if (rc != 0)
		memset(st, 0, sizeof(*st));
	return rc;
}

int store_backup(struct store *store, const char *dst, char *err, size_t errsize)
{
	char path[4200];
	struct stat st;
	int rc;

	if (mkdir(dst, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errsize, "cannot create %s: %s", dst, strerror(errno));
		return STORE_EIO;
	}
	snprintf(path, sizeof(path), "%s/data.mdb", dst);
	if (stat(path, &st) == 0) {
		snprintf(err, errsize, "%s already holds a store; back up into a new directory",
			 dst);
		return STORE_EEXIST;
	}
	/* A read transaction inside: consistent while writers go on. */
	pthread_rwlock_rdlock(&store->maplock);
	rc = mdb_env_copy2(store->env, dst, MDB_CP_COMPACT);
	pthread_rwlock_unlock(&store->maplock);
	if (rc != 0) {
		snprintf(err, errsize, "cannot copy the store to %s: %s", dst, mdb_strerror(rc));
		unlink(path);
		return store_mdb_error(rc);
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	snprintf(path, sizeof(path), "%s/changes", dst);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
	return 0;
}
