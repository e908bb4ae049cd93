/* cmd_select — SELECT and EXAMINE (with CONDSTORE and QRESYNC parameters),
 * UNSELECT, CLOSE, CHECK, EXPUNGE and UID EXPUNGE. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imapd/session.h"
#include "lib/util.h"
#include "lib/array.h"
#include "lib/xmalloc.h"

struct expunge_ctx {
	uint32_t mbid;
	uint32_t *uids;
	size_t n;
	size_t done;
};

static int expunge_fn(struct store_txn *txn, void *ctx)
{
	struct expunge_ctx *e = ctx;
	e->done = 0;
	for (size_t i = 0; i < e->n; i++) {
		struct store_msg m;
		int r = store_msg_get(txn, e->mbid, e->uids[i], &m);
		if (r == STORE_ENOTFOUND || (r == 0 && !(m.flags & STORE_F_DELETED)))
			continue;
		if (r == 0)
			r = store_msg_expunge(txn, e->mbid, e->uids[i]);
		if (r != 0 && r != STORE_ENOTFOUND)
			return r;
		e->done++;
	}
	return 0;
}

/* Expunges the \Deleted messages of the view (only those in uidset if not NULL). */
static int expunge_deleted(struct session *s, const struct imap_seqset *uidset)
{
	struct expunge_ctx e = {.mbid = s->sel.mbid};
	struct store_txn *txn = NULL;
	struct store_cursor *cur = NULL;
	size_t cap = 0;
	int r = store_read_begin(s->d->store, &txn);
	if (r == 0)
		r = store_msg_cursor_open(txn, s->sel.mbid, 1, &cur);
	if (r == 0) {
		struct store_msg m;
		while (store_msg_cursor_next(cur, &m) == 0) {
			if (!(m.flags & STORE_F_DELETED) || sess_seq_of(s, m.uid) == 0)
				continue;
			if (uidset != NULL && !imap_seqset_contains(uidset, m.uid))
				continue;
			*ARRAY_PUSH(e.uids, e.n, cap) = m.uid;
		}
		store_msg_cursor_close(&cur);
	}
	store_read_end(&txn);
	if (r == 0 && e.n > 0)
		r = store_write(s->d->store, expunge_fn, &e);
	free(e.uids);
	return r;
}

void cmd_expunge(struct session *s, struct imap_command *cmd)
{
	struct imap_seqset set, *setp = NULL;
	if (s->sel.readonly) {
		sess_tagged(s, "NO", "[READ-ONLY] The mailbox is read-only");
		return;
	}
	if (cmd->uid) {
		if (cmd->nargs != 1 || cmd->args[0].type != IMAP_ARG_ATOM ||
		    sess_seqset(s, cmd->args[0].str, 1, &set) < 0) {
			sess_tagged(s, "BAD", "UID EXPUNGE needs a UID set");
			return;
		}
		setp = &set;
	} else if (cmd->nargs != 0) {
		sess_tagged(s, "BAD", "EXPUNGE takes no arguments");
		return;
	}
	int r = expunge_deleted(s, setp);
	if (r != 0) {
		sess_store_error(s, r, "EXPUNGE");
		return;
	}
	sess_sync(s, 1);
	sess_tagged(s, "OK", "Expunge completed.");
}

void cmd_close(struct session *s, struct imap_command *cmd)
{
	(void)cmd;
	if (!s->sel.readonly)
		expunge_deleted(s, NULL);
	sess_unselect(s);
	sess_tagged(s, "OK", "Close completed.");
}

void cmd_unselect(struct session *s, struct imap_command *cmd)
{
	(void)cmd;
	sess_unselect(s);
	sess_tagged(s, "OK", "Unselect completed.");
}

void cmd_check(struct session *s, struct imap_command *cmd)
{
	(void)cmd;
	sess_sync(s, 1);
	sess_tagged(s, "OK", "Check completed.");
}

struct qresync {
	int on;
	uint32_t uidvalidity;
	uint64_t modseq;
	const char *known; /* known UIDs, or NULL */
};

