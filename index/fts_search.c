/* fts_search — from a string to the messages that hold it: candidates from
 * the words index, then the exact substring check on each candidate.
 *
 * Why the index never misses a match. The string is folded and cut into
 * words as the text is (fts_text.c). If it occurs in a message's text, then
 * a word of the string with separators on both sides in the string is a
 * whole word of the text ("exact"); the first word, without a separator
 * before it, is the end of a word of the text ("suffix"); the last, without
 * one after it, the start of one ("prefix"); a string of one word without
 * either is inside a word ("infix"). Long runs are indexed as windows of
 * FTS_WORD_MAX bytes every FTS_WORD_MAX / 2 (and one at the end), so: a
 * query word of at most FTS_WORD_MAX / 2 bytes is inside some window, a
 * prefix of the first and a suffix of the last; a longer one is looked up
 * by its first FTS_WORD_MAX / 2 bytes anywhere in a word, or as a prefix of
 * a window. Each query word gives the docs of every vocabulary word that
 * fits it; the candidates are the intersection over the query words, plus
 * every blob still waiting in the queue. The check then reads each
 * candidate. Words of one or two bytes in the middle of text ("a", "of")
 * would match half the vocabulary: such a query word does not narrow.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "index/fts.h"
#include "index/store_internal.h"
#include "lib/array.h"
#include "lib/xmalloc.h"

#define DOCS_MAX ((size_t)4 << 20) /* more candidates than this: check every message */
#define VOCAB_MATCH_MAX 20000

enum mode { EXACT, PREFIX, SUFFIX, INFIX };

struct idset {
	uint32_t *v;
	size_t n, cap;
	int all;
};

static int word_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80 ||
	       (c >= 'A' && c <= 'Z');
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void push_id(uint32_t id, void *ctx)
{
	struct idset *s = ctx;
	if (s->n < DOCS_MAX)
		*ARRAY_PUSH(s->v, s->n, s->cap) = id;
	else
		s->all = 1;
}

/* Same decoding as fts_index.c's segments. */
static void segment_ids(uint32_t first, const uint8_t *p, size_t n, struct idset *s)
{
	uint32_t id = first;
	push_id(id, s);
	for (size_t i = 0; i < n;) {
		uint32_t d = 0;
		int sh = 0;
		while (i < n && (p[i] & 0x80) && sh < 28) {
			d |= (uint32_t)(p[i++] & 0x7F) << sh;
			sh += 7;
		}
		if (i >= n)
			return;
		d |= (uint32_t)p[i++] << sh;
		id += d;
		push_id(id, s);
	}
}

static int fits(const char *word, size_t wl, const char *q, size_t ql, enum mode m)
{
	switch (m) {
	case EXACT:
		return wl == ql && memcmp(word, q, ql) == 0;
	case PREFIX:
		return wl >= ql && memcmp(word, q, ql) == 0;
	case SUFFIX:
		return wl >= ql && memcmp(word + wl - ql, q, ql) == 0;
	case INFIX:
		return memmem(word, wl, q, ql) != NULL;
	}
	return 0;
}

/* The docs of every word of the index that fits q in mode m. A prefix is a
 * range of keys; a suffix or infix needs every word: the scan reads the
 * keys in order (a word's segments are neighbours). */
