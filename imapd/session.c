/* session — one IMAP connection: the command loop, dispatch, replies, and the
 * view of the selected mailbox (sequence numbers, what the client was told). */
#include "imapd/session.h"
#include "imapd/limits.h"

#include "imapd/notify.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/utf7.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/util.h"
#include "lib/array.h"
#include "lib/xmalloc.h"

#define ST_NOTAUTH (1 << S_NOTAUTH)
#define ST_AUTH (1 << S_AUTH)
#define ST_SEL (1 << S_SELECTED)
#define ST_ANY (ST_NOTAUTH | ST_AUTH | ST_SEL)

static const struct command {
	const char *name;
	int states;
	int uid_ok;
	cmd_fn *fn;
} commands[] = {
    {"CAPABILITY", ST_ANY, 0, cmd_capability},
    {"NOOP", ST_ANY, 0, cmd_noop},
    {"LOGOUT", ST_ANY, 0, cmd_logout},
    {"ID", ST_ANY, 0, cmd_id},
    {"STARTTLS", ST_NOTAUTH, 0, cmd_starttls},
    {"LOGIN", ST_NOTAUTH, 0, cmd_login},
    {"AUTHENTICATE", ST_NOTAUTH, 0, cmd_authenticate},
    {"ENABLE", ST_AUTH | ST_SEL, 0, cmd_enable},
    {"COMPRESS", ST_AUTH | ST_SEL, 0, cmd_compress},
    {"NAMESPACE", ST_AUTH | ST_SEL, 0, cmd_namespace},
    {"CREATE", ST_AUTH | ST_SEL, 0, cmd_create},
    {"DELETE", ST_AUTH | ST_SEL, 0, cmd_delete},
    {"RENAME", ST_AUTH | ST_SEL, 0, cmd_rename},
    {"SUBSCRIBE", ST_AUTH | ST_SEL, 0, cmd_subscribe},
    {"UNSUBSCRIBE", ST_AUTH | ST_SEL, 0, cmd_unsubscribe},
    {"LIST", ST_AUTH | ST_SEL, 0, cmd_list},
    {"LSUB", ST_AUTH | ST_SEL, 0, cmd_lsub},
    {"STATUS", ST_AUTH | ST_SEL, 0, cmd_status},
    {"SELECT", ST_AUTH | ST_SEL, 0, cmd_select},
    {"EXAMINE", ST_AUTH | ST_SEL, 0, cmd_examine},
    {"APPEND", ST_AUTH | ST_SEL, 0, cmd_append},
    {"IDLE", ST_AUTH | ST_SEL, 0, cmd_idle},
    {"UNSELECT", ST_SEL, 0, cmd_unselect},
    {"CLOSE", ST_SEL, 0, cmd_close},
    {"CHECK", ST_SEL, 0, cmd_check},
    {"EXPUNGE", ST_SEL, 1, cmd_expunge},
    {"FETCH", ST_SEL, 1, cmd_fetch},
    {"STORE", ST_SEL, 1, cmd_store},
    {"SEARCH", ST_SEL, 1, cmd_search},
    {"CANCELUPDATE", ST_SEL, 0, cmd_cancelupdate},
    {"NOTIFY", ST_AUTH | ST_SEL, 0, cmd_notify},
    {"SORT", ST_SEL, 1, cmd_sort},
    {"THREAD", ST_SEL, 1, cmd_thread},
    {"COPY", ST_SEL, 1, cmd_copy},
    {"MOVE", ST_SEL, 1, cmd_move},
    {"GETQUOTA", ST_AUTH | ST_SEL, 0, cmd_getquota},
    {"GETQUOTAROOT", ST_AUTH | ST_SEL, 0, cmd_getquotaroot},
    {"SETQUOTA", ST_AUTH | ST_SEL, 0, cmd_setquota},
};

/* --- replies ----------------------------------------------------------------- */

void sess_tagged(struct session *s, const char *status, const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	io_printf(&s->io, "%s %s %s\r\n", s->tag ? s->tag : "*", status, text);
}

