/* spam_db — the spam filter's learned data in the store (index/ only).
 *
 *   DB_SPAM_TOKENS  user_id u32 + token u64       -> spam u32, innocent u32
 *   DB_SPAM_STATS   user_id u32                   -> struct spam_stats (u64 fields; records of
 *                                                    7 fields, from before unclosed_learned, are read
 *                                                    as "not known" and counted on the next change)
 *   DB_SPAM_SIGS    user_id u32 + blob hash[32]   -> class u8, tokenizer u8, 0, 0,
 *                                                    n u32, n token hashes u64
 *
 * user_id SPAM_GLOBAL_USER (0) holds the shared token set, used (added to the
 * user's own counts) until a user has learned spam_min_user_training messages.
 *
 * A signature is the exact list of distinct tokens a message was learned
 * with, so a correction (spam -> innocent or back) subtracts precisely what
 * was added, whatever the tokenizer settings are by then. Token counts are
 * per message (a token seen twice in one message counts once), as DSPAM's.
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

enum spam_class {
	SPAM_CLASS_NONE = 0, /* not learned */
	SPAM_CLASS_SPAM = 1,
	SPAM_CLASS_INNOCENT = 2,
};

struct spam_stats {
	uint64_t spam_learned;      /* messages in the model as spam */
	uint64_t innocent_learned;  /* ... as innocent */
	uint64_t spam_classified;   /* verdicts given at delivery (teft, tum: toe does not write at delivery) */
	uint64_t innocent_classified;
	uint64_t spam_misses;       /* corrections innocent -> spam (spam that got through) */
	uint64_t false_positives;   /* corrections spam -> innocent */
	uint64_t tokens;            /* distinct tokens with a count */
	uint64_t unclosed_learned;  /* messages in the model learned with a tokenizer other than SBPH
				     * (their tokens lack the sub-windows); SPAM_STATS_UNKNOWN: not
				     * known yet (a record from before it was counted) */
};

#define SPAM_STATS_UNKNOWN UINT64_MAX

const char *spam_class_name(enum spam_class c);
/* "spam" / "innocent" (also "ham"); returns 0 or -1. */
int spam_class_parse(const char *s, enum spam_class *c_r);

int spam_db_stats(struct store_txn *txn, uint32_t user_id, struct spam_stats *st_r);

/* Fills counts[i] for set->hash[i] from user_id's tokens, plus the global
 * set's when merge is set, through one cursor per user walking the keys in
 * order.
 *
 * With cut (spam_classify.h; NULL: every token is read) and a set collected
 * with SPAM_COLLECT_WINDOWS, when every message in the counts was learned
 * with SBPH, tokens that cannot take part in the verdict are not read and
 * their counts are left 0: a learned message holds the sub-windows of each
 * of its tokens (the same word with one earlier word less), so a token's
 * counts are at most those of its sub-windows; levels are read from the word
 * alone up, and a token is skipped when spam_cut_skips says so for those
 * bounds; levels from SPAM_LEVELS_USED on, which take no part, are not read.
 * The verdict spam_combine then gives is the same as with all counts read (barring a 64-bit hash collision between a skipped token and a
 * learned one). cut must have been set up with the totals spam_combine gets. */
int spam_db_counts(struct store_txn *txn, uint32_t user_id, int merge, const struct spam_tokens *set,
		   struct spam_count *counts, struct spam_cut *cut);

/* What the message (by blob hash) was learned as for this user. */
int spam_db_learned(struct store_txn *txn, uint32_t user_id, const uint8_t hash[STORE_HASH_LEN],
		    enum spam_class *class_r);

/* Learns a message as cls for the user: undoes an earlier training of the
 * other class exactly (from its signature), does nothing if it was already
 * learned as cls. set is the message's distinct tokens (tokenized with kind);
 * a message learned before is flipped with its stored signature instead (set
 * may then be NULL).
 * cls SPAM_CLASS_NONE forgets the message. correction = 1 counts it as a
 * miss / false positive in the statistics when it flips an earlier class or
 * verdict. *changed_r (may be NULL) says whether counts changed. */
int spam_db_train(struct store_txn *txn, uint32_t user_id, const uint8_t hash[STORE_HASH_LEN],
		  const struct spam_tokens *set, enum spam_tokenizer kind, enum spam_class cls, int correction,
		  int *changed_r);

/* Counts one verdict in the statistics. */
int spam_db_count_verdict(struct store_txn *txn, uint32_t user_id, int spam);

/* Reads one token's counts. */
int spam_db_token(struct store_txn *txn, uint32_t user_id, uint64_t token, struct spam_count *c_r);

#endif
