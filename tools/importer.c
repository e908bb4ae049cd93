/* importer — batched, duplicate-free adding of messages (see importer.h). */
#include <stdlib.h>
#include <string.h>

#include "lib/array.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "tools/cli.h"
#include "tools/importer.h"

/* hash -> count, open addressing */
struct hcount {
	struct hslot {
		uint8_t hash[STORE_HASH_LEN];
		uint32_t count; /* 0 = empty slot */
	} * slots;
	size_t cap, used;
};

static size_t hslot_index(const uint8_t *hash, size_t cap)
{
	uint64_t h;
	memcpy(&h, hash, sizeof(h));
	return (size_t)(h & (cap - 1));
}

static struct hslot *hcount_find(struct hcount *t, const uint8_t *hash, int create)
{
	if (t->cap == 0 || (create && (t->used + 1) * 2 > t->cap)) {
		struct hcount n = {.cap = t->cap ? t->cap * 2 : 1024};
		n.slots = xcalloc(n.cap, sizeof(*n.slots));
		for (size_t i = 0; i < t->cap; i++) {
			if (t->slots[i].count == 0)
				continue;
			size_t j = hslot_index(t->slots[i].hash, n.cap);
			while (n.slots[j].count != 0)
				j = (j + 1) & (n.cap - 1);
			n.slots[j] = t->slots[i];
			n.used++;
		}
		free(t->slots);
		*t = n;
	}
	for (size_t j = hslot_index(hash, t->cap);; j = (j + 1) & (t->cap - 1)) {
		if (t->slots[j].count == 0) {
			if (!create)
				return NULL;
			memcpy(t->slots[j].hash, hash, STORE_HASH_LEN);
			t->used++;
			return &t->slots[j];
		}
		if (memcmp(t->slots[j].hash, hash, STORE_HASH_LEN) == 0)
			return &t->slots[j];
	}
}

/* per mailbox: copies in the store (counted once at first use) and in the source so far */
struct imp_mailbox {
	char name[STORE_NAME_MAX + 1];
	struct hcount have;   /* copies per hash in the store, plus those queued */
	struct hcount source; /* copies per hash seen in the source so far */
};

struct imp_item {
	size_t mb;
	size_t off, len;
	uint32_t flags;
	int64_t internaldate;
	char base[STORE_BASE_MAX];
	char keywords[STORE_KEYWORDS_MAX];
	char *meta;
	char *origin;
	int result;
};

struct importer {
	struct store *store;
	uint32_t user_id;
	char user[STORE_NAME_MAX + 1];
	struct imp_mailbox *mbs;
	size_t nmbs;
	struct imp_item *items;
	size_t nitems, capitems;
	char *bytes;
	size_t nbytes, capbytes;
	size_t batch_msgs, batch_bytes;
	struct import_totals totals;
	importer_commit_fn *hook;
	void *hook_ctx;
	struct hcount user_hashes; /* every mailbox of the user, for importer_user_has */
	int user_hashes_loaded;
};

static int count_existing(const struct store_msg *msg, void *ctx)
{
	struct hcount *t = ctx;
	struct hslot *s = hcount_find(t, msg->hash, 1);
	s->count++;
	return 0;
}

static struct imp_mailbox *mailbox_for(struct importer *imp, const char *name, size_t *index_r)
{
	struct store_txn *txn = NULL;
	struct store_mailbox mb;
	struct imp_mailbox *m;
	int rc;

	for (size_t i = 0; i < imp->nmbs; i++) {
		if (strcmp(imp->mbs[i].name, name) == 0) {
			*index_r = i;
			return &imp->mbs[i];
		}
	}
	if (strlen(name) > STORE_NAME_MAX)
		return NULL;
	imp->mbs = xreallocarray(imp->mbs, imp->nmbs + 1, sizeof(*imp->mbs));
	m = &imp->mbs[imp->nmbs];
	memset(m, 0, sizeof(*m));
	mk_strlcpy(m->name, name, sizeof(m->name));
	if ((rc = store_read_begin(imp->store, &txn)) == 0) {
		if (store_mailbox_get(txn, imp->user_id, name, &mb) == 0)
			rc = store_msg_foreach(txn, mb.id, count_existing, &m->have);
		store_read_end(&txn);
	}
	if (rc != 0) {
		cli_error("cannot read mailbox %s of %s: %s", name, imp->user, store_strerror(rc));
		return NULL;
	}
	*index_r = imp->nmbs++;
	return m;
}

