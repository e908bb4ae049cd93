/* store_fsck — checks the store against its own invariants: every blob re-hashed,
 * every reference counted, every counter recomputed, every index entry
 * pointing back. Read-only: it reports, it does not repair.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index/queue.h"
#include "index/store_priv.h"
#include "lib/array.h"
#include "lib/xmalloc.h"

struct refcount {
	uint8_t hash[STORE_HASH_LEN];
	uint32_t count;
	int used;
};

struct reftable {
	struct refcount *v;
	size_t cap, n;
};

static size_t rt_slot(struct reftable *t, const uint8_t *hash)
{
	uint64_t h;

	memcpy(&h, hash, sizeof(h));
	size_t i = h & (t->cap - 1);
	while (t->v[i].used && memcmp(t->v[i].hash, hash, STORE_HASH_LEN) != 0)
		i = (i + 1) & (t->cap - 1);
	return i;
}

static void rt_add(struct reftable *t, const uint8_t *hash)
{
	if (2 * (t->n + 1) > t->cap) {
		struct reftable nt = {xcalloc(t->cap ? t->cap * 2 : 1024, sizeof(struct refcount)),
				      t->cap ? t->cap * 2 : 1024, 0};
		for (size_t i = 0; i < t->cap; i++)
			if (t->v[i].used)
				nt.v[rt_slot(&nt, t->v[i].hash)] = t->v[i];
		nt.n = t->n;
		free(t->v);
		*t = nt;
	}
	size_t i = rt_slot(t, hash);
	if (!t->v[i].used) {
		memcpy(t->v[i].hash, hash, STORE_HASH_LEN);
		t->v[i].used = 1;
		t->n++;
	}
	t->v[i].count++;
}

static struct refcount *rt_get(struct reftable *t, const uint8_t *hash)
{
	if (t->cap == 0)
		return NULL;
	size_t i = rt_slot(t, hash);
	return t->v[i].used ? &t->v[i] : NULL;
}

/* The chunks a packed blob owns: [first, first + n). */
struct chunk_range {
	uint64_t first, n;
	uint8_t hash[STORE_HASH_LEN];
};

struct fsck {
	struct store_txn *txn;
	struct chunk_range *chunks;
	size_t nchunks, chunkcap;
	void (*report)(const char *problem, void *ctx);
	void *ctx;
	int problems;
};

static void problem(struct fsck *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct fsck *f, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	f->problems++;
	if (f->report != NULL)
		f->report(buf, f->ctx);
}

static void hexhash(const uint8_t *hash, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < STORE_HASH_LEN; i++) {
		out[2 * i] = digits[hash[i] >> 4];
		out[2 * i + 1] = digits[hash[i] & 15];
	}
	out[2 * STORE_HASH_LEN] = '\0';
}

/* Messages: decode, mailbox exists, blob exists, uid and modseq within the
 * mailbox's counters, base index points back; counts references and sums
 * per-mailbox counters. */
