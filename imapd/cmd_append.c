/* cmd_append — APPEND (UIDPLUS's APPENDUID), COPY and MOVE (COPYUID). The
 * store adds references, never bytes: APPEND of a message already stored
 * costs nothing new, COPY/MOVE point at the same blob. Moves into or out of
 * Junk retrain the spam filter inside store_msg_move/copy. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imapd/mime.h"
#include "imapd/session.h"
#include "imapd/wire.h"
#include "lib/log.h"
#include "lib/utf7.h"
#include "lib/util.h"
#include "lib/xmalloc.h"

#define APPEND_MAX_MESSAGES 1000 /* messages in one MULTIAPPEND */
#define CATENATE_MAX_PARTS 100

/* One message of an APPEND (MULTIAPPEND: several, stored in one write). */
struct append_msg {
	const char *data; /* the literal, or owned's bytes (CATENATE) */
	size_t len;
	struct buf owned;
	struct store_msg_new nm;
	uint32_t uid; /* after the write */
};

struct append_ctx {
	uint32_t user_id;
	const char *mailbox;
	struct append_msg *msgs;
	size_t n;
	struct store_mailbox mb;
};

/* All the messages or none (RFC 3502 3: MULTIAPPEND is atomic). */
static int append_fn(struct store_txn *txn, void *ctx)
{
	struct append_ctx *a = ctx;
	int r = store_mailbox_get(txn, a->user_id, a->mailbox, &a->mb);
	for (size_t i = 0; r == 0 && i < a->n; i++) {
		struct append_msg *m = &a->msgs[i];
		struct store_msg added;
		r = store_blob_put(txn, m->data, m->len, m->nm.hash);
		if (r == 0)
			r = store_msg_add(txn, a->mb.id, &m->nm, &added);
		m->uid = added.uid;
	}
	return r;
}

/* "17-Jul-1996 02:44:25 -0700" -> seconds since the epoch. */
static int parse_datetime(const char *s, int64_t *t_r)
{
	static const char *mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *p = s;
	if (*p == ' ')
		p++;
	if (!isdigit((unsigned char)*p))
		return -1;
	tm.tm_mday = *p++ - '0';
	if (isdigit((unsigned char)*p))
		tm.tm_mday = tm.tm_mday * 10 + (*p++ - '0');
	if (*p++ != '-')
		return -1;
	int m;
	for (m = 0; m < 12; m++)
		if (strncasecmp(p, mon[m], 3) == 0)
			break;
	if (m == 12)
		return -1;
	tm.tm_mon = m;
	p += 3;
	if (*p++ != '-')
		return -1;
	int v[7], k = 0;
	/* yyyy hh:mm:ss +zzzz */
	for (int i = 0; i < 4; i++)
		if (!isdigit((unsigned char)p[i]))
			return -1;
	tm.tm_year =
	    (p[0] - '0') * 1000 + (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0') - 1900;
	p += 4;
	if (*p++ != ' ')
		return -1;
	for (k = 0; k < 3; k++) {
		if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]))
			return -1;
		v[k] = (p[0] - '0') * 10 + (p[1] - '0');
		p += 2;
		if (k < 2 && *p++ != ':')
			return -1;
	}
	if (*p++ != ' ' || (*p != '+' && *p != '-'))
		return -1;
	int sign = *p++ == '-' ? -1 : 1;
	for (int i = 0; i < 4; i++)
		if (!isdigit((unsigned char)p[i]))
			return -1;
	int zone = ((p[0] - '0') * 10 + (p[1] - '0')) * 60 + (p[2] - '0') * 10 + (p[3] - '0');
	if (p[4] != '\0' || v[0] > 23 || v[1] > 59 || v[2] > 60 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31)
		return -1;
	tm.tm_hour = v[0];
	tm.tm_min = v[1];
	tm.tm_sec = v[2];
	time_t t = timegm(&tm);
	*t_r = (int64_t)t - sign * zone * 60;
	return 0;
}

/* --- CATENATE (RFC 4469) ---------------------------------------------------- */