struct importer *importer_new(struct store *store, const char *user, size_t batch_msgs,
			      size_t batch_bytes)
{
	struct importer *imp = xcalloc(1, sizeof(*imp));
	struct store_txn *txn = NULL;
	struct store_user u;
	int rc;

	imp->store = store;
	imp->batch_msgs = batch_msgs ? batch_msgs : 1000;
	imp->batch_bytes = batch_bytes ? batch_bytes : 64 << 20;
	mk_strlcpy(imp->user, user, sizeof(imp->user));
	if ((rc = store_read_begin(store, &txn)) == 0) {
		rc = store_user_get(txn, user, &u);
		store_read_end(&txn);
	}
	if (rc == STORE_ENOTFOUND) {
		cli_error("no user '%s' in the store (add one with `mailkeep user add %s`)", user,
			  user);
		free(imp);
		return NULL;
	}
	if (rc != 0) {
		cli_error("cannot read the store: %s", store_strerror(rc));
		free(imp);
		return NULL;
	}
	imp->user_id = u.id;
	return imp;
}

static int write_batch(struct store_txn *txn, void *ctx)
{
	struct importer *imp = ctx;
	uint32_t *mbids = xcalloc(imp->nmbs, sizeof(*mbids));
	int rc = 0;

	for (size_t i = 0; i < imp->nitems; i++) {
		struct imp_item *it = &imp->items[i];
		struct store_mailbox mb;
		struct store_msg existing;
		struct store_msg_new nm = {0};

		if (mbids[it->mb] == 0) {
			rc = store_mailbox_get(txn, imp->user_id, imp->mbs[it->mb].name, &mb);
			if (rc == STORE_ENOTFOUND) {
				rc = store_mailbox_create(txn, imp->user_id, imp->mbs[it->mb].name,
							  0, &mb);
				if (rc == 0)
					imp->totals.mailboxes_created++;
			}
			if (rc != 0) {
				it->result = rc;
				if (rc == STORE_EINVAL) {
					rc = 0; /* a bad mailbox name fails its messages only */
					continue;
				}
				goto fail;
			}
			mbids[it->mb] = mb.id;
		}
		rc = store_blob_put(txn, imp->bytes + it->off, it->len, nm.hash);
		it->result = rc;
		if (rc == STORE_ETOOBIG || rc == STORE_EINVAL) {
			rc = 0; /* refused before anything was written: this message only */
			continue;
		}
		if (rc != 0)
			goto fail;
		nm.flags = it->flags;
		nm.keywords = it->keywords;
		nm.internaldate = it->internaldate;
		nm.meta = it->meta;
		if (it->base[0] != '\0' &&
		    store_msg_get_by_base(txn, mbids[it->mb], it->base, &existing) != 0)
			nm.base = it->base;
		/* a failure here would leave the blob without a reference: the whole
		 * batch is rolled back instead */
		rc = store_msg_add(txn, mbids[it->mb], &nm, NULL);
		it->result = rc;
		if (rc != 0)
			goto fail;
	}
	if (imp->hook != NULL)
		rc = imp->hook(txn, imp->user_id, imp->hook_ctx);
fail:
	free(mbids);
	return rc;
}

static void clear_batch(struct importer *imp)
{
	for (size_t i = 0; i < imp->nitems; i++) {
		free(imp->items[i].meta);
		free(imp->items[i].origin);
	}
	imp->nitems = 0;
	imp->nbytes = 0;
}

int importer_flush(struct importer *imp)
{
	uint64_t created = imp->totals.mailboxes_created;
	int rc;

	if (imp->nitems == 0)
		return 0;
	rc = store_write(imp->store, write_batch, imp);
	if (rc != 0) {
		imp->totals.mailboxes_created = created;
		cli_error("could not store %zu messages (%s): %s", imp->nitems,
			  imp->items[0].origin != NULL ? imp->items[0].origin : "",
			  cli_store_hint(rc));
		cli_disk_hint(store_dir(imp->store), rc);
		clear_batch(imp);
		return rc;
	}
	for (size_t i = 0; i < imp->nitems; i++) {
		struct imp_item *it = &imp->items[i];
		if (it->result == 0) {
			imp->totals.added++;
			imp->totals.added_bytes += it->len;
			continue;
		}
		imp->totals.failed++;
		if (it->result == STORE_ETOOBIG)
			cli_error("%s: %zu bytes is more than the store takes in one message: not "
				  "imported",
				  it->origin, it->len);
		else
			cli_error("%s: not imported into %s: %s", it->origin, imp->mbs[it->mb].name,
				  store_strerror(it->result));
	}
	clear_batch(imp);
	return 0;
}

