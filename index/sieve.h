/* sieve — mail filtering rules (RFC 5228) run at delivery: the room's manual.
 * Its files are index/sieve*.c:
 *
 *   sieve_parse.c    lexer and parser: bytes in, a checked script out, or an
 *                    error with line and column (pure, bounded, fuzzed)
 *   sieve_regex.c    a backtracking-free regular expression engine (:regex)
 *   sieve_match.c    comparators and match types (:is :contains :matches
 *                    :regex :value :count)
 *   sieve_mail.c     what tests read of a message: headers (RFC 2047
 *                    decoded), addresses, body parts, dates
 *   sieve_run.c      the interpreter: a script and a message in, actions out
 *   sieve_store.c    scripts in the store per user (ManageSieve, the mount),
 *                    the vacation and error memories (table DB_SIEVE)
 *   sieve_deliver.c  delivery: a recipient's scripts run into store targets
 *                    (smtpin calls it), vacation replies, error notices
 *
 * Extensions: fileinto, reject, ereject, envelope, encoded-character,
 * imap4flags, copy, body, variables, vacation, relational, subaddress, date,
 * index, mailbox, spamtest, spamtestplus, virustest, include, comparator-
 * i;ascii-numeric, regex. doc/sieve.md says why this interpreter is ours
 * (and not libsieve's), and every bound.
 *
 * Bounds (all enforced; a script over one is refused with its line and
 * column, or fails at run time, which delivers to INBOX):
 *   SIEVE_MAX_NESTING   blocks and tests nested deeper (10,000 "if"s)
 *   SIEVE_MAX_STRING    one string's bytes; SIEVE_MAX_LIST strings per list
 *   the script's size: sieve_compile's max_size (sieve_max_script_size)
 *   SIEVE_MAX_STEPS     commands and tests executed in one run
 *   SIEVE_REGEX_*       see sieve_regex.c: program size and steps; a regular
 *                       expression costs at most (its states x input bytes)
 *
 * Errors: functions return 0 or -1 with a sentence in a struct sieve_error;
 * the store functions return 0 or a STORE_E* code.
 */
#ifndef MK_SIEVE_H
#define MK_SIEVE_H

#include <stddef.h>
#include <stdint.h>

#include "index/store.h"

#define SIEVE_MAX_NESTING 32
#define SIEVE_MAX_STRING (64 * 1024)
#define SIEVE_MAX_LIST 1024
#define SIEVE_MAX_STEPS 100000
#define SIEVE_MAX_ACTIONS 64
#define SIEVE_MAX_REDIRECTS 4
#define SIEVE_MAX_INCLUDE_DEPTH 5
#define SIEVE_MAX_SCRIPTS 16	/* scripts one run may include (once each) */
#define SIEVE_MAX_VARIABLES 128 /* per script run */
#define SIEVE_MAX_VARIABLE_SIZE 4096
#define SIEVE_NAME_MAX 128 /* a script's name (RFC 5804 allows any; we bound it) */
#define SIEVE_SCRIPT_MAX_DEFAULT (512 * 1024)

/* The extensions this interpreter has, space-separated (ManageSieve's SIEVE
 * capability). */
extern const char sieve_extensions_list[];

struct sieve_error {
	unsigned line, col;		 /* 0 when not tied to a place in the script */
	char script[SIEVE_NAME_MAX + 1]; /* which script ("" for the one given) */
	char msg[256];
};
/* "line 3, column 7: unknown command 'fileint'" (or just the text). */
void sieve_error_format(const struct sieve_error *e, char *out, size_t size);

struct sieve_script;

/* Parses and checks a script: syntax, known commands and tests, their
 * arguments, the extensions `require`d. text need not be NUL-terminated; a
 * NUL byte in it is an error. max_size 0 means SIEVE_SCRIPT_MAX_DEFAULT.
 * Returns 0 with *script_r (free with sieve_script_free), or -1 with err_r. */
int sieve_compile(const char *text, size_t len, size_t max_size, struct sieve_script **script_r,
		  struct sieve_error *err_r);
void sieve_script_free(struct sieve_script **script);

/* --- running ------------------------------------------------------------------ */

/* The message as the script sees it. */
struct sieve_msg {
	const char *data; /* the message as stored (header, blank line, body) */
	size_t len;
	const char *env_from;	    /* envelope sender, "" for <> */
	const char *env_to;	    /* envelope recipient as given ("bob+lists@example.org") */
	const char *user;	    /* the store user it is delivered to */
	int spam_percent;	    /* 0..100 from the spam filter, -1: not classified */
	int virus_value;	    /* RFC 5235: 0 not tested, 1 clean .. 5 infected */
	int64_t now;		    /* for currentdate and vacation; 0 = time(NULL) */
	const char *subaddress_sep; /* recipient_delimiter ("+"); NULL: "+" */
};

/* What the run needs from the store around it. */
struct sieve_env {
	/* 1 if the user has the mailbox (UTF-8 name), else 0. */
	int (*mailbox_exists)(void *ctx, const char *name);
	/* The script text for include :personal (global 0) or :global (1), in
	 * memory owned by ctx until the run ends. 0, or -1 if there is none. */
	int (*load)(void *ctx, int global, const char *name, const char **text_r, size_t *len_r);
	void *ctx;
	size_t max_size; /* for included scripts; 0: default */
};