static int parse_select_params(struct session *s, const struct imap_arg *p, struct qresync *q)
{
	for (size_t i = 0; i < p->len; i++) {
		const struct imap_arg *a = &p->list[i];
		if (imap_arg_is_atom(a, "CONDSTORE")) {
			s->condstore = 1;
			continue;
		}
		if (!imap_arg_is_atom(a, "QRESYNC") || i + 1 >= p->len ||
		    p->list[i + 1].type != IMAP_ARG_LIST || !s->qresync)
			return -1;
		const struct imap_arg *l = &p->list[++i];
		uint64_t v;
		if (l->len < 2 || l->list[0].type != IMAP_ARG_ATOM ||
		    l->list[1].type != IMAP_ARG_ATOM ||
		    mk_parse_u64(l->list[0].str, 1, UINT32_MAX, &v) < 0)
			return -1;
		q->uidvalidity = (uint32_t)v;
		if (mk_parse_u64(l->list[1].str, 0, UINT64_MAX >> 1, &q->modseq) < 0)
			return -1;
		if (l->len >= 3) {
			if (l->list[2].type != IMAP_ARG_ATOM)
				return -1;
			q->known = l->list[2].str;
		}
		/* the optional sequence-match data only helps servers without a
		 * full expunge history; ours has one, so it is not needed */
		q->on = 1;
	}
	return 0;
}

struct vanish_ctx {
	struct imap_seqset *known;
	uint32_t *uids;
	size_t n, cap;
};

