/* quota — per-user limits, use from the mailboxes' counters, warnings (see
 * index/quota.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "index/params.h"
#include "index/quota.h"
#include "index/store_internal.h"
#include "lib/util.h"
#include "lib/xmalloc.h"

struct quota_params {
#define PARAM(name, TYPE, def, min, max, doc) CONFIG_FIELD(name, TYPE)
#include "index/params_quota.def"
};
static const struct config_bind quota_binds[] = {
#define PARAM(name, TYPE, def, min, max, doc) CONFIG_BIND(struct quota_params, name, TYPE),
#include "index/params_quota.def"
    CONFIG_BIND_END,
};

#define MAX_WARN 4
static struct {
	struct quota_limits def;
	int tempfail;
	unsigned warn[MAX_WARN];
	size_t nwarn;
	char hostname[256];
} qs = {.tempfail = 1, .warn = {80, 95}, .nwarn = 2, .hostname = "localhost"};

int quota_attach(struct config *cfg, char *err, size_t errsize)
{
	struct quota_params p;
	memset(&p, 0, sizeof(p));
	config_bind(cfg, quota_binds, &p);
	qs.def.storage = p.quota_storage_limit;
	qs.def.messages = (uint64_t)p.quota_message_limit;
	qs.tempfail = p.quota_full_tempfail;
	qs.nwarn = 0;
	for (size_t i = 0; i < p.quota_warning_percent.n; i++) {
		uint64_t v;
		if (mk_parse_u64(p.quota_warning_percent.item[i], 1, 99, &v) < 0 ||
		    qs.nwarn >= MAX_WARN) {
			snprintf(
			    err, errsize,
			    "quota_warning_percent: \"%.32s\" is not a percentage from 1 to 99 "
			    "(at most %d of them)",
			    p.quota_warning_percent.item[i], MAX_WARN);
			config_unbind(quota_binds, &p);
			return -1;
		}
		qs.warn[qs.nwarn++] = (unsigned)v;
	}
	struct common_params c;
	memset(&c, 0, sizeof(c));
	common_params_bind(cfg, &c);
	if (c.myhostname != NULL)
		mk_strlcpy(qs.hostname, c.myhostname, sizeof(qs.hostname));
	common_params_unbind(&c);
	config_unbind(quota_binds, &p);
	return 0;
}

int quota_tempfail(void)
{
	return qs.tempfail;
}

/* --- the table ------------------------------------------------------------------ */

#define REC_LEN 18
struct rec {
	struct quota_limits own;
	unsigned has;
	unsigned warned;
};

static int rec_get(struct store_txn *txn, uint32_t user_id, struct rec *r)
{
	uint8_t key[4];
	store_put_be32(key, user_id);
	MDB_val k = {4, key}, v;
	memset(r, 0, sizeof(*r));
	int rc = mdb_get(store_txn_mdb(txn), store_txn_dbi(txn, DB_QUOTA), &k, &v);
	if (rc != 0)
		return store_mdb_error(rc);
	if (v.mv_size != REC_LEN)
		return STORE_ECORRUPT;
	const uint8_t *p = v.mv_data;
	r->own.storage = store_get_be64(p);
	r->own.messages = store_get_be64(p + 8);
	r->has = p[16];
	r->warned = p[17];
	return 0;
}

static int rec_put(struct store_txn *txn, uint32_t user_id, const struct rec *r)
{
	uint8_t key[4], val[REC_LEN];
	store_put_be32(key, user_id);
	store_put_be64(val, r->own.storage);
	store_put_be64(val + 8, r->own.messages);
	val[16] = (uint8_t)r->has;
	val[17] = (uint8_t)r->warned;
	MDB_val k = {4, key}, v = {REC_LEN, val};
	int rc = mdb_put(store_txn_mdb(txn), store_txn_dbi(txn, DB_QUOTA), &k, &v, 0);
	if (rc == 0)
		store_txn_touch(txn);
	return store_mdb_error(rc);
}

int quota_get_own(struct store_txn *txn, uint32_t user_id, struct quota_limits *own_r,
		  unsigned *has_r)
{
	struct rec r;
	int rc = rec_get(txn, user_id, &r);
	if (rc == 0 && r.has == 0)
		rc = STORE_ENOTFOUND;
	if (rc == 0) {
		*own_r = r.own;
		if (has_r)
			*has_r = r.has;
	}
	return rc;
}

int quota_set_own(struct store_txn *txn, uint32_t user_id, const struct quota_limits *own,
		  unsigned has)
{
	struct rec r;
	int rc = rec_get(txn, user_id, &r);
	if (rc != 0 && rc != STORE_ENOTFOUND)
		return rc;
	if (rc == 0 && r.own.storage == own->storage && r.own.messages == own->messages &&
	    r.has == has)
		return 0;
	r.own = *own;
	r.has = has & 3;
	if (!(r.has & 1))
		r.own.storage = 0;
	if (!(r.has & 2))
		r.own.messages = 0;
	r.warned = 0; /* a new limit: warn again when it is neared */
	return rec_put(txn, user_id, &r);
}

