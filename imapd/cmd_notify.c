/* cmd_notify — NOTIFY (RFC 5465): the client names mailboxes (selected,
 * selected-delayed, inboxes, personal, subscribed, subtree, mailboxes) and
 * events (MessageNew [fetch attributes], MessageExpunge, FlagChange,
 * MailboxName, SubscriptionChange), and is told as they happen, between
 * commands too: the session waits on its socket and the store's change
 * notice (notify.c), and after each wake or command compares the user's
 * mailboxes with what it last saw. Other mailboxes are told of with STATUS
 * (and LIST for names and subscriptions), the selected one as after a
 * command (EXISTS, EXPUNGE unless selected-delayed, FETCH FLAGS), with the
 * MessageNew attributes FETCHed for new mail.
 *
 * The command's bytes are kept and parsed again when needed (its arguments
 * live in a command's arena), as SEARCH's UPDATE does. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imapd/notify.h"
#include "imapd/session.h"
#include "lib/utf7.h"
#include "lib/util.h"
#include "lib/xmalloc.h"

#define NOTIFY_MAX_GROUPS 32

enum { EV_NEW = 1, EV_EXPUNGE = 2, EV_FLAGS = 4, EV_NAME = 8, EV_SUBS = 16 };
enum filter {
	F_SELECTED,
	F_SELECTED_DELAYED,
	F_INBOXES,
	F_PERSONAL,
	F_SUBSCRIBED,
	F_SUBTREE,
	F_MAILBOXES
};

struct group {
	enum filter filter;
	const char **names; /* subtree/mailboxes: UTF-8 names */
	size_t nnames;
	unsigned events;
	const struct imap_arg *fetch; /* MessageNew's attributes, or NULL */
};

struct notify_req {
	int status;
	struct group g[NOTIFY_MAX_GROUPS];
	size_t n;
};

/* What was last seen of a mailbox. */
struct snap {
	uint32_t id, messages, uidnext, uidvalidity, unseen;
	uint64_t hms;
	int subscribed;
	char name[STORE_NAME_MAX + 1];
};

struct notify_state {
	char *cmd;
	size_t cmdlen;
	uint64_t seq; /* the store's change sequence at the last look */
	struct snap *snaps;
	size_t nsnaps;
};

/* --- the command ------------------------------------------------------------- */

static int parse_names(struct session *s, const struct imap_arg *a, struct group *g)
{
	const struct imap_arg *items = a->type == IMAP_ARG_LIST ? a->list : a;
	size_t n = a->type == IMAP_ARG_LIST ? a->len : 1;
	if (n == 0)
		return -1;
	g->names = imap_arena_alloc(s->arena, n * sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		const char *w = imap_arg_astring(s->arena, &items[i]);
		char name[STORE_NAME_MAX + 1];
		if (w == NULL)
			return -1;
		if (s->rev2)
			mk_strlcpy(name, w, sizeof(name));
		else if (utf7_to_utf8(w, name, sizeof(name)) < 0)
			return -1;
		if (strncasecmp(name, "INBOX", 5) == 0 &&
		    (name[5] == '\0' || name[5] == STORE_MAILBOX_SEP))
			memcpy(name, "INBOX", 5);
		g->names[g->nnames++] = imap_arena_strndup(s->arena, name, strlen(name));
	}
	return 0;
}

/* (MessageNew [(atts)] MessageExpunge ...) or NONE. 0, -1 (BAD) or -2 (an
 * event this server does not watch: NO [BADEVENT]). */
static int parse_events(struct session *s, const struct imap_arg *a, struct group *g)
{
	if (imap_arg_is_atom(a, "NONE"))
		return 0;
	if (a->type != IMAP_ARG_LIST || a->len == 0)
		return -1;
	for (size_t i = 0; i < a->len; i++) {
		const struct imap_arg *e = &a->list[i];
		if (imap_arg_is_atom(e, "MessageNew")) {
			g->events |= EV_NEW;
			if (i + 1 < a->len && a->list[i + 1].type == IMAP_ARG_LIST) {
				g->fetch = &a->list[++i];
				if (g->filter > F_SELECTED_DELAYED ||
				    fetch_atts_check(s, g->fetch) < 0)
					return -1;
			}
		} else if (imap_arg_is_atom(e, "MessageExpunge")) {
			g->events |= EV_EXPUNGE;
		} else if (imap_arg_is_atom(e, "FlagChange")) {
			g->events |= EV_FLAGS;
		} else if (imap_arg_is_atom(e, "MailboxName")) {
			g->events |= EV_NAME;
		} else if (imap_arg_is_atom(e, "SubscriptionChange")) {
			g->events |= EV_SUBS;
		} else if (imap_arg_is_atom(e, "AnnotationChange") ||
			   imap_arg_is_atom(e, "MailboxMetadataChange") ||
			   imap_arg_is_atom(e, "ServerMetadataChange")) {
			return -2;
		} else {
			return -1;
		}
	}
	return 0;
}

