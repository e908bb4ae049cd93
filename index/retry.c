/* retry — the table of recent delivery keys (see index/retry.h).
 *
 *   DB_RETRIES  user_id u32 + key[32]  ->  when s64 + mbid u32 + uid u32
 */
#include <string.h>

#include "index/retry.h"
#include "index/store_internal.h"
#include "index/store_sweep.h"

#define KEY_LEN (4 + STORE_HASH_LEN)
#define VAL_LEN 16

static void make_key(uint8_t *k, uint32_t user_id, const uint8_t *retry_key)
{
	store_put_be32(k, user_id);
	memcpy(k + 4, retry_key, STORE_HASH_LEN);
}

int store_retry_seen(struct store_txn *txn, uint32_t user_id, struct store_rcpt *r, int64_t now)
{
	uint8_t kb[KEY_LEN];
	MDB_val k = {KEY_LEN, kb}, v;

	if (r->retry_key == NULL || r->retry_window <= 0)
		return 0;
	make_key(kb, user_id, r->retry_key);
	int rc = mdb_get(store_txn_mdb(txn), store_txn_dbi(txn, DB_RETRIES), &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return store_mdb_error(rc);
	if (v.mv_size != VAL_LEN)
		return 0;
	int64_t when = (int64_t)store_get_be64(v.mv_data);
	/* a clock set back makes an entry "from the future": not a retry */
	if (now < when || now - when > r->retry_window)
		return 0;
	r->age = now - when;
	r->mbid = store_get_be32((uint8_t *)v.mv_data + 8);
	r->uid = store_get_be32((uint8_t *)v.mv_data + 12);
	return 1;
}

int store_retry_record(struct store_txn *txn, uint32_t user_id, const struct store_rcpt *r,
		       int64_t now)
{
	uint8_t kb[KEY_LEN], vb[VAL_LEN];
	MDB_val k = {KEY_LEN, kb}, v = {VAL_LEN, vb};

	if (r->retry_key == NULL || r->retry_window <= 0)
		return 0;
	make_key(kb, user_id, r->retry_key);
	store_put_be64(vb, (uint64_t)now);
	store_put_be32(vb + 8, r->mbid);
	store_put_be32(vb + 12, r->uid);
	int rc = mdb_put(store_txn_mdb(txn), store_txn_dbi(txn, DB_RETRIES), &k, &v, 0);
	return rc == 0 ? 0 : store_mdb_error(rc);
}

static int stale(const MDB_val *v, void *ctx)
{
	return v->mv_size != VAL_LEN || (int64_t)store_get_be64(v->mv_data) < *(const int64_t *)ctx;
}

int store_retry_expire(struct store *store, int64_t now, int64_t max_age)
{
	int64_t cutoff = now - max_age;

	return store_sweep(store, DB_RETRIES, stale, &cutoff);
}
