/* spam_db — per-user token counts in packed buckets, totals and learning
 * records in the store's LMDB environment (see spam_db.h for the layouts). */
#include "index/spam_db.h"

#include <endian.h>
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
#define LOW_MASK ((1ull << (64 - SPAM_BUCKET_BITS)) - 1)
/* segments (spam_db.h) */
#define SEG_BITS 8
#define NSEG (1u << SEG_BITS)
#define NSLOT (1u << (SPAM_BUCKET_BITS - SEG_BITS))
#define SEG_KEY 7 /* user u32 + segment u16 + part u8 */
#define PART_BASE 0
#define PART_OVERLAY 1
#define SEG_VERSION 1
#define SEG_HEAD 16
#define SEG_BIG 0xff /* a count byte: both counts are in the big table */
#define OV_HEAD 4
#define OV_ENTRY 20
#define AHEAD 16   /* counts_segments prefetches this many tokens ahead */
#define OV_MIN 128 /* an overlay holds this many tokens at least ... */
#define OV_SHARE 8 /* ... or an eighth of its base's */

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
	st->format = f[7];
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
				    st->tokens,		 st->format,
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

/* --- the token table ------------------------------------------------------------- */

/* One token in memory. */
struct entry {
	uint64_t hash;
	uint32_t s, n;
	uint16_t day;
};

/* A growable array of entries (one segment's, or one bucket's). */
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

static uint16_t day16(uint32_t day)
{
	return (uint16_t)(day > UINT16_MAX ? UINT16_MAX : day);
}

/* Little-endian loads and stores (the segments' arrays; unaligned). */
static inline uint64_t ld64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return le64toh(v);
}

static inline uint32_t ld32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return le32toh(v);
}

static inline uint16_t ld16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return le16toh(v);
}

static inline void st64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static inline void st32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static inline void st16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

/* --- segments (spam_db.h): the layout since round 2 of issue 16 --- */

static unsigned seg_of(uint64_t h)
{
	return (unsigned)(h >> (64 - SEG_BITS));
}

static unsigned slot_of(uint64_t h)
{
	return (unsigned)(h >> (64 - SPAM_BUCKET_BITS)) & (NSLOT - 1);
}

static void seg_key(uint8_t k[SEG_KEY], uint32_t user_id, unsigned seg, int part)
{
	store_put_be32(k, user_id);
	k[4] = (uint8_t)(seg >> 8);
	k[5] = (uint8_t)seg;
	k[6] = (uint8_t)part;
}

/* A base value, parsed: pointers into it. */
struct segview {
	size_t n, m;
	unsigned dirw;
	const uint8_t *dir, *ent, *days, *big;
};

static int seg_parse(const MDB_val *v, struct segview *sv)
{
	const uint8_t *p = v->mv_data;
	size_t size = v->mv_size;

	if (size < SEG_HEAD || p[0] != SEG_VERSION || (p[1] != 2 && p[1] != 4))
		return STORE_ECORRUPT;
	sv->dirw = p[1];
	sv->n = ld32(p + 4);
	sv->m = ld32(p + 8);
	if (sv->n > size || sv->m > size ||
	    size != SEG_HEAD + (NSLOT + 1) * sv->dirw + 10 * sv->n + 12 * sv->m)
		return STORE_ECORRUPT;
	sv->dir = p + SEG_HEAD;
	sv->ent = sv->dir + (NSLOT + 1) * sv->dirw;
	sv->days = sv->ent + 8 * sv->n;
	sv->big = sv->days + 2 * sv->n;
	return 0;
}

static inline size_t dir_at(const struct segview *sv, unsigned i)
{
	return sv->dirw == 2 ? ld16(sv->dir + 2 * i) : ld32(sv->dir + 4 * i);
}

/* Where to look for a token in a base value: the slot [*a_r, *b_r) and a
 * guess in it (returned; *b_r when the slot is empty). The low bits are
 * even (the hash is mixed): the guess is where the key would be if they
 * were evenly spread. -1 when the value is corrupt. */
static inline long seg_guess(const struct segview *sv, uint64_t hash, size_t *a_r, size_t *b_r)
{
	unsigned slot = slot_of(hash);
	size_t a = dir_at(sv, slot), b = dir_at(sv, slot + 1);

	if (a > b || b > sv->n)
		return -1;
	*a_r = a;
	*b_r = b;
	if (a == b)
		return (long)b;
	return (long)(a + (size_t)((((hash & LOW_MASK) >> 24) * (uint64_t)(b - a)) >> 24));
}

