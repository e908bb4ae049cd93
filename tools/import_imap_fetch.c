/* import_imap_fetch — one folder's messages: EXAMINE, the UIDs to fetch,
 * pipelined UID FETCHes whose answers may come interleaved, each message to
 * the importer, and (CONDSTORE) the server's flag changes onto the copies a
 * run brought earlier (see import_imap.c). */
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

/* --- per folder: EXAMINE, list, fetch ------------------------------------------------- */

static int examine_cb(struct imapc *c, void *ctx)
{
	struct folder *f = ctx;
	const struct imapc_resp *p = &c->resp;

	if (p->status == IMAPC_DATA && imapc_is_atom(p, p->nodes[p->first].next, "EXISTS")) {
		int64_t n = imapc_number(p, p->first);
		f->exists = n > 0 ? (uint64_t)n : 0;
	}
	if (p->status == IMAPC_OK && p->code >= 0) {
		int32_t k = p->nodes[p->code].first, v = k >= 0 ? p->nodes[k].next : -1;
		int64_t n = imapc_number(p, v);
		if (imapc_is_atom(p, k, "UIDVALIDITY") && n > 0 && n <= UINT32_MAX)
			f->uidvalidity_now = (uint32_t)n;
		else if (imapc_is_atom(p, k, "UIDNEXT") && n > 0 && n <= UINT32_MAX)
			f->uidnext = (uint32_t)n;
		else if (imapc_is_atom(p, k, "HIGHESTMODSEQ") && n > 0)
			f->modseq = (uint64_t)n;
	}
	return 0;
}

/* EXAMINE (read-only: the server's \Seen and \Recent stay as they are). */
int imap_examine(struct imap_run *r, struct folder *f)
{
	char q[2100];

	if (imapc_quote(f->wire, q, sizeof(q)) < 0) {
		snprintf(r->c.err, sizeof(r->c.err), "the folder name holds a line break");
		return 1;
	}
	f->exists = 0;
	f->uidnext = 0;
	f->modseq = 0;
	f->uidvalidity_now = 0;
	return imapc_cmd(&r->c, examine_cb, f, "EXAMINE %s%s", q,
			 r->condstore ? " (CONDSTORE)" : "");
}

