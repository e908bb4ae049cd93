/* cmd_fetch — FETCH and UID FETCH: every RFC 3501 item, BODY[section]<partial>
 * from the stored bytes in CRLF form (wire.h), ENVELOPE/BODYSTRUCTURE from the
 * store's cache by blob hash (computed once with mime.c), CHANGEDSINCE and
 * VANISHED (CONDSTORE/QRESYNC).
 *
 * As Dovecot's imap-fetch.c: the request becomes a list of items, each with
 * its own writer. The answer streams through one bounded buffer per session
 * (FETCH_CHUNK, plus at most one item's ENVELOPE/BODYSTRUCTURE text): when it
 * fills, the store's read transaction is ended, the buffer is sent, and a new
 * transaction is begun — inside a message's literal too, so a session's memory
 * does not grow with the size of a message or of the answer, and a slow client
 * never holds a transaction (see io.h). If the last copy of a message's bytes
 * is expunged in the middle of its literal, the literal cannot be finished:
 * the session ends with BYE, as Dovecot's does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imapd/fetch.h"
#include "imapd/mime.h"
#include "imapd/session.h"
#include "imapd/wire.h"
#include "lib/util.h"
#include "lib/xmalloc.h"

#define FETCH_CHUNK (256 * 1024)  /* the answer is sent when this much is built */
#define FETCH_TEXT_MAX (16 << 20) /* room above it for one item's cached text */
#define FETCH_COPY 65536	  /* bytes of a literal converted at a time */

struct fetch_ctx;
struct item;
typedef void item_write_fn(struct fetch_ctx *c, const struct item *it);

struct item {
	item_write_fn *write;
	const char *section; /* sections: inside the brackets */
	const char *reply;   /* sections: what the answer is called */
	int partial;
	uint64_t off, len;
	int peek;
};

#define BINARY_MAX ((size_t)1 << 31) /* a decoded part held in memory */

struct fetch_req {
	struct item *items;
	size_t n, cap;
	int need_blob, need_mime, set_seen;
	int has_flags, has_uid, has_modseq;
	uint64_t changedsince;
	int vanished;
};

/* One FETCH being answered. */
struct fetch_ctx {
	struct session *s;
	struct store_txn *txn; /* the current read transaction */
	struct buf out;	       /* the answer not yet sent (io.capture points here) */
	char *copy;	       /* FETCH_COPY bytes: a literal's next piece */
	struct fetch_cache pending;
	struct buf fields;  /* HEADER.FIELDS text */
	struct store_msg m; /* the message being written */
	const char *blob;   /* its bytes in the current transaction, or NULL */
	size_t blen;
	struct fetch_mime_text mt;
	int mt_ok;	 /* mt is valid in the current transaction */
	int sp;		 /* items written so far in this message */
	int failed;	 /* the answer cannot be finished: end the session */
	int unknown_cte; /* a BINARY part could not be decoded: NO [UNKNOWN-CTE] */
};

/* --- the stream ------------------------------------------------------------- */

/* Sends what is built with no transaction open, then begins a new one. */
static int fetch_yield(struct fetch_ctx *c)
{
	struct session *s = c->s;
	s->io.capture = NULL;
	store_read_end(&c->txn);
	c->blob = NULL;
	c->mt_ok = 0;
	if (c->out.len > 0)
		io_write(&s->io, c->out.data, c->out.len);
	buf_reset(&c->out);
	if (s->io.failed || store_read_begin(s->d->store, &c->txn) != 0) {
		c->failed = 1;
		return -1;
	}
	s->io.capture = &c->out;
	return 0;
}

static int need_blob(struct fetch_ctx *c)
{
	const void *d;
	if (c->blob != NULL)
		return 0;
	if (store_blob_get(c->txn, c->m.hash, &d, &c->blen) != 0)
		return -1;
	c->blob = d;
	return 0;
}

static int need_mime(struct fetch_ctx *c)
{
	if (!c->mt_ok && fetch_mime(c->txn, &c->m, &c->pending, &c->mt) == 0)
		c->mt_ok = 1;
	return c->mt_ok ? 0 : -1;
}

/* The space between two items. */
static void sp(struct fetch_ctx *c)
{
	if (c->sp++)
		io_write(&c->s->io, " ", 1);
}

/* --- one writer per item ---------------------------------------------------- */

