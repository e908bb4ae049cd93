/* store_sweep: one table's stale records deleted in one write (store_sweep.h). */
#include "index/store_sweep.h"

struct sweep {
	enum store_db db;
	store_stale_fn *stale;
	void *ctx;
	int deleted;
};

static int sweep_fn(struct store_txn *txn, void *ctx)
{
	struct sweep *s = ctx;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = mdb_cursor_open(store_txn_mdb(txn), store_txn_dbi(txn, s->db), &cur);

	if (rc != 0)
		return store_mdb_error(rc);
	s->deleted = 0; /* store_write may run this again */
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (s->stale(&v, s->ctx)) {
			if ((rc = mdb_cursor_del(cur, 0)) != 0)
				break;
			s->deleted++;
		}
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : store_mdb_error(rc);
}

int store_sweep(struct store *store, enum store_db db, store_stale_fn *stale, void *ctx)
{
	struct sweep s = {db, stale, ctx, 0};
	int rc = store_write(store, sweep_fn, &s);

	return rc != 0 ? rc : s.deleted;
}