/* Steps from the guess i in [a, b) to the token: its index, or -1. *w_r:
 * its entry (the key's 48 bits, then the spam and innocent count bytes). */
static inline long seg_probe(const struct segview *sv, uint64_t hash, size_t a, size_t b, size_t i,
			     uint64_t *w_r)
{
	uint64_t low = hash & LOW_MASK, w, k;

	if (i >= b)
		return -1;
	w = ld64(sv->ent + 8 * i);
	k = w & LOW_MASK;
	if (k < low) {
		while (++i < b && ((w = ld64(sv->ent + 8 * i)) & LOW_MASK) < low)
			;
		k = i < b ? w & LOW_MASK : ~0ull;
	} else {
		while (k > low && i > a) {
			w = ld64(sv->ent + 8 * --i);
			k = w & LOW_MASK;
		}
	}
	*w_r = w;
	return k == low ? (long)i : -1;
}

/* The index of a token in a base value: >= 0, -1 when absent, -2 when the
 * value is corrupt. */
static inline long seg_index(const struct segview *sv, uint64_t hash, uint64_t *w_r)
{
	size_t a, b;
	long g = seg_guess(sv, hash, &a, &b);
	return g < 0 ? -2 : seg_probe(sv, hash, a, b, (size_t)g, w_r);
}

/* The counts of the i-th token of a base value, whose entry is w. */
static inline int seg_counts(const struct segview *sv, size_t i, uint64_t w, uint32_t *s,
			     uint32_t *n)
{
	uint8_t cs = (uint8_t)(w >> 48), cn = (uint8_t)(w >> 56);
	if (cs != SEG_BIG && cn != SEG_BIG) {
		*s = cs;
		*n = cn;
		return 0;
	}
	size_t a = 0, b = sv->m;
	while (a < b) {
		size_t mid = a + (b - a) / 2;
		uint32_t at = ld32(sv->big + 12 * mid);
		if (at == i) {
			*s = ld32(sv->big + 12 * mid + 4);
			*n = ld32(sv->big + 12 * mid + 8);
			return 0;
		}
		if (at < i)
			a = mid + 1;
		else
			b = mid;
	}
	return STORE_ECORRUPT;
}

/* The bytes seg_encode needs for n entries. */
static size_t seg_size_max(size_t n)
{
	return SEG_HEAD + (NSLOT + 1) * 4 + 10 * n + 12 * n;
}

/* Encodes the entries with a count (sorted by hash, one segment's) as a
 * base value into buf (seg_size_max bytes); returns its length, 0 when none
 * has a count. */
static size_t seg_encode(const struct entries *a, uint8_t *buf)
{
	size_t n = 0, m = 0;
	for (size_t i = 0; i < a->n; i++) {
		const struct entry *x = &a->e[i];
		if (x->s || x->n) {
			n++;
			m += x->s >= SEG_BIG || x->n >= SEG_BIG;
		}
	}
	if (n == 0)
		return 0;
	unsigned dirw = n <= UINT16_MAX ? 2 : 4;
	uint8_t *dir = buf + SEG_HEAD, *ent = dir + (NSLOT + 1) * dirw, *days = ent + 8 * n,
		*big = days + 2 * n;
	memset(buf, 0, SEG_HEAD);
	buf[0] = SEG_VERSION;
	buf[1] = (uint8_t)dirw;
	st32(buf + 4, (uint32_t)n);
	st32(buf + 8, (uint32_t)m);
	size_t k = 0, b = 0;
	unsigned slot = 0;
	for (size_t i = 0; i < a->n; i++) {
		const struct entry *x = &a->e[i];
		if (!x->s && !x->n)
			continue;
		unsigned sl = slot_of(x->hash);
		for (; slot <= sl; slot++) /* the slots up to this one start here */
			dirw == 2 ? st16(dir + 2 * slot, (uint16_t)k)
				  : st32(dir + 4 * slot, (uint32_t)k);
		uint64_t w = x->hash & LOW_MASK;
		st16(days + 2 * k, x->day);
		if (x->s >= SEG_BIG || x->n >= SEG_BIG) {
			w |= (uint64_t)SEG_BIG << 48 | (uint64_t)SEG_BIG << 56;
			st32(big + 12 * b, (uint32_t)k);
			st32(big + 12 * b + 4, x->s);
			st32(big + 12 * b + 8, x->n);
			b++;
		} else {
			w |= (uint64_t)x->s << 48 | (uint64_t)x->n << 56;
		}
		st64(ent + 8 * k, w);
		k++;
	}
	for (; slot <= NSLOT; slot++)
		dirw == 2 ? st16(dir + 2 * slot, (uint16_t)n) : st32(dir + 4 * slot, (uint32_t)n);
	return SEG_HEAD + (NSLOT + 1) * dirw + 10 * n + 12 * m;
}