static int parse_group(struct session *s, const struct imap_arg *a, struct group *g)
{
	static const struct {
		const char *name;
		enum filter f;
		int takes_names;
	} filters[] = {{"selected", F_SELECTED, 0},	{"selected-delayed", F_SELECTED_DELAYED, 0},
		       {"inboxes", F_INBOXES, 0},	{"personal", F_PERSONAL, 0},
		       {"subscribed", F_SUBSCRIBED, 0}, {"subtree", F_SUBTREE, 1},
		       {"mailboxes", F_MAILBOXES, 1}};
	memset(g, 0, sizeof(*g));
	if (a->type != IMAP_ARG_LIST || a->len < 2)
		return -1;
	size_t k;
	for (k = 0; k < sizeof(filters) / sizeof(filters[0]); k++)
		if (imap_arg_is_atom(&a->list[0], filters[k].name))
			break;
	if (k == sizeof(filters) / sizeof(filters[0]))
		return -1;
	g->filter = filters[k].f;
	size_t i = 1;
	if (filters[k].takes_names) {
		if (a->len != 3 || parse_names(s, &a->list[1], g) < 0)
			return -1;
		i = 2;
	}
	if (a->len != i + 1)
		return -1;
	return parse_events(s, &a->list[i], g);
}

/* NOTIFY SET [STATUS] groups... from the command's arguments. 0, or -1
 * after answering. */
static int parse_notify(struct session *s, const struct imap_command *cmd, struct notify_req *r)
{
	size_t i = 1;
	int selected = 0;
	memset(r, 0, sizeof(*r));
	if (cmd->nargs < 2 || !imap_arg_is_atom(&cmd->args[0], "SET"))
		goto bad;
	if (imap_arg_is_atom(&cmd->args[1], "STATUS")) {
		r->status = 1;
		i = 2;
	}
	if (i >= cmd->nargs || cmd->nargs - i > NOTIFY_MAX_GROUPS)
		goto bad;
	for (; i < cmd->nargs; i++) {
		struct group *g = &r->g[r->n++];
		int e = parse_group(s, &cmd->args[i], g);
		if (e == -2) {
			sess_tagged(s, "NO",
				    "[BADEVENT (MessageNew MessageExpunge FlagChange MailboxName "
				    "SubscriptionChange)] Event not supported");
			return -1;
		}
		if (e < 0 || (g->filter <= F_SELECTED_DELAYED && selected++))
			goto bad;
	}
	return 0;
bad:
	sess_tagged(s, "BAD", "NOTIFY NONE, or NOTIFY SET [STATUS] (filter (events)) ...");
	return -1;
}

/* --- matching and telling ------------------------------------------------------ */

static int group_matches(const struct group *g, const struct snap *m)
{
	switch (g->filter) {
	case F_SELECTED:
	case F_SELECTED_DELAYED:
		return 0; /* the selected mailbox is told of by sess_sync */
	case F_INBOXES:
		return strcmp(m->name, "INBOX") == 0;
	case F_PERSONAL:
		return 1;
	case F_SUBSCRIBED:
		return m->subscribed;
	case F_SUBTREE:
		for (size_t i = 0; i < g->nnames; i++) {
			size_t l = strlen(g->names[i]);
			if (strncmp(m->name, g->names[i], l) == 0 &&
			    (m->name[l] == '\0' || m->name[l] == STORE_MAILBOX_SEP))
				return 1;
		}
		return 0;
	case F_MAILBOXES:
		for (size_t i = 0; i < g->nnames; i++)
			if (strcmp(m->name, g->names[i]) == 0)
				return 1;
		return 0;
	}
	return 0;
}

/* The events for a mailbox other than the selected one: the first group
 * that names it. */
