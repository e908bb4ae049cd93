/* spam_db — per-user token counts in packed buckets, totals and learning
 * records in the store's LMDB environment (see spam_db.h for the layouts). */
#include "index/spam_db.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "index/store_internal.h"
#include "lib/log.h"

#define STATS_FIELDS 10
#define SIG_HEAD 8
#define REC_MARK 0x80	 /* byte 3 of a learning record without a token list */
#define BUCKET_KEY 6	 /* user u32 + bucket u16 */
#define OLD_TOKEN_KEY 12 /* user u32 + token u64: before issue 16 */
#define ENTRY_MAX (6 + 2 + 5 + 5)
#define NBUCKETS (1u << SPAM_BUCKET_BITS)
#define LOW_MASK ((1ull << (64 - SPAM_BUCKET_BITS)) - 1)

const char *spam_class_name(enum spam_class c)
{
	switch (c) {
	case SPAM_CLASS_SPAM:
		return "spam";
	case SPAM_CLASS_INNOCENT:
		return "innocent";
	default:
		return "none";
	}
}

int spam_class_parse(const char *s, enum spam_class *c_r)
{
	if (strcasecmp(s, "spam") == 0)
		*c_r = SPAM_CLASS_SPAM;
	else if (strcasecmp(s, "innocent") == 0 || strcasecmp(s, "ham") == 0)
		*c_r = SPAM_CLASS_INNOCENT;
	else if (strcasecmp(s, "none") == 0)
		*c_r = SPAM_CLASS_NONE;
	else
		return -1;
	return 0;
}

static uint32_t today_override;

uint32_t spam_db_today(void)
{
	return today_override ? today_override : (uint32_t)(time(NULL) / 86400);
}

void spam_db_set_today(uint32_t day)
{
	today_override = day;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		log_fatal("spam: out of memory");
	return p;
}

/* --- statistics ------------------------------------------------------------------ */

int spam_db_stats(struct store_txn *txn, uint32_t user_id, struct spam_stats *st)
{
	uint8_t k[4];
	MDB_val key = {4, k}, val;
	uint64_t f[STATS_FIELDS] = {0};
	int rc;

	memset(st, 0, sizeof(*st));
	store_put_be32(k, user_id);
	rc = mdb_get(store_txn_mdb(txn), store_txn_dbi(txn, DB_SPAM_STATS), &key, &val);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return store_mdb_error(rc);
	for (size_t i = 0; i < val.mv_size / 8 && i < STATS_FIELDS; i++)
		f[i] = store_get_be64((const uint8_t *)val.mv_data + 8 * i);
	st->spam_learned = f[0];
	st->innocent_learned = f[1];
	st->spam_classified = f[2];
	st->innocent_classified = f[3];
	st->spam_misses = f[4];
	st->false_positives = f[5];
	st->tokens = f[6];
	st->reserved = 0;
	st->last_purge = f[8];
	st->purged = f[9];
	return 0;
}

static int stats_put(struct store_txn *txn, uint32_t user_id, const struct spam_stats *st)
{
	uint8_t k[4], b[8 * STATS_FIELDS];
	MDB_val key = {4, k}, val = {sizeof(b), b};
	uint64_t f[STATS_FIELDS] = {st->spam_learned,	 st->innocent_learned,
				    st->spam_classified, st->innocent_classified,
				    st->spam_misses,	 st->false_positives,
				    st->tokens,		 0,
				    st->last_purge,	 st->purged};
	int rc;

	store_put_be32(k, user_id);
	for (int i = 0; i < STATS_FIELDS; i++)
		store_put_be64(b + 8 * i, f[i]);
	rc = mdb_put(store_txn_mdb(txn), store_txn_dbi(txn, DB_SPAM_STATS), &key, &val, 0);
	return rc ? store_mdb_error(rc) : 0;
}

int spam_db_count_verdict(struct store_txn *txn, uint32_t user_id, int spam)
{
	struct spam_stats st;
	int rc = spam_db_stats(txn, user_id, &st);
	if (rc != 0)
		return rc;
	if (spam)
		st.spam_classified++;
	else
		st.innocent_classified++;
	return stats_put(txn, user_id, &st);
}

/* --- buckets ------------------------------------------------------------------------ */

struct entry {
	uint64_t low; /* the hash's low 48 bits */
	uint32_t s, n;
	uint16_t day;
};

static void bucket_key(uint8_t k[BUCKET_KEY], uint32_t user_id, unsigned bucket)
{
	store_put_be32(k, user_id);
	k[4] = (uint8_t)(bucket >> 8);
	k[5] = (uint8_t)bucket;
}

static unsigned bucket_of(uint64_t hash)
{
	return (unsigned)(hash >> (64 - SPAM_BUCKET_BITS));
}

static size_t put_varint(uint8_t *p, uint32_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* 0 and *v, or -1 if it runs past end or over 32 bits. */
static int get_varint(const uint8_t **pp, const uint8_t *end, uint32_t *v)
{
	const uint8_t *p = *pp;
	uint64_t x = 0;
	for (int shift = 0; shift < 35; shift += 7) {
		if (p >= end)
			return -1;
		uint8_t b = *p++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			if (x > UINT32_MAX)
				return -1;
			*v = (uint32_t)x;
			*pp = p;
			return 0;
		}
	}
	return -1;
}

/* A growable array of entries (one bucket's). */
struct entries {
	struct entry *e;
	size_t n, cap;
};

static void entries_reserve(struct entries *a, size_t n)
{
	if (n <= a->cap)
		return;
	size_t cap = a->cap ? a->cap : 64;
	while (cap < n)
		cap *= 2;
	struct entry *e = realloc(a->e, cap * sizeof(*e));
	if (e == NULL)
		log_fatal("spam: out of memory");
	a->e = e;
	a->cap = cap;
}

/* A bucket's value: n (u32), the n hashes' low 48 bits sorted (6 bytes
 * each), their n days (u16 each), then the n (spam, innocent) count pairs as
 * varints. The fixed-width part is searched by bisection; the counts of the
 * i-th token are found by skipping 2i varints. */
