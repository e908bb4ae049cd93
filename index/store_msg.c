/* store_msg — messages in mailboxes, expunge memory, copy/move, delivery.
 *
 * Record (DB_MSGS, key mbid+uid): version u8 (1), hash[32], flags u32,
 * internaldate i64, size u64, modseq u64, base length u8 + base,
 * keywords length u16 + keywords.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "index/quota.h"
#include "index/retry.h"
#include "index/store_priv.h"
#include "lib/xmalloc.h"

#define MSG_FIXED 61

int store_msg_decode(const MDB_val *key, const MDB_val *val, struct store_msg *m)
{
	const uint8_t *p = val->mv_data, *end = p + val->mv_size;
	size_t bl, kl;

	if (key->mv_size != MSG_KEY_LEN || val->mv_size < MSG_FIXED + 3 || p[0] != 1)
		return STORE_ECORRUPT;
	memset(m, 0, sizeof(*m));
	m->mbid = store_get_be32(key->mv_data);
	m->uid = store_get_be32((uint8_t *)key->mv_data + 4);
	memcpy(m->hash, p + 1, STORE_HASH_LEN);
	m->flags = store_get_be32(p + 33);
	m->internaldate = (int64_t)store_get_be64(p + 37);
	m->size = store_get_be64(p + 45);
	m->modseq = store_get_be64(p + 53);
	p += MSG_FIXED;
	bl = *p++;
	if (bl >= STORE_BASE_MAX || p + bl + 2 > end)
		return STORE_ECORRUPT;
	memcpy(m->base, p, bl);
	p += bl;
	kl = (size_t)p[0] << 8 | p[1];
	p += 2;
	if (kl >= STORE_KEYWORDS_MAX || p + kl != end)
		return STORE_ECORRUPT;
	memcpy(m->keywords, p, kl);
	return 0;
}

static int msg_put(struct store_txn *txn, const struct store_msg *m)
{
	uint8_t key[MSG_KEY_LEN], rec[MSG_FIXED + 1 + STORE_BASE_MAX + 2 + STORE_KEYWORDS_MAX],
	    *p = rec;
	size_t bl = strlen(m->base), kl = strlen(m->keywords);

	msg_key(key, m->mbid, m->uid);
	*p++ = 1;
	memcpy(p, m->hash, STORE_HASH_LEN);
	store_put_be32(rec + 33, m->flags);
	store_put_be64(rec + 37, (uint64_t)m->internaldate);
	store_put_be64(rec + 45, m->size);
	store_put_be64(rec + 53, m->modseq);
	p = rec + MSG_FIXED;
	*p++ = (uint8_t)bl;
	memcpy(p, m->base, bl);
	p += bl;
	*p++ = (uint8_t)(kl >> 8);
	*p++ = (uint8_t)kl;
	memcpy(p, m->keywords, kl);
	p += kl;
	MDB_val k = {MSG_KEY_LEN, key}, v = {(size_t)(p - rec), rec};
	txn->touched = 1;
	return store_mdb_error(mdb_put(txn->txn, store_txn_dbi(txn, DB_MSGS), &k, &v, 0));
}

static size_t base_key(uint8_t *key, uint32_t mbid, const char *base)
{
	size_t bl = strlen(base);

	store_put_be32(key, mbid);
	memcpy(key + 4, base, bl);
	return 4 + bl;
}

static int base_valid(const char *base)
{
	size_t len = strlen(base);

	if (len == 0 || len >= STORE_BASE_MAX || base[0] == '.')
		return 0;
	for (const unsigned char *p = (const unsigned char *)base; *p; p++)
		if (*p < 0x21 || *p == 0x7f || *p == '/' || *p == ':')
			return 0;
	return 1;
}

static int keywords_valid(const char *kw)
{
	if (strlen(kw) >= STORE_KEYWORDS_MAX)
		return 0;
	for (const unsigned char *p = (const unsigned char *)kw; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

int store_msg_get(struct store_txn *txn, uint32_t mbid, uint32_t uid, struct store_msg *msg_r)
{
	uint8_t key[MSG_KEY_LEN];
	MDB_val k = {MSG_KEY_LEN, key}, v;
	int rc;

	msg_key(key, mbid, uid);
	rc = mdb_get(txn->txn, store_txn_dbi(txn, DB_MSGS), &k, &v);
	if (rc != 0)
		return store_mdb_error(rc);
	return store_msg_decode(&k, &v, msg_r);
}

int store_msg_get_by_base(struct store_txn *txn, uint32_t mbid, const char *base,
			  struct store_msg *msg_r)
{
	uint8_t key[4 + STORE_BASE_MAX];
	MDB_val k, v;
	int rc;

	if (!base_valid(base))
		return STORE_ENOTFOUND;
	k.mv_size = base_key(key, mbid, base);
	k.mv_data = key;
	rc = mdb_get(txn->txn, store_txn_dbi(txn, DB_MSGBASES), &k, &v);
	if (rc != 0)
		return store_mdb_error(rc);
	if (v.mv_size != 4)
		return STORE_ECORRUPT;
	rc = store_msg_get(txn, mbid, store_get_be32(v.mv_data), msg_r);
	return rc == STORE_ENOTFOUND ? STORE_ECORRUPT : rc;
}

int store_msg_meta(struct store_txn *txn, uint32_t mbid, uint32_t uid, char *meta_r)
{
	uint8_t key[MSG_KEY_LEN];
	MDB_val k = {MSG_KEY_LEN, key}, v;
	int rc;

	msg_key(key, mbid, uid);
	meta_r[0] = '\0';
	rc = mdb_get(txn->txn, store_txn_dbi(txn, DB_MSGMETA), &k, &v);
	if (rc == MDB_NOTFOUND) {
		struct store_msg m;
		return store_msg_get(txn, mbid, uid, &m);
	}
	if (rc != 0)
		return store_mdb_error(rc);
	if (v.mv_size >= STORE_META_MAX)
		return STORE_ECORRUPT;
	memcpy(meta_r, v.mv_data, v.mv_size);
	meta_r[v.mv_size] = '\0';
	return 0;
}

int store_msg_set_meta(struct store_txn *txn, uint32_t mbid, uint32_t uid, const char *meta)
{
	uint8_t key[MSG_KEY_LEN];
	MDB_val k = {MSG_KEY_LEN, key}, v;
	struct store_msg m;
	size_t len = meta ? strlen(meta) : 0;
	int rc;

	if (!txn->writable || len >= STORE_META_MAX)
		return STORE_EINVAL;
	if ((rc = store_msg_get(txn, mbid, uid, &m)) != 0)
		return rc;
	msg_key(key, mbid, uid);
	txn->touched = 1;
	if (len == 0) {
		rc = mdb_del(txn->txn, store_txn_dbi(txn, DB_MSGMETA), &k, NULL);
		return rc == MDB_NOTFOUND ? 0 : store_mdb_error(rc);
	}
	v.mv_size = len;
	v.mv_data = (void *)meta;
	return store_mdb_error(mdb_put(txn->txn, store_txn_dbi(txn, DB_MSGMETA), &k, &v, 0));
}

static void counters_add(struct store_mailbox *mb, const struct store_msg *m, int sign)
{
	mb->messages += sign;
	mb->bytes += sign * (int64_t)m->size;
	if (!(m->flags & STORE_F_SEEN))
		mb->unseen += sign;
	if (m->flags & STORE_F_RECENT)
		mb->recent += sign;
}

static int base_taken(struct store_txn *txn, uint32_t mbid, const char *base)
{
	uint8_t key[4 + STORE_BASE_MAX];
	MDB_val k = {base_key(key, mbid, base), key}, v;

	return mdb_get(txn->txn, store_txn_dbi(txn, DB_MSGBASES), &k, &v) == 0;
}

/* Adds a message record; m->mbid, base and keywords are set by the caller,
 * uid and modseq are assigned here. */
