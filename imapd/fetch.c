/* fetch — the "imap.mime" cache record: ENVELOPE, BODY, BODYSTRUCTURE and the
 * search fields of a blob, as four length-prefixed pieces (see fetch.h). */
#include "imapd/fetch.h"

#include <stdlib.h>
#include <string.h>

#include "imapd/mime.h"
#include "imapd/wire.h"
#include "lib/buf.h"
#include "lib/xmalloc.h"

/* ".2": sizes of the CRLF form, names from comments, every field searched;
 * records of kind "imap.mime" (before) are no longer read */
static const char KIND[] = "imap.mime.2";
static const char SIZE_KIND[] = "imap.size"; /* the CRLF form's size, 8 bytes big-endian */
static const char SORT_KIND[] = "imap.sort"; /* mime_sort_fields' record */
#define HDR 16				     /* four u32 lengths */

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static int decode(const void *rec, size_t len, struct fetch_mime_text *t)
{
	const unsigned char *p = rec;
	if (len < HDR)
		return -1;
	size_t l[4], total = HDR;
	for (int i = 0; i < 4; i++) {
		l[i] = get32(p + 4 * i);
		total += l[i];
	}
	if (total != len)
		return -1;
	const char *d = (const char *)p + HDR;
	t->env = d, t->envlen = l[0];
	d += l[0];
	t->body = d, t->bodylen = l[1];
	d += l[1];
	t->bs = d, t->bslen = l[2];
	d += l[2];
	t->srch = d, t->srchlen = l[3];
	return 0;
}

static int cache_fn(struct store_txn *txn, void *ctx)
{
	struct fetch_cache *c = ctx;
	for (size_t i = 0; i < c->n; i++) {
		int r = store_cache_put(txn, c->e[i].hash, c->e[i].kind, c->e[i].rec, c->e[i].len);
		if (r != 0 && r != STORE_ENOTFOUND)
			return r;
	}
	return 0;
}

void fetch_cache_free(struct fetch_cache *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->e[i].rec);
	free(c->e);
	memset(c, 0, sizeof(*c));
}

int fetch_cache_flush(struct store *store, struct fetch_cache *pending)
{
	int r = 0;
	if (pending->n > 0)
		r = store_write_relaxed(store, cache_fn, pending);
	fetch_cache_free(pending);
	return r;
}

static void pending_add(struct fetch_cache *pending, const uint8_t *hash, const char *kind,
			void *rec, size_t len)
{
	if (pending->n == pending->cap) {
		pending->cap = pending->cap ? pending->cap * 2 : 16;
		pending->e = xreallocarray(pending->e, pending->cap, sizeof(*pending->e));
	}
	struct fetch_cache_entry *e = &pending->e[pending->n++];
	memcpy(e->hash, hash, STORE_HASH_LEN);
	e->kind = kind;
	e->rec = rec;
	e->len = len;
}

/* A record of this kind for the message's blob: in the store's cache, or
 * computed during this command (pending). 1 if found. */
static int cached(struct store_txn *txn, const struct store_msg *m,
		  const struct fetch_cache *pending, const char *kind, const void **data_r,
		  size_t *len_r)
{
	if (store_cache_get(txn, m->hash, kind, data_r, len_r) == 0)
		return 1;
	for (size_t i = 0; i < pending->n; i++)
		if (pending->e[i].kind == kind &&
		    memcmp(pending->e[i].hash, m->hash, STORE_HASH_LEN) == 0) {
			*data_r = pending->e[i].rec;
			*len_r = pending->e[i].len;
			return 1;
		}
	return 0;
}

int fetch_size(struct store_txn *txn, const struct store_msg *m, struct fetch_cache *pending,
	       uint64_t *size_r)
{
	const void *d;
	size_t l;
	if (cached(txn, m, pending, SIZE_KIND, &d, &l) && l == 8) {
		const unsigned char *p = d;
		*size_r = (uint64_t)get32(p) << 32 | get32(p + 4);
		return 0;
	}
	const void *blob;
	size_t blen;
	int r = store_blob_get(txn, m->hash, &blob, &blen);
	if (r != 0)
		return r;
	uint64_t size = wire_crlf_len(blob, 0, blen);
	unsigned char *rec = xmalloc(8);
	put32(rec, (uint32_t)(size >> 32));
	put32(rec + 4, (uint32_t)size);
	pending_add(pending, m->hash, SIZE_KIND, rec, 8);
	*size_r = size;
	return 0;
}

int fetch_mime(struct store_txn *txn, const struct store_msg *m, struct fetch_cache *pending,
	       struct fetch_mime_text *t)
{
	const void *d;
	size_t l;
	memset(t, 0, sizeof(*t));
	if (cached(txn, m, pending, KIND, &d, &l) && decode(d, l, t) == 0)
		return 0;
	const void *blob;
	size_t blen;
	int r = store_blob_get(txn, m->hash, &blob, &blen);
	if (r != 0)
		return r;
	struct buf part[4];
	buf_init(&part[0], 1 << 20);
	buf_init(&part[1], 4 << 20);
	buf_init(&part[2], 4 << 20);
	buf_init(&part[3], 1 << 20);
	r = mime_describe(blob, blen, &part[0], &part[1], &part[2]);
	if (r == 0)
		r = mime_search_fields(blob, blen, &part[3]);
	if (r == 0) {
		size_t total = HDR;
		for (int i = 0; i < 4; i++)
			total += part[i].len;
		unsigned char *rec = xmalloc(total);
		unsigned char *o = rec + HDR;
		for (int i = 0; i < 4; i++) {
			put32(rec + 4 * i, (uint32_t)part[i].len);
			if (part[i].len)
				memcpy(o, part[i].data, part[i].len);
			o += part[i].len;
		}
		pending_add(pending, m->hash, KIND, rec, total);
		decode(rec, total, t);
	} else {
		r = STORE_ETOOBIG;
	}
	for (int i = 0; i < 4; i++)
		buf_free(&part[i]);
	return r;
}

int fetch_sort(struct store_txn *txn, const struct store_msg *m, struct fetch_cache *pending,
	       const char **rec_r, size_t *len_r)
{
	const void *d;
	size_t l;
	if (cached(txn, m, pending, SORT_KIND, &d, &l)) {
		*rec_r = d;
		*len_r = l;
		return 0;
	}
	const void *blob;
	size_t blen;
	int r = store_blob_get(txn, m->hash, &blob, &blen);
	if (r != 0)
		return r;
	struct buf b;
	buf_init(&b, 1 << 20);
	if (mime_sort_fields(blob, blen, &b) < 0) {
		buf_free(&b);
		return STORE_ETOOBIG;
	}
	char *rec = xmalloc(b.len ? b.len : 1);
	memcpy(rec, b.data, b.len);
	pending_add(pending, m->hash, SORT_KIND, rec, b.len);
	*rec_r = rec;
	*len_r = b.len;
	buf_free(&b);
	return 0;
}
