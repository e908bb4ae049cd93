/* spam_db — per-user token counts, totals and message signatures in the
 * store's LMDB environment (see spam_db.h for the key layouts). */
#include "index/spam_db.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "index/store_internal.h"

#define STATS_FIELDS 8
#define STATS_FIELDS_OLD 7 /* before unclosed_learned */
#define SIG_HEAD 8

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

static void stats_decode(const MDB_val *v, struct spam_stats *st)
{
	uint64_t f[STATS_FIELDS] = {0};
	const uint8_t *p = v->mv_data;
	size_t n = v->mv_size / 8;

	if (n > STATS_FIELDS)
		n = STATS_FIELDS;
	for (size_t i = 0; i < n; i++)
		f[i] = store_get_be64(p + 8 * i);
	st->spam_learned = f[0];
	st->innocent_learned = f[1];
	st->spam_classified = f[2];
	st->innocent_classified = f[3];
	st->spam_misses = f[4];
	st->false_positives = f[5];
	st->tokens = f[6];
	st->unclosed_learned = v->mv_size / 8 > STATS_FIELDS_OLD ? f[7] : SPAM_STATS_UNKNOWN;
}

int spam_db_stats(struct store_txn *txn, uint32_t user_id, struct spam_stats *st)
{
	uint8_t k[4];
	MDB_val key = {4, k}, val;
	int rc;

	memset(st, 0, sizeof(*st));
	store_put_be32(k, user_id);
	rc = mdb_get(store_txn_mdb(txn), store_txn_dbi(txn, DB_SPAM_STATS), &key, &val);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return store_mdb_error(rc);
	stats_decode(&val, st);
	return 0;
}

static int stats_put(struct store_txn *txn, uint32_t user_id, const struct spam_stats *st)
{
	uint8_t k[4], b[8 * STATS_FIELDS];
	int nf = st->unclosed_learned == SPAM_STATS_UNKNOWN ? STATS_FIELDS_OLD : STATS_FIELDS;
	MDB_val key = {4, k}, val = {8 * (size_t)nf, b};
	uint64_t f[STATS_FIELDS] = {st->spam_learned,	 st->innocent_learned, st->spam_classified,
				    st->innocent_classified, st->spam_misses,	   st->false_positives,
				    st->tokens,		 st->unclosed_learned};
	int rc;

	store_put_be32(k, user_id);
	for (int i = 0; i < nf; i++)
		store_put_be64(b + 8 * i, f[i]);
	rc = mdb_put(store_txn_mdb(txn), store_txn_dbi(txn, DB_SPAM_STATS), &key, &val, 0);
	return rc ? store_mdb_error(rc) : 0;
}

int spam_db_token(struct store_txn *txn, uint32_t user_id, uint64_t token, struct spam_count *c)
{
	uint8_t k[12];
	MDB_val key = {12, k}, val;
	int rc;

	store_put_be32(k, user_id);
	store_put_be64(k + 4, token);
	c->spam = c->innocent = 0;
	rc = mdb_get(store_txn_mdb(txn), store_txn_dbi(txn, DB_SPAM_TOKENS), &key, &val);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return store_mdb_error(rc);
	if (val.mv_size != 8)
		return STORE_ECORRUPT;
	c->spam = store_get_be32(val.mv_data);
	c->innocent = store_get_be32((const uint8_t *)val.mv_data + 4);
	return 0;
}

/* The token lookups of one message: one cursor per user whose counts are
 * read (the user's, the global set's), each walking the keys in order. */
struct lookup {
	MDB_cursor *cur[2];
	uint32_t user[2];
	int n;
};

static int lookup_one(struct lookup *lk, uint64_t token, struct spam_count *c)
{
	for (int u = 0; u < lk->n; u++) {
		uint8_t k[12];
		MDB_val key = {12, k}, val;
		store_put_be32(k, lk->user[u]);
		store_put_be64(k + 4, token);
		int rc = mdb_cursor_get(lk->cur[u], &key, &val, MDB_SET_KEY);
		if (rc == MDB_NOTFOUND)
			continue;
		if (rc != 0)
			return rc;
		if (val.mv_size == 8) {
			c->spam += store_get_be32(val.mv_data);
			c->innocent += store_get_be32((const uint8_t *)val.mv_data + 4);
		}
	}
	return 0;
}

/* The window masks with 1, 2, 3, 4 earlier words (0-terminated). */
static const uint8_t masks_of_level[SPAM_WINDOW][7] = {
	{0},
	{1, 2, 4, 8, 0},
	{3, 5, 6, 9, 10, 12, 0},
	{7, 11, 13, 14, 0},
	{15, 0},
};

struct cand {
	uint64_t m; /* bound of spam + innocent counts */
	size_t i;
};