#define BUCKET_HEAD 4

static uint64_t low_at(const uint8_t *lows, size_t i)
{
	const uint8_t *p = lows + 6 * i;
	return (uint64_t)store_get_be32(p) << 16 | (uint64_t)p[4] << 8 | p[5];
}

/* Checks the fixed part; *n_r and the start of the counts. */
static int bucket_head(const MDB_val *v, size_t *n_r, const uint8_t **counts_r)
{
	const uint8_t *p = v->mv_data;
	if (v->mv_size < BUCKET_HEAD)
		return STORE_ECORRUPT;
	size_t n = store_get_be32(p);
	if (n > (v->mv_size - BUCKET_HEAD) / 8)
		return STORE_ECORRUPT;
	*n_r = n;
	*counts_r = p + BUCKET_HEAD + 8 * n;
	return 0;
}

/* Decodes a bucket's value; STORE_ECORRUPT if it does not parse. */
static int bucket_decode(const MDB_val *v, struct entries *a)
{
	const uint8_t *p = v->mv_data, *end = p + v->mv_size, *c;
	size_t n;
	int rc = bucket_head(v, &n, &c);

	a->n = 0;
	if (rc != 0)
		return rc;
	entries_reserve(a, n);
	for (size_t i = 0; i < n; i++) {
		struct entry *x = &a->e[i];
		const uint8_t *d = p + BUCKET_HEAD + 6 * n + 2 * i;
		x->low = low_at(p + BUCKET_HEAD, i);
		x->day = (uint16_t)(d[0] << 8 | d[1]);
		if (get_varint(&c, end, &x->s) != 0 || get_varint(&c, end, &x->n) != 0)
			return STORE_ECORRUPT;
	}
	a->n = n;
	return 0;
}

/* Encodes entries (those with a count) into buf (ENTRY_MAX each, plus
 * BUCKET_HEAD); returns the length. */
static size_t bucket_encode(const struct entries *a, uint8_t *buf)
{
	size_t n = 0;
	for (size_t i = 0; i < a->n; i++)
		n += a->e[i].s || a->e[i].n;
	store_put_be32(buf, (uint32_t)n);
	uint8_t *lows = buf + BUCKET_HEAD, *days = lows + 6 * n;
	size_t len = BUCKET_HEAD + 8 * n, k = 0;
	for (size_t i = 0; i < a->n; i++) {
		const struct entry *x = &a->e[i];
		if (x->s == 0 && x->n == 0)
			continue;
		store_put_be32(lows + 6 * k, (uint32_t)(x->low >> 16));
		lows[6 * k + 4] = (uint8_t)(x->low >> 8);
		lows[6 * k + 5] = (uint8_t)x->low;
		days[2 * k] = (uint8_t)(x->day >> 8);
		days[2 * k + 1] = (uint8_t)x->day;
		len += put_varint(buf + len, x->s);
		len += put_varint(buf + len, x->n);
		k++;
	}
	return len;
}

/* Finds a token's counts in a raw bucket value: bisection over the hashes,
 * then a skip over the counts before it. Adds them to *c. */
