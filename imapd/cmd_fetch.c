/* cmd_fetch — FETCH and UID FETCH: every RFC 3501 item, BODY[section]<partial>
 * straight from the stored bytes (no copy), ENVELOPE/BODYSTRUCTURE from the
 * store's cache by blob hash (computed once with mime.c), CHANGEDSINCE and
 * VANISHED (CONDSTORE/QRESYNC). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imapd/fetch.h"
#include "imapd/mime.h"
#include "imapd/session.h"
#include "lib/util.h"

enum item_kind {
	I_FLAGS, I_UID, I_INTERNALDATE, I_SIZE, I_ENVELOPE, I_BODYSTRUCTURE, I_BODY, I_MODSEQ, I_SECTION,
};

struct item {
	enum item_kind kind;
	const char *section;    /* I_SECTION: inside the brackets */
	const char *reply;      /* I_SECTION: what the answer is called */
	int partial;
	uint64_t off, len;
	int peek;
};

struct fetch_req {
	struct item *items;
	size_t n;
	int need_blob, need_mime, set_seen;
	uint64_t changedsince;
	int vanished;
};

static int add_item(struct session *s, struct fetch_req *f, const struct imap_arg *a, size_t cap)
{
	if (a->type != IMAP_ARG_ATOM || f->n + 4 > cap)
		return -1;
	const char *w = a->str;
	struct item *it = &f->items[f->n];
	memset(it, 0, sizeof(*it));
	static const struct {
		const char *name;
		enum item_kind k;
	} simple[] = {{"FLAGS", I_FLAGS}, {"UID", I_UID}, {"INTERNALDATE", I_INTERNALDATE},
		      {"RFC822.SIZE", I_SIZE}, {"ENVELOPE", I_ENVELOPE}, {"BODYSTRUCTURE", I_BODYSTRUCTURE},
		      {"BODY", I_BODY}, {"MODSEQ", I_MODSEQ}};
	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
		if (strcasecmp(w, simple[i].name) == 0) {
			it->kind = simple[i].k;
			if (it->kind == I_ENVELOPE || it->kind == I_BODYSTRUCTURE || it->kind == I_BODY)
				f->need_mime = 1;
			if (it->kind == I_MODSEQ)
				s->condstore = 1;
			f->n++;
			return 0;
		}
	}
	if (strcasecmp(w, "ALL") == 0 || strcasecmp(w, "FAST") == 0 || strcasecmp(w, "FULL") == 0) {
		enum item_kind ks[] = {I_FLAGS, I_INTERNALDATE, I_SIZE, I_ENVELOPE, I_BODY};
		size_t k = strcasecmp(w, "FAST") == 0 ? 3 : strcasecmp(w, "ALL") == 0 ? 4 : 5;
		for (size_t i = 0; i < k; i++) {
			memset(&f->items[f->n], 0, sizeof(f->items[0]));
			f->items[f->n++].kind = ks[i];
		}
		if (k > 3)
			f->need_mime = 1;
		return 0;
	}
	it->kind = I_SECTION;
	if (strcasecmp(w, "RFC822") == 0) {
		it->section = "";
		it->reply = "RFC822";
	} else if (strcasecmp(w, "RFC822.HEADER") == 0) {
		it->section = "HEADER";
		it->reply = "RFC822.HEADER";
		it->peek = 1;
	} else if (strcasecmp(w, "RFC822.TEXT") == 0) {
		it->section = "TEXT";
		it->reply = "RFC822.TEXT";
	} else {
		const char *p;
		if (strncasecmp(w, "BODY[", 5) == 0)
			p = w + 5;
		else if (strncasecmp(w, "BODY.PEEK[", 10) == 0) {
			p = w + 10;
			it->peek = 1;
		} else
			return -1;
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
		int w2 = it->partial ? snprintf(reply, sizeof(reply), "BODY[%s]<%llu>", it->section,
						(unsigned long long)it->off)
				     : snprintf(reply, sizeof(reply), "BODY[%s]", it->section);
		if (w2 < 0 || (size_t)w2 >= sizeof(reply))
			return -1;
		it->reply = imap_arena_strndup(s->arena, reply, (size_t)w2);
	}
	if (!it->peek)
		f->set_seen = 1;
	f->need_blob = 1;
	f->n++;
	return 0;
}

static int seen_fn(struct store_txn *txn, void *ctx)
{
	struct fetch_seen *fs = ctx;
	for (size_t i = 0; i < fs->n; i++) {
		int r = store_msg_set_flags(txn, fs->mbid, fs->uids[i], STORE_FLAGS_ADD, STORE_F_SEEN, NULL, 0, NULL);
		if (r != 0 && r != STORE_ENOTFOUND)
			return r;
	}
	return 0;
}

