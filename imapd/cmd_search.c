/* cmd_search — SEARCH and UID SEARCH with every RFC 3501 key, CHARSET UTF-8,
 * CONDSTORE's MODSEQ key and ESEARCH's RETURN (MIN MAX COUNT ALL). Keys that
 * need the message (headers, body, sent date) read the stored bytes only
 * when the cheaper keys have not already decided. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libetpan/libetpan.h>

#include "imapd/fetch.h"
#include "imapd/mime.h"
#include "imapd/session.h"
#include "lib/util.h"
#include "lib/xmalloc.h"

enum key_kind {
	K_ALL, K_AND, K_OR, K_NOT, K_FLAG, K_UNFLAG, K_KEYWORD, K_UNKEYWORD, K_NEW, K_OLD, K_RECENT,
	K_LARGER, K_SMALLER, K_BEFORE, K_ON, K_SINCE, K_SENTBEFORE, K_SENTON, K_SENTSINCE, K_HEADER,
	K_BODY, K_TEXT, K_SEQ, K_UID, K_MODSEQ,
};

struct key {
	enum key_kind kind;
	uint32_t flag;
	uint64_t num;
	const char *str;     /* keyword, header value */
	const char *field;   /* K_HEADER: the field name */
	struct imap_seqset set;
	struct key *a, *b;   /* NOT/OR operands; AND: children in list */
	struct key **list;
	size_t n;
};

struct sparser {
	struct session *s;
	const struct imap_arg *args;
	size_t n, i;
	int depth;
	int modseq_used;
};

static const char *months[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};

#define days_from_civil mime_days_from_civil

/* "1-Feb-1994" -> day number. */
static int parse_date(const char *s, int64_t *day_r)
{
	unsigned d = 0, y = 0;
	char mon[4];
	const char *p = s;
	if (*p == '"')
		p++;
	if (!isdigit((unsigned char)*p))
		return -1;
	while (isdigit((unsigned char)*p))
		d = d * 10 + (unsigned)(*p++ - '0');
	if (*p++ != '-')
		return -1;
	for (int i = 0; i < 3; i++) {
		if (!isalpha((unsigned char)p[i]))
			return -1;
		mon[i] = (char)tolower((unsigned char)p[i]);
	}
	mon[3] = '\0';
	p += 3;
	if (*p++ != '-')
		return -1;
	for (int i = 0; i < 4; i++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		y = y * 10 + (unsigned)(*p++ - '0');
	}
	unsigned m;
	for (m = 0; m < 12; m++)
		if (strcmp(mon, months[m]) == 0)
			break;
	if (m == 12 || d < 1 || d > 31)
		return -1;
	*day_r = days_from_civil(y, m + 1, d);
	return 0;
}

static struct key *parse_key(struct sparser *p);

static struct key *new_key(struct sparser *p, enum key_kind k)
{
	struct key *key = imap_arena_alloc(p->s->arena, sizeof(*key));
	key->kind = k;
	return key;
}

static const char *next_string(struct sparser *p)
{
	if (p->i >= p->n)
		return NULL;
	return imap_arg_astring(p->s->arena, &p->args[p->i++]);
}

static struct key *parse_and(struct sparser *p, const struct imap_arg *args, size_t n)
{
	struct sparser sub = *p;
	sub.args = args;
	sub.n = n;
	sub.i = 0;
	sub.depth++;
	if (sub.depth > 16 || n == 0)
		return NULL;
	struct key *k = new_key(p, K_AND);
	k->list = imap_arena_alloc(p->s->arena, n * sizeof(*k->list));
	while (sub.i < sub.n) {
		struct key *c = parse_key(&sub);
		if (c == NULL)
			return NULL;
		k->list[k->n++] = c;
	}
	p->modseq_used |= sub.modseq_used;
	return k;
}

