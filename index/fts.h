/* fts — the full-text search room: what a message says, in words, and the
 * index that finds messages by them (doc/search.md).
 *
 * Text (fts_text.c, pure). A message's searchable text is what a reader sees:
 * the header fields (as received, and with RFC 2047 words decoded), the text
 * parts decoded from their transfer encoding and charset into UTF-8, HTML
 * turned into text (tags dropped, entities decoded), messages inside
 * messages, and the names of attachments. It is case-folded (ASCII, Latin-1,
 * Latin Extended-A, Greek and Cyrillic letters). Matching is substring
 * matching on that text, as RFC 3501 asks for SEARCH: a string matches when
 * its folded form occurs in the folded text. The same text is what the index
 * is built from, so the index can never miss a match (see fts_search.c).
 *
 * Index (fts_index.c). Tables of the store (enum store_db):
 *   DB_FTS_QUEUE  blob hash[32]                 -> "" : blobs not indexed yet; added
 *                 in the transaction that stores the blob (delivery, APPEND,
 *                 import), taken by the indexer
 *   DB_FTS_DOCS   docid u32                     -> blob hash[32]
 *   DB_FTS_HASHES blob hash[32]                 -> docid u32 (so a freed blob's doc goes)
 *   DB_FTS_WORDS  word + 0x00 + first docid u32 -> the segment's other docids, each
 *                 as a LEB128 delta from the one before (segments of at most
 *                 FTS_SEGMENT_MAX bytes; docids only grow, so a word's last
 *                 segment is the one appended to)
 *   meta "fts_next_doc", "fts_version"
 * Words are runs of letters, digits and non-ASCII bytes of the folded text, of
 * 1 to FTS_WORD_MAX bytes; a longer run is indexed as windows of FTS_WORD_MAX
 * bytes every FTS_WORD_MAX / 2 bytes, and one ending where it ends.
 *
 * Indexing is asynchronous with a bounded lag: a delivery only adds its blob's
 * hash to the queue (one small record in its own transaction); an indexer
 * thread in smtpin and the mount (fts_indexer_start) wakes on the store's change notice,
 * takes the queue in batches, extracts the words outside any transaction and
 * writes the postings in one relaxed write per batch. A search is exact at
 * any moment all the same: blobs still in the queue are candidates it checks
 * one by one. A freed blob's doc record goes with it in the same transaction;
 * its docid stays in the word lists (it maps to nothing) until `mailkeep
 * reindex`.
 *
 * Errors: 0 or a negative STORE_E* (index/store.h).
 */
#ifndef MK_FTS_H
#define MK_FTS_H

#include <stddef.h>
#include <stdint.h>

#include "index/store.h"

#define FTS_WORD_MAX 32
#define FTS_TEXT_MAX (8u << 20) /* bytes of text per message; the rest is not searched */
#define FTS_SEGMENT_MAX 1024

/* --- text (pure) ----------------------------------------------------------- */

/* Where a string is looked for. */
enum fts_field {
	FTS_TEXT,    /* everything: header, body, attachment names (IMAP TEXT) */
	FTS_BODY,    /* the text of the body (IMAP BODY) */
	FTS_HEADERS, /* the header fields */
};

/* A message's folded text, in three parts. Owned by the caller: fts_text_free. */
struct fts_text {
	char *hdr, *body, *names; /* NUL-terminated, UTF-8, folded */
	size_t hdrlen, bodylen, nameslen;
};

/* Extracts the searchable text of a message (never fails: malformed input
 * gives less text). */
void fts_text_extract(const void *msg, size_t len, struct fts_text *t);
void fts_text_free(struct fts_text *t);
/* Folds s (UTF-8) into a new malloc'ed string. */
char *fts_fold(const char *s, size_t len, size_t *len_r);
/* Whether the folded needle occurs in field of t. */
int fts_text_contains(const struct fts_text *t, enum fts_field field, const char *folded_needle,
		      size_t nlen);
/* Calls fn for each distinct index word of t (windows of long runs included). */
void fts_text_words(const struct fts_text *t, void (*fn)(const char *w, size_t len, void *ctx),
		    void *ctx);