static int bucket_find(const MDB_val *v, uint64_t low, struct spam_count *c, uint32_t *day)
{
	const uint8_t *p = v->mv_data, *end = p + v->mv_size, *cnt;
	size_t n, lo = 0, hi;
	int rc = bucket_head(v, &n, &cnt);

	if (rc != 0)
		return rc;
	hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint64_t l = low_at(p + BUCKET_HEAD, mid);
		if (l == low) {
			/* the counts of the tokens before it: 2 x mid varints */
			for (size_t skip = 2 * mid; skip > 0; cnt++) {
				if (cnt >= end)
					return STORE_ECORRUPT;
				skip -= !(*cnt & 0x80);
			}
			uint32_t s, in;
			if (get_varint(&cnt, end, &s) != 0 || get_varint(&cnt, end, &in) != 0)
				return STORE_ECORRUPT;
			c->spam += s;
			c->innocent += in;
			if (day) {
				const uint8_t *d = p + BUCKET_HEAD + 6 * n + 2 * mid;
				*day = (uint32_t)(d[0] << 8 | d[1]);
			}
			return 0;
		}
		if (l < low)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

int spam_db_token(struct store_txn *txn, uint32_t user_id, uint64_t token, struct spam_count *c,
		  uint32_t *day_r)
{
	uint8_t k[BUCKET_KEY];
	MDB_val key = {BUCKET_KEY, k}, val;
	int rc;

	c->spam = c->innocent = 0;
	if (day_r)
		*day_r = 0;
	bucket_key(k, user_id, bucket_of(token));
	rc = mdb_get(store_txn_mdb(txn), store_txn_dbi(txn, DB_SPAM_TOKENS), &key, &val);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return store_mdb_error(rc);
	return bucket_find(&val, token & LOW_MASK, c, day_r);
}

/* Adds the counts of the tokens hash[from..to) (one bucket's) found in
 * value v to counts. */
static int merge_bucket(const MDB_val *v, const uint64_t *hash, size_t from, size_t to,
			struct spam_count *counts)
{
	int rc = 0;
	for (size_t i = from; i < to && rc == 0; i++)
		rc = bucket_find(v, hash[i] & LOW_MASK, &counts[i], NULL);
	return rc;
}

int spam_db_counts(struct store_txn *txn, uint32_t user_id, int merge,
		   const struct spam_tokens *set, struct spam_count *counts)
{
	uint32_t users[2] = {user_id, SPAM_GLOBAL_USER};
	int nusers = merge && user_id != SPAM_GLOBAL_USER ? 2 : 1, rc = 0;
	MDB_txn *mt = store_txn_mdb(txn);
	MDB_dbi dbi = store_txn_dbi(txn, DB_SPAM_TOKENS);

	memset(counts, 0, set->n * sizeof(*counts));
	for (int u = 0; u < nusers && rc == 0; u++) {
		struct spam_stats st;
		MDB_cursor *cur;
		rc = spam_db_stats(txn, users[u], &st);
		if (rc != 0 || st.tokens == 0)
			continue; /* nothing learned: no lookups */
		if ((rc = mdb_cursor_open(mt, dbi, &cur)) != 0) {
			rc = store_mdb_error(rc);
			break;
		}
		/* the set is sorted by hash, so by bucket: one cursor walks the keys
		 * in order, and LMDB looks on its current page before descending */
		for (size_t i = 0; i < set->n && rc == 0;) {
			unsigned b = bucket_of(set->hash[i]);
			size_t j = i + 1;
			while (j < set->n && bucket_of(set->hash[j]) == b)
				j++;
			uint8_t k[BUCKET_KEY];
			MDB_val key = {BUCKET_KEY, k}, val;
			bucket_key(k, users[u], b);
			int r = mdb_cursor_get(cur, &key, &val, MDB_SET_KEY);
			if (r == 0)
				rc = merge_bucket(&val, set->hash, i, j, counts);
			else if (r != MDB_NOTFOUND)
				rc = store_mdb_error(r);
			i = j;
		}
		mdb_cursor_close(cur);
	}
	return rc;
}

/* One token's change: counts added (or taken back: below 0 stays 0); add
 * sets the token's day. */
struct delta {
	uint64_t token;
	int64_t ds, dn;
	int add;
};

static uint32_t clamp_count(uint32_t c, int64_t d)
{
	int64_t v = (int64_t)c + d;
	return v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* Applies changes (sorted by token, distinct) to the user's buckets, one
 * read and one write per bucket; records at 0/0 go away. *ntokens follows
 * the distinct token count. */
static int apply_deltas(struct store_txn *txn, uint32_t user_id, const struct delta *d, size_t n,
			uint32_t day, int64_t *ntokens)
{
	MDB_txn *mt = store_txn_mdb(txn);
	MDB_dbi dbi = store_txn_dbi(txn, DB_SPAM_TOKENS);
	struct entries a = {0}, out = {0};
	uint8_t *buf = NULL;
	size_t bufcap = 0;
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0;) {
		unsigned b = bucket_of(d[i].token);
		size_t j = i + 1;
		while (j < n && bucket_of(d[j].token) == b)
			j++;
		uint8_t k[BUCKET_KEY];
		MDB_val key = {BUCKET_KEY, k}, val;
		bucket_key(k, user_id, b);
		int r = mdb_get(mt, dbi, &key, &val);
		a.n = 0;
		if (r == 0)
			rc = bucket_decode(&val, &a);
		else if (r != MDB_NOTFOUND)
			rc = store_mdb_error(r);
		if (rc != 0)
			break;
		/* merge the sorted bucket with the sorted changes */
		entries_reserve(&out, a.n + (j - i));
		out.n = 0;
		size_t x = 0, y = i;
		int64_t before = 0, after = 0;
		while (x < a.n || y < j) {
			uint64_t tl = y < j ? d[y].token & LOW_MASK : UINT64_MAX;
			if (x < a.n && (y >= j || a.e[x].low < tl)) {
				out.e[out.n++] = a.e[x++];
				before++;
				after++;
				continue;
			}
			struct entry e = {.low = tl, .s = 0, .n = 0, .day = 0};
			if (x < a.n && a.e[x].low == tl) {
				e = a.e[x++];
				before++;
			}
			e.s = clamp_count(e.s, d[y].ds);
			e.n = clamp_count(e.n, d[y].dn);
			if (d[y].add)
				e.day = (uint16_t)(day > UINT16_MAX ? UINT16_MAX : day);
			y++;
			if (e.s || e.n) {
				out.e[out.n++] = e;
				after++;
			}
		}
		*ntokens += after - before;
		if (out.n == 0) {
			if (r == 0 && (r = mdb_del(mt, dbi, &key, NULL)) != 0)
				rc = store_mdb_error(r);
		} else {
			if (out.n * ENTRY_MAX + BUCKET_HEAD > bufcap) {
				bufcap = out.n * ENTRY_MAX + BUCKET_HEAD;
				free(buf);
				buf = xmalloc(bufcap);
			}
			MDB_val nv = {bucket_encode(&out, buf), buf};
			if ((r = mdb_put(mt, dbi, &key, &nv, 0)) != 0)
				rc = store_mdb_error(r);
		}
		i = j;
	}
	free(a.e);
	free(out.e);
	free(buf);
	return rc;
}

/* --- deferred changes (spam_db_defer_begin) ----------------------------------------- */

struct dent {
	uint64_t token;
	uint32_t user;
	uint32_t serial; /* the last apply that counted it: a token twice in one list counts once */
	int32_t ds, dn;
	uint8_t used, add;
};

static struct defer {
	struct store_txn *txn;
	struct dent *t;
	size_t n, cap; /* cap a power of 2 */
	uint32_t serial;
} defer;

static int deferring(const struct store_txn *txn)
{
	return defer.txn != NULL && defer.txn == txn;
}

static size_t dent_slot(uint32_t user, uint64_t token, size_t cap)
{
	uint64_t h = (token ^ ((uint64_t)user * 0x9E3779B97F4A7C15ULL)) * 0xbf58476d1ce4e5b9ULL;
	return (size_t)(h >> 17) & (cap - 1);
}

static struct dent *dent_get(uint32_t user, uint64_t token)
{
	if (2 * (defer.n + 1) > defer.cap) { /* grow at half full */
		size_t cap = defer.cap ? 2 * defer.cap : 1u << 16;
		struct dent *t = calloc(cap, sizeof(*t));
		if (t == NULL)
			log_fatal("spam: out of memory");
		for (size_t i = 0; i < defer.cap; i++) {
			if (!defer.t[i].used)
				continue;
			size_t k = dent_slot(defer.t[i].user, defer.t[i].token, cap);
			while (t[k].used)
				k = (k + 1) & (cap - 1);
			t[k] = defer.t[i];
		}
		free(defer.t);
		defer.t = t;
		defer.cap = cap;
	}
	size_t k = dent_slot(user, token, defer.cap);
	while (defer.t[k].used && (defer.t[k].user != user || defer.t[k].token != token))
		k = (k + 1) & (defer.cap - 1);
	if (!defer.t[k].used) {
		defer.t[k].used = 1;
		defer.t[k].user = user;
		defer.t[k].token = token;
		defer.n++;
	}
	return &defer.t[k];
}

int spam_db_defer_begin(struct store_txn *txn)
{
	if (!store_txn_writable(txn) || defer.txn != NULL)
		return STORE_EINVAL;
	defer.txn = txn;
	defer.n = 0; /* the table was cleared by the last flush or cancel */
	return 0;
}

/* Sorts by user, then token: LSD radix, a byte a pass, the token's 8 bytes
 * then the user's 4 (a pass whose byte is the same everywhere is skipped). */
static void dent_sort(struct dent *d, size_t n)
{
	struct dent *tmp = xmalloc(n * sizeof(*tmp)), *src = d, *dst = tmp;
	for (int pass = 0; pass < 12; pass++) {
		size_t count[256] = {0};
#define DIGIT(e)                                                                                   \
	(pass < 8 ? (unsigned)((e).token >> (8 * pass)) & 0xff                                     \
		  : (unsigned)((e).user >> (8 * (pass - 8))) & 0xff)
		for (size_t i = 0; i < n; i++)
			count[DIGIT(src[i])]++;
		if (n == 0 || count[DIGIT(src[0])] == n)
			continue;
		size_t sum = 0;
		for (int v = 0; v < 256; v++) {
			size_t c = count[v];
			count[v] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[count[DIGIT(src[i])]++] = src[i];
#undef DIGIT
		struct dent *t = src;
		src = dst;
		dst = t;
	}
	if (src != d)
		memcpy(d, src, n * sizeof(*d));
	free(tmp);
}

int spam_db_defer_flush(struct store_txn *txn, const struct spam_purge_rules *rules)
{
	int rc = 0;

	if (!deferring(txn))
		return STORE_EINVAL;
	defer.txn = NULL;
	size_t n = 0;
	for (size_t i = 0; i < defer.cap; i++)
		if (defer.t[i].used)
			defer.t[n++] = defer.t[i]; /* compact to the front (n <= i) */
	dent_sort(defer.t, n);
	struct delta *d = xmalloc(n * sizeof(*d));
	uint32_t today = spam_db_today();
	for (size_t i = 0; i < n && rc == 0;) {
		uint32_t user = defer.t[i].user;
		size_t j = i, m = 0;
		for (; j < n && defer.t[j].user == user; j++)
			if (defer.t[j].ds || defer.t[j].dn || defer.t[j].add)
				d[m++] = (struct delta){defer.t[j].token, defer.t[j].ds,
							defer.t[j].dn, defer.t[j].add};
		struct spam_stats st;
		int64_t ntokens = 0;
		rc = apply_deltas(txn, user, d, m, today, &ntokens);
		if (rc == 0)
			rc = spam_db_stats(txn, user, &st);
		if (rc == 0) {
			int64_t t = (int64_t)st.tokens + ntokens;
			st.tokens = t > 0 ? (uint64_t)t : 0;
			rc = stats_put(txn, user, &st);
		}
		if (rc == 0 && rules != NULL &&
		    ((rules->token_limit && st.tokens > rules->token_limit) ||
		     (rules->interval_days && today >= st.last_purge + rules->interval_days)))
			rc = spam_db_purge(txn, user, rules, NULL);
		i = j;
	}
	free(d);
	memset(defer.t, 0, defer.cap * sizeof(*defer.t));
	defer.n = 0;
	store_txn_touch(txn);
	return rc;
}

int spam_db_deferring(const struct store_txn *txn)
{
	return deferring(txn);
}

size_t spam_db_defer_size(const struct store_txn *txn)
{
	return deferring(txn) ? defer.n : 0;
}

void spam_db_defer_cancel(struct store_txn *txn)
{
	if (deferring(txn)) {
		defer.txn = NULL;
		if (defer.t)
			memset(defer.t, 0, defer.cap * sizeof(*defer.t));
		defer.n = 0;
	}
}

/* Adds delta (times, or minus times) to one class of each token (sorted by
 * hash, distinct); adding sets the token's day. *ntokens follows the
 * distinct token count. While changes are deferred they are only noted. */
static int apply(struct store_txn *txn, uint32_t user_id, const uint64_t *tokens, size_t n,
		 enum spam_class cls, int delta, uint32_t day, int64_t *ntokens)
{
	if (deferring(txn)) {
		/* tokens need not be sorted here: a token twice in the list counts once */
		defer.serial++;
		for (size_t i = 0; i < n; i++) {
			struct dent *e = dent_get(user_id, tokens[i]);
			if (e->serial == defer.serial)
				continue;
			e->serial = defer.serial;
			if (cls == SPAM_CLASS_SPAM)
				e->ds += delta;
			else
				e->dn += delta;
			e->add |= delta > 0;
		}
		return 0;
	}
	struct delta *d = xmalloc(n * sizeof(*d));
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (m > 0 && d[m - 1].token == tokens[i])
			continue; /* duplicates count once */
		d[m].token = tokens[i];
		d[m].ds = cls == SPAM_CLASS_SPAM ? delta : 0;
		d[m].dn = cls == SPAM_CLASS_SPAM ? 0 : delta;
		d[m].add = delta > 0;
		m++;
	}
	int rc = apply_deltas(txn, user_id, d, m, day, ntokens);
	free(d);
	return rc;
}

/* --- learning records -------------------------------------------------------------- */

static void sig_key(uint8_t k[4 + STORE_HASH_LEN], uint32_t user_id,
		    const uint8_t hash[STORE_HASH_LEN])
{
	store_put_be32(k, user_id);
	memcpy(k + 4, hash, STORE_HASH_LEN);
}

/* Parses a record; list_r/nlist_r point into the value (older records). */
static int rec_decode(const MDB_val *v, struct spam_learned_rec *rec, const uint8_t **list_r,
		      size_t *nlist_r)
{
	const uint8_t *p = v->mv_data;
	memset(rec, 0, sizeof(*rec));
	*list_r = NULL;
	*nlist_r = 0;
	if (v->mv_size < SIG_HEAD)
		return STORE_ECORRUPT;
	rec->cls = p[0];
	rec->kind = p[1];
	if (p[3] == REC_MARK) {
		rec->times = p[2] ? p[2] : 1;
		rec->day = store_get_be32(p + 4);
		return 0;
	}
	size_t n = store_get_be32(p + 4);
	if (v->mv_size != SIG_HEAD + 8 * n)
		return STORE_ECORRUPT;
	rec->times = 1;
	rec->has_list = 1;
	*list_r = p + SIG_HEAD;
	*nlist_r = n;
	return 0;
}

int spam_db_record(struct store_txn *txn, uint32_t user_id, const uint8_t hash[STORE_HASH_LEN],
		   struct spam_learned_rec *rec)
{
	uint8_t k[4 + STORE_HASH_LEN];
	MDB_val key = {sizeof(k), k}, val;
	const uint8_t *list;
	size_t nlist;
	int rc;

	memset(rec, 0, sizeof(*rec));
	sig_key(k, user_id, hash);
	rc = mdb_get(store_txn_mdb(txn), store_txn_dbi(txn, DB_SPAM_SIGS), &key, &val);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return store_mdb_error(rc);
	return rec_decode(&val, rec, &list, &nlist);
}

int spam_db_learned(struct store_txn *txn, uint32_t user_id, const uint8_t hash[STORE_HASH_LEN],
		    enum spam_class *class_r)
{
	struct spam_learned_rec rec;
	int rc = spam_db_record(txn, user_id, hash, &rec);
	*class_r = rc == 0 ? rec.cls : SPAM_CLASS_NONE;
	return rc;
}

int spam_db_put_record(struct store_txn *txn, uint32_t user_id, const uint8_t hash[STORE_HASH_LEN],
		       const struct spam_learned_rec *rec)
{
	uint8_t k[4 + STORE_HASH_LEN], b[SIG_HEAD];
	MDB_val key = {sizeof(k), k}, val = {SIG_HEAD, b};
	int rc;

	sig_key(k, user_id, hash);
	if (rec->cls == SPAM_CLASS_NONE) {
		rc = mdb_del(store_txn_mdb(txn), store_txn_dbi(txn, DB_SPAM_SIGS), &key, NULL);
		return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_mdb_error(rc);
	}
	b[0] = (uint8_t)rec->cls;
	b[1] = (uint8_t)rec->kind;
	b[2] = (uint8_t)(rec->times > SPAM_TIMES_MAX ? SPAM_TIMES_MAX : rec->times);
	b[3] = REC_MARK;
	store_put_be32(b + 4, rec->day);
	rc = mdb_put(store_txn_mdb(txn), store_txn_dbi(txn, DB_SPAM_SIGS), &key, &val, 0);
	return rc ? store_mdb_error(rc) : 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* An older record's token list, decoded and sorted (the caller frees it). */
static uint64_t *list_sorted(const uint8_t *list, size_t n)
{
	uint64_t *t = xmalloc(n * sizeof(*t));
	for (size_t i = 0; i < n; i++)
		t[i] = store_get_be64(list + 8 * i);
	qsort(t, n, sizeof(*t), cmp_u64);
	return t;
}

static uint64_t *learned_of(struct spam_stats *st, enum spam_class c)
{
	return c == SPAM_CLASS_SPAM ? &st->spam_learned : &st->innocent_learned;
}

int spam_db_train(struct store_txn *txn, uint32_t user_id, const uint8_t hash[STORE_HASH_LEN],
		  const struct spam_tokens *set, enum spam_tokenizer kind, enum spam_class cls,
		  int correction, int again, const struct spam_purge_rules *rules, int *changed_r)
{
	MDB_txn *mt = store_txn_mdb(txn);
	uint8_t k[4 + STORE_HASH_LEN];
	MDB_val key = {sizeof(k), k}, val;
	struct spam_learned_rec old = {0}, rec;
	struct spam_stats st;
	uint64_t *oldlist = NULL;
	const uint64_t *tok = NULL;
	size_t ntok = 0;
	uint32_t today = spam_db_today();
	int64_t ntokens;
	int rc;

	if (changed_r)
		*changed_r = 0;
	if (!store_txn_writable(txn))
		return STORE_EINVAL;
	sig_key(k, user_id, hash);
	rc = mdb_get(mt, store_txn_dbi(txn, DB_SPAM_SIGS), &key, &val);
	if (rc == 0) {
		const uint8_t *list;
		size_t nlist;
		if ((rc = rec_decode(&val, &old, &list, &nlist)) != 0)
			return rc;
		if (old.has_list) {
			oldlist = list_sorted(list, nlist);
			tok = oldlist;
			ntok = nlist;
		}
	} else if (rc != MDB_NOTFOUND) {
		return store_mdb_error(rc);
	}
	if (old.cls == cls && (!again || cls == SPAM_CLASS_NONE || old.times >= SPAM_TIMES_MAX)) {
		free(oldlist);
		return 0;
	}
	if (tok == NULL) {
		if (set == NULL) {
			free(oldlist);
			return STORE_EINVAL;
		}
		tok = set->hash;
		ntok = set->n;
	}
	rc = spam_db_stats(txn, user_id, &st);
	if (rc != 0)
		goto fail;
	ntokens = (int64_t)st.tokens;
	rec = old;
	if (old.cls == cls) { /* again: one more time */
		rc = apply(txn, user_id, tok, ntok, cls, +1, today, &ntokens);
		(*learned_of(&st, cls))++;
		rec.times++;
	} else {
		if (old.cls != SPAM_CLASS_NONE) { /* take back exactly what was added */
			rc = apply(txn, user_id, tok, ntok, old.cls, -(int)old.times, today,
				   &ntokens);
			uint64_t *c = learned_of(&st, old.cls);
			*c = *c > old.times ? *c - old.times : 0;
		}
		if (rc == 0 && cls != SPAM_CLASS_NONE) {
			/* a flip keeps the times: the same message, as the other class */
			unsigned times = old.cls != SPAM_CLASS_NONE ? old.times : 1;
			rc = apply(txn, user_id, tok, ntok, cls, (int)times, today, &ntokens);
			*learned_of(&st, cls) += times;
			rec.times = times;
			if (correction && old.cls != SPAM_CLASS_NONE) {
				if (cls == SPAM_CLASS_SPAM)
					st.spam_misses++;
				else
					st.false_positives++;
			} else if (correction) {
				/* a message never learned, corrected: it was misjudged at delivery
				 */
				if (cls == SPAM_CLASS_SPAM)
					st.spam_misses++;
				else
					st.false_positives++;
			}
		}
		rec.cls = cls;
		if (old.cls == SPAM_CLASS_NONE)
			rec.kind = kind;
	}
	if (rc != 0)
		goto fail;
	rec.day = today;
	if (rec.has_list && cls != SPAM_CLASS_NONE) {
		/* an older record keeps its list: rewrite its class byte only */
		uint8_t *copy = xmalloc(val.mv_size);
		memcpy(copy, val.mv_data, val.mv_size);
		copy[0] = (uint8_t)cls;
		MDB_val nv = {val.mv_size, copy};
		int r = mdb_put(mt, store_txn_dbi(txn, DB_SPAM_SIGS), &key, &nv, 0);
		free(copy);
		rc = r ? store_mdb_error(r) : 0;
	} else {
		rc = spam_db_put_record(txn, user_id, hash, &rec);
	}
	if (rc != 0)
		goto fail;
	st.tokens = ntokens > 0 ? (uint64_t)ntokens : 0;
	rc = stats_put(txn, user_id, &st);
	if (rc != 0)
		goto fail;
	store_txn_touch(txn);
	if (changed_r)
		*changed_r = 1;
	if (rules != NULL && !deferring(txn) &&
	    ((rules->token_limit && st.tokens > rules->token_limit) ||
	     (rules->interval_days && today >= st.last_purge + rules->interval_days)))
		rc = spam_db_purge(txn, user_id, rules, NULL);
fail:
	free(oldlist);
	return rc;
}

/* --- purging ------------------------------------------------------------------------ */

#define USE_LEVELS 4096

/* How useful a token is: how many learned messages brought it (in
 * quarters, for room), nothing else. Weighing by how one-sided a token is
 * (|2p - 1|) evicted the common, mildly innocent tokens of mailing-list
 * headers first, and weighing innocent sightings twice (DSPAM's rare rule)
 * tilted what stayed: on one fold of the cross-validation with a cap of 1 M
 * tokens, 122 and 6 false positives of 330 against 2 with sightings alone
 * (0 without a cap). Among equals the oldest go first (spam_db_purge). */
static unsigned usefulness(const struct entry *e, double ns, double ni)
{
	(void)ns, (void)ni;
	double u = 4.0 * ((double)e->s + e->n);
	return u >= USE_LEVELS - 1 ? USE_LEVELS - 1 : (unsigned)u;
}

static int old_enough(uint16_t day, uint32_t today, unsigned days)
{
	return days != 0 && (uint32_t)day + days <= today;
}

/* Which rule removes a token: 1 hapax, 2 rare, 3 stale, 0 none. */
static int date_rule(const struct entry *e, const struct spam_purge_rules *r, uint32_t today)
{
	if (e->s + (uint64_t)e->n == 1 && old_enough(e->day, today, r->hapax_days))
		return 1;
	if (2 * (uint64_t)e->n + e->s < 5 && old_enough(e->day, today, r->rare_days))
		return 2;
	if (old_enough(e->day, today, r->stale_days))
		return 3;
	return 0;
}

struct purge_pass {
	const struct spam_purge_rules *rules;
	uint32_t today;
	double ns, ni;
	int evict; /* eviction pass: remove u < cut_u, and u == cut_u with day < cut_day, and
		    * tie_left more with u == cut_u and day == cut_day */
	unsigned cut_u;
	uint32_t cut_day;
	uint64_t tie_left;
	uint64_t *hist_u;   /* count pass: histogram of usefulness (NULL: none) */
	uint64_t *hist_day; /* histogram of days for u == cut_u (NULL: none) */
	struct spam_purge_result res;
};

/* One walk over the user's buckets: counts (histograms) or removes. */
static int purge_walk(struct store_txn *txn, uint32_t user_id, struct purge_pass *pp, int write)
{
	MDB_cursor *cur;
	uint8_t k[BUCKET_KEY];
	MDB_val key = {BUCKET_KEY, k}, val;
	struct entries a = {0};
	uint8_t *buf = NULL;
	size_t bufcap = 0;
	int rc = mdb_cursor_open(store_txn_mdb(txn), store_txn_dbi(txn, DB_SPAM_TOKENS), &cur);

	if (rc != 0)
		return store_mdb_error(rc);
	bucket_key(k, user_id, 0);
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (key.mv_size < 4 || store_get_be32(key.mv_data) != user_id)
			break;
		if (key.mv_size != BUCKET_KEY)
			continue; /* the older format's records: spam_db_rebuild's */
		if ((rc = bucket_decode(&val, &a)) != 0)
			break;
		size_t kept = 0;
		for (size_t i = 0; i < a.n; i++) {
			struct entry *e = &a.e[i];
			int rule = pp->evict ? 0 : date_rule(e, pp->rules, pp->today);
			if (rule == 0 && (pp->evict || pp->hist_u || pp->hist_day)) {
				unsigned u = usefulness(e, pp->ns, pp->ni);
				if (pp->hist_u)
					pp->hist_u[u]++;
				if (pp->hist_day && u == pp->cut_u)
					pp->hist_day[e->day]++;
				if (pp->evict &&
				    (u < pp->cut_u || (u == pp->cut_u && e->day < pp->cut_day) ||
				     (u == pp->cut_u && e->day == pp->cut_day &&
				      pp->tie_left > 0))) {
					if (u == pp->cut_u && e->day == pp->cut_day)
						pp->tie_left--;
					rule = 4;
				}
			}
			switch (rule) {
			case 1:
				pp->res.hapax++;
				break;
			case 2:
				pp->res.rare++;
				break;
			case 3:
				pp->res.stale++;
				break;
			case 4:
				pp->res.evicted++;
				break;
			default:
				a.e[kept++] = *e;
				pp->res.tokens++;
			}
		}
		if (!write || kept == a.n)
			continue;
		a.n = kept;
		if (kept == 0) {
			rc = mdb_cursor_del(cur, 0);
		} else {
			if (kept * ENTRY_MAX + BUCKET_HEAD > bufcap) {
				bufcap = kept * ENTRY_MAX + BUCKET_HEAD;
				free(buf);
				buf = xmalloc(bufcap);
			}
			/* the key must not point into the page the put rewrites */
			uint8_t kc[BUCKET_KEY];
			memcpy(kc, key.mv_data, BUCKET_KEY);
			MDB_val kv = {BUCKET_KEY, kc}, nv = {bucket_encode(&a, buf), buf};
			rc = mdb_cursor_put(cur, &kv, &nv, MDB_CURRENT);
		}
		if (rc != 0)
			break;
	}
	mdb_cursor_close(cur);
	free(a.e);
	free(buf);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : rc > 0 ? store_mdb_error(rc) : rc;
}

/* Writes the user's buckets again in key order: after a purge has shrunk
 * most of them, LMDB's pages are left part empty (it merges a page only
 * below a quarter full); deleting the buckets and putting them back in order
 * fills new pages (sequential inserts split at the end). */
static int compact_user(struct store_txn *txn, uint32_t user_id)
{
	MDB_txn *mt = store_txn_mdb(txn);
	MDB_dbi dbi = store_txn_dbi(txn, DB_SPAM_TOKENS);
	MDB_cursor *cur;
	uint8_t k[4];
	MDB_val key = {4, k}, val;
	uint8_t *arena = NULL;
	size_t len = 0, cap = 0;
	int rc = mdb_cursor_open(mt, dbi, &cur);

	if (rc != 0)
		return store_mdb_error(rc);
	store_put_be32(k, user_id);
	/* copy out and delete: [key 6][value length u32][value] each */
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_GET_CURRENT)) {
		if (key.mv_size < 4 || store_get_be32(key.mv_data) != user_id)
			break;
		if (key.mv_size != BUCKET_KEY) {
			rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
			if (rc != 0)
				break;
			continue;
		}
		if (len + BUCKET_KEY + 4 + val.mv_size > cap) {
			cap = cap ? 2 * cap : 1u << 20;
			while (cap < len + BUCKET_KEY + 4 + val.mv_size)
				cap *= 2;
			uint8_t *na = realloc(arena, cap);
			if (na == NULL)
				log_fatal("spam: out of memory");
			arena = na;
		}
		memcpy(arena + len, key.mv_data, BUCKET_KEY);
		store_put_be32(arena + len + BUCKET_KEY, (uint32_t)val.mv_size);
		memcpy(arena + len + BUCKET_KEY + 4, val.mv_data, val.mv_size);
		len += BUCKET_KEY + 4 + val.mv_size;
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND && rc != EINVAL) {
		free(arena);
		return store_mdb_error(rc);
	}
	rc = 0;
	for (size_t off = 0; off < len && rc == 0;) {
		MDB_val kv = {BUCKET_KEY, arena + off};
		MDB_val vv = {store_get_be32(arena + off + BUCKET_KEY),
			      arena + off + BUCKET_KEY + 4};
		rc = mdb_put(mt, dbi, &kv, &vv, 0);
		off += BUCKET_KEY + 4 + vv.mv_size;
	}
	free(arena);
	return rc ? store_mdb_error(rc) : 0;
}