/* %xx decoding into out (NUL-terminated). -1 on a bad escape or no room. */
static int pct_decode(const char *in, size_t len, char *out, size_t outsize)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (c == '%') {
			if (i + 2 >= len || !isxdigit((unsigned char)in[i + 1]) ||
			    !isxdigit((unsigned char)in[i + 2]))
				return -1;
			char hex[3] = {in[i + 1], in[i + 2], 0};
			c = (char)strtol(hex, NULL, 16);
			i += 2;
		}
		if (c == '\0' || o + 1 >= outsize)
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

/* An IMAP URL of this server, as CATENATE takes it (RFC 5092, the
 * "/mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s][/;PARTIAL=o[.l]]" form). */
struct imap_url {
	char mailbox[STORE_NAME_MAX + 1]; /* UTF-8 */
	uint32_t uidvalidity, uid;
	char section[256];
	int partial;
	uint64_t off, len; /* len 0: to the end */
};

static int parse_url(const char *url, struct imap_url *u)
{
	memset(u, 0, sizeof(*u));
	if (url[0] != '/')
		return -1;
	const char *p = url + 1;
	const char *end = strchr(p, '/');
	if (end == NULL)
		return -1;
	const char *semi = memchr(p, ';', (size_t)(end - p));
	char wire[STORE_NAME_MAX * 4 + 8];
	if (pct_decode(p, (size_t)((semi ? semi : end) - p), wire, sizeof(wire)) < 0 ||
	    utf7_to_utf8(wire, u->mailbox, sizeof(u->mailbox)) < 0 || u->mailbox[0] == '\0')
		return -1;
	if (strncasecmp(u->mailbox, "INBOX", 5) == 0 &&
	    (u->mailbox[5] == '\0' || u->mailbox[5] == STORE_MAILBOX_SEP))
		memcpy(u->mailbox, "INBOX", 5);
	if (semi != NULL) {
		uint64_t v;
		char num[24];
		if (strncasecmp(semi, ";UIDVALIDITY=", 13) != 0 ||
		    (size_t)(end - semi - 13) >= sizeof(num))
			return -1;
		memcpy(num, semi + 13, (size_t)(end - semi - 13));
		num[end - semi - 13] = '\0';
		if (mk_parse_u64(num, 1, UINT32_MAX, &v) < 0)
			return -1;
		u->uidvalidity = (uint32_t)v;
	}
	/* "/;KEY=value" items */
	for (p = end; *p;) {
		if (p[0] != '/' || p[1] != ';')
			return -1;
		p += 2;
		const char *e = strchr(p, '/');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		char item[512];
		if (pct_decode(p, l, item, sizeof(item)) < 0)
			return -1;
		uint64_t v;
		if (strncasecmp(item, "UID=", 4) == 0 &&
		    mk_parse_u64(item + 4, 1, UINT32_MAX, &v) == 0) {
			u->uid = (uint32_t)v;
		} else if (strncasecmp(item, "SECTION=", 8) == 0 && u->uid) {
			mk_strlcpy(u->section, item + 8, sizeof(u->section));
		} else if (strncasecmp(item, "PARTIAL=", 8) == 0 && u->uid) {
			char *dot;
			u->off = strtoull(item + 8, &dot, 10);
			if (dot == item + 8 || (*dot != '\0' && *dot != '.'))
				return -1;
			if (*dot == '.' && mk_parse_u64(dot + 1, 1, UINT64_MAX >> 1, &u->len) < 0)
				return -1;
			u->partial = 1;
		} else {
			return -1;
		}
		p += l;
	}
	return u->uid ? 0 : -1;
}