/* --- the exact check ---------------------------------------------------------- */

/* Whether the message (its bytes) holds needle (any case) in field: what a
 * search decides for each candidate. One call extracts the text; to test
 * several strings against one message, use fts_text_extract once. */
int fts_match(const void *msg, size_t len, enum fts_field field, const char *needle);

/* --- the index ----------------------------------------------------------------- */

/* Store hooks (store_blob.c): a new blob is queued, a freed one forgotten. */
int fts_blob_added(struct store_txn *txn, const uint8_t hash[STORE_HASH_LEN]);
int fts_blob_freed(struct store_txn *txn, const uint8_t hash[STORE_HASH_LEN]);

/* Indexes up to max queued blobs (0 = all), in batches of one relaxed write
 * each. *done_r (may be NULL) gets how many were indexed. progress (may be
 * NULL) is called after each batch with done and the queue's length. */
int fts_index_pending(struct store *store, size_t max, uint64_t *done_r,
		      void (*progress)(uint64_t done, uint64_t queued, void *ctx), void *ctx);
/* Empties the index and queues every blob again (mailkeep reindex), in short
 * writes; then fts_index_pending builds it. */
int fts_reset(struct store *store);
/* How many blobs wait in the queue. */
int fts_queue_length(struct store_txn *txn, uint64_t *n_r);

/* Starts a thread that indexes queued blobs whenever the store changes, while
 * the program runs (the daemons call it once; several processes may run one:
 * a lock file lets one work at a time). */
void fts_indexer_start(struct store *store);
void fts_indexer_stop(void);

/* --- search ---------------------------------------------------------------------- */

/* The blobs that may hold a string: an over-approximation from the index
 * (every blob that holds it is in it), and every blob not indexed yet.
 * When the string is one word of 3 to FTS_WORD_MAX / 2 bytes searched in
 * FTS_TEXT, an indexed blob whose words contain it holds it for sure (its
 * words are pieces of its text): no check is needed (exact). */
struct fts_candidates {
	int all;   /* the index cannot narrow this string down: every message */
	int exact; /* the indexed candidates match for sure */
	uint8_t (*hash)[STORE_HASH_LEN]; /* from the index: sorted, distinct */
	size_t n, cap;
	uint8_t (*queued)[STORE_HASH_LEN]; /* not indexed yet: sorted, distinct */
	size_t nq, capq;
};
int fts_candidates(struct store_txn *txn, enum fts_field field, const char *needle,
		   struct fts_candidates *c);
/* 0: hash cannot match; 1: it may (check it); 2: it matches (c->exact). */
int fts_candidates_has(const struct fts_candidates *c, const uint8_t hash[STORE_HASH_LEN]);
void fts_candidates_free(struct fts_candidates *c);

/* A parsed `mailkeep search` / `.search/` query: words and "quoted phrases",
 * each a substring that must occur (AND); "from:x", "subject:x", "to:x",
 * "body:x" limit one to a header field or the body. */
#define FTS_QUERY_TERMS 16
struct fts_query {
	int no_index; /* check every message (what the index must agree with) */
	size_t n;
	struct {
		enum fts_field field;
		const char *header; /* for FTS_HEADERS: "from", "to", "subject", "cc" */
		char *s;	    /* folded */
	} t[FTS_QUERY_TERMS];
};
/* 0, or STORE_EINVAL for an empty or too long query (more than FTS_QUERY_TERMS terms). */
int fts_query_parse(const char *q, struct fts_query *query);
void fts_query_free(struct fts_query *query);

/* The messages of a user (all mailboxes, or mbid if not 0) that match query,
 * by mailbox, then UID; cb gets each (stop: non-zero). *checked_r
 * (may be NULL) gets how many messages were read to check them. */
int fts_search(struct store_txn *txn, uint32_t user_id, uint32_t mbid,
	       const struct fts_query *query, int (*cb)(const struct store_msg *m, void *ctx),
	       void *ctx, uint64_t *checked_r);

#endif