static int msg_insert(struct store_txn *txn, struct store_mailbox *mb, struct store_msg *m,
		      const char *meta)
{
	uint8_t key[4 + STORE_BASE_MAX], uidbuf[4];
	int rc;

	if (mb->uidnext == UINT32_MAX)
		return STORE_EFULL;
	m->mbid = mb->id;
	m->uid = mb->uidnext++;
	m->modseq = ++mb->highestmodseq;
	if (m->base[0] == '\0')
		snprintf(m->base, sizeof(m->base), "%lld.M%uU%u.mailkeep",
			 (long long)m->internaldate, mb->id, m->uid);
	counters_add(mb, m, 1);
	if ((rc = msg_put(txn, m)) != 0 || (rc = store_mailbox_put(txn, mb)) != 0 ||
	    (rc = store_blob_ref(txn, m->hash, 1)) != 0)
		return rc;
	MDB_val k = {base_key(key, mb->id, m->base), key}, v = {4, uidbuf};
	store_put_be32(uidbuf, m->uid);
	if ((rc = mdb_put(txn->txn, store_txn_dbi(txn, DB_MSGBASES), &k, &v, MDB_NOOVERWRITE)) != 0)
		return store_mdb_error(rc);
	if (meta != NULL && meta[0] != '\0')
		return store_msg_set_meta(txn, m->mbid, m->uid, meta);
	return 0;
}

