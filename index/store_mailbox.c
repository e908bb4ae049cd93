/* store_mailbox — mailboxes: IMAP's model, keyed by (user id, name).
 *
 * Record: id u32, uidvalidity u32, uidnext u32, highestmodseq u64, special u32,
 * messages u32, unseen u32, recent u32, bytes u64, subscribed u8.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "index/store_priv.h"
#include "lib/array.h"

#define MB_REC_LEN 45

int store_mailbox_decode(uint32_t user_id, const char *name, size_t namelen, const MDB_val *val,
			 struct store_mailbox *mb)
{
	const uint8_t *p = val->mv_data;

	if (val->mv_size < MB_REC_LEN || namelen > STORE_NAME_MAX)
		return STORE_ECORRUPT;
	memset(mb, 0, sizeof(*mb));
	mb->user_id = user_id;
	memcpy(mb->name, name, namelen);
	mb->id = store_get_be32(p);
	mb->uidvalidity = store_get_be32(p + 4);
	mb->uidnext = store_get_be32(p + 8);
	mb->highestmodseq = store_get_be64(p + 12);
	mb->special_use = store_get_be32(p + 20);
	mb->messages = store_get_be32(p + 24);
	mb->unseen = store_get_be32(p + 28);
	mb->recent = store_get_be32(p + 32);
	mb->bytes = store_get_be64(p + 36);
	mb->subscribed = p[44];
	return 0;
}

static size_t mb_key(uint8_t *key, uint32_t user_id, const char *name)
{
	size_t len = strlen(name);

	store_put_be32(key, user_id);
	memcpy(key + 4, name, len);
	return 4 + len;
}

int store_mailbox_put(struct store_txn *txn, const struct store_mailbox *mb)
{
	uint8_t key[4 + STORE_NAME_MAX], rec[MB_REC_LEN];
	MDB_val k = {mb_key(key, mb->user_id, mb->name), key}, v = {MB_REC_LEN, rec};

	store_put_be32(rec, mb->id);
	store_put_be32(rec + 4, mb->uidvalidity);
	store_put_be32(rec + 8, mb->uidnext);
	store_put_be64(rec + 12, mb->highestmodseq);
	store_put_be32(rec + 20, mb->special_use);
	store_put_be32(rec + 24, mb->messages);
	store_put_be32(rec + 28, mb->unseen);
	store_put_be32(rec + 32, mb->recent);
	store_put_be64(rec + 36, mb->bytes);
	rec[44] = mb->subscribed ? 1 : 0;
	txn->touched = 1;
	return store_mdb_error(mdb_put(txn->txn, store_txn_dbi(txn, DB_MAILBOXES), &k, &v, 0));
}

/* Copies name into out, with any case of "INBOX" made "INBOX". */
static void mb_normalize(const char *name, char *out)
{
	size_t len = strlen(name);

	if (strcasecmp(name, "INBOX") == 0)
		name = "INBOX";
	if (len > STORE_NAME_MAX)
		len = STORE_NAME_MAX;
	memcpy(out, name, len);
	out[len] = '\0';
}

static size_t sub_key(uint8_t *key, uint32_t user_id, const char *name);
static int sub_put(struct store_txn *txn, uint32_t user_id, const char *name, int on);

/* UTF-8-ish, no '/', no control characters, no empty level. */
static int mb_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > STORE_NAME_MAX || !store_name_valid(name))
		return 0;
	if (name[0] == STORE_MAILBOX_SEP || name[len - 1] == STORE_MAILBOX_SEP)
		return 0;
	for (size_t i = 1; i < len; i++)
		if (name[i] == STORE_MAILBOX_SEP && name[i - 1] == STORE_MAILBOX_SEP)
			return 0;
	return 1;
}

int store_mailbox_name_valid(const char *name)
{
	return mb_name_valid(name);
}

