/* import_state — where an import from a server stopped (see import_state.h).
 *
 * DB_IMPORT_STATE: user_id u32 + source + NUL + folder -> record
 * record: uidvalidity u32, last_uid u32, highestmodseq u64, messages u64,
 * by_content u32, hi_uid u32 (big-endian, 32 bytes). No store_txn_touch: no mailbox changes here.
 */
#include "index/import_state.h"

#include <string.h>

#include "index/store_internal.h"

#define REC_LEN 32

static int make_key(uint32_t user_id, const char *source, const char *folder, uint8_t *key,
		    size_t *len_r)
{
	size_t s = strlen(source), f = folder != NULL ? strlen(folder) : 0;

	if (s + f > IMPORT_STATE_KEY_MAX)
		return STORE_EINVAL;
	store_put_be32(key, user_id);
	memcpy(key + 4, source, s);
	key[4 + s] = '\0';
	if (f > 0)
		memcpy(key + 5 + s, folder, f);
	*len_r = 5 + s + f;
	return 0;
}

static int rec_get(const MDB_val *v, struct import_state *st)
{
	const uint8_t *p = v->mv_data;

	if (v->mv_size != REC_LEN)
		return STORE_ECORRUPT;
	st->uidvalidity = store_get_be32(p);
	st->last_uid = store_get_be32(p + 4);
	st->highestmodseq = store_get_be64(p + 8);
	st->messages = store_get_be64(p + 16);
	st->by_content = store_get_be32(p + 24);
	st->hi_uid = store_get_be32(p + 28);
	return 0;
}

int import_state_get(struct store_txn *txn, uint32_t user_id, const char *source,
		     const char *folder, struct import_state *st_r)
{
	uint8_t key[IMPORT_STATE_KEY_MAX + 8];
	MDB_val k, v;
	size_t klen;
	int rc;

	memset(st_r, 0, sizeof(*st_r));
	if ((rc = make_key(user_id, source, folder, key, &klen)) != 0)
		return rc;
	k.mv_size = klen;
	k.mv_data = key;
	rc = mdb_get(store_txn_mdb(txn), store_txn_dbi(txn, DB_IMPORT_STATE), &k, &v);
	if (rc != 0)
		return store_mdb_error(rc);
	return rec_get(&v, st_r);
}

int import_state_put(struct store_txn *txn, uint32_t user_id, const char *source,
		     const char *folder, const struct import_state *st)
{
	uint8_t key[IMPORT_STATE_KEY_MAX + 8], rec[REC_LEN];
	MDB_val k, v = {REC_LEN, rec};
	size_t klen;
	int rc;

	if (!store_txn_writable(txn))
		return STORE_EINVAL;
	if ((rc = make_key(user_id, source, folder, key, &klen)) != 0)
		return rc;
	k.mv_size = klen;
	k.mv_data = key;
	store_put_be32(rec, st->uidvalidity);
	store_put_be32(rec + 4, st->last_uid);
	store_put_be64(rec + 8, st->highestmodseq);
	store_put_be64(rec + 16, st->messages);
	store_put_be32(rec + 24, st->by_content);
	store_put_be32(rec + 28, st->hi_uid);
	return store_mdb_error(
	    mdb_put(store_txn_mdb(txn), store_txn_dbi(txn, DB_IMPORT_STATE), &k, &v, 0));
}

/* Walks the records of (user, source); del: delete each instead of calling cb. */
static int walk(struct store_txn *txn, uint32_t user_id, const char *source, int del,
		int (*cb)(const char *folder, const struct import_state *st, void *ctx), void *ctx)
{
	uint8_t prefix[IMPORT_STATE_KEY_MAX + 8];
	char folder[IMPORT_STATE_KEY_MAX + 1];
	MDB_cursor *cur;
	MDB_val k, v;
	size_t plen;
	int rc, r;

	if ((rc = make_key(user_id, source, NULL, prefix, &plen)) != 0)
		return rc;
	if (del && !store_txn_writable(txn))
		return STORE_EINVAL;
	rc = mdb_cursor_open(store_txn_mdb(txn), store_txn_dbi(txn, DB_IMPORT_STATE), &cur);
	if (rc != 0)
		return store_mdb_error(rc);
	k.mv_size = plen;
	k.mv_data = prefix;
	for (r = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); r == 0;
	     r = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct import_state st;
		if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
			break;
		if (del) {
			if ((rc = store_mdb_error(mdb_cursor_del(cur, 0))) != 0)
				break;
			continue;
		}
		if ((rc = rec_get(&v, &st)) != 0)
			break;
		memcpy(folder, (const char *)k.mv_data + plen, k.mv_size - plen);
		folder[k.mv_size - plen] = '\0';
		if (cb(folder, &st, ctx) != 0)
			break;
	}
	if (r != 0 && r != MDB_NOTFOUND && rc == 0)
		rc = store_mdb_error(r);
	mdb_cursor_close(cur);
	return rc;
}

int import_state_clear(struct store_txn *txn, uint32_t user_id, const char *source)
{
	return walk(txn, user_id, source, 1, NULL, NULL);
}

int import_state_foreach(struct store_txn *txn, uint32_t user_id, const char *source,
			 int (*cb)(const char *folder, const struct import_state *st, void *ctx),
			 void *ctx)
{
	return walk(txn, user_id, source, 0, cb, ctx);
}
