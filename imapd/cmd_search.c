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
#include "imapd/search.h"
#include "imapd/mime.h"
#include "imapd/session.h"
#include "lib/util.h"
#include "lib/xmalloc.h"

enum key_kind {
	K_ALL,
	K_AND,
	K_OR,
	K_NOT,
	K_FLAG,
	K_UNFLAG,
	K_KEYWORD,
	K_UNKEYWORD,
	K_NEW,
	K_OLD,
	K_RECENT,
	K_LARGER,
	K_SMALLER,
	K_BEFORE,
	K_ON,
	K_SINCE,
	K_SENTBEFORE,
	K_SENTON,
	K_SENTSINCE,
	K_HEADER,
	K_BODY,
	K_TEXT,
	K_SEQ,
	K_UID,
	K_MODSEQ,
};

struct key {
	enum key_kind kind;
	uint32_t flag;
	uint64_t num;
	const char *str;   /* keyword, header value */
	const char *field; /* K_HEADER: the field name */
	struct imap_seqset set;
	struct key *a, *b; /* NOT/OR operands; AND: children in list */
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

static const char *months[] = {"jan", "feb", "mar", "apr", "may", "jun",
			       "jul", "aug", "sep", "oct", "nov", "dec"};

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
	    {"ANSWERED", K_FLAG, STORE_F_ANSWERED},   {"DELETED", K_FLAG, STORE_F_DELETED},
	    {"DRAFT", K_FLAG, STORE_F_DRAFT},	      {"FLAGGED", K_FLAG, STORE_F_FLAGGED},
	    {"SEEN", K_FLAG, STORE_F_SEEN},	      {"UNANSWERED", K_UNFLAG, STORE_F_ANSWERED},
	    {"UNDELETED", K_UNFLAG, STORE_F_DELETED}, {"UNDRAFT", K_UNFLAG, STORE_F_DRAFT},
	    {"UNFLAGGED", K_UNFLAG, STORE_F_FLAGGED}, {"UNSEEN", K_UNFLAG, STORE_F_SEEN},
	};
	static const struct {
		const char *name, *field;
	} hdrkeys[] = {
	    {"FROM", "From"}, {"TO", "To"}, {"CC", "Cc"}, {"BCC", "Bcc"}, {"SUBJECT", "Subject"}};
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
	} datekeys[] = {{"BEFORE", K_BEFORE}, {"ON", K_ON},
			{"SINCE", K_SINCE},   {"SENTBEFORE", K_SENTBEFORE},
			{"SENTON", K_SENTON}, {"SENTSINCE", K_SENTSINCE}};
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
		return v && sess_seqset(p->s, v, 1, &k->set) == 0 ? k : NULL;
	}
	if (strcasecmp(w, "MODSEQ") == 0) {
		struct key *k = new_key(p, K_MODSEQ);
		/* MODSEQ [entry-name entry-type-req] mod-sequence-valzer */
		if (p->i + 2 < p->n && p->args[p->i].type == IMAP_ARG_QUOTED)
			p->i += 2;
		const char *v = next_string(p);
		p->modseq_used = 1;
		sess_condstore_on(p->s);
		return v && mk_parse_u64(v, 0, UINT64_MAX >> 1, &k->num) == 0 ? k : NULL;
	}
	/* a sequence set */
	struct key *k = new_key(p, K_SEQ);
	if (sess_seqset(p->s, w, 0, &k->set) < 0)
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
				return sl > 0;
			return contains_ci(seg, sl, value);
		}
	}
	if (!load(c))
		return 0;
	/* every field of that name (RFC 3501 6.4.4: "contains the string") */
	size_t pos = 0;
	while (mime_header_next(c->data, c->hlen, &pos, field, v, sizeof(v))) {
		if (value[0] == '\0' || contains_ci(v, strlen(v), value))
			return 1;
		/* also match the decoded text of RFC 2047 encoded words */
		size_t idx = 0;
		char *dec = NULL;
		int found = 0;
		if (strstr(v, "=?") != NULL &&
		    mailmime_encoded_phrase_parse("utf-8", v, strlen(v), &idx, "utf-8", &dec) ==
			MAILIMF_NO_ERROR &&
		    dec) {
			found = contains_ci(dec, strlen(dec), value);
			free(dec);
		}
		if (found)
			return 1;
	}
	return 0;
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