int spam_db_purge(struct store_txn *txn, uint32_t user_id, const struct spam_purge_rules *rules,
		  struct spam_purge_result *res_r)
{
	struct spam_stats st;
	struct purge_pass pp = {.rules = rules, .today = spam_db_today()};
	uint64_t *hist_u = NULL, *hist_day = NULL;
	int rc;

	if (!store_txn_writable(txn))
		return STORE_EINVAL;
	if ((rc = spam_db_stats(txn, user_id, &st)) != 0)
		return rc;
	pp.ns = st.spam_learned ? (double)st.spam_learned : 1.0;
	pp.ni = st.innocent_learned ? (double)st.innocent_learned : 1.0;
	uint64_t target = rules->token_limit - rules->token_limit / 10;
	/* the date rules, counting the usefulness of what stays in the same walk */
	hist_u = calloc(USE_LEVELS, sizeof(*hist_u));
	if (hist_u == NULL)
		log_fatal("spam: out of memory");
	pp.hist_u = rules->token_limit ? hist_u : NULL;
	if ((rc = purge_walk(txn, user_id, &pp, 1)) != 0)
		goto out;
	struct spam_purge_result res = pp.res;
	if (rules->token_limit && res.tokens > rules->token_limit) {
		/* the cap: the least useful first, the oldest first among equals */
		uint64_t excess = res.tokens - target, below = 0;
		unsigned cut = 0;
		while (cut < USE_LEVELS - 1 && below + hist_u[cut] < excess)
			below += hist_u[cut++];
		hist_day = calloc(UINT16_MAX + 1, sizeof(*hist_day));
		if (hist_day == NULL)
			log_fatal("spam: out of memory");
		struct purge_pass count = {.rules = rules,
					   .today = pp.today,
					   .ns = pp.ns,
					   .ni = pp.ni,
					   .evict = 0,
					   .cut_u = cut,
					   .hist_day = hist_day};
		struct spam_purge_rules none = {0};
		count.rules = &none;
		if ((rc = purge_walk(txn, user_id, &count, 0)) != 0)
			goto out;
		uint64_t left = excess - below;
		uint32_t day = 0;
		while (day < UINT16_MAX && hist_day[day] <= left) {
			left -= hist_day[day];
			day++;
		}
		struct purge_pass ev = {.rules = &none,
					.today = pp.today,
					.ns = pp.ns,
					.ni = pp.ni,
					.evict = 1,
					.cut_u = cut,
					.cut_day = day,
					.tie_left = left};
		if ((rc = purge_walk(txn, user_id, &ev, 1)) != 0)
			goto out;
		res.evicted = ev.res.evicted;
		res.tokens = ev.res.tokens;
	}
	/* a tenth or more of the tokens gone: pack the pages again */
	if (10 * (res.hapax + res.rare + res.stale + res.evicted) >= st.tokens && st.tokens > 0 &&
	    (rc = compact_user(txn, user_id)) != 0)
		goto out;
	st.tokens = res.tokens;
	st.last_purge = pp.today;
	st.purged += res.hapax + res.rare + res.stale + res.evicted;
	if ((rc = stats_put(txn, user_id, &st)) != 0)
		goto out;
	store_txn_touch(txn);
	if (res_r)
		*res_r = res;
out:
	free(hist_u);
	free(hist_day);
	return rc;
}

