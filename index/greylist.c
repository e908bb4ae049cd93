/* greylist — triplet greylisting in the store (DB_GREYLIST; the key layout
 * is in index/greylist.h). These writes never call store_txn_touch: they
 * change no mailbox, so IMAP and the mount are not woken. */
#include "index/greylist.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "index/store_internal.h"
#include "index/store_sweep.h"
#include "lib/util.h"

#define REC_LEN 20
#define KEY_MAX 80
#define RECENT 3600 /* a pass seen within this needs no write */

struct rec {
	int64_t first, last;
	uint32_t passes;
};

static void rec_put(uint8_t *p, const struct rec *r)
{
	store_put_be64(p, (uint64_t)r->first);
	store_put_be64(p + 8, (uint64_t)r->last);
	store_put_be32(p + 16, r->passes);
}

static int rec_get(const MDB_val *v, struct rec *r)
{
	if (v->mv_size != REC_LEN)
		return STORE_ECORRUPT;
	const uint8_t *p = v->mv_data;
	r->first = (int64_t)store_get_be64(p);
	r->last = (int64_t)store_get_be64(p + 8);
	r->passes = store_get_be32(p + 16);
	return 0;
}

int greylist_network(const char *addr, char *out, size_t outsize)
{
	unsigned char a[16];

	if (inet_pton(AF_INET, addr, a) == 1) {
		snprintf(out, outsize, "%u.%u.%u", a[0], a[1], a[2]);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, a) == 1) {
		snprintf(out, outsize, "%x:%x:%x:%x", a[0] << 8 | a[1], a[2] << 8 | a[3],
			 a[4] << 8 | a[5], a[6] << 8 | a[7]);
		return 0;
	}
	return -1;
}

struct gl_ctx {
	uint8_t tkey[1 + STORE_HASH_LEN];
	char ckey[KEY_MAX];
	size_t cklen;
	int64_t now;
	const struct greylist_params *p;
	enum greylist_verdict verdict;
	int64_t wait;
	int need_write;
};

static int lookup(MDB_txn *t, MDB_dbi dbi, const void *key, size_t klen, struct rec *r_out,
		  int *found_r)
{
	MDB_val k = {klen, (void *)key}, v;
	int rc = mdb_get(t, dbi, &k, &v);

	*found_r = 0;
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return store_mdb_error(rc);
	if (rec_get(&v, r_out) != 0)
		return 0; /* a broken record is treated as absent and rewritten */
	*found_r = 1;
	return 0;
}

static int put(MDB_txn *t, MDB_dbi dbi, const void *key, size_t klen, const struct rec *r)
{
	uint8_t buf[REC_LEN];
	MDB_val k = {klen, (void *)key}, v = {REC_LEN, buf};

	rec_put(buf, r);
	int rc = mdb_put(t, dbi, &k, &v, 0);
	return rc == 0 ? 0 : store_mdb_error(rc);
}

/* Decides, and writes when write is set. With write unset it only says
 * whether a write is needed (ctx->need_write) or the answer is known. */
static int decide(struct store_txn *txn, struct gl_ctx *c, int write)
{
	MDB_txn *t = store_txn_mdb(txn);
	MDB_dbi dbi = store_txn_dbi(txn, DB_GREYLIST);
	const struct greylist_params *p = c->p;
	struct rec tr = {0}, cr = {0};
	int tfound, cfound, rc;

	c->need_write = 0;
	if ((rc = lookup(t, dbi, c->ckey, c->cklen, &cr, &cfound)) != 0)
		return rc;
	if (cfound && c->now - cr.last > p->max_age)
		cfound = 0;
	if (cfound && p->auto_allow > 0 && cr.passes >= p->auto_allow) {
		c->verdict = GREYLIST_PASS;
		if (c->now - cr.last < RECENT)
			return 0;
		if (!write) {
			c->need_write = 1;
			return 0;
		}
		cr.last = c->now;
		return put(t, dbi, c->ckey, c->cklen, &cr);
	}
	if ((rc = lookup(t, dbi, c->tkey, sizeof(c->tkey), &tr, &tfound)) != 0)
		return rc;
	if (tfound && (c->now - tr.last > p->max_age ||
		       (tr.passes == 0 && c->now - tr.first > p->retry_window)))
		tfound = 0;
	if (tfound && tr.passes > 0 && c->now - tr.last < RECENT) {
		c->verdict = GREYLIST_PASS;
		return 0;
	}
	if (!write) {
		c->need_write = 1;
		return 0;
	}
	if (!tfound) {
		tr.first = tr.last = c->now;
		tr.passes = 0;
	}
	if (tr.passes == 0 && c->now - tr.first < p->delay) {
		c->verdict = GREYLIST_DEFER;
		c->wait = p->delay - (c->now - tr.first);
		if (!tfound)
			return put(t, dbi, c->tkey, sizeof(c->tkey), &tr);
		return 0;
	}
	c->verdict = GREYLIST_PASS;
	if (tr.passes == 0) {
		if (!cfound) {
			cr.first = c->now;
			cr.passes = 0;
		}
		cr.passes++;
		cr.last = c->now;
		if ((rc = put(t, dbi, c->ckey, c->cklen, &cr)) != 0)
			return rc;
	}
	tr.passes++;
	tr.last = c->now;
	return put(t, dbi, c->tkey, sizeof(c->tkey), &tr);
}

static int gl_write(struct store_txn *txn, void *ctx)
{
	return decide(txn, ctx, 1);
}

int greylist_check(struct store *store, const char *client_addr, const char *sender,
		   const char *rcpt, int64_t now, const struct greylist_params *p,
		   enum greylist_verdict *verdict_r, int64_t *wait_r)
{
	struct gl_ctx c = {.now = now, .p = p, .verdict = GREYLIST_PASS};
	char net[64], text[1200];
	struct store_txn *txn = NULL;
	int rc, n;

	*verdict_r = GREYLIST_PASS;
	*wait_r = 0;
	if (greylist_network(client_addr, net, sizeof(net)) < 0)
		mk_strlcpy(net, client_addr, sizeof(net));
	n = snprintf(text, sizeof(text), "%s%c%s%c%s", net, 0, sender, 0, rcpt);
	if (n < 0 || (size_t)n >= sizeof(text))
		return STORE_EINVAL;
	for (int i = 0; i < n; i++)
		if (text[i] >= 'A' && text[i] <= 'Z')
			text[i] = (char)(text[i] - 'A' + 'a');
	c.tkey[0] = 't';
	store_hash(text, (size_t)n, c.tkey + 1);
	c.cklen = (size_t)snprintf(c.ckey, sizeof(c.ckey), "c%s", net);

	rc = store_read_begin(store, &txn);
	if (rc != 0)
		return rc;
	rc = decide(txn, &c, 0);
	store_read_end(&txn);
	if (rc != 0)
		return rc;
	if (c.need_write) {
		rc = store_write(store, gl_write, &c);
		if (rc != 0)
			return rc;
	}
	*verdict_r = c.verdict;
	*wait_r = c.wait;
	return 0;
}

static int stale(const MDB_val *v, void *ctx)
{
	struct rec r;

	return rec_get(v, &r) != 0 || r.last < *(const int64_t *)ctx;
}

int greylist_expire(struct store *store, int64_t now, int64_t max_age)
{
	int64_t cutoff = now - max_age;

	return store_sweep(store, DB_GREYLIST, stale, &cutoff);
}
