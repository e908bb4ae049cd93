/* sieve_deliver — Sieve at delivery: what smtpin (SMTP and LMTP) calls per
 * recipient (part of the sieve room, index/sieve.h).
 *
 *   sieve_attach(cfg)            once at start: the sieve_* settings
 *   store_classify(...)          the spam verdict first (spamtest reads it)
 *   sieve_plan(store, rcpt, ...) runs the global and the user's scripts:
 *                                where the message goes (targets), or a
 *                                rejection, a vacation reply to send, an
 *                                error to tell the user
 *   store_deliver(...)           one store_rcpt per target (the caller)
 *   sieve_finish(store, plan)    after the commit: the vacation reply
 *                                (remembered, then queued from <>), the
 *                                redirects (queued with the original
 *                                envelope sender) and the error notice
 *                                (once per new error) in one write; the
 *                                outbound queue (index/queue.h) and
 *                                mailkeep-smtpout send them
 *
 * A script that fails — does not compile, goes past a bound, files into a
 * mailbox that cannot be made — never loses the message: the plan is then
 * INBOX alone, the error is logged and told to the user by a message in
 * INBOX (once per new error text, again after SIEVE_NOTICE_PERIOD).
 */
#ifndef MK_SIEVE_DELIVER_H
#define MK_SIEVE_DELIVER_H

#include <stddef.h>
#include <stdint.h>

#include "index/sieve.h"
#include "index/store.h"
#include "lib/config.h"

#define SIEVE_NOTICE_PERIOD (30 * 86400)

/* Reads the sieve_* settings (and recipient_delimiter, myhostname) for this
 * process. 0, or -1 with a sentence in err. */
int sieve_attach(struct config *cfg, char *err, size_t errsize);
/* sieve_max_script_size and sieve_max_scripts in force. */
size_t sieve_max_script_size(void);
unsigned sieve_max_scripts(void);

/* One place the message goes for a recipient. */
struct sieve_target {
	char mailbox[STORE_NAME_MAX +
		     1]; /* "" = the default: INBOX, or Junk if the spam filter said so */
	uint32_t flags;	 /* STORE_F_* from imap4flags */
	char keywords[STORE_KEYWORDS_MAX];
	int create;
};

struct sieve_plan {
	struct sieve_target *targets; /* none: discarded or rejected */
	size_t ntargets, cap;
	int reject;	  /* 1 reject, 2 ereject: the reason should be said at the protocol level */
	char reason[512]; /* printable, for a 550 reply */
	int ran;	  /* some script ran */
	int failed;	  /* delivered to INBOX because of error */
	char error[600];
	char summary[512]; /* the actions, for the log line */
	/* after the commit (sieve_finish) */
	uint32_t user_id;
	char user[STORE_NAME_MAX + 1];
	char *vacation_to; /* the reply's recipient, or NULL */
	char *vacation;	   /* the reply's bytes */
	size_t vacation_len;
	uint8_t vacation_key[STORE_HASH_LEN];
	int64_t vacation_until;
	char **redirect_to; /* the redirects' addresses */
	size_t nredirect;
	uint8_t (*redirect_key)[STORE_HASH_LEN]; /* remembered per address (loops) */
	const void *data; /* the message (the caller's, until sieve_finish) */
	size_t len;
	char env_from[600]; /* the envelope sender, "" for <> */
	char qid[64];
};

/* Runs the scripts for rcpt (after store_classify): data is the message as
 * it will be stored, env_from the envelope sender ("" for <>), env_to the
 * recipient's address as given. Always fills plan (at least one target,
 * unless discarded or rejected). */
void sieve_plan(struct store *store, const struct store_rcpt *rcpt, const void *data, size_t len,
		const char *env_from, const char *env_to, const char *qid, struct sieve_plan *plan);
/* After the message was stored: remembers and queues the vacation reply,
 * queues the redirects, stores the error notice. Returns 0 or a STORE_E*
 * code (logged); on an error nothing of it was done (one write). data (given
 * to sieve_plan) must still be valid. */
int sieve_finish(struct store *store, struct sieve_plan *plan);
void sieve_plan_free(struct sieve_plan *plan);
/* Turns a rejection into a keep (SMTP with several recipients has one
 * reply for all: a rejection that cannot be said is not a reason to lose
 * the message). */
void sieve_plan_keep(struct sieve_plan *plan);

/* The vacation reply leaves through here, inside sieve_finish's write: a
 * blob and an outbound queue entry from the null sender <> (RFC 5230 5.1)
 * to `to`; mailkeep-smtpout sees the commit (store watch) and sends it. */
int sieve_vacation_send(struct store_txn *txn, const char *qid, const char *to, const char *data,
			size_t len);

#endif