static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	if (x->m != y->m)
		return x->m < y->m ? 1 : -1;
	return x->i < y->i ? -1 : x->i > y->i;
}

static void bound_by(struct spam_count *b, const struct spam_count *parent)
{
	if (parent->spam < b->spam)
		b->spam = parent->spam;
	if (parent->innocent < b->innocent)
		b->innocent = parent->innocent;
}

/* Level by level: 0 the words alone and URL pieces, then tokens with 1 and 2
 * earlier words (the higher levels take no part in a verdict: not read). A token of a window of a learned message implies, in that
 * message, its parents: the same window with one earlier word less, and the
 * window that ends at its second-to-last word (for "a+#+c+d": "c+d", "a+#+#+d"
 * and "a+#+c"), one level down. So its counts are at most theirs: bound[i]
 * holds what is known of token i's counts, exact once read. Within a level
 * the tokens go strongest bound first, so the bar of spam_cut_skips rises
 * early; the first one it skips ends the level (the bar only rises, the
 * bounds only fall), and those skipped keep their bounds for the next. */
static int lookup_windows(struct lookup *lk, const struct spam_tokens *set, struct spam_count *c,
			  struct spam_cut *cut)
{
	struct spam_count *bound = malloc((set->n ? set->n : 1) * sizeof(*bound));
	struct cand *cd = malloc((set->n ? set->n : 1) * sizeof(*cd));
	int rc = 0;

	if (bound == NULL || cd == NULL) { /* all of them, then */
		for (size_t i = 0; i < set->n && rc == 0; i++)
			rc = lookup_one(lk, set->hash[i], &c[i]);
		goto out;
	}
	for (size_t i = 0; i < set->n; i++)
		bound[i].spam = bound[i].innocent = UINT32_MAX;
	for (unsigned level = 0; level < SPAM_LEVELS_USED && rc == 0; level++) {
		for (size_t p = 0; level > 0 && p < set->nwin; p++) {
			const uint32_t *w = set->win + p * SPAM_WINDOW_MASKS;
			for (const uint8_t *mp = masks_of_level[level]; *mp; mp++) {
				unsigned m = *mp;
				if (w[m] == UINT32_MAX)
					continue;
				struct spam_count *b = &bound[w[m]];
				for (unsigned bits = m; bits; bits &= bits - 1)
					bound_by(b, &bound[w[m & ~(bits & -bits)]]);
				/* the window ending at the word j + 1 places before, j the
				 * lowest bit: p - j - 1 is in the same run of words */
				unsigned j = (unsigned)__builtin_ctz(m);
				if (p >= j + 1) {
					uint32_t pre = set->win[(p - j - 1) * SPAM_WINDOW_MASKS + (m >> (j + 1))];
					if (pre != UINT32_MAX)
						bound_by(b, &bound[pre]);
				}
			}
		}
		size_t n = 0;
		for (size_t i = 0; i < set->n; i++) {
			if (set->level[i] != level)
				continue;
			if (level > 0 && spam_cut_skips(cut, bound[i].spam, bound[i].innocent))
				continue; /* already too weak: no need to sort it in */
			cd[n].m = (uint64_t)bound[i].spam + bound[i].innocent;
			cd[n].i = i;
			n++;
		}
		if (level > 0)
			qsort(cd, n, sizeof(*cd), cand_cmp);
		for (size_t k = 0; k < n && rc == 0; k++) {
			size_t i = cd[k].i;
			if (level > 0 && spam_cut_skips(cut, bound[i].spam, bound[i].innocent))
				break;
			rc = lookup_one(lk, set->hash[i], &c[i]);
			bound[i] = c[i];
			spam_cut_add(cut, c[i]);
		}
	}
out:
	free(bound);
	free(cd);
	return rc;
}

int spam_db_counts(struct store_txn *txn, uint32_t user_id, int merge, const struct spam_tokens *set,
		   struct spam_count *counts, struct spam_cut *cut)
{
	struct lookup lk = {.n = 0};
	uint32_t users[2] = {user_id, SPAM_GLOBAL_USER};
	int nusers = merge && user_id != SPAM_GLOBAL_USER ? 2 : 1, closed = 1, rc = 0;

