/* spam_db — the spam filter's learned data in the store (index/ only).
 *
 *   DB_SPAM_TOKENS  user_id u32 + bucket u16        -> packed token records (below)
 *                   (user_id u32 + token u64         -> spam u32, innocent u32: the format
 *                    before issue 16, read only by spam_db_rebuild, which removes it)
 *   DB_SPAM_STATS   user_id u32                      -> struct spam_stats (u64 fields; shorter
 *                                                       records from older versions read as 0)
 *   DB_SPAM_SIGS    user_id u32 + blob hash[32]      -> class u8, tokenizer u8, times u8, 0x80,
 *                                                       day u32 (the message's learning record)
 *                   (older records: class u8, tokenizer u8, 0, 0, n u32, n token hashes u64)
 *
 * Tokens are 64-bit hashes. A user's tokens live in 65536 buckets by the top
 * 16 bits of the hash; a bucket is one LMDB value holding its tokens sorted
 * by the other 48 bits, each as 6 bytes of hash, the day it was last learned
 * (u16, days since 1970) and the spam and innocent counts as LEB128 varints:
 * about 10 bytes a token where a record of its own costs 30 and more.
 *
 * user_id SPAM_GLOBAL_USER (0) holds the shared token set, used (added to the
 * user's own counts) until a user has learned spam_min_user_training messages.
 *
 * A message's learning record says what it was learned as, how many times
 * (train until no error learns a hard message again) and with which
 * tokenizer; the token list is not kept: a correction or a forget tokenizes
 * the message's bytes again with that tokenizer (a tokenizer, once shipped,
 * never changes: a change is a new kind) and takes back exactly what was
 * added. Token counts are per message (a token seen twice in one message
 * counts once), as DSPAM's; a count taken back below 0 (the token was pruned
 * meanwhile) stays 0.
 *
 * Pruning (spam_db_purge), after DSPAM's dspam_clean and purge-4.1.sql:
 * hapaxes (seen in one message) not learned for spam_purge_hapax days, rare
 * tokens (2 x innocent + spam < 5) not learned for spam_purge_rare days, any
 * token not learned for spam_purge_stale days; and a per-user cap
 * (spam_token_limit): above it the least useful tokens go first (fewest
 * sightings, then the oldest).
 *
 * Reads take any transaction; changes need a write transaction (store_write's
 * function, or the junk_moved hook's). Errors: 0 or STORE_E*.
 */
#ifndef MK_SPAM_DB_H
#define MK_SPAM_DB_H

#include <stdint.h>

#include "index/spam_classify.h"
#include "index/store.h"

#define SPAM_GLOBAL_USER 0u
#define SPAM_BUCKET_BITS 16
#define SPAM_TIMES_MAX 255 /* times one message can be learned (train until no error) */

enum spam_class {
	SPAM_CLASS_NONE = 0, /* not learned */
	SPAM_CLASS_SPAM = 1,
	SPAM_CLASS_INNOCENT = 2,
};

struct spam_stats {
	uint64_t
	    spam_learned; /* messages in the model as spam (a message learned twice counts twice) */
	uint64_t innocent_learned; /* ... as innocent */
	uint64_t spam_classified;  /* verdicts given at delivery (teft, tum: toe does not write at
				      delivery) */
	uint64_t innocent_classified;
	uint64_t spam_misses;	  /* corrections innocent -> spam (spam that got through) */
	uint64_t false_positives; /* corrections spam -> innocent */
	uint64_t tokens;	  /* distinct tokens with a count */
	uint64_t reserved;   /* (before issue 16: messages learned without SBPH's sub-windows) */
	uint64_t last_purge; /* day (since 1970) of the last purge, 0 = never */
	uint64_t purged;     /* tokens removed by purges and the cap, in all */
};

/* The purge rules and the cap (from the spam_purge_* settings and
 * spam_token_limit); 0 days or 0 tokens: that rule is off. */
struct spam_purge_rules {
	unsigned hapax_days;	/* one sighting, not learned for this many days */
	unsigned rare_days;	/* 2 x innocent + spam < 5, not learned for this many days */
	unsigned stale_days;	/* any token not learned for this many days */
	uint64_t token_limit;	/* above it, evict the least useful down to 90% of it */
	unsigned interval_days; /* training runs the date rules when the last purge is this old */
};

struct spam_purge_result {
	uint64_t hapax, rare, stale, evicted; /* tokens removed by each rule */
	uint64_t tokens;		      /* tokens left */
};

/* The learning record of one message for one user. */
struct spam_learned_rec {
	enum spam_class cls;	  /* SPAM_CLASS_NONE: not learned */
	enum spam_tokenizer kind; /* the tokenizer it was learned with */
	unsigned times;		  /* learned this many times (1 unless trained until no error) */
	uint32_t day;		  /* when it was (last) learned; 0 for older records */
	int has_list;		  /* an older record that keeps its token list */
};

const char *spam_class_name(enum spam_class c);
/* "spam" / "innocent" (also "ham"); returns 0 or -1. */
int spam_class_parse(const char *s, enum spam_class *c_r);

/* Today, in days since 1970 (UTC); spam_db_set_today overrides it (tests,
 * `mailkeep spam purge --now`); 0 goes back to the clock. */
uint32_t spam_db_today(void);
void spam_db_set_today(uint32_t day);

int spam_db_stats(struct store_txn *txn, uint32_t user_id, struct spam_stats *st_r);

/* Fills counts[i] for set->hash[i] from user_id's tokens, plus the global
 * set's when merge is set: one lookup per bucket the message's tokens fall in. */
