/* dir_sync — the store's copy of directory users' uid and gid (see index/dir.h). */
#include <stdlib.h>
#include <string.h>

#include "index/dir.h"
#include "index/quota.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xmalloc.h"

struct sync_ctx {
	const struct dir_user *u;
};

static int sync_write(struct store_txn *txn, void *arg)
{
	struct sync_ctx *c = arg;
	struct store_user su;
	int rc;

	if ((rc = store_user_ensure(txn, c->u->name, &su)) != 0)
		return rc;
	if (c->u->quota_known) {
		struct quota_limits own = {c->u->quota_storage, c->u->quota_messages};
		if ((rc = quota_set_own(txn, su.id, &own, c->u->has_quota)) != 0)
			return rc;
	}
	if (su.uid == (uint32_t)c->u->uid && su.gid == (uint32_t)c->u->gid)
		return 0;
	su.uid = (uint32_t)c->u->uid;
	su.gid = (uint32_t)c->u->gid;
	return store_user_update(txn, &su);
}

/* 1 if the store's quota of the user differs from what u says. */
static int quota_differs(struct store_txn *txn, const struct store_user *su, const struct dir_user *u)
{
	struct quota_limits own = {0, 0};
	unsigned has = 0;
	if (!u->quota_known)
		return 0;
	if (quota_get_own(txn, su->id, &own, &has) != 0)
		has = 0;
	return has != (u->has_quota & 3) || ((has & 1) && own.storage != u->quota_storage) ||
	       ((has & 2) && own.messages != u->quota_messages);
}

int dir_sync_store_user(struct store *store, const struct dir_user *u)
{
	struct store_txn *txn = NULL;
	struct store_user su;
	struct sync_ctx c = {u};
	int rc;

	if ((rc = store_read_begin(store, &txn)) != 0)
		return rc;
	rc = store_user_get(txn, u->name, &su);
	int qdiff = rc == 0 && quota_differs(txn, &su, u);
	store_read_end(&txn);
	if (rc == 0 && su.uid == (uint32_t)u->uid && su.gid == (uint32_t)u->gid && !qdiff)
		return 0;
	if (rc != 0 && rc != STORE_ENOTFOUND)
		return rc;
	return store_write(store, sync_write, &c);
}

struct sync_dir {
	struct directory *inner;
	struct store *store;
};

static struct sync_dir *sd_of(struct directory *dir)
{
	return (struct sync_dir *)dir->impl;
}

static enum dir_result after(struct directory *dir, enum dir_result r, struct dir_user *u)
{
	struct sync_dir *sd = sd_of(dir);
	int rc;

	if (r == DIR_OK && u != NULL && (rc = dir_sync_store_user(sd->store, u)) != 0)
		log_warn("cannot record user %s (uid %u, gid %u) in the store: %s", u->name, (unsigned)u->uid,
			 (unsigned)u->gid, store_strerror(rc));
	return r;
}

static enum dir_result sync_lookup_address(struct directory *dir, const char *address, struct dir_user *user_r)
{
	struct dir_user u;
	enum dir_result r = dir_lookup_address(sd_of(dir)->inner, address, &u);

	r = after(dir, r, &u);
	if (r == DIR_OK && user_r != NULL)
		*user_r = u;
	return r;
}

static enum dir_result sync_get_user(struct directory *dir, const char *name, struct dir_user *user_r)
{
	struct dir_user u;
	enum dir_result r = dir_get_user(sd_of(dir)->inner, name, &u);

	r = after(dir, r, &u);
	if (r == DIR_OK && user_r != NULL)
		*user_r = u;
	return r;
}

static enum dir_result sync_authenticate(struct directory *dir, const char *login, const char *password,
					 struct dir_user *user_r)
{
	struct dir_user u;
	enum dir_result r = dir_authenticate(sd_of(dir)->inner, login, password, &u);

	r = after(dir, r, &u);
	if (r == DIR_OK && user_r != NULL)
		*user_r = u;
	return r;
}

static enum dir_result sync_list(struct directory *dir, int (*cb)(const struct dir_user *user, void *ctx), void *ctx)
{
	enum dir_result r = dir_list(sd_of(dir)->inner, cb, ctx);

	return after(dir, r, NULL);
}

static void sync_close(struct directory *dir)
{
	struct sync_dir *sd = sd_of(dir);

	dir_close(&sd->inner);
	free(sd);
}

static const struct directory_ops sync_ops = {
	.name = "ldap",
	.lookup_address = sync_lookup_address,
	.get_user = sync_get_user,
	.authenticate = sync_authenticate,
	.list = sync_list,
	.close = sync_close,
};

struct directory *dir_sync_wrap(struct directory *inner, struct store *store)
{
	struct directory *dir = xcalloc(1, sizeof *dir);
	struct sync_dir *sd = xcalloc(1, sizeof *sd);

	sd->inner = inner;
	sd->store = store;
	dir->ops = &sync_ops;
	dir->impl = sd;
	return dir;
}
