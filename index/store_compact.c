/* store_compact — dictionaries trained from the store's own mail, and the
 * conversion of a live store to compressed blobs, in place and resumable.
 *
 * Compaction walks the blobs in hash order in rounds. A round reads up to
 * opts->batch blobs that need work in a read transaction (which never blocks
 * a writer), compresses them there, then writes them in one short write
 * transaction (store_write, shared with the daemons' group commit): each blob
 * is replaced only if its record is still the one that was read, and the
 * hash the round got to is kept in the meta key "compact_pos" in the same
 * transaction. A kill at any moment leaves a consistent store, and the next
 * run goes on from compact_pos. The end of a run deletes compact_pos.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zdict.h>
#include <zstd.h>

#include "index/store_priv.h"
#include "lib/array.h"
#include "lib/xmalloc.h"

#define DICT_SIZE (112 * 1024)
#define SAMPLE_MSG_MAX (16 * 1024)
#define TRAIN_MIN_SAMPLES 64
#define ROUND_BYTES_MAX ((size_t)32 << 20)

/* --- dictionaries ------------------------------------------------------------------ */

struct dict_put {
	const void *dict;
	size_t len;
	uint32_t id;
};

static int dict_put_fn(struct store_txn *txn, void *ctx)
{
	struct dict_put *d = ctx;
	MDB_cursor *cur;
	MDB_val k, v;
	uint8_t key[4];
	int rc = mdb_cursor_open(txn->txn, txn->store->dbi[DB_DICTS], &cur);

	if (rc != 0)
		return store_mdb_error(rc);
	rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		d->id = 1;
	else if (rc == 0 && k.mv_size == 4)
		d->id = store_get_be32(k.mv_data) + 1;
	else
		return rc ? store_mdb_error(rc) : STORE_ECORRUPT;
	store_put_be32(key, d->id);
	k.mv_size = 4;
	k.mv_data = key;
	v.mv_size = d->len;
	v.mv_data = (void *)d->dict;
	if ((rc = mdb_put(txn->txn, txn->store->dbi[DB_DICTS], &k, &v, MDB_NOOVERWRITE)) != 0)
		return store_mdb_error(rc);
	txn->touched = 1;
	return store_meta_put_u64(txn, "dict", d->id);
}

/* Trains from n samples laid end to end in samples and stores the result. */
static int train_and_put(struct store *store, const uint8_t *samples, const size_t *sizes, size_t n,
			 uint32_t *id_r, char *err, size_t errsize)
{
	if (n < TRAIN_MIN_SAMPLES) {
		snprintf(err, errsize,
			 "too little mail to train a dictionary from (%zu messages, %d needed)", n,
			 TRAIN_MIN_SAMPLES);
		return STORE_ENOTFOUND;
	}
	uint8_t *dict = xmalloc(DICT_SIZE);
	size_t dl = ZDICT_trainFromBuffer(dict, DICT_SIZE, samples, sizes, (unsigned)n);
	if (ZDICT_isError(dl)) {
		snprintf(err, errsize, "training a dictionary failed: %s", ZDICT_getErrorName(dl));
		free(dict);
		return STORE_ENOTFOUND;
	}
	struct dict_put d = {dict, dl, 0};
	int rc = store_write(store, dict_put_fn, &d);
	free(dict);
	if (rc != 0) {
		snprintf(err, errsize, "cannot store the dictionary: %s", store_strerror(rc));
		return rc;
	}
	*id_r = d.id;
	return 0;
}

int store_dict_train_from(struct store *store, const void *const *msgs, const size_t *lens,
			  size_t n, uint32_t *id_r, char *err, size_t errsize)
{
	size_t total = 0, k = 0;
	for (size_t i = 0; i < n; i++)
		total += lens[i] < SAMPLE_MSG_MAX ? lens[i] : SAMPLE_MSG_MAX;
	uint8_t *samples = xmalloc(total + 1);
	size_t *sizes = xcalloc(n + 1, sizeof(*sizes));
	total = 0;
	for (size_t i = 0; i < n; i++) {
		size_t l = lens[i] < SAMPLE_MSG_MAX ? lens[i] : SAMPLE_MSG_MAX;
		if (l < 64)
			continue;
		memcpy(samples + total, msgs[i], l);
		sizes[k++] = l;
		total += l;
	}
	int rc = train_and_put(store, samples, sizes, k, id_r, err, errsize);
	free(samples);
	free(sizes);
	return rc;
}

