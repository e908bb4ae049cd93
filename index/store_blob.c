/* store_blob — a message's bytes at rest: raw, or compressed with zstd and a
 * dictionary trained from the store's own mail, small ones packed.
 *
 * Encodings (the blob record's tag, enum store_encoding):
 *
 *   RAW     the bytes, one value of blobdata (every blob of a store made
 *           before compression, random binary, anything zstd cannot shrink);
 *   ZSTD    one zstd frame, one value of blobdata: messages whose frame is
 *           over PACK_MAX (LMDB's page rounding wastes < 1 page per MB there);
 *           messages over COMPRESS_MAX (4 MB) stay raw;
 *   PACKED  one zstd frame cut into chunks of at most CHUNK_MAX bytes, stored
 *           under consecutive keys of blobchunks, appended at its end.
 *
 * Why chunks and not packs of several messages in one value: a value over
 * about 2 KB goes to pages of its own, rounded up to 4 KB, which undoes most
 * of the gain on a 6 KB message compressed to 2 KB. Values up to LMDB's node
 * limit stay in the leaf pages of the B-tree, and keys appended in order fill
 * those pages completely (LMDB splits the last page unevenly for appends). So
 * the leaf pages of blobchunks ARE the packs: a chunk of 2,016 bytes is half
 * of a page, several messages share a page, a message's chunks are
 * neighbours. Nothing is rewritten to add a message (a pack value would be:
 * each delivery would copy the open pack), a message is read by walking its
 * keys, and freeing a message deletes its keys: a page whose chunks are all
 * freed goes back to LMDB's free list, a page left under a quarter full is
 * merged with its neighbour (LMDB's rebalancing), so there is no pack
 * reference count to keep and no repacking to do. fsck checks that every
 * chunk belongs to exactly one blob and every blob has all of its chunks.
 *
 * Filling pages: a chunk of n bytes takes 18 + n bytes (rounded up to even) of
 * a page's 4,080; with MDB_APPEND, a chunk that does not fit goes alone onto a
 * new page and leaves the last one as it was. So the writer keeps how full
 * the last page is (meta "chunk_tail") and cuts a frame's first chunk to the
 * room that is left, the next ones to whole pages' halves, so messages of
 * any size fill pages end to end. Should the count be wrong (deletes near the
 * end let LMDB merge pages), a chunk goes to a new page a little early: room
 * is lost, never bytes.
 *
 * Dictionaries (table dicts, id u32 -> zstd dictionary) are trained from the
 * store's mail (store_dict_train), never changed and never deleted: a blob
 * names the dictionary it was compressed with, so it stays readable forever.
 * The meta key "dict" says which one new blobs use.
 *
 * Reading a compressed blob decodes it into a buffer: the transaction keeps
 * the last STORE_TXN_KEPT of them, and blobs of DECODED_CACHE_MIN bytes or
 * more stay in a cache of DECODED_CACHE_BYTES shared by the store's threads
 * (the mount reads a big message 128 KB at a time; each piece would decode
 * the whole frame again).
 */
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zdict.h>
#include <zstd.h>

#include "index/fts.h"
#include "index/store_priv.h"
#include "lib/array.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#define BLOB_MAX ((uint64_t)2 << 30)
#define BLOBINFO_LEN 21	    /* refs u32, encoding u8, size u64, stored u64 */
#define BLOBINFO_EXT_LEN 37 /* + dict u32, chunk u64, chunks u32 (ZSTD, PACKED) */
/* LMDB 0.9's node limit on 4 KB pages: 2,038 bytes for an 8-byte node
 * header, the key and the value; more goes to pages of its own. */
#define CHUNK_MAX STORE_CHUNK_MAX
#define NODE_OVERHEAD 18	   /* node header 8, key 8, index entry 2 */
#define PACK_MAX ((size_t)1 << 20) /* frames above this are one ZSTD value */
/* Messages above this stay raw: read straight from the map, a 40 MB message
 * is streamed by the mount and IMAP in bounded memory instead of decoded
 * whole (and they are mostly attachments, base64 of compressed data, which
 * zstd shrinks by a quarter at best). */