static int vanish_cb(uint32_t uid, uint64_t modseq, void *ctx)
{
	struct vanish_ctx *v = ctx;
	(void)modseq;
	if (v->known != NULL && !imap_seqset_contains(v->known, uid))
		return 0;
	*ARRAY_PUSH(v->uids, v->n, v->cap) = uid;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Fills the view from the server's cache if this mailbox version is there.
 * Returns 1 on a hit (first unseen in *first_unseen_r). */
static int view_cache_get(struct imapd *d, const struct store_mailbox *mb, struct view *v,
			  uint32_t *first_unseen_r)
{
	int hit = 0;
	pthread_mutex_lock(&d->views_lock);
	for (size_t i = 0; i < sizeof(d->views) / sizeof(d->views[0]); i++) {
		struct view_cache *c = &d->views[i];
		if (c->uids == NULL || c->mbid != mb->id || c->uidvalidity != mb->uidvalidity ||
		    c->hms != mb->highestmodseq || c->uidnext != mb->uidnext)
			continue;
		v->cap = c->n ? c->n : 1;
		v->uids = xmalloc(v->cap * sizeof(uint32_t));
		if (c->n > 0)
			memcpy(v->uids, c->uids, c->n * sizeof(uint32_t));
		v->n = c->n;
		keywords_merge(&v->keywords, c->keywords);
		*first_unseen_r = c->first_unseen;
		c->used = ++d->views_clock;
		hit = 1;
		break;
	}
	pthread_mutex_unlock(&d->views_lock);
	return hit;
}

static void view_cache_put(struct imapd *d, const struct store_mailbox *mb, const struct view *v,
			   uint32_t first_unseen)
{
	pthread_mutex_lock(&d->views_lock);
	struct view_cache *victim = &d->views[0];
	for (size_t i = 0; i < sizeof(d->views) / sizeof(d->views[0]); i++) {
		struct view_cache *c = &d->views[i];
		if (c->mbid == mb->id || c->uids == NULL) {
			victim = c;
			break;
		}
		if (c->used < victim->used)
			victim = c;
	}
	free(victim->uids);
	free(victim->keywords);
	victim->uids = xmalloc((v->n ? v->n : 1) * sizeof(uint32_t));
	victim->keywords = xstrdup(v->keywords.len ? v->keywords.data : "");
	if (v->n > 0)
		memcpy(victim->uids, v->uids, v->n * sizeof(uint32_t));
	victim->n = v->n;
	victim->mbid = mb->id;
	victim->uidvalidity = mb->uidvalidity;
	victim->uidnext = mb->uidnext;
	victim->hms = mb->highestmodseq;
	victim->first_unseen = first_unseen;
	victim->used = ++d->views_clock;
	pthread_mutex_unlock(&d->views_lock);
}

struct recent_ctx {
	uint32_t mbid;
	uint32_t below; /* the view's UIDNEXT: later mail is claimed by sess_sync */
	uint32_t *uids; /* claimed, ascending */
	size_t n, cap;
};

static void recent_push(struct recent_ctx *rc, uint32_t uid)
{
	*ARRAY_PUSH(rc->uids, rc->n, rc->cap) = uid;
}

/* Inside the write transaction: takes \Recent off every message of the view
 * that still has it, and those are this session's. Deciding here, not from
 * an earlier read, is what gives each \Recent to exactly one session when
 * several SELECT at once (their functions run one after the other in the
 * same group commit, each seeing the one before). */
static int claim_recent_fn(struct store_txn *txn, void *ctx)
{
	struct recent_ctx *rc = ctx;
	struct store_cursor *cur = NULL;
	struct store_msg m;
	rc->n = 0;
	int r = store_msg_cursor_open(txn, rc->mbid, 1, &cur);
	if (r != 0)
		return r;
	size_t nuids = 0;
	uint32_t *todo = NULL;
	size_t cap = 0;
	while ((r = store_msg_cursor_next(cur, &m)) == 0 && m.uid < rc->below) {
		if (!(m.flags & STORE_F_RECENT))
			continue;
		*ARRAY_PUSH(todo, nuids, cap) = m.uid;
	}
	store_msg_cursor_close(&cur);
	r = 0;
	for (size_t i = 0; i < nuids && r == 0; i++) {
		r = store_msg_set_flags(txn, rc->mbid, todo[i], STORE_FLAGS_REMOVE, STORE_F_RECENT,
					NULL, 0, NULL);
		if (r == 0)
			recent_push(rc, todo[i]);
	}
	free(todo);
	return r;
}

/* The view's \Recent messages as the store has them (EXAMINE shows them
 * without taking them). */
static void collect_recent(struct store_txn *txn, struct recent_ctx *rc)
{
	struct store_cursor *cur = NULL;
	struct store_msg m;
	if (store_msg_cursor_open(txn, rc->mbid, 1, &cur) != 0)
		return;
	while (store_msg_cursor_next(cur, &m) == 0 && m.uid < rc->below)
		if (m.flags & STORE_F_RECENT)
			recent_push(rc, m.uid);
	store_msg_cursor_close(&cur);
}

/* QRESYNC's part of SELECT (RFC 7162 3.2.5): what vanished and what changed
 * since the client's modseq, among the UIDs it knows. */
static void qresync_answer(struct session *s, struct store_txn *txn, const struct qresync *q)
{
	struct view *v = &s->sel;
	struct store_cursor *cur = NULL;
	struct store_msg m;
	struct imap_seqset known;
	struct vanish_ctx vc = {0};
	uint32_t star = v->uidnext > 1 ? v->uidnext - 1 : 1;
	if (q->known != NULL && imap_seqset_parse(s->arena, q->known, star, &known) == 0)
		vc.known = &known;
	store_expunged_since(txn, v->mbid, q->modseq, vanish_cb, &vc);
	if (vc.n > 0) {
		qsort(vc.uids, vc.n, sizeof(uint32_t), cmp_u32);
		io_printf(&s->io, "* VANISHED (EARLIER) %s\r\n", sess_uidset(s, vc.uids, vc.n));
	}
	free(vc.uids);
	if (store_msg_cursor_open(txn, v->mbid, 1, &cur) != 0)
		return;
	while (store_msg_cursor_next_since(cur, q->modseq, &m, NULL) == 0) {
		/* by the view: the store may have moved on since it was built */
		uint32_t seq = sess_seq_of(s, m.uid);
		if (seq == 0 || (vc.known && !imap_seqset_contains(vc.known, m.uid)))
			continue;
		sess_keywords_seen(s, m.keywords);
		io_printf(&s->io, "* %u FETCH (UID %u FLAGS ", seq, m.uid);
		sess_write_flags(s, sess_flags(s, m.uid, m.flags), m.keywords);
		io_printf(&s->io, " MODSEQ (%llu))\r\n", (unsigned long long)m.modseq);
	}
	store_msg_cursor_close(&cur);
}

static void do_select(struct session *s, struct imap_command *cmd, int readonly)
{
	char name[STORE_NAME_MAX + 1];
	struct qresync q = {0};
	if (cmd->nargs < 1 || cmd->nargs > 2 ||
	    (cmd->nargs == 2 && cmd->args[1].type != IMAP_ARG_LIST)) {
		sess_tagged(s, "BAD", "SELECT needs a mailbox name");
		return;
	}
	if (sess_mailbox_arg(s, &cmd->args[0], name, sizeof(name)) < 0)
		return;
	int condstore_before = s->condstore;
	if (cmd->nargs == 2 && parse_select_params(s, &cmd->args[1], &q) < 0) {
		s->condstore = condstore_before;
		sess_tagged(s, "BAD", "Bad SELECT parameters (QRESYNC needs ENABLE QRESYNC first)");
		return;
	}
	if (s->state == S_SELECTED) {
		sess_unselect(s);
		if (s->qresync || s->rev2)
			sess_untagged(s, "OK [CLOSED] Previous mailbox closed.");
	}
	struct store_txn *txn = NULL;
	struct store_mailbox mb;
	struct store_cursor *cur = NULL;
	int r = store_read_begin(s->d->store, &txn);
	if (r == 0)
		r = store_mailbox_get(txn, s->user_id, name, &mb);
	if (r != 0) {
		store_read_end(&txn);
		sess_store_error(s, r, readonly ? "EXAMINE" : "SELECT");
		return;
	}
	struct view *v = &s->sel;
	v->mbid = mb.id;
	mk_strlcpy(v->name, mb.name, sizeof(v->name));
	v->uidvalidity = mb.uidvalidity;
	v->hms = mb.highestmodseq;
	v->exp_modseq = mb.highestmodseq;
	v->uidnext = mb.uidnext;
	v->readonly = readonly;
	uint32_t first_unseen = 0;
	struct store_msg m;
	if (!view_cache_get(s->d, &mb, v, &first_unseen)) {
		if (store_msg_cursor_open(txn, mb.id, 1, &cur) == 0) {
			while (store_msg_cursor_next(cur, &m) == 0) {
				view_push(v, m.uid);
				if (!first_unseen && !(m.flags & STORE_F_SEEN))
					first_unseen = (uint32_t)v->n;
				if (m.keywords[0])
					keywords_merge(&v->keywords, m.keywords);
			}
			store_msg_cursor_close(&cur);
		}
		view_cache_put(s->d, &mb, v, first_unseen);
	}
	struct recent_ctx rc = {.mbid = mb.id, .below = mb.uidnext};
	if (mb.recent > 0 && readonly)
		collect_recent(txn, &rc);
	s->state = S_SELECTED;
	if (mb.recent > 0 && !readonly) {
		/* relaxed: a crash may only give \Recent back */
		store_read_end(&txn);
		if (store_write_relaxed(s->d->store, claim_recent_fn, &rc) != 0)
			rc.n = 0;
		/* the claim is ours: no news to this session */
		r = store_read_begin(s->d->store, &txn);
		if (r == 0 && store_mailbox_get_by_id(txn, mb.id, &mb) == 0 &&
		    mb.uidnext == v->uidnext && mb.highestmodseq == v->hms + rc.n) {
			v->hms = mb.highestmodseq;
			v->exp_modseq = mb.highestmodseq;
		}
	}
	v->recent = rc.uids;
	v->nrecent = rc.n;
	sess_write_flag_lists(s);
	sess_untagged(s, "%zu EXISTS", v->n);
	/* IMAP4rev2 has neither \Recent nor UNSEEN, and names the mailbox in a LIST */
	if (!s->rev2)
		sess_untagged(s, "%zu RECENT", v->nrecent);
	if (first_unseen && !s->rev2)
		sess_untagged(s, "OK [UNSEEN %u] First unseen.", first_unseen);
	if (s->rev2) {
		io_puts(&s->io, "* LIST () \".\" ");
		sess_write_mailbox(s, v->name);
		io_puts(&s->io, "\r\n");
	}
	sess_untagged(s, "OK [UIDVALIDITY %u] UIDs valid", v->uidvalidity);
	sess_untagged(s, "OK [UIDNEXT %u] Predicted next UID", v->uidnext);
	sess_untagged(s, "OK [HIGHESTMODSEQ %llu] Highest", (unsigned long long)v->hms);
	struct buf cap;
	buf_init(&cap, (size_t)1 << 32);
	s->io.capture = &cap; /* the resync's answer is sent after the transaction (see io.h) */
	if (txn != NULL && q.on && q.uidvalidity == v->uidvalidity && q.modseq < v->hms)
		qresync_answer(s, txn, &q);
	s->io.capture = NULL;
	store_read_end(&txn);
	if (cap.len > 0)
		io_write(&s->io, cap.data, cap.len);
	buf_free(&cap);
	sess_tagged(s, "OK", "[%s] %s completed.", readonly ? "READ-ONLY" : "READ-WRITE",
		    readonly ? "Examine" : "Select");
}

void cmd_select(struct session *s, struct imap_command *cmd)
{
	do_select(s, cmd, 0);
}

void cmd_examine(struct session *s, struct imap_command *cmd)
{
	do_select(s, cmd, 1);
}