static void limits_of(const struct rec *r, struct quota_limits *lim)
{
	lim->storage = (r->has & 1) ? r->own.storage : qs.def.storage;
	lim->messages = (r->has & 2) ? r->own.messages : qs.def.messages;
}

int quota_limits(struct store_txn *txn, uint32_t user_id, struct quota_limits *lim_r)
{
	struct rec r;
	int rc = rec_get(txn, user_id, &r);
	if (rc != 0 && rc != STORE_ENOTFOUND)
		return rc;
	limits_of(&r, lim_r);
	return 0;
}

static int sum_cb(const struct store_mailbox *mb, void *ctx)
{
	struct quota_usage *u = ctx;
	u->bytes += mb->bytes;
	u->messages += mb->messages;
	return 0;
}

int quota_usage(struct store_txn *txn, uint32_t user_id, struct quota_usage *use_r)
{
	memset(use_r, 0, sizeof(*use_r));
	return store_mailbox_foreach(txn, user_id, sum_cb, use_r);
}

/* --- dedup ------------------------------------------------------------------------ */

struct dedup {
	struct store_txn *txn;
	uint8_t (*h)[STORE_HASH_LEN];
	uint64_t *sz;
	size_t n, cap;
};

static int dedup_msg(const struct store_msg *m, void *ctx)
{
	struct dedup *d = ctx;
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 256;
		d->h = xreallocarray(d->h, d->cap, STORE_HASH_LEN);
		d->sz = xreallocarray(d->sz, d->cap, sizeof(*d->sz));
	}
	memcpy(d->h[d->n], m->hash, STORE_HASH_LEN);
	d->sz[d->n++] = m->size;
	return 0;
}

static int dedup_mb(const struct store_mailbox *mb, void *ctx)
{
	struct dedup *d = ctx;
	return store_msg_foreach(d->txn, mb->id, dedup_msg, d);
}

static struct dedup *sort_ctx;
static int cmp_idx(const void *a, const void *b)
{
	return memcmp(sort_ctx->h[*(const size_t *)a], sort_ctx->h[*(const size_t *)b],
		      STORE_HASH_LEN);
}

int quota_dedup_bytes(struct store_txn *txn, uint32_t user_id, uint64_t *bytes_r)
{
	struct dedup d = {.txn = txn};
	int rc = store_mailbox_foreach(txn, user_id, dedup_mb, &d);
	*bytes_r = 0;
	if (rc == 0 && d.n > 0) {
		size_t *idx = xcalloc(d.n, sizeof(*idx));
		for (size_t i = 0; i < d.n; i++)
			idx[i] = i;
		sort_ctx = &d; /* only the CLI calls this, from one thread */
		qsort(idx, d.n, sizeof(*idx), cmp_idx);
		for (size_t i = 0; i < d.n; i++)
			if (i == 0 || memcmp(d.h[idx[i]], d.h[idx[i - 1]], STORE_HASH_LEN) != 0)
				*bytes_r += d.sz[idx[i]];
		free(idx);
	}
	free(d.h);
	free(d.sz);
	return rc;
}

/* --- admission ------------------------------------------------------------------------ */

static unsigned percent_of(uint64_t use, uint64_t limit)
{
	if (limit == 0)
		return 0;
	uint64_t p = use / limit * 100 + (use % limit) * 100 / limit;
	return p > 255 ? 255 : (unsigned)p;
}

static void human(uint64_t b, char *out, size_t size)
{
	if (b >= (uint64_t)1 << 30)
		snprintf(out, size, "%.1f GB", (double)b / (1 << 30));
	else if (b >= 1 << 20)
		snprintf(out, size, "%.1f MB", (double)b / (1 << 20));
	else
		snprintf(out, size, "%.0f KB", (double)b / 1024);
}

