/* cmd_mailbox — mailbox management: CREATE (CREATE-SPECIAL-USE), DELETE,
 * RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST (LIST-EXTENDED, LIST-STATUS,
 * SPECIAL-USE, CHILDREN), LSUB, STATUS. Names are UTF-8 in the store and
 * modified UTF-7 on the wire; a user only ever sees their own user id's
 * mailboxes, so no name can reach another user's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imapd/fetch.h"
#include "imapd/session.h"
#include "lib/utf7.h"
#include "lib/util.h"
#include "lib/array.h"
#include "lib/xmalloc.h"

struct mbop {
	uint32_t user_id;
	const char *a, *b;
	uint32_t special;
	int subscribe;
};

static int create_fn(struct store_txn *txn, void *ctx)
{
	struct mbop *op = ctx;
	return store_mailbox_create(txn, op->user_id, op->a, op->special, NULL);
}

static int delete_fn(struct store_txn *txn, void *ctx)
{
	struct mbop *op = ctx;
	return store_mailbox_delete(txn, op->user_id, op->a);
}

static int rename_fn(struct store_txn *txn, void *ctx)
{
	struct mbop *op = ctx;
	return store_mailbox_rename(txn, op->user_id, op->a, op->b);
}

static int subscribe_fn(struct store_txn *txn, void *ctx)
{
	struct mbop *op = ctx;
	return store_mailbox_subscribe(txn, op->user_id, op->a, op->subscribe);
}

static const struct {
	const char *name;
	uint32_t bit;
} special_uses[] = {
    {"\\Sent", STORE_SU_SENT},	     {"\\Drafts", STORE_SU_DRAFTS},   {"\\Junk", STORE_SU_JUNK},
    {"\\Trash", STORE_SU_TRASH},     {"\\Archive", STORE_SU_ARCHIVE}, {"\\All", STORE_SU_ALL},
    {"\\Flagged", STORE_SU_FLAGGED},
};

void cmd_create(struct session *s, struct imap_command *cmd)
{
	char name[STORE_NAME_MAX + 2];
	struct mbop op = {.user_id = s->user_id};
	if (cmd->nargs < 1 || cmd->nargs > 2) {
		sess_tagged(s, "BAD", "CREATE needs a mailbox name");
		return;
	}
	if (sess_mailbox_arg(s, &cmd->args[0], name, sizeof(name)) < 0)
		return;
	size_t l = strlen(name);
	if (l > 1 && name[l - 1] == STORE_MAILBOX_SEP)
		name[l - 1] = '\0';
	if (strcmp(name, "INBOX") == 0) {
		sess_tagged(s, "NO", "[ALREADYEXISTS] INBOX always exists");
		return;
	}
	if (cmd->nargs == 2) {
		/* (USE (\Sent ...)) */
		const struct imap_arg *o = &cmd->args[1];
		if (o->type != IMAP_ARG_LIST || o->len != 2 ||
		    !imap_arg_is_atom(&o->list[0], "USE") || o->list[1].type != IMAP_ARG_LIST) {
			sess_tagged(s, "BAD", "Bad CREATE parameters");
			return;
		}
		for (size_t i = 0; i < o->list[1].len; i++) {
			const struct imap_arg *u = &o->list[1].list[i];
			size_t k;
			for (k = 0; k < sizeof(special_uses) / sizeof(special_uses[0]); k++)
				if (u->type == IMAP_ARG_ATOM &&
				    strcasecmp(u->str, special_uses[k].name) == 0)
					break;
			if (k == sizeof(special_uses) / sizeof(special_uses[0])) {
				sess_tagged(s, "NO", "[USEATTR] Unknown special-use attribute");
				return;
			}
			op.special |= special_uses[k].bit;
		}
	}
	op.a = name;
	int r = store_write(s->d->store, create_fn, &op);
	if (r != 0) {
		sess_store_error(s, r, "CREATE");
		return;
	}
	sess_sync(s, 1);
	sess_tagged(s, "OK", "Create completed.");
}

void cmd_delete(struct session *s, struct imap_command *cmd)
{
	char name[STORE_NAME_MAX + 1];
	struct mbop op = {.user_id = s->user_id, .a = name};
	if (cmd->nargs != 1) {
		sess_tagged(s, "BAD", "DELETE needs a mailbox name");
		return;
	}
	if (sess_mailbox_arg(s, &cmd->args[0], name, sizeof(name)) < 0)
		return;
	if (strcmp(name, "INBOX") == 0) {
		sess_tagged(s, "NO", "[CANNOT] INBOX cannot be deleted");
		return;
	}
	if (s->state == S_SELECTED && strcmp(s->sel.name, name) == 0)
		sess_unselect(s);
	int r = store_write(s->d->store, delete_fn, &op);
	if (r != 0) {
		sess_store_error(s, r, "DELETE");
		return;
	}
	sess_tagged(s, "OK", "Delete completed.");
}