static unsigned events_for(struct session *s, const struct notify_req *r, const struct snap *m)
{
	if (s->state == S_SELECTED && m->id == s->sel.mbid)
		return 0;
	for (size_t i = 0; i < r->n; i++)
		if (group_matches(&r->g[i], m))
			return r->g[i].events;
	return 0;
}

/* STATUS for a mailbox's events; initial (NOTIFY SET STATUS) without UNSEEN. */
static void write_status(struct session *s, const struct snap *m, unsigned ev, int initial)
{
	char items[256];
	size_t o = 0;
	items[0] = '\0';
#define ITEM(...) o += (size_t)snprintf(items + o, sizeof(items) - o, __VA_ARGS__)
	if (ev & (EV_NEW | EV_EXPUNGE))
		ITEM("MESSAGES %u", m->messages);
	if (ev & EV_NEW)
		ITEM(" UIDNEXT %u", m->uidnext);
	if (ev & (EV_NEW | EV_FLAGS))
		ITEM("%sUIDVALIDITY %u", o ? " " : "", m->uidvalidity);
	if (ev & EV_FLAGS)
		ITEM(" HIGHESTMODSEQ %llu", (unsigned long long)m->hms);
	if ((ev & (EV_NEW | EV_EXPUNGE | EV_FLAGS)) && !initial)
		ITEM(" UNSEEN %u", m->unseen);
#undef ITEM
	if (o == 0)
		return;
	io_puts(&s->io, "* STATUS ");
	sess_write_mailbox(s, m->name);
	io_printf(&s->io, " (%s)\r\n", items);
}

static void write_list(struct session *s, const char *attrs, const char *name, const char *oldname)
{
	io_printf(&s->io, "* LIST (%s) \".\" ", attrs);
	sess_write_mailbox(s, name);
	if (oldname != NULL) {
		io_puts(&s->io, " (\"OLDNAME\" (");
		sess_write_mailbox(s, oldname);
		io_puts(&s->io, "))");
	}
	io_puts(&s->io, "\r\n");
}

struct snaps {
	struct snap *v;
	size_t n, cap;
};

static int collect(const struct store_mailbox *mb, void *ctx)
{
	struct snaps *l = ctx;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	struct snap *m = &l->v[l->n++];
	m->id = mb->id;
	m->messages = mb->messages;
	m->uidnext = mb->uidnext;
	m->uidvalidity = mb->uidvalidity;
	m->unseen = mb->unseen;
	m->hms = mb->highestmodseq;
	m->subscribed = mb->subscribed;
	mk_strlcpy(m->name, mb->name, sizeof(m->name));
	return 0;
}

static const struct snap *find_snap(const struct snap *v, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].id == id)
			return &v[i];
	return NULL;
}

/* Compares the mailboxes now with what was seen and says what changed. */
static void tell_changes(struct session *s, const struct notify_req *r, struct notify_state *ns,
			 const struct snaps *now)
{
	for (size_t i = 0; i < now->n; i++) {
		const struct snap *m = &now->v[i], *old = find_snap(ns->snaps, ns->nsnaps, m->id);
		unsigned ev = events_for(s, r, m);
		if (old == NULL) {
			if (ev & EV_NAME)
				write_list(s, "", m->name, NULL);
			continue;
		}
		if (strcmp(old->name, m->name) != 0 && (ev & EV_NAME))
			write_list(s, "", m->name, old->name);
		if (old->subscribed != m->subscribed && (ev & EV_SUBS))
			write_list(s, m->subscribed ? "\\Subscribed" : "", m->name, NULL);
		unsigned changed = 0;
		if (old->uidnext != m->uidnext)
			changed |= EV_NEW;
		if (old->messages > m->messages ||
		    (old->messages == m->messages && old->uidnext != m->uidnext))
			changed |= EV_EXPUNGE;
		if (old->hms != m->hms && !changed)
			changed |= EV_FLAGS;
		if (ev & changed)
			write_status(s, m, ev & (EV_NEW | EV_EXPUNGE | EV_FLAGS), 0);
	}
	for (size_t i = 0; i < ns->nsnaps; i++) {
		const struct snap *old = &ns->snaps[i];
		if (find_snap(now->v, now->n, old->id) == NULL && (events_for(s, r, old) & EV_NAME))
			write_list(s, "\\NonExistent", old->name, NULL);
	}
}