int spam_db_bytes(struct store_txn *txn, uint32_t user_id, uint64_t *bytes_r)
{
	MDB_cursor *cur;
	uint8_t k[4];
	MDB_val key = {4, k}, val;
	int rc = mdb_cursor_open(store_txn_mdb(txn), store_txn_dbi(txn, DB_SPAM_TOKENS), &cur);

	*bytes_r = 0;
	if (rc != 0)
		return store_mdb_error(rc);
	store_put_be32(k, user_id);
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (key.mv_size < 4 || store_get_be32(key.mv_data) != user_id)
			break;
		/* LMDB's leaf node: an 8-byte header, the key, the value, a 2-byte pointer */
		*bytes_r += 8 + key.mv_size + val.mv_size + 2;
	}
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_mdb_error(rc);
}

int spam_db_clear_tokens(struct store_txn *txn, uint32_t user_id, int *had_old_r)
{
	MDB_cursor *cur;
	uint8_t k[4];
	MDB_val key = {4, k}, val;
	struct spam_stats st;
	int rc = mdb_cursor_open(store_txn_mdb(txn), store_txn_dbi(txn, DB_SPAM_TOKENS), &cur);

	*had_old_r = 0;
	if (rc != 0)
		return store_mdb_error(rc);
	store_put_be32(k, user_id);
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_GET_CURRENT)) {
		if (key.mv_size < 4 || store_get_be32(key.mv_data) != user_id)
			break;
		if (key.mv_size == OLD_TOKEN_KEY)
			*had_old_r = 1;
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND && rc != EINVAL)
		return store_mdb_error(rc);
	if ((rc = spam_db_stats(txn, user_id, &st)) != 0)
		return rc;
	st.spam_learned = st.innocent_learned = st.tokens = 0;
	store_txn_touch(txn);
	return stats_put(txn, user_id, &st);
}

