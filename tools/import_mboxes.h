/* import_mboxes — mbox-based sources beyond a plain mbox: a Google Takeout
 * mbox (labels -> mailboxes, tools/import_takeout.c) and Thunderbird's local
 * folders (an mbox per folder, .msf indexes ignored,
 * tools/import_thunderbird.c) and Outlook files through readpst
 * (tools/import_pst.c). They read mbox files with mbox_each().
 */
#ifndef MK_TOOLS_IMPORT_MBOXES_H
#define MK_TOOLS_IMPORT_MBOXES_H

#include <stddef.h>
#include <stdint.h>

#include "index/mbox.h"
#include "tools/cli.h"
#include "tools/importer.h"

struct mbox_each_msg {
	const char *data; /* the message, unquoted (valid during the call) */
	size_t len;
	int64_t internaldate; /* the From line's date, else the file's mtime */
	const char *meta;     /* "mbox_from=..." as the mbox import keeps it, or NULL */
	const char *origin;   /* "file: message N (byte B)" */
};

/* Calls cb for each message of the mbox at path (mapped, read once).
 * Returns 0, -1 if the file cannot be read or is not an mbox (said), or
 * what cb returned if not 0. progress (may be NULL) is updated by bytes. */
int mbox_each(const char *path, enum mbox_variant variant,
	      int (*cb)(const struct mbox_each_msg *m, void *ctx), void *ctx, struct progress *prog,
	      const struct importer *imp);

/* 1 if path is an mbox whose first message has an X-Gmail-Labels header. */
int import_is_takeout(const char *path);
/* A Takeout mbox: each message into the mailbox of each of its labels (one
 * stored copy), Starred -> \Flagged, Important -> $Important, Unread ->
 * not \Seen. prefix (may be NULL) is a parent for every mailbox. Returns 0,
 * 1 if some messages failed or the file could not be read (said), -1 if the
 * store failed (stop). */
int import_takeout(struct importer *imp, struct progress *prog, const char *path,
		   enum mbox_variant variant, const char *prefix);

/* 1 if dir looks like Thunderbird's local folders (a NAME.msf or NAME.sbd). */
int import_is_thunderbird(const char *dir);
/* Thunderbird's folders: each mbox NAME is a mailbox (Inbox -> INBOX,
 * Archives -> Archive, NAME.sbd/ its children); X-Mozilla-Status gives
 * flags, X-Mozilla-Keys keywords, and messages marked expunged (deleted but
 * not yet compacted away) are skipped. Returns as import_takeout. */
int import_thunderbird(struct importer *imp, struct progress *prog, const char *dir,
		       const char *prefix);

/* 1 if path begins like an Outlook .pst/.ost file ("!BDN"). */
int import_is_pst(const char *path);
/* An Outlook file through readpst (pst-utils), run without root into a
 * temporary directory: each mail folder's mbox into a mailbox (Inbox ->
 * INBOX, Sent Items -> Sent, Deleted Items -> Trash, Junk E-mail -> Junk).
 * Returns as import_takeout. */
int import_pst(struct importer *imp, struct progress *prog, const char *path, const char *prefix);

#endif
