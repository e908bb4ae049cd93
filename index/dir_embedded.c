/* dir_embedded — the directory backend that keeps users and aliases in the
 * store (`mailkeep user ...`, `mailkeep alias ...`).
 *
 * An address resolves in this order: an alias for the whole address; then,
 * for a domain in mydestination (or no domain), an alias for the local part
 * and a user named like the local part (with any "+detail" after
 * recipient_delimiter removed); last, a user named like the whole address.
 * Alias targets may be user names or addresses (followed up to 8 levels).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "index/dir.h"
#include "index/params.h"
#include "lib/password.h"
#include "lib/util.h"
#include "lib/xmalloc.h"

#define ALIAS_DEPTH_MAX 8

struct embedded {
	struct store *store;
	char **domains;
	size_t ndomains;
	char delimiter[8];
};

static void fill_user(const struct store_user *su, const char *mail, struct dir_user *u)
{
	memset(u, 0, sizeof(*u));
	mk_strlcpy(u->name, su->name, sizeof(u->name));
	mk_strlcpy(u->mail, mail ? mail : su->name, sizeof(u->mail));
	u->uid = su->uid;
	u->gid = su->gid;
}

static int local_domain(struct embedded *e, const char *domain)
{
	for (size_t i = 0; i < e->ndomains; i++)
		if (strcasecmp(e->domains[i], domain) == 0)
			return 1;
	return 0;
}

static enum dir_result resolve(struct embedded *e, struct store_txn *txn, const char *address,
			       int depth, struct store_user *su)
{
	char addr[STORE_NAME_MAX + 1], target[STORE_NAME_MAX + 1], local[STORE_NAME_MAX + 1];
	int rc;

	if (depth > ALIAS_DEPTH_MAX || strlen(address) > STORE_NAME_MAX)
		return DIR_NOTFOUND;
	for (size_t i = 0; i <= strlen(address); i++)
		addr[i] = (char)tolower((unsigned char)address[i]);
	rc = store_alias_get(txn, addr, target);
	if (rc == 0)
		return strchr(target, '@')
			   ? resolve(e, txn, target, depth + 1, su)
			   : (store_user_get(txn, target, su) == 0 ? DIR_OK : DIR_NOTFOUND);
	if (rc != STORE_ENOTFOUND)
		return DIR_TEMPFAIL;
	char *at = strrchr(addr, '@');
	if (at == NULL || local_domain(e, at + 1)) {
		size_t ll = at ? (size_t)(at - addr) : strlen(addr);
		memcpy(local, addr, ll);
		local[ll] = '\0';
		if (at != NULL) {
			rc = store_alias_get(txn, local, target);
			if (rc == 0)
				return strchr(target, '@')
					   ? resolve(e, txn, target, depth + 1, su)
					   : (store_user_get(txn, target, su) == 0 ? DIR_OK
										   : DIR_NOTFOUND);
		}
		if ((rc = store_user_get(txn, local, su)) == 0)
			return DIR_OK;
		if (e->delimiter[0] != '\0') {
			char *d = strpbrk(local, e->delimiter);
			if (d != NULL && d != local) {
				*d = '\0';
				if (store_user_get(txn, local, su) == 0)
					return DIR_OK;
			}
		}
	}
	return store_user_get(txn, addr, su) == 0 ? DIR_OK : DIR_NOTFOUND;
}

static enum dir_result emb_lookup_address(struct directory *dir, const char *address,
					  struct dir_user *user_r)
{
	struct embedded *e = dir->impl;
	struct store_txn *txn;
	struct store_user su;
	enum dir_result r;

	if (store_read_begin(e->store, &txn) != 0)
		return DIR_TEMPFAIL;
	r = resolve(e, txn, address, 0, &su);
	store_read_end(&txn);
	if (r == DIR_OK)
		fill_user(&su, address, user_r);
	return r;
}

static enum dir_result emb_get_user(struct directory *dir, const char *name,
				    struct dir_user *user_r)
{
	struct embedded *e = dir->impl;
	struct store_txn *txn;
	struct store_user su;
	int rc;

	if (store_read_begin(e->store, &txn) != 0)
		return DIR_TEMPFAIL;
	rc = store_user_get(txn, name, &su);
	store_read_end(&txn);
	if (rc == 0) {
		fill_user(&su, NULL, user_r);
		return DIR_OK;
	}
	return rc == STORE_ENOTFOUND ? DIR_NOTFOUND : DIR_TEMPFAIL;
}

static enum dir_result emb_authenticate(struct directory *dir, const char *login,
					const char *password, struct dir_user *user_r)
{
	struct embedded *e = dir->impl;
	struct store_txn *txn;
	struct store_user su;
	enum dir_result r;

	if (store_read_begin(e->store, &txn) != 0)
		return DIR_TEMPFAIL;
	if (strchr(login, '@') != NULL)
		r = resolve(e, txn, login, 0, &su);
	else
		r = store_user_get(txn, login, &su) == 0 ? DIR_OK : DIR_NOTFOUND;
	store_read_end(&txn);
	if (r != DIR_OK)
		return r;
	/* password_verify refuses an empty password and an empty stored hash. */
	if (password == NULL || !password_verify(password, su.password))
		return DIR_BADPASS;
	fill_user(&su, NULL, user_r);
	return DIR_OK;
}

struct list_ctx {
	int (*cb)(const struct dir_user *user, void *ctx);
	void *ctx;
};

static int list_cb(const struct store_user *su, void *ctx)
{
	struct list_ctx *l = ctx;
	struct dir_user u;

	fill_user(su, NULL, &u);
	return l->cb(&u, l->ctx);
}

static enum dir_result emb_list(struct directory *dir,
				int (*cb)(const struct dir_user *user, void *ctx), void *ctx)
{
	struct embedded *e = dir->impl;
	struct store_txn *txn;
	struct list_ctx l = {cb, ctx};
	int rc;

	if (store_read_begin(e->store, &txn) != 0)
		return DIR_TEMPFAIL;
	rc = store_user_foreach(txn, list_cb, &l);
	store_read_end(&txn);
	return rc == 0 ? DIR_OK : DIR_TEMPFAIL;
}

static void emb_close(struct directory *dir)
{
	struct embedded *e = dir->impl;

	if (e != NULL) {
		free(e->domains);
		free(e);
	}
	dir->impl = NULL;
}

static const struct directory_ops embedded_ops = {
    .name = "embedded",
    .lookup_address = emb_lookup_address,
    .get_user = emb_get_user,
    .authenticate = emb_authenticate,
    .list = emb_list,
    .close = emb_close,
};

struct directory *dir_embedded_open(struct store *store, struct config *cfg)
{
	struct directory *dir = xcalloc(1, sizeof(*dir));
	struct embedded *e = xcalloc(1, sizeof(*e));
	struct common_params common = {0};
	const char *delim = "+";

	e->store = store;
	if (cfg != NULL) {
		common_params_bind(cfg, &common);
		/* the list's block is the directory's from now on */
		e->domains = common.mydestination.item;
		e->ndomains = common.mydestination.n;
		common.mydestination.item = NULL;
		delim = common.recipient_delimiter;
	}
	mk_strlcpy(e->delimiter, delim ? delim : "", sizeof(e->delimiter));
	common_params_unbind(&common);
	dir->ops = &embedded_ops;
	dir->impl = e;
	return dir;
}
