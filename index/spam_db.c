/* spam_db — per-user token counts, totals and message signatures in the
 * store's LMDB environment (see spam_db.h for the key layouts). */
#include "index/spam_db.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "index/store_internal.h"

#define STATS_FIELDS 7
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
	MDB_val key = {4, k}, val = {sizeof(b), b};
	uint64_t f[STATS_FIELDS] = {st->spam_learned,	 st->innocent_learned, st->spam_classified,
				    st->innocent_classified, st->spam_misses,	   st->false_positives,
				    st->tokens};
	int rc;

	store_put_be32(k, user_id);
	for (int i = 0; i < STATS_FIELDS; i++)
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

/* Reads a run of one user's tokens with a cursor: keys are sorted as the set is. */
static int counts_of(struct store_txn *txn, uint32_t user_id, const struct spam_tokens *set, struct spam_count *c,
		     int add)
{
	MDB_cursor *cur;
	uint8_t k[12];
	int rc = mdb_cursor_open(store_txn_mdb(txn), store_txn_dbi(txn, DB_SPAM_TOKENS), &cur);

	if (rc != 0)
		return store_mdb_error(rc);
	store_put_be32(k, user_id);
	for (size_t i = 0; i < set->n; i++) {
		MDB_val key = {12, k}, val;
		if (!add)
			c[i].spam = c[i].innocent = 0;
		store_put_be64(k + 4, set->hash[i]);
		rc = mdb_cursor_get(cur, &key, &val, MDB_SET_KEY);
		if (rc == MDB_NOTFOUND)
			continue;
		if (rc != 0)
			break;
		if (val.mv_size == 8) {
			c[i].spam += store_get_be32(val.mv_data);
			c[i].innocent += store_get_be32((const uint8_t *)val.mv_data + 4);
		}
	}
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_mdb_error(rc);
}

int spam_db_counts(struct store_txn *txn, uint32_t user_id, int merge, const struct spam_tokens *set,
		   struct spam_count *counts)
{
	int rc = counts_of(txn, user_id, set, counts, 0);
	if (rc == 0 && merge && user_id != SPAM_GLOBAL_USER)
		rc = counts_of(txn, SPAM_GLOBAL_USER, set, counts, 1);
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
	}
	if (cls != SPAM_CLASS_NONE) {
		/* a message learned before keeps its signature: the flip is exact */
		const uint64_t *tok = oldsig ? oldsig : set->hash;
		size_t ntok = oldsig ? oldn : set->n;
		rc = apply(txn, user_id, tok, ntok, cls, +1, &ntokens);
		if (rc != 0)
			goto fail;
		if (cls == SPAM_CLASS_SPAM)
			st.spam_learned++;
		else
			st.innocent_learned++;
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
		rec[1] = (uint8_t)kind;
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
