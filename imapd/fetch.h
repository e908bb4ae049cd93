/* fetch — helpers shared by FETCH and SEARCH: MIME text (ENVELOPE, BODY,
 * BODYSTRUCTURE) from the store's cache by blob hash, computed on a miss and
 * written back in one store_write after the command. */
#ifndef MK_IMAP_FETCH_H
#define MK_IMAP_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "index/store.h"

struct fetch_seen {
	uint32_t mbid;
	uint32_t *uids;
	size_t n;
};

struct fetch_cache_entry {
	uint8_t hash[STORE_HASH_LEN];
	char *env, *body, *bs;
	size_t envlen, bodylen, bslen;
};

/* Entries computed during one command, written by fetch_cache_flush. */
struct fetch_cache {
	struct fetch_cache_entry *e;
	size_t n, cap;
};

struct fetch_mime_text {
	const char *env, *body, *bs; /* valid until the transaction ends / pending is freed */
	size_t envlen, bodylen, bslen;
};

int fetch_mime(struct store_txn *txn, const struct store_msg *m, struct fetch_cache *pending,
	       struct fetch_mime_text *t);
/* Writes the pending entries into the store's cache (one durable write) and frees them. */
int fetch_cache_flush(struct store *store, struct fetch_cache *pending);
void fetch_cache_free(struct fetch_cache *c);

#endif