static void write_flags(struct fetch_ctx *c, const struct item *it)
{
	(void)it;
	sp(c);
	io_puts(&c->s->io, "FLAGS ");
	sess_write_flags(c->s, sess_flags(c->s, c->m.uid, c->m.flags), c->m.keywords);
}

static void write_uid(struct fetch_ctx *c, const struct item *it)
{
	(void)it;
	sp(c);
	io_printf(&c->s->io, "UID %u", c->m.uid);
}

static void write_modseq(struct fetch_ctx *c, const struct item *it)
{
	(void)it;
	sp(c);
	io_printf(&c->s->io, "MODSEQ (%llu)", (unsigned long long)c->m.modseq);
}

static void write_internaldate(struct fetch_ctx *c, const struct item *it)
{
	time_t tt = (time_t)c->m.internaldate;
	struct tm tm;
	char out[64];
	(void)it;
	gmtime_r(&tt, &tm);
	strftime(out, sizeof(out), "%d-%b-%Y %H:%M:%S +0000", &tm);
	sp(c);
	io_printf(&c->s->io, "INTERNALDATE \"%s\"", out);
}

static void write_size(struct fetch_ctx *c, const struct item *it)
{
	uint64_t size = c->m.size;
	(void)it;
	/* the CRLF form's size; the stored one if the bytes cannot be read */
	fetch_size(c->txn, &c->m, &c->pending, &size);
	sp(c);
	io_printf(&c->s->io, "RFC822.SIZE %llu", (unsigned long long)size);
}

static void write_mime_text(struct fetch_ctx *c, const char *name, int which)
{
	sp(c);
	io_puts(&c->s->io, name);
	if (need_mime(c) < 0) {
		io_puts(&c->s->io,
			"NIL"); /* checked before the message began: only after a yield */
		return;
	}
	const char *t = which == 0 ? c->mt.env : which == 1 ? c->mt.body : c->mt.bs;
	size_t l = which == 0 ? c->mt.envlen : which == 1 ? c->mt.bodylen : c->mt.bslen;
	io_write(&c->s->io, t, l);
}

static void write_envelope(struct fetch_ctx *c, const struct item *it)
{
	(void)it;
	write_mime_text(c, "ENVELOPE ", 0);
}

static void write_body(struct fetch_ctx *c, const struct item *it)
{
	(void)it;
	write_mime_text(c, "BODY ", 1);
}

static void write_bodystructure(struct fetch_ctx *c, const struct item *it)
{
	(void)it;
	write_mime_text(c, "BODYSTRUCTURE ", 2);
}

/* BODY[section]<partial>, RFC822, RFC822.HEADER, RFC822.TEXT: a literal of
 * the CRLF form, streamed a piece at a time. */
static void write_section(struct fetch_ctx *c, const struct item *it)
{
	struct session *s = c->s;
	size_t start = 0, len = 0;
	uint64_t total;
	if (need_blob(c) < 0) {
		c->failed = 1;
		return;
	}
	buf_reset(&c->fields);
	if (mime_section(c->blob, c->blen, it->section, &start, &len, &c->fields) < 0)
		start = len = 0;
	total = start == SIZE_MAX ? c->fields.len : wire_crlf_len(c->blob, start, len);
	uint64_t off = 0, count = total;
	if (it->partial) {
		off = it->off < total ? it->off : total;
		count = total - off < it->len ? total - off : it->len;
	}
	sp(c);
	io_printf(&s->io, "%s {%llu}\r\n", it->reply, (unsigned long long)count);
	if (start == SIZE_MAX) {
		io_write(&s->io, c->fields.data + off, (size_t)count);
		return;
	}
	struct wire_crlf r;
	wire_crlf_open(&r, c->blob, start, len, off, count);
	while (!wire_crlf_done(&r)) {
		size_t room = c->out.len < FETCH_CHUNK ? FETCH_CHUNK - c->out.len : 0;
		if (room < FETCH_COPY / 4) {
			/* the same bytes (by hash) in the next transaction */
			if (fetch_yield(c) < 0 || need_blob(c) < 0) {
				c->failed = 1;
				return;
			}
			continue;
		}
		size_t n =
		    wire_crlf_read(&r, c->blob, c->copy, room < FETCH_COPY ? room : FETCH_COPY);
		io_write(&s->io, c->copy, n);
	}
}

/* BINARY[part]<partial> and BINARY.SIZE[part] (RFC 3516): the part decoded
 * in memory (it is owned, so the stream may yield while sending it). */
