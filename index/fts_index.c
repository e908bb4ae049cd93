/* fts_index — the words index: the queue a delivery adds to, the indexer
 * that empties it in batches, and the background thread the daemons run
 * (fts.h has the tables and the rules). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "index/fts.h"
#include "index/store_internal.h"
#include "lib/array.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

/* a batch rewrites the words tree's pages it touches: fewer, bigger ones */
#define BATCH_DOCS 4096
#define BATCH_TEXT ((size_t)32 << 20) /* and the memory a batch holds */

static MDB_dbi dbi(struct store_txn *txn, enum store_db db)
{
	return store_txn_dbi(txn, db);
}

static int meta_get(struct store_txn *txn, const char *name, uint64_t *v_r)
{
	MDB_val k = {strlen(name), (void *)name}, v;
	int rc = mdb_get(store_txn_mdb(txn), dbi(txn, DB_META), &k, &v);
	if (rc != 0)
		return store_mdb_error(rc);
	if (v.mv_size != 8)
		return STORE_ECORRUPT;
	*v_r = store_get_be64(v.mv_data);
	return 0;
}

static int meta_put(struct store_txn *txn, const char *name, uint64_t value)
{
	uint8_t b[8];
	MDB_val k = {strlen(name), (void *)name}, v = {8, b};
	store_put_be64(b, value);
	return store_mdb_error(mdb_put(store_txn_mdb(txn), dbi(txn, DB_META), &k, &v, 0));
}

/* --- store hooks ------------------------------------------------------------------- */

int fts_blob_added(struct store_txn *txn, const uint8_t hash[STORE_HASH_LEN])
{
	MDB_val k = {STORE_HASH_LEN, (void *)hash}, v = {0, ""};
	return store_mdb_error(mdb_put(store_txn_mdb(txn), dbi(txn, DB_FTS_QUEUE), &k, &v, 0));
}

