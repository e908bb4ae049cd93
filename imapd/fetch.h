/* fetch — what FETCH and SEARCH derive from a message's bytes (ENVELOPE, BODY,
 * BODYSTRUCTURE, and the decoded header fields SEARCH matches), kept in the
 * store's cache by blob hash as one record of kind "imap.mime.2" (and the
 * CRLF form's size as one of kind "imap.size"): computed once
 * on a miss (mime.c), written back in one store_write after the command. It
 * can never go stale: the bytes of a hash never change. */
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
	const char *kind; /* one of fetch.c's kind names (compared by address) */
	char *rec;	  /* the encoded record */
	size_t len;
};

/* Entries computed during one command, written by fetch_cache_flush. */
struct fetch_cache {
	struct fetch_cache_entry *e;
	size_t n, cap;
};

struct fetch_mime_text {
	const char *env, *body, *bs; /* valid until the transaction ends / pending is freed */
	size_t envlen, bodylen, bslen;
	const char *srch; /* mime_search_fields' record */
	size_t srchlen;
};

int fetch_mime(struct store_txn *txn, const struct store_msg *m, struct fetch_cache *pending,
	       struct fetch_mime_text *t);
/* The message's size in CRLF form (RFC822.SIZE; see wire.h), from the cache
 * by blob hash, or counted (and added to pending). 0 or a STORE_E* code. */
int fetch_size(struct store_txn *txn, const struct store_msg *m, struct fetch_cache *pending,
	       uint64_t *size_r);
/* What SORT and THREAD compare (mime_sort_fields' record), from the cache
 * (kind "imap.sort") or computed (and added to pending). *rec_r lives until
 * the transaction ends or pending is freed. 0 or a STORE_E* code. */
int fetch_sort(struct store_txn *txn, const struct store_msg *m, struct fetch_cache *pending,
	       const char **rec_r, size_t *len_r);
/* Writes the pending entries into the store's cache (one durable write) and frees them. */
int fetch_cache_flush(struct store *store, struct fetch_cache *pending);
void fetch_cache_free(struct fetch_cache *c);

#endif