void cmd_rename(struct session *s, struct imap_command *cmd)
{
	char a[STORE_NAME_MAX + 1], b[STORE_NAME_MAX + 1];
	struct mbop op = {.user_id = s->user_id, .a = a, .b = b};
	if (cmd->nargs != 2) {
		sess_tagged(s, "BAD", "RENAME needs two mailbox names");
		return;
	}
	if (sess_mailbox_arg(s, &cmd->args[0], a, sizeof(a)) < 0 ||
	    sess_mailbox_arg(s, &cmd->args[1], b, sizeof(b)) < 0)
		return;
	int r = store_write(s->d->store, rename_fn, &op);
	if (r != 0) {
		sess_store_error(s, r, "RENAME");
		return;
	}
	sess_sync(s, 1);
	sess_tagged(s, "OK", "Rename completed.");
}

static void do_subscribe(struct session *s, struct imap_command *cmd, int on)
{
	char name[STORE_NAME_MAX + 1];
	struct mbop op = {.user_id = s->user_id, .a = name, .subscribe = on};
	if (cmd->nargs != 1) {
		sess_tagged(s, "BAD", "Mailbox name needed");
		return;
	}
	if (sess_mailbox_arg(s, &cmd->args[0], name, sizeof(name)) < 0)
		return;
	int r = store_write(s->d->store, subscribe_fn, &op);
	if (r == STORE_ENOTFOUND && !on)
		r = 0;
	if (r != 0) {
		sess_store_error(s, r, on ? "SUBSCRIBE" : "UNSUBSCRIBE");
		return;
	}
	sess_tagged(s, "OK", "%s completed.", on ? "Subscribe" : "Unsubscribe");
}

void cmd_subscribe(struct session *s, struct imap_command *cmd)
{
	do_subscribe(s, cmd, 1);
}

void cmd_unsubscribe(struct session *s, struct imap_command *cmd)
{
	do_subscribe(s, cmd, 0);
}

/* --- STATUS --------------------------------------------------------------------- */

/* STATUS=SIZE (RFC 8438): the sum of the messages' RFC822.SIZE, which is
 * the CRLF form's (wire.h), from the store's cache by blob hash. The
 * store's own count (mb->bytes) is of the stored bytes, smaller when lines
 * end in a bare LF. */
static uint64_t mailbox_size(struct session *s, const struct store_mailbox *mb)
{
	struct store_txn *txn = NULL;
	struct store_cursor *cur = NULL;
	struct fetch_cache pending = {0};
	struct store_msg m;
	uint64_t total = 0;
	if (store_read_begin(s->d->store, &txn) != 0 ||
	    store_msg_cursor_open(txn, mb->id, 1, &cur) != 0) {
		store_read_end(&txn);
		return mb->bytes;
	}
	while (store_msg_cursor_next(cur, &m) == 0) {
		uint64_t size = m.size;
		fetch_size(txn, &m, &pending, &size);
		total += size;
	}
	store_msg_cursor_close(&cur);
	store_read_end(&txn);
	fetch_cache_flush(s->d->store, &pending);
	return total;
}

/* Writes "* STATUS name (items)". Returns 0 or -1 (a bad item: nothing written). */
/* STATUS DELETED (RFC 9051): messages with \\Deleted. */
static uint64_t mailbox_deleted(struct session *s, const struct store_mailbox *mb)
{
	struct store_txn *txn = NULL;
	struct store_cursor *cur = NULL;
	struct store_msg m;
	uint64_t n = 0;
	if (store_read_begin(s->d->store, &txn) == 0 &&
	    store_msg_cursor_open(txn, mb->id, 1, &cur) == 0) {
		while (store_msg_cursor_next(cur, &m) == 0)
			n += (m.flags & STORE_F_DELETED) != 0;
		store_msg_cursor_close(&cur);
	}
	store_read_end(&txn);
	return n;
}