#define COMPRESS_MAX ((size_t)4 << 20)
#define PAGE 4096
#define DECODED_CACHE_MIN ((size_t)64 << 10)
#define DECODED_CACHE_BYTES ((size_t)64 << 20)

struct blob_decoded {
	uint8_t hash[STORE_HASH_LEN];
	uint8_t *data;
	size_t len;
	unsigned refs; /* transactions holding it, and 1 while in the cache */
	int cached;
	struct blob_decoded *prev, *next; /* the cache's LRU list, newest first */
};

struct dict_entry {
	uint32_t id;
	unsigned zid; /* zstd's own id in the dictionary: tells a stale entry */
	ZSTD_DDict *dd;
	int clevel[4]; /* a CDict per level used (delivery's, compaction's) */
	ZSTD_CDict *cd[4];
};

struct blob_codec {
	pthread_mutex_t lock;
	struct dict_entry *dicts;
	size_t ndicts, dcap;
	struct blob_decoded *lru_head, *lru_tail;
	size_t cached_bytes;
};

/* One compression and one decompression context per thread. */
static pthread_key_t cctx_key, dctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;

static void free_cctx(void *p)
{
	ZSTD_freeCCtx(p);
}

static void free_dctx(void *p)
{
	ZSTD_freeDCtx(p);
}

static void ctx_keys(void)
{
	if (pthread_key_create(&cctx_key, free_cctx) != 0 ||
	    pthread_key_create(&dctx_key, free_dctx) != 0)
		log_fatal("pthread_key_create failed");
}

static ZSTD_CCtx *thread_cctx(void)
{
	pthread_once(&ctx_once, ctx_keys);
	ZSTD_CCtx *c = pthread_getspecific(cctx_key);
	if (c == NULL) {
		if ((c = ZSTD_createCCtx()) == NULL)
			log_fatal("out of memory (zstd)");
		pthread_setspecific(cctx_key, c);
	}
	return c;
}

static ZSTD_DCtx *thread_dctx(void)
{
	pthread_once(&ctx_once, ctx_keys);
	ZSTD_DCtx *d = pthread_getspecific(dctx_key);
	if (d == NULL) {
		if ((d = ZSTD_createDCtx()) == NULL)
			log_fatal("out of memory (zstd)");
		pthread_setspecific(dctx_key, d);
	}
	return d;
}

void store_blob_codec_init(struct store *s)
{
	s->codec = xcalloc(1, sizeof(*s->codec));
	pthread_mutex_init(&s->codec->lock, NULL);
}

static void decoded_unref(struct blob_decoded *d)
{
	if (--d->refs == 0) {
		free(d->data);
		free(d);
	}
}