/* Appends what the URL names, in CRLF form, to out. 0 or -1 (bad URL). */
static int url_append(struct session *s, const char *url, struct buf *out)
{
	struct imap_url u;
	struct store_txn *txn = NULL;
	struct store_mailbox mb;
	struct store_msg m;
	const void *blob;
	size_t blen, start, len;
	struct buf fields;
	int rc = -1;
	if (parse_url(url, &u) < 0 || store_read_begin(s->d->store, &txn) != 0)
		return -1;
	buf_init(&fields, 1 << 20);
	if (store_mailbox_get(txn, s->user_id, u.mailbox, &mb) != 0 ||
	    (u.uidvalidity && u.uidvalidity != mb.uidvalidity) ||
	    store_msg_get(txn, mb.id, u.uid, &m) != 0 ||
	    store_blob_get(txn, m.hash, &blob, &blen) != 0 ||
	    mime_section(blob, blen, u.section, &start, &len, &fields) < 0)
		goto done;
	const char *data = start == SIZE_MAX ? fields.data : blob;
	size_t dstart = start == SIZE_MAX ? 0 : start, dlen = start == SIZE_MAX ? fields.len : len;
	uint64_t total = wire_crlf_len(data, dstart, dlen);
	uint64_t off = u.partial ? (u.off < total ? u.off : total) : 0;
	uint64_t count = total - off;
	if (u.partial && u.len && u.len < count)
		count = u.len;
	struct wire_crlf r;
	char tmp[16384];
	size_t n;
	wire_crlf_open(&r, data, dstart, dlen, off, count);
	rc = 0;
	while ((n = wire_crlf_read(&r, data, tmp, sizeof(tmp))) > 0)
		if (buf_append(out, tmp, n) < 0) {
			rc = -2; /* over the size limit */
			break;
		}
done:
	buf_free(&fields);
	store_read_end(&txn);
	return rc;
}

/* CATENATE (TEXT literal / URL "url" ...) into m->owned. 0, or -1 after
 * answering (BAD syntax, NO [BADURL], NO [TOOBIG]). */
static int catenate(struct session *s, const struct imap_arg *list, struct append_msg *m)
{
	if (list->type != IMAP_ARG_LIST || list->len == 0 || list->len > 2 * CATENATE_MAX_PARTS ||
	    list->len % 2 != 0) {
		sess_tagged(s, "BAD", "CATENATE needs (TEXT literal / URL url ...)");
		return -1;
	}
	buf_init(&m->owned, (size_t)s->d->max_literal);
	for (size_t i = 0; i < list->len; i += 2) {
		const struct imap_arg *kind = &list->list[i], *val = &list->list[i + 1];
		if (imap_arg_is_atom(kind, "TEXT") && val->type == IMAP_ARG_LITERAL) {
			if (buf_append(&m->owned, val->str, val->len) < 0)
				goto toobig;
		} else if (imap_arg_is_atom(kind, "URL") && val->type != IMAP_ARG_LIST) {
			const char *url = imap_arg_astring(s->arena, val);
			int r = url ? url_append(s, url, &m->owned) : -1;
			if (r == -2)
				goto toobig;
			if (r < 0) {
				char p[256];
				sess_tagged(s, "NO", "[BADURL %s] The URL names nothing here",
					    log_printable(p, sizeof(p), url ? url : "",
							  url ? strlen(url) : 0));
				return -1;
			}
		} else {
			sess_tagged(s, "BAD", "CATENATE needs (TEXT literal / URL url ...)");
			return -1;
		}
	}
	m->data = m->owned.data;
	m->len = m->owned.len;
	return 0;
toobig:
	sess_tagged(s, "NO", "[TOOBIG] The message would be over %llu bytes",
		    (unsigned long long)s->d->max_literal);
	return -1;
}

/* --- APPEND, MULTIAPPEND ------------------------------------------------------ */

/* One message's "[flags] [date-time] (literal / CATENATE (...))" from
 * args[*i]. 0, or -1 after answering. */