int store_mailbox_get(struct store_txn *txn, uint32_t user_id, const char *name,
		      struct store_mailbox *mb_r)
{
	char n[STORE_NAME_MAX + 1];
	uint8_t key[4 + STORE_NAME_MAX];
	MDB_val k, v;
	int rc;

	if (strlen(name) > STORE_NAME_MAX)
		return STORE_ENOTFOUND;
	mb_normalize(name, n);
	k.mv_size = mb_key(key, user_id, n);
	k.mv_data = key;
	rc = mdb_get(txn->txn, store_txn_dbi(txn, DB_MAILBOXES), &k, &v);
	if (rc != 0)
		return store_mdb_error(rc);
	return store_mailbox_decode(user_id, n, strlen(n), &v, mb_r);
}

int store_mailbox_get_by_id(struct store_txn *txn, uint32_t mbid, struct store_mailbox *mb_r)
{
	uint8_t key[4];
	char name[STORE_NAME_MAX + 1];
	MDB_val k = {4, key}, v;
	int rc;

	store_put_be32(key, mbid);
	rc = mdb_get(txn->txn, store_txn_dbi(txn, DB_MBIDS), &k, &v);
	if (rc != 0)
		return store_mdb_error(rc);
	if (v.mv_size < 5 || v.mv_size > 4 + STORE_NAME_MAX)
		return STORE_ECORRUPT;
	memcpy(name, (uint8_t *)v.mv_data + 4, v.mv_size - 4);
	name[v.mv_size - 4] = '\0';
	rc = store_mailbox_get(txn, store_get_be32(v.mv_data), name, mb_r);
	if (rc == 0 && mb_r->id != mbid)
		rc = STORE_ECORRUPT;
	return rc == STORE_ENOTFOUND ? STORE_ECORRUPT : rc;
}

static int mbid_put(struct store_txn *txn, const struct store_mailbox *mb)
{
	uint8_t key[4], val[4 + STORE_NAME_MAX];
	size_t nl = strlen(mb->name);
	MDB_val k = {4, key}, v = {4 + nl, val};

	store_put_be32(key, mb->id);
	store_put_be32(val, mb->user_id);
	memcpy(val + 4, mb->name, nl);
	return store_mdb_error(mdb_put(txn->txn, store_txn_dbi(txn, DB_MBIDS), &k, &v, 0));
}

int store_mailbox_create(struct store_txn *txn, uint32_t user_id, const char *name,
			 uint32_t special_use, struct store_mailbox *mb_r)
{
	struct store_mailbox mb;
	uint64_t next = 0, lastv = 0;
	int rc;

	if (!txn->writable || !mb_name_valid(name))
		return STORE_EINVAL;
	rc = store_mailbox_get(txn, user_id, name, &mb);
	if (rc == 0)
		return STORE_EEXIST;
	if (rc != STORE_ENOTFOUND)
		return rc;
	memset(&mb, 0, sizeof(mb));
	mb_normalize(name, mb.name);
	mb.user_id = user_id;
	if ((rc = store_meta_get_u64(txn, "next_mbid", &next)) != 0 && rc != STORE_ENOTFOUND)
		return rc;
	if ((rc = store_meta_get_u64(txn, "last_uidvalidity", &lastv)) != 0 &&
	    rc != STORE_ENOTFOUND)
		return rc;
	mb.id = (uint32_t)(next == 0 ? 1 : next);
	/* UIDVALIDITY: the creation time, strictly increasing within the store, so a
	 * mailbox deleted and made again never repeats one. */
	uint64_t now = (uint64_t)time(NULL);
	mb.uidvalidity = (uint32_t)(now > lastv ? now : lastv + 1);
	mb.uidnext = 1;
	mb.highestmodseq = 1;
	mb.special_use = special_use;
	/* a name subscribed before it existed: the subscription becomes the flag */
	uint8_t skey[9 + STORE_NAME_MAX];
	MDB_val sk = {sub_key(skey, user_id, mb.name), skey}, sv;
	if (mdb_get(txn->txn, store_txn_dbi(txn, DB_META), &sk, &sv) == 0) {
		mb.subscribed = 1;
		if ((rc = sub_put(txn, user_id, mb.name, 0)) != 0)
			return rc;
	}
	if ((rc = store_meta_put_u64(txn, "next_mbid", mb.id + 1)) != 0 ||
	    (rc = store_meta_put_u64(txn, "last_uidvalidity", mb.uidvalidity)) != 0 ||
	    (rc = store_mailbox_put(txn, &mb)) != 0 || (rc = mbid_put(txn, &mb)) != 0)
		return rc;
	if (mb_r != NULL)
		*mb_r = mb;
	return 0;
}