int store_msg_add(struct store_txn *txn, uint32_t mbid, const struct store_msg_new *n,
		  struct store_msg *msg_r)
{
	struct store_mailbox mb;
	struct store_blob_info bi;
	struct store_msg m;
	int rc;

	if (!txn->writable)
		return STORE_EINVAL;
	if ((n->keywords && !keywords_valid(n->keywords)) || (n->base && !base_valid(n->base)) ||
	    (n->meta && strlen(n->meta) >= STORE_META_MAX))
		return STORE_EINVAL;
	if ((rc = store_mailbox_get_by_id(txn, mbid, &mb)) != 0)
		return rc;
	if ((rc = store_blob_info(txn, n->hash, &bi)) != 0)
		return rc;
	/* over quota: STORE_EQUOTA; 1 if a quota warning went into a mailbox */
	if (!n->no_quota && (rc = quota_admit(txn, mb.user_id, bi.size, 1)) != 0) {
		if (rc < 0 || (rc = store_mailbox_get_by_id(txn, mbid, &mb)) != 0)
			return rc;
	}
	memset(&m, 0, sizeof(m));
	memcpy(m.hash, n->hash, STORE_HASH_LEN);
	m.flags = n->flags;
	m.internaldate = n->internaldate ? n->internaldate : time(NULL);
	m.size = bi.size;
	if (n->keywords)
		memcpy(m.keywords, n->keywords, strlen(n->keywords) + 1);
	if (n->base) {
		if (base_taken(txn, mbid, n->base))
			return STORE_EEXIST;
		memcpy(m.base, n->base, strlen(n->base) + 1);
	}
	if ((rc = msg_insert(txn, &mb, &m, n->meta)) != 0)
		return rc;
	if (msg_r != NULL)
		*msg_r = m;
	return 0;
}

/* --- flags ---------------------------------------------------------------------------- */

static int kw_has(const char *list, const char *kw, size_t kl)
{
	const char *p = list;

	while (*p) {
		while (*p == ' ')
			p++;
		const char *e = p;
		while (*e && *e != ' ')
			e++;
		if ((size_t)(e - p) == kl && kl > 0 && strncasecmp(p, kw, kl) == 0)
			return 1;
		p = e;
	}
	return 0;
}