void store_blob_codec_free(struct store *s)
{
	struct blob_codec *c = s->codec;

	if (c == NULL)
		return;
	for (size_t i = 0; i < c->ndicts; i++) {
		ZSTD_freeDDict(c->dicts[i].dd);
		for (int l = 0; l < 4; l++)
			ZSTD_freeCDict(c->dicts[i].cd[l]);
	}
	free(c->dicts);
	while (c->lru_head != NULL) {
		struct blob_decoded *d = c->lru_head;
		c->lru_head = d->next;
		decoded_unref(d);
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
	s->codec = NULL;
}

void store_txn_release(struct store_txn *txn)
{
	if (txn->ndecoded == 0)
		return;
	pthread_mutex_lock(&txn->store->codec->lock);
	for (unsigned i = 0; i < STORE_TXN_KEPT && i < txn->ndecoded; i++) {
		decoded_unref(txn->decoded[i]);
		txn->decoded[i] = NULL;
	}
	pthread_mutex_unlock(&txn->store->codec->lock);
	txn->ndecoded = 0;
}

/* --- records ---------------------------------------------------------------------- */

void store_hash(const void *data, size_t len, uint8_t hash_r[STORE_HASH_LEN])
{
	unsigned int outlen = STORE_HASH_LEN;

	if (EVP_Digest(data, len, hash_r, &outlen, EVP_sha256(), NULL) != 1)
		log_fatal("SHA-256 failed (OpenSSL out of memory)");
}

static size_t blobinfo_encode(uint8_t *p, const struct store_blob_info *bi)
{
	store_put_be32(p, bi->refs);
	p[4] = bi->encoding;
	store_put_be64(p + 5, bi->size);
	store_put_be64(p + 13, bi->stored);
	if (bi->encoding == STORE_ENC_RAW)
		return BLOBINFO_LEN;
	store_put_be32(p + 21, bi->dict);
	store_put_be64(p + 25, bi->chunk);
	store_put_be32(p + 33, bi->chunks);
	return BLOBINFO_EXT_LEN;
}

static int blobinfo_put(struct store_txn *txn, const struct store_blob_info *bi)
{
	uint8_t rec[BLOBINFO_EXT_LEN];
	MDB_val k = {STORE_HASH_LEN, (void *)bi->hash}, v = {blobinfo_encode(rec, bi), rec};

	txn->touched = 1;
	return store_mdb_error(mdb_put(txn->txn, txn->store->dbi[DB_BLOBINFO], &k, &v, 0));
}

int store_blob_info(struct store_txn *txn, const uint8_t hash[STORE_HASH_LEN],
		    struct store_blob_info *info_r)
{
	MDB_val k = {STORE_HASH_LEN, (void *)hash}, v;
	int rc = mdb_get(txn->txn, txn->store->dbi[DB_BLOBINFO], &k, &v);

	if (rc != 0)
		return store_mdb_error(rc);
	if (v.mv_size < BLOBINFO_LEN)
		return STORE_ECORRUPT;
	const uint8_t *p = v.mv_data;
	memcpy(info_r->hash, hash, STORE_HASH_LEN);
	info_r->refs = store_get_be32(p);
	info_r->encoding = p[4];
	info_r->size = store_get_be64(p + 5);
	info_r->stored = store_get_be64(p + 13);
	info_r->dict = 0;
	info_r->chunk = 0;
	info_r->chunks = 0;
	if (v.mv_size >= BLOBINFO_EXT_LEN) {
		info_r->dict = store_get_be32(p + 21);
		info_r->chunk = store_get_be64(p + 25);
		info_r->chunks = store_get_be32(p + 33);
	} else if (info_r->encoding != STORE_ENC_RAW) {
		return STORE_ECORRUPT;
	}
	return 0;
}

/* --- dictionaries ------------------------------------------------------------------- */

int store_dict_current(struct store_txn *txn, uint32_t *id_r)
{
	uint64_t v = 0;
	int rc = store_meta_get_u64(txn, "dict", &v);

	*id_r = rc == 0 ? (uint32_t)v : 0;
	return rc == STORE_ENOTFOUND ? 0 : rc;
}

/* The codec's entry for dictionary id, loaded from the store if needed (or
 * again if the cached one is not the one stored: a dictionary of a write
 * that was rolled back). Called with the codec locked. */
static int dict_entry(struct store_txn *txn, uint32_t id, struct dict_entry **e_r)
{
	struct blob_codec *c = txn->store->codec;
	uint8_t key[4];
	MDB_val k = {4, key}, v;
	int rc;

	if (txn->store->missing[DB_DICTS])
		return STORE_ECORRUPT;
	store_put_be32(key, id);
	if ((rc = mdb_get(txn->txn, txn->store->dbi[DB_DICTS], &k, &v)) != 0)
		return rc == MDB_NOTFOUND ? STORE_ECORRUPT : store_mdb_error(rc);
	unsigned zid = ZSTD_getDictID_fromDict(v.mv_data, v.mv_size);
	struct dict_entry *e = NULL;
	for (size_t i = 0; i < c->ndicts; i++)
		if (c->dicts[i].id == id)
			e = &c->dicts[i];
	if (e != NULL && e->zid != zid) {
		ZSTD_freeDDict(e->dd);
		for (int l = 0; l < 4; l++) {
			ZSTD_freeCDict(e->cd[l]);
			e->cd[l] = NULL;
			e->clevel[l] = 0;
		}
		e->dd = NULL;
		e->zid = zid;
	}
	if (e == NULL) {
		e = ARRAY_PUSH(c->dicts, c->ndicts, c->dcap);
		memset(e, 0, sizeof(*e));
		e->id = id;
		e->zid = zid;
	}
	if (e->dd == NULL && (e->dd = ZSTD_createDDict(v.mv_data, v.mv_size)) == NULL)
		return STORE_ECORRUPT;
	*e_r = e;
	return 0;
}

static int dict_cdict(struct store_txn *txn, uint32_t id, int level, ZSTD_CDict **cd_r)
{
	struct blob_codec *c = txn->store->codec;
	struct dict_entry *e;
	int rc, l;

	*cd_r = NULL;
	pthread_mutex_lock(&c->lock);
	if ((rc = dict_entry(txn, id, &e)) == 0) {
		for (l = 0; l < 4 && e->cd[l] != NULL && e->clevel[l] != level; l++)
			;
		if (l == 4) { /* a fifth level: replace the last one */
			l = 3;
			ZSTD_freeCDict(e->cd[l]);
			e->cd[l] = NULL;
		}
		if (e->cd[l] == NULL) {
			uint8_t key[4];
			MDB_val k = {4, key}, v;
			store_put_be32(key, id);
			if (mdb_get(txn->txn, txn->store->dbi[DB_DICTS], &k, &v) != 0 ||
			    (e->cd[l] = ZSTD_createCDict(v.mv_data, v.mv_size, level)) == NULL)
				rc = STORE_ECORRUPT;
			e->clevel[l] = level;
		}
		if (rc == 0)
			*cd_r = e->cd[l];
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* --- encoding ----------------------------------------------------------------------- */

/* Bytes a value of n bytes costs in the file: inline in a leaf page up to
 * LMDB's node limit, else pages of its own. */
static uint64_t raw_cost(size_t n)
{
	if (n + STORE_HASH_LEN + 8 <= 2038)
		return n + STORE_HASH_LEN + 8 + 2;
	return (uint64_t)(n + 16 + PAGE - 1) / PAGE * PAGE;
}

static uint64_t packed_cost(size_t n)
{
	uint64_t chunks = (n + CHUNK_MAX - 1) / CHUNK_MAX + 1;
	return n + chunks * NODE_OVERHEAD;
}

/* Compresses data with dictionary dict (0 = none) at level. Sets e->encoding
 * RAW (and no frame) when compression would not take less room. */
int store_blob_encode(struct store_txn *txn, const void *data, size_t len, uint32_t dict, int level,
		      struct blob_enc *e)
{
	ZSTD_CDict *cd = NULL;
	int rc;

	memset(e, 0, sizeof(*e));
	e->encoding = STORE_ENC_RAW;
	if (len < 64 || len > COMPRESS_MAX || level <= 0)
		return 0;
	if (dict != 0 && (rc = dict_cdict(txn, dict, level, &cd)) != 0)
		return rc;
	ZSTD_CCtx *cc = thread_cctx();
	ZSTD_CCtx_reset(cc, ZSTD_reset_session_and_parameters);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 0); /* the SHA-256 checks the bytes */
	ZSTD_CCtx_setParameter(cc, ZSTD_c_dictIDFlag, 0);   /* the record names the dictionary */
	ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 1);
	if (cd != NULL)
		ZSTD_CCtx_refCDict(cc, cd);
	size_t cap = ZSTD_compressBound(len);
	uint8_t *out = xmalloc(cap);
	size_t n = ZSTD_compress2(cc, out, cap, data, len);
	ZSTD_CCtx_refCDict(cc, NULL);
	if (ZSTD_isError(n)) {
		free(out);
		return 0; /* stored raw */
	}
	/* Stored compressed if that takes less room, and zstd found something
	 * (not only page rounding: a raw blob is read without a copy). */
	uint64_t cost = n <= PACK_MAX ? packed_cost(n) : raw_cost(n);
	if (cost >= raw_cost(len) || n > len - len / 32) {
		free(out);
		return 0;
	}
	e->encoding = n <= PACK_MAX ? STORE_ENC_PACKED : STORE_ENC_ZSTD;
	e->dict = dict;
	e->frame = out;
	e->len = n;
	return 0;
}

static int chunks_next_key(struct store_txn *txn, uint64_t *seq_r)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = mdb_cursor_open(txn->txn, txn->store->dbi[DB_BLOBCHUNKS], &cur);

	if (rc != 0)
		return store_mdb_error(rc);
	rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND) {
		*seq_r = 1;
		return 0;
	}
	if (rc != 0)
		return store_mdb_error(rc);
	if (k.mv_size != 8)
		return STORE_ECORRUPT;
	*seq_r = store_get_be64(k.mv_data) + 1;
	return 0;
}