/* An overlay value: n (u32), then n entries sorted by hash: hash u64, spam
 * u32, innocent u32, day u16, 2 bytes of 0. An entry at 0/0 hides the
 * base's token (it was taken back). */
static int ov_parse(const MDB_val *v, size_t *n_r)
{
	if (v->mv_size < OV_HEAD)
		return STORE_ECORRUPT;
	size_t n = ld32(v->mv_data);
	if (v->mv_size != OV_HEAD + OV_ENTRY * n)
		return STORE_ECORRUPT;
	*n_r = n;
	return 0;
}

/* The first overlay entry in [lo, hi) whose hash is >= hash. */
static inline size_t ov_lower(const uint8_t *ov, size_t lo, size_t hi, uint64_t hash)
{
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ld64(ov + OV_HEAD + OV_ENTRY * mid) < hash)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void ov_entry(const uint8_t *ov, size_t i, struct entry *e)
{
	const uint8_t *p = ov + OV_HEAD + OV_ENTRY * i;
	e->hash = ld64(p);
	e->s = ld32(p + 8);
	e->n = ld32(p + 12);
	e->day = ld16(p + 16);
}

/* Reads a segment: its base and overlay merged, the tokens with a count,
 * sorted, into a. *parts_r: bit 0 a base exists, bit 1 an overlay. */
static int seg_load(MDB_txn *mt, MDB_dbi dbi, uint32_t user_id, unsigned seg, struct entries *a,
		    int *parts_r)
{
	uint8_t k[SEG_KEY];
	MDB_val key = {SEG_KEY, k}, base, ov;
	struct segview sv = {0};
	size_t ovn = 0;
	int r, parts = 0, rc;

	a->n = 0;
	seg_key(k, user_id, seg, PART_BASE);
	r = mdb_get(mt, dbi, &key, &base);
	if (r == 0) {
		if ((rc = seg_parse(&base, &sv)) != 0)
			return rc;
		parts |= 1;
	} else if (r != MDB_NOTFOUND) {
		return store_mdb_error(r);
	}
	seg_key(k, user_id, seg, PART_OVERLAY);
	r = mdb_get(mt, dbi, &key, &ov);
	if (r == 0) {
		if ((rc = ov_parse(&ov, &ovn)) != 0)
			return rc;
		parts |= 2;
	} else if (r != MDB_NOTFOUND) {
		return store_mdb_error(r);
	}
	*parts_r = parts;
	entries_reserve(a, sv.n + ovn);
	size_t x = 0, y = 0, slot_end = 0;
	unsigned slot = 0;
	uint64_t top = (uint64_t)seg << (64 - SEG_BITS);
	while (x < sv.n || y < ovn) {
		struct entry e;
		int from_base = 0;
		if (x < sv.n) {
			while (x >= slot_end) { /* the slot of the x-th token */
				if (slot >= NSLOT)
					return STORE_ECORRUPT;
				slot_end = dir_at(&sv, slot + 1);
				if (slot_end > sv.n)
					return STORE_ECORRUPT;
				if (x >= slot_end)
					slot++;
			}
			e.hash = top | (uint64_t)slot << (64 - SPAM_BUCKET_BITS) |
				 (ld64(sv.ent + 8 * x) & LOW_MASK);
			from_base = 1;
		}
		if (y < ovn) {
			struct entry o;
			ov_entry(ov.mv_data, y, &o);
			if (!from_base || o.hash <= e.hash) {
				if (from_base && o.hash == e.hash)
					x++; /* the overlay's is the token's record */
				y++;
				if (o.s || o.n)
					a->e[a->n++] = o;
				continue;
			}
		}
		if ((rc = seg_counts(&sv, x, ld64(sv.ent + 8 * x), &e.s, &e.n)) != 0)
			return rc;
		e.day = ld16(sv.days + 2 * x);
		x++;
		a->e[a->n++] = e;
	}
	return 0;
}

