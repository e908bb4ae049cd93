/* store — the content-addressed mail store on LMDB.
 *
 * One LMDB environment under <data_directory>/store holds everything:
 *
 *   blobs      message bytes, once, keyed by SHA-256, with a reference count
 *   users      embedded users (and every user that ever got mail, LDAP ones too)
 *   aliases    address -> user
 *   mailboxes  per user, IMAP's model: UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, special-use
 *   messages   per mailbox by UID: blob hash, flags, keywords, internal date, size,
 *              modseq, a stable Maildir base name, and per-recipient metadata
 *   expunged   (mailbox, modseq) -> uid, so QRESYNC and the mount see what vanished
 *   cache      anything derived from a blob's bytes, keyed by (hash, kind)
 *
 * Transactions. Readers call store_read_begin/store_read_end and keep it short
 * (a FUSE read, one IMAP command). Every change goes through store_write: the
 * caller's function runs inside a write transaction that may be shared with
 * other callers' functions (group commit: one fsync for all of them), and
 * store_write returns only once that transaction is durably on disk. If the
 * function fails, only its own changes are rolled back (a nested transaction).
 *
 * Pointers returned by a read inside a transaction (blob bytes, names) stay
 * valid until that transaction ends; copy what must live longer.
 *
 * Change notification. Each write that changes something bumps a global change
 * sequence and rewrites a small file, <store>/changes; other processes watch it
 * with inotify (store_watch_open) and then ask the store what changed (per
 * mailbox HIGHESTMODSEQ, expunged-since). See doc/store.md.
 *
 * Errors: every function returns 0 or a negative STORE_E* code;
 * store_strerror() explains it.
 */
#ifndef MK_STORE_H
#define MK_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum store_error {
	STORE_OK = 0,
	STORE_ENOTFOUND = -1, /* no such user, mailbox, message, blob */
	STORE_EEXIST = -2,    /* already exists */
	STORE_EFULL = -3,     /* the map reached store_map_max, or the disk is full: retry later */
	STORE_EIO = -4,       /* an I/O error from LMDB or the system */
	STORE_EINVAL = -5,    /* a bad argument (name too long, bad characters, ...) */
	STORE_ECORRUPT = -6,  /* a record that cannot be decoded */
	STORE_EMODIFIED = -7, /* UNCHANGEDSINCE failed: the message changed since */
	STORE_ENOTEMPTY = -8, /* a mailbox with children, or a special mailbox */
	STORE_ETOOBIG = -9,   /* a message over the store's per-message limit */
	STORE_EQUOTA = -10,   /* the user's quota would be exceeded (index/quota.h) */
};

const char *store_strerror(int err);

#define STORE_HASH_LEN 32
#define STORE_NAME_MAX 255     /* user and mailbox names, bytes of UTF-8 */
#define STORE_KEYWORDS_MAX 512 /* space-separated IMAP keywords */
#define STORE_BASE_MAX 128     /* Maildir base name */
#define STORE_META_MAX 2048    /* per-recipient metadata text */
#define STORE_MAILBOX_SEP '.'  /* hierarchy separator: "Lists.lkml" (Maildir++'s ".Lists.lkml") */

/* System flags, as IMAP's. */
enum store_flag {
	STORE_F_SEEN = 1 << 0,
	STORE_F_ANSWERED = 1 << 1,
	STORE_F_FLAGGED = 1 << 2,
	STORE_F_DELETED = 1 << 3,
	STORE_F_DRAFT = 1 << 4,
	STORE_F_RECENT = 1 << 5, /* IMAP's \Recent; \Recent without \Seen is new/ on the mount */
};

/* Special-use attributes (RFC 6154). */
enum store_special {
	STORE_SU_NONE = 0,
	STORE_SU_SENT = 1 << 0,
	STORE_SU_DRAFTS = 1 << 1,
	STORE_SU_JUNK = 1 << 2,
	STORE_SU_TRASH = 1 << 3,
	STORE_SU_ARCHIVE = 1 << 4,
	STORE_SU_ALL = 1 << 5,
	STORE_SU_FLAGGED = 1 << 6,
};