/* Writes the bytes of bi (RAW: data; else the frame of e) and its record. */
static int blob_write(struct store_txn *txn, struct store_blob_info *bi, const void *data,
		      const struct blob_enc *e)
{
	MDB_val k = {STORE_HASH_LEN, bi->hash}, v;
	int rc;

	bi->encoding = e->encoding;
	bi->dict = e->dict;
	bi->chunk = 0;
	if (e->encoding == STORE_ENC_PACKED) {
		uint8_t key[8];
		uint64_t seq = 0, tail = 0;
		size_t room = txn->store->page_room;
		if ((rc = chunks_next_key(txn, &seq)) != 0)
			return rc;
		/* How full the last page is (see "Filling pages" above). */
		if (store_meta_get_u64(txn, "chunk_tail", &tail) != 0 || seq == 1 || tail > room)
			tail = room;
		bi->chunk = seq;
		bi->chunks = 0;
		bi->stored = e->len;
		for (size_t off = 0; off < e->len; seq++, bi->chunks++) {
			size_t left = room - tail, n = e->len - off;
			if (left < NODE_OVERHEAD + 64 &&
			    n > left - (left > NODE_OVERHEAD ? NODE_OVERHEAD : left)) {
				tail = 0; /* a new page */
				left = room;
			}
			if (n > left - NODE_OVERHEAD)
				n = left - NODE_OVERHEAD;
			if (n > CHUNK_MAX)
				n = CHUNK_MAX;
			MDB_val ck = {8, key}, cv = {n, e->frame + off};
			store_put_be64(key, seq);
			if ((rc = mdb_put(txn->txn, txn->store->dbi[DB_BLOBCHUNKS], &ck, &cv,
					  MDB_APPEND)) != 0)
				return store_mdb_error(rc);
			tail += ((16 + n + 1) & ~(size_t)1) + 2;
			off += n;
		}
		if ((rc = store_meta_put_u64(txn, "chunk_tail", tail)) != 0)
			return rc;
	} else {
		size_t n = e->encoding == STORE_ENC_RAW ? bi->size : e->len;
		const void *src = e->encoding == STORE_ENC_RAW ? data : e->frame;
		v.mv_size = n;
		v.mv_data = NULL;
		if ((rc = mdb_put(txn->txn, txn->store->dbi[DB_BLOBDATA], &k, &v, MDB_RESERVE)) !=
		    0)
			return store_mdb_error(rc);
		if (n > 0)
			memcpy(v.mv_data, src, n);
		bi->stored = n;
	}
	return blobinfo_put(txn, bi);
}

