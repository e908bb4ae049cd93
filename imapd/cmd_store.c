/* cmd_store — STORE and UID STORE: FLAGS, +FLAGS, -FLAGS (.SILENT), with
 * CONDSTORE's UNCHANGEDSINCE and MODIFIED. All messages change in one write, a
 * relaxed one (store_write_relaxed: flushed once; a system crash within about
 * 200 ms may undo it, see doc/imapd.md, "Durability of flag changes"). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imapd/session.h"
#include "lib/util.h"
#include "lib/xmalloc.h"

struct store_ctx {
	uint32_t mbid;
	enum store_flag_op op;
	uint32_t flags;
	const char *keywords;
	uint64_t unchangedsince;
	const uint32_t *uids;
	size_t n;
	struct store_msg *res; /* per uid: the result; uid 0 = gone */
	int *modified;
};

static int store_fn(struct store_txn *txn, void *ctx)
{
	struct store_ctx *c = ctx;
	for (size_t i = 0; i < c->n; i++) {
		c->modified[i] = 0;
		int r = store_msg_set_flags(txn, c->mbid, c->uids[i], c->op, c->flags, c->keywords,
					    c->unchangedsince, &c->res[i]);
		if (r == STORE_EMODIFIED) {
			c->modified[i] = 1;
			c->res[i].uid = 0;
			continue;
		}
		if (r == STORE_ENOTFOUND) {
			c->res[i].uid = 0;
			continue;
		}
		if (r != 0)
			return r;
	}
	return 0;
}

void cmd_store(struct session *s, struct imap_command *cmd)
{
	struct store_ctx c = {.mbid = s->sel.mbid};
	size_t i = 1;
	if (s->sel.readonly) {
		sess_tagged(s, "NO", "[READ-ONLY] The mailbox is read-only");
		return;
	}
	if (cmd->nargs < 3 || cmd->args[0].type != IMAP_ARG_ATOM)
		goto bad;
	if (cmd->args[1].type == IMAP_ARG_LIST) {
		const struct imap_arg *m = &cmd->args[1];
		if (m->len != 2 || !imap_arg_is_atom(&m->list[0], "UNCHANGEDSINCE") ||
		    m->list[1].type != IMAP_ARG_ATOM ||
		    mk_parse_u64(m->list[1].str, 0, UINT64_MAX >> 1, &c.unchangedsince) < 0)
			goto bad;
		sess_condstore_on(s);
		i = 2;
	}
	if (cmd->nargs < i + 2 || cmd->args[i].type != IMAP_ARG_ATOM)
		goto bad;
	const char *what = cmd->args[i].str;
	if (*what == '+') {
		c.op = STORE_FLAGS_ADD;
		what++;
	} else if (*what == '-') {
		c.op = STORE_FLAGS_REMOVE;
		what++;
	} else {
		c.op = STORE_FLAGS_SET;
	}
	int silent;
	if (strcasecmp(what, "FLAGS") == 0)
		silent = 0;
	else if (strcasecmp(what, "FLAGS.SILENT") == 0)
		silent = 1;
	else
		goto bad;
	const char *kw;
	if (cmd->nargs == i + 2) {
		if (sess_parse_flags(s, &cmd->args[i + 1], &c.flags, &kw) < 0)
			goto badflags;
	} else {
		/* flags without parentheses: +FLAGS \Seen \Flagged */
		struct imap_arg list = {
		    .type = IMAP_ARG_LIST, .list = &cmd->args[i + 1], .len = cmd->nargs - i - 1};
		if (sess_parse_flags(s, &list, &c.flags, &kw) < 0)
			goto badflags;
	}
	c.keywords = c.op == STORE_FLAGS_SET ? kw : (kw[0] ? kw : NULL);
	uint32_t *seqs;
	size_t n;
	if (sess_resolve(s, cmd->args[0].str, cmd->uid, &seqs, &n) < 0)
		goto bad;
	c.n = n;
	uint32_t *uids = imap_arena_alloc(s->arena, (n + 1) * sizeof(uint32_t));
	for (size_t k = 0; k < n; k++)
		uids[k] = s->sel.uids[seqs[k] - 1];
	c.uids = uids;
	c.res = xcalloc(n + 1, sizeof(*c.res));
	c.modified = xcalloc(n + 1, sizeof(int));
	int r = n > 0 ? store_write_relaxed(s->d->store, store_fn, &c) : 0;
	if (r != 0) {
		free(c.res);
		free(c.modified);
		sess_store_error(s, r, "STORE");
		return;
	}
	uint32_t *mod = imap_arena_alloc(s->arena, (n + 1) * sizeof(uint32_t));
	size_t nmod = 0;
	for (size_t k = 0; k < n; k++) {
		if (c.modified[k]) {
			mod[nmod++] = cmd->uid ? uids[k] : seqs[k];
			continue;
		}
		if (c.res[k].uid == 0)
			continue;
		/* with UNCHANGEDSINCE, the new MODSEQ is reported even if .SILENT */
		if (silent && !c.unchangedsince)
			continue;
		sess_keywords_seen(s, c.res[k].keywords);
		io_printf(&s->io, "* %u FETCH (", seqs[k]);
		if (cmd->uid || s->qresync) /* RFC 7162: UID in every FETCH once QRESYNC is on */
			io_printf(&s->io, "UID %u ", uids[k]);
		io_puts(&s->io, "FLAGS ");
		sess_write_flags(s, sess_flags(s, uids[k], c.res[k].flags), c.res[k].keywords);
		if (s->condstore)
			io_printf(&s->io, " MODSEQ (%llu)", (unsigned long long)c.res[k].modseq);
		io_puts(&s->io, ")\r\n");
	}
	/* our own change is already reported (or not wanted): do not report it again */
	uint64_t *ms = imap_arena_alloc(s->arena, (n + 1) * sizeof(uint64_t));
	for (size_t k = 0; k < n; k++)
		ms[k] = c.res[k].modseq;
	s->own_uids = uids;
	s->own_modseqs = ms;
	s->nown = n;
	free(c.res);
	free(c.modified);
	sess_sync(s, cmd->uid);
	s->nown = 0;
	if (nmod > 0)
		sess_tagged(s, "OK", "[MODIFIED %s] Conditional STORE failed",
			    sess_uidset(s, mod, nmod));
	else
		sess_tagged(s, "OK", "Store completed.");
	return;
bad:
	sess_tagged(s, "BAD", "Invalid STORE arguments");
	return;
badflags:
	sess_tagged(s, "BAD", "Invalid flags");
}