static int query_word_docs(struct store_txn *txn, const char *q, size_t ql, enum mode m,
			   struct idset *s)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((m == INFIX || m == SUFFIX) && ql < 3) {
		s->all = 1;
		return 0;
	}
	if ((rc = mdb_cursor_open(store_txn_mdb(txn), store_txn_dbi(txn, DB_FTS_WORDS), &cur)) != 0)
		return store_mdb_error(rc);
	if (m == EXACT || m == PREFIX) {
		k.mv_size = ql;
		k.mv_data = (void *)q;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	} else {
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	}
	size_t matched = 0, lastlen = 0;
	char last[FTS_WORD_MAX];
	int last_fits = 0;
	for (; rc == 0 && !s->all; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const uint8_t *key = k.mv_data;
		if (k.mv_size < 6 || k.mv_size - 5 > FTS_WORD_MAX || key[k.mv_size - 5] != 0)
			continue;
		size_t wl = k.mv_size - 5;
		if ((m == EXACT || m == PREFIX) && (wl < ql || memcmp(key, q, ql) != 0))
			break;
		if (wl != lastlen || memcmp(last, key, wl) != 0) { /* a new word */
			memcpy(last, key, wl);
			lastlen = wl;
			last_fits = fits((const char *)key, wl, q, ql, m);
			if (last_fits && ++matched > VOCAB_MATCH_MAX) {
				s->all = 1;
				break;
			}
		}
		if (last_fits)
			segment_ids(store_get_be32(key + wl + 1), v.mv_data, v.mv_size, s);
	}
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_mdb_error(rc);
}

static void sort_unique(struct idset *s)
{
	if (s->n > 1)
		qsort(s->v, s->n, sizeof(*s->v), cmp_u32);
	size_t o = 0;
	for (size_t i = 0; i < s->n; i++)
		if (o == 0 || s->v[o - 1] != s->v[i])
			s->v[o++] = s->v[i];
	s->n = o;
}

/* a = a ∩ b (both sorted); an "all" set is the identity. */
static void intersect(struct idset *a, struct idset *b)
{
	if (b->all)
		return;
	if (a->all) {
		free(a->v);
		*a = *b;
		memset(b, 0, sizeof(*b));
		return;
	}
	size_t i = 0, j = 0, o = 0;
	while (i < a->n && j < b->n) {
		if (a->v[i] < b->v[j])
			i++;
		else if (a->v[i] > b->v[j])
			j++;
		else {
			a->v[o++] = a->v[i];
			i++;
			j++;
		}
	}
	a->n = o;
}

static int cmp_hash(const void *a, const void *b)
{
	return memcmp(a, b, STORE_HASH_LEN);
}

static void add_hash(struct fts_candidates *c, const void *h)
{
	uint8_t(*slot)[STORE_HASH_LEN] = ARRAY_PUSH(c->hash, c->n, c->cap);
	memcpy(*slot, h, STORE_HASH_LEN);
}

static void add_queued(struct fts_candidates *c, const void *h)
{
	uint8_t(*slot)[STORE_HASH_LEN] = ARRAY_PUSH(c->queued, c->nq, c->capq);
	memcpy(*slot, h, STORE_HASH_LEN);
}

int fts_candidates(struct store_txn *txn, enum fts_field field, const char *needle,
		   struct fts_candidates *c)
{
	struct idset docs = {.all = 1};
	size_t ql;
	int rc = 0;