/* Deletes the bytes of bi (not its record). */
static int blob_unwrite(struct store_txn *txn, const struct store_blob_info *bi)
{
	MDB_val k = {STORE_HASH_LEN, (void *)bi->hash};
	int rc;

	if (bi->encoding != STORE_ENC_PACKED) {
		rc = mdb_del(txn->txn, txn->store->dbi[DB_BLOBDATA], &k, NULL);
		return rc == MDB_NOTFOUND ? STORE_ECORRUPT : store_mdb_error(rc);
	}
	for (uint64_t i = 0; i < bi->chunks; i++) {
		uint8_t key[8];
		MDB_val ck = {8, key};
		store_put_be64(key, bi->chunk + i);
		if ((rc = mdb_del(txn->txn, txn->store->dbi[DB_BLOBCHUNKS], &ck, NULL)) != 0)
			return rc == MDB_NOTFOUND ? STORE_ECORRUPT : store_mdb_error(rc);
	}
	return 0;
}

int store_blob_rewrite(struct store_txn *txn, struct store_blob_info *bi, const struct blob_enc *e)
{
	int rc;

	if (e->encoding == STORE_ENC_RAW)
		return STORE_EINVAL;
	if ((rc = blob_unwrite(txn, bi)) != 0)
		return rc;
	return blob_write(txn, bi, NULL, e);
}

