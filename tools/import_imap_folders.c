/* import_imap_folders — the server's folders as ours: names (modified UTF-7
 * and the server's delimiter to UTF-8 and '.'), special use onto the user's
 * own mailboxes, \All last, the mailboxes made, and the record of how far
 * each folder got written with every batch (see import_imap.c). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "lib/utf7.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "tools/import_imap_int.h"

/* --- folder names ---------------------------------------------------------------- */

/* Appends s to out (at *o), with '.' -> U+2024 and '/' -> U+2215 unless the
 * character is the delimiter (which never reaches here). */
static int put_component(const char *s, size_t len, char *out, size_t outsize, size_t *o)
{
	if (len == 0) {
		s = "_";
		len = 1;
	}
	for (size_t i = 0; i < len; i++) {
		const char *rep = NULL;
		if (s[i] == '.')
			rep = "\xe2\x80\xa4"; /* U+2024 ONE DOT LEADER */
		else if (s[i] == '/')
			rep = "\xe2\x88\x95"; /* U+2215 DIVISION SLASH */
		else if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return -1;
		size_t n = rep != NULL ? strlen(rep) : 1;
		if (*o + n + 1 >= outsize)
			return -1;
		memcpy(out + *o, rep != NULL ? rep : s + i, n);
		*o += n;
	}
	out[*o] = '\0';
	return 0;
}

/* The store name of a server folder (UTF-8 name, the server's delimiter). */
static int map_name(const char *utf8, char delim, char *out, size_t outsize)
{
	size_t o = 0;
	const char *p = utf8;

	out[0] = '\0';
	if (strcasecmp(utf8, "INBOX") == 0) {
		mk_strlcpy(out, "INBOX", outsize);
		return 0;
	}
	for (;;) {
		const char *d = delim != '\0' ? strchr(p, delim) : NULL;
		size_t len = d != NULL ? (size_t)(d - p) : strlen(p);
		if (o > 0) {
			if (o + 2 >= outsize)
				return -1;
			out[o++] = STORE_MAILBOX_SEP;
		}
		if (o == 0 && len == 5 && strncasecmp(p, "INBOX", 5) == 0) {
			memcpy(out, "INBOX", 5);
			o = 5;
			out[o] = '\0';
		} else if (put_component(p, len, out, outsize, &o) < 0) {
			return -1;
		}
		if (d == NULL)
			break;
		p = d + 1;
	}
	return strlen(out) <= STORE_NAME_MAX ? 0 : -1;
}

static const struct {
	const char *attr;
	uint32_t su;
} special_attrs[] = {
    {"\\Sent", STORE_SU_SENT},	     {"\\Drafts", STORE_SU_DRAFTS},   {"\\Junk", STORE_SU_JUNK},
    {"\\Trash", STORE_SU_TRASH},     {"\\Archive", STORE_SU_ARCHIVE}, {"\\All", STORE_SU_ALL},
    {"\\Flagged", STORE_SU_FLAGGED},
};

/* Usual names of special folders on servers that do not say (RFC 6154 came late). */
static const struct {
	const char *name;
	uint32_t su;
} special_names[] = {
    {"Sent", STORE_SU_SENT},	       {"Sent Items", STORE_SU_SENT},
    {"Sent Messages", STORE_SU_SENT},  {"Sent Mail", STORE_SU_SENT},
    {"Drafts", STORE_SU_DRAFTS},       {"Draft", STORE_SU_DRAFTS},
    {"Junk", STORE_SU_JUNK},	       {"Spam", STORE_SU_JUNK},
    {"Junk E-mail", STORE_SU_JUNK},    {"Junk Email", STORE_SU_JUNK},
    {"Bulk Mail", STORE_SU_JUNK},      {"Trash", STORE_SU_TRASH},
    {"Deleted Items", STORE_SU_TRASH}, {"Deleted Messages", STORE_SU_TRASH},
    {"Bin", STORE_SU_TRASH},	       {"Archive", STORE_SU_ARCHIVE},
    {"Archives", STORE_SU_ARCHIVE},
};

static int su_index(uint32_t su)
{
	for (int i = 0; i < 8; i++)
		if (su == (1u << i))
			return i;
	return 0;
}

/* --- the commit hook: records written with the messages --------------------------- */

/* Runs inside each batch's write transaction: the record of every folder
 * this run touched, as far as what is queued goes (the messages queued and
 * the records are read at the same moment, so they agree). */

int imap_commit_state(struct store_txn *txn, uint32_t user_id, void *ctx)
{
	struct imap_run *r = ctx;
	int rc;

	for (size_t i = 0; i < r->nfolders; i++) {
		struct folder *f = &r->folders[i];
		if (!f->dirty)
			continue;
		if ((rc = import_state_put(txn, user_id, r->source, f->wire, &f->st)) != 0)
			return rc;
	}
	/* nothing is cleared here: the store may run this again (a batch that
	 * found the map full runs again once it grew), and a failed commit keeps
	 * none of it; a folder touched in this run is written with every batch */
	return 0;
}