/* RFC822.SIZE: the CRLF form's (fetch_size). */
static uint64_t msg_size(struct msgctx *c)
{
	uint64_t size = c->m->size;
	fetch_size(c->txn, c->m, c->pending, &size);
	return size;
}

static int eval(const struct key *k, struct msgctx *c)
{
	const struct store_msg *m = c->m;
	int64_t iday =
	    m->internaldate >= 0 ? m->internaldate / 86400 : (m->internaldate - 86399) / 86400;
	int64_t day;
	switch (k->kind) {
	case K_ALL:
		return 1;
	case K_AND:
		for (size_t i = 0; i < k->n; i++)
			if (!eval(k->list[i], c))
				return 0;
		return 1;
	case K_OR:
		return eval(k->a, c) || eval(k->b, c);
	case K_NOT:
		return !eval(k->a, c);
	case K_FLAG:
		return (m->flags & k->flag) != 0;
	case K_UNFLAG:
		return (m->flags & k->flag) == 0;
	case K_KEYWORD:
		return has_keyword(m->keywords, k->str);
	case K_UNKEYWORD:
		return !has_keyword(m->keywords, k->str);
	case K_NEW:
		return (c->flags & STORE_F_RECENT) && !(m->flags & STORE_F_SEEN);
	case K_OLD:
		return !(c->flags & STORE_F_RECENT);
	case K_RECENT:
		return (c->flags & STORE_F_RECENT) != 0;
	case K_LARGER:
		return msg_size(c) > k->num;
	case K_SMALLER:
		return msg_size(c) < k->num;
	case K_BEFORE:
		return iday < (int64_t)k->num;
	case K_ON:
		return iday == (int64_t)k->num;
	case K_SINCE:
		return iday >= (int64_t)k->num;
	case K_SENTBEFORE:
		return sent_day(c, &day) && day < (int64_t)k->num;
	case K_SENTON:
		return sent_day(c, &day) && day == (int64_t)k->num;
	case K_SENTSINCE:
		return sent_day(c, &day) && day >= (int64_t)k->num;
	case K_HEADER:
		return header_match(c, k->field, k->str);
	case K_BODY:
		return load(c) && contains_ci(c->data + c->hlen, c->len - c->hlen, k->str);
	case K_TEXT:
		return load(c) && contains_ci(c->data, c->len, k->str);
	case K_SEQ:
		return imap_seqset_contains(&k->set, c->seq);
	case K_UID:
		return imap_seqset_contains(&k->set, m->uid);
	case K_MODSEQ:
		return m->modseq >= k->num;
	}
	return 0;
}