	(void)field; /* the words index does not tell fields apart: the check does */
	memset(c, 0, sizeof(*c));
	if (!store_txn_has(txn, DB_FTS_WORDS)) {
		c->all = 1;
		return 0;
	}
	char *q = fts_fold(needle, strlen(needle), &ql);
	int words = 0, single_infix = 0;
	for (size_t i = 0; i < ql && rc == 0;) {
		while (i < ql && !word_byte((unsigned char)q[i]))
			i++;
		size_t st = i;
		while (i < ql && word_byte((unsigned char)q[i]))
			i++;
		size_t wl = i - st;
		if (wl == 0)
			break;
		int left = st > 0, right = i < ql;
		enum mode m = left && right ? EXACT : left ? PREFIX : right ? SUFFIX : INFIX;
		words++;
		single_infix = m == INFIX && wl >= 3 && wl <= FTS_WORD_MAX / 2;
		const char *w = q + st;
		if (wl > FTS_WORD_MAX) {
			if (m == SUFFIX) {
				w = q + i - FTS_WORD_MAX;
				wl = FTS_WORD_MAX;
			} else if (m == EXACT || m == PREFIX) {
				m = PREFIX;
				wl = FTS_WORD_MAX;
			} else {
				wl = FTS_WORD_MAX / 2;
			}
		} else if (wl > FTS_WORD_MAX / 2 && m == INFIX) {
			wl = FTS_WORD_MAX / 2;
		}
		struct idset s = {0};
		rc = query_word_docs(txn, w, wl, m, &s);
		if (!s.all)
			sort_unique(&s);
		intersect(&docs, &s);
		free(s.v);
	}
	free(q);
	if (rc != 0) {
		free(docs.v);
		return rc;
	}
	if (docs.all) {
		c->all = 1;
		return 0;
	}
	/* one word, all of it looked up inside indexed words: a word holding it
	 * is a piece of the text, so the text holds it */
	c->exact = field == FTS_TEXT && words == 1 && single_infix;
	/* docids -> hashes; freed docs map to nothing */
	for (size_t i = 0; i < docs.n; i++) {
		uint8_t id[4];
		store_put_be32(id, docs.v[i]);
		MDB_val k = {4, id}, v;
		if (mdb_get(store_txn_mdb(txn), store_txn_dbi(txn, DB_FTS_DOCS), &k, &v) == 0 &&
		    v.mv_size == STORE_HASH_LEN)
			add_hash(c, v.mv_data);
	}
	free(docs.v);
	/* and everything not indexed yet */
	MDB_cursor *cur;
	MDB_val k, v;
	if ((rc = mdb_cursor_open(store_txn_mdb(txn), store_txn_dbi(txn, DB_FTS_QUEUE), &cur)) != 0)
		return store_mdb_error(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
		if (k.mv_size == STORE_HASH_LEN)
			add_queued(c, k.mv_data); /* in key order: sorted */
	mdb_cursor_close(cur);
	if (c->n > 1)
		qsort(c->hash, c->n, STORE_HASH_LEN, cmp_hash);
	return rc == MDB_NOTFOUND ? 0 : store_mdb_error(rc);
}

int fts_candidates_has(const struct fts_candidates *c, const uint8_t hash[STORE_HASH_LEN])
{
	if (c->all)
		return 1;
	if (c->nq > 0 && bsearch(hash, c->queued, c->nq, STORE_HASH_LEN, cmp_hash) != NULL)
		return 1;
	if (c->n > 0 && bsearch(hash, c->hash, c->n, STORE_HASH_LEN, cmp_hash) != NULL)
		return c->exact ? 2 : 1;
	return 0;
}

void fts_candidates_free(struct fts_candidates *c)
{
	free(c->hash);
	free(c->queued);
	memset(c, 0, sizeof(*c));
}

/* --- queries ------------------------------------------------------------------------ */

int fts_query_parse(const char *q, struct fts_query *query)
{
	static const char *const headers[] = {"from", "to", "cc", "subject"};
	memset(query, 0, sizeof(*query));
	for (const char *p = q; *p;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		if (query->n == FTS_QUERY_TERMS) {
			fts_query_free(query);
			return STORE_EINVAL;
		}
		enum fts_field f = FTS_TEXT;
		const char *hdr = NULL;
		for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
			size_t l = strlen(headers[i]);
			if (strncasecmp(p, headers[i], l) == 0 && p[l] == ':') {
				f = FTS_HEADERS;
				hdr = headers[i];
				p += l + 1;
			}
		}
		if (hdr == NULL && strncasecmp(p, "body:", 5) == 0) {
			f = FTS_BODY;
			p += 5;
		}
		const char *s = p, *e;
		if (*p == '"') {
			s = ++p;
			e = strchr(p, '"');
			if (e == NULL)
				e = p + strlen(p);
			p = *e ? e + 1 : e;
		} else {
			e = p + strcspn(p, " \t");
			p = e;
		}
		if (e == s)
			continue;
		query->t[query->n].field = f;
		query->t[query->n].header = hdr;
		query->t[query->n].s = fts_fold(s, (size_t)(e - s), NULL);
		query->n++;
	}
	return query->n ? 0 : STORE_EINVAL;
}