/* --- LIST ------------------------------------------------------------------------------ */

int imap_list_cb(struct imapc *c, void *ctx)
{
	struct imap_run *r = ctx;
	const struct imapc_resp *p = &c->resp;
	struct folder f;
	char delim[8] = "";

	if (p->status != IMAPC_DATA || !imapc_is_atom(p, p->first, "LIST"))
		return 0;
	int32_t attrs = p->nodes[p->first].next;
	int32_t dn = attrs >= 0 ? p->nodes[attrs].next : -1;
	int32_t nn = dn >= 0 ? p->nodes[dn].next : -1;
	const struct imapc_node *a = imapc_node(p, attrs);
	if (a == NULL || a->type != IMAPC_LIST || nn < 0)
		return 0;
	memset(&f, 0, sizeof(f));
	if (imapc_copy(p, nn, f.wire, sizeof(f.wire)) < 0) {
		cli_warn("import: a folder name of the server is too long or holds a NUL: skipped");
		return 0;
	}
	if (p->nodes[dn].type != IMAPC_NIL && imapc_copy(p, dn, delim, sizeof(delim)) < 0)
		delim[0] = '\0';
	for (int32_t n = a->first; n >= 0; n = p->nodes[n].next) {
		if (imapc_is_atom(p, n, "\\Noselect") || imapc_is_atom(p, n, "\\NonExistent"))
			f.noselect = 1;
		for (size_t i = 0; i < sizeof(special_attrs) / sizeof(special_attrs[0]); i++)
			if (imapc_is_atom(p, n, special_attrs[i].attr))
				f.special |= special_attrs[i].su;
		if (imapc_is_atom(p, n, "\\Important"))
			f.kind = FK_SKIP, f.why = "\\Important (its messages are in other folders)";
	}
	/* a short name of (server, login, folder) for the messages' metadata */
	{
		uint8_t h[STORE_HASH_LEN];
		char key[sizeof(r->source) + sizeof(f.wire) + 1];
		size_t sl = strlen(r->source), wl = strlen(f.wire);
		memcpy(key, r->source, sl + 1);
		memcpy(key + sl + 1, f.wire, wl);
		store_hash(key, sl + 1 + wl, h);
		for (int i = 0; i < 8; i++)
			snprintf(f.srcid + 2 * i, 3, "%02x", h[i]);
	}
	/* the name in UTF-8 */
	if (utf7_to_utf8(f.wire, f.shown, sizeof(f.shown)) < 0)
		mk_strlcpy(f.shown, f.wire, sizeof(f.shown));
	/* under a personal namespace prefix ("INBOX." on Courier), names are ours without it */
	const char *rel = f.shown;
	size_t pl = strlen(r->ns_prefix);
	if (pl > 0 && strncmp(f.shown, r->ns_prefix, pl) == 0 && f.shown[pl] != '\0')
		rel = f.shown + pl;
	if (map_name(rel, delim[0], f.target, sizeof(f.target)) < 0) {
		f.kind = FK_SKIP;
		f.why = "the name cannot be a mailbox name here (too long or control characters)";
	}
	r->folders = xreallocarray(r->folders, r->nfolders + 1, sizeof(*r->folders));
	r->folders[r->nfolders++] = f;
	return 0;
}

static int folder_order(const void *a, const void *b)
{
	const struct folder *x = a, *y = b;
	/* \All last: it brings only what no other folder brought */
	if ((x->kind == FK_ALL) != (y->kind == FK_ALL))
		return x->kind == FK_ALL ? 1 : -1;
	if (strcasecmp(x->wire, "INBOX") == 0 || strcasecmp(y->wire, "INBOX") == 0)
		return strcasecmp(x->wire, "INBOX") == 0 ? -1 : strcasecmp(y->wire, "INBOX") != 0;
	return strcmp(x->wire, y->wire);
}

static int ours_special(const struct store_mailbox *mb, void *ctx)
{
	struct imap_run *r = ctx;
	for (int i = 0; i < 8; i++)
		if ((mb->special_use & (1u << i)) && r->special_name[i][0] == '\0')
			mk_strlcpy(r->special_name[i], mb->name, sizeof(r->special_name[i]));
	return 0;
}