/* Scratch space for writing segments. */
struct segbuf {
	uint8_t *p;
	size_t cap;
};

static uint8_t *segbuf_get(struct segbuf *b, size_t n)
{
	if (n > b->cap) {
		free(b->p);
		b->cap = n;
		b->p = xmalloc(n);
	}
	return b->p;
}

/* Writes a segment's tokens (sorted) as its base (deleted when none is
 * left) and removes its overlay. parts: what seg_load found. */
static int seg_store(MDB_txn *mt, MDB_dbi dbi, uint32_t user_id, unsigned seg,
		     const struct entries *a, int parts, struct segbuf *sb)
{
	uint8_t k[SEG_KEY];
	MDB_val key = {SEG_KEY, k};
	uint8_t *buf = segbuf_get(sb, seg_size_max(a->n));
	size_t len = seg_encode(a, buf);
	int r = 0;

	seg_key(k, user_id, seg, PART_BASE);
	if (len > 0) {
		MDB_val v = {len, buf};
		r = mdb_put(mt, dbi, &key, &v, 0);
	} else if (parts & 1) {
		r = mdb_del(mt, dbi, &key, NULL);
	}
	if (r == 0 && (parts & 2)) {
		seg_key(k, user_id, seg, PART_OVERLAY);
		r = mdb_del(mt, dbi, &key, NULL);
	}
	return r ? store_mdb_error(r) : 0;
}

/* --- the layout of round 1 of issue 16 (65536 buckets a user), read until
 * a user's first change converts it (ensure_segments) --- */

#define BUCKET_HEAD 4

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

/* A bucket's value: n (u32), the n hashes' low 48 bits sorted (6 bytes
 * each, big-endian), their n days (u16 each), then the n (spam, innocent)
 * count pairs as LEB128 varints. */
static uint64_t low_at(const uint8_t *lows, size_t i)
{
	const uint8_t *p = lows + 6 * i;
	return (uint64_t)store_get_be32(p) << 16 | (uint64_t)p[4] << 8 | p[5];
}

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

/* Appends a bucket's tokens to a; STORE_ECORRUPT if it does not parse. */
static int bucket_decode(const MDB_val *v, unsigned bucket, struct entries *a)
{
	const uint8_t *p = v->mv_data, *end = p + v->mv_size, *c;
	size_t n;
	int rc = bucket_head(v, &n, &c);

	if (rc != 0)
		return rc;
	entries_reserve(a, a->n + n);
	for (size_t i = 0; i < n; i++) {
		struct entry *x = &a->e[a->n + i];
		const uint8_t *d = p + BUCKET_HEAD + 6 * n + 2 * i;
		x->hash = (uint64_t)bucket << (64 - SPAM_BUCKET_BITS) | low_at(p + BUCKET_HEAD, i);
		x->day = (uint16_t)(d[0] << 8 | d[1]);
		if (get_varint(&c, end, &x->s) != 0 || get_varint(&c, end, &x->n) != 0)
			return STORE_ECORRUPT;
	}
	a->n += n;
	return 0;
}

/* Finds a token's counts in a bucket: bisection over the hashes, then a
 * skip over the counts before it. Adds them to *c. */
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

/* Adds a round-1 user's counts of set's tokens (one lookup a bucket). */
static int counts_buckets(MDB_txn *mt, MDB_dbi dbi, uint32_t user_id, const struct spam_tokens *set,
			  struct spam_count *counts)
{
	MDB_cursor *cur;
	int rc = mdb_cursor_open(mt, dbi, &cur);

	if (rc != 0)
		return store_mdb_error(rc);
	for (size_t i = 0; i < set->n && rc == 0;) {
		unsigned b = bucket_of(set->hash[i]);
		size_t j = i + 1;
		while (j < set->n && bucket_of(set->hash[j]) == b)
			j++;
		uint8_t k[BUCKET_KEY];
		MDB_val key = {BUCKET_KEY, k}, val;
		bucket_key(k, user_id, b);
		int r = mdb_cursor_get(cur, &key, &val, MDB_SET_KEY);
		if (r == 0) {
			for (size_t x = i; x < j && rc == 0; x++)
				rc = bucket_find(&val, set->hash[x] & LOW_MASK, &counts[x], NULL);
		} else if (r != MDB_NOTFOUND) {
			rc = store_mdb_error(r);
		}
		i = j;
	}
	mdb_cursor_close(cur);
	return rc;
}