int search_run(struct session *s, const struct imap_arg *args, size_t n, const char *what,
	       struct search_hit **hits_r, size_t *n_r, int *modseq_used_r, search_visit_fn *visit,
	       void *ctx)
{
	struct sparser p = {.s = s, .args = args, .n = n};
	if (p.n >= 2 && imap_arg_is_atom(&p.args[0], "CHARSET")) {
		const char *cs = imap_arg_astring(s->arena, &p.args[1]);
		if (cs == NULL ||
		    (strcasecmp(cs, "UTF-8") != 0 && strcasecmp(cs, "US-ASCII") != 0)) {
			sess_tagged(s, "NO", "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
			return -1;
		}
		p.i = 2;
	}
	if (p.i >= p.n) {
		sess_tagged(s, "BAD", "%s needs a key", what);
		return -1;
	}
	struct key *root = parse_and(&p, p.args + p.i, p.n - p.i);
	if (root == NULL) {
		sess_tagged(s, "BAD", "Invalid search key");
		return -1;
	}
	struct view *v = &s->sel;
	struct search_hit *hits = xcalloc(v->n + 1, sizeof(*hits));
	size_t nhits = 0;
	struct store_txn *txn = NULL;
	struct store_cursor *cur = NULL;
	int r = store_read_begin(s->d->store, &txn);
	if (r == 0)
		r = store_msg_cursor_open(txn, v->mbid, 1, &cur);
	if (r != 0) {
		store_read_end(&txn);
		free(hits);
		return r;
	}
	struct store_msg m;
	struct fetch_cache pending = {0};
	while (store_msg_cursor_next(cur, &m) == 0) {
		uint32_t seq = sess_seq_of(s, m.uid);
		if (seq == 0)
			continue; /* not in the client's view yet */
		struct msgctx c = {.txn = txn,
				   .m = &m,
				   .seq = seq,
				   .pending = &pending,
				   .flags = sess_flags(s, m.uid, m.flags)};
		if (eval(root, &c)) {
			struct search_hit *h = &hits[nhits++];
			h->seq = seq;
			h->uid = m.uid;
			h->modseq = m.modseq;
			if (visit != NULL)
				visit(txn, &m, &pending, h, ctx);
		}
	}
	store_msg_cursor_close(&cur);
	store_read_end(&txn);
	fetch_cache_flush(s->d->store, &pending);
	*hits_r = hits;
	*n_r = nhits;
	if (modseq_used_r != NULL)
		*modseq_used_r = p.modseq_used;
	return 0;
}

int search_parse_return(struct session *s, const struct imap_arg *l, int sort,
			struct search_return *r)
{
	(void)sort; /* the same options for SEARCH and SORT */
	memset(r, 0, sizeof(*r));
	r->esearch = 1;
	for (size_t i = 0; i < l->len; i++) {
		if (imap_arg_is_atom(&l->list[i], "MIN"))
			r->min = 1;
		else if (imap_arg_is_atom(&l->list[i], "MAX"))
			r->max = 1;
		else if (imap_arg_is_atom(&l->list[i], "COUNT"))
			r->count = 1;
		else if (imap_arg_is_atom(&l->list[i], "ALL"))
			r->all = 1;
		else if (imap_arg_is_atom(&l->list[i], "UPDATE"))
			r->update = 1;
		else if (imap_arg_is_atom(&l->list[i], "SAVE"))
			r->save = 1;
		else if (imap_arg_is_atom(&l->list[i], "PARTIAL") && i + 1 < l->len &&
			 l->list[i + 1].type == IMAP_ARG_ATOM) {
			/* RFC 5267 4.4: lo:hi, both numbers (no '*') */
			const char *v = l->list[++i].str;
			char *end;
			if (*v < '1' || *v > '9')
				goto bad;
			unsigned long long lo = strtoull(v, &end, 10);
			if (*end != ':' || end[1] < '1' || end[1] > '9')
				goto bad;
			unsigned long long hi = strtoull(end + 1, &end, 10);
			if (*end != '\0' || lo > UINT32_MAX || hi > UINT32_MAX)
				goto bad;
			r->partial = 1;
			r->plo = (uint32_t)(lo < hi ? lo : hi);
			r->phi = (uint32_t)(lo < hi ? hi : lo);
		} else
			goto bad;
	}
	/* RETURN () means ALL; RETURN (UPDATE) alone returns nothing now.
	 * UPDATE with MIN or MAX is an error (RFC 5267 4.3). */
	if (r->update && (r->min || r->max))
		goto bad;
	if (!r->min && !r->max && !r->count && !r->partial && !r->update && !r->save)
		r->all = 1;
	return 0;
bad:
	sess_tagged(s, "BAD", "Unknown or malformed RETURN option");
	return -1;
}

void search_write_esearch(struct session *s, const struct search_return *r,
			  const struct search_hit *hits, size_t n, int uid, int modseq_used,
			  int sorted)
{
	/* RETURN (SAVE) alone: no answer (RFC 5182 2.1) */
	if (r->save && !r->min && !r->max && !r->count && !r->all && !r->partial && !r->update)
		return;
	uint32_t *v = imap_arena_alloc(s->arena, (n + 1) * sizeof(uint32_t));
	uint64_t maxmodseq = 0;
	for (size_t i = 0; i < n; i++) {
		v[i] = uid ? hits[i].uid : hits[i].seq;
		if (hits[i].modseq > maxmodseq)
			maxmodseq = hits[i].modseq;
	}
	io_printf(&s->io, "* ESEARCH (TAG \"%s\")%s", s->tag, uid ? " UID" : "");
	/* MIN/MAX: of the numbers (SEARCH), or first/last in sort order (ESORT) */
	size_t imin = 0, imax = n ? n - 1 : 0;
	if (!sorted)
		for (size_t i = 0; i < n; i++) {
			if (v[i] < v[imin])
				imin = i;
			if (v[i] > v[imax])
				imax = i;
		}
	if (n > 0) {
		if (r->min)
			io_printf(&s->io, " MIN %u", v[imin]);
		if (r->max)
			io_printf(&s->io, " MAX %u", v[imax]);
		if (r->all)
			io_printf(&s->io, " ALL %s", sess_uidset(s, v, n));
	}
	if (r->count)
		io_printf(&s->io, " COUNT %zu", n);
	if (r->partial) {
		size_t lo = r->plo - 1, hi = r->phi < n ? r->phi : n;
		if (lo >= hi)
			io_printf(&s->io, " PARTIAL (%u:%u NIL)", r->plo, r->phi);
		else
			io_printf(&s->io, " PARTIAL (%u:%u %s)", r->plo, r->phi,
				  sess_uidset(s, v + lo, hi - lo));
	}
	if (modseq_used && n > 0) {
		/* RFC 4731 3.2: with only MIN and/or MAX, the highest modseq of the
		 * messages returned */
		uint64_t ms = maxmodseq;
		if (!r->all && !r->count && !r->partial) {
			ms = 0;
			if (r->min)
				ms = hits[imin].modseq;
			if (r->max && hits[imax].modseq > ms)
				ms = hits[imax].modseq;
		}
		io_printf(&s->io, " MODSEQ %llu", (unsigned long long)ms);
	}
	io_puts(&s->io, "\r\n");
}

/* --- CONTEXT=SEARCH: results kept current (RFC 5267 4) ---------------------- */

#define UPDATES_MAX 8 /* kept searches per session */

static int cmp_uid(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

struct search_update {
	char tag[72];
	int uid;
	int sorted;	      /* SORT RETURN (UPDATE ...): positions matter */
	char *cmd;	      /* the command's bytes, parsed again each time */
	size_t cmdlen, first; /* first: the argument after RETURN (...) */
	uint32_t *uids;	      /* the result as the client knows it (ascending, or in sort order) */
	size_t n;
	uint64_t hms; /* the view's HIGHESTMODSEQ / size / UIDNEXT it was computed at */
	size_t vn;
	uint32_t uidnext;
};

static void update_free(struct search_update *u)
{
	free(u->cmd);
	free(u->uids);
	memset(u, 0, sizeof(*u));
}

void search_updates_drop(struct session *s)
{
	for (size_t i = 0; i < s->nupdates; i++)
		update_free(&s->updates[i]);
	free(s->updates);
	s->updates = NULL;
	s->nupdates = 0;
}

static void update_mark(struct session *s, struct search_update *u)
{
	u->hms = s->sel.hms;
	u->vn = s->sel.n;
	u->uidnext = s->sel.uidnext;
}

int search_update_keep(struct session *s, struct imap_command *cmd, size_t first,
		       const struct search_hit *hits, size_t n, int sorted)
{
	if (s->nupdates == UPDATES_MAX) {
		sess_tagged(s, "NO", "[NOUPDATE \"%s\"] Too many searches kept up to date", s->tag);
		return -1;
	}
	struct search_update *v = xreallocarray(s->updates, s->nupdates + 1, sizeof(*v));
	s->updates = v;
	struct search_update *u = &v[s->nupdates++];
	memset(u, 0, sizeof(*u));
	mk_strlcpy(u->tag, s->tag, sizeof(u->tag));
	u->uid = cmd->uid;
	u->sorted = sorted;
	u->cmdlen = sess_current_cmdlen();
	u->first = first;
	u->cmd = xmalloc(u->cmdlen);
	u->uids = xmalloc((n + 1) * sizeof(uint32_t));
	memcpy(u->cmd, s->in.data, u->cmdlen);
	for (size_t k = 0; k < n; k++)
		u->uids[k] = hits[k].uid;
	u->n = n;
	update_mark(s, u);
	return 0;
}

static uint32_t update_number(struct session *s, const struct search_update *u, uint32_t uid)
{
	return u->uid ? uid : sess_seq_of(s, uid);
}

/* "* ESEARCH (TAG t) [UID] ADDTO|REMOVEFROM (0 set)": an unsorted result */
static void update_say(struct session *s, const struct search_update *u, const char *what,
		       const uint32_t *uids, size_t n)
{
	if (n == 0)
		return;
	uint32_t *v = imap_arena_alloc(s->arena, n * sizeof(uint32_t));
	for (size_t k = 0; k < n; k++)
		v[k] = update_number(s, u, uids[k]);
	io_printf(&s->io, "* ESEARCH (TAG \"%s\")%s %s (0 %s)\r\n", u->tag, u->uid ? " UID" : "",
		  what, sess_uidset(s, v, n));
}

static int in_sorted(const uint32_t *v, size_t n, uint32_t x)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && v[lo] == x;
}

static uint32_t *sorted_copy(struct session *s, const uint32_t *v, size_t n)
{
	uint32_t *c = imap_arena_alloc(s->arena, (n + 1) * sizeof(uint32_t));
	if (n > 0)
		memcpy(c, v, n * sizeof(uint32_t));
	qsort(c, n, sizeof(uint32_t), cmp_uid);
	return c;
}

/* A sorted result (RFC 5267 4.4): the removed ones leave by position, one
 * after the other ("REMOVEFROM (pos n pos n ...)", each position counted
 * after the ones before are gone); keep[] holds the UIDs that stay
 * (ascending). Then u->uids is what remains, in order. */
static void sorted_remove(struct session *s, struct search_update *u, const uint32_t *keep,
			  size_t nkeep)
{
	size_t o = 0, said = 0;
	for (size_t i = 0; i < u->n; i++) {
		if (in_sorted(keep, nkeep, u->uids[i])) {
			u->uids[o++] = u->uids[i];
			continue;
		}
		if (said++ == 0)
			io_printf(&s->io, "* ESEARCH (TAG \"%s\")%s REMOVEFROM (", u->tag,
				  u->uid ? " UID" : "");
		io_printf(&s->io, "%s%zu %u", said > 1 ? " " : "", o + 1,
			  update_number(s, u, u->uids[i]));
	}
	if (said)
		io_puts(&s->io, ")\r\n");
	u->n = o;
}

void search_updates_expunged(struct session *s, const uint32_t *uids, size_t n)
{
	for (size_t i = 0; i < s->nupdates; i++) {
		struct search_update *u = &s->updates[i];
		if (u->sorted) {
			/* keep = the result minus the expunged (uids is ascending) */
			uint32_t *res = sorted_copy(s, u->uids, u->n),
				 *keep = imap_arena_alloc(s->arena, (u->n + 1) * sizeof(uint32_t));
			size_t nk = 0;
			for (size_t r = 0; r < u->n; r++)
				if (!in_sorted(uids, n, res[r]))
					keep[nk++] = res[r];
			sorted_remove(s, u, keep, nk);
			continue;
		}
		uint32_t *gone = imap_arena_alloc(s->arena, (n + 1) * sizeof(uint32_t));
		size_t ng = 0, k = 0, j = 0;
		for (size_t r = 0; r < u->n; r++) {
			while (j < n && uids[j] < u->uids[r])
				j++;
			if (j < n && uids[j] == u->uids[r])
				gone[ng++] = u->uids[r];
			else
				u->uids[k++] = u->uids[r];
		}
		u->n = k;
		update_say(s, u, "REMOVEFROM", gone, ng);
	}
}

/* The new sorted result against the kept one: removals, then additions by
 * their positions in the new order ("ADDTO (pos n pos n ...)", ascending,
 * so that inserting one after the other gives the new order; a message's
 * sort keys never change, so those that stay keep their order). */
static void sorted_diff(struct session *s, struct search_update *u, const struct search_hit *hits,
			size_t n)
{
	uint32_t *now = imap_arena_alloc(s->arena, (n + 1) * sizeof(uint32_t));
	for (size_t k = 0; k < n; k++)
		now[k] = hits[k].uid;
	uint32_t *now_sorted = sorted_copy(s, now, n);
	sorted_remove(s, u, now_sorted, n);
	uint32_t *old_sorted = sorted_copy(s, u->uids, u->n);
	size_t said = 0;
	for (size_t k = 0; k < n; k++) {
		if (in_sorted(old_sorted, u->n, now[k]))
			continue;
		if (said++ == 0)
			io_printf(&s->io, "* ESEARCH (TAG \"%s\")%s ADDTO (", u->tag,
				  u->uid ? " UID" : "");
		io_printf(&s->io, "%s%zu %u", said > 1 ? " " : "", k + 1,
			  update_number(s, u, now[k]));
	}
	if (said)
		io_puts(&s->io, ")\r\n");
	u->uids = xreallocarray(u->uids, n + 1, sizeof(uint32_t));
	memcpy(u->uids, now, n * sizeof(uint32_t));
	u->n = n;
}

static void unsorted_diff(struct session *s, struct search_update *u, const struct search_hit *hits,
			  size_t n)
{
	/* both ascending */
	uint32_t *added = imap_arena_alloc(s->arena, (n + 1) * sizeof(uint32_t));
	uint32_t *removed = imap_arena_alloc(s->arena, (u->n + 1) * sizeof(uint32_t));
	size_t na = 0, nr = 0, a = 0, b = 0;
	while (a < n || b < u->n) {
		if (b == u->n || (a < n && hits[a].uid < u->uids[b]))
			added[na++] = hits[a++].uid;
		else if (a == n || u->uids[b] < hits[a].uid)
			removed[nr++] = u->uids[b++];
		else
			a++, b++;
	}
	update_say(s, u, "REMOVEFROM", removed, nr);
	update_say(s, u, "ADDTO", added, na);
	u->uids = xreallocarray(u->uids, n + 1, sizeof(uint32_t));
	for (size_t k = 0; k < n; k++)
		u->uids[k] = hits[k].uid;
	u->n = n;
}

void search_updates_run(struct session *s)
{
	for (size_t i = 0; i < s->nupdates; i++) {
		struct search_update *u = &s->updates[i];
		if (u->hms == s->sel.hms && u->vn == s->sel.n && u->uidnext == s->sel.uidnext)
			continue;
		struct imap_command cmd;
		const char *err;
		struct search_hit *hits;
		size_t n;
		if (imap_parse_command(s->arena, u->cmd, u->cmdlen, &cmd, &err) < 0 ||
		    cmd.nargs < u->first)
			continue;
		const struct imap_arg *args = cmd.args + u->first;
		size_t nargs = cmd.nargs - u->first;
		if (u->sorted) {
			if (sort_run(s, args, nargs, &hits, &n, NULL) != 0)
				continue;
			sorted_diff(s, u, hits, n);
			sort_hits_free(hits, n);
		} else {
			if (search_run(s, args, nargs, "SEARCH", &hits, &n, NULL, NULL, NULL) != 0)
				continue;
			unsorted_diff(s, u, hits, n);
			free(hits);
		}
		update_mark(s, u);
	}
}

void cmd_cancelupdate(struct session *s, struct imap_command *cmd)
{
	if (cmd->nargs == 0) {
		sess_tagged(s, "BAD", "CANCELUPDATE needs the tags of searches");
		return;
	}
	for (size_t a = 0; a < cmd->nargs; a++) {
		const char *tag = imap_arg_string(s->arena, &cmd->args[a]);
		size_t i;
		for (i = 0; tag != NULL && i < s->nupdates; i++)
			if (strcmp(s->updates[i].tag, tag) == 0)
				break;
		if (tag == NULL || i == s->nupdates) {
			sess_tagged(s, "BAD", "No search kept up to date has that tag");
			return;
		}
		update_free(&s->updates[i]);
		s->updates[i] = s->updates[--s->nupdates];
	}
	sess_tagged(s, "OK", "Updates cancelled.");
}

void search_save(struct session *s, const struct search_return *r, const struct search_hit *hits,
		 size_t n, int sorted)
{
	free(s->saved);
	s->saved = xmalloc((n + 1) * sizeof(uint32_t));
	s->nsaved = 0;
	if (n == 0)
		return;
	if ((r->min || r->max) && !r->all && !r->count && !r->partial) {
		size_t imin = 0, imax = n - 1;
		if (!sorted)
			for (size_t i = 0; i < n; i++) {
				if (hits[i].seq < hits[imin].seq)
					imin = i;
				if (hits[i].seq > hits[imax].seq)
					imax = i;
			}
		if (r->min)
			s->saved[s->nsaved++] = hits[imin].uid;
		if (r->max && (!r->min || imax != imin))
			s->saved[s->nsaved++] = hits[imax].uid;
	} else {
		for (size_t i = 0; i < n; i++)
			s->saved[s->nsaved++] = hits[i].uid;
	}
	qsort(s->saved, s->nsaved, sizeof(uint32_t), cmp_uid);
}

void search_write_result(struct session *s, const char *name, const struct search_return *r,
			 const struct search_hit *hits, size_t n, int uid, int modseq_used,
			 int sorted)
{
	if (r->esearch) {
		search_write_esearch(s, r, hits, n, uid, modseq_used, sorted);
		return;
	}
	uint64_t maxmodseq = 0;
	io_printf(&s->io, "* %s", name);
	for (size_t k = 0; k < n; k++) {
		io_printf(&s->io, " %u", uid ? hits[k].uid : hits[k].seq);
		if (hits[k].modseq > maxmodseq)
			maxmodseq = hits[k].modseq;
	}
	if (modseq_used && n > 0)
		io_printf(&s->io, " (MODSEQ %llu)", (unsigned long long)maxmodseq);
	io_puts(&s->io, "\r\n");
}

void cmd_search(struct session *s, struct imap_command *cmd)
{
	struct search_return ret = {0};
	size_t i = 0;
	if (cmd->nargs >= 2 && imap_arg_is_atom(&cmd->args[0], "RETURN") &&
	    cmd->args[1].type == IMAP_ARG_LIST) {
		if (search_parse_return(s, &cmd->args[1], 0, &ret) < 0)
			return;
		i = 2;
	}
	struct search_hit *hits;
	size_t n;
	int modseq_used;
	int r = search_run(s, cmd->args + i, cmd->nargs - i, "SEARCH", &hits, &n, &modseq_used,
			   NULL, NULL);
	if (r != 0 && ret.save) { /* a failed SEARCH leaves "$" empty */
		free(s->saved);
		s->saved = NULL;
		s->nsaved = 0;
	}
	if (r == -1)
		return;
	if (r != 0) {
		sess_store_error(s, r, "SEARCH");
		return;
	}
	if (!ret.esearch && s->rev2) { /* IMAP4rev2 answers SEARCH with ESEARCH (ALL) */
		ret.esearch = 1;
		ret.all = 1;
	}
	if (ret.update && search_update_keep(s, cmd, i, hits, n, 0) < 0) {
		free(hits);
		return;
	}
	if (ret.save)
		search_save(s, &ret, hits, n, 0);
	search_write_result(s, "SEARCH", &ret, hits, n, cmd->uid, modseq_used, 0);
	free(hits);
	sess_sync(s, cmd->uid);
	sess_tagged(s, "OK", "Search completed.");
}