static void write_internaldate(struct session *s, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char out[64];
	gmtime_r(&tt, &tm);
	strftime(out, sizeof(out), "%d-%b-%Y %H:%M:%S +0000", &tm);
	io_printf(&s->io, "INTERNALDATE \"%s\"", out);
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
		v->uids = realloc(v->uids, v->cap * sizeof(uint32_t));
		if (v->uids == NULL)
			abort();
	}
	v->uids[v->n++] = uid;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

void cmd_fetch(struct session *s, struct imap_command *cmd)
{
	struct fetch_req f = {0};
	struct fetch_cache pending = {0};
	if (cmd->nargs < 2 || cmd->nargs > 3 || cmd->args[0].type != IMAP_ARG_ATOM) {
		sess_tagged(s, "BAD", "FETCH needs a sequence set and items");
		return;
	}
	size_t cap = 64;
	f.items = imap_arena_alloc(s->arena, cap * sizeof(*f.items));
	const struct imap_arg *ia = &cmd->args[1];
	if (ia->type == IMAP_ARG_LIST) {
		for (size_t i = 0; i < ia->len; i++)
			if (add_item(s, &f, &ia->list[i], cap) < 0)
				goto bad;
	} else if (add_item(s, &f, ia, cap) < 0) {
		goto bad;
	}
	if (cmd->nargs == 3) {
		const struct imap_arg *m = &cmd->args[2];
		if (m->type != IMAP_ARG_LIST)
			goto bad;
		for (size_t i = 0; i < m->len; i++) {
			if (imap_arg_is_atom(&m->list[i], "CHANGEDSINCE") && i + 1 < m->len &&
			    m->list[i + 1].type == IMAP_ARG_ATOM &&
			    mk_parse_u64(m->list[i + 1].str, 0, UINT64_MAX >> 1, &f.changedsince) == 0) {
				i++;
				s->condstore = 1;
			} else if (imap_arg_is_atom(&m->list[i], "VANISHED") && cmd->uid && s->qresync) {
				f.vanished = 1;
			} else {
				goto bad;
			}
		}
		if (f.vanished && f.changedsince == 0)
			goto bad;
	}
	uint32_t *seqs;
	size_t nseqs;
	if (sess_resolve(s, cmd->args[0].str, cmd->uid, &seqs, &nseqs) < 0) {
		sess_tagged(s, "BAD", "Invalid sequence set");
		return;
	}
	struct view *v = &s->sel;
	/* \Seen first, so the answers show it */
	if (f.set_seen && !v->readonly && nseqs > 0) {
		struct fetch_seen fs = {.mbid = v->mbid, .uids = imap_arena_alloc(s->arena, nseqs * sizeof(uint32_t))};
		struct store_txn *txn = NULL;
		if (store_read_begin(s->d->store, &txn) == 0) {
			for (size_t i = 0; i < nseqs; i++) {
				struct store_msg m;
				if (store_msg_get(txn, v->mbid, v->uids[seqs[i] - 1], &m) == 0 && !(m.flags & STORE_F_SEEN))
					fs.uids[fs.n++] = m.uid;
			}
			store_read_end(&txn);
		}
		if (fs.n > 0) {
			int r = store_write_relaxed(s->d->store, seen_fn, &fs);
			if (r != 0) {
				sess_store_error(s, r, "FETCH");
				return;
			}
		}
	}
	struct store_txn *txn = NULL;
	int r = store_read_begin(s->d->store, &txn);
	if (r != 0) {
		sess_store_error(s, r, "FETCH");
		return;
	}
	if (f.vanished) {
		struct imap_seqset set;
		struct vanish vv = {.set = &set};
		if (imap_seqset_parse(s->arena, cmd->args[0].str, v->uidnext > 1 ? v->uidnext - 1 : 1, &set) == 0)
			store_expunged_since(txn, v->mbid, f.changedsince, vanish_cb, &vv);
		if (vv.n > 0) {
			qsort(vv.uids, vv.n, sizeof(uint32_t), cmp_u32);
			io_printf(&s->io, "* VANISHED (EARLIER) %s\r\n", sess_uidset(s, vv.uids, vv.n));
		}
		free(vv.uids);
	}
	struct buf fields, out;
	buf_init(&fields, 1 << 20);
	buf_init(&out, (size_t)1 << 40); /* bounded by the largest stored message */
	s->io.capture = &out;
	for (size_t i = 0; i < nseqs; i++) {
		/* send what is built, outside the transaction (see io.h) */
		if (out.len > (256 << 10)) {
			s->io.capture = NULL;
			store_read_end(&txn);
			io_write(&s->io, out.data, out.len);
			buf_reset(&out);
			if (s->io.failed || store_read_begin(s->d->store, &txn) != 0)
				break;
			s->io.capture = &out;
		}
		struct store_msg m;
		uint32_t uid = v->uids[seqs[i] - 1];
		if (store_msg_get(txn, v->mbid, uid, &m) != 0)
			continue; /* expunged by someone else; the EXPUNGE comes later */
		if (f.changedsince && m.modseq <= f.changedsince)
			continue;
		const void *blob = NULL;
		size_t blen = 0;
		if (f.need_blob && store_blob_get(txn, m.hash, &blob, &blen) != 0)
			continue;
		struct fetch_mime_text mt = {0};
		if (f.need_mime && fetch_mime(txn, &m, &pending, &mt) != 0)
			continue;
		io_printf(&s->io, "* %u FETCH (", seqs[i]);
		int sp = 0, have_uid = 0, have_modseq = 0, have_flags = 0;
#define SP() (sp++ ? io_write(&s->io, " ", 1) : (void)0)
		for (size_t k = 0; k < f.n; k++) {
			const struct item *it = &f.items[k];
			switch (it->kind) {
			case I_FLAGS:
				if (have_flags++)
					break;
				SP();
				io_puts(&s->io, "FLAGS ");
				sess_write_flags(s, sess_flags(s, m.uid, m.flags), m.keywords);
				break;
			case I_UID:
				if (have_uid++)
					break;
				SP();
				io_printf(&s->io, "UID %u", m.uid);
				break;
			case I_MODSEQ:
				if (have_modseq++)
					break;
				SP();
				io_printf(&s->io, "MODSEQ (%llu)", (unsigned long long)m.modseq);
				break;
			case I_INTERNALDATE:
				SP();
				write_internaldate(s, m.internaldate);
				break;
			case I_SIZE:
				SP();
				io_printf(&s->io, "RFC822.SIZE %llu", (unsigned long long)m.size);
				break;
			case I_ENVELOPE:
				SP();
				io_puts(&s->io, "ENVELOPE ");
				io_write(&s->io, mt.env, mt.envlen);
				break;
			case I_BODY:
				SP();
				io_puts(&s->io, "BODY ");
				io_write(&s->io, mt.body, mt.bodylen);
				break;
			case I_BODYSTRUCTURE:
				SP();
				io_puts(&s->io, "BODYSTRUCTURE ");
				io_write(&s->io, mt.bs, mt.bslen);
				break;
			case I_SECTION: {
				size_t start, len;
				buf_reset(&fields);
				if (mime_section(blob, blen, it->section, &start, &len, &fields) < 0) {
					start = 0;
					len = 0;
				}
				const char *data = start == SIZE_MAX ? fields.data : (const char *)blob + start;
				if (start == SIZE_MAX)
					len = fields.len;
				if (it->partial) {
					uint64_t o = it->off < len ? it->off : len;
					data += o;
					len -= o;
					if (len > it->len)
						len = it->len;
				}
				SP();
				io_printf(&s->io, "%s {%zu}\r\n", it->reply, len);
				io_write(&s->io, data, len);
				break;
			}
			}
		}
		if ((cmd->uid || s->qresync) && !have_uid) {
			SP();
			io_printf(&s->io, "UID %u", m.uid);
		}
		if (f.set_seen && !v->readonly && !have_flags) {
			SP();
			io_puts(&s->io, "FLAGS ");
			sess_write_flags(s, sess_flags(s, m.uid, m.flags), m.keywords);
		}
		if (f.changedsince && !have_modseq) {
			SP();
			io_printf(&s->io, "MODSEQ (%llu)", (unsigned long long)m.modseq);
		}
#undef SP
		io_puts(&s->io, ")\r\n");
		if (s->io.failed)
			break;
	}
	s->io.capture = NULL;
	buf_free(&fields);
	store_read_end(&txn);
	if (out.len > 0)
		io_write(&s->io, out.data, out.len);
	buf_free(&out);
	fetch_cache_flush(s->d->store, &pending);
	sess_sync(s, cmd->uid);
	sess_tagged(s, "OK", "Fetch completed.");
	return;
bad:
	sess_tagged(s, "BAD", "Invalid FETCH arguments");
}