/* Converts a user's round-1 buckets into segments, in the write
 * transaction: reads and deletes them all, then writes the segments. */
static int convert_user(MDB_txn *mt, MDB_dbi dbi, uint32_t user_id)
{
	MDB_cursor *cur;
	uint8_t k[4];
	MDB_val key = {4, k}, val;
	struct entries all = {0}, one = {0};
	struct segbuf sb = {0};
	int rc = mdb_cursor_open(mt, dbi, &cur);

	if (rc != 0)
		return store_mdb_error(rc);
	store_put_be32(k, user_id);
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0;) {
		if (key.mv_size < 4 || store_get_be32(key.mv_data) != user_id)
			break;
		if (key.mv_size != BUCKET_KEY) {
			rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
			continue;
		}
		const uint8_t *kb = key.mv_data;
		if ((rc = bucket_decode(&val, (unsigned)(kb[4] << 8 | kb[5]), &all)) != 0)
			break;
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		rc = mdb_cursor_get(cur, &key, &val, MDB_GET_CURRENT);
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND || rc == EINVAL)
		rc = 0;
	else if (rc > 0)
		rc = store_mdb_error(rc);
	/* the buckets were read in key order, so the tokens are sorted */
	for (size_t i = 0; i < all.n && rc == 0;) {
		unsigned seg = seg_of(all.e[i].hash);
		size_t j = i;
		while (j < all.n && seg_of(all.e[j].hash) == seg)
			j++;
		one.e = all.e + i; /* a view: not freed */
		one.n = j - i;
		rc = seg_store(mt, dbi, user_id, seg, &one, 0, &sb);
		i = j;
	}
	free(all.e);
	free(sb.p);
	return rc;
}

/* Before a user's tokens change: their round-1 buckets become segments. */
static int ensure_segments(struct store_txn *txn, uint32_t user_id, struct spam_stats *st)
{
	int rc;
	if (st->format == SPAM_FORMAT_SEGMENTS)
		return 0;
	if ((rc = convert_user(store_txn_mdb(txn), store_txn_dbi(txn, DB_SPAM_TOKENS), user_id)) !=
	    0)
		return rc;
	st->format = SPAM_FORMAT_SEGMENTS;
	return stats_put(txn, user_id, st);
}

/* --- reading counts --- */

/* Where pass 2 of counts_segments looks for a token. */
struct probe {
	uint32_t a, b, g; /* the slot and the guess in it */
	uint16_t seg;
	uint16_t look; /* 0: found in the overlay, or no base */
};

/* Adds a user's counts of set's tokens: one cursor walks the user's
 * segments in key order (base, then overlay); a token is looked for in its
 * segment's overlay first, then in its slot of the base. The base's entries
 * are far apart in memory (a cache and a TLB miss each): the first pass
 * finds every token's slot and guess, the second reads the entries,
 * prefetching the one AHEAD tokens on, so that the misses overlap instead of
 * following each other. (Prefetching every entry in the first pass instead
 * measured slower: 1,830 against 1,950 messages/s, medians of 6 runs.) */
