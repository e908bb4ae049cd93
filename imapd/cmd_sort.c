/* cmd_sort — SORT and UID SORT (RFC 5256; DISPLAYFROM/DISPLAYTO of RFC 5957;
 * ESORT's RETURN and PARTIAL of RFC 5267) and THREAD (ORDEREDSUBJECT and
 * REFERENCES, RFC 5256 2.2-2.3). The keys run through SEARCH's code
 * (search.h); what is compared comes from the store's cache by blob hash
 * (mime_sort_fields, kind "imap.sort"). Strings compare as i;ascii-casemap. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imapd/fetch.h"
#include "imapd/mime.h"
#include "imapd/search.h"
#include "imapd/session.h"
#include "lib/xmalloc.h"

#define SORT_MAX_KEYS 16

/* One matching message, as compared. */
struct smsg {
	uint32_t seq, uid;
	char *subject; /* base subject */
	int reply;
	int64_t date; /* sent date, or the internal date without one (RFC 5256) */
	int64_t arrival;
	uint64_t size;
	char *from, *to, *cc, *dfrom, *dto;
	char *msgid, *refs;
	char block[]; /* the strings */
};

static void visit(struct store_txn *txn, const struct store_msg *m, struct fetch_cache *pending,
		  struct search_hit *hit, void *ctx)
{
	const char *rec = "";
	size_t len = 0;
	(void)ctx;
	if (fetch_sort(txn, m, pending, &rec, &len) != 0)
		rec = "", len = 0;
	struct smsg *sm = xcalloc(1, sizeof(*sm) + len + 16);
	memcpy(sm->block, rec, len);
	char *piece[10];
	char *p = sm->block, *end = sm->block + len;
	for (int i = 0; i < 10; i++) {
		piece[i] = p < end ? p : (char *)"";
		if (p < end)
			p += strlen(p) + 1;
	}
	sm->seq = hit->seq;
	sm->uid = hit->uid;
	sm->subject = piece[0];
	sm->reply = piece[1][0] == 'R';
	sm->arrival = m->internaldate;
	sm->date = piece[2][0] ? strtoll(piece[2], NULL, 10) : m->internaldate;
	sm->from = piece[3], sm->to = piece[4], sm->cc = piece[5];
	sm->dfrom = piece[6], sm->dto = piece[7];
	sm->msgid = piece[8], sm->refs = piece[9];
	sm->size = m->size;
	fetch_size(txn, m, pending, &sm->size);
	hit->data = sm;
}

static void free_hits(struct search_hit *hits, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(hits[i].data);
	free(hits);
}

/* i;ascii-casemap (RFC 4790): a-z compared as A-Z, every other byte as is
 * ("[" and "_" sort after the letters) */
static int casemap_cmp(const char *a, const char *b)
{
	const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
	for (;; x++, y++) {
		unsigned cx = *x >= 'a' && *x <= 'z' ? *x - 32u : *x;
		unsigned cy = *y >= 'a' && *y <= 'z' ? *y - 32u : *y;
		if (cx != cy || cx == 0)
			return cx < cy ? -1 : cx > cy;
	}
}