/* out = cur op kw, as space-separated sets (case-insensitive, as IMAP). */
static int kw_apply(const char *cur, enum store_flag_op op, const char *kw, char *out)
{
	char tmp[STORE_KEYWORDS_MAX * 2];
	size_t n = 0;
	const char *src = op == STORE_FLAGS_SET ? "" : cur;

	tmp[0] = '\0';
	/* Keep what stays of cur. */
	for (const char *p = src; *p;) {
		while (*p == ' ')
			p++;
		const char *e = p;
		while (*e && *e != ' ')
			e++;
		size_t l = e - p;
		if (l > 0 && !(op == STORE_FLAGS_REMOVE && kw_has(kw, p, l)) &&
		    !kw_has(tmp, p, l)) {
			if (n + l + 2 > sizeof(tmp))
				return STORE_EINVAL;
			if (n)
				tmp[n++] = ' ';
			memcpy(tmp + n, p, l);
			n += l;
			tmp[n] = '\0';
		}
		p = e;
	}
	if (op != STORE_FLAGS_REMOVE) {
		for (const char *p = kw; *p;) {
			while (*p == ' ')
				p++;
			const char *e = p;
			while (*e && *e != ' ')
				e++;
			size_t l = e - p;
			if (l > 0 && !kw_has(tmp, p, l)) {
				if (n + l + 2 > sizeof(tmp))
					return STORE_EINVAL;
				if (n)
					tmp[n++] = ' ';
				memcpy(tmp + n, p, l);
				n += l;
				tmp[n] = '\0';
			}
			p = e;
		}
	}
	if (n >= STORE_KEYWORDS_MAX)
		return STORE_EINVAL;
	memcpy(out, tmp, n + 1);
	return 0;
}

int store_msg_set_flags(struct store_txn *txn, uint32_t mbid, uint32_t uid, enum store_flag_op op,
			uint32_t flags, const char *keywords, uint64_t unchangedsince,
			struct store_msg *msg_r)
{
	struct store_mailbox mb;
	struct store_msg m, old;
	int rc;

	if (!txn->writable || (keywords && !keywords_valid(keywords)))
		return STORE_EINVAL;
	if ((rc = store_msg_get(txn, mbid, uid, &m)) != 0)
		return rc;
	if (unchangedsince != 0 && m.modseq > unchangedsince) {
		if (msg_r != NULL)
			*msg_r = m;
		return STORE_EMODIFIED;
	}
	old = m;
	switch (op) {
	case STORE_FLAGS_SET:
		m.flags = flags;
		break;
	case STORE_FLAGS_ADD:
		m.flags |= flags;
		break;
	case STORE_FLAGS_REMOVE:
		m.flags &= ~flags;
		break;
	}
	if (keywords != NULL || op == STORE_FLAGS_SET) {
		if ((rc = kw_apply(old.keywords, op, keywords ? keywords : "", m.keywords)) != 0)
			return rc;
	}
	if (m.flags != old.flags || strcmp(m.keywords, old.keywords) != 0) {
		if ((rc = store_mailbox_get_by_id(txn, mbid, &mb)) != 0)
			return rc;
		counters_add(&mb, &old, -1);
		counters_add(&mb, &m, 1);
		m.modseq = ++mb.highestmodseq;
		if ((rc = msg_put(txn, &m)) != 0 || (rc = store_mailbox_put(txn, &mb)) != 0)
			return rc;
	}
	if (msg_r != NULL)
		*msg_r = m;
	return 0;
}

int store_msg_set_internaldate(struct store_txn *txn, uint32_t mbid, uint32_t uid,
			       int64_t internaldate, struct store_msg *msg_r)
{
	struct store_mailbox mb;
	struct store_msg m;
	int rc;

	if (!txn->writable || internaldate <= 0)
		return STORE_EINVAL;
	if ((rc = store_msg_get(txn, mbid, uid, &m)) != 0)
		return rc;
	if (m.internaldate != internaldate) {
		if ((rc = store_mailbox_get_by_id(txn, mbid, &mb)) != 0)
			return rc;
		m.internaldate = internaldate;
		m.modseq = ++mb.highestmodseq;
		if ((rc = msg_put(txn, &m)) != 0 || (rc = store_mailbox_put(txn, &mb)) != 0)
			return rc;
	}
	if (msg_r != NULL)
		*msg_r = m;
	return 0;
}

