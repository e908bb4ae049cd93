/* gmail_labels — what a Google Takeout message's X-Gmail-Labels header means
 * here: the mailboxes that hold it, and its flags.
 *
 * Takeout writes one mbox ("All mail Including Spam and Trash.mbox") with
 * each message once, and its labels in a header:
 *     X-Gmail-Labels: Inbox,Important,Opened,Work/Project,"a, b"
 * Gmail's system labels map onto the user's special mailboxes (Inbox ->
 * INBOX, Sent, Drafts, Spam -> Junk, Trash, Chat -> Chats), Starred to
 * \Flagged, Important to the keyword $Important, Unread to no \Seen (a
 * message without it is \Seen); "Opened", "Archived" and the "Category ..."
 * tabs are not mailboxes. A user label is a mailbox, '/' being Gmail's
 * hierarchy: "Work/Project" -> "Work.Project"; a '.' inside a label becomes
 * U+2024 ONE DOT LEADER so it does not make a level. A message with no
 * mailbox label is in Archive (Gmail's "archived": only in All Mail).
 * Labels in RFC 2047 encoded words (=?UTF-8?Q?...?=) are decoded.
 *
 * Pure: no I/O. The message bytes are not changed (the header stays).
 */
#ifndef MK_GMAIL_LABELS_H
#define MK_GMAIL_LABELS_H

#include <stddef.h>
#include <stdint.h>

#include "index/store.h"

#define GMAIL_LABELS_MAX 64 /* mailboxes per message; more are dropped (counted) */

struct gmail_labels {
	size_t n;					    /* mailboxes */
	char mailbox[GMAIL_LABELS_MAX][STORE_NAME_MAX + 1]; /* store names, no duplicates */
	uint32_t flags;					    /* STORE_F_SEEN, STORE_F_FLAGGED */
	int important;					    /* the keyword $Important */
	size_t dropped; /* labels over GMAIL_LABELS_MAX, or that cannot be mailbox names */
};

/* Reads the X-Gmail-Labels header of msg (the header section only). Returns
 * 1 if the message has one (out filled), 0 if not (out says: Archive, \Seen). */
int gmail_labels_parse(const char *msg, size_t len, struct gmail_labels *out);

/* 1 if msg has an X-Gmail-Labels header. */
int gmail_labels_present(const char *msg, size_t len);

#endif
