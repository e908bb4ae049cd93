/* cmd_append — APPEND (UIDPLUS's APPENDUID), COPY and MOVE (COPYUID). The
 * store adds references, never bytes: APPEND of a message already stored
 * costs nothing new, COPY/MOVE point at the same blob. Moves into or out of
 * Junk retrain the spam filter inside store_msg_move/copy. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imapd/session.h"
#include "lib/util.h"

struct append_ctx {
	uint32_t user_id;
	const char *mailbox;
	const char *data;
	size_t len;
	struct store_msg_new nm;
	struct store_mailbox mb;
	struct store_msg added;
};

static int append_fn(struct store_txn *txn, void *ctx)
{
	struct append_ctx *a = ctx;
	int r = store_mailbox_get(txn, a->user_id, a->mailbox, &a->mb);
	if (r == 0)
		r = store_blob_put(txn, a->data, a->len, a->nm.hash);
	if (r == 0)
		r = store_msg_add(txn, a->mb.id, &a->nm, &a->added);
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
	const char *kw = NULL;
	if (i < cmd->nargs && cmd->args[i].type == IMAP_ARG_LIST) {
		if (sess_parse_flags(s, &cmd->args[i], &a.nm.flags, &kw) < 0) {
			sess_tagged(s, "BAD", "Invalid flags");
			return;
		}
		i++;
	}
	if (i < cmd->nargs && cmd->args[i].type == IMAP_ARG_QUOTED) {
		if (parse_datetime(cmd->args[i].str, &a.nm.internaldate) < 0) {
			sess_tagged(s, "BAD", "Invalid date-time");
			return;
		}
		i++;
	}
	if (i + 1 != cmd->nargs || cmd->args[i].type != IMAP_ARG_LITERAL) {
		sess_tagged(s, "BAD",
			    "APPEND needs the message as a literal (one message at a time)");
		return;
	}
	if (cmd->args[i].len == 0) {
		sess_tagged(s, "NO", "An empty message is not a message");
		return;
	}
	a.data = cmd->args[i].str;
	a.len = cmd->args[i].len;
	a.nm.keywords = kw;
	/* RFC 3501 6.3.11: "In either case, the Recent flag is also set." */
	a.nm.flags |= STORE_F_RECENT;
	int r = store_write(s->d->store, append_fn, &a);
	if (r == STORE_ENOTFOUND) {
		sess_tagged(s, "NO", "[TRYCREATE] No such mailbox");
		return;
	}
	if (r != 0) {
		sess_store_error(s, r, "APPEND");
		return;
	}
	sess_sync(s, 0);
	sess_tagged(s, "OK", "[APPENDUID %u %u] Append completed.", a.mb.uidvalidity, a.added.uid);
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
