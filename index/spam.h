/* spam — the DSPAM-style filter (issue 7): what programs use.
 *
 * Programs call spam_attach once after store_open: it installs the store
 * hooks according to mailkeep.conf, so that
 *   - store_deliver classifies each recipient's copy (per user: the user's own
 *     tokens, plus the shared global set while the user has learned fewer than
 *     spam_min_user_training messages), sends spam to the user's Junk mailbox
 *     and records the verdict in the message's metadata:
 *       spam.result=Spam|Innocent, spam.probability=0.99731,
 *       spam.confidence=0.99462, spam.factors=15, token 0.99000, ...
 *     and, in TEFT (and TUM until the user is mature), learns it;
 *   - store_msg_move / store_msg_copy between Junk and another mailbox of the
 *     same user (IMAP MOVE/COPY, rename on the mount) retrain: the message is
 *     learned as spam (into Junk) or innocent (out of Junk); a message learned
 *     before is flipped exactly, from its stored token signature.
 * The mount's xattrs and `mailkeep spam` use the functions below.
 *
 * The pieces: spam_token.c (tokenizer), spam_classify.c (combining),
 * spam_db.c (counts in the store), spam.c (this: settings, hooks, glue).
 * Errors: 0 or a negative STORE_E* code unless said otherwise.
 */
#ifndef MK_SPAM_H
#define MK_SPAM_H

#include <stddef.h>
#include <sys/types.h>

#include "index/spam_classify.h"
#include "index/spam_db.h"
#include "index/store.h"
#include "lib/config.h"

enum spam_mode {
	SPAM_MODE_TOE = 0,  /* train on error: only corrections teach (default) */
	SPAM_MODE_TEFT = 1, /* train everything: every delivery is learned as classified */
	SPAM_MODE_TUM = 2, /* train until mature: as TEFT until spam_tum_limit messages, then TOE */
};

struct spam_settings {
	int enabled; /* spam_filter */
	enum spam_algorithm algorithm;
	enum spam_mode mode;
	enum spam_tokenizer tokenizer;
	double threshold;	    /* spam_threshold / 100 */
	unsigned min_user_training; /* below: user + global counts */
	unsigned tum_limit;
	struct spam_purge_rules purge; /* spam_purge_*, spam_token_limit */
};

/* Reads the spam_* settings. Returns 0, or -1 with a sentence in err. */
int spam_settings_load(struct config *cfg, struct spam_settings *s_r, char *err, size_t errsize);
/* The defaults (as with an empty mailkeep.conf). */
void spam_settings_default(struct spam_settings *s_r);

/* Returns 0, or -1 if the configuration is unusable (logged). With the filter
 * disabled it installs nothing and returns 0. The settings are kept for the
 * functions below (which otherwise use the defaults). */
int spam_attach(struct store *store, struct config *cfg);

/* The settings in use (attached, or the defaults). */
const struct spam_settings *spam_settings(void);

/* Classifies a message for a user (SPAM_GLOBAL_USER: the global set only) in
 * any transaction; changes nothing. If set_r is not NULL it receives the
 * message's tokens (with texts; the verdict's factor texts point into it) and
 * the caller frees it with spam_tokens_free; otherwise factors have no text. */
int spam_classify_data(struct store_txn *txn, const struct spam_settings *s, uint32_t user_id,
		       const void *data, size_t len, struct spam_verdict *v_r,
		       struct spam_tokens *set_r);

/* The verdict as metadata lines ("spam.result=Spam\n..."), cut at size:
 * result, probability and confidence (full precision: %.17g), score,
 * factors, and tokens (a summary: "tokens=N used=M"). These lines are what
 * the mount's user.spam.* xattrs show: nothing is computed per getxattr. */
void spam_verdict_meta(const struct spam_verdict *v, char *out, size_t size);

/* Learns bytes (keyed by their SHA-256, as the store keys blobs) as cls for a
 * user (SPAM_CLASS_NONE forgets), in a write transaction. correction = 1
 * counts a flip as a miss or a false positive. again = 1 learns a message
 * already learned as cls once more (train until no error). Purges as
 * spam_db_train says. *changed_r (may be NULL): whether counts changed. */
int spam_learn_data(struct store_txn *txn, const struct spam_settings *s, uint32_t user_id,
		    const void *data, size_t len, enum spam_class cls, int correction, int again,
		    int *changed_r);
/* The same for a stored message (its blob). */
int spam_learn_msg(struct store_txn *txn, const struct spam_settings *s, uint32_t user_id,
		   const struct store_msg *msg, enum spam_class cls, int correction,
		   int *changed_r);

/* Rebuilds a user's tokens (or every user's and the global set's when
 * user_id is UINT32_MAX) from what was learned: every learning record is
 * learned again from the message's bytes in the store, with the current
 * tokenizer; a record from before issue 16 whose bytes are not in the store
 * (trained from a file) is learned again from the token list it keeps.
 * Tokens of the older format are removed. Only the spam tables change; each
 * user is one write transaction per 200 messages (progress may be NULL; it
 * is called after each with the records done and the total). *lost_r: records
 * that could not be learned again (dropped). */
typedef void spam_progress_fn(uint64_t done, uint64_t total, void *ctx);
int spam_rebuild(struct store *store, const struct spam_settings *s, uint32_t user_id,
		 spam_progress_fn *progress, void *ctx, uint64_t *relearned_r, uint64_t *lost_r);

/* Purges one user's tokens by the settings' rules (spam_db_purge), in its
 * own durable write. */
int spam_purge(struct store *store, const struct spam_settings *s, uint32_t user_id,
	       struct spam_purge_result *res_r);

/* Retrains a stored message of a user (as `setfattr -n user.spam.class -v
 * spam`): its own durable write. */
int spam_retrain(struct store *store, uint32_t user_id, uint32_t mbid, uint32_t uid,
		 enum spam_class cls);

/* The mount's xattrs, NULL-terminated: user.spam.result, .probability,
 * .confidence, .factors, .tokens, .class (class is also writable). */
extern const char *const spam_xattr_names[];
/* Reads one of them for a message: returns its length (with size 0 only the
 * length), -ENODATA for another name, -ERANGE if size is too small, -EIO.
 * result, probability, confidence, factors and tokens are the verdict
 * recorded at delivery (-ENODATA for a message without one: imported,
 * copied in); class (what the message was learned as: spam, innocent or
 * none) is one lookup. Nothing is tokenized or combined here, so a getxattr
 * costs the same with a large token database. */
ssize_t spam_xattr_get(struct store_txn *txn, uint32_t user_id, const struct store_msg *msg,
		       const char *name, char *buf, size_t size);
/* Writes user.spam.class ("spam" or "innocent", trailing newline allowed):
 * retrains through spam_retrain. Returns 0, -EINVAL for another value,
 * -ENOTSUP for another name, -EIO. */
int spam_xattr_set(struct store *store, uint32_t user_id, uint32_t mbid, uint32_t uid,
		   const char *name, const char *value, size_t len);

#endif
