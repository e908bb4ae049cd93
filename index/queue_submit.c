/* queue_submit — one accepted message in one durable write: the bytes once
 * (a blob), a mailbox message per local recipient (as store_deliver: the
 * classify hook first, outside the transaction) and a queue entry for the
 * remote recipients. All or nothing, so that one SMTP reply can speak for
 * every recipient (index/queue.h). */
#include <string.h>
#include <time.h>

#include "index/queue.h"
#include "index/store_internal.h"
#include "lib/util.h"

struct submit_ctx {
	struct queue_submission *sub;
	char qid[QUEUE_ID_MAX];
	uint8_t hash[STORE_HASH_LEN];
};

static int submit_fn(struct store_txn *txn, void *ctx)
{
	struct submit_ctx *c = ctx;
	struct queue_submission *s = c->sub;
	int rc;

	if ((rc = store_blob_put(txn, s->data, s->len, c->hash)) != 0)
		return rc;
	for (size_t i = 0; i < s->nlocal; i++) {
		s->local[i].mbid = s->local[i].uid = 0;
		s->local[i].result = store_deliver_rcpt(txn, c->hash, s->now, &s->local[i]);
		if (s->local[i].result != 0)
			return s->local[i].result;
	}
	c->qid[0] = 0;
	if (s->nremote == 0)
		return 0;
	if (s->qid != NULL && s->qid[0] != 0 && strlen(s->qid) < QUEUE_ID_MAX) {
		mk_strlcpy(c->qid, s->qid, sizeof(c->qid));
		rc = queue_add(txn, c->qid, c->hash, s->from, s->remote, s->nremote, s->now,
			       &s->info);
		if (rc != STORE_EEXIST)
			return rc;
	}
	if ((rc = queue_new_id(txn, c->qid)) != 0)
		return rc;
	return queue_add(txn, c->qid, c->hash, s->from, s->remote, s->nremote, s->now, &s->info);
}

int queue_submit(struct store *store, struct queue_submission *sub, char qid_r[QUEUE_ID_MAX],
		 uint8_t hash_r[STORE_HASH_LEN])
{
	struct submit_ctx c;
	int rc;

	memset(&c, 0, sizeof(c));
	c.sub = sub;
	if (sub->nlocal + sub->nremote == 0 || (uint64_t)sub->len > ((uint64_t)2 << 30))
		return STORE_EINVAL;
	if (sub->now == 0)
		sub->now = (int64_t)time(NULL);
	store_classify_rcpts(store, sub->local, sub->nlocal, sub->data, sub->len);
	rc = store_write(store, submit_fn, &c);
	if (rc != 0) {
		for (size_t i = 0; i < sub->nlocal; i++)
			if (sub->local[i].result == 0)
				sub->local[i].result = rc;
		c.qid[0] = 0;
	} else {
		for (size_t i = 0; i < sub->nlocal; i++)
			sub->local[i].result = 0;
	}
	if (qid_r != NULL)
		mk_strlcpy(qid_r, c.qid, QUEUE_ID_MAX);
	if (hash_r != NULL)
		memcpy(hash_r, c.hash, STORE_HASH_LEN);
	return rc;
}