struct store;
struct store_txn;

struct store_options {
	uint64_t map_size; /* initial map size in bytes; 0 = 1 GiB */
	uint64_t map_max;  /* the map never grows past this; 0 = 1 TiB */
	int read_only;     /* no right to write (store_write: STORE_EINVAL); the store must exist */
	int max_readers;   /* 0 = 512 */
};

/* Opens (creating if needed) the store in dir. Clears stale readers. On error
 * writes a sentence into err. */
int store_open(const char *dir, const struct store_options *opt, struct store **store_r, char *err,
	       size_t errsize);
/* Closes; no transaction may be open. Sets *store to NULL. */
void store_close(struct store **store);
/* The directory given to store_open. */
const char *store_dir(const struct store *store);

/* --- transactions --------------------------------------------------------- */

/* A read-only snapshot. Not tied to a thread, but used by one at a time. */
int store_read_begin(struct store *store, struct store_txn **txn_r);
/* Ends a read transaction and sets *txn to NULL. NULL is allowed. */
void store_read_end(struct store_txn **txn);

/* The work of one write. Runs inside a write transaction; returns 0 to keep its
 * changes, a STORE_E* code (or any negative number) to roll them back. */
typedef int store_write_fn(struct store_txn *txn, void *ctx);

/* Runs fn in a write transaction, possibly batched with other threads' writes,
 * and returns after the commit is durable (fsync'ed). Returns fn's result if it
 * failed (nothing of it was stored), STORE_EFULL or STORE_EIO if the commit
 * failed (nothing of it was stored), or 0 once it is on disk. Safe to call
 * from any number of threads. fn must not call store_write. */
int store_write(struct store *store, store_write_fn *fn, void *ctx);

/* As store_write, for changes that a system crash may undo: flags, keywords,
 * \Recent, cache entries; never a message, an expunge, a user or a mailbox.
 * A group commit whose jobs are all relaxed is flushed once instead of twice
 * (its data, not its meta page: LMDB's MDB_NOMETASYNC). It is visible at once
 * and survives the process; it becomes durable with the next commit of any
 * process, or within about 200 ms (a background flush). A system crash (power
 * loss, kernel panic) before then undoes that last commit only, and the store
 * stays consistent. Returns as store_write. See doc/store.md, "Durability". */
int store_write_relaxed(struct store *store, store_write_fn *fn, void *ctx);

/* The store a transaction belongs to. */
struct store *store_txn_store(struct store_txn *txn);

/* --- blobs -------------------------------------------------------------- */

enum store_encoding {
	STORE_ENC_RAW = 0, /* bytes as received */
	/* reserved: 1 = zlib, 2 = packed; old readers refuse them with STORE_ECORRUPT */
};

struct store_blob_info {
	uint8_t hash[STORE_HASH_LEN];
	uint32_t refs;      /* number of messages (in any mailbox) pointing here */
	uint8_t encoding;   /* enum store_encoding */
	uint64_t size;      /* length of the message bytes */
	uint64_t stored;    /* bytes the encoded value takes */
};

/* SHA-256 of data. */
void store_hash(const void *data, size_t len, uint8_t hash_r[STORE_HASH_LEN]);
/* Stores bytes (if not already there) and returns their hash. The blob has 0
 * references until a message points at it; a blob left with 0 references at
 * commit is reported by fsck, so always add a message in the same write. */
int store_blob_put(struct store_txn *txn, const void *data, size_t len, uint8_t hash_r[STORE_HASH_LEN]);
/* The bytes of a blob: *data_r points into the map (or a buffer owned by the
 * transaction), valid until the transaction ends. */
int store_blob_get(struct store_txn *txn, const uint8_t hash[STORE_HASH_LEN], const void **data_r,
		   size_t *len_r);
int store_blob_info(struct store_txn *txn, const uint8_t hash[STORE_HASH_LEN],
		    struct store_blob_info *info_r);

/* Derived data cached by blob hash (MIME structure, tokens): never stale.
 * kind is a short tag ("bodystructure", "envelope", "spamsig"). Entries are
 * deleted with their blob. get: pointer valid until the transaction ends. */
