/* importer — adds many messages to one user's mailboxes, fast and without
 * duplicates.
 *
 * Messages are collected into batches (up to batch_msgs messages or
 * batch_bytes bytes) and each batch is one store_write: one durable commit for
 * thousands of messages. A batch is all or nothing, so an import killed at any
 * point leaves a consistent store holding whole batches.
 *
 * No duplicates on a second run: for each mailbox the importer counts the
 * messages already there by blob hash, and adds the k-th copy of a message from
 * the source only if the mailbox does not already hold k copies. Running the
 * same import twice (or after a crash) adds only what is missing; a source
 * that really holds the same message twice gets it twice.
 */
#ifndef MK_TOOLS_IMPORTER_H
#define MK_TOOLS_IMPORTER_H

#include <stddef.h>
#include <stdint.h>

#include "index/store.h"

struct importer;

struct import_msg {
	const char *mailbox; /* store name: "INBOX", "Lists.lkml" */
	const void *data;    /* the message bytes (copied) */
	size_t len;
	uint32_t flags;	      /* store flags */
	const char *keywords; /* NULL or space-separated */
	int64_t internaldate; /* 0 = now */
	const char *base;     /* Maildir base name to keep, or NULL */
	const char *meta;     /* per-message metadata text, or NULL */
	const char *origin;   /* where it came from, for messages ("file", "mbox:offset") */
	int force;	      /* add it even if the mailbox holds the same bytes: the caller
				 knows it is new (import_state says so) */
};

struct import_totals {
	uint64_t added, added_bytes;
	uint64_t present; /* already in the mailbox: skipped */
	uint64_t failed;  /* refused by the store (too big, bad name): reported */
	uint64_t seen, seen_bytes;
	uint64_t mailboxes_created;
};

/* Starts an import for an existing user. Returns NULL after printing why. */
struct importer *importer_new(struct store *store, const char *user, size_t batch_msgs,
			      size_t batch_bytes);
/* Queues a message (writing a batch when full). Returns 0, or a negative
 * STORE_E* if a batch could not be stored (the import must stop: the message
 * has been printed). */
int importer_add(struct importer *imp, const struct import_msg *m);
/* Writes what is queued. Same returns as importer_add. */
int importer_flush(struct importer *imp);
const struct import_totals *importer_totals(const struct importer *imp);

/* A function run inside every batch's write transaction, after its messages
 * are added (and by importer_checkpoint even with no messages): the caller
 * records there how far it got, so the record and the messages it covers are
 * committed together. A non-zero return rolls the whole batch back. */
typedef int importer_commit_fn(struct store_txn *txn, uint32_t user_id, void *ctx);
void importer_set_commit_hook(struct importer *imp, importer_commit_fn *fn, void *ctx);
/* Writes what is queued and runs the commit hook, even if nothing is queued.
 * Same returns as importer_flush. */
int importer_checkpoint(struct importer *imp);
/* 1 if any mailbox of the user holds (or this import has queued) a message
 * with these bytes. The first call reads every mailbox's hashes once. */
int importer_user_has(struct importer *imp, const uint8_t hash[STORE_HASH_LEN]);
/* The store's user id of the import's user. */
uint32_t importer_user_id(const struct importer *imp);
void importer_free(struct importer **imp);

#endif