/* The selected mailbox, between commands: as after a command (EXPUNGE only
 * for "selected"), then the MessageNew attributes of new mail. */
static void tell_selected(struct session *s, const struct notify_req *r)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct group *g = &r->g[i];
		if (g->filter > F_SELECTED_DELAYED || g->events == 0)
			continue;
		uint32_t before = s->sel.uidnext;
		sess_sync(s, g->filter == F_SELECTED && (g->events & EV_EXPUNGE));
		if (g->fetch == NULL || s->state != S_SELECTED)
			return;
		size_t k = s->sel.n;
		while (k > 0 && s->sel.uids[k - 1] >= before)
			k--;
		fetch_new_messages(s, g->fetch, s->sel.uids + k, s->sel.n - k);
		return;
	}
}

static void drop(struct session *s)
{
	struct notify_state *ns = s->notify;
	if (ns == NULL)
		return;
	notify_unsubscribe(s->notify_fd);
	s->notify_fd = -1;
	free(ns->cmd);
	free(ns->snaps);
	free(ns);
	s->notify = NULL;
}

void sess_notify_drop(struct session *s)
{
	drop(s);
}

void sess_notify_check(struct session *s, int between_commands)
{
	struct notify_state *ns = s->notify;
	struct imap_arena *own = NULL;
	struct notify_req r;
	struct imap_command cmd;
	const char *err;
	if (ns == NULL || s->state == S_LOGOUT)
		return;
	if (s->arena == NULL) /* between commands */
		s->arena = own = imap_arena_new();
	struct store_txn *txn = NULL;
	uint64_t seq = 0;
	struct snaps now = {0};
	if (store_read_begin(s->d->store, &txn) != 0)
		goto out;
	store_change_seq(txn, &seq);
	if (seq != ns->seq)
		store_mailbox_foreach(txn, s->user_id, collect, &now);
	store_read_end(&txn);
	if (seq == ns->seq)
		goto out;
	if (imap_parse_command(s->arena, ns->cmd, ns->cmdlen, &cmd, &err) < 0) /* checked at SET */
		goto out;
	const char *saved_tag = s->tag;
	s->tag = NULL; /* parse_notify answers only on errors, which were seen at SET */
	int ok = parse_notify(s, &cmd, &r) == 0;
	s->tag = saved_tag;
	if (!ok)
		goto out;
	if (between_commands && s->state == S_SELECTED)
		tell_selected(s, &r);
	tell_changes(s, &r, ns, &now);
	free(ns->snaps);
	ns->snaps = now.v;
	ns->nsnaps = now.n;
	now.v = NULL;
	ns->seq = seq;
out:
	free(now.v);
	if (own != NULL)
		imap_arena_free(&s->arena);
}

void cmd_notify(struct session *s, struct imap_command *cmd)
{
	struct notify_req r;
	if (cmd->nargs == 1 && imap_arg_is_atom(&cmd->args[0], "NONE")) {
		drop(s);
		sess_tagged(s, "OK", "NOTIFY completed.");
		return;
	}
	if (parse_notify(s, cmd, &r) < 0)
		return;
	drop(s);
	struct notify_state *ns = xcalloc(1, sizeof(*ns));
	ns->cmdlen = sess_current_cmdlen();
	ns->cmd = xmalloc(ns->cmdlen);
	memcpy(ns->cmd, s->in.data, ns->cmdlen);
	/* what is there now is the base the changes are measured from */
	struct store_txn *txn = NULL;
	struct snaps now = {0};
	if (store_read_begin(s->d->store, &txn) == 0) {
		store_change_seq(txn, &ns->seq);
		store_mailbox_foreach(txn, s->user_id, collect, &now);
	}
	store_read_end(&txn);
	ns->snaps = now.v;
	ns->nsnaps = now.n;
	s->notify = ns;
	s->notify_fd = notify_subscribe();
	if (r.status) /* RFC 5465 3.1: the mailboxes' state now */
		for (size_t i = 0; i < ns->nsnaps; i++)
			write_status(
			    s, &ns->snaps[i],
			    events_for(s, &r, &ns->snaps[i]) & (EV_NEW | EV_EXPUNGE | EV_FLAGS), 1);
	sess_tagged(s, "OK", "NOTIFY completed.");
}