static struct key *parse_key(struct sparser *p)
{
	static const struct {
		const char *name;
		enum key_kind k;
		uint32_t flag;
	} flagkeys[] = {
		{"ANSWERED", K_FLAG, STORE_F_ANSWERED}, {"DELETED", K_FLAG, STORE_F_DELETED},
		{"DRAFT", K_FLAG, STORE_F_DRAFT},       {"FLAGGED", K_FLAG, STORE_F_FLAGGED},
		{"SEEN", K_FLAG, STORE_F_SEEN},         {"UNANSWERED", K_UNFLAG, STORE_F_ANSWERED},
		{"UNDELETED", K_UNFLAG, STORE_F_DELETED}, {"UNDRAFT", K_UNFLAG, STORE_F_DRAFT},
		{"UNFLAGGED", K_UNFLAG, STORE_F_FLAGGED}, {"UNSEEN", K_UNFLAG, STORE_F_SEEN},
	};
	static const struct {
		const char *name, *field;
	} hdrkeys[] = {{"FROM", "From"}, {"TO", "To"}, {"CC", "Cc"}, {"BCC", "Bcc"}, {"SUBJECT", "Subject"}};
	if (p->i >= p->n)
		return NULL;
	const struct imap_arg *a = &p->args[p->i++];
	if (a->type == IMAP_ARG_LIST)
		return parse_and(p, a->list, a->len);
	if (a->type != IMAP_ARG_ATOM)
		return NULL;
	const char *w = a->str;
	for (size_t i = 0; i < sizeof(flagkeys) / sizeof(flagkeys[0]); i++)
		if (strcasecmp(w, flagkeys[i].name) == 0) {
			struct key *k = new_key(p, flagkeys[i].k);
			k->flag = flagkeys[i].flag;
			return k;
		}
	for (size_t i = 0; i < sizeof(hdrkeys) / sizeof(hdrkeys[0]); i++)
		if (strcasecmp(w, hdrkeys[i].name) == 0) {
			struct key *k = new_key(p, K_HEADER);
			k->field = hdrkeys[i].field;
			k->str = next_string(p);
			return k->str ? k : NULL;
		}
	if (strcasecmp(w, "ALL") == 0)
		return new_key(p, K_ALL);
	if (strcasecmp(w, "NEW") == 0)
		return new_key(p, K_NEW);
	if (strcasecmp(w, "OLD") == 0)
		return new_key(p, K_OLD);
	if (strcasecmp(w, "RECENT") == 0)
		return new_key(p, K_RECENT);
	if (strcasecmp(w, "NOT") == 0) {
		struct key *k = new_key(p, K_NOT);
		if (++p->depth > 64)
			return NULL;
		k->a = parse_key(p);
		p->depth--;
		return k->a ? k : NULL;
	}
	if (strcasecmp(w, "OR") == 0) {
		struct key *k = new_key(p, K_OR);
		if (++p->depth > 64)
			return NULL;
		k->a = parse_key(p);
		k->b = k->a ? parse_key(p) : NULL;
		p->depth--;
		return k->b ? k : NULL;
	}
	if (strcasecmp(w, "KEYWORD") == 0 || strcasecmp(w, "UNKEYWORD") == 0) {
		struct key *k = new_key(p, strcasecmp(w, "KEYWORD") == 0 ? K_KEYWORD : K_UNKEYWORD);
		k->str = next_string(p);
		return k->str ? k : NULL;
	}
	if (strcasecmp(w, "LARGER") == 0 || strcasecmp(w, "SMALLER") == 0) {
		struct key *k = new_key(p, strcasecmp(w, "LARGER") == 0 ? K_LARGER : K_SMALLER);
		const char *v = next_string(p);
		return v && mk_parse_u64(v, 0, UINT64_MAX >> 1, &k->num) == 0 ? k : NULL;
	}
	static const struct {
		const char *name;
		enum key_kind k;
	} datekeys[] = {{"BEFORE", K_BEFORE}, {"ON", K_ON}, {"SINCE", K_SINCE},
			{"SENTBEFORE", K_SENTBEFORE}, {"SENTON", K_SENTON}, {"SENTSINCE", K_SENTSINCE}};
	for (size_t i = 0; i < sizeof(datekeys) / sizeof(datekeys[0]); i++)
		if (strcasecmp(w, datekeys[i].name) == 0) {
			struct key *k = new_key(p, datekeys[i].k);
			const char *v = next_string(p);
			int64_t day;
			if (v == NULL || parse_date(v, &day) < 0)
				return NULL;
			k->num = (uint64_t)day;
			return k;
		}
	if (strcasecmp(w, "HEADER") == 0) {
		struct key *k = new_key(p, K_HEADER);
		k->field = next_string(p);
		k->str = k->field ? next_string(p) : NULL;
		return k->str ? k : NULL;
	}
	if (strcasecmp(w, "BODY") == 0 || strcasecmp(w, "TEXT") == 0) {
		struct key *k = new_key(p, strcasecmp(w, "BODY") == 0 ? K_BODY : K_TEXT);
		k->str = next_string(p);
		return k->str ? k : NULL;
	}
	if (strcasecmp(w, "UID") == 0) {
		struct key *k = new_key(p, K_UID);
		const char *v = next_string(p);
		struct view *vw = &p->s->sel;
		return v && imap_seqset_parse(p->s->arena, v, vw->n ? vw->uids[vw->n - 1] : 0, &k->set) == 0 ? k : NULL;
	}
	if (strcasecmp(w, "MODSEQ") == 0) {
		struct key *k = new_key(p, K_MODSEQ);
		/* MODSEQ [entry-name entry-type-req] mod-sequence-valzer */
		if (p->i + 2 < p->n && p->args[p->i].type == IMAP_ARG_QUOTED)
			p->i += 2;
		const char *v = next_string(p);
		p->modseq_used = 1;
		p->s->condstore = 1;
		return v && mk_parse_u64(v, 0, UINT64_MAX >> 1, &k->num) == 0 ? k : NULL;
	}
	/* a sequence set */
	struct key *k = new_key(p, K_SEQ);
	if (imap_seqset_parse(p->s->arena, w, (uint32_t)p->s->sel.n, &k->set) < 0)
		return NULL;
	return k;
}