int store_dict_train(struct store *store, size_t sample_bytes, uint32_t *id_r, char *err,
		     size_t errsize)
{
	struct store_txn *txn;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	MDB_stat ms;
	uint8_t *samples = NULL;
	size_t *sizes = NULL, n = 0, cap = 0, total = 0;
	int rc;

	if (sample_bytes == 0)
		sample_bytes = (size_t)8 << 20;
	if ((rc = store_read_begin(store, &txn)) != 0) {
		snprintf(err, errsize, "cannot read the store: %s", store_strerror(rc));
		return rc;
	}
	samples = xmalloc(sample_bytes + SAMPLE_MSG_MAX);
	/* Hash order is a random order: every k-th blob is a fair sample. */
	mdb_stat(txn->txn, store->dbi[DB_BLOBINFO], &ms);
	uint64_t step = ms.ms_entries * 8192 / sample_bytes + 1;
	if ((rc = store_mdb_error(mdb_cursor_open(txn->txn, store->dbi[DB_BLOBINFO], &cur))) != 0)
		goto out;
	uint64_t i = 0;
	int mrc;
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0 && total < sample_bytes;
	     mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), i++) {
		struct store_blob_info bi;
		const void *data;
		size_t len;
		void *buf;
		if (i % step != 0 || k.mv_size != STORE_HASH_LEN ||
		    store_blob_info(txn, k.mv_data, &bi) != 0 || bi.size < 64 ||
		    store_blob_decode(txn, &bi, &data, &len, &buf) != 0)
			continue;
		if (len > SAMPLE_MSG_MAX)
			len = SAMPLE_MSG_MAX;
		memcpy(samples + total, data, len);
		free(buf);
		*ARRAY_PUSH(sizes, n, cap) = len;
		total += len;
	}
	if (mrc != 0 && mrc != MDB_NOTFOUND) {
		rc = store_mdb_error(mrc);
		snprintf(err, errsize, "cannot read the blobs: %s", store_strerror(rc));
		goto out;
	}
	mdb_cursor_close(cur);
	cur = NULL;
	store_read_end(&txn);
	rc = train_and_put(store, samples, sizes, n, id_r, err, errsize);
out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	store_read_end(&txn);
	free(samples);
	free(sizes);
	return rc;
}

/* --- compaction --------------------------------------------------------------------- */

struct item {
	struct store_blob_info bi; /* as read */
	struct blob_enc e;
};

struct round {
	struct item *items;
	size_t n, cap;
	uint8_t last[STORE_HASH_LEN]; /* the last hash looked at */
	int have_last, at_end;
	uint64_t looked;
	uint64_t converted, before, after;
};

static int meta_get_pos(struct store_txn *txn, uint8_t pos[STORE_HASH_LEN])
{
	MDB_val k = {11, (void *)"compact_pos"}, v;
	int rc = mdb_get(txn->txn, txn->store->dbi[DB_META], &k, &v);

	if (rc != 0)
		return store_mdb_error(rc);
	if (v.mv_size != STORE_HASH_LEN)
		return STORE_ECORRUPT;
	memcpy(pos, v.mv_data, STORE_HASH_LEN);
	return 0;
}

/* Whether bi should be encoded again with dict at level. */
static int needs_work(const struct store_blob_info *bi, uint32_t dict, int recompress)
{
	if (bi->size < 64)
		return 0;
	if (bi->encoding == STORE_ENC_RAW)
		return 1;
	return recompress && bi->dict != dict;
}