static int decode_binary(struct fetch_ctx *c, const struct item *it, struct buf *out)
{
	if (need_blob(c) < 0) {
		c->failed = 1;
		return -1;
	}
	buf_init(out, BINARY_MAX);
	int r = mime_binary(c->blob, c->blen, it->section, out);
	if (r != 0) {
		buf_free(out);
		c->unknown_cte = 1;
		return -1;
	}
	return 0;
}

static void write_binary_size(struct fetch_ctx *c, const struct item *it)
{
	struct buf b;
	sp(c);
	if (decode_binary(c, it, &b) < 0) {
		io_printf(&c->s->io, "%s NIL", it->reply);
		return;
	}
	io_printf(&c->s->io, "%s %zu", it->reply, b.len);
	buf_free(&b);
}

static void write_binary(struct fetch_ctx *c, const struct item *it)
{
	struct session *s = c->s;
	struct buf b;
	sp(c);
	if (decode_binary(c, it, &b) < 0) {
		io_printf(&s->io, "%s NIL", it->reply);
		return;
	}
	size_t off = 0, count = b.len;
	if (it->partial) {
		off = it->off < b.len ? (size_t)it->off : b.len;
		count = b.len - off < it->len ? b.len - off : (size_t)it->len;
	}
	/* literal8 when the part holds a NUL (RFC 3516 4.2) */
	int nul = b.len > 0 && memchr(b.data, '\0', b.len) != NULL;
	io_printf(&s->io, "%s %s{%zu}\r\n", it->reply, nul ? "~" : "", count);
	const char *p = b.len ? b.data + off : "";
	while (count > 0 && !c->failed) {
		size_t room = c->out.len < FETCH_CHUNK ? FETCH_CHUNK - c->out.len : 0;
		if (room < FETCH_COPY / 4) {
			if (fetch_yield(c) < 0)
				break;
			continue;
		}
		size_t n = count < room ? count : room;
		io_write(&s->io, p, n);
		p += n;
		count -= n;
	}
	buf_free(&b);
}

/* --- the request ------------------------------------------------------------ */

static struct item *new_item(struct fetch_req *f, item_write_fn *w)
{
	if (f->n == f->cap)
		return NULL;
	struct item *it = &f->items[f->n++];
	memset(it, 0, sizeof(*it));
	it->write = w;
	return it;
}

/* "[section]<off.len>" after a BODY/BODY.PEEK (name "BODY"), BINARY or
 * BINARY.SIZE: fills it. 0 or -1. */
static int parse_section(struct session *s, struct item *it, const char *p, const char *name)
{
	const char *close = strchr(p, ']');
	if (close == NULL)
		return -1;
	it->section = imap_arena_strndup(s->arena, p, (size_t)(close - p));
	const char *q = close + 1;
	if (*q == '<') {
		char *end;
		q++;
		if (*q < '0' || *q > '9')
			return -1;
		it->off = strtoull(q, &end, 10);
		if (*end != '.')
			return -1;
		q = end + 1;
		if (*q < '0' || *q > '9')
			return -1;
		it->len = strtoull(q, &end, 10);
		if (*end != '>' || end[1] != '\0' || it->len == 0)
			return -1;
		it->partial = 1;
	} else if (*q != '\0') {
		return -1;
	}
	char reply[512];
	if (it->partial && strcmp(name, "BINARY.SIZE") == 0)
		return -1;
	int w = it->partial ? snprintf(reply, sizeof(reply), "%s[%s]<%llu>", name, it->section,
				       (unsigned long long)it->off)
			    : snprintf(reply, sizeof(reply), "%s[%s]", name, it->section);
	if (w < 0 || (size_t)w >= sizeof(reply))
		return -1;
	it->reply = imap_arena_strndup(s->arena, reply, (size_t)w);
	return 0;
}

/* BINARY takes part numbers only ("", "1", "2.3"). */
static int part_number(const char *sec)
{
	for (const char *p = sec; *p; p++)
		if (!((*p >= '0' && *p <= '9') ||
		      (*p == '.' && p != sec && p[1] != '\0' && p[1] != '.')))
			return 0;
	return 1;
}