/* --- evaluation -------------------------------------------------------------------- */

struct msgctx {
	struct store_txn *txn;
	const struct store_msg *m;
	uint32_t seq;
	const char *data;
	size_t len, hlen;
	int loaded;
	struct fetch_cache *pending;
	struct fetch_mime_text mt;
	int mt_loaded;
	uint32_t flags; /* with the session's \Recent */
};

/* The i-th segment of the cached search record (see mime_search_fields). */
static const char *search_segment(struct msgctx *c, int i, size_t *len_r)
{
	if (!c->mt_loaded)
		c->mt_loaded = fetch_mime(c->txn, c->m, c->pending, &c->mt) == 0 ? 1 : -1;
	if (c->mt_loaded != 1)
		return NULL;
	const char *p = c->mt.srch, *end = c->mt.srch + c->mt.srchlen;
	for (; i > 0 && p < end; i--) {
		const char *z = memchr(p, '\0', (size_t)(end - p));
		if (z == NULL)
			return NULL;
		p = z + 1;
	}
	const char *z = memchr(p, '\0', (size_t)(end - p));
	if (p >= end || z == NULL)
		return NULL;
	*len_r = (size_t)(z - p);
	return p;
}

static int load(struct msgctx *c)
{
	if (!c->loaded) {
		const void *d;
		c->loaded = -1;
		if (store_blob_get(c->txn, c->m->hash, &d, &c->len) == 0) {
			c->data = d;
			c->hlen = mime_header_len(c->data, c->len);
			c->loaded = 1;
		}
	}
	return c->loaded == 1;
}

static int contains_ci(const char *hay, size_t hlen, const char *needle)
{
	size_t nl = strlen(needle);
	if (nl == 0)
		return 1;
	if (nl > hlen)
		return 0;
	unsigned char f = (unsigned char)tolower((unsigned char)needle[0]);
	for (size_t i = 0; i + nl <= hlen; i++) {
		if ((unsigned char)tolower((unsigned char)hay[i]) != f)
			continue;
		if (strncasecmp(hay + i, needle, nl) == 0)
			return 1;
	}
	return 0;
}

static int header_match(struct msgctx *c, const char *field, const char *value)
{
	char v[16384];
	int idx_field = mime_search_field_index(field);
	if (idx_field >= 0) {
		size_t sl;
		const char *seg = search_segment(c, idx_field, &sl);
		if (seg != NULL) {
			if (value[0] == '\0')
				return seg[0] != '\t';
			return contains_ci(seg, sl, value);
		}
	}
	if (!load(c))
		return 0;
	if (!mime_header_get(c->data, c->hlen, field, v, sizeof(v)))
		return 0;
	if (value[0] == '\0' || contains_ci(v, strlen(v), value))
		return 1;
	/* also match the decoded text of RFC 2047 encoded words */
	size_t idx = 0;
	char *dec = NULL;
	int found = 0;
	if (strstr(v, "=?") != NULL &&
	    mailmime_encoded_phrase_parse("utf-8", v, strlen(v), &idx, "utf-8", &dec) == MAILIMF_NO_ERROR && dec) {
		found = contains_ci(dec, strlen(dec), value);
		free(dec);
	}
	return found;
}