static int uid_cmp(const void *a, const void *b)
{
	const struct uidsize *x = a, *y = b;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

struct listing {
	struct folder *f;
	uint32_t from;
	size_t cap;
	int gmail_all;	   /* Gmail's All Mail: leave out what has a label */
	uint64_t labelled; /* ... so many */
};

/* 1 if a Gmail X-GM-LABELS list holds a label that is a folder (so the
 * message comes with that folder): anything but \Important, \Starred, \Muted. */
static int gmail_in_a_folder(const struct imapc_resp *p, int32_t list)
{
	const struct imapc_node *l = imapc_node(p, list);

	if (l == NULL || l->type != IMAPC_LIST)
		return 0;
	for (int32_t n = l->first; n >= 0; n = p->nodes[n].next) {
		const struct imapc_node *x = &p->nodes[n];
		if (x->type == IMAPC_NIL || x->len == 0)
			continue;
		if ((x->len == 10 && strncasecmp(x->s, "\\Important", 10) == 0) ||
		    (x->len == 8 && strncasecmp(x->s, "\\Starred", 8) == 0) ||
		    (x->len == 6 && strncasecmp(x->s, "\\Muted", 6) == 0))
			continue;
		return 1;
	}
	return 0;
}

static int list_uids_cb(struct imapc *c, void *ctx)
{
	struct listing *l = ctx;
	const struct imapc_resp *p = &c->resp;

	if (p->status != IMAPC_DATA || !imapc_is_atom(p, p->nodes[p->first].next, "FETCH"))
		return 0;
	int32_t items = p->nodes[p->nodes[p->first].next].next;
	int64_t uid = imapc_number(p, imapc_list_get(p, items, "UID"));
	int64_t size = imapc_number(p, imapc_list_get(p, items, "RFC822.SIZE"));
	if (uid < (int64_t)l->from || uid > UINT32_MAX)
		return 0; /* "N:*" answers the last message even when it is below N */
	if (l->gmail_all && gmail_in_a_folder(p, imapc_list_get(p, items, "X-GM-LABELS"))) {
		l->labelled++; /* it comes with its label's folder: not even downloaded */
		return 0;
	}
	if (l->f->nuids == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 1024;
		l->f->uids = xreallocarray(l->f->uids, l->cap, sizeof(*l->f->uids));
	}
	l->f->uids[l->f->nuids].uid = (uint32_t)uid;
	l->f->uids[l->f->nuids].size = size > 0 && size < UINT32_MAX ? (uint32_t)size : 0;
	l->f->nuids++;
	return 0;
}

/* Fills f->uids with what is to be fetched. Returns as imapc_cmd. */
int imap_list_folder(struct imap_run *r, struct folder *f)
{
	struct listing l = {f, f->st.last_uid + 1, 0, f->kind == FK_ALL && r->gmail, 0};
	int rc;

	free(f->uids);
	free(f->taken);
	f->uids = NULL;
	f->taken = NULL;
	f->nuids = f->prefix = 0;
	f->bytes = 0;
	if (f->exists == 0)
		return 0;
	rc = imapc_cmd(&r->c, list_uids_cb, &l, "UID FETCH %u:* (UID RFC822.SIZE%s)", l.from,
		       l.gmail_all ? " X-GM-LABELS" : "");
	if (rc != 0)
		return rc;
	r->elsewhere += l.labelled;
	if (f->nuids > 1)
		qsort(f->uids, f->nuids, sizeof(*f->uids), uid_cmp);
	f->taken = xcalloc(f->nuids + 1, 1);
	for (size_t i = 0; i < f->nuids; i++)
		f->bytes += f->uids[i].size;
	return 0;
}

/* Flags and keywords of a FETCH's FLAGS list. */
static void flags_of(const struct imapc_resp *p, int32_t list, uint32_t *flags_r, char *kw,
		     size_t kwsize)
{
	static const struct {
		const char *name;
		uint32_t flag;
	} sys[] = {{"\\Seen", STORE_F_SEEN},
		   {"\\Answered", STORE_F_ANSWERED},
		   {"\\Flagged", STORE_F_FLAGGED},
		   {"\\Deleted", STORE_F_DELETED},
		   {"\\Draft", STORE_F_DRAFT}};
	const struct imapc_node *l = imapc_node(p, list);
	size_t o = 0;

	*flags_r = 0;
	kw[0] = '\0';
	if (l == NULL || l->type != IMAPC_LIST)
		return;
	for (int32_t n = l->first; n >= 0; n = p->nodes[n].next) {
		const struct imapc_node *x = &p->nodes[n];
		int known = 0;
		if (x->type != IMAPC_ATOM || x->len == 0)
			continue;
		for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++)
			if (imapc_is_atom(p, n, sys[i].name)) {
				*flags_r |= sys[i].flag;
				known = 1;
			}
		if (known || x->s[0] == '\\')
			continue; /* \Recent and unknown system flags are the server's */
		if (o + x->len + 2 > kwsize) {
			cli_warn(
			    "import: more keywords than a message keeps here (%zu bytes): some "
			    "left out",
			    kwsize);
			break;
		}
		if (o > 0)
			kw[o++] = ' ';
		memcpy(kw + o, x->s, x->len);
		o += x->len;
		kw[o] = '\0';
	}
}

/* Gmail's labels: \Important becomes the keyword $Important, \Starred \Flagged. */
static void gmail_labels(const struct imapc_resp *p, int32_t list, uint32_t *flags, char *kw,
			 size_t kwsize)
{
	const struct imapc_node *l = imapc_node(p, list);

	if (l == NULL || l->type != IMAPC_LIST)
		return;
	for (int32_t n = l->first; n >= 0; n = p->nodes[n].next) {
		const struct imapc_node *x = &p->nodes[n];
		if (x->len == 10 && strncasecmp(x->s, "\\Important", 10) == 0 &&
		    strstr(kw, "$Important") == NULL && strlen(kw) + 12 < kwsize)
			snprintf(kw + strlen(kw), kwsize - strlen(kw), "%s$Important",
				 kw[0] ? " " : "");
		if (x->len == 8 && strncasecmp(x->s, "\\Starred", 8) == 0)
			*flags |= STORE_F_FLAGGED;
	}
}

/* Sleeps so that the bytes read stay under --max-rate. */
static void pace(struct imap_run *r)
{
	if (r->max_rate <= 0)
		return;
	double want = (double)imap_run_bytes(r) / r->max_rate, spent = mk_monotonic() - r->t0;
	if (want > spent + 0.01) {
		double d = want - spent;
		struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
		nanosleep(&ts, NULL);
	}
}