static int write_status(struct session *s, const struct store_mailbox *mb,
			const struct imap_arg *items)
{
	char out[512];
	size_t o = 0;
	for (size_t i = 0; i < items->len; i++) {
		const struct imap_arg *it = &items->list[i];
		unsigned long long v;
		const char *n;
		if (imap_arg_is_atom(it, "MESSAGES"))
			n = "MESSAGES", v = mb->messages;
		else if (imap_arg_is_atom(it, "RECENT"))
			n = "RECENT", v = mb->recent;
		else if (imap_arg_is_atom(it, "UIDNEXT"))
			n = "UIDNEXT", v = mb->uidnext;
		else if (imap_arg_is_atom(it, "UIDVALIDITY"))
			n = "UIDVALIDITY", v = mb->uidvalidity;
		else if (imap_arg_is_atom(it, "UNSEEN"))
			n = "UNSEEN", v = mb->unseen;
		else if (imap_arg_is_atom(it, "HIGHESTMODSEQ"))
			n = "HIGHESTMODSEQ", v = mb->highestmodseq;
		else if (imap_arg_is_atom(it, "SIZE"))
			n = "SIZE", v = mailbox_size(s, mb);
		else if (imap_arg_is_atom(it, "APPENDLIMIT"))
			n = "APPENDLIMIT", v = s->d->max_literal;
		else if (imap_arg_is_atom(it, "DELETED")) /* IMAP4rev2 */
			n = "DELETED", v = mailbox_deleted(s, mb);
		else if (imap_arg_is_atom(it, "DELETED-STORAGE")) /* QUOTA, RFC 9208 */
			n = "DELETED-STORAGE", v = sess_deleted_storage(s, mb);
		else
			return -1;
		int w = snprintf(out + o, sizeof(out) - o, "%s%s %llu", o ? " " : "", n, v);
		if (w < 0 || (size_t)w >= sizeof(out) - o)
			return -1;
		o += (size_t)w;
	}
	io_puts(&s->io, "* STATUS ");
	sess_write_mailbox(s, mb->name);
	io_printf(&s->io, " (%s)\r\n", out);
	return 0;
}

void cmd_status(struct session *s, struct imap_command *cmd)
{
	char name[STORE_NAME_MAX + 1];
	if (cmd->nargs != 2 || cmd->args[1].type != IMAP_ARG_LIST) {
		sess_tagged(s, "BAD", "STATUS needs a mailbox and a list of items");
		return;
	}
	if (sess_mailbox_arg(s, &cmd->args[0], name, sizeof(name)) < 0)
		return;
	struct store_txn *txn = NULL;
	struct store_mailbox mb;
	int r = store_read_begin(s->d->store, &txn);
	if (r == 0)
		r = store_mailbox_get(txn, s->user_id, name, &mb);
	store_read_end(&txn);
	if (r != 0) {
		sess_store_error(s, r, "STATUS");
		return;
	}
	if (write_status(s, &mb, &cmd->args[1]) < 0) {
		sess_tagged(s, "BAD", "Unknown STATUS item");
		return;
	}
	sess_sync(s, 0);
	sess_tagged(s, "OK", "Status completed.");
}

/* --- LIST ------------------------------------------------------------------------ */

struct mblist {
	struct store_mailbox *v;
	size_t n, cap;
};

static int collect_mb(const struct store_mailbox *mb, void *ctx)
{
	struct mblist *l = ctx;
	*ARRAY_PUSH(l->v, l->n, l->cap) = *mb;
	return 0;
}

/* IMAP wildcards: '*' matches anything, '%' anything but the separator. */
static int wild_match(const char *pat, const char *name)
{
	for (; *pat; pat++) {
		if (*pat == '*' || *pat == '%') {
			int pct = *pat == '%';
			for (const char *n = name;; n++) {
				if (wild_match(pat + 1, n))
					return 1;
				if (*n == '\0' || (pct && *n == STORE_MAILBOX_SEP))
					return 0;
			}
		}
		if (*name != *pat)
			return 0;
		name++;
	}
	return *name == '\0';
}

static int name_match(const char *pat, const char *name)
{
	/* INBOX is case-insensitive */
	if (strncasecmp(pat, "INBOX", 5) == 0 && strncmp(name, "INBOX", 5) == 0 &&
	    (pat[5] == '\0' || pat[5] == STORE_MAILBOX_SEP || pat[5] == '*' || pat[5] == '%'))
		return wild_match(pat + 5, name + 5);
	return wild_match(pat, name);
}

static int has_name(const struct mblist *l, const char *name, size_t len)
{
	for (size_t i = 0; i < l->n; i++)
		if (strncmp(l->v[i].name, name, len) == 0 && l->v[i].name[len] == '\0')
			return 1;
	return 0;
}