static int add_item(struct session *s, struct fetch_req *f, const struct imap_arg *a)
{
	static const struct {
		const char *name;
		item_write_fn *write;
		int mime;
	} simple[] = {
	    {"FLAGS", write_flags, 0},
	    {"UID", write_uid, 0},
	    {"INTERNALDATE", write_internaldate, 0},
	    {"RFC822.SIZE", write_size, 0},
	    {"ENVELOPE", write_envelope, 1},
	    {"BODYSTRUCTURE", write_bodystructure, 1},
	    {"BODY", write_body, 1},
	    {"MODSEQ", write_modseq, 0},
	};
	static const struct {
		const char *name;
		const char *section, *reply;
		int peek;
	} rfc822[] = {
	    {"RFC822", "", "RFC822", 0},
	    {"RFC822.HEADER", "HEADER", "RFC822.HEADER", 1},
	    {"RFC822.TEXT", "TEXT", "RFC822.TEXT", 0},
	};
	if (a->type != IMAP_ARG_ATOM)
		return -1;
	const char *w = a->str;
	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
		if (strcasecmp(w, simple[i].name) != 0)
			continue;
		int *once = simple[i].write == write_flags    ? &f->has_flags
			    : simple[i].write == write_uid    ? &f->has_uid
			    : simple[i].write == write_modseq ? &f->has_modseq
							      : NULL;
		if (once != NULL && (*once)++)
			return 0; /* asked twice: answered once */
		if (simple[i].write == write_modseq)
			sess_condstore_on(s);
		f->need_mime |= simple[i].mime;
		return new_item(f, simple[i].write) ? 0 : -1;
	}
	if (strcasecmp(w, "ALL") == 0 || strcasecmp(w, "FAST") == 0 || strcasecmp(w, "FULL") == 0) {
		static item_write_fn *const macro[] = {write_flags, write_internaldate, write_size,
						       write_envelope, write_body};
		size_t k = strcasecmp(w, "FAST") == 0 ? 3 : strcasecmp(w, "ALL") == 0 ? 4 : 5;
		for (size_t i = 0; i < k; i++)
			if (new_item(f, macro[i]) == NULL)
				return -1;
		f->has_flags = 1;
		f->need_mime |= k > 3;
		return 0;
	}
	struct item *it = new_item(f, write_section);
	if (it == NULL)
		return -1;
	size_t i;
	for (i = 0; i < sizeof(rfc822) / sizeof(rfc822[0]); i++)
		if (strcasecmp(w, rfc822[i].name) == 0)
			break;
	if (i < sizeof(rfc822) / sizeof(rfc822[0])) {
		it->section = rfc822[i].section;
		it->reply = rfc822[i].reply;
		it->peek = rfc822[i].peek;
	} else if (strncasecmp(w, "BODY[", 5) == 0) {
		if (parse_section(s, it, w + 5, "BODY") < 0)
			return -1;
	} else if (strncasecmp(w, "BODY.PEEK[", 10) == 0) {
		it->peek = 1;
		if (parse_section(s, it, w + 10, "BODY") < 0)
			return -1;
	} else if (strncasecmp(w, "BINARY[", 7) == 0 || strncasecmp(w, "BINARY.PEEK[", 12) == 0) {
		it->peek = w[6] == '.';
		it->write = write_binary;
		if (parse_section(s, it, strchr(w, '[') + 1, "BINARY") < 0 ||
		    !part_number(it->section))
			return -1;
	} else if (strncasecmp(w, "BINARY.SIZE[", 12) == 0) {
		it->peek = 1;
		it->write = write_binary_size;
		if (parse_section(s, it, w + 12, "BINARY.SIZE") < 0 || !part_number(it->section))
			return -1;
	} else {
		return -1;
	}
	if (!it->peek)
		f->set_seen = 1;
	f->need_blob = 1;
	return 0;
}

/* (CHANGEDSINCE n) (VANISHED) */
static int parse_modifiers(struct session *s, struct imap_command *cmd, struct fetch_req *f)
{
	const struct imap_arg *m = &cmd->args[2];
	if (m->type != IMAP_ARG_LIST)
		return -1;
	for (size_t i = 0; i < m->len; i++) {
		if (imap_arg_is_atom(&m->list[i], "CHANGEDSINCE") && i + 1 < m->len &&
		    m->list[i + 1].type == IMAP_ARG_ATOM &&
		    mk_parse_u64(m->list[i + 1].str, 0, UINT64_MAX >> 1, &f->changedsince) == 0) {
			i++;
			sess_condstore_on(s);
		} else if (imap_arg_is_atom(&m->list[i], "VANISHED") && cmd->uid && s->qresync) {
			f->vanished = 1;
		} else {
			return -1;
		}
	}
	return f->vanished && f->changedsince == 0 ? -1 : 0;
}