int store_blob_put(struct store_txn *txn, const void *data, size_t len,
		   uint8_t hash_r[STORE_HASH_LEN])
{
	struct store_blob_info bi;
	struct blob_enc e;
	uint32_t dict = 0;
	int rc;

	if (!txn->writable)
		return STORE_EINVAL;
	if (len > BLOB_MAX)
		return STORE_ETOOBIG;
	store_hash(data, len, hash_r);
	rc = store_blob_info(txn, hash_r, &bi);
	if (rc != STORE_ENOTFOUND)
		return rc;
	if (txn->store->compress_level > 0 && (rc = store_dict_current(txn, &dict)) != 0)
		return rc;
	if ((rc = store_blob_encode(txn, data, len, dict, txn->store->compress_level, &e)) != 0)
		return rc;
	bi = (struct store_blob_info){.refs = 0, .size = len};
	memcpy(bi.hash, hash_r, STORE_HASH_LEN);
	rc = blob_write(txn, &bi, data, &e);
	free(e.frame);
	if (rc == 0) /* the words index takes it from there (index/fts.h) */
		rc = fts_blob_added(txn, hash_r);
	return rc;
}

/* --- decoding ----------------------------------------------------------------------- */

static int decode_frame_stream(struct store_txn *txn, const struct store_blob_info *bi,
			       uint8_t *out)
{
	ZSTD_DCtx *dc = thread_dctx();
	ZSTD_outBuffer ob = {out, bi->size, 0};
	struct dict_entry *e;
	size_t r = 1;
	int rc = 0;

	ZSTD_DCtx_reset(dc, ZSTD_reset_session_and_parameters);
	if (bi->dict != 0) {
		pthread_mutex_lock(&txn->store->codec->lock);
		rc = dict_entry(txn, bi->dict, &e);
		/* a DDict is freed only when its dictionary was replaced under the
		 * same id (a rolled-back write), never while a blob of it is read */
		if (rc == 0)
			ZSTD_DCtx_refDDict(dc, e->dd);
		pthread_mutex_unlock(&txn->store->codec->lock);
		if (rc != 0)
			return rc;
	}
	if (bi->encoding == STORE_ENC_ZSTD) {
		MDB_val k = {STORE_HASH_LEN, (void *)bi->hash}, v;
		if ((rc = mdb_get(txn->txn, txn->store->dbi[DB_BLOBDATA], &k, &v)) != 0)
			return rc == MDB_NOTFOUND ? STORE_ECORRUPT : store_mdb_error(rc);
		if (v.mv_size != bi->stored)
			return STORE_ECORRUPT;
		ZSTD_inBuffer ib = {v.mv_data, v.mv_size, 0};
		r = ZSTD_decompressStream(dc, &ob, &ib);
		if (!ZSTD_isError(r) && ib.pos != ib.size)
			return STORE_ECORRUPT;
	} else {
		MDB_cursor *cur;
		uint8_t key[8];
		MDB_val k = {8, key}, v;
		uint64_t n = bi->chunks, got = 0;
		if (txn->store->missing[DB_BLOBCHUNKS])
			return STORE_ECORRUPT;
		if ((rc = mdb_cursor_open(txn->txn, txn->store->dbi[DB_BLOBCHUNKS], &cur)) != 0)
			return store_mdb_error(rc);
		store_put_be64(key, bi->chunk);
		int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
		for (uint64_t i = 0; i < n && mrc == 0; i++) {
			if (k.mv_size != 8 || store_get_be64(k.mv_data) != bi->chunk + i ||
			    v.mv_size > bi->stored - got)
				break;
			ZSTD_inBuffer ib = {v.mv_data, v.mv_size, 0};
			while (ib.pos < ib.size) {
				r = ZSTD_decompressStream(dc, &ob, &ib);
				if (ZSTD_isError(r) || (r == 0 && ib.pos < ib.size))
					break;
			}
			if (ZSTD_isError(r) || ib.pos < ib.size)
				break;
			got += v.mv_size;
			if (i + 1 < n)
				mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		}
		mdb_cursor_close(cur);
		if (got != bi->stored)
			rc = STORE_ECORRUPT;
	}
	ZSTD_DCtx_refDDict(dc, NULL);
	if (rc == 0 && (ZSTD_isError(r) || r != 0 || ob.pos != bi->size))
		rc = STORE_ECORRUPT;
	return rc;
}