int store_cache_get(struct store_txn *txn, const uint8_t hash[STORE_HASH_LEN], const char *kind,
		    const void **data_r, size_t *len_r);
int store_cache_put(struct store_txn *txn, const uint8_t hash[STORE_HASH_LEN], const char *kind,
		    const void *data, size_t len);

/* --- users ---------------------------------------------------------------- */

struct store_user {
	uint32_t id;
	char name[STORE_NAME_MAX + 1];
	uint32_t uid, gid;        /* owner on the mount; 0 = the mount's default */
	char password[256];       /* a password_hash() string, or "" (no login) */
	int64_t created;
};

/* Creates a user with INBOX, Sent, Drafts, Junk, Trash and Archive. Names:
 * 1..STORE_NAME_MAX bytes, no '/', no control characters, not "." or "..". */
int store_user_add(struct store_txn *txn, const struct store_user *user, uint32_t *id_r);
/* Creates the user (as store_user_add, with uid/gid/password empty) if absent. */
int store_user_ensure(struct store_txn *txn, const char *name, struct store_user *user_r);
int store_user_get(struct store_txn *txn, const char *name, struct store_user *user_r);
int store_user_get_by_id(struct store_txn *txn, uint32_t id, struct store_user *user_r);
/* Replaces password, uid and gid of an existing user (matched by name). */
int store_user_update(struct store_txn *txn, const struct store_user *user);
/* Deletes the user, all mailboxes and messages (blobs lose their references)
 * and the aliases pointing at the user. */
int store_user_del(struct store_txn *txn, const char *name);
/* Calls cb for each user in name order; stops when cb returns non-zero. */
int store_user_foreach(struct store_txn *txn, int (*cb)(const struct store_user *user, void *ctx),
		       void *ctx);

/* --- aliases --------------------------------------------------------------- */

/* address (lower-cased on the way in) -> target: a user name or another address. */
int store_alias_add(struct store_txn *txn, const char *address, const char *target);
int store_alias_del(struct store_txn *txn, const char *address);
/* target_r must hold STORE_NAME_MAX + 1 bytes. */
int store_alias_get(struct store_txn *txn, const char *address, char *target_r);
int store_alias_foreach(struct store_txn *txn,
			int (*cb)(const char *address, const char *target, void *ctx), void *ctx);

/* --- mailboxes ------------------------------------------------------------- */

struct store_mailbox {
	uint32_t id;
	uint32_t user_id;
	char name[STORE_NAME_MAX + 1]; /* "INBOX", "Sent", "Lists.lkml" (UTF-8) */
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint32_t special_use;  /* enum store_special bits */
	uint32_t messages;     /* number of messages */
	uint32_t unseen;       /* messages without \Seen */
	uint32_t recent;       /* messages with \Recent */
	uint64_t bytes;        /* sum of message sizes */
	int subscribed;
};

/* Creates a mailbox. Names: UTF-8, no '/', no empty hierarchy levels, no
 * leading or trailing separator, not starting with '.'; "INBOX" is case-insensitive. */
/* 1 if name may name a mailbox (the rules above). */
int store_mailbox_name_valid(const char *name);
int store_mailbox_create(struct store_txn *txn, uint32_t user_id, const char *name, uint32_t special_use,
			 struct store_mailbox *mb_r);
int store_mailbox_get(struct store_txn *txn, uint32_t user_id, const char *name, struct store_mailbox *mb_r);
int store_mailbox_get_by_id(struct store_txn *txn, uint32_t mbid, struct store_mailbox *mb_r);
/* The user's mailbox with this special-use bit (e.g. STORE_SU_JUNK). */
int store_mailbox_find_special(struct store_txn *txn, uint32_t user_id, uint32_t special_use,
			       struct store_mailbox *mb_r);
/* Renames a mailbox and its children ("A" -> "B" renames "A.x" to "B.x").
 * Renaming INBOX moves its messages into a new mailbox and leaves INBOX empty,
 * as RFC 3501 says. The mailbox keeps its id, UIDVALIDITY and messages. */
