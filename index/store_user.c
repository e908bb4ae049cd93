/* store_user — users and aliases in the store.
 *
 * A user record: id u32, uid u32, gid u32, created i64, password (rest).
 * Every user gets INBOX, Sent, Drafts, Junk, Trash and Archive at creation.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "index/store_priv.h"
#include "lib/array.h"

#define USER_REC_FIXED 20

static const struct {
	const char *name;
	uint32_t special;
} default_mailboxes[] = {
	{"INBOX", STORE_SU_NONE},     {"Sent", STORE_SU_SENT},   {"Drafts", STORE_SU_DRAFTS},
	{"Junk", STORE_SU_JUNK},      {"Trash", STORE_SU_TRASH}, {"Archive", STORE_SU_ARCHIVE},
};

/* Names of users, and each level of a mailbox name: printable UTF-8 bytes,
 * no '/', not "." or "..". */
int store_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > STORE_NAME_MAX)
		return 0;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return 0;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == '/')
			return 0;
	return 1;
}

static int user_decode(const MDB_val *k, const MDB_val *v, struct store_user *u)
{
	const uint8_t *p = v->mv_data;
	size_t pwlen;

	if (v->mv_size < USER_REC_FIXED || k->mv_size > STORE_NAME_MAX)
		return STORE_ECORRUPT;
	memset(u, 0, sizeof(*u));
	memcpy(u->name, k->mv_data, k->mv_size);
	u->id = store_get_be32(p);
	u->uid = store_get_be32(p + 4);
	u->gid = store_get_be32(p + 8);
	u->created = (int64_t)store_get_be64(p + 12);
	pwlen = v->mv_size - USER_REC_FIXED;
	if (pwlen >= sizeof(u->password))
		return STORE_ECORRUPT;
	memcpy(u->password, p + USER_REC_FIXED, pwlen);
	return 0;
}

static int user_put(struct store_txn *txn, const struct store_user *u, unsigned flags)
{
	uint8_t rec[USER_REC_FIXED + sizeof(u->password)];
	size_t pwlen = strnlen(u->password, sizeof(u->password) - 1);
	MDB_val k = {strlen(u->name), (void *)u->name}, v = {USER_REC_FIXED + pwlen, rec};

	store_put_be32(rec, u->id);
	store_put_be32(rec + 4, u->uid);
	store_put_be32(rec + 8, u->gid);
	store_put_be64(rec + 12, (uint64_t)u->created);
	memcpy(rec + USER_REC_FIXED, u->password, pwlen);
	txn->touched = 1;
	return store_mdb_error(mdb_put(txn->txn, store_txn_dbi(txn, DB_USERS), &k, &v, flags));
}

int store_user_get(struct store_txn *txn, const char *name, struct store_user *user_r)
{
	MDB_val k = {strlen(name), (void *)name}, v;
	int rc;

	if (!store_name_valid(name))
		return STORE_ENOTFOUND;
	rc = mdb_get(txn->txn, store_txn_dbi(txn, DB_USERS), &k, &v);
	if (rc != 0)
		return store_mdb_error(rc);
	return user_decode(&k, &v, user_r);
}

int store_user_get_by_id(struct store_txn *txn, uint32_t id, struct store_user *user_r)
{
	uint8_t key[4];
	MDB_val k = {4, key}, v;
	char name[STORE_NAME_MAX + 1];
	int rc;

	store_put_be32(key, id);
	rc = mdb_get(txn->txn, store_txn_dbi(txn, DB_USERIDS), &k, &v);
	if (rc != 0)
		return store_mdb_error(rc);
	if (v.mv_size > STORE_NAME_MAX)
		return STORE_ECORRUPT;
	memcpy(name, v.mv_data, v.mv_size);
	name[v.mv_size] = '\0';
	rc = store_user_get(txn, name, user_r);
	return rc == STORE_ENOTFOUND ? STORE_ECORRUPT : rc;
}