static int sent_day(struct msgctx *c, int64_t *day_r)
{
	char v[512];
	size_t sl;
	const char *seg = search_segment(c, 5, &sl);
	if (seg != NULL) {
		if (seg[0] == '-')
			return 0;
		*day_r = strtoll(seg, NULL, 10);
		return 1;
	}
	if (!load(c) || !mime_header_get(c->data, c->hlen, "Date", v, sizeof(v)))
		return 0;
	size_t idx = 0;
	struct mailimf_date_time *dt = NULL;
	if (mailimf_date_time_parse(v, strlen(v), &idx, &dt) != MAILIMF_NO_ERROR || dt == NULL)
		return 0;
	int ok = dt->dt_month >= 1 && dt->dt_month <= 12 && dt->dt_day >= 1 && dt->dt_day <= 31;
	if (ok)
		*day_r = days_from_civil(dt->dt_year, (unsigned)dt->dt_month, (unsigned)dt->dt_day);
	mailimf_date_time_free(dt);
	return ok;
}

static int has_keyword(const char *kws, const char *k)
{
	size_t kl = strlen(k);
	for (const char *p = kws; *p;) {
		const char *e = strchr(p, ' ');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == kl && strncasecmp(p, k, l) == 0)
			return 1;
		if (!e)
			break;
		p = e + 1;
	}
	return 0;
}

static int eval(const struct key *k, struct msgctx *c)
{
	const struct store_msg *m = c->m;
	int64_t iday = m->internaldate >= 0 ? m->internaldate / 86400 : (m->internaldate - 86399) / 86400;
	int64_t day;
	switch (k->kind) {
	case K_ALL: return 1;
	case K_AND:
		for (size_t i = 0; i < k->n; i++)
			if (!eval(k->list[i], c))
				return 0;
		return 1;
	case K_OR: return eval(k->a, c) || eval(k->b, c);
	case K_NOT: return !eval(k->a, c);
	case K_FLAG: return (m->flags & k->flag) != 0;
	case K_UNFLAG: return (m->flags & k->flag) == 0;
	case K_KEYWORD: return has_keyword(m->keywords, k->str);
	case K_UNKEYWORD: return !has_keyword(m->keywords, k->str);
	case K_NEW: return (c->flags & STORE_F_RECENT) && !(m->flags & STORE_F_SEEN);
	case K_OLD: return !(c->flags & STORE_F_RECENT);
	case K_RECENT: return (c->flags & STORE_F_RECENT) != 0;
	case K_LARGER: return m->size > k->num;
	case K_SMALLER: return m->size < k->num;
	case K_BEFORE: return iday < (int64_t)k->num;
	case K_ON: return iday == (int64_t)k->num;
	case K_SINCE: return iday >= (int64_t)k->num;
	case K_SENTBEFORE: return sent_day(c, &day) && day < (int64_t)k->num;
	case K_SENTON: return sent_day(c, &day) && day == (int64_t)k->num;
	case K_SENTSINCE: return sent_day(c, &day) && day >= (int64_t)k->num;
	case K_HEADER: return header_match(c, k->field, k->str);
	case K_BODY: return load(c) && contains_ci(c->data + c->hlen, c->len - c->hlen, k->str);
	case K_TEXT: return load(c) && contains_ci(c->data, c->len, k->str);
	case K_SEQ: return imap_seqset_contains(&k->set, c->seq);
	case K_UID: return imap_seqset_contains(&k->set, m->uid);
	case K_MODSEQ: return m->modseq >= k->num;
	}
	return 0;
}