int store_mailbox_rename(struct store_txn *txn, uint32_t user_id, const char *oldname,
			 const char *newname);
/* Deletes a mailbox and its messages. INBOX cannot be deleted (STORE_EINVAL);
 * a mailbox with children gives STORE_ENOTEMPTY. */
int store_mailbox_delete(struct store_txn *txn, uint32_t user_id, const char *name);
/* Subscribes to (or unsubscribes from) a name. A name with no mailbox may be
 * subscribed (RFC 3501 6.3.6), and deleting a subscribed mailbox keeps its
 * name subscribed; creating a mailbox of a subscribed name makes the mailbox
 * subscribed. */
int store_mailbox_subscribe(struct store_txn *txn, uint32_t user_id, const char *name, int subscribed);
/* Calls cb for each subscribed name that has no mailbox, in name order
 * (mailboxes carry their own subscription in store_mailbox.subscribed). */
int store_subscription_foreach(struct store_txn *txn, uint32_t user_id,
			       int (*cb)(const char *name, void *ctx), void *ctx);
/* Calls cb for each of the user's mailboxes, in name order. */
int store_mailbox_foreach(struct store_txn *txn, uint32_t user_id,
			  int (*cb)(const struct store_mailbox *mb, void *ctx), void *ctx);

/* --- messages --------------------------------------------------------------- */

struct store_msg {
	uint32_t mbid;
	uint32_t uid;
	uint8_t hash[STORE_HASH_LEN];
	uint32_t flags;                    /* enum store_flag bits */
	char keywords[STORE_KEYWORDS_MAX]; /* space-separated, "" if none */
	int64_t internaldate;              /* seconds since the epoch */
	uint64_t size;                     /* bytes of the message */
	uint64_t modseq;                   /* last change */
	char base[STORE_BASE_MAX];         /* stable Maildir base name, unique in the mailbox */
};

/* What a new message needs. The blob must exist (store_blob_put). */
struct store_msg_new {
	uint8_t hash[STORE_HASH_LEN];
	uint32_t flags;
	const char *keywords;  /* NULL or "" for none */
	int64_t internaldate;  /* 0 = now */
	const char *base;      /* NULL = made up: "<internaldate>.M<n>.mailkeep" */
	const char *meta;      /* NULL or per-recipient text ("key=value\n" lines) */
	int no_quota;          /* 1: not counted against the quota's limit (a quota
				  warning, a Sieve error notice); else STORE_EQUOTA when over */
};

/* Adds a message: a new UID (UIDNEXT), a new modseq, one more reference on the
 * blob. The result (with uid and modseq) goes to msg_r if not NULL. */
int store_msg_add(struct store_txn *txn, uint32_t mbid, const struct store_msg_new *m, struct store_msg *msg_r);
int store_msg_get(struct store_txn *txn, uint32_t mbid, uint32_t uid, struct store_msg *msg_r);
/* Finds a message by its Maildir base name. */
int store_msg_get_by_base(struct store_txn *txn, uint32_t mbid, const char *base, struct store_msg *msg_r);
/* Per-recipient metadata; meta_r must hold STORE_META_MAX bytes. "" if none. */
int store_msg_meta(struct store_txn *txn, uint32_t mbid, uint32_t uid, char *meta_r);
/* Replaces the per-recipient metadata (does not change modseq). */
int store_msg_set_meta(struct store_txn *txn, uint32_t mbid, uint32_t uid, const char *meta);

enum store_flag_op { STORE_FLAGS_SET, STORE_FLAGS_ADD, STORE_FLAGS_REMOVE };
/* Changes flags and keywords (keywords may be NULL: unchanged for ADD/REMOVE,
 * none for SET). unchangedsince: 0 = no check, else STORE_EMODIFIED if the
 * message's modseq is higher. A real change gets a new modseq; no change keeps
 * it. The result goes to msg_r if not NULL. */
int store_msg_set_flags(struct store_txn *txn, uint32_t mbid, uint32_t uid, enum store_flag_op op,
			uint32_t flags, const char *keywords, uint64_t unchangedsince, struct store_msg *msg_r);