int store_user_add(struct store_txn *txn, const struct store_user *user, uint32_t *id_r)
{
	struct store_user u = *user;
	uint64_t next = 0;
	uint8_t key[4];
	MDB_val k = {4, key}, v;
	int rc;

	if (!txn->writable)
		return STORE_EINVAL;
	if (!store_name_valid(user->name))
		return STORE_EINVAL;
	rc = store_meta_get_u64(txn, "next_user", &next);
	if (rc != 0 && rc != STORE_ENOTFOUND)
		return rc;
	u.id = (uint32_t)(next == 0 ? 1 : next);
	if (u.created == 0)
		u.created = time(NULL);
	if ((rc = user_put(txn, &u, MDB_NOOVERWRITE)) != 0)
		return rc;
	if ((rc = store_meta_put_u64(txn, "next_user", u.id + 1)) != 0)
		return rc;
	store_put_be32(key, u.id);
	v.mv_size = strlen(u.name);
	v.mv_data = u.name;
	if ((rc = mdb_put(txn->txn, store_txn_dbi(txn, DB_USERIDS), &k, &v, 0)) != 0)
		return store_mdb_error(rc);
	for (size_t i = 0; i < sizeof(default_mailboxes) / sizeof(default_mailboxes[0]); i++) {
		struct store_mailbox mb;
		rc = store_mailbox_create(txn, u.id, default_mailboxes[i].name, default_mailboxes[i].special, &mb);
		if (rc == 0)
			rc = store_mailbox_subscribe(txn, u.id, mb.name, 1);
		if (rc != 0)
			return rc;
	}
	if (id_r != NULL)
		*id_r = u.id;
	return 0;
}

int store_user_ensure(struct store_txn *txn, const char *name, struct store_user *user_r)
{
	int rc = store_user_get(txn, name, user_r);

	if (rc != STORE_ENOTFOUND)
		return rc;
	memset(user_r, 0, sizeof(*user_r));
	if (strlen(name) > STORE_NAME_MAX)
		return STORE_EINVAL;
	memcpy(user_r->name, name, strlen(name) + 1);
	return store_user_add(txn, user_r, &user_r->id);
}

int store_user_update(struct store_txn *txn, const struct store_user *user)
{
	struct store_user old;
	int rc = store_user_get(txn, user->name, &old);

	if (rc != 0)
		return rc;
	old.uid = user->uid;
	old.gid = user->gid;
	memcpy(old.password, user->password, sizeof(old.password));
	old.password[sizeof(old.password) - 1] = '\0';
	return user_put(txn, &old, 0);
}

struct mb_list {
	struct store_mailbox *v;
	size_t n, cap;
};

static int collect_mailbox(const struct store_mailbox *mb, void *ctx)
{
	struct mb_list *l = ctx;

	*ARRAY_PUSH(l->v, l->n, l->cap) = *mb;
	return 0;
}

int store_user_del(struct store_txn *txn, const char *name)
{
	struct store_user u;
	struct mb_list l = {0};
	uint8_t key[4];
	MDB_val k = {4, key};
	int rc;

	if (!txn->writable)
		return STORE_EINVAL;
	if ((rc = store_user_get(txn, name, &u)) != 0)
		return rc;
	if ((rc = store_mailbox_foreach(txn, u.id, collect_mailbox, &l)) != 0)
		goto out;
	for (size_t i = 0; i < l.n && rc == 0; i++)
		rc = store_mailbox_purge(txn, &l.v[i]);
	if (rc != 0)
		goto out;
	/* Aliases that point at the user go with it. */
	MDB_cursor *cur;
	MDB_val ak, av;
	if ((rc = store_mdb_error(mdb_cursor_open(txn->txn, store_txn_dbi(txn, DB_ALIASES), &cur))) != 0)
		goto out;
	for (int r = mdb_cursor_get(cur, &ak, &av, MDB_FIRST); r == 0; r = mdb_cursor_get(cur, &ak, &av, MDB_NEXT)) {
		if (av.mv_size == strlen(name) && memcmp(av.mv_data, name, av.mv_size) == 0)
			if ((rc = store_mdb_error(mdb_cursor_del(cur, 0))) != 0)
				break;
	}
	mdb_cursor_close(cur);
	if (rc != 0)
		goto out;
	/* The spam filter's, sieve's and quota's per-user tables are keyed by user id first. */
	store_put_be32(key, u.id);
	/* subscriptions to names without a mailbox (store_mailbox.c) */
	uint8_t skey[9];
	memcpy(skey, "subs/", 5);
	store_put_be32(skey + 5, u.id);
	if ((rc = store_delete_prefix(txn, DB_META, skey, 9)) != 0)
		goto out;
	if ((rc = store_delete_prefix(txn, DB_SPAM_TOKENS, key, 4)) != 0 ||
	    (rc = store_delete_prefix(txn, DB_SPAM_STATS, key, 4)) != 0 ||
	    (rc = store_delete_prefix(txn, DB_SPAM_SIGS, key, 4)) != 0 ||
	    (rc = store_delete_prefix(txn, DB_SIEVE, key, 4)) != 0 ||
	    (rc = store_delete_prefix(txn, DB_QUOTA, key, 4)) != 0)
		goto out;
	rc = store_mdb_error(mdb_del(txn->txn, store_txn_dbi(txn, DB_USERIDS), &k, NULL));
	if (rc == 0) {
		MDB_val nk = {strlen(name), (void *)name};
		rc = store_mdb_error(mdb_del(txn->txn, store_txn_dbi(txn, DB_USERS), &nk, NULL));
	}
	txn->touched = 1;
out:
	free(l.v);
	return rc;
}