int importer_add(struct importer *imp, const struct import_msg *m)
{
	uint8_t hash[STORE_HASH_LEN];
	struct imp_mailbox *mb;
	struct hslot *have, *src;
	struct imp_item *it;
	size_t mbi;
	int rc;

	imp->totals.seen++;
	imp->totals.seen_bytes += m->len;
	mb = mailbox_for(imp, m->mailbox, &mbi);
	if (mb == NULL) {
		imp->totals.failed++;
		cli_error("%s: mailbox name '%s' is not usable: not imported", m->origin,
			  m->mailbox);
		return 0;
	}
	store_hash(m->data, m->len, hash);
	src = hcount_find(&mb->source, hash, 1);
	src->count++;
	have = hcount_find(&mb->have, hash, 0);
	if (have != NULL && have->count >= src->count) {
		imp->totals.present++;
		return 0;
	}
	/* counted as present from now on; a failed batch ends the import anyway */
	if (have == NULL)
		have = hcount_find(&mb->have, hash, 1);
	if (m->force && have->count >= src->count)
		have->count++;
	else
		have->count = src->count;
	if (imp->user_hashes_loaded)
		hcount_find(&imp->user_hashes, hash, 1)->count++;

	if ((imp->nitems >= imp->batch_msgs || imp->nbytes + m->len > imp->batch_bytes) &&
	    (rc = importer_flush(imp)) != 0)
		return rc;
	ARRAY_RESERVE(imp->items, imp->capitems, imp->nitems + 1);
	if (imp->nbytes + m->len > imp->capbytes) {
		size_t cap = imp->capbytes ? imp->capbytes : 1 << 20;
		while (cap < imp->nbytes + m->len)
			cap *= 2;
		imp->bytes = xreallocarray(imp->bytes, cap, 1);
		imp->capbytes = cap;
	}
	it = &imp->items[imp->nitems++];
	memset(it, 0, sizeof(*it));
	it->mb = mbi;
	it->off = imp->nbytes;
	it->len = m->len;
	if (m->len > 0) /* bytes is still NULL before the first message with any */
		memcpy(imp->bytes + imp->nbytes, m->data, m->len);
	imp->nbytes += m->len;
	it->flags = m->flags;
	it->internaldate = m->internaldate;
	if (m->base != NULL)
		mk_strlcpy(it->base, m->base, sizeof(it->base));
	if (m->keywords != NULL)
		mk_strlcpy(it->keywords, m->keywords, sizeof(it->keywords));
	if (m->meta != NULL)
		it->meta = xstrdup(m->meta);
	it->origin = xstrdup(m->origin != NULL ? m->origin : "?");
	return 0;
}

void importer_set_commit_hook(struct importer *imp, importer_commit_fn *fn, void *ctx)
{
	imp->hook = fn;
	imp->hook_ctx = ctx;
}

static int write_hook_only(struct store_txn *txn, void *ctx)
{
	struct importer *imp = ctx;
	return imp->hook(txn, imp->user_id, imp->hook_ctx);
}

int importer_checkpoint(struct importer *imp)
{
	int rc;

	if (imp->nitems > 0)
		return importer_flush(imp);
	if (imp->hook == NULL)
		return 0;
	if ((rc = store_write(imp->store, write_hook_only, imp)) != 0) {
		cli_error("could not record how far the import got: %s", cli_store_hint(rc));
		cli_disk_hint(store_dir(imp->store), rc);
	}
	return rc;
}

struct user_walk {
	struct store_txn *txn;
	struct hcount *hashes;
};

static int count_user_mailbox(const struct store_mailbox *mb, void *ctx)
{
	struct user_walk *w = ctx;
	return store_msg_foreach(w->txn, mb->id, count_existing, w->hashes);
}

int importer_user_has(struct importer *imp, const uint8_t hash[STORE_HASH_LEN])
{
	if (!imp->user_hashes_loaded) {
		struct store_txn *txn = NULL;
		int rc = store_read_begin(imp->store, &txn);
		if (rc == 0) {
			struct user_walk w = {txn, &imp->user_hashes};
			rc = store_mailbox_foreach(txn, imp->user_id, count_user_mailbox, &w);
			store_read_end(&txn);
		}
		if (rc != 0)
			cli_warn("cannot read the mailboxes of %s: %s", imp->user,
				 store_strerror(rc));
		/* what is queued but not yet written counts too */
		for (size_t i = 0; i < imp->nitems; i++) {
			uint8_t h[STORE_HASH_LEN];
			store_hash(imp->bytes + imp->items[i].off, imp->items[i].len, h);
			hcount_find(&imp->user_hashes, h, 1)->count++;
		}
		imp->user_hashes_loaded = 1;
	}
	return hcount_find(&imp->user_hashes, hash, 0) != NULL;
}

uint32_t importer_user_id(const struct importer *imp)
{
	return imp->user_id;
}

const struct import_totals *importer_totals(const struct importer *imp)
{
	return &imp->totals;
}

void importer_free(struct importer **impp)
{
	struct importer *imp = *impp;

	if (imp == NULL)
		return;
	clear_batch(imp);
	for (size_t i = 0; i < imp->nmbs; i++) {
		free(imp->mbs[i].have.slots);
		free(imp->mbs[i].source.slots);
	}
	free(imp->mbs);
	free(imp->user_hashes.slots);
	free(imp->items);
	free(imp->bytes);
	free(imp);
	*impp = NULL;
}