/* Sets the internal date (seconds since the epoch, > 0): what `touch -d` on the
 * mount asks for, as a Maildir's file mtime is its internal date. A change
 * gets a new modseq. The result goes to msg_r if not NULL. */
int store_msg_set_internaldate(struct store_txn *txn, uint32_t mbid, uint32_t uid, int64_t internaldate,
			       struct store_msg *msg_r);
/* Removes the message, remembers (mailbox, new modseq) -> uid, drops one
 * reference on the blob and frees the bytes with the last one. */
int store_msg_expunge(struct store_txn *txn, uint32_t mbid, uint32_t uid);
/* Copies into another (or the same) mailbox: a new UID there, the same blob,
 * flags, keywords, internal date, base name (or a new one if it is taken) and
 * metadata. The copy goes to copy_r if not NULL. */
int store_msg_copy(struct store_txn *txn, uint32_t mbid, uint32_t uid, uint32_t dst_mbid,
		   struct store_msg *copy_r);
/* Copy then expunge (a move: the quota's use does not change). A copy is
 * STORE_EQUOTA when it would take the user over quota. */
int store_msg_move(struct store_txn *txn, uint32_t mbid, uint32_t uid, uint32_t dst_mbid,
		   struct store_msg *moved_r);

/* Iterates over a mailbox's messages in UID order, from the first UID >= from_uid. */
struct store_cursor;
int store_msg_cursor_open(struct store_txn *txn, uint32_t mbid, uint32_t from_uid, struct store_cursor **cur_r);
/* 0 with the next message, STORE_ENOTFOUND at the end. */
int store_msg_cursor_next(struct store_cursor *cur, struct store_msg *msg_r);
/* As store_msg_cursor_next, but only messages whose modseq is above since: the
 * others are passed over without being decoded (cheap: a resync after a few
 * flag changes in a big mailbox). *passed_r (if not NULL) gets how many were
 * passed over before the one returned, or before the end. */
int store_msg_cursor_next_since(struct store_cursor *cur, uint64_t since, struct store_msg *msg_r,
				uint32_t *passed_r);
void store_msg_cursor_close(struct store_cursor **cur);
/* Convenience: calls cb per message in UID order; stops when cb returns non-zero. */
int store_msg_foreach(struct store_txn *txn, uint32_t mbid,
		      int (*cb)(const struct store_msg *msg, void *ctx), void *ctx);
/* Calls cb(uid, modseq) for messages expunged from mbid with modseq > since, in modseq order. */
int store_expunged_since(struct store_txn *txn, uint32_t mbid, uint64_t since,
			 int (*cb)(uint32_t uid, uint64_t modseq, void *ctx), void *ctx);

/* --- delivery ----------------------------------------------------------------- */

struct store_rcpt {
	const char *user;     /* store user name (created if absent) */
	const char *mailbox;  /* NULL = INBOX */
	uint32_t flags;
	const char *meta;     /* per-recipient metadata, NULL for none */
	const char *keywords; /* NULL or space-separated IMAP keywords (Sieve's imap4flags) */
	int create;           /* create mailbox if it does not exist (Sieve's fileinto :create) */
	int no_quota;         /* as store_msg_new's */
	int classified;       /* the classify hook ran already (special_use, hook_meta are set) */
	/* set by the classify hook (spam filter) when mailbox is NULL */
	uint32_t special_use;     /* deliver into the user's mailbox with this special-use (STORE_SU_JUNK) */
	char hook_meta[1024];     /* appended to meta ("spam.result=Spam\n...") */
	/* optional (index/retry.h): a delivery whose key was stored for this
	 * recipient within retry_window seconds is a retry of that one: nothing
	 * is added, result is 0 and duplicate is set */
	const uint8_t *retry_key; /* STORE_HASH_LEN bytes, or NULL */
	int64_t retry_window;
	/* results */
	int result;           /* 0 or STORE_E* */
	int duplicate;        /* a retry: mbid/uid are the first delivery's, age its age in seconds */
	int64_t age;
	uint32_t mbid, uid;
};