/* Adds the missing ancestors of every mailbox ("A" when only "A.b" exists,
 * as a mkdir of .A.b on the mount makes) as entries with id 0: LIST shows
 * them as \NonExistent \HasChildren so clients can walk the hierarchy. */
static void add_missing_parents(struct mblist *l)
{
	size_t n = l->n;
	for (size_t i = 0; i < n; i++) {
		char name[STORE_NAME_MAX + 1];
		mk_strlcpy(name, l->v[i].name, sizeof(name));
		for (char *dot = strchr(name, STORE_MAILBOX_SEP); dot != NULL;
		     dot = strchr(dot + 1, STORE_MAILBOX_SEP)) {
			size_t len = (size_t)(dot - name);
			if (has_name(l, name, len))
				continue;
			struct store_mailbox mb;
			memset(&mb, 0, sizeof(mb));
			memcpy(mb.name, name, len);
			mb.name[len] = '\0';
			collect_mb(&mb, l);
		}
	}
}

static int has_children(const struct mblist *l, const char *name)
{
	size_t nl = strlen(name);
	for (size_t i = 0; i < l->n; i++)
		if (strncmp(l->v[i].name, name, nl) == 0 && l->v[i].name[nl] == STORE_MAILBOX_SEP)
			return 1;
	return 0;
}

/* The subscribed names: mailboxes with the flag and names with no mailbox. */
struct names {
	char **v;
	size_t n, cap;
};

static void names_add(struct names *l, const char *name)
{
	*ARRAY_PUSH(l->v, l->n, l->cap) = xstrdup(name);
}

static int names_has(const struct names *l, const char *name, size_t len)
{
	for (size_t i = 0; i < l->n; i++)
		if (strncmp(l->v[i], name, len) == 0 && l->v[i][len] == '\0')
			return 1;
	return 0;
}