int store_mailbox_foreach(struct store_txn *txn, uint32_t user_id,
			  int (*cb)(const struct store_mailbox *mb, void *ctx), void *ctx)
{
	MDB_cursor *cur;
	uint8_t prefix[4];
	MDB_val k = {4, prefix}, v;
	struct store_mailbox mb;
	int rc = mdb_cursor_open(txn->txn, store_txn_dbi(txn, DB_MAILBOXES), &cur);

	if (rc != 0)
		return store_mdb_error(rc);
	store_put_be32(prefix, user_id);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size < 4 || memcmp(k.mv_data, prefix, 4) != 0)
			break;
		if (store_mailbox_decode(user_id, (char *)k.mv_data + 4, k.mv_size - 4, &v, &mb) !=
		    0) {
			rc = MDB_CORRUPTED;
			break;
		}
		if (cb(&mb, ctx) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_mdb_error(rc);
}

struct find_special {
	uint32_t bit;
	struct store_mailbox *mb;
	int found;
};

static int find_special_cb(const struct store_mailbox *mb, void *ctx)
{
	struct find_special *f = ctx;

	if (mb->special_use & f->bit) {
		*f->mb = *mb;
		f->found = 1;
		return 1;
	}
	return 0;
}

int store_mailbox_find_special(struct store_txn *txn, uint32_t user_id, uint32_t special_use,
			       struct store_mailbox *mb_r)
{
	struct find_special f = {special_use, mb_r, 0};
	int rc = store_mailbox_foreach(txn, user_id, find_special_cb, &f);

	if (rc != 0)
		return rc;
	return f.found ? 0 : STORE_ENOTFOUND;
}

/* A subscription to a name with no mailbox (RFC 3501 6.3.6: allowed, and
 * kept when the mailbox is deleted) lives in the meta table under
 * "subs/" + user id + name; a mailbox's own subscription is its record's flag. */
static size_t sub_key(uint8_t *key, uint32_t user_id, const char *name)
{
	size_t len = strlen(name);

	memcpy(key, "subs/", 5);
	store_put_be32(key + 5, user_id);
	memcpy(key + 9, name, len);
	return 9 + len;
}