/* --- expunge, copy, move ------------------------------------------------------------------ */

int store_msg_expunge(struct store_txn *txn, uint32_t mbid, uint32_t uid)
{
	struct store_mailbox mb;
	struct store_msg m;
	uint8_t key[4 + STORE_BASE_MAX], ekey[12], uidbuf[4];
	MDB_val k, v;
	int rc;

	if (!txn->writable)
		return STORE_EINVAL;
	if ((rc = store_msg_get(txn, mbid, uid, &m)) != 0 ||
	    (rc = store_mailbox_get_by_id(txn, mbid, &mb)) != 0)
		return rc;
	msg_key(key, mbid, uid);
	k.mv_size = MSG_KEY_LEN;
	k.mv_data = key;
	if ((rc = mdb_del(txn->txn, store_txn_dbi(txn, DB_MSGS), &k, NULL)) != 0)
		return store_mdb_error(rc);
	rc = mdb_del(txn->txn, store_txn_dbi(txn, DB_MSGMETA), &k, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_mdb_error(rc);
	k.mv_size = base_key(key, mbid, m.base);
	if ((rc = mdb_del(txn->txn, store_txn_dbi(txn, DB_MSGBASES), &k, NULL)) != 0)
		return rc == MDB_NOTFOUND ? STORE_ECORRUPT : store_mdb_error(rc);
	counters_add(&mb, &m, -1);
	mb.highestmodseq++;
	store_put_be32(ekey, mbid);
	store_put_be64(ekey + 4, mb.highestmodseq);
	store_put_be32(uidbuf, uid);
	k.mv_size = sizeof(ekey);
	k.mv_data = ekey;
	v.mv_size = 4;
	v.mv_data = uidbuf;
	if ((rc = mdb_put(txn->txn, store_txn_dbi(txn, DB_EXPUNGED), &k, &v, 0)) != 0)
		return store_mdb_error(rc);
	if ((rc = store_mailbox_put(txn, &mb)) != 0)
		return rc;
	return store_blob_ref(txn, m.hash, -1);
}

int store_msg_copy_impl(struct store_txn *txn, uint32_t mbid, uint32_t uid, uint32_t dst_mbid,
			int moving, struct store_msg *copy_r)
{
	struct store_mailbox src, dst;
	struct store_msg m;
	char meta[STORE_META_MAX];
	int rc;

	if (!txn->writable)
		return STORE_EINVAL;
	if ((rc = store_mailbox_get_by_id(txn, mbid, &src)) != 0 ||
	    (rc = store_msg_get(txn, mbid, uid, &m)) != 0)
		return rc;
	if ((rc = store_mailbox_get_by_id(txn, dst_mbid, &dst)) != 0)
		return rc;
	if ((rc = store_msg_meta(txn, mbid, uid, meta)) != 0)
		return rc;
	if (base_taken(txn, dst_mbid, m.base))
		m.base[0] = '\0';
	/* a copy adds to the user's use, a move does not */
	if (!moving && (rc = quota_admit(txn, dst.user_id, m.size, 1)) != 0) {
		if (rc < 0 || (rc = store_mailbox_get_by_id(txn, dst_mbid, &dst)) != 0)
			return rc;
	}
	if ((rc = msg_insert(txn, &dst, &m, meta)) != 0)
		return rc;
	struct store *s = txn->store;
	if (s->has_hooks && s->hooks.junk_moved != NULL && src.user_id == dst.user_id &&
	    ((src.special_use ^ dst.special_use) & STORE_SU_JUNK)) {
		rc = s->hooks.junk_moved(txn, dst.user_id, &m,
					 (dst.special_use & STORE_SU_JUNK) != 0, s->hooks.ctx);
		if (rc != 0)
			return rc < 0 ? rc : STORE_EIO;
	}
	if (moving && (rc = store_msg_expunge(txn, mbid, uid)) != 0)
		return rc;
	if (copy_r != NULL)
		*copy_r = m;
	return 0;
}

int store_msg_copy(struct store_txn *txn, uint32_t mbid, uint32_t uid, uint32_t dst_mbid,
		   struct store_msg *copy_r)
{
	return store_msg_copy_impl(txn, mbid, uid, dst_mbid, 0, copy_r);
}

int store_msg_move(struct store_txn *txn, uint32_t mbid, uint32_t uid, uint32_t dst_mbid,
		   struct store_msg *moved_r)
{
	if (mbid == dst_mbid)
		return STORE_EINVAL;
	return store_msg_copy_impl(txn, mbid, uid, dst_mbid, 1, moved_r);
}

/* --- iteration -------------------------------------------------------------------------------- */

struct store_cursor {
	MDB_cursor *cur;
	uint32_t mbid;
	uint32_t from;
	int started;
};

int store_msg_cursor_open(struct store_txn *txn, uint32_t mbid, uint32_t from_uid,
			  struct store_cursor **cur_r)
{
	struct store_cursor *c = xcalloc(1, sizeof(*c));
	int rc;

	rc = mdb_cursor_open(txn->txn, store_txn_dbi(txn, DB_MSGS), &c->cur);
	if (rc != 0) {
		free(c);
		return store_mdb_error(rc);
	}
	c->mbid = mbid;
	c->from = from_uid;
	*cur_r = c;
	return 0;
}

/* Moves the cursor to the mailbox's next record (the first at or after
 * c->from on the first call): 0, STORE_ENOTFOUND past the mailbox's last. */
static int cursor_step(struct store_cursor *c, MDB_val *k, MDB_val *v)
{
	uint8_t key[MSG_KEY_LEN];
	int rc;

	if (!c->started) {
		msg_key(key, c->mbid, c->from);
		k->mv_size = MSG_KEY_LEN;
		k->mv_data = key;
		rc = mdb_cursor_get(c->cur, k, v, MDB_SET_RANGE);
		c->started = 1;
	} else {
		rc = mdb_cursor_get(c->cur, k, v, MDB_NEXT);
	}
	if (rc != 0)
		return store_mdb_error(rc);
	if (k->mv_size != MSG_KEY_LEN || store_get_be32(k->mv_data) != c->mbid)
		return STORE_ENOTFOUND;
	return 0;
}

int store_msg_cursor_next(struct store_cursor *c, struct store_msg *msg_r)
{
	MDB_val k, v;
	int rc = cursor_step(c, &k, &v);

	return rc != 0 ? rc : store_msg_decode(&k, &v, msg_r);
}

int store_msg_cursor_next_since(struct store_cursor *c, uint64_t since, struct store_msg *msg_r,
				uint32_t *passed_r)
{
	MDB_val k, v;
	uint32_t passed = 0;
	int rc;

	for (;;) {
		if ((rc = cursor_step(c, &k, &v)) != 0)
			break;
		/* A record too short to hold a modseq is decoded (and refused) below. */
		if (v.mv_size >= MSG_FIXED && store_get_be64((uint8_t *)v.mv_data + 53) <= since) {
			passed++;
			continue;
		}
		rc = store_msg_decode(&k, &v, msg_r);
		break;
	}
	if (passed_r != NULL)
		*passed_r = passed;
	return rc;
}

void store_msg_cursor_close(struct store_cursor **cur)
{
	if (*cur == NULL)
		return;
	mdb_cursor_close((*cur)->cur);
	free(*cur);
	*cur = NULL;
}

int store_msg_foreach(struct store_txn *txn, uint32_t mbid,
		      int (*cb)(const struct store_msg *msg, void *ctx), void *ctx)
{
	struct store_cursor *c;
	struct store_msg m;
	int rc = store_msg_cursor_open(txn, mbid, 1, &c);

	if (rc != 0)
		return rc;
	while ((rc = store_msg_cursor_next(c, &m)) == 0)
		if (cb(&m, ctx) != 0)
			break;
	store_msg_cursor_close(&c);
	return rc == STORE_ENOTFOUND ? 0 : rc;
}

int store_expunged_since(struct store_txn *txn, uint32_t mbid, uint64_t since,
			 int (*cb)(uint32_t uid, uint64_t modseq, void *ctx), void *ctx)
{
	MDB_cursor *cur;
	uint8_t key[12];
	MDB_val k = {12, key}, v;
	int rc = mdb_cursor_open(txn->txn, store_txn_dbi(txn, DB_EXPUNGED), &cur);

	if (rc != 0)
		return store_mdb_error(rc);
	store_put_be32(key, mbid);
	store_put_be64(key + 4, since == UINT64_MAX ? since : since + 1);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 12 || store_get_be32(k.mv_data) != mbid || v.mv_size != 4)
			break;
		if (cb(store_get_be32(v.mv_data), store_get_be64((uint8_t *)k.mv_data + 4), ctx) !=
		    0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_mdb_error(rc);
}

/* --- delivery ------------------------------------------------------------------------------------
 */

struct deliver_ctx {
	const void *data;
	size_t len;
	int64_t internaldate;
	struct store_rcpt *rcpts;
	size_t n;
	int atomic;
	uint8_t hash[STORE_HASH_LEN];
};

static int deliver_one(struct store_txn *txn, struct deliver_ctx *d, struct store_rcpt *r)
{
	return store_deliver_rcpt(txn, d->hash, d->internaldate, r);
}

int store_deliver_rcpt(struct store_txn *txn, const uint8_t hash[STORE_HASH_LEN],
		       int64_t internaldate, struct store_rcpt *r)
{
	struct store_user u;
	struct store_mailbox mb;
	struct store_msg m;
	char meta[STORE_META_MAX];
	int rc;

	if ((rc = store_user_ensure(txn, r->user, &u)) != 0)
		return rc;
	if (r->mailbox != NULL) {
		rc = store_mailbox_get(txn, u.id, r->mailbox, &mb);
		if (rc == STORE_ENOTFOUND && r->create)
			rc = store_mailbox_create(txn, u.id, r->mailbox, 0, &mb);
	} else if (r->special_use != 0 && (rc = store_mailbox_find_special(
					       txn, u.id, r->special_use, &mb)) != STORE_ENOTFOUND)
		;
	else
		rc = store_mailbox_get(txn, u.id, "INBOX", &mb);
	if (rc != 0)
		return rc;
	snprintf(meta, sizeof(meta), "%s%s", r->meta ? r->meta : "", r->hook_meta);
	/* New mail is \Recent: new/ on the mount, RECENT to the first IMAP SELECT. */
	struct store_msg_new n = {.flags = r->flags | STORE_F_RECENT,
				  .keywords = r->keywords,
				  .internaldate = internaldate,
				  .meta = meta,
				  .no_quota = r->no_quota};
	memcpy(n.hash, hash, STORE_HASH_LEN);
	if ((rc = store_msg_add(txn, mb.id, &n, &m)) != 0)
		return rc;
	r->mbid = m.mbid;
	r->uid = m.uid;
	/* in the same transaction: the key exists exactly when the message does */
	return store_retry_record(txn, u.id, r, (int64_t)time(NULL));
}

/* 1 if r is a retry of a delivery stored for its user recently (index/retry.h). */
static int is_retry(struct store_txn *txn, struct store_rcpt *r)
{
	struct store_user u;
	int rc;

	if (r->retry_key == NULL || r->retry_window <= 0)
		return 0;
	rc = store_user_get(txn, r->user, &u);
	if (rc == STORE_ENOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	return store_retry_seen(txn, u.id, r, (int64_t)time(NULL));
}

static int deliver_fn(struct store_txn *txn, void *ctx)
{
	struct deliver_ctx *d = ctx;
	size_t ok = 0, fresh = 0;
	int rc;

	for (size_t i = 0; i < d->n; i++) {
		struct store_rcpt *r = &d->rcpts[i];
		r->mbid = r->uid = 0;
		r->duplicate = 0;
		r->age = 0;
		rc = is_retry(txn, r);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			r->duplicate = 1;
			r->result = 0;
			ok++;
		} else {
			fresh++;
		}
	}
	/* every recipient has it already: no new bytes (a blob nobody holds) */
	if (fresh == 0)
		return 0;
	rc = store_blob_put(txn, d->data, d->len, d->hash);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < d->n; i++) {
		struct store_rcpt *r = &d->rcpts[i];
		if (r->duplicate)
			continue;
		r->result = deliver_one(txn, d, r);
		/* No room or an I/O error: the whole delivery fails, nothing half-stored. */
		if (r->result == STORE_EFULL || r->result == STORE_EIO ||
		    r->result == STORE_ECORRUPT || (d->atomic && r->result != 0))
			return r->result;
		if (r->result == 0)
			ok++;
	}
	return ok > 0 ? 0 : STORE_ENOTFOUND;
}