int fts_blob_freed(struct store_txn *txn, const uint8_t hash[STORE_HASH_LEN])
{
	MDB_val k = {STORE_HASH_LEN, (void *)hash}, v;
	MDB_txn *t = store_txn_mdb(txn);
	int rc = mdb_del(t, dbi(txn, DB_FTS_QUEUE), &k, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_mdb_error(rc);
	if ((rc = mdb_get(t, dbi(txn, DB_FTS_HASHES), &k, &v)) == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return store_mdb_error(rc);
	if (v.mv_size == 4) {
		uint8_t id[4];
		memcpy(id, v.mv_data, 4);
		MDB_val dk = {4, id};
		rc = mdb_del(t, dbi(txn, DB_FTS_DOCS), &dk, NULL);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return store_mdb_error(rc);
	}
	return store_mdb_error(mdb_del(t, dbi(txn, DB_FTS_HASHES), &k, NULL));
}

int fts_queue_length(struct store_txn *txn, uint64_t *n_r)
{
	MDB_stat ms;
	*n_r = 0;
	if (!store_txn_has(txn, DB_FTS_QUEUE))
		return 0;
	int rc = mdb_stat(store_txn_mdb(txn), dbi(txn, DB_FTS_QUEUE), &ms);
	if (rc == 0)
		*n_r = ms.ms_entries;
	return store_mdb_error(rc);
}

/* --- varints ------------------------------------------------------------------------ */

static size_t varint_put(uint8_t *p, uint32_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* Decodes a segment: calls fn(docid) for its key's docid and each delta. */
static int segment_each(uint32_t first, const uint8_t *p, size_t n,
			void (*fn)(uint32_t id, void *ctx), void *ctx, uint32_t *last_r)
{
	uint32_t id = first;
	if (fn)
		fn(id, ctx);
	for (size_t i = 0; i < n;) {
		uint32_t d = 0;
		int sh = 0;
		while (i < n && (p[i] & 0x80) && sh < 28) {
			d |= (uint32_t)(p[i++] & 0x7F) << sh;
			sh += 7;
		}
		if (i >= n)
			return STORE_ECORRUPT;
		d |= (uint32_t)p[i++] << sh;
		id += d;
		if (fn)
			fn(id, ctx);
	}
	if (last_r)
		*last_r = id;
	return 0;
}

/* --- indexing ----------------------------------------------------------------------- */

struct doc {
	uint8_t hash[STORE_HASH_LEN];
	uint32_t id;
	int gone; /* freed or taken by another indexer meanwhile */
};

struct posting {
	char *word; /* owned by the batch's word arena */
	uint8_t len;
	uint32_t doc; /* index into docs */
};

struct batch {
	struct doc *docs;
	size_t ndocs, capdocs;
	struct posting *post;
	size_t npost, cappost;
	char *arena; /* words, FTS_WORD_MAX + 1 bytes each slot */
	size_t narena, caparena;
	size_t text;
	uint64_t queued;
};

struct collect {
	struct batch *b;
	uint32_t doc;
};

static void collect_word(const char *w, size_t len, void *ctx)
{
	struct collect *c = ctx;
	struct batch *b = c->b;
	ARRAY_RESERVE(b->arena, b->caparena, b->narena + len);
	memcpy(b->arena + b->narena, w, len);
	struct posting *p = ARRAY_PUSH(b->post, b->npost, b->cappost);
	p->word = (char *)(uintptr_t)b->narena; /* an offset until the arena stops moving */
	p->len = (uint8_t)len;
	p->doc = c->doc;
	b->narena += len;
}

static int cmp_post(const void *a, const void *b)
{
	const struct posting *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->word, y->word, n);
	if (c == 0)
		c = (int)x->len - (int)y->len;
	if (c == 0)
		c = x->doc < y->doc ? -1 : x->doc > y->doc;
	return c;
}

/* Reads up to BATCH_DOCS queued blobs and their words. */
static int read_batch(struct store *store, struct batch *b)
{
	struct store_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, mrc;

	if ((rc = store_read_begin(store, &txn)) != 0)
		return rc;
	if (!store_txn_has(txn, DB_FTS_QUEUE)) {
		store_read_end(&txn);
		return 0;
	}
	fts_queue_length(txn, &b->queued);
	if ((rc = store_mdb_error(
		 mdb_cursor_open(store_txn_mdb(txn), dbi(txn, DB_FTS_QUEUE), &cur))) != 0) {
		store_read_end(&txn);
		return rc;
	}
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	     mrc == 0 && b->ndocs < BATCH_DOCS && b->text < BATCH_TEXT;
	     mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != STORE_HASH_LEN)
			continue;
		struct doc *d = ARRAY_PUSH(b->docs, b->ndocs, b->capdocs);
		memset(d, 0, sizeof(*d));
		memcpy(d->hash, k.mv_data, STORE_HASH_LEN);
		const void *data;
		size_t len;
		if (store_blob_get(txn, d->hash, &data, &len) != 0) {
			d->gone = 1; /* only dequeued */
			continue;
		}
		struct fts_text t;
		fts_text_extract(data, len, &t);
		size_t first = b->npost;
		struct collect c = {b, (uint32_t)(b->ndocs - 1)};
		fts_text_words(&t, collect_word, &c);
		b->text += t.hdrlen + t.bodylen + t.nameslen;
		fts_text_free(&t);
		/* distinct words of this doc only: sort its postings, drop repeats */
		for (size_t i = first; i < b->npost; i++)
			b->post[i].word = b->arena + (uintptr_t)b->post[i].word;
		qsort(b->post + first, b->npost - first, sizeof(*b->post), cmp_post);
		size_t o = first;
		for (size_t i = first; i < b->npost; i++)
			if (o == first || cmp_post(&b->post[o - 1], &b->post[i]) != 0)
				b->post[o++] = b->post[i];
		/* back to offsets: the arena may still move */
		for (size_t i = first; i < o; i++)
			b->post[i].word = (char *)(uintptr_t)(b->post[i].word - b->arena);
		b->npost = o;
	}
	mdb_cursor_close(cur);
	store_read_end(&txn);
	for (size_t i = 0; i < b->npost; i++)
		b->post[i].word = b->arena + (uintptr_t)b->post[i].word;
	return mrc == 0 || mrc == MDB_NOTFOUND ? 0 : store_mdb_error(mrc);
}

/* Appends docids ids[0..n) (ascending, above every docid of the word) to word's list. */
static int append_word(struct store_txn *txn, MDB_cursor *cur, const char *w, size_t wl,
		       const uint32_t *ids, size_t n)
{
	uint8_t key[FTS_WORD_MAX + 5], seg[FTS_SEGMENT_MAX + 8];
	MDB_val k, v;
	size_t segn = 0;
	uint32_t first = 0, last = 0;
	int have = 0, rc;

	memcpy(key, w, wl);
	key[wl] = 0;
	store_put_be32(key + wl + 1, 0xFFFFFFFF);
	k.mv_size = wl + 5;
	k.mv_data = key;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	rc =
	    rc == 0 ? mdb_cursor_get(cur, &k, &v, MDB_PREV) : mdb_cursor_get(cur, &k, &v, MDB_LAST);
	if (rc == 0 && k.mv_size == wl + 5 && memcmp(k.mv_data, w, wl) == 0 &&
	    ((uint8_t *)k.mv_data)[wl] == 0 && v.mv_size <= FTS_SEGMENT_MAX) {
		first = store_get_be32((uint8_t *)k.mv_data + wl + 1);
		if (segment_each(first, v.mv_data, v.mv_size, NULL, NULL, &last) == 0) {
			memcpy(seg, v.mv_data, v.mv_size);
			segn = v.mv_size;
			have = 1;
		}
	} else if (rc != 0 && rc != MDB_NOTFOUND) {
		return store_mdb_error(rc);
	}
	for (size_t i = 0; i <= n; i++) {
		uint8_t tmp[8];
		size_t tl = i < n && have ? varint_put(tmp, ids[i] - last) : 0;
		if (i == n || !have || segn + tl > FTS_SEGMENT_MAX) {
			if (have) { /* write the segment we have */
				store_put_be32(key + wl + 1, first);
				k.mv_size = wl + 5;
				k.mv_data = key;
				v.mv_size = segn;
				v.mv_data = seg;
				if ((rc = mdb_put(store_txn_mdb(txn), dbi(txn, DB_FTS_WORDS), &k,
						  &v, 0)) != 0)
					return store_mdb_error(rc);
			}
			if (i == n)
				break;
			have = 1;
			first = last = ids[i];
			segn = 0;
			continue;
		}
		memcpy(seg + segn, tmp, tl);
		segn += tl;
		last = ids[i];
	}
	return 0;
}