int spam_db_counts(struct store_txn *txn, uint32_t user_id, int merge,
		   const struct spam_tokens *set, struct spam_count *counts);

/* Reads one token's counts (and the day it was last learned, may be NULL). */
int spam_db_token(struct store_txn *txn, uint32_t user_id, uint64_t token, struct spam_count *c_r,
		  uint32_t *day_r);

/* What the message (by blob hash) was learned as for this user. */
int spam_db_learned(struct store_txn *txn, uint32_t user_id, const uint8_t hash[STORE_HASH_LEN],
		    enum spam_class *class_r);
int spam_db_record(struct store_txn *txn, uint32_t user_id, const uint8_t hash[STORE_HASH_LEN],
		   struct spam_learned_rec *rec_r);

/* Learns a message as cls for the user, or forgets it (SPAM_CLASS_NONE).
 * set holds the message's distinct tokens collected with kind; when the
 * message has a learning record, kind must be the record's (spam_db_record)
 * unless the record keeps its token list (set may then be NULL). What was
 * learned before (times x the tokens, in the old class) is taken back, then
 * the tokens are added to the new class. Learning again as the same class
 * changes nothing, unless again is set: then the message counts once more
 * (train until no error), up to SPAM_TIMES_MAX. correction = 1 counts a
 * change of class as a miss / false positive. *changed_r (may be NULL) says
 * whether counts changed. Afterwards, when the user's tokens exceed the cap
 * or the last purge is rules->interval_days old, spam_db_purge runs (rules
 * may be NULL: no automatic purge). */
int spam_db_train(struct store_txn *txn, uint32_t user_id, const uint8_t hash[STORE_HASH_LEN],
		  const struct spam_tokens *set, enum spam_tokenizer kind, enum spam_class cls,
		  int correction, int again, const struct spam_purge_rules *rules, int *changed_r);

/* Bulk learning: between spam_db_defer_begin and spam_db_defer_flush, in
 * one write transaction, the token changes of spam_db_train and
 * spam_db_add_tokens are only noted in memory (the learning records and the
 * message totals are written at once); the flush applies them, each bucket
 * read and written once, fixes the token counts in the statistics and
 * purges as spam_db_train would (rules, may be NULL). Classifying in between does not see
 * the noted changes, and the cap and the purge wait for the flush. Changes
 * summed before they are applied take a count below 0 to 0 once, not at
 * each step. One deferral at a time in the process (LMDB has one writer);
 * cancel drops the notes (a write that fails). */
int spam_db_defer_begin(struct store_txn *txn);
int spam_db_defer_flush(struct store_txn *txn, const struct spam_purge_rules *rules);
void spam_db_defer_cancel(struct store_txn *txn);
/* 1 while changes are deferred in txn: token lists given to spam_db_train
 * and spam_db_add_tokens need not be sorted then (SPAM_COLLECT_UNSORTED). */
int spam_db_deferring(const struct store_txn *txn);
/* Tokens noted so far (a caller bounds its memory: about 64 bytes each). */
size_t spam_db_defer_size(const struct store_txn *txn);

/* Counts one verdict in the statistics. */
int spam_db_count_verdict(struct store_txn *txn, uint32_t user_id, int spam);

/* Applies the date rules (as of today) and the cap to one user's tokens, in
 * a write transaction; records the day and the counts in the statistics. */
int spam_db_purge(struct store_txn *txn, uint32_t user_id, const struct spam_purge_rules *rules,
		  struct spam_purge_result *res_r);

/* Bytes the user's tokens take in the store's table: keys, values and
 * LMDB's node headers (pages are about 70-100% full on top of that). */
int spam_db_bytes(struct store_txn *txn, uint32_t user_id, uint64_t *bytes_r);

/* For the rebuild (spam_rebuild in spam.h): removes every token and resets
 * the learned totals of a user (the learning records stay), and says whether
 * tokens of the format before issue 16 were among them. */
int spam_db_clear_tokens(struct store_txn *txn, uint32_t user_id, int *had_old_r);

/* Calls fn for each learning record of a user (or every user's when user_id
 * is UINT32_MAX), in key order, starting after *resume (all zero: from the
 * start) and stopping after max records (0: no limit) or when fn returns
 * non-zero; *resume is set to the last key seen. list/nlist: an older
 * record's token list (NULL, 0 otherwise); valid during the call. */
typedef int spam_record_fn(uint32_t user_id, const uint8_t hash[STORE_HASH_LEN],
			   const struct spam_learned_rec *rec, const uint64_t *list, size_t nlist,
			   void *ctx);
int spam_db_records(struct store_txn *txn, uint32_t user_id, uint8_t resume[4 + STORE_HASH_LEN],
		    size_t max, spam_record_fn *fn, void *ctx);

/* 1 if the token table still holds tokens of the format before issue 16
 * (looked for among its first 4096 keys): `mailkeep spam rebuild` converts
 * them; until then they are not read. */
int spam_db_has_old_format(struct store_txn *txn);

/* Rewrites a learning record (used by the rebuild); cls NONE deletes it. */
int spam_db_put_record(struct store_txn *txn, uint32_t user_id, const uint8_t hash[STORE_HASH_LEN],
		       const struct spam_learned_rec *rec);

/* Adds times x the tokens to one class without touching the records (the
 * rebuild); updates the token count in the statistics. */
int spam_db_add_tokens(struct store_txn *txn, uint32_t user_id, const uint64_t *tokens, size_t n,
		       enum spam_class cls, unsigned times);

#endif