static void names_free(struct names *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int collect_sub(const char *name, void *ctx)
{
	names_add(ctx, name);
	return 0;
}

struct list_req {
	int lsub, extended;
	int sel_subscribed, sel_special, recursive;
	int ret_subscribed, ret_special, ret_children;
	const struct imap_arg *status_items;
	char **pats; /* UTF-8, reference prepended; NULL entries never match */
	size_t npats;
};

static int pat_match(const struct list_req *q, const char *name)
{
	for (size_t k = 0; k < q->npats; k++)
		if (q->pats[k] != NULL && name_match(q->pats[k], name))
			return 1;
	return 0;
}

/* Parses LIST's selection options, patterns and return options. Returns 0,
 * or -1 after answering BAD. */
static int parse_list(struct session *s, struct imap_command *cmd, int lsub, struct list_req *q)
{
	size_t i = 0;
	int only_remote = 1, nsel = 0;
	memset(q, 0, sizeof(*q));
	q->lsub = lsub;
	q->sel_subscribed = lsub;
	if (!lsub && cmd->nargs > 0 && cmd->args[0].type == IMAP_ARG_LIST) {
		q->extended = 1;
		for (size_t k = 0; k < cmd->args[0].len; k++) {
			const struct imap_arg *o = &cmd->args[0].list[k];
			nsel++;
			if (imap_arg_is_atom(o, "SUBSCRIBED"))
				q->sel_subscribed = 1, only_remote = 0;
			else if (imap_arg_is_atom(o, "SPECIAL-USE"))
				q->sel_special = 1, only_remote = 0;
			else if (imap_arg_is_atom(o, "RECURSIVEMATCH"))
				q->recursive = 1;
			else if (!imap_arg_is_atom(o, "REMOTE")) {
				sess_tagged(s, "BAD", "Unknown LIST selection option");
				return -1;
			}
		}
		/* RFC 5258 3: RECURSIVEMATCH alone (or with REMOTE) is an error */
		if (q->recursive && only_remote) {
			sess_tagged(s, "BAD", "RECURSIVEMATCH needs another selection option");
			return -1;
		}
		i = 1;
	}
	if (cmd->nargs < i + 2) {
		sess_tagged(s, "BAD", "LIST needs a reference and a pattern");
		return -1;
	}
	const char *ref = imap_arg_astring(s->arena, &cmd->args[i]);
	const struct imap_arg *pats = &cmd->args[i + 1];
	size_t npats = 1;
	if (pats->type == IMAP_ARG_LIST && !lsub) {
		q->extended = 1;
		npats = pats->len;
		pats = pats->list;
	}
	if (cmd->nargs > i + 2) {
		if (lsub || cmd->nargs != i + 4 || !imap_arg_is_atom(&cmd->args[i + 2], "RETURN") ||
		    cmd->args[i + 3].type != IMAP_ARG_LIST) {
			sess_tagged(s, "BAD", "Bad LIST arguments");
			return -1;
		}
		q->extended = 1;
		const struct imap_arg *ro = &cmd->args[i + 3];
		for (size_t k = 0; k < ro->len; k++) {
			if (imap_arg_is_atom(&ro->list[k], "SUBSCRIBED"))
				q->ret_subscribed = 1;
			else if (imap_arg_is_atom(&ro->list[k], "SPECIAL-USE"))
				q->ret_special = 1;
			else if (imap_arg_is_atom(&ro->list[k], "CHILDREN"))
				q->ret_children = 1;
			else if (imap_arg_is_atom(&ro->list[k], "STATUS") && k + 1 < ro->len &&
				 ro->list[k + 1].type == IMAP_ARG_LIST)
				q->status_items = &ro->list[++k];
			else {
				sess_tagged(s, "BAD", "Unknown LIST return option");
				return -1;
			}
		}
	}
	if (ref == NULL) {
		sess_tagged(s, "BAD", "Bad reference");
		return -1;
	}
	q->npats = npats;
	q->pats = imap_arena_alloc(s->arena, (npats + 1) * sizeof(char *));
	for (size_t k = 0; k < npats; k++) {
		const char *p = imap_arg_astring(s->arena, &pats[k]);
		char full[2 * STORE_NAME_MAX + 2];
		char dec[sizeof(full) * 2];
		if (p == NULL || snprintf(full, sizeof(full), "%s%s", ref, p) >= (int)sizeof(full))
			continue;
		if (s->rev2) /* IMAP4rev2: patterns are UTF-8 already */
			mk_strlcpy(dec, full, sizeof(dec));
		else if (utf7_to_utf8(full, dec, sizeof(dec)) < 0)
			continue;
		q->pats[k] = imap_arena_strndup(s->arena, dec, strlen(dec));
	}
	(void)nsel;
	return 0;
}

static const struct store_mailbox *find_mb(const struct mblist *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return &l->v[i];
	return NULL;
}

/* Writes one LIST/LSUB line. mb may be NULL (a name with no mailbox). */
static int list_line(struct session *s, const struct list_req *q, const struct mblist *l,
		     const char *name, const struct store_mailbox *mb, int subscribed,
		     int childinfo)
{
	char attrs[256];
	size_t o = 0;
	attrs[0] = '\0';
#define ATTR(x) o += (size_t)snprintf(attrs + o, sizeof(attrs) - o, "%s%s", o ? " " : "", (x))
	/* LSUB: an unsubscribed parent is \Noselect, existing or not (RFC 3501 6.3.9) */
	if (mb == NULL || mb->id == 0 || (q->lsub && !subscribed)) {
		if (q->lsub || !q->extended)
			ATTR("\\Noselect");
		else
			ATTR("\\NonExistent");
	}
	if (!q->lsub && (mb != NULL || q->ret_children))
		ATTR(has_children(l, name) ? "\\HasChildren" : "\\HasNoChildren");
	if (!q->lsub && subscribed && (q->sel_subscribed || q->ret_subscribed))
		ATTR("\\Subscribed");
	if (mb != NULL && (!q->lsub || q->ret_special))
		for (size_t k = 0; k < sizeof(special_uses) / sizeof(special_uses[0]); k++)
			if (mb->special_use & special_uses[k].bit)
				ATTR(special_uses[k].name);
#undef ATTR
	io_printf(&s->io, "* %s (%s) \".\" ", q->lsub ? "LSUB" : "LIST", attrs);
	sess_write_mailbox(s, name);
	if (childinfo)
		io_puts(&s->io, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
	io_puts(&s->io, "\r\n");
	if (q->status_items != NULL && mb != NULL && mb->id != 0 &&
	    write_status(s, mb, q->status_items) < 0)
		return -1;
	return 0;
}

/* A subscribed name below name (at any depth) that no pattern matches:
 * RECURSIVEMATCH then lists name with CHILDINFO (RFC 5258 3.5). */
static int unmatched_subscribed_child(const struct list_req *q, const struct names *subs,
				      const char *name)
{
	size_t nl = strlen(name);
	for (size_t i = 0; i < subs->n; i++)
		if (strncmp(subs->v[i], name, nl) == 0 && subs->v[i][nl] == STORE_MAILBOX_SEP &&
		    !pat_match(q, subs->v[i]))
			return 1;
	return 0;
}

/* LIST (SUBSCRIBED ...) and LSUB: by subscribed name. */
static int list_subscribed(struct session *s, const struct list_req *q, const struct mblist *l,
			   const struct names *subs)
{
	for (size_t i = 0; i < subs->n; i++) {
		const struct store_mailbox *mb = find_mb(l, subs->v[i]);
		if (mb != NULL && mb->id == 0)
			mb = NULL;
		if (!pat_match(q, subs->v[i]) ||
		    (q->sel_special && (mb == NULL || !mb->special_use)))
			continue;
		if (list_line(s, q, l, subs->v[i], mb, 1, 0) < 0)
			return -1;
	}
	/* parents: LSUB's "%" shows an unsubscribed parent of a subscribed name
	 * as \Noselect (RFC 3501 6.3.9); RECURSIVEMATCH lists it with CHILDINFO */
	if (!q->lsub && !q->recursive)
		return 0;
	struct names done = {0};
	for (size_t i = 0; i < subs->n; i++) {
		const char *n = subs->v[i];
		for (const char *dot = strchr(n, STORE_MAILBOX_SEP); dot != NULL;
		     dot = strchr(dot + 1, STORE_MAILBOX_SEP)) {
			size_t len = (size_t)(dot - n);
			char parent[STORE_NAME_MAX + 1];
			memcpy(parent, n, len);
			parent[len] = '\0';
			if (names_has(subs, parent, len) || names_has(&done, parent, len) ||
			    !pat_match(q, parent))
				continue;
			if (!unmatched_subscribed_child(q, subs, parent))
				continue;
			names_add(&done, parent);
			const struct store_mailbox *mb = find_mb(l, parent);
			if (mb != NULL && mb->id == 0)
				mb = NULL;
			if (list_line(s, q, l, parent, mb, 0, !q->lsub) < 0) {
				names_free(&done);
				return -1;
			}
		}
	}
	names_free(&done);
	return 0;
}

static void do_list(struct session *s, struct imap_command *cmd, int lsub)
{
	struct list_req q;
	if (parse_list(s, cmd, lsub, &q) < 0)
		return;
	/* LIST "" "": the hierarchy delimiter */
	if (!q.extended) {
		const char *p0 = imap_arg_astring(s->arena, &cmd->args[1]);
		if (p0 != NULL && p0[0] == '\0') {
			sess_untagged(s, "%s (\\Noselect) \".\" \"\"", lsub ? "LSUB" : "LIST");
			sess_tagged(s, "OK", "List completed.");
			return;
		}
	}
	struct mblist l = {0};
	struct names subs = {0};
	struct store_txn *txn = NULL;
	int r = store_read_begin(s->d->store, &txn);
	if (r == 0)
		r = store_mailbox_foreach(txn, s->user_id, collect_mb, &l);
	if (r == 0 && q.sel_subscribed)
		r = store_subscription_foreach(txn, s->user_id, collect_sub, &subs);
	store_read_end(&txn);
	if (r != 0) {
		free(l.v);
		names_free(&subs);
		sess_store_error(s, r, "LIST");
		return;
	}
	for (size_t i = 0; i < l.n && q.sel_subscribed; i++)
		if (l.v[i].subscribed)
			names_add(&subs, l.v[i].name);
	add_missing_parents(&l);
	int bad = 0;
	if (q.sel_subscribed) {
		bad = list_subscribed(s, &q, &l, &subs) < 0;
	} else {
		for (size_t m = 0; m < l.n && !bad; m++) {
			const struct store_mailbox *mb = &l.v[m];
			if (!pat_match(&q, mb->name) || (q.sel_special && !mb->special_use))
				continue;
			bad = list_line(s, &q, &l, mb->name, mb, mb->subscribed, 0) < 0;
		}
	}
	free(l.v);
	names_free(&subs);
	if (bad)
		sess_tagged(s, "BAD", "Unknown STATUS item");
	else
		sess_tagged(s, "OK", "%s completed.", lsub ? "Lsub" : "List");
}

void cmd_list(struct session *s, struct imap_command *cmd)
{
	do_list(s, cmd, 0);
}

void cmd_lsub(struct session *s, struct imap_command *cmd)
{
	do_list(s, cmd, 1);
}