void store_classify_rcpts(struct store *store, struct store_rcpt *rcpts, size_t n, const void *data,
			  size_t len)
{
	for (size_t i = 0; i < n; i++) {
		rcpts[i].result = STORE_EIO;
		if (rcpts[i].mailbox == NULL && !rcpts[i].classified && store->has_hooks &&
		    store->hooks.classify != NULL) {
			rcpts[i].special_use = 0;
			rcpts[i].hook_meta[0] = '\0';
			if (store->hooks.classify(store, &rcpts[i], data, len, store->hooks.ctx) !=
			    0) {
				rcpts[i].special_use = 0;
				rcpts[i].hook_meta[0] = '\0';
			}
		}
	}
}

static int deliver(struct store *store, const void *data, size_t len, int64_t internaldate,
		   struct store_rcpt *rcpts, size_t nrcpts, int atomic,
		   uint8_t hash_r[STORE_HASH_LEN])
{
	struct deliver_ctx d = {
	    data, len, internaldate ? internaldate : time(NULL), rcpts, nrcpts, atomic, {0}};
	int rc;

	if (nrcpts == 0)
		return STORE_EINVAL;
	if ((uint64_t)len > ((uint64_t)2 << 30))
		return STORE_ETOOBIG;
	store_classify_rcpts(store, rcpts, nrcpts, data, len);
	rc = store_write(store, deliver_fn, &d);
	if (rc != 0 && (atomic || rc != STORE_ENOTFOUND))
		for (size_t i = 0; i < nrcpts; i++)
			rcpts[i].result = rc;
	if (hash_r != NULL)
		memcpy(hash_r, d.hash, STORE_HASH_LEN);
	return rc;
}

int store_deliver(struct store *store, const void *data, size_t len, int64_t internaldate,
		  struct store_rcpt *rcpts, size_t nrcpts, uint8_t hash_r[STORE_HASH_LEN])
{
	return deliver(store, data, len, internaldate, rcpts, nrcpts, 0, hash_r);
}

int store_deliver_atomic(struct store *store, const void *data, size_t len, int64_t internaldate,
			 struct store_rcpt *rcpts, size_t nrcpts, uint8_t hash_r[STORE_HASH_LEN])
{
	return deliver(store, data, len, internaldate, rcpts, nrcpts, 1, hash_r);
}
