/* greylist_pscache — postscreen's cache of clients that passed its tests
 * (DB_PSCACHE; see index/greylist.h). Like the greylist's, these writes never
 * call store_txn_touch. */
#include "index/greylist.h"

#include <string.h>

#include "index/store_internal.h"

int pscache_get(struct store *store, const char *addr, int64_t *until_r)
{
	struct store_txn *txn = NULL;
	MDB_val k = {strlen(addr), (void *)addr}, v;
	int rc;

	*until_r = 0;
	if (k.mv_size == 0 || k.mv_size > 100)
		return STORE_EINVAL;
	if ((rc = store_read_begin(store, &txn)) != 0)
		return rc;
	rc = mdb_get(store_txn_mdb(txn), store_txn_dbi(txn, DB_PSCACHE), &k, &v);
	if (rc == 0 && v.mv_size == 8)
		*until_r = (int64_t)store_get_be64(v.mv_data);
	store_read_end(&txn);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_mdb_error(rc);
}

struct ps_put {
	const char *addr;
	int64_t until;
};

static int pscache_fn(struct store_txn *txn, void *ctx)
{
	struct ps_put *p = ctx;
	uint8_t buf[8];
	MDB_val k = {strlen(p->addr), (void *)p->addr}, v = {8, buf};

	store_put_be64(buf, (uint64_t)p->until);
	int rc = mdb_put(store_txn_mdb(txn), store_txn_dbi(txn, DB_PSCACHE), &k, &v, 0);
	return rc == 0 ? 0 : store_mdb_error(rc);
}

int pscache_put(struct store *store, const char *addr, int64_t until)
{
	struct ps_put p = {addr, until};

	if (strlen(addr) == 0 || strlen(addr) > 100)
		return STORE_EINVAL;
	return store_write(store, pscache_fn, &p);
}