static int parse_message(struct session *s, struct imap_command *cmd, size_t *i,
			 struct append_msg *m)
{
	const char *kw = NULL;
	if (*i < cmd->nargs && cmd->args[*i].type == IMAP_ARG_LIST) {
		if (sess_parse_flags(s, &cmd->args[*i], &m->nm.flags, &kw) < 0) {
			sess_tagged(s, "BAD", "Invalid flags");
			return -1;
		}
		(*i)++;
	}
	if (*i < cmd->nargs && cmd->args[*i].type == IMAP_ARG_QUOTED) {
		if (parse_datetime(cmd->args[*i].str, &m->nm.internaldate) < 0) {
			sess_tagged(s, "BAD", "Invalid date-time");
			return -1;
		}
		(*i)++;
	}
	if (*i < cmd->nargs && cmd->args[*i].type == IMAP_ARG_LITERAL) {
		m->data = cmd->args[*i].str;
		m->len = cmd->args[*i].len;
		(*i)++;
		/* binary content (RFC 3516): parts with NUL bytes stored as base64 */
		buf_init(&m->owned, (size_t)s->d->max_literal + (s->d->max_literal / 3 + 1) * 2);
		int b = mime_binary_to_base64(m->data, m->len, &m->owned);
		if (b == -1) {
			sess_tagged(
			    s, "NO",
			    "[TOOBIG] The message is too big once its binary parts are encoded");
			return -1;
		}
		if (b == -2) {
			sess_tagged(s, "NO",
				    "NUL bytes outside a part's content (in a header?): not a "
				    "valid message");
			return -1;
		}
		if (b > 0) {
			m->data = m->owned.data;
			m->len = m->owned.len;
		}
	} else if (*i + 1 < cmd->nargs && imap_arg_is_atom(&cmd->args[*i], "CATENATE")) {
		if (catenate(s, &cmd->args[*i + 1], m) < 0)
			return -1;
		*i += 2;
	} else {
		sess_tagged(s, "BAD", "APPEND needs the message as a literal or CATENATE");
		return -1;
	}
	if (m->len == 0) {
		sess_tagged(s, "NO", "An empty message is not a message");
		return -1;
	}
	m->nm.keywords = kw;
	/* RFC 3501 6.3.11: "In either case, the Recent flag is also set." */
	m->nm.flags |= STORE_F_RECENT;
	return 0;
}

void cmd_append(struct session *s, struct imap_command *cmd)
{
	char name[STORE_NAME_MAX + 1];
	struct append_ctx a = {.user_id = s->user_id, .mailbox = name};
	size_t i = 1;
	if (cmd->nargs < 2) {
		sess_tagged(s, "BAD", "APPEND needs a mailbox and a message");
		return;
	}
	if (sess_mailbox_arg(s, &cmd->args[0], name, sizeof(name)) < 0)
		return;
	/* a missing mailbox is said first, before any CATENATE URL is looked at */
	struct store_txn *txn = NULL;
	int r = store_read_begin(s->d->store, &txn);
	if (r == 0)
		r = store_mailbox_get(txn, s->user_id, name, &a.mb);
	store_read_end(&txn);
	if (r == STORE_ENOTFOUND) {
		sess_tagged(s, "NO", "[TRYCREATE] No such mailbox");
		return;
	}
	a.msgs = xcalloc(cmd->nargs, sizeof(*a.msgs));
	while (i < cmd->nargs) {
		if (a.n == APPEND_MAX_MESSAGES) {
			sess_tagged(s, "NO", "[LIMIT] At most %d messages in one APPEND",
				    APPEND_MAX_MESSAGES);
			goto done;
		}
		if (parse_message(s, cmd, &i, &a.msgs[a.n++]) < 0)
			goto done;
	}
	r = store_write(s->d->store, append_fn, &a);
	if (r == STORE_ENOTFOUND) {
		sess_tagged(s, "NO", "[TRYCREATE] No such mailbox");
		goto done;
	}
	if (r != 0) {
		sess_store_error(s, r, "APPEND");
		goto done;
	}
	uint32_t *uids = imap_arena_alloc(s->arena, a.n * sizeof(uint32_t));
	for (size_t k = 0; k < a.n; k++)
		uids[k] = a.msgs[k].uid;
	sess_sync(s, 0);
	sess_tagged(s, "OK", "[APPENDUID %u %s] Append completed.", a.mb.uidvalidity,
		    sess_uidset(s, uids, a.n));
done:
	for (size_t k = 0; k < a.n; k++)
		buf_free(&a.msgs[k].owned);
	free(a.msgs);
}

struct copy_ctx {
	uint32_t user_id, src;
	const char *mailbox;
	const uint32_t *uids;
	size_t n;
	int move;
	struct store_mailbox dst;
	uint32_t *src_done, *dst_uids;
	size_t done;
};