	memset(counts, 0, set->n * sizeof(*counts));
	for (int u = 0; u < nusers; u++) {
		struct spam_stats st;
		rc = spam_db_stats(txn, users[u], &st);
		if (rc != 0)
			goto out;
		if (st.tokens == 0 && st.spam_learned == 0 && st.innocent_learned == 0)
			continue; /* nothing learned: no lookups */
		if (st.unclosed_learned != 0)
			closed = 0;
		rc = mdb_cursor_open(store_txn_mdb(txn), store_txn_dbi(txn, DB_SPAM_TOKENS), &lk.cur[lk.n]);
		if (rc != 0) {
			rc = store_mdb_error(rc);
			goto out;
		}
		lk.user[lk.n++] = users[u];
	}
	if (lk.n == 0)
		goto out;
	if (set->win != NULL && cut != NULL && closed) {
		rc = lookup_windows(&lk, set, counts, cut);
	} else {
		for (size_t i = 0; i < set->n && rc == 0; i++)
			rc = lookup_one(&lk, set->hash[i], &counts[i]);
	}
	if (rc != 0)
		rc = store_mdb_error(rc);
out:
	for (int u = 0; u < lk.n; u++)
		mdb_cursor_close(lk.cur[u]);
	return rc;
}

static void sig_key(uint8_t k[4 + STORE_HASH_LEN], uint32_t user_id, const uint8_t hash[STORE_HASH_LEN])
{
	store_put_be32(k, user_id);
	memcpy(k + 4, hash, STORE_HASH_LEN);
}

int spam_db_learned(struct store_txn *txn, uint32_t user_id, const uint8_t hash[STORE_HASH_LEN],
		    enum spam_class *class_r)
{
	uint8_t k[4 + STORE_HASH_LEN];
	MDB_val key = {sizeof(k), k}, val;
	int rc;

	*class_r = SPAM_CLASS_NONE;
	sig_key(k, user_id, hash);
	rc = mdb_get(store_txn_mdb(txn), store_txn_dbi(txn, DB_SPAM_SIGS), &key, &val);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return store_mdb_error(rc);
	if (val.mv_size < SIG_HEAD)
		return STORE_ECORRUPT;
	*class_r = ((const uint8_t *)val.mv_data)[0];
	return 0;
}

/* Adds delta (+1 / -1) to one class of each token; records at 0/0 go away.
 * One cursor positioned once per token (get, then put or del in place). */