void sess_untagged(struct session *s, const char *fmt, ...)
{
	char text[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	io_printf(&s->io, "* %s\r\n", text);
}

void sess_store_error(struct session *s, int err, const char *what)
{
	const char *code;
	switch (err) {
	case STORE_ENOTFOUND:
		code = "[NONEXISTENT] ";
		break;
	case STORE_EEXIST:
		code = "[ALREADYEXISTS] ";
		break;
	case STORE_EFULL:
		code = "[UNAVAILABLE] ";
		break;
	case STORE_EINVAL:
		code = "[CANNOT] ";
		break;
	case STORE_ENOTEMPTY:
		code = "[CANNOT] ";
		break;
	case STORE_ETOOBIG:
		code = "[TOOBIG] ";
		break;
	case STORE_EQUOTA: /* RFC 9208 */
		code = "[OVERQUOTA] ";
		break;
	case STORE_EIO:
	case STORE_ECORRUPT:
		code = "[SERVERBUG] ";
		break;
	default:
		code = "";
		break;
	}
	if (err == STORE_EIO || err == STORE_ECORRUPT || err == STORE_EFULL)
		log_warn("%s: %s failed: %s", s->id, what, store_strerror(err));
	sess_tagged(s, "NO", "%s%s failed: %s", code, what, store_strerror(err));
}

/* --- mailbox names ---------------------------------------------------------- */

/* Well-formed UTF-8 (no overlong forms, no surrogates, no C0 controls). */
static int utf8_valid(const char *str)
{
	const unsigned char *p = (const unsigned char *)str;
	while (*p) {
		unsigned c = *p;
		size_t n;
		uint32_t cp;
		if (c < 0x20 || c == 0x7f)
			return 0;
		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, cp = c & 0x07;
		else
			return 0;
		for (size_t i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return 0;
		p += n + 1;
	}
	return 1;
}

int sess_mailbox_arg(struct session *s, const struct imap_arg *arg, char *name_r, size_t size)
{
	const char *wire = imap_arg_astring(s->arena, arg);
	if (wire == NULL) {
		sess_tagged(s, "BAD", "Bad mailbox name");
		return -1;
	}
	/* IMAP4rev2 names mailboxes in UTF-8, IMAP4rev1 in modified UTF-7 */
	int bad = s->rev2 ? !utf8_valid(wire) || mk_strlcpy(name_r, wire, size) >= size
			  : utf7_to_utf8(wire, name_r, size) < 0;
	if (bad || name_r[0] == '\0') {
		sess_tagged(s, "NO", "[CANNOT] Invalid mailbox name");
		return -1;
	}
	if (strncasecmp(name_r, "INBOX", 5) == 0 &&
	    (name_r[5] == '\0' || name_r[5] == STORE_MAILBOX_SEP))
		memcpy(name_r, "INBOX", 5);
	/* The store refuses these too; saying so here keeps the reply clear. */
	if (strchr(name_r, '/') != NULL || name_r[0] == '~' || name_r[0] == STORE_MAILBOX_SEP ||
	    strstr(name_r, "..") != NULL) {
		sess_tagged(s, "NO", "[CANNOT] Invalid mailbox name");
		return -1;
	}
	return 0;
}

void sess_write_mailbox(struct session *s, const char *name)
{
	char wire[STORE_NAME_MAX * 4 + 8];
	if (s->rev2 || utf8_to_utf7(name, wire, sizeof(wire)) < 0)
		mk_strlcpy(wire, name, sizeof(wire));
	io_string(&s->io, wire, strlen(wire));
}

/* --- flags ------------------------------------------------------------------ */

static const struct {
	const char *name;
	uint32_t bit;
} sysflags[] = {
    {"\\Seen", STORE_F_SEEN},	    {"\\Answered", STORE_F_ANSWERED},
    {"\\Flagged", STORE_F_FLAGGED}, {"\\Deleted", STORE_F_DELETED},
    {"\\Draft", STORE_F_DRAFT},	    {"\\Recent", STORE_F_RECENT},
};

void sess_write_flags(struct session *s, uint32_t flags, const char *keywords)
{
	if (s->rev2)
		flags &= ~(uint32_t)STORE_F_RECENT; /* IMAP4rev2 has no \Recent */
	char tmp[STORE_KEYWORDS_MAX + 128];
	size_t n = 0;
	tmp[n++] = '(';
	for (size_t i = 0; i < sizeof(sysflags) / sizeof(sysflags[0]); i++) {
		if (flags & sysflags[i].bit) {
			if (n > 1)
				tmp[n++] = ' ';
			size_t l = strlen(sysflags[i].name);
			memcpy(tmp + n, sysflags[i].name, l);
			n += l;
		}
	}
	if (keywords != NULL && keywords[0] != '\0') {
		size_t l = strnlen(keywords, STORE_KEYWORDS_MAX);
		if (n > 1)
			tmp[n++] = ' ';
		memcpy(tmp + n, keywords, l);
		n += l;
	}
	tmp[n++] = ')';
	io_write(&s->io, tmp, n);
}

#define KEYWORDS_SET_MAX 65536 /* bytes of a mailbox's announced keywords */

static int keyword_in(const char *set, size_t setlen, const char *k, size_t kl)
{
	const char *p = set, *end = set + setlen;
	while (p < end) {
		const char *e = memchr(p, ' ', (size_t)(end - p));
		size_t l = e ? (size_t)(e - p) : (size_t)(end - p);
		if (l == kl && strncasecmp(p, k, l) == 0)
			return 1;
		p += l + 1;
	}
	return 0;
}

int keywords_merge(struct buf *set, const char *keywords)
{
	int added = 0;
	if (set->max == 0)
		buf_init(set, KEYWORDS_SET_MAX);
	for (const char *p = keywords ? keywords : ""; *p;) {
		while (*p == ' ')
			p++;
		size_t l = strcspn(p, " ");
		if (l == 0)
			break;
		if (!keyword_in(set->data ? set->data : "", set->len, p, l)) {
			size_t before = set->len;
			if ((set->len > 0 && buf_append(set, " ", 1) < 0) ||
			    buf_append(set, p, l) < 0) {
				set->len =
				    before; /* full: the client may then see an unlisted keyword */
				if (set->data)
					set->data[before] = '\0';
				break;
			}
			added = 1;
		}
		p += l;
	}
	return added;
}

void sess_write_flag_lists(struct session *s)
{
	const char *kw = s->sel.keywords.len ? s->sel.keywords.data : "";
	const char *sp = kw[0] ? " " : "";
	io_printf(&s->io, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft%s%s)\r\n", sp,
		  kw);
	if (s->sel.readonly)
		io_puts(&s->io, "* OK [PERMANENTFLAGS ()] Read-only mailbox.\r\n");
	else
		io_printf(
		    &s->io,
		    "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft%s%s \\*)] "
		    "Flags permitted.\r\n",
		    sp, kw);
}

void sess_keywords_seen(struct session *s, const char *keywords)
{
	if (keywords == NULL || keywords[0] == '\0' || s->state != S_SELECTED)
		return;
	if (keywords_merge(&s->sel.keywords, keywords))
		sess_write_flag_lists(s);
}

void sess_condstore_on(struct session *s)
{
	if (s->condstore)
		return;
	s->condstore = 1;
	if (s->state == S_SELECTED)
		io_printf(&s->io, "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
			  (unsigned long long)s->sel.hms);
}

static int keyword_ok(const char *k)
{
	if (*k == '\0')
		return 0;
	for (const unsigned char *p = (const unsigned char *)k; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f || strchr("(){%*\"\\]", *p) != NULL)
			return 0;
	return 1;
}

int sess_parse_flags(struct session *s, const struct imap_arg *arg, uint32_t *flags_r,
		     const char **keywords_r)
{
	const struct imap_arg *items = arg;
	size_t n = 1;
	if (arg->type == IMAP_ARG_LIST) {
		items = arg->list;
		n = arg->len;
	}
	char kw[STORE_KEYWORDS_MAX];
	size_t kl = 0;
	*flags_r = 0;
	kw[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		/* NIL is a valid keyword atom here (STORE 1 +FLAGS NIL) */
		if (items[i].type != IMAP_ARG_ATOM && items[i].type != IMAP_ARG_NIL)
			return -1;
		const char *f = items[i].str;
		if (f[0] == '\\') {
			size_t k;
			for (k = 0; k < sizeof(sysflags) / sizeof(sysflags[0]); k++)
				if (strcasecmp(f, sysflags[k].name) == 0)
					break;
			if (k == sizeof(sysflags) / sizeof(sysflags[0]))
				return -1;
			if (sysflags[k].bit != STORE_F_RECENT)
				*flags_r |= sysflags[k].bit;
			continue;
		}
		if (!keyword_ok(f))
			return -1;
		/* skip duplicates */
		size_t fl = strlen(f);
		int dup = 0;
		for (const char *p = kw; *p;) {
			const char *e = strchr(p, ' ');
			size_t l = e ? (size_t)(e - p) : strlen(p);
			if (l == fl && strncasecmp(p, f, l) == 0)
				dup = 1;
			p += l + (e ? 1 : 0);
		}
		if (dup)
			continue;
		if (kl + fl + 2 > sizeof(kw))
			return -1;
		if (kl > 0)
			kw[kl++] = ' ';
		memcpy(kw + kl, f, fl);
		kl += fl;
		kw[kl] = '\0';
	}
	*keywords_r = imap_arena_strndup(s->arena, kw, kl);
	return 0;
}

/* --- the view ------------------------------------------------------------------ */

uint32_t sess_seq_of(const struct session *s, uint32_t uid)
{
	size_t lo = 0, hi = s->sel.n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (s->sel.uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->sel.n && s->sel.uids[lo] == uid ? (uint32_t)(lo + 1) : 0;
}

static size_t lower_bound(const struct session *s, uint32_t uid)
{
	size_t lo = 0, hi = s->sel.n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (s->sel.uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int sess_seqset(struct session *s, const char *text, int uid, struct imap_seqset *set_r)
{
	struct view *v = &s->sel;
	if (strcmp(text, "$") != 0) {
		uint32_t star = uid ? (v->n ? v->uids[v->n - 1] : 0) : (uint32_t)v->n;
		return imap_seqset_parse(s->arena, text, star, set_r);
	}
	/* the saved result: its UIDs, or the numbers they have now */
	set_r->r = imap_arena_alloc(s->arena, (s->nsaved + 1) * sizeof(*set_r->r));
	set_r->n = 0;
	for (size_t i = 0; i < s->nsaved; i++) {
		uint32_t n = uid ? s->saved[i] : sess_seq_of(s, s->saved[i]);
		if (n == 0)
			continue;
		set_r->r[set_r->n].lo = set_r->r[set_r->n].hi = n;
		set_r->n++;
	}
	return 0;
}

int sess_resolve(struct session *s, const char *set, int uid, uint32_t **seqs_r, size_t *n_r)
{
	struct view *v = &s->sel;
	struct imap_seqset ss;
	if (sess_seqset(s, set, uid, &ss) < 0)
		return -1;
	unsigned char *mark = imap_arena_alloc(s->arena, v->n + 1);
	size_t count = 0;
	for (size_t i = 0; i < ss.n; i++) {
		if (uid) {
			for (size_t k = lower_bound(s, ss.r[i].lo);
			     k < v->n && v->uids[k] <= ss.r[i].hi; k++)
				if (!mark[k]) {
					mark[k] = 1;
					count++;
				}
		} else {
			uint32_t lo = ss.r[i].lo ? ss.r[i].lo : 1, hi = ss.r[i].hi;
			if (hi > v->n)
				hi = (uint32_t)v->n;
			for (uint32_t q = lo; q <= hi; q++)
				if (!mark[q - 1]) {
					mark[q - 1] = 1;
					count++;
				}
		}
	}
	uint32_t *seqs = imap_arena_alloc(s->arena, (count + 1) * sizeof(*seqs));
	size_t n = 0;
	for (size_t k = 0; k < v->n; k++)
		if (mark[k])
			seqs[n++] = (uint32_t)(k + 1);
	*seqs_r = seqs;
	*n_r = n;
	return 0;
}

const char *sess_uidset(struct session *s, const uint32_t *uids, size_t n)
{
	size_t cap = n * 24 + 1;
	char *out = imap_arena_alloc(s->arena, cap);
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		int w = j > i
			    ? snprintf(out + o, cap - o, "%s%u:%u", o ? "," : "", uids[i], uids[j])
			    : snprintf(out + o, cap - o, "%s%u", o ? "," : "", uids[i]);
		if (w > 0)
			o += (size_t)w;
		i = j + 1;
	}
	out[o] = '\0';
	return out;
}

uint32_t sess_flags(const struct session *s, uint32_t uid, uint32_t flags)
{
	size_t lo = 0, hi = s->sel.nrecent;
	flags &= ~(uint32_t)STORE_F_RECENT;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (s->sel.recent[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < s->sel.nrecent && s->sel.recent[lo] == uid)
		flags |= STORE_F_RECENT;
	return flags;
}

void sess_unselect(struct session *s)
{
	search_updates_drop(s);
	free(s->saved);
	s->saved = NULL;
	s->nsaved = 0;
	free(s->sel.uids);
	free(s->sel.recent);
	buf_free(&s->sel.keywords);
	memset(&s->sel, 0, sizeof(s->sel));
	if (s->state == S_SELECTED)
		s->state = S_AUTH;
}

static void view_remove(struct view *v, uint32_t seq)
{
	memmove(&v->uids[seq - 1], &v->uids[seq], (v->n - seq) * sizeof(uint32_t));
	v->n--;
}

void view_push(struct view *v, uint32_t uid)
{
	*ARRAY_PUSH(v->uids, v->n, v->cap) = uid;
}

struct exp_ctx {
	uint32_t *uids;
	size_t n, cap;
};

static int collect_expunged(uint32_t uid, uint64_t modseq, void *ctx)
{
	struct exp_ctx *e = ctx;
	(void)modseq;
	*ARRAY_PUSH(e->uids, e->n, e->cap) = uid;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

struct flag_ctx {
	struct session *s;
	uint64_t since;
	uint32_t below_uid;
};

static int report_flags(const struct store_msg *m, void *ctx)
{
	struct flag_ctx *f = ctx;
	struct session *s = f->s;
	if (m->modseq <= f->since || m->uid >= f->below_uid)
		return 0;
	uint32_t seq = sess_seq_of(s, m->uid);
	if (seq == 0)
		return 0;
	for (size_t i = 0; i < s->nown; i++)
		if (s->own_uids[i] == m->uid && s->own_modseqs[i] == m->modseq)
			return 0;
	sess_keywords_seen(s, m->keywords);
	io_printf(&s->io, "* %u FETCH (", seq);
	if (s->qresync || s->condstore)
		io_printf(&s->io, "UID %u ", m->uid);
	io_puts(&s->io, "FLAGS ");
	sess_write_flags(s, sess_flags(s, m->uid, m->flags), m->keywords);
	if (s->condstore)
		io_printf(&s->io, " MODSEQ (%llu)", (unsigned long long)m->modseq);
	io_puts(&s->io, ")\r\n");
	return 0;
}

/* New mail that arrived while a mailbox is selected: this session is the
 * first told about it, so it holds its \Recent (RFC 3501 2.3.2), and a
 * read-write session takes it in the store as SELECT does (the mount then
 * shows it in cur/; a later SELECT does not see it as \Recent). */
struct new_recent {
	uint32_t mbid;
	uint32_t *uids; /* \Recent messages at or above the view's UIDNEXT */
	size_t n, cap;
	size_t claimed; /* after the write: uids[0..claimed) are this session's */
};

static void collect_new_recent(struct store_txn *txn, const struct view *v, struct new_recent *nr)
{
	struct store_cursor *cur = NULL;
	struct store_msg m;
	if (store_msg_cursor_open(txn, v->mbid, v->uidnext, &cur) != 0)
		return;
	while (store_msg_cursor_next(cur, &m) == 0) {
		if (!(m.flags & STORE_F_RECENT))
			continue;
		*ARRAY_PUSH(nr->uids, nr->n, nr->cap) = m.uid;
	}
	store_msg_cursor_close(&cur);
}

/* Takes \Recent off the messages that still have it (another session may
 * have been first); keeps the UIDs it took at the front of uids. */
static int claim_new_recent_fn(struct store_txn *txn, void *ctx)
{
	struct new_recent *nr = ctx;
	nr->claimed = 0;
	for (size_t i = 0; i < nr->n; i++) {
		struct store_msg m;
		int r = store_msg_get(txn, nr->mbid, nr->uids[i], &m);
		if (r == STORE_ENOTFOUND || (r == 0 && !(m.flags & STORE_F_RECENT)))
			continue;
		if (r == 0)
			r = store_msg_set_flags(txn, nr->mbid, nr->uids[i], STORE_FLAGS_REMOVE,
						STORE_F_RECENT, NULL, 0, NULL);
		if (r != 0)
			return r;
		nr->uids[nr->claimed++] = nr->uids[i];
	}
	return 0;
}

/* Adds UIDs (all above the view's \Recent ones) to the session's \Recent. */
static void view_add_recent(struct view *v, const uint32_t *uids, size_t n)
{
	if (n == 0)
		return;
	v->recent = xreallocarray(v->recent, v->nrecent + n, sizeof(uint32_t));
	memcpy(v->recent + v->nrecent, uids, n * sizeof(uint32_t));
	v->nrecent += n;
}

/* The RECENT count: this session's \Recent messages still in the view. */
static size_t view_recent_count(const struct session *s)
{
	size_t n = 0;
	for (size_t i = 0; i < s->sel.nrecent; i++)
		if (sess_seq_of(s, s->sel.recent[i]) != 0)
			n++;
	return n;
}

void sess_sync(struct session *s, int allow_expunge)
{
	struct view *v = &s->sel;
	struct store_txn *txn = NULL;
	struct store_mailbox mb;
	int looked_for_recent = 0;
	if (s->state != S_SELECTED)
		return;
	struct buf cap;
again:
	if (store_read_begin(s->d->store, &txn) != 0)
		return;
	buf_init(&cap, (size_t)1 << 32);
	s->io.capture = &cap; /* sent after the transaction ends (see io.h) */
	int r = store_mailbox_get_by_id(txn, v->mbid, &mb);
	if (r == STORE_ENOTFOUND || (r == 0 && mb.uidvalidity != v->uidvalidity)) {
		s->io.capture = NULL;
		store_read_end(&txn);
		buf_free(&cap);
		sess_untagged(s, "BYE Mailbox was deleted or renamed away");
		s->state = S_LOGOUT;
		return;
	}
	if (r != 0 || (mb.highestmodseq == v->hms && mb.uidnext == v->uidnext &&
		       (!allow_expunge || v->exp_modseq == mb.highestmodseq)))
		goto done;
	/* Only this session's own STORE changed the mailbox (each change adds
	 * exactly one to HIGHESTMODSEQ): nothing to tell, no need to look. */
	if (s->nown > 0 && mb.uidnext == v->uidnext && v->exp_modseq == v->hms) {
		uint64_t mine = 0;
		for (size_t i = 0; i < s->nown; i++)
			if (s->own_modseqs[i] > v->hms)
				mine++;
		if (mb.highestmodseq - v->hms == mine) {
			v->hms = mb.highestmodseq;
			v->exp_modseq = mb.highestmodseq;
			goto done;
		}
	}
	if (!looked_for_recent && mb.uidnext != v->uidnext && mb.recent > 0) {
		/* Nothing was said yet: for a read-write view, claim outside this
		 * read transaction, then look again (our own write is no news). */
		struct new_recent nr = {.mbid = v->mbid};
		looked_for_recent = 1;
		collect_new_recent(txn, v, &nr);
		if (nr.n > 0 && !v->readonly) {
			s->io.capture = NULL;
			store_read_end(&txn);
			buf_free(&cap);
			/* relaxed, as SELECT's claim: a crash may only give \Recent back */
			if (store_write_relaxed(s->d->store, claim_new_recent_fn, &nr) == 0)
				view_add_recent(v, nr.uids, nr.claimed);
			free(nr.uids);
			goto again;
		}
		view_add_recent(v, nr.uids, nr.n); /* EXAMINE: shown, left in the store */
		free(nr.uids);
	}
	if (allow_expunge) {
		struct exp_ctx e = {0};
		store_expunged_since(txn, v->mbid, v->exp_modseq, collect_expunged, &e);
		if (e.n > 0) {
			qsort(e.uids, e.n, sizeof(uint32_t), cmp_u32);
			size_t k = 0;
			for (size_t i = 0; i < e.n; i++) {
				uint32_t seq = sess_seq_of(s, e.uids[i]);
				if (seq == 0)
					continue;
				e.uids[k++] = e.uids[i];
			}
			/* the kept searches first, while the sequence numbers still hold */
			search_updates_expunged(s, e.uids, k);
			for (size_t i = 0; i < k; i++) {
				uint32_t seq = sess_seq_of(s, e.uids[i]);
				if (!s->qresync)
					io_printf(&s->io, "* %u EXPUNGE\r\n", seq);
				view_remove(v, seq);
			}
			if (s->qresync && k > 0)
				io_printf(&s->io, "* VANISHED %s\r\n", sess_uidset(s, e.uids, k));
		}
		free(e.uids);
	}
	uint32_t old_next = v->uidnext;
	size_t old_n = v->n;
	struct store_cursor *cur = NULL;
	if (store_msg_cursor_open(txn, v->mbid, old_next, &cur) == 0) {
		struct store_msg m;
		while (store_msg_cursor_next(cur, &m) == 0)
			if (v->n == 0 || m.uid > v->uids[v->n - 1])
				view_push(v, m.uid);
		store_msg_cursor_close(&cur);
	}
	if (v->n != old_n) {
		io_printf(&s->io, "* %zu EXISTS\r\n", v->n);
		if (!s->rev2) /* RFC 3501 7.3.2; IMAP4rev2 has no RECENT */
			io_printf(&s->io, "* %zu RECENT\r\n", view_recent_count(s));
	}
	if (mb.highestmodseq > v->hms && store_msg_cursor_open(txn, v->mbid, 1, &cur) == 0) {
		struct flag_ctx f = {.s = s, .since = v->hms, .below_uid = old_next};
		struct store_msg m;
		while (store_msg_cursor_next_since(cur, v->hms, &m, NULL) == 0 && m.uid < old_next)
			report_flags(&m, &f);
		store_msg_cursor_close(&cur);
	}
	/* Without allow_expunge, expunges stay pending: exp_modseq stays where it
	 * was so the next full sync finds them. */
	if (allow_expunge)
		v->exp_modseq = mb.highestmodseq;
	v->hms = mb.highestmodseq;
	v->uidnext = mb.uidnext;
done:
	s->io.capture = NULL;
	store_read_end(&txn);
	if (cap.len > 0)
		io_write(&s->io, cap.data, cap.len);
	buf_free(&cap);
	if (s->nupdates > 0 && s->state == S_SELECTED)
		search_updates_run(s);
}

/* --- the command loop ---------------------------------------------------------------- */

static void dispatch(struct session *s, const char *line, size_t len)
{
	struct imap_command cmd;
	const char *err = NULL;
	s->arena = imap_arena_new();
	s->tag = NULL;
	if (imap_parse_command(s->arena, line, len, &cmd, &err) < 0) {
		s->tag = cmd.tag;
		sess_tagged(s, "BAD", "Error in IMAP command: %s", err);
		goto done;
	}
	s->tag = cmd.tag;
	const struct command *c = NULL;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcasecmp(commands[i].name, cmd.name) == 0)
			c = &commands[i];
	if (c == NULL || (cmd.uid && !c->uid_ok)) {
		char p[64];
		sess_tagged(s, "BAD", "Unknown command %s",
			    log_printable(p, sizeof(p), cmd.name, strlen(cmd.name)));
		goto done;
	}
	if (!(c->states & (1 << s->state))) {
		sess_tagged(s, "BAD", "%s",
			    s->state == S_NOTAUTH ? "Log in first"
			    : s->state == S_SELECTED || c->states == ST_SEL
				? "Select a mailbox first"
				: "Already logged in");
		goto done;
	}
	c->fn(s, &cmd);
	if (s->notify != NULL) /* RFC 5465: what changed elsewhere, after each command */
		sess_notify_check(s, 0);
done:
	imap_arena_free(&s->arena);
	s->tag = NULL;
}

/* Reads one more line from the client after the current command (AUTHENTICATE,
 * IDLE). The line (CRLF removed) is copied into the arena. Returns 0 or -1. */
int sess_read_line(struct session *s, size_t cmdlen, char **line_r)
{
	for (;;) {
		char *nl = s->in.len > cmdlen
			       ? memchr(s->in.data + cmdlen, '\n', s->in.len - cmdlen)
			       : NULL;
		if (nl != NULL) {
			size_t l = (size_t)(nl - (s->in.data + cmdlen));
			size_t take = l + 1;
			if (l > 0 && s->in.data[cmdlen + l - 1] == '\r')
				l--;
			*line_r = imap_arena_strndup(s->arena, s->in.data + cmdlen, l);
			memmove(s->in.data + cmdlen, s->in.data + cmdlen + take,
				s->in.len - cmdlen - take);
			s->in.len -= take;
			s->in.data[s->in.len] = '\0';
			return 0;
		}
		if (s->in.len - cmdlen > s->d->max_line)
			return -1;
		if (io_flush(&s->io) < 0 || io_read(&s->io, &s->in) <= 0)
			return -1;
	}
}

static __thread size_t cur_cmdlen;
size_t sess_current_cmdlen(void)
{
	return cur_cmdlen;
}

static void throttle(struct session *s)
{
	double now = mk_monotonic();
	if (now - s->sec_start >= 1.0) {
		s->sec_start = now;
		s->cmds_this_sec = 0;
	}
	if (++s->cmds_this_sec > s->d->max_cmds_per_sec) {
		double wait = 1.0 - (now - s->sec_start);
		if (wait > 0)
			usleep((useconds_t)(wait * 1e6));
		s->sec_start = mk_monotonic();
		s->cmds_this_sec = 0;
	}
}

static void first_word(const char *data, size_t len, char *out, size_t size)
{
	size_t i = 0;
	while (i < len && i + 1 < size && data[i] != ' ' && data[i] != '\r' && data[i] != '\n')
		i++;
	log_printable(out, size, data, i);
}

/* Starts TLS on the session's connection with the certificate of this moment:
 * the SSL keeps its own reference, so a SIGHUP later does not touch it. */
int sess_start_tls(struct session *s, char *err, size_t errsize)
{
	SSL_CTX *ctx = tls_holder_get(&s->d->tls);
	int rc = -1;

	snprintf(err, errsize, "no TLS certificate");
	if (ctx != NULL) {
		rc = io_starttls(&s->io, ctx, err, errsize);
		SSL_CTX_free(ctx);
	}
	return rc;
}

/* NOTIFY: waits for the client, telling it of changes meanwhile (RFC 5465:
 * between commands too). 1 when the client sent something, 0 on the idle
 * timeout, -1 on an error. */
static int wait_notifying(struct session *s)
{
	double start = mk_monotonic();
	for (;;) {
		double left = s->io.timeout_ms / 1000.0 - (mk_monotonic() - start);
		if (left <= 0)
			return 0;
		int r = io_wait(&s->io, s->notify_fd,
				s->notify_fd >= 0 ? (int)(left * 1000) + 1 : 1000);
		if (r == 1 || r < 0)
			return r;
		if (r == 2)
			notify_drain(s->notify_fd);
		sess_notify_check(s, 1); /* without a notice fd: once a second */
		if (io_flush(&s->io) < 0 || s->notify == NULL)
			return s->io.failed ? -1 : 1;
	}
}

void session_run(struct imapd *d, int fd, int implicit_tls)
{
	struct session *s = xcalloc(1, sizeof(*s));
	s->d = d;
	s->notify_fd = -1;
	io_init(&s->io, fd, d->login_timeout * 1000);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
		net_addr_str((struct sockaddr *)&ss, sl, s->ip, sizeof(s->ip));
	sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		net_addr_str((struct sockaddr *)&ss, sl, s->lip, sizeof(s->lip));
	s->plaintext_ok =
	    net_cidr_match_list(s->ip, (const char *const *)d->plaintext_nets, d->nplaintext_nets);
	mk_queue_id(s->id, sizeof(s->id));
	s->sec_start = mk_monotonic();
	log_info("%s: connect from [%s]%s", s->id, s->ip, implicit_tls ? " (TLS)" : "");
	if (implicit_tls) {
		char err[256];
		if (sess_start_tls(s, err, sizeof(err)) < 0) {
			log_info("%s: disconnect from [%s]: %s", s->id, s->ip, err);
			goto out;
		}
		s->tls = 1;
	}
	buf_init(&s->in, d->max_line + (size_t)d->max_literal + 65536);
	imap_frame_init(&s->fr, d->max_line, d->max_literal);
	{
		struct buf caps;
		buf_init(&caps, 4096);
		sess_capabilities(s, &caps);
		io_printf(&s->io, "* OK [CAPABILITY %s] mailkeep ready.\r\n",
			  caps.data ? caps.data : "");
		buf_free(&caps);
	}
	while (s->state != S_LOGOUT) {
		size_t cmdlen;
		int r = imap_frame(&s->fr, s->in.data ? s->in.data : "", s->in.len, &cmdlen);
		if (r == IMAP_PARSE_MORE) {
			if (s->fr.need_continuation) {
				io_puts(&s->io, "+ OK\r\n");
				/* The client may have sent the literal already (without
				 * waiting for "+"): frame what is buffered before reading. */
				if (s->fr.pos < s->in.len)
					continue;
			}
			if (io_flush(&s->io) < 0)
				break;
			if (s->notify != NULL && wait_notifying(s) <= 0) {
				sess_untagged(s, "BYE Autologout; idle for too long");
				break;
			}
			long n = io_read(&s->io, &s->in);
			if (n == -2) {
				sess_untagged(s, "BYE Command too long");
				break;
			}
			if (n == 0)
				break;
			if (n < 0) {
				sess_untagged(s, "BYE Autologout; idle for too long");
				break;
			}
			continue;
		}
		if (r == IMAP_PARSE_ERROR) {
			char tag[65];
			first_word(s->in.data, s->in.len, tag, sizeof(tag));
			if (s->fr.literal_too_big && s->fr.literal_sync) {
				/* No "+" was sent, so no literal bytes follow: stay in step. */
				io_printf(
				    &s->io,
				    "%s NO [TOOBIG] Literal too big (the limit is %llu bytes)\r\n",
				    tag, (unsigned long long)d->max_literal);
				buf_consume(&s->in, s->fr.pos);
				imap_frame_reset(&s->fr);
				continue;
			}
			io_printf(&s->io, "* BYE %s\r\n", s->fr.error);
			log_info("%s: [%s]: %s", s->id, s->ip, s->fr.error);
			break;
		}
		throttle(s);
		cur_cmdlen = cmdlen;
		enum sess_state before = s->state;
		dispatch(s, s->in.data, cmdlen);
		if (before == S_NOTAUTH && s->state != S_NOTAUTH)
			s->io.timeout_ms = d->timeout * 1000;
		if (s->io.failed)
			break;
		buf_consume(&s->in, cmdlen < s->in.len ? cmdlen : s->in.len);
		imap_frame_reset(&s->fr);
		/* A large literal made the buffer big: give the memory back. */
		if (s->in.cap > 1 << 20 && s->in.len < 65536) {
			struct buf nb;
			buf_init(&nb, s->in.max);
			if (s->in.len)
				buf_append(&nb, s->in.data, s->in.len);
			buf_free(&s->in);
			s->in = nb;
		}
	}
	io_flush(&s->io);
	log_info("%s: disconnect from [%s]%s%s", s->id, s->ip, s->user[0] ? " user=" : "", s->user);
out:
	imap_limits_close(fd); /* before the fd is closed and its number reused */
	buf_free(&s->in);
	sess_notify_drop(s);
	sess_unselect(s);
	io_close(&s->io);
	free(s);
}