/* Decides each folder's target: special-use onto ours, \All last. */
void imap_map_folders(struct imap_run *r)
{
	static const char *const defaults[8] = {"Sent",	   "Drafts",  "Junk", "Trash",
						"Archive", "Archive", "",     ""};
	uint32_t seen = 0;
	struct store_txn *txn = NULL;

	for (int i = 0; i < 8; i++)
		mk_strlcpy(r->special_name[i], defaults[i], sizeof(r->special_name[i]));
	for (int i = 0; i < 8; i++)
		r->special_name[i][0] = '\0';
	if (store_read_begin(r->store, &txn) == 0) {
		(void)store_mailbox_foreach(txn, importer_user_id(r->imp), ours_special, r);
		store_read_end(&txn);
	}
	for (int i = 0; i < 8; i++)
		if (r->special_name[i][0] == '\0')
			mk_strlcpy(r->special_name[i], defaults[i], sizeof(r->special_name[i]));
	/* \All goes into ours Archive */
	mk_strlcpy(r->special_name[su_index(STORE_SU_ALL)],
		   r->special_name[su_index(STORE_SU_ARCHIVE)], STORE_NAME_MAX + 1);

	for (size_t i = 0; i < r->nfolders; i++)
		seen |= r->folders[i].special;
	for (size_t i = 0; i < r->nfolders; i++) {
		struct folder *f = &r->folders[i];
		if (f->kind == FK_SKIP)
			continue;
		if (f->noselect) {
			f->kind = FK_SKIP;
			f->why = NULL; /* a level of the hierarchy: nothing to copy */
			continue;
		}
		if (f->special == 0 && strchr(f->target, STORE_MAILBOX_SEP) == NULL) {
			/* a top-level folder with a usual name, when no folder said it is that */
			for (size_t k = 0; k < sizeof(special_names) / sizeof(special_names[0]);
			     k++)
				if (strcasecmp(f->target, special_names[k].name) == 0 &&
				    !(seen & special_names[k].su))
					f->special = special_names[k].su;
		}
		if (f->special & STORE_SU_FLAGGED) {
			f->kind = FK_SKIP;
			f->why = "\\Flagged (its messages are in other folders, with the flag)";
			continue;
		}
		if (f->special & STORE_SU_ALL) {
			f->kind = FK_ALL;
			mk_strlcpy(f->target, r->special_name[su_index(STORE_SU_ALL)],
				   sizeof(f->target));
			continue;
		}
		for (int b = 0; b < 5; b++)
			if (f->special & (1u << b)) {
				mk_strlcpy(f->target, r->special_name[b], sizeof(f->target));
				break;
			}
	}
	for (size_t i = 0; i < r->nfolders && r->prefix != NULL; i++) {
		/* --mailbox P: INBOX is P, the others P.NAME (ours for special ones) */
		struct folder *f = &r->folders[i];
		char t[2 * STORE_NAME_MAX + 2];
		if (f->kind == FK_SKIP)
			continue;
		if (strcmp(f->target, "INBOX") == 0)
			snprintf(t, sizeof(t), "%s", r->prefix);
		else
			snprintf(t, sizeof(t), "%s%c%s", r->prefix, STORE_MAILBOX_SEP, f->target);
		if (strlen(t) > STORE_NAME_MAX) {
			f->kind = FK_SKIP;
			f->why = "the mailbox name would be too long";
			f->failed = 1;
			continue;
		}
		mk_strlcpy(f->target, t, sizeof(f->target));
	}
	if (r->nfolders > 1)
		qsort(r->folders, r->nfolders, sizeof(*r->folders), folder_order);
}

/* Creates the target mailboxes (empty folders are copied too) in one write;
 * a name the store refuses skips its folder. */
int imap_create_targets(struct store_txn *txn, void *ctx)
{
	struct imap_run *r = ctx;
	uint32_t uid = importer_user_id(r->imp);

	for (size_t i = 0; i < r->nfolders; i++) {
		struct folder *f = &r->folders[i];
		struct store_mailbox mb;
		int rc;
		if (f->kind == FK_SKIP)
			continue;
		rc = store_mailbox_get(txn, uid, f->target, &mb);
		if (rc == STORE_ENOTFOUND) {
			/* parents first, as a client's CREATE would make them */
			char parent[STORE_NAME_MAX + 1];
			mk_strlcpy(parent, f->target, sizeof(parent));
			for (char *d = strchr(parent, STORE_MAILBOX_SEP); d != NULL;
			     d = strchr(d + 1, STORE_MAILBOX_SEP)) {
				*d = '\0';
				if (strcasecmp(parent, "INBOX") != 0 &&
				    store_mailbox_get(txn, uid, parent, &mb) == STORE_ENOTFOUND)
					(void)store_mailbox_create(txn, uid, parent, 0, &mb);
				*d = STORE_MAILBOX_SEP;
			}
			rc = store_mailbox_create(txn, uid, f->target, 0, &mb);
		}
		if (rc == STORE_EINVAL || rc == STORE_EEXIST) {
			f->kind = FK_SKIP;
			f->why = "the store refuses the mailbox name";
			f->failed = 1;
			continue;
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}