static int counts_segments(MDB_txn *mt, MDB_dbi dbi, uint32_t user_id,
			   const struct spam_tokens *set, struct spam_count *counts)
{
	MDB_cursor *cur;
	uint8_t k[SEG_KEY];
	MDB_val key = {SEG_KEY, k}, val;
	const uint64_t *hash = set->hash;
	struct segview views[NSEG];
	struct probe *pr;
	int rc, r;

	if (set->n == 0)
		return 0;
	if ((rc = mdb_cursor_open(mt, dbi, &cur)) != 0)
		return store_mdb_error(rc);
	pr = xmalloc(set->n * sizeof(*pr));
	seg_key(k, user_id, seg_of(hash[0]), PART_BASE);
	r = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	for (size_t i = 0; i < set->n && rc == 0;) {
		unsigned seg = seg_of(hash[i]);
		size_t j = i + 1;
		while (j < set->n && seg_of(hash[j]) == seg)
			j++;
		MDB_val base = {0, NULL}, ov = {0, NULL};
		for (; r == 0; r = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
			const uint8_t *kb = key.mv_data;
			if (key.mv_size < 4 || store_get_be32(kb) != user_id) {
				r = MDB_NOTFOUND;
				break;
			}
			if (key.mv_size != SEG_KEY)
				continue;
			unsigned ks = (unsigned)(kb[4] << 8 | kb[5]);
			if (ks > seg)
				break;
			if (ks == seg && kb[6] == PART_BASE)
				base = val;
			else if (ks == seg && kb[6] == PART_OVERLAY)
				ov = val;
		}
		if (r != 0 && r != MDB_NOTFOUND) {
			rc = store_mdb_error(r);
			break;
		}
		struct segview *sv = &views[seg];
		size_t ovn = 0, oy = 0;
		memset(sv, 0, sizeof(*sv));
		if ((base.mv_data && (rc = seg_parse(&base, sv)) != 0) ||
		    (ov.mv_data && (rc = ov_parse(&ov, &ovn)) != 0))
			break;
		for (size_t x = i; x < j; x++) {
			uint64_t h = hash[x];
			pr[x].look = 0;
			if (ovn) {
				oy = ov_lower(ov.mv_data, oy, ovn, h);
				const uint8_t *p =
				    (const uint8_t *)ov.mv_data + OV_HEAD + OV_ENTRY * oy;
				if (oy < ovn && ld64(p) == h) {
					counts[x].spam += ld32(p + 8);
					counts[x].innocent += ld32(p + 12);
					continue;
				}
			}
			if (sv->n == 0)
				continue;
			size_t a, b;
			long g = seg_guess(sv, h, &a, &b);
			if (g < 0) {
				rc = STORE_ECORRUPT;
				break;
			}
			if ((size_t)g >= b)
				continue; /* an empty slot */
			pr[x] =
			    (struct probe){(uint32_t)a, (uint32_t)b, (uint32_t)g, (uint16_t)seg, 1};
		}
		i = j;
	}
	for (size_t x = 0; x < set->n && rc == 0; x++) {
		if (x + AHEAD < set->n && pr[x + AHEAD].look)
			__builtin_prefetch(views[pr[x + AHEAD].seg].ent +
					   8 * (size_t)pr[x + AHEAD].g);
		if (!pr[x].look)
			continue;
		const struct segview *sv = &views[pr[x].seg];
		uint64_t w;
		long at = seg_probe(sv, hash[x], pr[x].a, pr[x].b, pr[x].g, &w);
		if (at >= 0) {
			uint32_t s, n;
			if ((rc = seg_counts(sv, (size_t)at, w, &s, &n)) != 0)
				break;
			counts[x].spam += s;
			counts[x].innocent += n;
		}
	}
	free(pr);
	mdb_cursor_close(cur);
	return rc;
}

int spam_db_token(struct store_txn *txn, uint32_t user_id, uint64_t token, struct spam_count *c,
		  uint32_t *day_r)
{
	MDB_txn *mt = store_txn_mdb(txn);
	MDB_dbi dbi = store_txn_dbi(txn, DB_SPAM_TOKENS);
	struct spam_stats st;
	int rc = spam_db_stats(txn, user_id, &st), r;

	c->spam = c->innocent = 0;
	if (day_r)
		*day_r = 0;
	if (rc != 0)
		return rc;
	if (st.format != SPAM_FORMAT_SEGMENTS) {
		uint8_t k[BUCKET_KEY];
		MDB_val key = {BUCKET_KEY, k}, val;
		bucket_key(k, user_id, bucket_of(token));
		r = mdb_get(mt, dbi, &key, &val);
		if (r == MDB_NOTFOUND)
			return 0;
		if (r != 0)
			return store_mdb_error(r);
		return bucket_find(&val, token & LOW_MASK, c, day_r);
	}
	struct entries a = {0};
	int parts;
	rc = seg_load(mt, dbi, user_id, seg_of(token), &a, &parts);
	for (size_t i = 0; rc == 0 && i < a.n; i++)
		if (a.e[i].hash == token) {
			c->spam = a.e[i].s;
			c->innocent = a.e[i].n;
			if (day_r)
				*day_r = a.e[i].day;
		}
	free(a.e);
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
		rc = spam_db_stats(txn, users[u], &st);
		if (rc != 0 || st.tokens == 0)
			continue; /* nothing learned: no lookups */
		if (st.format == SPAM_FORMAT_SEGMENTS)
			rc = counts_segments(mt, dbi, users[u], set, counts);
		else
			rc = counts_buckets(mt, dbi, users[u], set, counts);
	}
	return rc;
}