static int write_batch(struct store_txn *txn, void *ctx)
{
	struct batch *b = ctx;
	MDB_txn *t = store_txn_mdb(txn);
	uint64_t next = 1;
	int rc;

	if ((rc = meta_get(txn, "fts_next_doc", &next)) != 0 && rc != STORE_ENOTFOUND)
		return rc;
	if (next == 0)
		next = 1;
	for (size_t i = 0; i < b->ndocs; i++) {
		struct doc *d = &b->docs[i];
		MDB_val k = {STORE_HASH_LEN, d->hash}, v;
		if (mdb_get(t, dbi(txn, DB_FTS_QUEUE), &k, &v) != 0) {
			d->gone = 1; /* another indexer took it */
			continue;
		}
		if ((rc = mdb_del(t, dbi(txn, DB_FTS_QUEUE), &k, NULL)) != 0)
			return store_mdb_error(rc);
		if (d->gone)
			continue;
		struct store_blob_info bi;
		if (store_blob_info(txn, d->hash, &bi) != 0) {
			d->gone = 1;
			continue;
		}
		if (next >= 0xFFFFFFF0u)
			return STORE_EFULL; /* 4 billion documents: mailkeep reindex renumbers */
		d->id = (uint32_t)next++;
		uint8_t id[4];
		store_put_be32(id, d->id);
		MDB_val dk = {4, id}, dv = {STORE_HASH_LEN, d->hash}, hv = {4, id};
		if ((rc = mdb_put(t, dbi(txn, DB_FTS_DOCS), &dk, &dv, 0)) != 0 ||
		    (rc = mdb_put(t, dbi(txn, DB_FTS_HASHES), &k, &hv, 0)) != 0)
			return store_mdb_error(rc);
	}
	if ((rc = meta_put(txn, "fts_next_doc", next)) != 0)
		return rc;
	qsort(b->post, b->npost, sizeof(*b->post), cmp_post);
	MDB_cursor *cur;
	if ((rc = mdb_cursor_open(t, dbi(txn, DB_FTS_WORDS), &cur)) != 0)
		return store_mdb_error(rc);
	uint32_t *ids = NULL;
	size_t nids = 0, capids = 0;
	for (size_t i = 0; i < b->npost && rc == 0;) {
		size_t j = i;
		nids = 0;
		for (; j < b->npost && b->post[j].len == b->post[i].len &&
		       memcmp(b->post[j].word, b->post[i].word, b->post[i].len) == 0;
		     j++)
			if (!b->docs[b->post[j].doc].gone)
				*ARRAY_PUSH(ids, nids, capids) = b->docs[b->post[j].doc].id;
		if (nids > 0)
			rc = append_word(txn, cur, b->post[i].word, b->post[i].len, ids, nids);
		i = j;
	}
	free(ids);
	mdb_cursor_close(cur);
	store_txn_touch(txn);
	return rc;
}

static void batch_free(struct batch *b)
{
	free(b->docs);
	free(b->post);
	free(b->arena);
	memset(b, 0, sizeof(*b));
}

int fts_index_pending(struct store *store, size_t max, uint64_t *done_r,
		      void (*progress)(uint64_t done, uint64_t queued, void *ctx), void *ctx)
{
	uint64_t done = 0;
	int rc = 0;

	for (;;) {
		struct batch b = {0};
		if ((rc = read_batch(store, &b)) != 0 || b.ndocs == 0) {
			batch_free(&b);
			break;
		}
		rc = store_write_relaxed(store, write_batch, &b);
		size_t n = b.ndocs;
		uint64_t queued = b.queued > n ? b.queued - n : 0;
		batch_free(&b);
		if (rc != 0)
			break;
		done += n;
		if (progress)
			progress(done, queued, ctx);
		if (max && done >= max)
			break;
	}
	if (done_r)
		*done_r = done;
	return rc;
}