static int copy_fn(struct store_txn *txn, void *ctx)
{
	struct copy_ctx *c = ctx;
	int r = store_mailbox_get(txn, c->user_id, c->mailbox, &c->dst);
	if (r != 0)
		return r;
	c->done = 0;
	for (size_t i = 0; i < c->n; i++) {
		struct store_msg out;
		if (c->move && c->dst.id == c->src) {
			/* MOVE into the same mailbox (RFC 6851): a new UID, the old one expunged */
			r = store_msg_copy(txn, c->src, c->uids[i], c->dst.id, &out);
			if (r == 0)
				r = store_msg_expunge(txn, c->src, c->uids[i]);
		} else {
			r = c->move ? store_msg_move(txn, c->src, c->uids[i], c->dst.id, &out)
				    : store_msg_copy(txn, c->src, c->uids[i], c->dst.id, &out);
		}
		if (r == STORE_ENOTFOUND)
			continue;
		/* the copy is new in its mailbox: \Recent (RFC 3501 6.4.7) */
		if (r == 0 && !(out.flags & STORE_F_RECENT))
			r = store_msg_set_flags(txn, c->dst.id, out.uid, STORE_FLAGS_ADD,
						STORE_F_RECENT, NULL, 0, NULL);
		if (r != 0)
			return r;
		c->src_done[c->done] = c->uids[i];
		c->dst_uids[c->done] = out.uid;
		c->done++;
	}
	return 0;
}

static void do_copy(struct session *s, struct imap_command *cmd, int move)
{
	char name[STORE_NAME_MAX + 1];
	if (cmd->nargs != 2 || cmd->args[0].type != IMAP_ARG_ATOM) {
		sess_tagged(s, "BAD", "Sequence set and mailbox needed");
		return;
	}
	if (move && s->sel.readonly) {
		sess_tagged(s, "NO", "[READ-ONLY] The mailbox is read-only");
		return;
	}
	if (sess_mailbox_arg(s, &cmd->args[1], name, sizeof(name)) < 0)
		return;
	uint32_t *seqs;
	size_t n;
	if (sess_resolve(s, cmd->args[0].str, cmd->uid, &seqs, &n) < 0) {
		sess_tagged(s, "BAD", "Invalid sequence set");
		return;
	}
	struct copy_ctx c = {
	    .user_id = s->user_id, .src = s->sel.mbid, .mailbox = name, .n = n, .move = move};
	uint32_t *uids = imap_arena_alloc(s->arena, (n + 1) * sizeof(uint32_t));
	for (size_t k = 0; k < n; k++)
		uids[k] = s->sel.uids[seqs[k] - 1];
	c.uids = uids;
	c.src_done = imap_arena_alloc(s->arena, (n + 1) * sizeof(uint32_t));
	c.dst_uids = imap_arena_alloc(s->arena, (n + 1) * sizeof(uint32_t));
	int r = n > 0 ? store_write(s->d->store, copy_fn, &c) : 0;
	if (r == STORE_ENOTFOUND) {
		sess_tagged(s, "NO", "[TRYCREATE] No such mailbox");
		return;
	}
	if (r != 0) {
		sess_store_error(s, r, move ? "MOVE" : "COPY");
		return;
	}
	const char *srcset = "", *dstset = "";
	if (c.done > 0) {
		srcset = sess_uidset(s, c.src_done, c.done);
		dstset = sess_uidset(s, c.dst_uids, c.done);
	}
	if (move) {
		if (c.done > 0)
			io_printf(&s->io, "* OK [COPYUID %u %s %s] Moved\r\n", c.dst.uidvalidity,
				  srcset, dstset);
		sess_sync(s, 1);
		sess_tagged(s, "OK", "Move completed.");
	} else {
		sess_sync(s, cmd->uid);
		if (c.done > 0)
			sess_tagged(s, "OK", "[COPYUID %u %s %s] Copy completed.",
				    c.dst.uidvalidity, srcset, dstset);
		else
			sess_tagged(s, "OK", "Copy completed.");
	}
}

void cmd_copy(struct session *s, struct imap_command *cmd)
{
	do_copy(s, cmd, 0);
}

void cmd_move(struct session *s, struct imap_command *cmd)
{
	do_copy(s, cmd, 1);
}