static int parse_request(struct session *s, struct imap_command *cmd, struct fetch_req *f)
{
	if (cmd->nargs < 2 || cmd->nargs > 3 || cmd->args[0].type != IMAP_ARG_ATOM)
		return -1;
	f->cap = 64;
	f->items = imap_arena_alloc(s->arena, f->cap * sizeof(*f->items));
	const struct imap_arg *ia = &cmd->args[1];
	if (ia->type == IMAP_ARG_LIST) {
		for (size_t i = 0; i < ia->len; i++)
			if (add_item(s, f, &ia->list[i]) < 0)
				return -1;
	} else if (add_item(s, f, ia) < 0) {
		return -1;
	}
	return cmd->nargs == 3 ? parse_modifiers(s, cmd, f) : 0;
}

/* --- \Seen, VANISHED -------------------------------------------------------------- */

static int seen_fn(struct store_txn *txn, void *ctx)
{
	struct fetch_seen *fs = ctx;
	for (size_t i = 0; i < fs->n; i++) {
		int r = store_msg_set_flags(txn, fs->mbid, fs->uids[i], STORE_FLAGS_ADD,
					    STORE_F_SEEN, NULL, 0, NULL);
		if (r != 0 && r != STORE_ENOTFOUND)
			return r;
	}
	return 0;
}

/* \Seen first, so that the answers show it. */
static int set_seen(struct session *s, const uint32_t *seqs, size_t nseqs)
{
	struct view *v = &s->sel;
	struct fetch_seen fs = {.mbid = v->mbid,
				.uids = imap_arena_alloc(s->arena, nseqs * sizeof(uint32_t))};
	struct store_txn *txn = NULL;
	if (store_read_begin(s->d->store, &txn) == 0) {
		for (size_t i = 0; i < nseqs; i++) {
			struct store_msg m;
			if (store_msg_get(txn, v->mbid, v->uids[seqs[i] - 1], &m) == 0 &&
			    !(m.flags & STORE_F_SEEN))
				fs.uids[fs.n++] = m.uid;
		}
		store_read_end(&txn);
	}
	return fs.n > 0 ? store_write_relaxed(s->d->store, seen_fn, &fs) : 0;
}

struct vanish {
	struct imap_seqset *set;
	uint32_t *uids;
	size_t n, cap;
};

static int vanish_cb(uint32_t uid, uint64_t modseq, void *ctx)
{
	struct vanish *v = ctx;
	(void)modseq;
	if (!imap_seqset_contains(v->set, uid))
		return 0;
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 64;
		v->uids = xreallocarray(v->uids, v->cap, sizeof(uint32_t));
	}
	v->uids[v->n++] = uid;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void write_vanished(struct fetch_ctx *c, const char *set_text, uint64_t since)
{
	struct session *s = c->s;
	struct imap_seqset set;
	struct vanish vv = {.set = &set};
	if (imap_seqset_parse(s->arena, set_text, s->sel.uidnext > 1 ? s->sel.uidnext - 1 : 1,
			      &set) == 0)
		store_expunged_since(c->txn, s->sel.mbid, since, vanish_cb, &vv);
	if (vv.n > 0) {
		qsort(vv.uids, vv.n, sizeof(uint32_t), cmp_u32);
		io_printf(&s->io, "* VANISHED (EARLIER) %s\r\n", sess_uidset(s, vv.uids, vv.n));
	}
	free(vv.uids);
}

/* --- the command ------------------------------------------------------------------ */

/* "* n FETCH (...)" for one message; skips it (writing nothing) if it is
 * gone or its bytes cannot be read. */
static void write_message(struct fetch_ctx *c, const struct fetch_req *f, uint32_t seq, int uid_cmd)
{
	struct session *s = c->s;
	if (store_msg_get(c->txn, s->sel.mbid, s->sel.uids[seq - 1], &c->m) != 0)
		return; /* expunged by someone else; the EXPUNGE comes later */
	if (f->changedsince && c->m.modseq <= f->changedsince)
		return;
	c->blob = NULL;
	c->mt_ok = 0;
	if ((f->need_blob && need_blob(c) < 0) || (f->need_mime && need_mime(c) < 0))
		return;
	int implicit_flags = f->set_seen && !s->sel.readonly && !f->has_flags;
	if (f->has_flags || implicit_flags)
		sess_keywords_seen(s, c->m.keywords);
	io_printf(&s->io, "* %u FETCH (", seq);
	c->sp = 0;
	for (size_t k = 0; k < f->n && !c->failed; k++)
		f->items[k].write(c, &f->items[k]);
	if (c->failed)
		return;
	if ((uid_cmd || s->qresync) && !f->has_uid)
		write_uid(c, NULL);
	if (implicit_flags)
		write_flags(c, NULL);
	if (f->changedsince && !f->has_modseq)
		write_modseq(c, NULL);
	io_puts(&s->io, ")\r\n");
}