/* Stores data once and adds a message for each recipient, all in one durable,
 * group-committed write. Each message gets rcpt->flags and \Recent: it is new
 * mail (new/ on the mount) until an IMAP SELECT or a MUA's rename claims it.
 * Returns 0 if the commit succeeded (each rcpt's result says whether its
 * message was added: a missing mailbox fails that recipient only), or STORE_E*
 * if nothing was stored. */
int store_deliver(struct store *store, const void *data, size_t len, int64_t internaldate,
		  struct store_rcpt *rcpts, size_t nrcpts, uint8_t hash_r[STORE_HASH_LEN]);

/* As store_deliver, but all recipients or none: if any recipient fails,
 * nothing is stored and that recipient's error is returned. SMTP uses it,
 * since one reply after DATA speaks for every recipient. */
int store_deliver_atomic(struct store *store, const void *data, size_t len, int64_t internaldate,
			 struct store_rcpt *rcpts, size_t nrcpts, uint8_t hash_r[STORE_HASH_LEN]);

/* --- hooks --------------------------------------------------------------------- */

/* Hooks let the spam filter (index/spam*.c) see deliveries and moves without
 * the programs knowing about it: smtpin, imapd, fs and tools all go through
 * store_deliver / store_msg_move / store_msg_copy. */
struct store_hooks {
	/* Called by store_deliver before the write, outside any transaction, once
	 * per recipient whose mailbox is NULL: may set rcpt->special_use and
	 * rcpt->hook_meta. A non-zero return is logged and ignored (mail goes to INBOX). */
	int (*classify)(struct store *store, struct store_rcpt *rcpt, const void *data, size_t len, void *ctx);
	/* Called inside the write transaction when a message is moved or copied
	 * between a Junk and a non-Junk mailbox of the same user (to_junk says
	 * which way): the spam filter retrains. A negative return fails the move. */
	int (*junk_moved)(struct store_txn *txn, uint32_t user_id, const struct store_msg *msg, int to_junk,
			  void *ctx);
	void *ctx;
};
/* Installs hooks (copied). NULL removes them. Call before any thread writes. */
void store_set_hooks(struct store *store, const struct store_hooks *hooks);
/* Runs the classify hook on one recipient now (as store_deliver would) and
 * sets rcpt->classified, so that Sieve can see the spam verdict before it
 * decides where the message goes. Without a hook it only sets classified. */
void store_classify(struct store *store, struct store_rcpt *rcpt, const void *data, size_t len);

/* --- change notification ------------------------------------------------------- */

/* The global change sequence: bumped by every write that changed anything. */
int store_change_seq(struct store_txn *txn, uint64_t *seq_r);
/* An inotify fd that becomes readable when any process commits a change.
 * After it wakes, call store_watch_drain and compare store_change_seq /
 * mailbox HIGHESTMODSEQ with what you last saw. Returns the fd or -1. */
int store_watch_open(struct store *store);
void store_watch_drain(int fd);

/* --- maintenance ---------------------------------------------------------------- */

struct store_stats {
	uint64_t users, mailboxes, messages, aliases;
	uint64_t blobs;            /* distinct stored messages */
	uint64_t bytes_stored;     /* bytes of the distinct messages */
	uint64_t bytes_referenced; /* sum of sizes over all messages (what Maildir would hold) */
	uint64_t file_bytes;       /* size of the LMDB file */
	uint64_t map_size;
};
/* Counts from one read snapshot. 0, or the STORE_E* of the first table that
 * could not be read (stats_r is then all zero, never half-filled). */
int store_stats(struct store *store, struct store_stats *stats_r);

/* Re-hashes every blob and checks every reference and counter. Calls report
 * once per problem. Returns the number of problems (0: consistent), or a
 * negative STORE_E* if the check could not run. progress (may be NULL) is
 * called now and then with done/total blobs. */
int store_fsck(struct store *store, void (*report)(const char *problem, void *ctx),
	       void (*progress)(uint64_t done, uint64_t total, void *ctx), void *ctx);

/* A consistent, compacted copy of the live store into the directory dst
 * (created if missing, must not hold a store). Writers go on meanwhile. */
int store_backup(struct store *store, const char *dst, char *err, size_t errsize);

#endif