/* --- changing counts --- */

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

static void delta_apply(struct entry *e, const struct delta *d, uint32_t day)
{
	e->s = clamp_count(e->s, d->ds);
	e->n = clamp_count(e->n, d->dn);
	if (d->add)
		e->day = day16(day);
}

/* Scratch space of apply_deltas. */
struct applybuf {
	struct entries a, out;
	struct segbuf sb;
};

/* A segment's changes, the whole segment written again: its tokens merged
 * with the changes (sorted) into a new base. */
static int seg_rewrite(MDB_txn *mt, MDB_dbi dbi, uint32_t user_id, unsigned seg,
		       const struct delta *d, size_t nd, uint32_t day, int64_t *ntokens,
		       struct applybuf *ab)
{
	int parts, rc = seg_load(mt, dbi, user_id, seg, &ab->a, &parts);
	if (rc != 0)
		return rc;
	struct entries *a = &ab->a, *out = &ab->out;
	entries_reserve(out, a->n + nd);
	out->n = 0;
	size_t x = 0, y = 0;
	int64_t before = 0, after = 0;
	while (x < a->n || y < nd) {
		if (x < a->n && (y >= nd || a->e[x].hash < d[y].token)) {
			out->e[out->n++] = a->e[x++];
			before++, after++;
			continue;
		}
		struct entry e = {.hash = d[y].token};
		if (x < a->n && a->e[x].hash == d[y].token) {
			e = a->e[x++];
			before++;
		}
		delta_apply(&e, &d[y++], day);
		if (e.s || e.n) {
			out->e[out->n++] = e;
			after++;
		}
	}
	*ntokens += after - before;
	return seg_store(mt, dbi, user_id, seg, out, parts, &ab->sb);
}

/* A few changes: noted in the segment's overlay (the base stays), each
 * token's record as it is now. */
static int seg_note(MDB_txn *mt, MDB_dbi dbi, uint32_t user_id, unsigned seg,
		    const struct segview *sv, const MDB_val *ov, size_t ovn, const struct delta *d,
		    size_t nd, uint32_t day, int64_t *ntokens, struct applybuf *ab)
{
	struct entries *out = &ab->out;
	size_t y = 0, z = 0;
	int rc = 0;

	entries_reserve(out, ovn + nd);
	out->n = 0;
	while (z < ovn || y < nd) {
		struct entry o = {0};
		if (z < ovn)
			ov_entry(ov->mv_data, z, &o);
		if (z < ovn && (y >= nd || o.hash < d[y].token)) {
			out->e[out->n++] = o;
			z++;
			continue;
		}
		/* the token's record now: the overlay's, or the base's */
		struct entry e = {.hash = d[y].token};
		uint64_t w = 0;
		long at = sv->n ? seg_index(sv, e.hash, &w) : -1;
		if (at == -2)
			return STORE_ECORRUPT;
		if (z < ovn && o.hash == e.hash) {
			e = o;
			z++;
		} else if (at >= 0) {
			if ((rc = seg_counts(sv, (size_t)at, w, &e.s, &e.n)) != 0)
				return rc;
			e.day = ld16(sv->days + 2 * at);
		}
		int was = e.s || e.n;
		delta_apply(&e, &d[y++], day);
		*ntokens += (int64_t)(e.s || e.n) - was;
		if (e.s || e.n || at >= 0)
			out->e[out->n++] = e; /* 0/0 over a base token hides it */
	}
	uint8_t k[SEG_KEY];
	MDB_val key = {SEG_KEY, k};
	seg_key(k, user_id, seg, PART_OVERLAY);
	if (out->n == 0) {
		int r = ovn ? mdb_del(mt, dbi, &key, NULL) : 0;
		return r ? store_mdb_error(r) : 0;
	}
	size_t len = OV_HEAD + OV_ENTRY * out->n;
	uint8_t *buf = segbuf_get(&ab->sb, len);
	st32(buf, (uint32_t)out->n);
	for (size_t i = 0; i < out->n; i++) {
		uint8_t *p = buf + OV_HEAD + OV_ENTRY * i;
		st64(p, out->e[i].hash);
		st32(p + 8, out->e[i].s);
		st32(p + 12, out->e[i].n);
		st16(p + 16, out->e[i].day);
		p[18] = p[19] = 0;
	}
	MDB_val v = {len, buf};
	int r = mdb_put(mt, dbi, &key, &v, 0);
	return r ? store_mdb_error(r) : 0;
}

