/* import_imap_int — what the files of `mailkeep import imaps://` share
 * (tools/import_imap.c: the run, options, connecting, retries;
 * import_imap_folders.c: names, special use, LIST, the record hook;
 * import_imap_fetch.c: EXAMINE, listing, fetching, flag changes). Private to
 * those three files. */
#ifndef MK_TOOLS_IMPORT_IMAP_INT_H
#define MK_TOOLS_IMPORT_IMAP_INT_H

#include <stddef.h>
#include <stdint.h>

#include "index/import_state.h"
#include "index/store.h"
#include "tools/cli.h"
#include "tools/imapc.h"
#include "tools/importer.h"

#define CHUNK_MSGS 250
#define CHUNK_BYTES (16u << 20)
#define WINDOW 4	  /* FETCH commands in flight */
#define RETRIES 8	  /* reconnections in a row without progress */
#define BACKOFF_MAX 300.0 /* seconds */
#define SECRET_MAX 8192
/* Gmail lets an account download about 2500 MB a day over IMAP; a run
 * stops a little below unless --max-bytes says otherwise */
#define GMAIL_DAILY ((uint64_t)2400 << 20)

enum folder_kind { FK_NORMAL, FK_ALL, FK_SKIP };

struct uidsize {
	uint32_t uid;
	uint32_t size;
};

/* A message whose flags changed on the server since the last run. */
struct flagchange {
	uint32_t uid;
	uint32_t flags;
	char keywords[STORE_KEYWORDS_MAX];
};

struct folder {
	char wire[1024];		 /* the server's name (modified UTF-7) */
	char target[STORE_NAME_MAX + 1]; /* ours */
	char shown[STORE_NAME_MAX + 1];	 /* the server's name in UTF-8, for messages */
	uint32_t special;		 /* STORE_SU_* of the source folder */
	enum folder_kind kind;
	const char *why; /* FK_SKIP: why */
	int noselect;
	/* progress, committed by the importer's hook */
	struct import_state st; /* how far it got: the record, then this run */
	int dirty;
	int prepared;		    /* listed: uids holds what is to be fetched */
	uint32_t uidvalidity_now;   /* from EXAMINE */
	uint64_t exists;	    /* from EXAMINE */
	uint32_t uidnext;	    /* from EXAMINE, 0 if not said */
	uint64_t modseq;	    /* HIGHESTMODSEQ from EXAMINE, 0 if none */
	uint64_t listed_modseq;	    /* ... when the UIDs were listed */
	struct uidsize *uids;	    /* to fetch, ascending */
	uint8_t *taken;		    /* per uids[i]: in the importer (or gone from the server) */
	size_t nuids, prefix;	    /* uids[0..prefix) are all taken */
	uint32_t resume_hi;	    /* the record's hi_uid when the run began */
	char srcid[17];		    /* names (server, login, folder) in our messages' metadata */
	struct flagchange *changes; /* CONDSTORE: flags changed on the server since */
	size_t nchanges;
	uint64_t bytes;
	int failed;
};

struct imap_run {
	struct cli *cli;
	struct store *store;
	struct importer *imp;
	struct imapc c;
	struct imapc_opts o;
	char host[256];
	char login[512];
	char secret[SECRET_MAX];
	int oauth2;
	const char *oauth2_mech; /* --oauth2-mechanism, or NULL: what the server offers */
	const char *prefix;	 /* --mailbox: every folder under it */
	char source[1024];	 /* "imaps://login@host:port": the key of the records */
	char ns_prefix[256];
	char delim_of_prefix;
	struct folder *folders;
	size_t nfolders;
	int condstore, gmail, full, quiet;
	char special_name[8][STORE_NAME_MAX + 1]; /* our mailbox per STORE_SU_ bit index */
	/* progress */
	struct progress prog;
	uint64_t total_msgs, total_bytes, done_msgs, done_bytes;
	uint64_t elsewhere;	/* \All messages another mailbox holds */
	uint64_t flags_updated; /* messages whose flags followed the server's */
	/* limits */
	double max_rate;
	uint64_t max_bytes;    /* 0: no limit */
	int max_bytes_given;   /* --max-bytes said so (else Gmail gets GMAIL_DAILY) */
	uint64_t bytes_before; /* read on the connections closed before this one */
	double t0;
	int stopped_by_limit;
	int throttled;
	double window_pause;
	int retries;
	int fatal;
};

/* import_imap_folders.c */
/* LIST's untagged replies: a struct folder each, named ours (ctx: the run). */
int imap_list_cb(struct imapc *c, void *ctx);
/* Special-use folders onto the user's own, \All last, --mailbox applied. */
void imap_map_folders(struct imap_run *r);
/* store_write function: the target mailboxes, empty folders too. */
int imap_create_targets(struct store_txn *txn, void *ctx);
/* The importer's commit hook: every touched folder's record. */
int imap_commit_state(struct store_txn *txn, uint32_t user_id, void *ctx);

/* import_imap_fetch.c; each returns as imapc_cmd (0, 1 refused, -1 network),
 * -2 if the store failed */
int imap_examine(struct imap_run *r, struct folder *f);
/* The UIDs (and sizes) above the folder's last UID taken into f->uids. */
int imap_list_folder(struct imap_run *r, struct folder *f);
/* What is not taken of f->uids, several FETCHes in flight. */
int imap_fetch_folder(struct imap_run *r, struct folder *f);
/* CONDSTORE: the server's flag changes since the record onto our copies. */
int imap_sync_flags(struct imap_run *r, struct folder *f);

/* Bytes read from the server in this run, over every connection. */
static inline uint64_t imap_run_bytes(const struct imap_run *r)
{
	return r->bytes_before + r->c.bytes_in;
}

#endif