int spam_db_has_old_format(struct store_txn *txn)
{
	MDB_cursor *cur;
	MDB_val key, val;
	int found = 0, n = 0, rc;

	if (mdb_cursor_open(store_txn_mdb(txn), store_txn_dbi(txn, DB_SPAM_TOKENS), &cur) != 0)
		return 0;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0 && n < 4096 && !found;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT), n++)
		found = key.mv_size == OLD_TOKEN_KEY;
	mdb_cursor_close(cur);
	return found;
}

int spam_db_add_tokens(struct store_txn *txn, uint32_t user_id, const uint64_t *tokens, size_t n,
		       enum spam_class cls, unsigned times)
{
	struct spam_stats st;
	int64_t ntokens;
	int rc = spam_db_stats(txn, user_id, &st);

	if (rc != 0)
		return rc;
	ntokens = (int64_t)st.tokens;
	if ((rc = apply(txn, user_id, tokens, n, cls, (int)times, spam_db_today(), &ntokens)) != 0)
		return rc;
	*learned_of(&st, cls) += times;
	st.tokens = ntokens > 0 ? (uint64_t)ntokens : 0;
	store_txn_touch(txn);
	return stats_put(txn, user_id, &st);
}

int spam_db_records(struct store_txn *txn, uint32_t user_id, uint8_t resume[4 + STORE_HASH_LEN],
		    size_t max, spam_record_fn *fn, void *ctx)
{
	MDB_cursor *cur;
	uint8_t zero[4 + STORE_HASH_LEN] = {0}, start[4 + STORE_HASH_LEN];
	MDB_val key = {sizeof(start), start}, val;
	size_t seen = 0;
	int fresh = memcmp(resume, zero, sizeof(zero)) == 0;
	int rc = mdb_cursor_open(store_txn_mdb(txn), store_txn_dbi(txn, DB_SPAM_SIGS), &cur);

	if (rc != 0)
		return store_mdb_error(rc);
	memcpy(start, resume, sizeof(start));
	if (fresh && user_id != UINT32_MAX)
		store_put_be32(start, user_id);
	rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	if (rc == 0 && !fresh && key.mv_size == sizeof(start) &&
	    memcmp(key.mv_data, resume, sizeof(start)) == 0)
		rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT); /* resume after the last one seen */
	for (; rc == 0; rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (key.mv_size != 4 + STORE_HASH_LEN)
			continue;
		uint32_t uid = store_get_be32(key.mv_data);
		if (user_id != UINT32_MAX && uid != user_id)
			break;
		struct spam_learned_rec rec;
		const uint8_t *list;
		size_t nlist;
		if (rec_decode(&val, &rec, &list, &nlist) != 0)
			continue;
		uint64_t *t = list ? list_sorted(list, nlist) : NULL;
		memcpy(resume, key.mv_data, 4 + STORE_HASH_LEN);
		int r = fn(uid, (const uint8_t *)key.mv_data + 4, &rec, t, nlist, ctx);
		free(t);
		if (r != 0) {
			mdb_cursor_close(cur);
			return r;
		}
		if (max && ++seen >= max)
			break;
	}
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_mdb_error(rc);
}
