/* queue — the outbound queue's tables (index/queue.h): message and recipient
 * records, the schedule, results, hold and delete, and the check fsck runs.
 *
 * Records are "key=value\n" text, as the messages' metadata are: readable
 * with mdb_dump, and a field added later is ignored by an older reader.
 * Values never hold a newline (addresses come from SMTP command lines; reply
 * texts are made printable before they are stored).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "index/queue.h"
#include "index/store_internal.h"
#include "lib/buf.h"
#include "lib/util.h"

#define QREC_MAX 4096

static MDB_dbi dbi(struct store_txn *txn, enum store_db db)
{
	return store_txn_dbi(txn, db);
}

/* --- records ---------------------------------------------------------------- */

/* Copies src into dst with anything that is not printable ASCII or UTF-8
 * lead/continuation bytes made '?', and no CR/LF. */
static void clean_copy(char *dst, size_t size, const char *src)
{
	size_t i = 0;

	if (src == NULL)
		src = "";
	for (; *src && i + 1 < size; src++) {
		unsigned char c = (unsigned char)*src;
		dst[i++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	dst[i] = 0;
}

/* Finds "key=" at the start of a line of rec; copies its value into out. */
static int field(const char *rec, size_t len, const char *key, char *out, size_t size)
{
	size_t kl = strlen(key);
	const char *p = rec, *end = rec + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		if ((size_t)(le - p) > kl && memcmp(p, key, kl) == 0 && p[kl] == '=') {
			size_t vl = (size_t)(le - p) - kl - 1;
			if (vl >= size)
				vl = size - 1;
			memcpy(out, p + kl + 1, vl);
			out[vl] = 0;
			return 0;
		}
		p = le + 1;
	}
	out[0] = 0;
	return -1;
}

static int64_t field_i64(const char *rec, size_t len, const char *key)
{
	char v[32];
	uint64_t u;

	if (field(rec, len, key, v, sizeof(v)) < 0)
		return 0;
	if (v[0] == '-')
		return 0;
	if (mk_parse_u64(v, 0, INT64_MAX, &u) < 0)
		return 0;
	return (int64_t)u;
}

static int msg_decode(const char *qid, size_t qidlen, const MDB_val *v, struct queue_msg *m)
{
	char hex[2 * STORE_HASH_LEN + 1];
	const char *rec = v->mv_data;
	size_t len = v->mv_size;

	memset(m, 0, sizeof(*m));
	if (qidlen >= QUEUE_ID_MAX)
		return STORE_ECORRUPT;
	memcpy(m->qid, qid, qidlen);
	m->qid[qidlen] = 0;
	if (field(rec, len, "hash", hex, sizeof(hex)) < 0 || strlen(hex) != 2 * STORE_HASH_LEN ||
	    mk_unhex(hex, m->hash, STORE_HASH_LEN) < 0)
		return STORE_ECORRUPT;
	m->size = (uint64_t)field_i64(rec, len, "size");
	m->arrival = field_i64(rec, len, "arrival");
	m->next_try = field_i64(rec, len, "next");
	m->last_try = field_i64(rec, len, "last");
	m->tries = (uint32_t)field_i64(rec, len, "tries");
	m->nrcpt = (uint32_t)field_i64(rec, len, "nrcpt");
	m->hold = field_i64(rec, len, "hold") != 0;
	m->warned = field_i64(rec, len, "warned") != 0;
	field(rec, len, "from", m->from, sizeof(m->from));
	field(rec, len, "client", m->client, sizeof(m->client));
	field(rec, len, "sasl", m->sasl_user, sizeof(m->sasl_user));
	field(rec, len, "kind", m->kind, sizeof(m->kind));
	return 0;
}

static int msg_put(struct store_txn *txn, const struct queue_msg *m)
{
	char hex[2 * STORE_HASH_LEN + 1];
	struct buf b;
	int rc;

	buf_init(&b, QREC_MAX);
	mk_hex(m->hash, STORE_HASH_LEN, hex);
	if (buf_printf(&b,
		       "hash=%s\nsize=%" PRIu64 "\narrival=%" PRId64 "\nnext=%" PRId64
		       "\nlast=%" PRId64 "\ntries=%u\nnrcpt=%u\nhold=%d\nwarned=%d\nfrom=%s\n"
		       "client=%s\nsasl=%s\nkind=%s\n",
		       hex, m->size, m->arrival, m->next_try, m->last_try, m->tries, m->nrcpt,
		       m->hold, m->warned, m->from, m->client, m->sasl_user, m->kind) < 0) {
		buf_free(&b);
		return STORE_EINVAL;
	}
	MDB_val k = {strlen(m->qid), (void *)m->qid}, v = {b.len, b.data};
	rc = mdb_put(store_txn_mdb(txn), dbi(txn, DB_QMSG), &k, &v, 0);
	buf_free(&b);
	store_txn_touch(txn);
	return store_mdb_error(rc);
}

static size_t rcpt_key(uint8_t *key, const char *qid, uint32_t idx)
{
	size_t n = strlen(qid);

	memcpy(key, qid, n);
	key[n] = 0;
	store_put_be32(key + n + 1, idx);
	return n + 5;
}

static int rcpt_decode(const MDB_val *k, const MDB_val *v, struct queue_rcpt *r)
{
	const char *rec = v->mv_data;
	size_t len = v->mv_size;

	memset(r, 0, sizeof(*r));
	if (k->mv_size < 5)
		return STORE_ECORRUPT;
	r->idx = store_get_be32((const uint8_t *)k->mv_data + k->mv_size - 4);
	if (field(rec, len, "to", r->addr, sizeof(r->addr)) < 0)
		return STORE_ECORRUPT;
	r->state = (int)field_i64(rec, len, "state");
	field(rec, len, "dsn", r->dsn, sizeof(r->dsn));
	field(rec, len, "why", r->why, sizeof(r->why));
	field(rec, len, "relay", r->relay, sizeof(r->relay));
	return 0;
}

static int rcpt_put(struct store_txn *txn, const char *qid, const struct queue_rcpt *r)
{
	uint8_t key[QUEUE_ID_MAX + 5];
	struct buf b;
	int rc;

	buf_init(&b, QREC_MAX);
	if (buf_printf(&b, "to=%s\nstate=%d\ndsn=%s\nwhy=%s\nrelay=%s\n", r->addr, r->state, r->dsn,
		       r->why, r->relay) < 0) {
		buf_free(&b);
		return STORE_EINVAL;
	}
	MDB_val k = {rcpt_key(key, qid, r->idx), key}, v = {b.len, b.data};
	rc = mdb_put(store_txn_mdb(txn), dbi(txn, DB_QRCPT), &k, &v, 0);
	buf_free(&b);
	store_txn_touch(txn);
	return store_mdb_error(rc);
}

static int sched_op(struct store_txn *txn, const char *qid, int64_t when, int add)
{
	uint8_t key[8 + QUEUE_ID_MAX];
	size_t n = strlen(qid);
	MDB_val k = {8 + n, key}, v = {0, (void *)""};
	int rc;

	store_put_be64(key, (uint64_t)when);
	memcpy(key + 8, qid, n);
	store_txn_touch(txn);
	if (add)
		rc = mdb_put(store_txn_mdb(txn), dbi(txn, DB_QSCHED), &k, &v, 0);
	else
		rc = mdb_del(store_txn_mdb(txn), dbi(txn, DB_QSCHED), &k, NULL);
	return rc == MDB_NOTFOUND && !add ? 0 : store_mdb_error(rc);
}

static int qid_valid(const char *qid)
{
	size_t n = qid ? strlen(qid) : 0;

	if (n == 0 || n >= QUEUE_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((qid[i] >= '0' && qid[i] <= '9') || (qid[i] >= 'A' && qid[i] <= 'Z') ||
		      (qid[i] >= 'a' && qid[i] <= 'z')))
			return 0;
	return 1;
}

/* --- reading ------------------------------------------------------------------ */

int queue_get(struct store_txn *txn, const char *qid, struct queue_msg *msg_r)
{
	MDB_val k, v;
	int rc;

	if (!qid_valid(qid))
		return STORE_ENOTFOUND;
	k.mv_size = strlen(qid);
	k.mv_data = (void *)qid;
	if ((rc = mdb_get(store_txn_mdb(txn), dbi(txn, DB_QMSG), &k, &v)) != 0)
		return store_mdb_error(rc);
	return msg_decode(qid, k.mv_size, &v, msg_r);
}

int queue_rcpt_get(struct store_txn *txn, const char *qid, uint32_t idx, struct queue_rcpt *r_r)
{
	uint8_t key[QUEUE_ID_MAX + 5];
	MDB_val k, v;
	int rc;

	if (!qid_valid(qid))
		return STORE_ENOTFOUND;
	k.mv_size = rcpt_key(key, qid, idx);
	k.mv_data = key;
	if ((rc = mdb_get(store_txn_mdb(txn), dbi(txn, DB_QRCPT), &k, &v)) != 0)
		return store_mdb_error(rc);
	return rcpt_decode(&k, &v, r_r);
}

int queue_rcpt_foreach(struct store_txn *txn, const char *qid,
		       int (*cb)(const struct queue_rcpt *r, void *ctx), void *ctx)
{
	uint8_t prefix[QUEUE_ID_MAX + 1];
	size_t n;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, ret = 0;

	if (!qid_valid(qid))
		return STORE_ENOTFOUND;
	n = strlen(qid);
	memcpy(prefix, qid, n);
	prefix[n++] = 0;
	if ((rc = mdb_cursor_open(store_txn_mdb(txn), dbi(txn, DB_QRCPT), &cur)) != 0)
		return store_mdb_error(rc);
	k.mv_size = n;
	k.mv_data = prefix;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct queue_rcpt r;
		if (k.mv_size != n + 4 || memcmp(k.mv_data, prefix, n) != 0)
			break;
		if (rcpt_decode(&k, &v, &r) != 0) {
			ret = STORE_ECORRUPT;
			break;
		}
		if ((ret = cb(&r, ctx)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (ret != 0)
		return ret;
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_mdb_error(rc);
}

int queue_foreach(struct store_txn *txn, int (*cb)(const struct queue_msg *m, void *ctx), void *ctx)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, ret = 0;

	if ((rc = mdb_cursor_open(store_txn_mdb(txn), dbi(txn, DB_QMSG), &cur)) != 0)
		return store_mdb_error(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct queue_msg m;
		if (msg_decode(k.mv_data, k.mv_size, &v, &m) != 0)
			continue;
		if ((ret = cb(&m, ctx)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (ret != 0)
		return ret;
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_mdb_error(rc);
}

int queue_due(struct store_txn *txn, int64_t now, size_t limit,
	      int (*cb)(const char *qid, int64_t next_try, void *ctx), void *ctx)
{
	MDB_cursor *cur;
	MDB_val k, v;
	size_t seen = 0;
	int rc, ret = 0;

	if ((rc = mdb_cursor_open(store_txn_mdb(txn), dbi(txn, DB_QSCHED), &cur)) != 0)
		return store_mdb_error(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		char qid[QUEUE_ID_MAX];
		if (k.mv_size <= 8 || k.mv_size - 8 >= QUEUE_ID_MAX)
			continue;
		int64_t when = (int64_t)store_get_be64(k.mv_data);
		if (when > now)
			break;
		memcpy(qid, (char *)k.mv_data + 8, k.mv_size - 8);
		qid[k.mv_size - 8] = 0;
		if ((ret = cb(qid, when, ctx)) != 0)
			break;
		if (limit && ++seen >= limit)
			break;
	}
	mdb_cursor_close(cur);
	if (ret != 0)
		return ret;
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_mdb_error(rc);
}

int queue_next_due(struct store_txn *txn, int64_t *when_r)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(store_txn_mdb(txn), dbi(txn, DB_QSCHED), &cur)) != 0)
		return store_mdb_error(rc);
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	if (rc == 0 && k.mv_size > 8)
		*when_r = (int64_t)store_get_be64(k.mv_data);
	mdb_cursor_close(cur);
	return store_mdb_error(rc);
}

static int count_cb(const struct queue_msg *m, void *ctx)
{
	uint64_t *c = ctx;

	c[0]++;
	c[1] += m->nrcpt;
	if (m->hold)
		c[2]++;
	return 0;
}

int queue_count(struct store_txn *txn, uint64_t *msgs_r, uint64_t *rcpts_r, uint64_t *held_r)
{
	uint64_t c[3] = {0, 0, 0};
	int rc = queue_foreach(txn, count_cb, c);

	*msgs_r = c[0];
	*rcpts_r = c[1];
	*held_r = c[2];
	return rc;
}

/* --- changes ------------------------------------------------------------------- */

int queue_new_id(struct store_txn *txn, char qid_r[QUEUE_ID_MAX])
{
	for (int i = 0; i < 100; i++) {
		MDB_val k, v;
		mk_queue_id(qid_r, QUEUE_ID_MAX);
		k.mv_size = strlen(qid_r);
		k.mv_data = qid_r;
		int rc = mdb_get(store_txn_mdb(txn), dbi(txn, DB_QMSG), &k, &v);
		if (rc == MDB_NOTFOUND)
			return 0;
		if (rc != 0)
			return store_mdb_error(rc);
	}
	return STORE_EEXIST;
}

int queue_add(struct store_txn *txn, const char *qid, const uint8_t hash[STORE_HASH_LEN],
	      const char *from, const char *const *rcpts, size_t nrcpts, int64_t now,
	      const struct queue_add_info *info)
{
	struct queue_msg m;
	struct store_blob_info bi;
	MDB_val k, v;
	int rc;

	if (!store_txn_writable(txn) || !qid_valid(qid) || nrcpts == 0 || nrcpts > QUEUE_RCPT_MAX)
		return STORE_EINVAL;
	k.mv_size = strlen(qid);
	k.mv_data = (void *)qid;
	rc = mdb_get(store_txn_mdb(txn), dbi(txn, DB_QMSG), &k, &v);
	if (rc == 0)
		return STORE_EEXIST;
	if (rc != MDB_NOTFOUND)
		return store_mdb_error(rc);
	if ((rc = store_blob_info(txn, hash, &bi)) != 0)
		return rc == STORE_ENOTFOUND ? STORE_EINVAL : rc;
	memset(&m, 0, sizeof(m));
	mk_strlcpy(m.qid, qid, sizeof(m.qid));
	memcpy(m.hash, hash, STORE_HASH_LEN);
	m.size = bi.size;
	m.arrival = now;
	m.nrcpt = (uint32_t)nrcpts;
	m.hold = info && info->hold;
	m.next_try = m.hold ? 0 : now;
	clean_copy(m.from, sizeof(m.from), from);
	clean_copy(m.client, sizeof(m.client), info && info->client ? info->client : "local");
	clean_copy(m.sasl_user, sizeof(m.sasl_user), info ? info->sasl_user : NULL);
	clean_copy(m.kind, sizeof(m.kind), info ? info->kind : NULL);
	for (size_t i = 0; i < nrcpts; i++) {
		struct queue_rcpt r;
		memset(&r, 0, sizeof(r));
		r.idx = (uint32_t)i;
		clean_copy(r.addr, sizeof(r.addr), rcpts[i]);
		if (r.addr[0] == 0)
			return STORE_EINVAL;
		if ((rc = rcpt_put(txn, qid, &r)) != 0)
			return rc;
	}
	if ((rc = msg_put(txn, &m)) != 0 || (rc = store_blob_ref(txn, hash, 1)) != 0)
		return rc;
	if (!m.hold && (rc = sched_op(txn, qid, m.next_try, 1)) != 0)
		return rc;
	return 0;
}

int queue_rcpt_result(struct store_txn *txn, const char *qid, uint32_t idx,
		      enum queue_result result, const char *dsn, const char *why, const char *relay)
{
	struct queue_rcpt r;
	uint8_t key[QUEUE_ID_MAX + 5];
	int rc;

	if (!store_txn_writable(txn))
		return STORE_EINVAL;
	if ((rc = queue_rcpt_get(txn, qid, idx, &r)) != 0)
		return rc;
	if (result == QUEUE_SENT) {
		struct queue_msg m;
		MDB_val k = {rcpt_key(key, qid, idx), key};
		if ((rc = mdb_del(store_txn_mdb(txn), dbi(txn, DB_QRCPT), &k, NULL)) != 0)
			return store_mdb_error(rc);
		store_txn_touch(txn);
		if ((rc = queue_get(txn, qid, &m)) != 0)
			return rc;
		if (m.nrcpt > 0)
			m.nrcpt--;
		return msg_put(txn, &m);
	}
	r.state = result == QUEUE_FAILED ? QUEUE_BOUNCED : QUEUE_PENDING;
	clean_copy(r.dsn, sizeof(r.dsn), dsn);
	clean_copy(r.why, sizeof(r.why), why);
	clean_copy(r.relay, sizeof(r.relay), relay);
	return rcpt_put(txn, qid, &r);
}

int queue_deliver_local(struct store_txn *txn, const char *qid, uint32_t idx, const char *user,
			const char *meta, int64_t now)
{
	struct queue_msg m;
	struct store_rcpt r;
	int rc;

	if ((rc = queue_get(txn, qid, &m)) != 0)
		return rc;
	memset(&r, 0, sizeof(r));
	r.user = user;
	r.meta = meta;
	if ((rc = store_deliver_rcpt(txn, m.hash, now, &r)) != 0)
		return rc;
	return queue_rcpt_result(txn, qid, idx, QUEUE_SENT, NULL, NULL, NULL);
}

int queue_update(struct store_txn *txn, const struct queue_msg *msg)
{
	struct queue_msg old;
	int rc;

	if (!store_txn_writable(txn))
		return STORE_EINVAL;
	if ((rc = queue_get(txn, msg->qid, &old)) != 0)
		return rc;
	if (!old.hold && (rc = sched_op(txn, old.qid, old.next_try, 0)) != 0)
		return rc;
	struct queue_msg m = *msg;
	m.nrcpt = old.nrcpt;
	memcpy(m.hash, old.hash, STORE_HASH_LEN);
	if (m.hold)
		m.next_try = 0;
	if ((rc = msg_put(txn, &m)) != 0)
		return rc;
	if (!m.hold && (rc = sched_op(txn, m.qid, m.next_try, 1)) != 0)
		return rc;
	return 0;
}

int queue_delete(struct store_txn *txn, const char *qid)
{
	struct queue_msg m;
	uint8_t prefix[QUEUE_ID_MAX + 1];
	size_t n;
	int rc;

	if (!store_txn_writable(txn))
		return STORE_EINVAL;
	if ((rc = queue_get(txn, qid, &m)) != 0)
		return rc;
	if (!m.hold && (rc = sched_op(txn, qid, m.next_try, 0)) != 0)
		return rc;
	n = strlen(qid);
	memcpy(prefix, qid, n);
	prefix[n++] = 0;
	/* the recipients: keys qid NUL idx; the prefix with its NUL matches only them */
	MDB_cursor *cur;
	MDB_val k, v;
	if ((rc = mdb_cursor_open(store_txn_mdb(txn), dbi(txn, DB_QRCPT), &cur)) != 0)
		return store_mdb_error(rc);
	for (;;) {
		k.mv_size = n;
		k.mv_data = prefix;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc != 0 || k.mv_size != n + 4 || memcmp(k.mv_data, prefix, n) != 0)
			break;
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_mdb_error(rc);
	k.mv_size = strlen(qid);
	k.mv_data = (void *)qid;
	if ((rc = mdb_del(store_txn_mdb(txn), dbi(txn, DB_QMSG), &k, NULL)) != 0)
		return store_mdb_error(rc);
	store_txn_touch(txn);
	return store_blob_ref(txn, m.hash, -1);
}

int queue_hold(struct store_txn *txn, const char *qid, int hold)
{
	struct queue_msg m;
	int rc;

	if ((rc = queue_get(txn, qid, &m)) != 0)
		return rc;
	if (m.hold == (hold != 0))
		return 0;
	m.hold = hold != 0;
	if (!m.hold)
		m.next_try = (int64_t)time(NULL);
	return queue_update(txn, &m);
}

struct flush_ctx {
	struct store_txn *txn;
	int64_t now;
	int rc;
};

static int flush_cb(const struct queue_msg *m, void *ctx)
{
	struct flush_ctx *f = ctx;

	if (m->hold || m->next_try <= f->now)
		return 0;
	struct queue_msg c = *m;
	c.next_try = f->now;
	if ((f->rc = queue_update(f->txn, &c)) != 0)
		return 1;
	return 0;
}

int queue_flush(struct store_txn *txn, const char *qid, int64_t now)
{
	struct flush_ctx f = {txn, now, 0};
	struct queue_msg m;
	int rc;

	if (!store_txn_writable(txn))
		return STORE_EINVAL;
	if (qid != NULL && qid[0] != 0) {
		if ((rc = queue_get(txn, qid, &m)) != 0)
			return rc;
		return flush_cb(&m, &f) ? f.rc : 0;
	}
	/* queue_update changes DB_QSCHED, not DB_QMSG's keys: the walk is safe */
	rc = queue_foreach(txn, flush_cb, &f);
	return f.rc ? f.rc : rc;
}

/* --- fsck ------------------------------------------------------------------------ */

struct check_ctx {
	struct store_txn *txn;
	void (*ref)(const uint8_t hash[STORE_HASH_LEN], void *ctx);
	void (*problem)(const char *what, void *ctx);
	void *ctx;
	uint32_t n;
};

static int check_rcpt(const struct queue_rcpt *r, void *ctx)
{
	struct check_ctx *c = ctx;

	(void)r;
	c->n++;
	return 0;
}

static int check_msg(const struct queue_msg *m, void *ctx)
{
	struct check_ctx *c = ctx;
	struct store_blob_info bi;
	char buf[256];

	c->ref(m->hash, c->ctx);
	if (store_blob_info(c->txn, m->hash, &bi) != 0) {
		snprintf(buf, sizeof(buf), "queue %s: its blob is missing", m->qid);
		c->problem(buf, c->ctx);
	}
	c->n = 0;
	queue_rcpt_foreach(c->txn, m->qid, check_rcpt, c);
	if (c->n != m->nrcpt) {
		snprintf(buf, sizeof(buf), "queue %s: %u recipients recorded, %u found", m->qid,
			 m->nrcpt, c->n);
		c->problem(buf, c->ctx);
	}
	if (c->n == 0) {
		snprintf(buf, sizeof(buf), "queue %s: no recipient left", m->qid);
		c->problem(buf, c->ctx);
	}
	if (!m->hold) {
		uint8_t key[8 + QUEUE_ID_MAX];
		size_t n = strlen(m->qid);
		MDB_val k = {8 + n, key}, v;
		store_put_be64(key, (uint64_t)m->next_try);
		memcpy(key + 8, m->qid, n);
		if (mdb_get(store_txn_mdb(c->txn), dbi(c->txn, DB_QSCHED), &k, &v) != 0) {
			snprintf(buf, sizeof(buf), "queue %s: not in the schedule", m->qid);
			c->problem(buf, c->ctx);
		}
	}
	return 0;
}

int queue_check(struct store_txn *txn, void (*ref)(const uint8_t hash[STORE_HASH_LEN], void *ctx),
		void (*problem)(const char *what, void *ctx), void *ctx)
{
	struct check_ctx c = {txn, ref, problem, ctx, 0};
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = queue_foreach(txn, check_msg, &c);

	if (rc != 0)
		return rc;
	/* schedule entries and recipients of messages that are gone */
	if ((rc = mdb_cursor_open(store_txn_mdb(txn), dbi(txn, DB_QSCHED), &cur)) != 0)
		return store_mdb_error(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		char qid[QUEUE_ID_MAX], buf[128];
		struct queue_msg m;
		if (k.mv_size <= 8 || k.mv_size - 8 >= QUEUE_ID_MAX) {
			problem("queue schedule entry cannot be decoded", ctx);
			continue;
		}
		memcpy(qid, (char *)k.mv_data + 8, k.mv_size - 8);
		qid[k.mv_size - 8] = 0;
		if (queue_get(txn, qid, &m) != 0 ||
		    m.next_try != (int64_t)store_get_be64(k.mv_data) || m.hold) {
			snprintf(buf, sizeof(buf), "queue schedule entry for %s is stale", qid);
			problem(buf, ctx);
		}
	}
	mdb_cursor_close(cur);
	if ((rc = mdb_cursor_open(store_txn_mdb(txn), dbi(txn, DB_QRCPT), &cur)) != 0)
		return store_mdb_error(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		char qid[QUEUE_ID_MAX], buf[128];
		struct queue_msg m;
		size_t n = k.mv_size >= 5 ? k.mv_size - 5 : 0;
		if (n == 0 || n >= QUEUE_ID_MAX) {
			problem("queue recipient record cannot be decoded", ctx);
			continue;
		}
		memcpy(qid, k.mv_data, n);
		qid[n] = 0;
		if (queue_get(txn, qid, &m) != 0) {
			snprintf(buf, sizeof(buf), "queue recipient of missing message %s", qid);
			problem(buf, ctx);
		}
	}
	mdb_cursor_close(cur);
	return 0;
}