int store_user_foreach(struct store_txn *txn, int (*cb)(const struct store_user *user, void *ctx), void *ctx)
{
	MDB_cursor *cur;
	MDB_val k, v;
	struct store_user u;
	int rc = mdb_cursor_open(txn->txn, store_txn_dbi(txn, DB_USERS), &cur);

	if (rc != 0)
		return store_mdb_error(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (user_decode(&k, &v, &u) != 0) {
			mdb_cursor_close(cur);
			return STORE_ECORRUPT;
		}
		if (cb(&u, ctx) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_mdb_error(rc);
}

/* --- aliases ------------------------------------------------------------------------ */

static int address_lower(const char *address, char *out)
{
	size_t len = strlen(address);

	if (len == 0 || len > STORE_NAME_MAX)
		return STORE_EINVAL;
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = address[i];
		if (c != '\0' && (c < 0x21 || c == 0x7f))
			return STORE_EINVAL;
		out[i] = (char)tolower(c);
	}
	return 0;
}

int store_alias_add(struct store_txn *txn, const char *address, const char *target)
{
	char a[STORE_NAME_MAX + 1];
	int rc = address_lower(address, a);
	size_t tl = strlen(target);

	if (rc != 0)
		return rc;
	if (!txn->writable || tl == 0 || tl > STORE_NAME_MAX)
		return STORE_EINVAL;
	MDB_val k = {strlen(a), a}, v = {tl, (void *)target};
	txn->touched = 1;
	return store_mdb_error(mdb_put(txn->txn, store_txn_dbi(txn, DB_ALIASES), &k, &v, MDB_NOOVERWRITE));
}

int store_alias_del(struct store_txn *txn, const char *address)
{
	char a[STORE_NAME_MAX + 1];
	int rc = address_lower(address, a);

	if (rc != 0)
		return rc == STORE_EINVAL ? STORE_ENOTFOUND : rc;
	MDB_val k = {strlen(a), a};
	txn->touched = 1;
	return store_mdb_error(mdb_del(txn->txn, store_txn_dbi(txn, DB_ALIASES), &k, NULL));
}

int store_alias_get(struct store_txn *txn, const char *address, char *target_r)
{
	char a[STORE_NAME_MAX + 1];
	MDB_val k, v;
	int rc = address_lower(address, a);

	if (rc != 0)
		return STORE_ENOTFOUND;
	k.mv_size = strlen(a);
	k.mv_data = a;
	rc = mdb_get(txn->txn, store_txn_dbi(txn, DB_ALIASES), &k, &v);
	if (rc != 0)
		return store_mdb_error(rc);
	if (v.mv_size > STORE_NAME_MAX)
		return STORE_ECORRUPT;
	memcpy(target_r, v.mv_data, v.mv_size);
	target_r[v.mv_size] = '\0';
	return 0;
}

int store_alias_foreach(struct store_txn *txn, int (*cb)(const char *address, const char *target, void *ctx),
			void *ctx)
{
	MDB_cursor *cur;
	MDB_val k, v;
	char a[STORE_NAME_MAX + 1], t[STORE_NAME_MAX + 1];
	int rc = mdb_cursor_open(txn->txn, store_txn_dbi(txn, DB_ALIASES), &cur);

	if (rc != 0)
		return store_mdb_error(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size > STORE_NAME_MAX || v.mv_size > STORE_NAME_MAX)
			continue;
		memcpy(a, k.mv_data, k.mv_size);
		a[k.mv_size] = '\0';
		memcpy(t, v.mv_data, v.mv_size);
		t[v.mv_size] = '\0';
		if (cb(a, t, ctx) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_mdb_error(rc);
}