/* The warning message, in the same write as the message that crossed. */
static int add_warning(struct store_txn *txn, uint32_t user_id, unsigned level,
		       const struct quota_usage *u, const struct quota_limits *lim)
{
	struct store_mailbox inbox;
	struct store_user usr;
	char date[64], msgid[400], a[32], b[32], text[4096];
	time_t now = time(NULL);
	struct tm tm;
	int rc;

	if ((rc = store_user_get_by_id(txn, user_id, &usr)) != 0 ||
	    (rc = store_mailbox_get(txn, user_id, "INBOX", &inbox)) != 0)
		return rc;
	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	snprintf(msgid, sizeof(msgid), "<quota.%lld.%u.%u@%s>", (long long)now, user_id, level,
		 qs.hostname);
	human(u->bytes, a, sizeof(a));
	human(lim->storage, b, sizeof(b));
	int n = snprintf(text, sizeof(text),
			 "From: Mail system <MAILER-DAEMON@%s>\r\n"
			 "To: %s\r\n"
			 "Subject: Your mailbox is %u%% full\r\n"
			 "Date: %s\r\n"
			 "Message-ID: %s\r\n"
			 "Auto-Submitted: auto-generated\r\n"
			 "MIME-Version: 1.0\r\n"
			 "Content-Type: text/plain; charset=utf-8\r\n"
			 "\r\n"
			 "Your mail now uses %u%% of what you may keep.\r\n"
			 "\r\n",
			 qs.hostname, usr.name, level, date, msgid, level);
	if (lim->storage)
		n += snprintf(text + n, sizeof(text) - (size_t)n, "  Storage:  %s of %s\r\n", a, b);
	if (lim->messages)
		n += snprintf(text + n, sizeof(text) - (size_t)n, "  Messages: %llu of %llu\r\n",
			      (unsigned long long)u->messages, (unsigned long long)lim->messages);
	n += snprintf(
	    text + n, sizeof(text) - (size_t)n,
	    "\r\nWhen it is full, new mail is refused (%s). Delete old mail, or empty\r\n"
	    "Trash and Junk, to make room; `mailkeep user show %s` shows the numbers.\r\n",
	    qs.tempfail ? "senders retry for a few days" : "senders get it back", usr.name);
	struct store_msg_new m = {.flags = 0, .no_quota = 1};
	if ((rc = store_blob_put(txn, text, (size_t)n, m.hash)) != 0)
		return rc;
	m.flags = STORE_F_RECENT;
	return store_msg_add(txn, inbox.id, &m, NULL);
}

int quota_admit(struct store_txn *txn, uint32_t user_id, uint64_t bytes, uint32_t msgs)
{
	struct rec r;
	struct quota_limits lim;
	struct quota_usage u;
	int rc = rec_get(txn, user_id, &r);

	if (rc != 0 && rc != STORE_ENOTFOUND)
		return rc;
	limits_of(&r, &lim);
	if (lim.storage == 0 && lim.messages == 0)
		return 0;
	if ((rc = quota_usage(txn, user_id, &u)) != 0)
		return rc;
	if ((lim.storage && u.bytes + bytes > lim.storage) ||
	    (lim.messages && u.messages + msgs > lim.messages))
		return STORE_EQUOTA;
	u.bytes += bytes;
	u.messages += msgs;
	unsigned p = percent_of(u.bytes, lim.storage), pm = percent_of(u.messages, lim.messages);
	if (pm > p)
		p = pm;
	unsigned level = 0;
	for (size_t i = 0; i < qs.nwarn; i++)
		if (p >= qs.warn[i] && qs.warn[i] > level)
			level = qs.warn[i];
	if (level == r.warned)
		return 0;
	int wrote = 0;
	if (level > r.warned) {
		if ((rc = add_warning(txn, user_id, level, &u, &lim)) != 0)
			return rc;
		wrote = 1;
	}
	r.warned = level; /* below a level again: warn again when it is crossed */
	if ((rc = rec_put(txn, user_id, &r)) != 0)
		return rc;
	return wrote;
}

/* 0, or STORE_EQUOTA if the user is at a limit or bytes more would pass it. */
static int check_txn(struct store_txn *txn, uint32_t user_id, uint64_t bytes)
{
	struct quota_limits lim;
	struct quota_usage use;
	int rc = quota_limits(txn, user_id, &lim);
	if (rc != 0 || (lim.storage == 0 && lim.messages == 0))
		return rc;
	if ((rc = quota_usage(txn, user_id, &use)) != 0)
		return rc;
	if ((lim.storage && (use.bytes >= lim.storage || use.bytes + bytes > lim.storage)) ||
	    (lim.messages && use.messages >= lim.messages))
		return STORE_EQUOTA;
	return 0;
}

int quota_check(struct store *store, const char *user, uint64_t bytes)
{
	struct store_txn *txn = NULL;
	struct store_user u;
	int rc = store_read_begin(store, &txn);
	if (rc != 0)
		return rc;
	rc = store_user_get(txn, user, &u);
	if (rc == 0)
		rc = check_txn(txn, u.id, bytes);
	else if (rc == STORE_ENOTFOUND)
		rc = 0; /* a user without a record yet has nothing stored */
	store_read_end(&txn);
	return rc;
}

int quota_check_mailbox(struct store *store, uint32_t mbid, uint64_t bytes)
{
	struct store_txn *txn = NULL;
	struct store_mailbox mb;
	int rc = store_read_begin(store, &txn);
	if (rc != 0)
		return rc;
	rc = store_mailbox_get_by_id(txn, mbid, &mb);
	if (rc == 0)
		rc = check_txn(txn, mb.user_id, bytes);
	store_read_end(&txn);
	return rc;
}