static uint64_t cost_of(const struct store_blob_info *bi)
{
	/* as store_blob.c counts: inline, pages, or chunks */
	if (bi->encoding == STORE_ENC_PACKED)
		return bi->stored + (uint64_t)bi->chunks * 18 + 12;
	if (bi->stored + STORE_HASH_LEN + 8 <= 2038)
		return bi->stored + STORE_HASH_LEN + 10;
	return (bi->stored + 16 + 4095) / 4096 * 4096;
}

/* Reads and encodes the next round's blobs after pos (all if !have_pos). */
static int read_round(struct store *store, const uint8_t *pos, int have_pos, uint32_t dict,
		      const struct store_compact_opts *o, struct round *r)
{
	struct store_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	size_t bytes = 0;
	int rc, mrc;

	if ((rc = store_read_begin(store, &txn)) != 0)
		return rc;
	if ((rc = store_mdb_error(mdb_cursor_open(txn->txn, store->dbi[DB_BLOBINFO], &cur))) != 0) {
		store_read_end(&txn);
		return rc;
	}
	if (have_pos) {
		k.mv_size = STORE_HASH_LEN;
		k.mv_data = (void *)pos;
		mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (mrc == 0 && k.mv_size == STORE_HASH_LEN &&
		    memcmp(k.mv_data, pos, STORE_HASH_LEN) == 0)
			mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	} else {
		mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	}
	for (; mrc == 0; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct store_blob_info bi;
		if (k.mv_size != STORE_HASH_LEN || store_blob_info(txn, k.mv_data, &bi) != 0)
			continue;
		memcpy(r->last, k.mv_data, STORE_HASH_LEN);
		r->have_last = 1;
		r->looked++;
		if (needs_work(&bi, dict, o->recompress)) {
			const void *data;
			size_t len;
			void *buf;
			struct blob_enc e;
			if ((rc = store_blob_decode(txn, &bi, &data, &len, &buf)) != 0)
				break;
			rc = store_blob_encode(txn, data, len, dict, o->level, &e);
			free(buf);
			if (rc != 0)
				break;
			bytes += len;
			struct store_blob_info now = bi;
			now.encoding = e.encoding;
			now.stored = e.encoding == STORE_ENC_RAW ? bi.size : e.len;
			if (e.encoding != STORE_ENC_RAW && cost_of(&now) < cost_of(&bi)) {
				struct item *it = ARRAY_PUSH(r->items, r->n, r->cap);
				it->bi = bi;
				it->e = e;
			} else {
				free(e.frame);
			}
		}
		if (r->n >= o->batch || bytes >= ROUND_BYTES_MAX)
			break;
	}
	if (mrc == MDB_NOTFOUND)
		r->at_end = 1;
	else if (mrc != 0)
		rc = store_mdb_error(mrc);
	mdb_cursor_close(cur);
	store_read_end(&txn);
	return rc;
}

struct write_round {
	struct round *r;
	uint64_t converted, before, after;
};

static int write_round_fn(struct store_txn *txn, void *ctx)
{
	struct write_round *w = ctx;
	struct round *r = w->r;
	int rc;

	w->converted = w->before = w->after = 0;
	for (size_t i = 0; i < r->n; i++) {
		struct item *it = &r->items[i];
		struct store_blob_info now;
		rc = store_blob_info(txn, it->bi.hash, &now);
		if (rc == STORE_ENOTFOUND)
			continue; /* expunged meanwhile */
		if (rc != 0)
			return rc;
		if (now.encoding != it->bi.encoding || now.dict != it->bi.dict ||
		    now.stored != it->bi.stored || now.chunk != it->bi.chunk ||
		    now.chunks != it->bi.chunks)
			continue; /* another compaction got there first */
		if ((rc = store_blob_rewrite(txn, &now, &it->e)) != 0)
			return rc;
		w->converted++;
		w->before += it->bi.stored;
		w->after += now.stored;
	}
	if (r->have_last) {
		MDB_val k = {11, (void *)"compact_pos"}, v = {STORE_HASH_LEN, r->last};
		if ((rc = mdb_put(txn->txn, txn->store->dbi[DB_META], &k, &v, 0)) != 0)
			return store_mdb_error(rc);
	}
	txn->touched = 1;
	return 0;
}