void fts_query_free(struct fts_query *query)
{
	for (size_t i = 0; i < query->n; i++)
		free(query->t[i].s);
	memset(query, 0, sizeof(*query));
}

/* Whether a "name: value" line of the folded header text holds needle in its value. */
static int header_has(const struct fts_text *t, const char *name, const char *needle)
{
	size_t nl = strlen(name), ql = strlen(needle);
	for (const char *p = t->hdr; p && *p;) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l > nl && strncmp(p, name, nl) == 0 && p[nl] == ':' &&
		    memmem(p + nl + 1, l - nl - 1, needle, ql))
			return 1;
		p = e ? e + 1 : NULL;
	}
	return 0;
}

struct search_run {
	struct store_txn *txn;
	const struct fts_query *q;
	struct fts_candidates *cand;
	int (*cb)(const struct store_msg *m, void *ctx);
	void *ctx;
	uint64_t checked;
	int stop;
};

static int check_msg(const struct store_msg *m, void *ctx)
{
	struct search_run *r = ctx;
	int sure = 1;
	for (size_t i = 0; i < r->q->n; i++) {
		int h = fts_candidates_has(&r->cand[i], m->hash);
		if (h == 0)
			return 0;
		sure &= h == 2;
	}
	if (sure) { /* every term matches for sure: no need to read it */
		if (r->cb(m, r->ctx) != 0) {
			r->stop = 1;
			return 1;
		}
		return 0;
	}
	const void *data;
	size_t len;
	if (store_blob_get(r->txn, m->hash, &data, &len) != 0)
		return 0;
	r->checked++;
	struct fts_text t;
	fts_text_extract(data, len, &t);
	int ok = 1;
	for (size_t i = 0; i < r->q->n && ok; i++) {
		const char *s = r->q->t[i].s;
		if (r->q->t[i].field == FTS_HEADERS)
			ok = header_has(&t, r->q->t[i].header, s);
		else
			ok = fts_text_contains(&t, r->q->t[i].field, s, strlen(s));
	}
	fts_text_free(&t);
	if (ok && r->cb(m, r->ctx) != 0) {
		r->stop = 1;
		return 1;
	}
	return 0;
}

struct mbids {
	uint32_t *v;
	size_t n, cap;
};

static int add_mbid(const struct store_mailbox *mb, void *ctx)
{
	struct mbids *m = ctx;
	*ARRAY_PUSH(m->v, m->n, m->cap) = mb->id;
	return 0;
}

int fts_search(struct store_txn *txn, uint32_t user_id, uint32_t mbid,
	       const struct fts_query *query, int (*cb)(const struct store_msg *m, void *ctx),
	       void *ctx, uint64_t *checked_r)
{
	struct fts_candidates cand[FTS_QUERY_TERMS];
	struct search_run r = {.txn = txn, .q = query, .cand = cand, .cb = cb, .ctx = ctx};
	struct mbids mb = {0};
	int rc = 0;
	size_t got = 0;

	for (; got < query->n && rc == 0; got++) {
		if (query->no_index) {
			memset(&cand[got], 0, sizeof(cand[got]));
			cand[got].all = 1;
		} else {
			rc = fts_candidates(txn, query->t[got].field, query->t[got].s, &cand[got]);
		}
	}
	if (rc == 0) {
		if (mbid != 0)
			*ARRAY_PUSH(mb.v, mb.n, mb.cap) = mbid;
		else
			rc = store_mailbox_foreach(txn, user_id, add_mbid, &mb);
	}
	for (size_t i = 0; i < mb.n && rc == 0 && !r.stop; i++)
		rc = store_msg_foreach(txn, mb.v[i], check_msg, &r);
	for (size_t i = 0; i < got; i++)
		fts_candidates_free(&cand[i]);
	free(mb.v);
	if (checked_r)
		*checked_r = r.checked;
	return rc;
}