static int sub_put(struct store_txn *txn, uint32_t user_id, const char *name, int on)
{
	uint8_t key[9 + STORE_NAME_MAX];
	MDB_val k = {sub_key(key, user_id, name), key}, v = {1, (void *)"1"};
	int rc;

	txn->touched = 1;
	if (on)
		return store_mdb_error(mdb_put(txn->txn, store_txn_dbi(txn, DB_META), &k, &v, 0));
	rc = mdb_del(txn->txn, store_txn_dbi(txn, DB_META), &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : store_mdb_error(rc);
}

int store_mailbox_subscribe(struct store_txn *txn, uint32_t user_id, const char *name,
			    int subscribed)
{
	struct store_mailbox mb;
	char norm[STORE_NAME_MAX + 1];
	int rc;

	if (!mb_name_valid(name))
		return STORE_EINVAL;
	mb_normalize(name, norm);
	rc = store_mailbox_get(txn, user_id, norm, &mb);
	if (rc == STORE_ENOTFOUND)
		return sub_put(txn, user_id, norm, subscribed);
	if (rc != 0)
		return rc;
	mb.subscribed = subscribed ? 1 : 0;
	if ((rc = sub_put(txn, user_id, norm, 0)) != 0)
		return rc;
	return store_mailbox_put(txn, &mb);
}

int store_subscription_foreach(struct store_txn *txn, uint32_t user_id,
			       int (*cb)(const char *name, void *ctx), void *ctx)
{
	MDB_cursor *cur;
	uint8_t prefix[9];
	MDB_val k = {9, prefix}, v;
	char name[STORE_NAME_MAX + 1];
	int rc = mdb_cursor_open(txn->txn, store_txn_dbi(txn, DB_META), &cur);

	if (rc != 0)
		return store_mdb_error(rc);
	memcpy(prefix, "subs/", 5);
	store_put_be32(prefix + 5, user_id);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size < 9 || memcmp(k.mv_data, prefix, 9) != 0 ||
		    k.mv_size - 9 > STORE_NAME_MAX)
			break;
		memcpy(name, (char *)k.mv_data + 9, k.mv_size - 9);
		name[k.mv_size - 9] = '\0';
		if ((rc = cb(name, ctx)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc > 0 ? store_mdb_error(rc) : rc;
}

struct mb_children {
	const char *prefix;
	size_t plen;
	struct store_mailbox *v;
	size_t n, cap;
};

/* Collects the mailbox named prefix and (if plen is set) its children. */
static int children_cb(const struct store_mailbox *mb, void *ctx)
{
	struct mb_children *c = ctx;
	size_t nl = strlen(mb->name);

	if (strcmp(mb->name, c->prefix) != 0 &&
	    !(nl > c->plen && memcmp(mb->name, c->prefix, c->plen) == 0 &&
	      mb->name[c->plen] == STORE_MAILBOX_SEP))
		return 0;
	*ARRAY_PUSH(c->v, c->n, c->cap) = *mb;
	return 0;
}

int store_mailbox_purge(struct store_txn *txn, const struct store_mailbox *mb)
{
	MDB_cursor *cur;
	uint8_t prefix[4], key[4 + STORE_NAME_MAX];
	MDB_val k, v;
	struct store_msg m;
	int rc;

	store_put_be32(prefix, mb->id);
	rc = mdb_cursor_open(txn->txn, store_txn_dbi(txn, DB_MSGS), &cur);
	if (rc != 0)
		return store_mdb_error(rc);
	for (;;) {
		k.mv_size = 4;
		k.mv_data = prefix;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc != 0 || k.mv_size < 4 || memcmp(k.mv_data, prefix, 4) != 0)
			break;
		if ((rc = store_msg_decode(&k, &v, &m)) != 0)
			break;
		if ((rc = mdb_cursor_del(cur, 0)) != 0 ||
		    (rc = store_blob_ref(txn, m.hash, -1)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	else if (rc > 0)
		rc = store_mdb_error(rc);
	if (rc != 0)
		return rc;
	if ((rc = store_delete_prefix(txn, DB_MSGBASES, prefix, 4)) != 0 ||
	    (rc = store_delete_prefix(txn, DB_MSGMETA, prefix, 4)) != 0 ||
	    (rc = store_delete_prefix(txn, DB_EXPUNGED, prefix, 4)) != 0)
		return rc;
	k.mv_size = mb_key(key, mb->user_id, mb->name);
	k.mv_data = key;
	if ((rc = mdb_del(txn->txn, store_txn_dbi(txn, DB_MAILBOXES), &k, NULL)) != 0)
		return store_mdb_error(rc);
	k.mv_size = 4;
	k.mv_data = prefix;
	txn->touched = 1;
	return store_mdb_error(mdb_del(txn->txn, store_txn_dbi(txn, DB_MBIDS), &k, NULL));
}

int store_mailbox_delete(struct store_txn *txn, uint32_t user_id, const char *name)
{
	struct store_mailbox mb;
	struct mb_children c = {0};
	int rc;

	if (!txn->writable)
		return STORE_EINVAL;
	if ((rc = store_mailbox_get(txn, user_id, name, &mb)) != 0)
		return rc;
	if (strcmp(mb.name, "INBOX") == 0)
		return STORE_EINVAL;
	c.prefix = mb.name;
	c.plen = strlen(mb.name);
	rc = store_mailbox_foreach(txn, user_id, children_cb, &c);
	if (rc == 0 && c.n > 1)
		rc = STORE_ENOTEMPTY;
	free(c.v);
	if (rc != 0)
		return rc;
	/* the subscription outlives the mailbox (RFC 3501 6.3.6) */
	if (mb.subscribed && (rc = sub_put(txn, user_id, mb.name, 1)) != 0)
		return rc;
	return store_mailbox_purge(txn, &mb);
}

int store_mailbox_rename(struct store_txn *txn, uint32_t user_id, const char *oldname,
			 const char *newname)
{
	struct store_mailbox mb, dst;
	struct mb_children c = {0};
	char newn[STORE_NAME_MAX + 1];
	int rc;

	if (!txn->writable || !mb_name_valid(newname))
		return STORE_EINVAL;
	if ((rc = store_mailbox_get(txn, user_id, oldname, &mb)) != 0)
		return rc;
	mb_normalize(newname, newn);
	if (strcmp(newn, "INBOX") == 0)
		return STORE_EEXIST;
	if ((rc = store_mailbox_get(txn, user_id, newn, &dst)) == 0)
		return STORE_EEXIST;
	if (rc != STORE_ENOTFOUND)
		return rc;
	if (strcmp(mb.name, "INBOX") == 0) {
		/* RFC 3501: renaming INBOX moves its messages to a new mailbox. */
		struct store_cursor *cur;
		struct store_msg m;
		if ((rc = store_mailbox_create(txn, user_id, newn, STORE_SU_NONE, &dst)) != 0)
			return rc;
		if ((rc = store_msg_cursor_open(txn, mb.id, 1, &cur)) != 0)
			return rc;
		while ((rc = store_msg_cursor_next(cur, &m)) == 0) {
			if ((rc = store_msg_copy_impl(txn, mb.id, m.uid, dst.id, 1, NULL)) != 0)
				break;
		}
		store_msg_cursor_close(&cur);
		return rc == STORE_ENOTFOUND ? 0 : rc;
	}
	size_t oldlen = strlen(mb.name), newlen = strlen(newn);
	c.prefix = mb.name;
	c.plen = oldlen;
	if ((rc = store_mailbox_foreach(txn, user_id, children_cb, &c)) != 0)
		goto out;
	for (size_t i = 0; i < c.n; i++) {
		struct store_mailbox *m = &c.v[i];
		uint8_t key[4 + STORE_NAME_MAX];
		char name[STORE_NAME_MAX + 1];
		size_t rest = strlen(m->name) - oldlen;
		if (newlen + rest > STORE_NAME_MAX) {
			rc = STORE_EINVAL;
			goto out;
		}
		memcpy(name, newn, newlen);
		memcpy(name + newlen, m->name + oldlen, rest + 1);
		if ((rc = store_mailbox_get(txn, user_id, name, &dst)) == 0) {
			rc = STORE_EEXIST;
			goto out;
		}
		MDB_val k = {mb_key(key, user_id, m->name), key};
		if ((rc = store_mdb_error(
			 mdb_del(txn->txn, store_txn_dbi(txn, DB_MAILBOXES), &k, NULL))) != 0)
			goto out;
		memcpy(m->name, name, strlen(name) + 1);
		if ((rc = store_mailbox_put(txn, m)) != 0 || (rc = mbid_put(txn, m)) != 0)
			goto out;
	}
	rc = 0;
out:
	free(c.v);
	return rc;
}