static int cmp_num(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

/* --- SORT ------------------------------------------------------------------- */

enum sort_key {
	SK_ARRIVAL,
	SK_CC,
	SK_DATE,
	SK_FROM,
	SK_SIZE,
	SK_SUBJECT,
	SK_TO,
	SK_DISPLAYFROM,
	SK_DISPLAYTO
};

struct criteria {
	enum sort_key key[SORT_MAX_KEYS];
	int reverse[SORT_MAX_KEYS];
	size_t n;
};

static __thread const struct criteria *sort_by;

/* The text a string key compares. */
static const char *sort_text(const struct smsg *m, enum sort_key k)
{
	switch (k) {
	case SK_SUBJECT:
		return m->subject;
	case SK_FROM:
		return m->from;
	case SK_TO:
		return m->to;
	case SK_CC:
		return m->cc;
	case SK_DISPLAYFROM:
		return m->dfrom;
	case SK_DISPLAYTO:
		return m->dto;
	default:
		return "";
	}
}

static int compare_msgs(const void *a, const void *b)
{
	const struct smsg *x = ((const struct search_hit *)a)->data,
			  *y = ((const struct search_hit *)b)->data;
	for (size_t i = 0; i < sort_by->n; i++) {
		int c = 0;
		enum sort_key k = sort_by->key[i];
		if (k == SK_ARRIVAL)
			c = cmp_num(x->arrival, y->arrival);
		else if (k == SK_DATE)
			c = cmp_num(x->date, y->date);
		else if (k == SK_SIZE)
			c = x->size < y->size ? -1 : x->size > y->size;
		else
			c = casemap_cmp(sort_text(x, k), sort_text(y, k));
		if (c != 0)
			return sort_by->reverse[i] ? -c : c;
	}
	/* RFC 5256 3: ties go by sequence number, whatever REVERSE says */
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int parse_criteria(const struct imap_arg *l, struct criteria *c)
{
	static const struct {
		const char *name;
		enum sort_key key;
	} keys[] = {{"ARRIVAL", SK_ARRIVAL},
		    {"CC", SK_CC},
		    {"DATE", SK_DATE},
		    {"FROM", SK_FROM},
		    {"SIZE", SK_SIZE},
		    {"SUBJECT", SK_SUBJECT},
		    {"TO", SK_TO},
		    {"DISPLAYFROM", SK_DISPLAYFROM},
		    {"DISPLAYTO", SK_DISPLAYTO}};
	int reverse = 0;
	memset(c, 0, sizeof(*c));
	if (l->type != IMAP_ARG_LIST || l->len == 0)
		return -1;
	for (size_t i = 0; i < l->len; i++) {
		if (imap_arg_is_atom(&l->list[i], "REVERSE")) {
			if (reverse)
				return -1;
			reverse = 1;
			continue;
		}
		size_t k;
		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (imap_arg_is_atom(&l->list[i], keys[k].name))
				break;
		if (k == sizeof(keys) / sizeof(keys[0]) || c->n == SORT_MAX_KEYS)
			return -1;
		c->key[c->n] = keys[k].key;
		c->reverse[c->n++] = reverse;
		reverse = 0;
	}
	return reverse ? -1 : 0;
}

/* A charset argument (SORT and THREAD name one, without a CHARSET keyword). */
static int charset_ok(struct session *s, const struct imap_arg *a)
{
	const char *cs = imap_arg_astring(s->arena, a);
	if (cs == NULL) {
		sess_tagged(s, "BAD", "A charset is needed");
		return 0;
	}
	if (strcasecmp(cs, "UTF-8") != 0 && strcasecmp(cs, "US-ASCII") != 0) {
		sess_tagged(s, "NO", "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
		return 0;
	}
	return 1;
}

int sort_run(struct session *s, const struct imap_arg *args, size_t nargs,
	     struct search_hit **hits_r, size_t *n_r, int *modseq_used_r)
{
	struct criteria crit;
	if (nargs < 3 || parse_criteria(&args[0], &crit) < 0) {
		sess_tagged(s, "BAD", "SORT needs (criteria), a charset and search keys");
		return -1;
	}
	if (!charset_ok(s, &args[1]))
		return -1;
	int r = search_run(s, args + 2, nargs - 2, "SORT", hits_r, n_r, modseq_used_r, visit, NULL);
	if (r != 0)
		return r;
	sort_by = &crit;
	qsort(*hits_r, *n_r, sizeof(**hits_r), compare_msgs);
	return 0;
}

void sort_hits_free(struct search_hit *hits, size_t n)
{
	free_hits(hits, n);
}

void cmd_sort(struct session *s, struct imap_command *cmd)
{
	struct search_return ret = {0};
	size_t i = 0;
	if (cmd->nargs >= 2 && imap_arg_is_atom(&cmd->args[0], "RETURN") &&
	    cmd->args[1].type == IMAP_ARG_LIST) {
		if (search_parse_return(s, &cmd->args[1], 1, &ret) < 0)
			return;
		i = 2;
	}
	struct search_hit *hits;
	size_t n;
	int modseq_used;
	int r = sort_run(s, cmd->args + i, cmd->nargs - i, &hits, &n, &modseq_used);
	if (r == -1)
		return;
	if (r != 0) {
		sess_store_error(s, r, "SORT");
		return;
	}
	if (ret.update && search_update_keep(s, cmd, i, hits, n, 1) < 0) {
		free_hits(hits, n);
		return;
	}
	if (ret.save)
		search_save(s, &ret, hits, n, 1);
	search_write_result(s, "SORT", &ret, hits, n, cmd->uid, modseq_used, 1);
	free_hits(hits, n);
	sess_sync(s, cmd->uid);
	sess_tagged(s, "OK", "Sort completed.");
}

/* --- THREAD ------------------------------------------------------------------- */

/* A node of the thread tree: a message, or a dummy (msg NULL). */
struct tnode {
	struct smsg *msg;
	const char *id;
	int parent, child, next; /* indexes; -1 for none */
};

struct tree {
	struct tnode *v;
	size_t n, cap;
	/* message id -> node, open addressing */
	int *slots;
	size_t nslots;
};

static int tree_new_node(struct tree *t, struct smsg *msg, const char *id)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->v = xreallocarray(t->v, t->cap, sizeof(*t->v));
	}
	struct tnode *nd = &t->v[t->n];
	nd->msg = msg;
	nd->id = id;
	nd->parent = nd->child = nd->next = -1;
	return (int)t->n++;
}

static size_t hash_str(const char *s)
{
	size_t h = 5381;
	for (; *s; s++)
		h = h * 33 + (unsigned char)*s;
	return h;
}

/* The node of a message id (case-sensitive), or -1; with create, a dummy. */
static int tree_find(struct tree *t, const char *id, int create)
{
	size_t i = hash_str(id) & (t->nslots - 1);
	while (t->slots[i] >= 0) {
		if (strcmp(t->v[t->slots[i]].id, id) == 0)
			return t->slots[i];
		i = (i + 1) & (t->nslots - 1);
	}
	if (!create)
		return -1;
	int nd = tree_new_node(t, NULL, id);
	t->slots[i] = nd;
	return nd;
}

static int is_ancestor(const struct tree *t, int anc, int nd)
{
	for (int p = nd; p >= 0; p = t->v[p].parent)
		if (p == anc)
			return 1;
	return 0;
}

static void unlink_node(struct tree *t, int nd)
{
	int p = t->v[nd].parent;
	if (p < 0)
		return;
	int *link = &t->v[p].child;
	while (*link != nd)
		link = &t->v[*link].next;
	*link = t->v[nd].next;
	t->v[nd].next = -1;
	t->v[nd].parent = -1;
}

static void add_child(struct tree *t, int parent, int nd)
{
	/* at the end, so that siblings keep the order they were linked in */
	t->v[nd].parent = parent;
	t->v[nd].next = -1;
	int *link = &t->v[parent].child;
	while (*link >= 0)
		link = &t->v[*link].next;
	*link = nd;
}

/* Links child under parent unless that makes a loop. */
static void link_nodes(struct tree *t, int parent, int child, int replace)
{
	if (t->v[child].parent >= 0) {
		if (!replace)
			return;
		unlink_node(t, child); /* 1.B: broken first, even if no new link follows */
	}
	if (parent == child || is_ancestor(t, child, parent))
		return;
	add_child(t, parent, child);
}

/* The date a node sorts by: its message's, or a dummy's first child's. */
static const struct smsg *sort_msg(const struct tree *t, int nd)
{
	while (nd >= 0 && t->v[nd].msg == NULL)
		nd = t->v[nd].child;
	return nd >= 0 ? t->v[nd].msg : NULL;
}

static __thread const struct tree *cmp_tree;

static int cmp_nodes(const void *a, const void *b)
{
	const struct smsg *x = sort_msg(cmp_tree, *(const int *)a),
			  *y = sort_msg(cmp_tree, *(const int *)b);
	if (x == NULL || y == NULL)
		return (x == NULL) - (y == NULL);
	int c = cmp_num(x->date, y->date);
	return c ? c : (x->seq < y->seq ? -1 : x->seq > y->seq);
}

/* Sorts the children of nd by sent date (recursively if deep). */
static void sort_children(struct tree *t, int nd, int deep)
{
	size_t k = 0;
	for (int c = t->v[nd].child; c >= 0; c = t->v[c].next) {
		if (deep)
			sort_children(t, c, 1);
		k++;
	}
	if (k < 2)
		return;
	int *v = xmalloc(k * sizeof(int));
	k = 0;
	for (int c = t->v[nd].child; c >= 0; c = t->v[c].next)
		v[k++] = c;
	cmp_tree = t;
	qsort(v, k, sizeof(int), cmp_nodes);
	t->v[nd].child = v[0];
	for (size_t i = 0; i + 1 < k; i++)
		t->v[v[i]].next = v[i + 1];
	t->v[v[k - 1]].next = -1;
	free(v);
}

/* RFC 5256 2.2 step 3: dummies go, their children take their place (not
 * into the root's level unless there is only one). */
static void prune(struct tree *t, int nd, int is_root)
{
	int *link = &t->v[nd].child;
	while (*link >= 0) {
		int c = *link;
		prune(t, c, 0);
		if (t->v[c].msg != NULL) {
			link = &t->v[c].next;
			continue;
		}
		int first = t->v[c].child;
		if (first < 0) { /* no children: delete */
			*link = t->v[c].next;
			continue;
		}
		if (is_root && t->v[first].next >= 0) { /* keep it: several children at the root */
			link = &t->v[c].next;
			continue;
		}
		/* splice the children in where the dummy was */
		int last = first;
		for (int g = first; g >= 0; g = t->v[g].next) {
			t->v[g].parent = nd;
			last = g;
		}
		t->v[last].next = t->v[c].next;
		*link = first;
	}
}

static const char *thread_subject(const struct tree *t, int nd)
{
	const struct smsg *m = t->v[nd].msg ? t->v[nd].msg : sort_msg(t, t->v[nd].child);
	return m ? m->subject : "";
}

/* RFC 5256 2.2 step 5: roots with the same base subject come together. */
static void merge_subjects(struct tree *t, int root)
{
	size_t k = 0;
	for (int c = t->v[root].child; c >= 0; c = t->v[c].next)
		k++;
	if (k < 2)
		return;
	int *roots = xmalloc(k * sizeof(int)), *table = xmalloc(k * sizeof(int));
	k = 0;
	for (int c = t->v[root].child; c >= 0; c = t->v[c].next)
		roots[k++] = c;
	/* B: one node per subject (a small table: roots are few) */
	size_t nt = 0;
	for (size_t i = 0; i < k; i++) {
		const char *subj = thread_subject(t, roots[i]);
		if (subj[0] == '\0')
			continue;
		size_t j;
		for (j = 0; j < nt; j++)
			if (strcasecmp(thread_subject(t, table[j]), subj) == 0)
				break;
		if (j == nt) {
			table[nt++] = roots[i];
			continue;
		}
		const struct tnode *old = &t->v[table[j]], *cur = &t->v[roots[i]];
		if (old->msg != NULL && (cur->msg == NULL || (old->msg->reply && !cur->msg->reply)))
			table[j] = roots[i];
	}
	/* C: merge */
	for (size_t i = 0; i < k; i++) {
		int cur = roots[i];
		const char *subj = thread_subject(t, cur);
		if (subj[0] == '\0')
			continue;
		size_t j;
		for (j = 0; j < nt; j++)
			if (strcasecmp(thread_subject(t, table[j]), subj) == 0)
				break;
		if (j == nt || table[j] == cur)
			continue;
		int tab = table[j];
		struct tnode *tn = &t->v[tab], *cn = &t->v[cur];
		if (tn->msg == NULL && cn->msg == NULL) {
			unlink_node(t, cur);
			while (t->v[cur].child >= 0) {
				int g = t->v[cur].child;
				unlink_node(t, g);
				add_child(t, tab, g);
			}
		} else if (tn->msg == NULL ||
			   (cn->msg != NULL && cn->msg->reply && !(tn->msg && tn->msg->reply))) {
			unlink_node(t, cur);
			add_child(t, tab, cur);
		} else {
			int dummy = tree_new_node(t, NULL, "");
			unlink_node(t, tab);
			unlink_node(t, cur);
			add_child(t, root, dummy);
			add_child(t, dummy, tab);
			add_child(t, dummy, cur);
			table[j] = dummy;
		}
	}
	free(roots);
	free(table);
}

/* (a b (c)(d)): a node, then its only child in the same list, or each of
 * several children in its own parentheses. */
static void write_thread(struct session *s, const struct tree *t, int nd, int uid)
{
	const struct tnode *n = &t->v[nd];
	int sp = 0;
	if (n->msg != NULL) {
		io_printf(&s->io, "%u", uid ? n->msg->uid : n->msg->seq);
		sp = 1;
	}
	int c = n->child;
	if (c < 0)
		return;
	if (t->v[c].next < 0 && n->msg != NULL) {
		io_puts(&s->io, " ");
		write_thread(s, t, c, uid);
		return;
	}
	if (sp)
		io_puts(&s->io, " ");
	for (; c >= 0; c = t->v[c].next) {
		io_puts(&s->io, "(");
		write_thread(s, t, c, uid);
		io_puts(&s->io, ")");
	}
}

static void build_references(struct session *s, struct tree *t, struct search_hit *hits, size_t n,
			     int root)
{
	char uniq[32];
	for (size_t i = 0; i < n; i++) {
		struct smsg *m = hits[i].data;
		int nd = m->msgid[0] ? tree_find(t, m->msgid, 0) : -1;
		if (nd >= 0 && t->v[nd].msg == NULL) {
			t->v[nd].msg = m; /* a dummy made by an earlier reference */
		} else {
			/* no Message-ID, or one already taken: a unique one */
			if (nd >= 0 || !m->msgid[0]) {
				snprintf(uniq, sizeof(uniq), " %u", m->seq);
				nd = tree_new_node(
				    t, m, imap_arena_strndup(s->arena, uniq, strlen(uniq)));
			} else {
				nd = tree_find(t, m->msgid, 1);
				t->v[nd].msg = m;
			}
		}
		/* 1.A: the references link each to the next */
		int prev = -1;
		char *refs = m->refs;
		for (char *p = refs; *p;) {
			size_t l = strcspn(p, " ");
			char save = p[l];
			p[l] = '\0';
			int r = tree_find(t, p, 1);
			p[l] = save;
			if (prev >= 0)
				link_nodes(t, prev, r, 0);
			prev = r;
			p += l;
			while (*p == ' ')
				p++;
		}
		/* 1.B: the last reference is the parent */
		if (prev >= 0)
			link_nodes(t, prev, nd, 1);
		else if (t->v[nd].parent >= 0)
			unlink_node(t, nd);
	}
	/* 2: every node without a parent under the root */
	for (size_t i = 0; i < t->n; i++)
		if ((int)i != root && t->v[i].parent < 0)
			add_child(t, root, (int)i);
}

static void build_orderedsubject(struct tree *t, struct search_hit *hits, size_t n, int root)
{
	static const struct criteria by_subject_date = {{SK_SUBJECT, SK_DATE}, {0, 0}, 2};
	sort_by = &by_subject_date;
	qsort(hits, n, sizeof(*hits), compare_msgs);
	int top = -1;
	const char *subj = NULL;
	for (size_t i = 0; i < n; i++) {
		struct smsg *m = hits[i].data;
		int nd = tree_new_node(t, m, "");
		if (top >= 0 && strcasecmp(subj, m->subject) == 0) {
			add_child(t, top, nd);
			continue;
		}
		add_child(t, root, nd);
		top = nd;
		subj = m->subject;
	}
}

void cmd_thread(struct session *s, struct imap_command *cmd)
{
	int refs;
	if (cmd->nargs < 3 || cmd->args[0].type != IMAP_ARG_ATOM) {
		sess_tagged(s, "BAD", "THREAD needs an algorithm, a charset and search keys");
		return;
	}
	if (strcasecmp(cmd->args[0].str, "REFERENCES") == 0)
		refs = 1;
	else if (strcasecmp(cmd->args[0].str, "ORDEREDSUBJECT") == 0)
		refs = 0;
	else {
		sess_tagged(s, "BAD", "Unknown THREAD algorithm");
		return;
	}
	if (!charset_ok(s, &cmd->args[1]))
		return;
	struct search_hit *hits;
	size_t n;
	int r =
	    search_run(s, cmd->args + 2, cmd->nargs - 2, "THREAD", &hits, &n, NULL, visit, NULL);
	if (r == -1)
		return;
	if (r != 0) {
		sess_store_error(s, r, "THREAD");
		return;
	}
	struct tree t = {0};
	size_t refcount = 0;
	for (size_t i = 0; i < n; i++) {
		const struct smsg *m = hits[i].data;
		refcount += 1;
		for (const char *p = m->refs; *p; p++)
			refcount += *p == '<';
	}
	t.nslots = 16;
	while (t.nslots < 2 * (refcount + 1))
		t.nslots *= 2;
	t.slots = xmalloc(t.nslots * sizeof(int));
	memset(t.slots, 0xff, t.nslots * sizeof(int));
	int root = tree_new_node(&t, NULL, "");
	if (refs) {
		build_references(s, &t, hits, n, root);
		prune(&t, root, 1);
		/* 4: the top level by date (a dummy by its first child's) */
		for (int c = t.v[root].child; c >= 0; c = t.v[c].next)
			if (t.v[c].msg == NULL)
				sort_children(&t, c, 0);
		sort_children(&t, root, 0);
		merge_subjects(&t, root);
		sort_children(&t, root, 1);
	} else {
		build_orderedsubject(&t, hits, n, root);
		sort_children(&t, root, 1);
	}
	io_puts(&s->io, t.v[root].child >= 0 ? "* THREAD " : "* THREAD");
	for (int c = t.v[root].child; c >= 0; c = t.v[c].next) {
		io_puts(&s->io, "(");
		write_thread(s, &t, c, cmd->uid);
		io_puts(&s->io, ")");
	}
	io_puts(&s->io, "\r\n");
	free(t.v);
	free(t.slots);
	free_hits(hits, n);
	sess_sync(s, cmd->uid);
	sess_tagged(s, "OK", "Thread completed.");
}