/* Marks uids[i] taken and moves last_uid over every taken one at the start. */
static void mark_taken(struct folder *f, size_t i)
{
	if (f->taken[i])
		return;
	f->taken[i] = 1;
	if (f->uids[i].uid > f->st.hi_uid)
		f->st.hi_uid = f->uids[i].uid;
	while (f->prefix < f->nuids && f->taken[f->prefix])
		f->prefix++;
	if (f->prefix > 0 && f->uids[f->prefix - 1].uid > f->st.last_uid)
		f->st.last_uid = f->uids[f->prefix - 1].uid;
	f->dirty = 1;
}

static ssize_t uid_index(const struct folder *f, uint32_t uid)
{
	size_t lo = 0, hi = f->nuids;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (f->uids[mid].uid == uid)
			return (ssize_t)mid;
		if (f->uids[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* One message of a FETCH reply. Returns 0, or -2 if the store failed. */
static int fetch_one(struct imap_run *r, struct folder *f)
{
	const struct imapc_resp *p = &r->c.resp;
	char kw[STORE_KEYWORDS_MAX], origin[1400], code[64];
	struct import_msg im = {0};

	if (p->status == IMAPC_OK && p->kind == IMAPC_UNTAGGED) {
		imapc_code(&r->c, code, sizeof(code));
		if (strcasecmp(code, "THROTTLED") == 0)
			r->throttled = 1;
		return 0;
	}
	if (p->status != IMAPC_DATA || !imapc_is_atom(p, p->nodes[p->first].next, "FETCH"))
		return 0;
	int32_t items = p->nodes[p->nodes[p->first].next].next;
	int64_t uid = imapc_number(p, imapc_list_get(p, items, "UID"));
	int32_t body = imapc_list_get(p, items, "BODY[]");
	const struct imapc_node *b = imapc_node(p, body);
	if (uid <= 0 || uid > UINT32_MAX || b == NULL ||
	    (b->type != IMAPC_STRING && b->type != IMAPC_NIL))
		return 0; /* a flag change told by the server meanwhile, not our reply */
	ssize_t idx = uid_index(f, (uint32_t)uid);
	if (idx < 0 || f->taken[idx])
		return 0; /* not asked for, or taken before a reconnection */
	snprintf(origin, sizeof(origin), "%s/%s UID %lld", r->source, f->shown, (long long)uid);
	if (b->type == IMAPC_NIL || b->len == 0) {
		cli_warn("import: %s: the server gave no bytes for the message: skipped", origin);
	} else {
		const struct imapc_node *d =
		    imapc_node(p, imapc_list_get(p, items, "INTERNALDATE"));
		im.mailbox = f->target;
		im.data = b->s;
		im.len = b->len;
		flags_of(p, imapc_list_get(p, items, "FLAGS"), &im.flags, kw, sizeof(kw));
		if (r->gmail)
			gmail_labels(p, imapc_list_get(p, items, "X-GM-LABELS"), &im.flags, kw,
				     sizeof(kw));
		im.keywords = kw[0] ? kw : NULL;
		if (d == NULL || imapc_parse_date(d->s, d->len, &im.internaldate) < 0)
			im.internaldate = 0;
		im.origin = origin;
		/* where it came from: a later run carries flag changes over (CONDSTORE) */
		char meta[96];
		snprintf(meta, sizeof(meta), "imap_source=%s %u %lld\n", f->srcid,
			 f->st.uidvalidity, (long long)uid);
		im.meta = meta;
		/* above every UID an earlier run took, it is new: added as it is; between
		 * the contiguous and the highest taken, an earlier run may have it */
		im.force = !f->st.by_content && (uint32_t)uid > f->resume_hi;
		int add = 1;
		if (f->kind == FK_ALL) {
			uint8_t hash[STORE_HASH_LEN];
			store_hash(b->s, b->len, hash);
			if (importer_user_has(r->imp, hash)) {
				add = 0; /* brought by its label's folder */
				r->elsewhere++;
			}
			im.force = 0;
		}
		if (add && importer_add(r->imp, &im) != 0) {
			r->fatal = 1;
			return -2;
		}
	}
	/* counted as taken from here on; written with the next batch */
	mark_taken(f, (size_t)idx);
	f->st.messages++;
	r->done_msgs++;
	r->done_bytes += b->len;
	progress_update(&r->prog, r->done_bytes, r->total_bytes, r->done_msgs, r->done_bytes);
	pace(r);
	return 0;
}

/* The uid set "a:b,c" of uids[from..to) into out. */
static void uid_set(const struct uidsize *u, size_t from, size_t to, char *out, size_t outsize)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = from; i < to;) {
		size_t j = i;
		while (j + 1 < to && u[j + 1].uid == u[j].uid + 1)
			j++;
		int n = j > i ? snprintf(out + o, outsize - o, "%s%u:%u", o ? "," : "", u[i].uid,
					 u[j].uid)
			      : snprintf(out + o, outsize - o, "%s%u", o ? "," : "", u[i].uid);
		if (n < 0 || (size_t)n >= outsize - o)
			break; /* the caller keeps sets small enough */
		o += (size_t)n;
		i = j + 1;
	}
}

/* Fetches what is not taken of f, WINDOW commands in flight. A server may
 * run pipelined FETCHes at once (Dovecot does) and interleave their replies:
 * each message is looked up by UID, and each tagged reply by its tag.
 * Returns 0, 1 if the server refused (c->err), -1 on a network error, -2 if
 * the store failed. */
int imap_fetch_folder(struct imap_run *r, struct folder *f)
{
	struct {
		char tag[16];
		size_t from, to;
		int busy;
	} slot[WINDOW];
	char set[4096];
	size_t next = f->prefix, inflight = 0;

	memset(slot, 0, sizeof(slot));
	for (;;) {
		while (next < f->nuids && inflight < WINDOW && !r->stopped_by_limit) {
			while (next < f->nuids && f->taken[next])
				next++;
			if (next >= f->nuids)
				break;
			size_t end = next;
			uint64_t bytes = 0;
			while (end < f->nuids && end - next < CHUNK_MSGS &&
			       (end == next || bytes + f->uids[end].size <= CHUNK_BYTES)) {
				bytes += f->uids[end].size;
				end++;
			}
			int s = 0;
			while (slot[s].busy)
				s++;
			uid_set(f->uids, next, end, set, sizeof(set));
			if (imapc_send(&r->c, slot[s].tag,
				       "UID FETCH %s (UID FLAGS INTERNALDATE BODY.PEEK[]%s)", set,
				       r->gmail ? " X-GM-LABELS" : "") < 0)
				return -1;
			slot[s].from = next;
			slot[s].to = end;
			slot[s].busy = 1;
			inflight++;
			next = end;
		}
		if (inflight == 0)
			break;
		if (imapc_read(&r->c) < 0 || imapc_check_bye(&r->c) < 0)
			return -1;
		const struct imapc_resp *p = &r->c.resp;
		if (p->kind != IMAPC_TAGGED) {
			if (fetch_one(r, f) != 0)
				return -2;
			continue;
		}
		int s;
		for (s = 0; s < WINDOW; s++)
			if (slot[s].busy && p->taglen == strlen(slot[s].tag) &&
			    memcmp(p->tag, slot[s].tag, p->taglen) == 0)
				break;
		if (s == WINDOW)
			continue; /* an earlier command's reply */
		slot[s].busy = 0;
		inflight--;
		if (imapc_tagged_status(&r->c) != 0)
			return 1; /* the others in flight are answered after a reconnection */
		/* every UID of the chunk is answered: one the server did not send is gone */
		for (size_t i = slot[s].from; i < slot[s].to; i++)
			mark_taken(f, i);
		if (r->throttled) {
			/* the server asked to slow down: a pause that grows while it keeps asking
			 */
			r->window_pause = r->window_pause > 0 ? r->window_pause * 2 : 1;
			if (r->window_pause > 60)
				r->window_pause = 60;
			if (!r->quiet)
				cli_warn("import: the server says [THROTTLED]: pausing %.0f s",
					 r->window_pause);
			sleep((unsigned)r->window_pause);
			r->throttled = 0;
		}
		if (r->max_bytes > 0 && imap_run_bytes(r) >= r->max_bytes)
			r->stopped_by_limit = 1;
	}
	return 0;
}

/* --- flags changed on the server since the last run (CONDSTORE) ------------------- */

static int change_cmp(const void *a, const void *b)
{
	const struct flagchange *x = a, *y = b;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static int changes_cb(struct imapc *c, void *ctx)
{
	struct folder *f = ctx;
	const struct imapc_resp *p = &c->resp;

	if (p->status != IMAPC_DATA || !imapc_is_atom(p, p->nodes[p->first].next, "FETCH"))
		return 0;
	int32_t items = p->nodes[p->nodes[p->first].next].next;
	int64_t uid = imapc_number(p, imapc_list_get(p, items, "UID"));
	int32_t fl = imapc_list_get(p, items, "FLAGS");
	if (uid <= 0 || uid > f->st.last_uid || fl < 0)
		return 0;
	f->changes = xreallocarray(f->changes, f->nchanges + 1, sizeof(*f->changes));
	struct flagchange *ch = &f->changes[f->nchanges++];
	ch->uid = (uint32_t)uid;
	flags_of(p, fl, &ch->flags, ch->keywords, sizeof(ch->keywords));
	return 0;
}

struct flagfix {
	uint32_t uid; /* ours */
	const struct flagchange *ch;
	uint32_t keep; /* our flags the server has no say in (\Recent) */
};

struct flagscan {
	struct store_txn *txn;
	const struct folder *f;
	struct flagfix *fixes;
	size_t nfixes;
	int rc;
};

/* One of our messages: if it came from this folder and its flags changed there, a fix. */
static int scan_cb(const struct store_msg *msg, void *ctx)
{
	struct flagscan *sc = ctx;
	char meta[STORE_META_MAX], id[17];
	unsigned long long v, u;
	struct flagchange key, *ch;

	if ((sc->rc = store_msg_meta(sc->txn, msg->mbid, msg->uid, meta)) != 0)
		return 1;
	const char *m = strstr(meta, "imap_source=");
	if (m == NULL || sscanf(m, "imap_source=%16s %llu %llu", id, &v, &u) != 3 ||
	    strcmp(id, sc->f->srcid) != 0 || v != sc->f->st.uidvalidity)
		return 0;
	key.uid = (uint32_t)u;
	ch = bsearch(&key, sc->f->changes, sc->f->nchanges, sizeof(key), change_cmp);
	if (ch == NULL)
		return 0;
	uint32_t mine = msg->flags & (STORE_F_SEEN | STORE_F_ANSWERED | STORE_F_FLAGGED |
				      STORE_F_DELETED | STORE_F_DRAFT);
	if (mine == ch->flags && strcmp(msg->keywords, ch->keywords) == 0)
		return 0;
	sc->fixes = xreallocarray(sc->fixes, sc->nfixes + 1, sizeof(*sc->fixes));
	sc->fixes[sc->nfixes].uid = msg->uid;
	sc->fixes[sc->nfixes].ch = ch;
	sc->fixes[sc->nfixes].keep = msg->flags & ~mine;
	sc->nfixes++;
	return 0;
}

struct flagapply {
	uint32_t mbid;
	const struct flagscan *sc;
};

static int apply_fixes(struct store_txn *txn, void *ctx)
{
	struct flagapply *a = ctx;
	int rc;

	for (size_t i = 0; i < a->sc->nfixes; i++) {
		const struct flagfix *x = &a->sc->fixes[i];
		rc = store_msg_set_flags(txn, a->mbid, x->uid, STORE_FLAGS_SET,
					 x->ch->flags | x->keep, x->ch->keywords, 0, NULL);
		if (rc != 0 && rc != STORE_ENOTFOUND) /* expunged here meanwhile: nothing to do */
			return rc;
	}
	return 0;
}

/* The server's flag changes since the recorded HIGHESTMODSEQ onto the
 * messages this import brought from the folder (found by their
 * imap_source metadata): the server's flags win for a message that changed
 * there. Messages expunged on the server stay here (moving in never deletes).
 * Returns as imapc_cmd, or -2 if the store failed. */
int imap_sync_flags(struct imap_run *r, struct folder *f)
{
	struct flagscan sc = {0};
	struct store_mailbox mb;
	int rc;

	f->nchanges = 0;
	rc = imapc_cmd(&r->c, changes_cb, f, "UID FETCH 1:%u (UID FLAGS) (CHANGEDSINCE %llu)",
		       f->st.last_uid, (unsigned long long)f->st.highestmodseq);
	if (rc != 0 || f->nchanges == 0)
		return rc;
	qsort(f->changes, f->nchanges, sizeof(*f->changes), change_cmp);
	sc.f = f;
	if ((rc = store_read_begin(r->store, &sc.txn)) == 0) {
		rc = store_mailbox_get(sc.txn, importer_user_id(r->imp), f->target, &mb);
		if (rc == 0)
			rc = store_msg_foreach(sc.txn, mb.id, scan_cb, &sc);
		if (rc == 0)
			rc = sc.rc;
		store_read_end(&sc.txn);
	}
	if (rc == STORE_ENOTFOUND) /* the user deleted the mailbox: nothing to follow */
		rc = 0;
	if (rc == 0 && sc.nfixes > 0) {
		struct flagapply a = {mb.id, &sc};
		rc = store_write(r->store, apply_fixes, &a);
		if (rc == 0)
			r->flags_updated += sc.nfixes;
	}
	free(sc.fixes);
	if (rc != 0) {
		cli_error("import: %s: cannot update flags: %s", f->shown, cli_store_hint(rc));
		return -2;
	}
	return 0;
}