void cmd_search(struct session *s, struct imap_command *cmd)
{
	struct sparser p = {.s = s, .args = cmd->args, .n = cmd->nargs};
	int esearch = 0, r_min = 0, r_max = 0, r_count = 0, r_all = 0;
	if (p.n >= 2 && imap_arg_is_atom(&p.args[0], "RETURN") && p.args[1].type == IMAP_ARG_LIST) {
		esearch = 1;
		const struct imap_arg *l = &p.args[1];
		for (size_t i = 0; i < l->len; i++) {
			if (imap_arg_is_atom(&l->list[i], "MIN"))
				r_min = 1;
			else if (imap_arg_is_atom(&l->list[i], "MAX"))
				r_max = 1;
			else if (imap_arg_is_atom(&l->list[i], "COUNT"))
				r_count = 1;
			else if (imap_arg_is_atom(&l->list[i], "ALL"))
				r_all = 1;
			else {
				sess_tagged(s, "BAD", "Unknown RETURN option");
				return;
			}
		}
		if (!r_min && !r_max && !r_count)
			r_all = 1;
		p.i = 2;
	}
	if (p.n >= p.i + 2 && imap_arg_is_atom(&p.args[p.i], "CHARSET")) {
		const char *cs = imap_arg_astring(s->arena, &p.args[p.i + 1]);
		if (cs == NULL || (strcasecmp(cs, "UTF-8") != 0 && strcasecmp(cs, "US-ASCII") != 0)) {
			sess_tagged(s, "NO", "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
			return;
		}
		p.i += 2;
	}
	if (p.i >= p.n) {
		sess_tagged(s, "BAD", "SEARCH needs a key");
		return;
	}
	struct key *root = parse_and(&p, p.args + p.i, p.n - p.i);
	if (root == NULL) {
		sess_tagged(s, "BAD", "Invalid search key");
		return;
	}
	struct view *v = &s->sel;
	uint32_t *hits = xmalloc((v->n + 1) * sizeof(uint32_t));
	size_t nhits = 0;
	uint64_t maxmodseq = 0;
	struct store_txn *txn = NULL;
	struct store_cursor *cur = NULL;
	int r = store_read_begin(s->d->store, &txn);
	if (r == 0)
		r = store_msg_cursor_open(txn, v->mbid, 1, &cur);
	if (r != 0) {
		store_read_end(&txn);
		free(hits);
		sess_store_error(s, r, "SEARCH");
		return;
	}
	struct store_msg m;
	struct fetch_cache pending = {0};
	while (store_msg_cursor_next(cur, &m) == 0) {
		uint32_t seq = sess_seq_of(s, m.uid);
		if (seq == 0)
			continue; /* not in the client's view yet */
		struct msgctx c = {.txn = txn, .m = &m, .seq = seq, .pending = &pending,
				 .flags = sess_flags(s, m.uid, m.flags)};
		if (eval(root, &c)) {
			hits[nhits++] = cmd->uid ? m.uid : seq;
			if (m.modseq > maxmodseq)
				maxmodseq = m.modseq;
		}
	}
	store_msg_cursor_close(&cur);
	store_read_end(&txn);
	fetch_cache_flush(s->d->store, &pending);
	if (esearch) {
		io_printf(&s->io, "* ESEARCH (TAG \"%s\")%s", s->tag, cmd->uid ? " UID" : "");
		if (nhits > 0) {
			if (r_min)
				io_printf(&s->io, " MIN %u", hits[0]);
			if (r_max)
				io_printf(&s->io, " MAX %u", hits[nhits - 1]);
			if (r_all)
				io_printf(&s->io, " ALL %s", sess_uidset(s, hits, nhits));
		}
		if (r_count)
			io_printf(&s->io, " COUNT %zu", nhits);
		if (p.modseq_used && nhits > 0)
			io_printf(&s->io, " MODSEQ %llu", (unsigned long long)maxmodseq);
		io_puts(&s->io, "\r\n");
	} else {
		io_puts(&s->io, "* SEARCH");
		for (size_t i = 0; i < nhits; i++)
			io_printf(&s->io, " %u", hits[i]);
		if (p.modseq_used && nhits > 0)
			io_printf(&s->io, " (MODSEQ %llu)", (unsigned long long)maxmodseq);
		io_puts(&s->io, "\r\n");
	}
	free(hits);
	sess_sync(s, cmd->uid);
	sess_tagged(s, "OK", "Search completed.");
}