static int check_messages(struct fsck *f, struct reftable *refs)
{
	MDB_cursor *cur;
	MDB_val k, v;
	struct store_mailbox mb = {0};
	struct store_msg m;
	uint32_t cur_mbid = 0;
	int have_mb = 0, rc;
	uint32_t count = 0, unseen = 0;
	uint64_t bytes = 0;
	char hex[2 * STORE_HASH_LEN + 1];

	if ((rc = mdb_cursor_open(f->txn->txn, store_txn_dbi(f->txn, DB_MSGS), &cur)) != 0)
		return store_mdb_error(rc);
#define FLUSH_MAILBOX()                                                                            \
	do {                                                                                       \
		if (have_mb && (mb.messages != count || mb.unseen != unseen || mb.bytes != bytes)) \
			problem(f,                                                                 \
				"mailbox %u (%s): counters say %u messages, %u unseen, %" PRIu64   \
				" bytes; found %u, %u, %" PRIu64,                                  \
				mb.id, mb.name, mb.messages, mb.unseen, mb.bytes, count, unseen,   \
				bytes);                                                            \
	} while (0)
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (store_msg_decode(&k, &v, &m) != 0) {
			problem(f, "message record with key of %zu bytes cannot be decoded",
				k.mv_size);
			continue;
		}
		if (m.mbid != cur_mbid || !have_mb) {
			FLUSH_MAILBOX();
			cur_mbid = m.mbid;
			count = unseen = 0;
			bytes = 0;
			have_mb = store_mailbox_get_by_id(f->txn, m.mbid, &mb) == 0;
			if (!have_mb)
				problem(f, "message %u/%u: its mailbox %u does not exist", m.mbid,
					m.uid, m.mbid);
		}
		count++;
		bytes += m.size;
		if (!(m.flags & STORE_F_SEEN))
			unseen++;
		rt_add(refs, m.hash);
		hexhash(m.hash, hex);
		struct store_blob_info bi;
		if (store_blob_info(f->txn, m.hash, &bi) != 0)
			problem(f, "message %u/%u: blob %s is missing", m.mbid, m.uid, hex);
		else if (bi.size != m.size)
			problem(f, "message %u/%u: size %" PRIu64 " but blob %s has %" PRIu64,
				m.mbid, m.uid, m.size, hex, bi.size);
		if (have_mb && m.uid >= mb.uidnext)
			problem(f, "message %u/%u: uid not below UIDNEXT %u", m.mbid, m.uid,
				mb.uidnext);
		if (have_mb && m.modseq > mb.highestmodseq)
			problem(f, "message %u/%u: modseq %" PRIu64 " above HIGHESTMODSEQ %" PRIu64,
				m.mbid, m.uid, m.modseq, mb.highestmodseq);
		struct store_msg byname;
		if (store_msg_get_by_base(f->txn, m.mbid, m.base, &byname) != 0 ||
		    byname.uid != m.uid)
			problem(f, "message %u/%u: name index does not point back for %s", m.mbid,
				m.uid, m.base);
	}
	FLUSH_MAILBOX();
#undef FLUSH_MAILBOX
	mdb_cursor_close(cur);
	return 0;
}

/* Mailboxes with no message at all must have zero counters too. */
static int check_mailboxes(struct fsck *f)
{
	MDB_cursor *cur;
	MDB_val k, v;
	struct store_mailbox mb, back;
	struct store_user u;
	int rc;

	if ((rc = mdb_cursor_open(f->txn->txn, store_txn_dbi(f->txn, DB_MAILBOXES), &cur)) != 0)
		return store_mdb_error(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size < 5 ||
		    store_mailbox_decode(store_get_be32(k.mv_data), (char *)k.mv_data + 4,
					 k.mv_size - 4, &v, &mb) != 0) {
			problem(f, "mailbox record cannot be decoded");
			continue;
		}
		if (store_mailbox_get_by_id(f->txn, mb.id, &back) != 0)
			problem(f, "mailbox %u (%s): id index does not point back", mb.id, mb.name);
		if (store_user_get_by_id(f->txn, mb.user_id, &u) != 0)
			problem(f, "mailbox %u (%s): its user %u does not exist", mb.id, mb.name,
				mb.user_id);
		struct store_cursor *c;
		struct store_msg m;
		if (store_msg_cursor_open(f->txn, mb.id, 1, &c) == 0) {
			int empty = store_msg_cursor_next(c, &m) == STORE_ENOTFOUND;
			store_msg_cursor_close(&c);
			if (empty && (mb.messages || mb.unseen || mb.bytes))
				problem(f, "mailbox %u (%s): counters say %u messages, found none",
					mb.id, mb.name, mb.messages);
		}
	}
	mdb_cursor_close(cur);
	return 0;
}

static int check_bases(struct fsck *f)
{
	MDB_cursor *cur;
	MDB_val k, v;
	struct store_msg m;
	int rc;

	if ((rc = mdb_cursor_open(f->txn->txn, store_txn_dbi(f->txn, DB_MSGBASES), &cur)) != 0)
		return store_mdb_error(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size < 5 || v.mv_size != 4) {
			problem(f, "name index record cannot be decoded");
			continue;
		}
		uint32_t mbid = store_get_be32(k.mv_data), uid = store_get_be32(v.mv_data);
		if (store_msg_get(f->txn, mbid, uid, &m) != 0)
			problem(f, "name index %.*s points at missing message %u/%u",
				(int)(k.mv_size - 4), (char *)k.mv_data + 4, mbid, uid);
	}
	mdb_cursor_close(cur);
	return 0;
}