/* The untagged FETCH answers for seqs. Returns 0, 1 if a BINARY part could
 * not be decoded, -1 if the session must end (it said BYE), -2 if the store
 * could not be read (it answered NO). */
static int fetch_answer(struct session *s, const struct fetch_req *f, const uint32_t *seqs,
			size_t nseqs, int uid_cmd, const char *set_text)
{
	struct fetch_ctx c = {.s = s};
	int r = store_read_begin(s->d->store, &c.txn);
	if (r != 0) {
		sess_store_error(s, r, "FETCH");
		return -2;
	}
	buf_init(&c.out, FETCH_CHUNK + FETCH_TEXT_MAX);
	buf_init(&c.fields, 1 << 20);
	if (f->need_blob)
		c.copy = xmalloc(FETCH_COPY);
	s->io.capture = &c.out; /* sent outside the transaction (see io.h) */
	if (f->vanished)
		write_vanished(&c, set_text, f->changedsince);
	for (size_t i = 0; i < nseqs && !c.failed && !s->io.failed; i++) {
		if (c.out.len >= FETCH_CHUNK && fetch_yield(&c) < 0)
			break;
		write_message(&c, f, seqs[i], uid_cmd);
	}
	s->io.capture = NULL;
	store_read_end(&c.txn);
	if (c.out.len > 0)
		io_write(&s->io, c.out.data, c.out.len);
	buf_free(&c.out);
	buf_free(&c.fields);
	free(c.copy);
	fetch_cache_flush(s->d->store, &c.pending);
	if (c.failed) {
		/* in the middle of a literal: the client cannot be kept in step */
		sess_untagged(s, "BYE A message was expunged while it was being fetched");
		s->state = S_LOGOUT;
		return -1;
	}
	return c.unknown_cte;
}

int fetch_atts_check(struct session *s, const struct imap_arg *atts)
{
	struct imap_arg set = {.type = IMAP_ARG_ATOM, .str = "1", .len = 1};
	struct imap_arg args[2] = {set, *atts};
	struct imap_command cmd = {.args = args, .nargs = 2, .uid = 1};
	struct fetch_req f = {0};
	return parse_request(s, &cmd, &f);
}

void fetch_new_messages(struct session *s, const struct imap_arg *atts, const uint32_t *uids,
			size_t n)
{
	const char *set = sess_uidset(s, uids, n);
	struct imap_arg args[2] = {{.type = IMAP_ARG_ATOM, .str = set, .len = strlen(set)}, *atts};
	struct imap_command cmd = {.args = args, .nargs = 2, .uid = 1};
	struct fetch_req f = {0};
	uint32_t *seqs;
	size_t nseqs;
	if (n == 0 || parse_request(s, &cmd, &f) < 0 || f.set_seen ||
	    sess_resolve(s, set, 1, &seqs, &nseqs) < 0)
		return;
	fetch_answer(s, &f, seqs, nseqs, 1, set);
}

void cmd_fetch(struct session *s, struct imap_command *cmd)
{
	struct fetch_req f = {0};
	uint32_t *seqs;
	size_t nseqs;
	if (parse_request(s, cmd, &f) < 0) {
		sess_tagged(s, "BAD", "Invalid FETCH arguments");
		return;
	}
	if (sess_resolve(s, cmd->args[0].str, cmd->uid, &seqs, &nseqs) < 0) {
		sess_tagged(s, "BAD", "Invalid sequence set");
		return;
	}
	if (f.set_seen && !s->sel.readonly && nseqs > 0) {
		int r = set_seen(s, seqs, nseqs);
		if (r != 0) {
			sess_store_error(s, r, "FETCH");
			return;
		}
	}
	int r = fetch_answer(s, &f, seqs, nseqs, cmd->uid, cmd->args[0].str);
	if (r < 0)
		return;
	sess_sync(s, cmd->uid);
	if (r > 0)
		sess_tagged(s, "NO",
			    "[UNKNOWN-CTE] A part's Content-Transfer-Encoding cannot be decoded");
	else
		sess_tagged(s, "OK", "Fetch completed.");
}