static int clear_pos_fn(struct store_txn *txn, void *ctx)
{
	MDB_val k = {11, (void *)"compact_pos"};
	(void)ctx;
	int rc = mdb_del(txn->txn, txn->store->dbi[DB_META], &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : store_mdb_error(rc);
}

/* How many blobs come at or before pos (for the progress of a resumed run). */
static uint64_t count_upto(struct store_txn *txn, const uint8_t *pos)
{
	MDB_cursor *cur;
	MDB_val k, v;
	uint64_t n = 0;

	if (mdb_cursor_open(txn->txn, txn->store->dbi[DB_BLOBINFO], &cur) != 0)
		return 0;
	for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size == STORE_HASH_LEN && memcmp(k.mv_data, pos, STORE_HASH_LEN) > 0)
			break;
		n++;
	}
	mdb_cursor_close(cur);
	return n;
}

int store_compact(struct store *store, const struct store_compact_opts *opts,
		  void (*progress)(const struct store_compact_progress *p, void *ctx), void *ctx,
		  char *err, size_t errsize)
{
	struct store_compact_opts o = opts ? *opts : (struct store_compact_opts){0};
	struct store_compact_progress p = {0};
	struct store_txn *txn;
	uint8_t pos[STORE_HASH_LEN];
	uint32_t dict = 0;
	int have_pos, rc;
	MDB_stat ms;

	if (o.level <= 0)
		o.level = 9;
	if (o.level > ZSTD_maxCLevel())
		o.level = ZSTD_maxCLevel();
	if (o.batch == 0)
		o.batch = 256;
	if (store->read_only) {
		snprintf(err, errsize, "the store is open read-only");
		return STORE_EINVAL;
	}
	if ((rc = store_read_begin(store, &txn)) != 0) {
		snprintf(err, errsize, "cannot read the store: %s", store_strerror(rc));
		return rc;
	}
	have_pos = meta_get_pos(txn, pos) == 0;
	store_dict_current(txn, &dict);
	mdb_stat(txn->txn, store->dbi[DB_BLOBINFO], &ms);
	p.total = ms.ms_entries;
	p.resumed = have_pos;
	if (have_pos)
		p.done = count_upto(txn, pos);
	store_read_end(&txn);

	/* A new run may train first; a resumed one keeps the dictionary it began with. */
	if (!have_pos && (dict == 0 || o.retrain)) {
		char why[256];
		uint32_t id;
		rc = store_dict_train(store, 0, &id, why, sizeof(why));
		if (rc == 0)
			dict = id;
		else if (rc != STORE_ENOTFOUND) {
			snprintf(err, errsize, "%s", why);
			return rc;
		}
	}
	for (;;) {
		struct round r = {0};
		rc = read_round(store, pos, have_pos, dict, &o, &r);
		if (rc == 0 && (r.n > 0 || r.have_last)) {
			struct write_round w = {.r = &r};
			rc = store_write(store, write_round_fn, &w);
			if (rc == 0) {
				p.converted += w.converted;
				p.bytes_before += w.before;
				p.bytes_after += w.after;
			}
		}
		for (size_t i = 0; i < r.n; i++)
			free(r.items[i].e.frame);
		free(r.items);
		if (rc != 0) {
			snprintf(err, errsize, "compaction stopped: %s (run it again to go on)",
				 store_strerror(rc));
			return rc;
		}
		p.done += r.looked;
		if (p.done > p.total)
			p.total = p.done;
		if (progress != NULL)
			progress(&p, ctx);
		if (r.have_last) {
			memcpy(pos, r.last, STORE_HASH_LEN);
			have_pos = 1;
		}
		if (r.at_end)
			break;
	}
	if ((rc = store_write(store, clear_pos_fn, NULL)) != 0) {
		snprintf(err, errsize, "cannot finish: %s", store_strerror(rc));
		return rc;
	}
	return 0;
}