static int check_blobs(struct fsck *f, struct reftable *refs,
		       void (*progress)(uint64_t done, uint64_t total, void *ctx))
{
	MDB_cursor *cur;
	MDB_val k, v, d;
	MDB_stat ms;
	uint64_t done = 0;
	uint8_t hash[STORE_HASH_LEN];
	char hex[2 * STORE_HASH_LEN + 1];
	int rc;

	mdb_stat(f->txn->txn, store_txn_dbi(f->txn, DB_BLOBINFO), &ms);
	if ((rc = mdb_cursor_open(f->txn->txn, store_txn_dbi(f->txn, DB_BLOBINFO), &cur)) != 0)
		return store_mdb_error(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct store_blob_info bi;
		if (progress != NULL && (++done % 1024 == 0 || done == ms.ms_entries))
			progress(done, ms.ms_entries, f->ctx);
		if (k.mv_size != STORE_HASH_LEN || store_blob_info(f->txn, k.mv_data, &bi) != 0) {
			problem(f, "blob record cannot be decoded");
			continue;
		}
		hexhash(bi.hash, hex);
		struct refcount *rcnt = rt_get(refs, bi.hash);
		uint32_t counted = rcnt ? rcnt->count : 0;
		if (bi.refs != counted)
			problem(f,
				"blob %s: reference count %u, but %u messages and queue entries "
				"point at it",
				hex, bi.refs, counted);
		if (bi.encoding != STORE_ENC_RAW && bi.encoding != STORE_ENC_ZSTD &&
		    bi.encoding != STORE_ENC_PACKED) {
			problem(f, "blob %s: unknown encoding %u", hex, bi.encoding);
			continue;
		}
		if (bi.encoding == STORE_ENC_PACKED)
			*ARRAY_PUSH(f->chunks, f->nchunks, f->chunkcap) =
			    (struct chunk_range){bi.chunk, bi.chunks, {0}};
		if (bi.encoding == STORE_ENC_PACKED)
			memcpy(f->chunks[f->nchunks - 1].hash, bi.hash, STORE_HASH_LEN);
		if (bi.encoding != STORE_ENC_PACKED &&
		    mdb_get(f->txn->txn, store_txn_dbi(f->txn, DB_BLOBDATA), &k, &d) != 0) {
			problem(f, "blob %s: bytes missing", hex);
			continue;
		}
		if (bi.encoding == STORE_ENC_RAW && d.mv_size != bi.size) {
			problem(f, "blob %s: %zu bytes stored, %" PRIu64 " recorded", hex,
				d.mv_size, bi.size);
			continue;
		}
		if (bi.encoding == STORE_ENC_ZSTD && d.mv_size != bi.stored) {
			problem(f, "blob %s: %zu encoded bytes stored, %" PRIu64 " recorded", hex,
				d.mv_size, bi.stored);
			continue;
		}
		const void *data;
		size_t len;
		void *buf;
		int drc = store_blob_decode(f->txn, &bi, &data, &len, &buf);
		if (drc != 0) {
			problem(f, "blob %s: cannot be decoded (encoding %u, dictionary %u): %s",
				hex, bi.encoding, bi.dict, store_strerror(drc));
			continue;
		}
		store_hash(data, len, hash);
		free(buf);
		if (memcmp(hash, bi.hash, STORE_HASH_LEN) != 0)
			problem(f, "blob %s: bytes do not match their hash (damaged)", hex);
	}
	mdb_cursor_close(cur);
	/* Bytes with no info record. */
	if ((rc = mdb_cursor_open(f->txn->txn, store_txn_dbi(f->txn, DB_BLOBDATA), &cur)) != 0)
		return store_mdb_error(rc);
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		if (mdb_get(f->txn->txn, store_txn_dbi(f->txn, DB_BLOBINFO), &k, &v) != 0) {
			if (k.mv_size == STORE_HASH_LEN) {
				hexhash(k.mv_data, hex);
				problem(f, "blob %s: bytes without a record (leaked)", hex);
			} else {
				problem(f, "blob data with a key of %zu bytes", k.mv_size);
			}
		}
	}
	mdb_cursor_close(cur);
	/* Messages pointing at blobs that have no record were reported per message. */
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct chunk_range *x = a, *y = b;
	return x->first < y->first ? -1 : x->first > y->first;
}

