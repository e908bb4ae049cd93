/*
 * store_sweep: deletes the stale records of one of the store's tables in one
 * write (greylist triplets, retry records, ...). A table whose records age out
 * gives a predicate; the sweep walks the table with a cursor and deletes what
 * the predicate calls stale.
 */
#ifndef MK_INDEX_STORE_SWEEP_H
#define MK_INDEX_STORE_SWEEP_H

#include <lmdb.h>

#include "index/store_internal.h"

/* 1 when the record (its value v) is stale and must go; ctx as given. */
typedef int store_stale_fn(const MDB_val *v, void *ctx);

/* Deletes every record of table db for which stale() says 1, in one durable
 * write. Returns how many were deleted, or a negative STORE_E* code (then
 * nothing was deleted). */
int store_sweep(struct store *store, enum store_db db, store_stale_fn *stale, void *ctx);

#endif