/* --- reset ----------------------------------------------------------------------------- */

static int drop_fn(struct store_txn *txn, void *ctx)
{
	(void)ctx;
	static const enum store_db dbs[] = {DB_FTS_QUEUE, DB_FTS_DOCS, DB_FTS_HASHES, DB_FTS_WORDS};
	for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
		int rc = mdb_drop(store_txn_mdb(txn), dbi(txn, dbs[i]), 0);
		if (rc != 0)
			return store_mdb_error(rc);
	}
	store_txn_touch(txn);
	return meta_put(txn, "fts_next_doc", 1);
}

struct requeue {
	uint8_t from[STORE_HASH_LEN];
	int have_from, at_end;
};

static int requeue_fn(struct store_txn *txn, void *ctx)
{
	struct requeue *r = ctx;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = mdb_cursor_open(store_txn_mdb(txn), dbi(txn, DB_BLOBINFO), &cur), n = 0;
	if (rc != 0)
		return store_mdb_error(rc);
	if (r->have_from) {
		k.mv_size = STORE_HASH_LEN;
		k.mv_data = r->from;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc == 0 && memcmp(k.mv_data, r->from, STORE_HASH_LEN) == 0)
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	} else {
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	}
	for (; rc == 0 && n < 10000; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), n++) {
		if (k.mv_size != STORE_HASH_LEN)
			continue;
		memcpy(r->from, k.mv_data, STORE_HASH_LEN);
		r->have_from = 1;
		MDB_val qv = {0, ""};
		int prc = mdb_put(store_txn_mdb(txn), dbi(txn, DB_FTS_QUEUE), &k, &qv, 0);
		if (prc != 0) {
			mdb_cursor_close(cur);
			return store_mdb_error(prc);
		}
	}
	mdb_cursor_close(cur);
	r->at_end = rc == MDB_NOTFOUND;
	store_txn_touch(txn);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_mdb_error(rc);
}

int fts_reset(struct store *store)
{
	struct requeue r = {0};
	int rc = store_write(store, drop_fn, NULL);
	while (rc == 0 && !r.at_end)
		rc = store_write(store, requeue_fn, &r);
	return rc;
}

/* --- the background indexer ------------------------------------------------------------- */

static struct {
	pthread_mutex_t lock;
	pthread_t thread;
	int running, stop_pipe[2];
	struct store *store;
} indexer = {.lock = PTHREAD_MUTEX_INITIALIZER, .stop_pipe = {-1, -1}};

static void *indexer_main(void *arg)
{
	struct store *store = arg;
	char path[4200];
	int wfd = store_watch_open(store);

	snprintf(path, sizeof(path), "%s/fts.lock", store_dir(store));
	int lfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	for (;;) {
		struct pollfd p[2] = {{indexer.stop_pipe[0], POLLIN, 0}, {wfd, POLLIN, 0}};
		int r = poll(p, wfd >= 0 ? 2 : 1, 1000); /* and once a second anyway */
		if (r > 0 && (p[0].revents & POLLIN))
			break;
		if (wfd >= 0 && r > 0 && (p[1].revents & POLLIN))
			store_watch_drain(wfd);
		/* One indexer at a time across the instance's processes. */
		if (lfd >= 0 && flock(lfd, LOCK_EX | LOCK_NB) != 0)
			continue;
		uint64_t done = 0;
		int rc = fts_index_pending(store, 0, &done, NULL, NULL);
		if (lfd >= 0)
			flock(lfd, LOCK_UN);
		if (rc != 0)
			log_warn("fts: indexing stopped: %s (retried at the next change)",
				 store_strerror(rc));
	}
	if (lfd >= 0)
		close(lfd);
	if (wfd >= 0)
		close(wfd);
	return NULL;
}

void fts_indexer_start(struct store *store)
{
	pthread_mutex_lock(&indexer.lock);
	if (!indexer.running && pipe2(indexer.stop_pipe, O_CLOEXEC) == 0) {
		indexer.store = store;
		if (pthread_create(&indexer.thread, NULL, indexer_main, store) == 0) {
			indexer.running = 1;
		} else {
			close(indexer.stop_pipe[0]);
			close(indexer.stop_pipe[1]);
			log_warn(
			    "fts: cannot start the indexer thread: new mail is searched unindexed");
		}
	}
	pthread_mutex_unlock(&indexer.lock);
}

void fts_indexer_stop(void)
{
	pthread_mutex_lock(&indexer.lock);
	if (indexer.running) {
		(void)!write(indexer.stop_pipe[1], "x", 1);
		pthread_join(indexer.thread, NULL);
		close(indexer.stop_pipe[0]);
		close(indexer.stop_pipe[1]);
		indexer.running = 0;
	}
	pthread_mutex_unlock(&indexer.lock);
}