/* Every chunk of blobchunks belongs to exactly one packed blob, and every
 * packed blob has all of its chunks (their bytes were checked by decoding). */
static int check_chunks(struct fsck *f)
{
	MDB_cursor *cur;
	MDB_val k, v;
	size_t r = 0;
	char hex[2 * STORE_HASH_LEN + 1];
	uint64_t orphans = 0, first_orphan = 0;
	int rc;

	if (f->nchunks > 1)
		qsort(f->chunks, f->nchunks, sizeof(*f->chunks), cmp_range);
	for (size_t i = 1; i < f->nchunks; i++)
		if (f->chunks[i - 1].first + f->chunks[i - 1].n > f->chunks[i].first) {
			hexhash(f->chunks[i].hash, hex);
			problem(f, "blob %s: its chunks from %" PRIu64 " overlap another blob's",
				hex, f->chunks[i].first);
		}
	if ((rc = mdb_cursor_open(f->txn->txn, store_txn_dbi(f->txn, DB_BLOBCHUNKS), &cur)) != 0)
		return store_mdb_error(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 8) {
			problem(f, "chunk with a key of %zu bytes", k.mv_size);
			continue;
		}
		uint64_t seq = store_get_be64(k.mv_data);
		while (r < f->nchunks && f->chunks[r].first + f->chunks[r].n <= seq)
			r++;
		if (r < f->nchunks && f->chunks[r].first <= seq)
			continue;
		if (orphans++ == 0)
			first_orphan = seq;
	}
	mdb_cursor_close(cur);
	if (orphans > 0)
		problem(f, "%" PRIu64 " chunks belong to no blob (leaked), the first is %" PRIu64,
			orphans, first_orphan);
	return 0;
}

static int check_users(struct fsck *f)
{
	MDB_cursor *cur;
	MDB_val k, v;
	struct store_user u;
	int rc;

	if ((rc = mdb_cursor_open(f->txn->txn, store_txn_dbi(f->txn, DB_USERIDS), &cur)) != 0)
		return store_mdb_error(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 4 ||
		    store_user_get_by_id(f->txn, store_get_be32(k.mv_data), &u) != 0)
			problem(f, "user id index entry does not point at a user");
		else if (u.id != store_get_be32(k.mv_data))
			problem(f, "user %s: id %u, but indexed as %u", u.name, u.id,
				store_get_be32(k.mv_data));
	}
	mdb_cursor_close(cur);
	return 0;
}

struct qref {
	struct fsck *f;
	struct reftable *refs;
};

static void queue_ref(const uint8_t hash[STORE_HASH_LEN], void *ctx)
{
	rt_add(((struct qref *)ctx)->refs, hash);
}

static void queue_problem(const char *what, void *ctx)
{
	problem(((struct qref *)ctx)->f, "%s", what);
}

int store_fsck(struct store *store, void (*report)(const char *problem, void *ctx),
	       void (*progress)(uint64_t done, uint64_t total, void *ctx), void *ctx)
{
	struct fsck f = {.report = report, .ctx = ctx};
	struct reftable refs = {0};
	int rc;

	if ((rc = store_read_begin(store, &f.txn)) != 0)
		return rc;
	if ((rc = check_users(&f)) == 0 && (rc = check_mailboxes(&f)) == 0 &&
	    (rc = check_messages(&f, &refs)) == 0 && (rc = check_bases(&f)) == 0 &&
	    (rc = queue_check(f.txn, queue_ref, queue_problem, &(struct qref){&f, &refs})) == 0)
		rc = check_blobs(&f, &refs, progress);
	if (rc == 0 && !store->missing[DB_BLOBCHUNKS])
		rc = check_chunks(&f);
	free(f.chunks);
	free(refs.v);
	store_read_end(&f.txn);
	return rc != 0 ? rc : f.problems;
}