static int apply(struct store_txn *txn, uint32_t user_id, const uint64_t *tokens, size_t n, enum spam_class cls,
		 int delta, int64_t *ntokens)
{
	MDB_cursor *cur;
	uint8_t k[12], b[8];
	int rc = mdb_cursor_open(store_txn_mdb(txn), store_txn_dbi(txn, DB_SPAM_TOKENS), &cur);

	if (rc != 0)
		return store_mdb_error(rc);
	store_put_be32(k, user_id);
	for (size_t i = 0; i < n; i++) {
		MDB_val key = {12, k}, val;
		uint32_t s = 0, in = 0;
		store_put_be64(k + 4, tokens[i]);
		rc = mdb_cursor_get(cur, &key, &val, MDB_SET_KEY);
		if (rc == 0 && val.mv_size == 8) {
			s = store_get_be32(val.mv_data);
			in = store_get_be32((const uint8_t *)val.mv_data + 4);
		} else if (rc != 0 && rc != MDB_NOTFOUND) {
			break;
		}
		int existed = rc == 0;
		uint32_t *f = cls == SPAM_CLASS_SPAM ? &s : &in;
		if (delta > 0)
			*f = *f == UINT32_MAX ? *f : *f + 1;
		else
			*f = *f ? *f - 1 : 0;
		key.mv_size = 12;
		key.mv_data = k;
		if (s == 0 && in == 0) {
			rc = 0;
			if (existed) {
				rc = mdb_cursor_del(cur, 0);
				(*ntokens)--;
			}
		} else {
			store_put_be32(b, s);
			store_put_be32(b + 4, in);
			val.mv_size = 8;
			val.mv_data = b;
			rc = mdb_cursor_put(cur, &key, &val, existed ? MDB_CURRENT : 0);
			if (!existed)
				(*ntokens)++;
		}
		if (rc != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == 0 ? 0 : store_mdb_error(rc);
}

/* Counts the user's messages learned with another tokenizer than SBPH (for a
 * statistics record from before that was counted): their signatures say. */
static int count_unclosed(struct store_txn *txn, uint32_t user_id, uint64_t *n_r)
{
	MDB_cursor *cur;
	uint8_t k[4];
	MDB_val key = {4, k}, val;
	int rc = mdb_cursor_open(store_txn_mdb(txn), store_txn_dbi(txn, DB_SPAM_SIGS), &cur);

	if (rc != 0)
		return store_mdb_error(rc);
	*n_r = 0;
	store_put_be32(k, user_id);
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (key.mv_size < 4 || store_get_be32(key.mv_data) != user_id)
			break;
		const uint8_t *p = val.mv_data;
		if (val.mv_size >= SIG_HEAD && p[0] != SPAM_CLASS_NONE && p[1] != SPAM_TOK_SBPH)
			(*n_r)++;
	}
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_mdb_error(rc);
}

int spam_db_train(struct store_txn *txn, uint32_t user_id, const uint8_t hash[STORE_HASH_LEN],
		  const struct spam_tokens *set, enum spam_tokenizer kind, enum spam_class cls, int correction,
		  int *changed_r)
{
	MDB_txn *mt = store_txn_mdb(txn);
	MDB_dbi sdbi = store_txn_dbi(txn, DB_SPAM_SIGS);
	uint8_t k[4 + STORE_HASH_LEN];
	MDB_val key = {sizeof(k), k}, val;
	struct spam_stats st;
	enum spam_class old = SPAM_CLASS_NONE;
	enum spam_tokenizer oldkind = kind;
	uint64_t *oldsig = NULL;
	size_t oldn = 0;
	int64_t ntokens;
	uint8_t *rec = NULL;
	int rc;

	if (changed_r)
		*changed_r = 0;
	if (!store_txn_writable(txn))
		return STORE_EINVAL;
	sig_key(k, user_id, hash);
	rc = mdb_get(mt, sdbi, &key, &val);
	if (rc == 0) {
		const uint8_t *p = val.mv_data;
		if (val.mv_size < SIG_HEAD)
			return STORE_ECORRUPT;
		old = p[0];
		oldkind = p[1];
		oldn = store_get_be32(p + 4);
		if (val.mv_size != SIG_HEAD + 8 * oldn)
			return STORE_ECORRUPT;
		if (old == cls)
			return 0;
		oldsig = malloc((oldn ? oldn : 1) * sizeof(*oldsig));
		if (oldsig == NULL)
			return STORE_EIO;
		for (size_t i = 0; i < oldn; i++)
			oldsig[i] = store_get_be64(p + SIG_HEAD + 8 * i);
	} else if (rc != MDB_NOTFOUND) {
		return store_mdb_error(rc);
	} else if (cls == SPAM_CLASS_NONE) {
		return 0;
	}
	if (oldsig == NULL && set == NULL && cls != SPAM_CLASS_NONE)
		return STORE_EINVAL;
	rc = spam_db_stats(txn, user_id, &st);
	if (rc == 0 && st.unclosed_learned == SPAM_STATS_UNKNOWN)
		rc = count_unclosed(txn, user_id, &st.unclosed_learned);
	if (rc != 0)
		goto fail;
	ntokens = (int64_t)st.tokens;
	if (old != SPAM_CLASS_NONE) {
		/* exact undo of what was learned before */
		rc = apply(txn, user_id, oldsig, oldn, old, -1, &ntokens);
		if (rc != 0)
			goto fail;
		uint64_t *cnt = old == SPAM_CLASS_SPAM ? &st.spam_learned : &st.innocent_learned;
		if (*cnt)
			(*cnt)--;
		if (oldkind != SPAM_TOK_SBPH && st.unclosed_learned)
			st.unclosed_learned--;
	}
	if (cls != SPAM_CLASS_NONE) {
		/* a message learned before keeps its signature: the flip is exact */
		const uint64_t *tok = oldsig ? oldsig : set->hash;
		size_t ntok = oldsig ? oldn : set->n;
		enum spam_tokenizer newkind = oldsig ? oldkind : kind; /* a flip keeps what it was tokenized with */
		rc = apply(txn, user_id, tok, ntok, cls, +1, &ntokens);
		if (rc != 0)
			goto fail;
		if (cls == SPAM_CLASS_SPAM)
			st.spam_learned++;
		else
			st.innocent_learned++;
		if (newkind != SPAM_TOK_SBPH)
			st.unclosed_learned++;
		if (correction) {
			if (cls == SPAM_CLASS_SPAM)
				st.spam_misses++;
			else
				st.false_positives++;
		}
		size_t len = SIG_HEAD + 8 * ntok;
		rec = malloc(len);
		if (rec == NULL) {
			rc = STORE_EIO;
			goto fail;
		}
		memset(rec, 0, SIG_HEAD);
		rec[0] = (uint8_t)cls;
		rec[1] = (uint8_t)newkind;
		store_put_be32(rec + 4, (uint32_t)ntok);
		for (size_t i = 0; i < ntok; i++)
			store_put_be64(rec + SIG_HEAD + 8 * i, tok[i]);
		val.mv_size = len;
		val.mv_data = rec;
		rc = mdb_put(mt, sdbi, &key, &val, 0);
	} else {
		rc = mdb_del(mt, sdbi, &key, NULL);
	}
	if (rc != 0) {
		rc = store_mdb_error(rc);
		goto fail;
	}
	st.tokens = ntokens > 0 ? (uint64_t)ntokens : 0;
	rc = stats_put(txn, user_id, &st);
	if (rc != 0)
		goto fail;
	store_txn_touch(txn);
	if (changed_r)
		*changed_r = 1;
fail:
	free(oldsig);
	free(rec);
	return rc;
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