/* Applies changes (sorted by token, distinct) to a user's segments (the
 * user's tokens are segments: ensure_segments); records at 0/0 go away.
 * A segment whose overlay would hold more than OV_MIN tokens and more than
 * 1/OV_SHARE of its base is written again whole (a bulk flush always is);
 * otherwise the changed tokens' records go to its overlay. *ntokens follows
 * the distinct token count. */
static int apply_deltas(struct store_txn *txn, uint32_t user_id, const struct delta *d, size_t n,
			uint32_t day, int64_t *ntokens)
{
	MDB_txn *mt = store_txn_mdb(txn);
	MDB_dbi dbi = store_txn_dbi(txn, DB_SPAM_TOKENS);
	struct applybuf ab = {0};
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0;) {
		unsigned seg = seg_of(d[i].token);
		size_t j = i + 1;
		while (j < n && seg_of(d[j].token) == seg)
			j++;
		uint8_t k[SEG_KEY];
		MDB_val key = {SEG_KEY, k}, base, ov;
		struct segview sv = {0};
		size_t ovn = 0;
		seg_key(k, user_id, seg, PART_BASE);
		int r = mdb_get(mt, dbi, &key, &base);
		if (r == 0)
			rc = seg_parse(&base, &sv);
		else if (r != MDB_NOTFOUND)
			rc = store_mdb_error(r);
		seg_key(k, user_id, seg, PART_OVERLAY);
		if (rc == 0 && (r = mdb_get(mt, dbi, &key, &ov)) == 0)
			rc = ov_parse(&ov, &ovn);
		else if (rc == 0 && r != MDB_NOTFOUND)
			rc = store_mdb_error(r);
		if (rc != 0)
			break;
		size_t room = sv.n / OV_SHARE > OV_MIN ? sv.n / OV_SHARE : OV_MIN;
		if (ovn + (j - i) > room)
			rc = seg_rewrite(mt, dbi, user_id, seg, d + i, j - i, day, ntokens, &ab);
		else
			rc = seg_note(mt, dbi, user_id, seg, &sv, &ov, ovn, d + i, j - i, day,
				      ntokens, &ab);
		i = j;
	}
	free(ab.a.e);
	free(ab.out.e);
	free(ab.sb.p);
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
		rc = spam_db_stats(txn, user, &st);
		if (rc == 0)
			rc = ensure_segments(txn, user, &st);
		if (rc == 0)
			rc = apply_deltas(txn, user, d, m, today, &ntokens);
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
	if (rc == 0)
		rc = ensure_segments(txn, user_id, &st);
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

/* One walk over the user's segments: counts (histograms) or removes. A
 * segment written back loses its overlay. */
static int purge_walk(struct store_txn *txn, uint32_t user_id, struct purge_pass *pp, int write)
{
	MDB_txn *mt = store_txn_mdb(txn);
	MDB_dbi dbi = store_txn_dbi(txn, DB_SPAM_TOKENS);
	struct entries a = {0};
	struct segbuf sb = {0};
	int rc = 0;

	for (unsigned seg = 0; seg < NSEG && rc == 0; seg++) {
		int parts;
		if ((rc = seg_load(mt, dbi, user_id, seg, &a, &parts)) != 0 || parts == 0)
			continue;
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
		if (!write || (kept == a.n && !(parts & 2)))
			continue;
		a.n = kept;
		rc = seg_store(mt, dbi, user_id, seg, &a, parts, &sb);
	}
	free(a.e);
	free(sb.p);
	return rc;
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
	if ((rc = spam_db_stats(txn, user_id, &st)) != 0 ||
	    (rc = ensure_segments(txn, user_id, &st)) != 0)
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
	st.format = SPAM_FORMAT_SEGMENTS; /* nothing left to convert */
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

	if (rc == 0)
		rc = ensure_segments(txn, user_id, &st);
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