int store_blob_decode(struct store_txn *txn, const struct store_blob_info *bi, const void **data_r,
		      size_t *len_r, void **buf_r)
{
	*buf_r = NULL;
	if (bi->encoding == STORE_ENC_RAW) {
		MDB_val k = {STORE_HASH_LEN, (void *)bi->hash}, v;
		int rc = mdb_get(txn->txn, txn->store->dbi[DB_BLOBDATA], &k, &v);
		if (rc != 0)
			return rc == MDB_NOTFOUND ? STORE_ECORRUPT : store_mdb_error(rc);
		if (v.mv_size != bi->size)
			return STORE_ECORRUPT;
		*data_r = v.mv_data;
		*len_r = v.mv_size;
		return 0;
	}
	if (bi->encoding != STORE_ENC_ZSTD && bi->encoding != STORE_ENC_PACKED)
		return STORE_ECORRUPT;
	if (bi->size > BLOB_MAX)
		return STORE_ECORRUPT;
	uint8_t *out = xmalloc(bi->size ? bi->size : 1);
	int rc = decode_frame_stream(txn, bi, out);
	if (rc != 0) {
		free(out);
		return rc;
	}
	*buf_r = out;
	*data_r = out;
	*len_r = bi->size;
	return 0;
}

/* Holds d in the transaction's ring (dropping the oldest). Codec locked. */
static void txn_keep(struct store_txn *txn, struct blob_decoded *d)
{
	unsigned slot = txn->ndecoded % STORE_TXN_KEPT;
	if (txn->ndecoded >= STORE_TXN_KEPT)
		decoded_unref(txn->decoded[slot]);
	txn->decoded[slot] = d;
	d->refs++;
	txn->ndecoded++;
	if (txn->ndecoded == 2 * STORE_TXN_KEPT)
		txn->ndecoded = STORE_TXN_KEPT; /* same slot, no overflow */
}