enum sieve_action_kind {
	SIEVE_KEEP,	/* into mailbox (NULL: the default, INBOX or what the spam filter chose) */
	SIEVE_FILEINTO, /* into mailbox (create: :create) */
	SIEVE_DISCARD,
	SIEVE_REDIRECT, /* to address */
	SIEVE_REJECT,	/* reason; ereject: protocol level */
	SIEVE_EREJECT,
	SIEVE_VACATION,
};

struct sieve_action {
	enum sieve_action_kind kind;
	char *mailbox; /* keep/fileinto: UTF-8 mailbox, NULL for keep's default */
	char *flags;   /* keep/fileinto: IMAP flags, space-separated ("\\Seen $Label1"), or NULL */
	int create;    /* fileinto :create */
	char *address; /* redirect */
	char *reason;  /* reject, ereject; vacation's body */
	/* vacation (RFC 5230) */
	char *subject, *from, *handle; /* NULL when not given */
	char **addresses;	       /* :addresses */
	size_t naddresses;
	int mime;	/* :mime: reason is a MIME entity */
	int64_t period; /* seconds between replies to one sender (:days) */
};

struct sieve_result {
	struct sieve_action *actions;
	size_t n, cap;
	int implicit_keep; /* no action cancelled it */
	char *keep_flags;  /* flags for the implicit keep (imap4flags), or NULL */
	int failed;	   /* a run-time error: err says which; deliver to INBOX */
	struct sieve_error err;
	uint64_t steps; /* commands and tests executed (for tests) */
	uint64_t regex_steps;
};

/* Runs scripts in order (global before ones, the user's, global after ones)
 * on one message, with one result: an action in any of them counts,
 * `stop` ends the run. Returns 0, or -1 with res->failed and res->err set
 * (the actions gathered so far stay; a caller delivers to INBOX then).
 * Free res with sieve_result_free. */
int sieve_execute(struct sieve_script *const *scripts, size_t nscripts, const struct sieve_msg *msg,
		  const struct sieve_env *env, struct sieve_result *res);
void sieve_result_free(struct sieve_result *res);

/* --- scripts in the store (sieve_store.c) ----------------------------------------
 * Per user, in table DB_SIEVE (key layout in sieve_store.c). Names: 1 to
 * SIEVE_NAME_MAX bytes of UTF-8, no control characters, no '/'. */

/* Stores (replaces) a script. The caller has compiled it. */
int sieve_script_put(struct store_txn *txn, uint32_t user_id, const char *name, const char *text,
		     size_t len);
/* The text of a script: *text_r points into the transaction, valid until it ends. */
int sieve_script_get(struct store_txn *txn, uint32_t user_id, const char *name, const char **text_r,
		     size_t *len_r);
/* Deletes a script; the active one: STORE_EEXIST (deactivate it first). */
int sieve_script_delete(struct store_txn *txn, uint32_t user_id, const char *name);
int sieve_script_rename(struct store_txn *txn, uint32_t user_id, const char *oldname,
			const char *newname);
/* Makes name the active script ("" or NULL: none is). */
int sieve_script_activate(struct store_txn *txn, uint32_t user_id, const char *name);
/* name_r (SIEVE_NAME_MAX + 1 bytes) gets the active script's name, STORE_ENOTFOUND if none. */
int sieve_script_active(struct store_txn *txn, uint32_t user_id, char *name_r);
/* Calls cb per script in name order (active: whether it is the active one). */
int sieve_script_foreach(struct store_txn *txn, uint32_t user_id,
			 int (*cb)(const char *name, size_t len, int active, void *ctx), void *ctx);
/* 1 if name is a valid script name. */
int sieve_name_valid(const char *name);
/* A user's scripts and memories go with the user (store_user_del). */

/* The memories: vacation (once per period per sender and handle), error
 * notices (once per new error text) and redirects (a message, by its
 * Message-ID, redirected once to an address: a loop brings it back). Each key is a SHA-256 of its
 * parts. sieve_memory_check: 1 if remembered and not expired at now, else 0. sieve_memory_put:
 * remembers until `until`. */
enum sieve_memory { SIEVE_MEM_VACATION = 'V', SIEVE_MEM_ERROR = 'E', SIEVE_MEM_REDIRECT = 'R' };
int sieve_memory_check(struct store_txn *txn, uint32_t user_id, enum sieve_memory kind,
		       const uint8_t key[STORE_HASH_LEN], int64_t now);
int sieve_memory_put(struct store_txn *txn, uint32_t user_id, enum sieve_memory kind,
		     const uint8_t key[STORE_HASH_LEN], int64_t until);
/* Forgets the memories of a kind whose time is over (sieve_finish calls it
 * before it remembers more, so that a user's rows stay those of one period). */
int sieve_memory_expire(struct store_txn *txn, uint32_t user_id, enum sieve_memory kind,
			int64_t now);

#endif