static void lru_unlink(struct blob_codec *c, struct blob_decoded *d)
{
	if (d->prev)
		d->prev->next = d->next;
	else
		c->lru_head = d->next;
	if (d->next)
		d->next->prev = d->prev;
	else
		c->lru_tail = d->prev;
	d->prev = d->next = NULL;
}

static void lru_push(struct blob_codec *c, struct blob_decoded *d)
{
	d->next = c->lru_head;
	d->prev = NULL;
	if (c->lru_head)
		c->lru_head->prev = d;
	c->lru_head = d;
	if (c->lru_tail == NULL)
		c->lru_tail = d;
}

int store_blob_get(struct store_txn *txn, const uint8_t hash[STORE_HASH_LEN], const void **data_r,
		   size_t *len_r)
{
	struct blob_codec *c = txn->store->codec;
	struct store_blob_info bi;
	void *buf;
	int rc = store_blob_info(txn, hash, &bi);

	if (rc != 0)
		return rc;
	if (bi.encoding == STORE_ENC_RAW)
		return store_blob_decode(txn, &bi, data_r, len_r, &buf);
	if (bi.size >= DECODED_CACHE_MIN) {
		pthread_mutex_lock(&c->lock);
		for (struct blob_decoded *d = c->lru_head; d != NULL; d = d->next) {
			if (memcmp(d->hash, hash, STORE_HASH_LEN) == 0 && d->len == bi.size) {
				lru_unlink(c, d);
				lru_push(c, d);
				txn_keep(txn, d);
				pthread_mutex_unlock(&c->lock);
				*data_r = d->data;
				*len_r = d->len;
				return 0;
			}
		}
		pthread_mutex_unlock(&c->lock);
	}
	if ((rc = store_blob_decode(txn, &bi, data_r, len_r, &buf)) != 0)
		return rc;
	struct blob_decoded *d = xcalloc(1, sizeof(*d));
	memcpy(d->hash, hash, STORE_HASH_LEN);
	d->data = buf;
	d->len = bi.size;
	pthread_mutex_lock(&c->lock);
	txn_keep(txn, d);
	if (bi.size >= DECODED_CACHE_MIN && bi.size <= DECODED_CACHE_BYTES / 4) {
		d->cached = 1;
		d->refs++;
		lru_push(c, d);
		c->cached_bytes += d->len;
		while (c->cached_bytes > DECODED_CACHE_BYTES && c->lru_tail != NULL) {
			struct blob_decoded *old = c->lru_tail;
			lru_unlink(c, old);
			c->cached_bytes -= old->len;
			old->cached = 0;
			decoded_unref(old);
		}
	}
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Adds delta references; frees the bytes and cached derivations at zero. */
int store_blob_ref(struct store_txn *txn, const uint8_t hash[STORE_HASH_LEN], int delta)
{
	struct store_blob_info bi;
	MDB_val k = {STORE_HASH_LEN, (void *)hash};
	int rc = store_blob_info(txn, hash, &bi);

	if (rc != 0)
		return rc == STORE_ENOTFOUND ? STORE_ECORRUPT : rc;
	if (delta < 0 && bi.refs < (uint32_t)-delta)
		return STORE_ECORRUPT;
	bi.refs += delta;
	txn->touched = 1;
	if (bi.refs == 0 && delta < 0) {
		if ((rc = blob_unwrite(txn, &bi)) != 0)
			return rc;
		if ((rc = mdb_del(txn->txn, txn->store->dbi[DB_BLOBINFO], &k, NULL)) != 0)
			return store_mdb_error(rc);
		if ((rc = fts_blob_freed(txn, hash)) != 0)
			return rc;
		return store_delete_prefix(txn, DB_CACHE, hash, STORE_HASH_LEN);
	}
	return blobinfo_put(txn, &bi);
}
