/* sieve_deliver — a recipient's scripts at delivery, into store targets
 * (see index/sieve_deliver.h). */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "index/params.h"
#include "index/queue.h"
#include "index/sieve_deliver.h"
#include "index/sieve_priv.h"
#include "lib/array.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xmalloc.h"

struct sieve_params {
#define PARAM(name, TYPE, def, min, max, doc) CONFIG_FIELD(name, TYPE)
#include "index/params_sieve.def"
};
static const struct config_bind sieve_binds[] = {
#define PARAM(name, TYPE, def, min, max, doc) CONFIG_BIND(struct sieve_params, name, TYPE),
#include "index/params_sieve.def"
    CONFIG_BIND_END,
};

#define MAX_GLOBAL 8
static struct {
	int enabled, autocreate, vacation;
	size_t max_size;
	unsigned max_scripts;
	char global_dir[1024];
	char before[MAX_GLOBAL][SIEVE_NAME_MAX + 1], after[MAX_GLOBAL][SIEVE_NAME_MAX + 1];
	size_t nbefore, nafter;
	char delimiter[16];
	char hostname[256];
} ss = {.enabled = 1,
	.autocreate = 1,
	.vacation = 1,
	.max_size = SIEVE_SCRIPT_MAX_DEFAULT,
	.max_scripts = 32,
	.delimiter = "+",
	.hostname = "localhost"};

static int names_into(const struct config_list *l, char (*out)[SIEVE_NAME_MAX + 1], size_t *n,
		      const char *what, char *err, size_t errsize)
{
	*n = 0;
	for (size_t i = 0; i < l->n; i++) {
		if (*n >= MAX_GLOBAL || !sieve_name_valid(l->item[i])) {
			snprintf(err, errsize,
				 "%s: \"%.64s\" is not a script name (at most %d names)", what,
				 l->item[i], MAX_GLOBAL);
			return -1;
		}
		mk_strlcpy(out[(*n)++], l->item[i], SIEVE_NAME_MAX + 1);
	}
	return 0;
}

int sieve_attach(struct config *cfg, char *err, size_t errsize)
{
	struct sieve_params p;
	memset(&p, 0, sizeof(p));
	int rc = 0;
	config_bind(cfg, sieve_binds, &p);
	ss.enabled = p.sieve;
	ss.autocreate = p.sieve_mailbox_autocreate;
	ss.vacation = p.sieve_vacation;
	ss.max_size = (size_t)p.sieve_max_script_size;
	ss.max_scripts = (unsigned)p.sieve_max_scripts;
	mk_strlcpy(ss.global_dir, p.sieve_global_dir ? p.sieve_global_dir : "",
		   sizeof(ss.global_dir));
	if (names_into(&p.sieve_before, ss.before, &ss.nbefore, "sieve_before", err, errsize) < 0 ||
	    names_into(&p.sieve_after, ss.after, &ss.nafter, "sieve_after", err, errsize) < 0)
		rc = -1;
	struct common_params c;
	memset(&c, 0, sizeof(c));
	common_params_bind(cfg, &c);
	mk_strlcpy(ss.delimiter,
		   c.recipient_delimiter && c.recipient_delimiter[0] ? c.recipient_delimiter : "+",
		   sizeof(ss.delimiter));
	if (c.myhostname != NULL)
		mk_strlcpy(ss.hostname, c.myhostname, sizeof(ss.hostname));
	common_params_unbind(&c);
	config_unbind(sieve_binds, &p);
	return rc;
}

size_t sieve_max_script_size(void)
{
	return ss.max_size;
}

unsigned sieve_max_scripts(void)
{
	return ss.max_scripts;
}

/* --- what the scripts see of the store --------------------------------------------- */

struct env_ctx {
	struct store *store;
	uint32_t user_id;
	char **texts; /* loaded scripts, freed at the end */
	size_t ntexts, captexts;
};

static int env_mailbox_exists(void *ctx, const char *name)
{
	struct env_ctx *e = ctx;
	struct store_txn *txn = NULL;
	struct store_mailbox mb;
	int r = 0;
	if (e->user_id != 0 && store_read_begin(e->store, &txn) == 0) {
		r = store_mailbox_get(txn, e->user_id, name, &mb) == 0;
		store_read_end(&txn);
	}
	return r;
}

static int read_global(const char *name, char **text_r, size_t *len_r)
{
	char path[1400];
	if (ss.global_dir[0] == '\0')
		return -1;
	snprintf(path, sizeof(path), "%s/%s.sieve", ss.global_dir, name);
	return mk_read_file(path, ss.max_size, text_r, len_r);
}

static int env_load(void *ctx, int global, const char *name, const char **text_r, size_t *len_r)
{
	struct env_ctx *e = ctx;
	char *copy = NULL;
	size_t len = 0;
	if (global) {
		if (read_global(name, &copy, &len) < 0)
			return -1;
	} else {
		struct store_txn *txn = NULL;
		const char *t;
		if (e->user_id == 0 || store_read_begin(e->store, &txn) != 0)
			return -1;
		if (sieve_script_get(txn, e->user_id, name, &t, &len) == 0)
			copy = xmemdup(t, len ? len : 1);
		store_read_end(&txn);
		if (copy == NULL)
			return -1;
	}
	*ARRAY_PUSH(e->texts, e->ntexts, e->captexts) = copy;
	*text_r = copy;
	*len_r = len;
	return 0;
}

/* --- targets ------------------------------------------------------------------------- */

/* Adds "pre<arg>post" (arg made printable) to the summary. */
static void summary_add(struct sieve_plan *p, const char *pre, const char *arg, const char *post)
{
	size_t o = strlen(p->summary);
	char pa[200];
	log_printable(pa, sizeof(pa), arg ? arg : "", arg ? strlen(arg) : 0);
	snprintf(p->summary + o, sizeof(p->summary) - o, "%s%s%s%s", o ? ", " : "", pre, pa, post);
}

/* IMAP flags from imap4flags' list: system flags and valid keywords. */
static void flags_split(const char *list, uint32_t *flags, char *kw, size_t kwsize)
{
	static const struct {
		const char *name;
		uint32_t bit;
	} sys[] = {{"\\seen", STORE_F_SEEN},
		   {"\\answered", STORE_F_ANSWERED},
		   {"\\flagged", STORE_F_FLAGGED},
		   {"\\deleted", STORE_F_DELETED},
		   {"\\draft", STORE_F_DRAFT}};
	for (const char *p = list; p && *p;) {
		while (*p == ' ')
			p++;
		const char *e = p;
		while (*e && *e != ' ')
			e++;
		size_t n = (size_t)(e - p);
		int done = 0;
		for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++)
			if (strlen(sys[i].name) == n && strncasecmp(sys[i].name, p, n) == 0) {
				*flags |= sys[i].bit;
				done = 1;
			}
		int atom = n > 0 && p[0] != '\\';
		for (size_t i = 0; i < n && atom; i++) {
			unsigned char c = (unsigned char)p[i];
			if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c))
				atom = 0;
		}
		size_t o = strlen(kw);
		if (!done && atom && o + n + 2 < kwsize) {
			if (o)
				kw[o++] = ' ';
			memcpy(kw + o, p, n);
			kw[o + n] = '\0';
		}
		p = e;
	}
}

/* Adds (or merges) a target; 0, or -1 when mailbox cannot name a mailbox. */
static int target_add(struct sieve_plan *p, const char *mailbox, const char *flags, int create)
{
	char name[STORE_NAME_MAX + 1];
	if (mailbox != NULL && strlen(mailbox) > STORE_NAME_MAX)
		return -1;
	mk_strlcpy(name, mailbox ? mailbox : "", sizeof(name));
	for (char *c = name; *c; c++) /* Dovecot's fs layout names with '/' */
		if (*c == '/')
			*c = STORE_MAILBOX_SEP;
	if (name[0] != '\0' && !store_mailbox_name_valid(name))
		return -1;
	if (strcasecmp(name, "INBOX") == 0)
		mk_strlcpy(name, "INBOX", sizeof(name));
	struct sieve_target *t = NULL;
	for (size_t i = 0; i < p->ntargets; i++)
		if (strcmp(p->targets[i].mailbox, name) == 0)
			t = &p->targets[i]; /* one copy per mailbox (RFC 5228 2.10.3), flags merged
					     */
	if (t == NULL) {
		t = ARRAY_PUSH(p->targets, p->ntargets, p->cap);
		memset(t, 0, sizeof(*t));
		mk_strlcpy(t->mailbox, name, sizeof(t->mailbox));
	}
	flags_split(flags, &t->flags, t->keywords, sizeof(t->keywords));
	t->create |= create;
	return 0;
}

static void fail_to_inbox(struct sieve_plan *p, const char *why)
{
	p->failed = 1;
	mk_strlcpy(p->error, why, sizeof(p->error));
	p->ntargets = 0;
	p->reject = 0;
	free(p->vacation);
	free(p->vacation_to);
	p->vacation = p->vacation_to = NULL;
	for (size_t i = 0; i < p->nredirect; i++)
		free(p->redirect_to[i]);
	p->nredirect = 0; /* INBOX alone: no redirect either */
	target_add(p, "INBOX", NULL, 0);
	snprintf(p->summary, sizeof(p->summary), "error, kept in INBOX");
}

/* --- vacation (RFC 5230) ------------------------------------------------------------ */

struct hdr_find {
	char *val;
};
static int first_cb(const char *val, size_t len, void *ctx)
{
	struct hdr_find *h = ctx;
	h->val = xstrndup(val, len);
	return 1;
}
static char *header_first(struct sv_mail *m, const char *name, int raw)
{
	struct hdr_find h = {NULL};
	sv_mail_header(m, name, raw, first_cb, &h);
	return h.val;
}

struct addr_seek {
	char *const *mine;
	size_t nmine;
	int found;
};
static int seek_cb(const char *local, size_t llen, const char *domain, size_t dlen, void *ctx)
{
	struct addr_seek *s = ctx;
	if (domain == NULL)
		return 0; /* not an address */
	char a[600];
	snprintf(a, sizeof(a), "%.*s@%.*s", (int)llen, local, (int)dlen, domain);
	for (size_t i = 0; i < s->nmine; i++)
		if (strcasecmp(a, s->mine[i]) == 0)
			s->found = 1;
	return s->found;
}
static int hdr_seek_cb(const char *val, size_t len, void *ctx)
{
	return sv_addresses(val, len, seek_cb, ctx);
}

/* The address without its +detail. */
static void strip_detail(const char *a, char *out, size_t size)
{
	const char *at = strrchr(a, '@');
	const char *plus = strstr(a, ss.delimiter);
	if (at && plus && plus < at)
		snprintf(out, size, "%.*s%s", (int)(plus - a), a, at);
	else
		mk_strlcpy(out, a, size);
}

/* Who never gets an automatic reply: RFC 5230 4.5, RFC 3834 2. */
static const char *vacation_refused(struct sv_mail *m, const char *from)
{
	if (from[0] == '\0')
		return "the null sender";
	const char *at = strrchr(from, '@');
	size_t ll = at ? (size_t)(at - from) : strlen(from);
	static const char *const bots[] = {"mailer-daemon", "listserv",	    "majordomo",
					   "mailer",	    "postmaster",   "noreply",
					   "no-reply",	    "do-not-reply", "donotreply"};
	for (size_t i = 0; i < sizeof(bots) / sizeof(bots[0]); i++)
		if (strlen(bots[i]) == ll && strncasecmp(from, bots[i], ll) == 0)
			return "a robot's address";
	if ((ll >= 6 && strncasecmp(from, "owner-", 6) == 0) ||
	    (ll >= 8 && strncasecmp(from + ll - 8, "-request", 8) == 0) ||
	    (ll >= 8 && strncasecmp(from + ll - 8, "-bounces", 8) == 0))
		return "a list's address";
	char *v = header_first(m, "auto-submitted", 1);
	int auto_sub = v != NULL && strncasecmp(v, "no", 2) != 0;
	free(v);
	if (auto_sub)
		return "an automatic message (Auto-Submitted)";
	v = header_first(m, "precedence", 1);
	int bulk = v != NULL && (strcasecmp(v, "bulk") == 0 || strcasecmp(v, "list") == 0 ||
				 strcasecmp(v, "junk") == 0);
	free(v);
	if (bulk)
		return "bulk or list mail (Precedence)";
	static const char *const list_headers[] = {
	    "list-id",	      "list-post",  "list-unsubscribe", "list-help",
	    "list-subscribe", "list-owner", "list-archive"};
	for (size_t i = 0; i < sizeof(list_headers) / sizeof(list_headers[0]); i++)
		if (sv_mail_header_count(m, list_headers[i]) > 0)
			return "list mail (List-* header)";
	v = header_first(m, "x-auto-response-suppress", 1);
	int supp = v != NULL && (strcasestr(v, "all") || strcasestr(v, "oof"));
	free(v);
	if (supp)
		return "X-Auto-Response-Suppress";
	return NULL;
}

static void vacation_plan(struct sieve_plan *p, struct store *store, const struct sieve_action *a,
			  struct sv_mail *m, const char *env_from, const char *env_to, int64_t now)
{
	char from[600], mine_to[600], mine_plain[600];
	const char *why;
	mk_strlcpy(from, env_from, sizeof(from));
	if (!ss.vacation) {
		summary_add(p, "vacation not sent (sieve_vacation = no)", NULL, "");
		return;
	}
	if ((why = vacation_refused(m, from)) != NULL) {
		summary_add(p, "vacation not sent to ", why, "");
		return;
	}
	/* RFC 5230 4.5: only when one of the user's addresses is a recipient in the header */
	mk_strlcpy(mine_to, env_to, sizeof(mine_to));
	strip_detail(env_to, mine_plain, sizeof(mine_plain));
	char **mine = xcalloc(a->naddresses + 3, sizeof(char *));
	size_t nmine = 0;
	mine[nmine++] = mine_to;
	mine[nmine++] = mine_plain;
	for (size_t i = 0; i < a->naddresses; i++)
		mine[nmine++] = a->addresses[i];
	for (size_t i = 0; i < nmine; i++)
		if (strcasecmp(from, mine[i]) == 0) {
			free(mine);
			summary_add(p, "vacation not sent to ", "the user's own address", "");
			return;
		}
	struct addr_seek seek = {mine, nmine, 0};
	static const char *const rh[] = {"to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc"};
	for (size_t i = 0; i < sizeof(rh) / sizeof(rh[0]) && !seek.found; i++)
		sv_mail_header(m, rh[i], 0, hdr_seek_cb, &seek);
	free(mine);
	if (!seek.found) {
		summary_add(p, "vacation not sent: ", "the user is not in To/Cc/Bcc", "");
		return;
	}
	/* once per period per sender and handle */
	uint8_t h[STORE_HASH_LEN];
	struct buf k;
	buf_init(&k, 200000);
	buf_printf(&k, "%u\n", p->user_id);
	for (const char *c = from; *c; c++)
		buf_printf(&k, "%c", tolower((unsigned char)*c));
	if (a->handle)
		buf_printf(&k, "\nh:%s", a->handle);
	else
		buf_printf(&k, "\nr:%s\ns:%s\nf:%s\nm:%d", a->reason ? a->reason : "",
			   a->subject ? a->subject : "", a->from ? a->from : "", a->mime);
	store_hash(k.data, k.len, h);
	buf_free(&k);
	struct store_txn *txn = NULL;
	int seen = 0;
	if (store_read_begin(store, &txn) == 0) {
		seen = sieve_memory_check(txn, p->user_id, SIEVE_MEM_VACATION, h, now);
		store_read_end(&txn);
	}
	if (seen) {
		summary_add(p, "vacation not sent to <", from, ">: answered within the period");
		return;
	}
	/* the reply (RFC 5230 5, RFC 3834 3) */
	char *subj = header_first(m, "subject", 0);
	char *msgid = header_first(m, "message-id", 1);
	char *refs = header_first(m, "references", 1);
	char date[64], id[300];
	time_t tt = (time_t)now;
	struct tm tm;
	localtime_r(&tt, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	snprintf(id, sizeof(id), "<vacation.%lld.%02x%02x%02x%02x@%s>", (long long)now, h[0], h[1],
		 h[2], h[3], ss.hostname);
	struct buf r;
	buf_init(&r, 256 * 1024);
	buf_printf(&r, "From: %s\r\nTo: <%s>\r\n", a->from ? a->from : mine_plain, from);
	if (a->subject)
		buf_printf(&r, "Subject: %s\r\n", a->subject);
	else
		buf_printf(&r, "Subject: Auto: %s\r\n", subj ? subj : "your message");
	buf_printf(&r, "Date: %s\r\nMessage-ID: %s\r\n", date, id);
	if (msgid) {
		buf_printf(&r, "In-Reply-To: %s\r\n", msgid);
		buf_printf(&r, "References: %s%s%s\r\n", refs ? refs : "", refs ? " " : "", msgid);
	}
	buf_printf(&r, "Auto-Submitted: auto-replied (vacation)\r\nMIME-Version: 1.0\r\n");
	if (!a->mime)
		buf_printf(&r, "Content-Type: text/plain; "
			       "charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n");
	/* the reason, with bare LF made CRLF */
	for (const char *c = a->reason ? a->reason : ""; *c; c++) {
		if (*c == '\n' && (c == a->reason || c[-1] != '\r'))
			buf_append(&r, "\r", 1);
		buf_append(&r, c, 1);
	}
	if (r.len < 2 || r.data[r.len - 1] != '\n')
		buf_append(&r, "\r\n", 2);
	free(subj);
	free(msgid);
	free(refs);
	p->vacation = r.data;
	p->vacation_len = r.len;
	p->vacation_to = xstrdup(from);
	memcpy(p->vacation_key, h, sizeof(h));
	p->vacation_until = now + a->period;
	summary_add(p, "vacation to <", from, ">");
}

/* A redirect (RFC 5228 4.2), queued by sieve_finish: the message's bytes as
 * stored, the envelope sender kept (<> stays <>), as Pigeonhole does by
 * default (sieve_redirect_envelope_from = sender). A message (by Message-ID,
 * else its bytes) is redirected to an address once per
 * SIEVE_REDIRECT_PERIOD: in a loop it comes back and is kept instead, as
 * Pigeonhole's duplicate check (sieve_redirect_duplicate_period, 12h) but
 * keeping rather than dropping it. 0 if planned, -1 if not (keep it). */
#define SIEVE_REDIRECT_PERIOD (12 * 3600)
static int redirect_plan(struct sieve_plan *p, struct store *store, const char *to,
			 struct sv_mail *m, const void *data, size_t len)
{
	uint8_t h[STORE_HASH_LEN];
	struct buf k;
	char *msgid = header_first(m, "message-id", 1);
	buf_init(&k, 8192);
	buf_printf(&k, "%u\n", p->user_id);
	for (const char *c = to; *c; c++)
		buf_printf(&k, "%c", tolower((unsigned char)*c));
	if (msgid != NULL && msgid[0])
		buf_printf(&k, "\nid:%s", msgid);
	else {
		uint8_t dh[STORE_HASH_LEN];
		store_hash(data, len, dh);
		buf_printf(&k, "\nh:");
		for (size_t i = 0; i < STORE_HASH_LEN; i++)
			buf_printf(&k, "%02x", dh[i]);
	}
	free(msgid);
	store_hash(k.data, k.len, h);
	buf_free(&k);
	for (size_t i = 0; i < p->nredirect; i++)
		if (memcmp(p->redirect_key[i], h, STORE_HASH_LEN) == 0)
			return 0; /* the same address twice: one copy */
	struct store_txn *txn = NULL;
	int seen = 0;
	if (p->user_id != 0 && store_read_begin(store, &txn) == 0) {
		seen =
		    sieve_memory_check(txn, p->user_id, SIEVE_MEM_REDIRECT, h, (int64_t)time(NULL));
		store_read_end(&txn);
	}
	if (seen) {
		summary_add(p, "redirect to <", to,
			    "> not done: redirected there before (a loop?), kept");
		return -1;
	}
	p->redirect_to = xreallocarray(p->redirect_to, p->nredirect + 1, sizeof(char *));
	p->redirect_key =
	    xreallocarray(p->redirect_key, p->nredirect + 1, sizeof(*p->redirect_key));
	p->redirect_to[p->nredirect] = xstrdup(to);
	memcpy(p->redirect_key[p->nredirect], h, STORE_HASH_LEN);
	p->nredirect++;
	p->data = data;
	p->len = len;
	summary_add(p, "redirect to <", to, ">");
	return 0;
}

/* --- the plan --------------------------------------------------------------------------- */

static int compile_into(struct sieve_script ***v, size_t *n, size_t *cap, const char *text,
			size_t len, const char *name, struct sieve_error *err)
{
	struct sieve_script *s;
	if (sieve_compile(text, len, ss.max_size, &s, err) < 0) {
		mk_strlcpy(err->script, name, sizeof(err->script));
		return -1;
	}
	*ARRAY_PUSH(*v, *n, *cap) = s;
	return 0;
}

void sieve_plan(struct store *store, const struct store_rcpt *rcpt, const void *data, size_t len,
		const char *env_from, const char *env_to, const char *qid, struct sieve_plan *p)
{
	struct sieve_script **scripts = NULL;
	size_t nscripts = 0, cap = 0;
	struct env_ctx ec = {.store = store};
	char active[SIEVE_NAME_MAX + 1] = "";
	char *user_text = NULL;
	size_t user_len = 0;
	struct sieve_error err;
	int64_t now = (int64_t)time(NULL);

	memset(p, 0, sizeof(*p));
	mk_strlcpy(p->user, rcpt->user, sizeof(p->user));
	mk_strlcpy(p->env_from, env_from ? env_from : "", sizeof(p->env_from));
	mk_strlcpy(p->qid, qid ? qid : "", sizeof(p->qid));
	if (!ss.enabled)
		goto keep;
	/* the user's active script */
	struct store_txn *txn = NULL;
	struct store_user u;
	if (store_read_begin(store, &txn) == 0) {
		if (store_user_get(txn, rcpt->user, &u) == 0) {
			const char *t;
			p->user_id = ec.user_id = u.id;
			if (sieve_script_active(txn, u.id, active) == 0 &&
			    sieve_script_get(txn, u.id, active, &t, &user_len) == 0)
				user_text = xmemdup(t, user_len ? user_len : 1);
		}
		store_read_end(&txn);
	}
	if (user_text == NULL && ss.nbefore == 0 && ss.nafter == 0)
		goto keep;
	/* global before, the user's, global after */
	for (int pass = 0; pass < 3; pass++) {
		size_t ng = pass == 0 ? ss.nbefore : pass == 2 ? ss.nafter : 0;
		for (size_t i = 0; i < ng; i++) {
			const char *name = pass == 0 ? ss.before[i] : ss.after[i];
			char *text;
			size_t tl;
			if (read_global(name, &text, &tl) < 0) {
				log_warn(
				    "sieve: global script %s/%s.sieve cannot be read: %s (skipped)",
				    ss.global_dir, name,
				    errno == EFBIG ? "larger than sieve_max_script_size"
						   : strerror(errno));
				continue;
			}
			if (compile_into(&scripts, &nscripts, &cap, text, tl, name, &err) < 0) {
				char e[400];
				err.script[0] = '\0'; /* the path says which */
				sieve_error_format(&err, e, sizeof(e));
				log_warn("sieve: global script %s/%s.sieve: %s (skipped)",
					 ss.global_dir, name, e);
			}
			free(text);
		}
		if (pass == 1 && user_text != NULL &&
		    compile_into(&scripts, &nscripts, &cap, user_text, user_len, active, &err) <
			0) {
			char e[400];
			sieve_error_format(&err, e, sizeof(e));
			fail_to_inbox(p, e);
			goto out;
		}
	}
	if (nscripts == 0)
		goto keep;
	/* the spam filter's verdict, for spamtest */
	int spam = -1;
	const char *prob = strstr(rcpt->hook_meta, "spam.probability=");
	if (prob != NULL) {
		double d = strtod(prob + 17, NULL);
		spam = d < 0 ? 0 : d > 1 ? 100 : (int)(d * 100 + 0.5);
	}
	struct sieve_msg msg = {.data = data,
				.len = len,
				.env_from = env_from ? env_from : "",
				.env_to = env_to ? env_to : "",
				.user = rcpt->user,
				.spam_percent = spam,
				.virus_value = 0,
				.now = now,
				.subaddress_sep = ss.delimiter};
	struct sieve_env env = {.mailbox_exists = env_mailbox_exists,
				.load = env_load,
				.ctx = &ec,
				.max_size = ss.max_size};
	struct sieve_result res;
	p->ran = 1;
	if (sieve_execute(scripts, nscripts, &msg, &env, &res) < 0) {
		char e[400];
		if (res.err.script[0] == '\0' && user_text != NULL)
			mk_strlcpy(res.err.script, active, sizeof(res.err.script));
		sieve_error_format(&res.err, e, sizeof(e));
		sieve_result_free(&res);
		fail_to_inbox(p, e);
		goto out;
	}
	struct sv_mail *m = sv_mail_open(data, len);
	int keep_default = res.implicit_keep;
	for (size_t i = 0; i < res.n && !p->failed; i++) {
		const struct sieve_action *a = &res.actions[i];
		switch (a->kind) {
		case SIEVE_KEEP:
			target_add(p, "", a->flags, 0);
			summary_add(p, "keep", NULL, "");
			break;
		case SIEVE_FILEINTO: {
			int exists = env_mailbox_exists(&ec, a->mailbox);
			if (!exists && !a->create && !ss.autocreate) {
				char e[400];
				snprintf(
				    e, sizeof(e),
				    "fileinto \"%.200s\": there is no such mailbox (use :create)",
				    a->mailbox);
				fail_to_inbox(p, e);
				break;
			}
			if (target_add(p, a->mailbox, a->flags, !exists) < 0) {
				char e[400];
				snprintf(e, sizeof(e),
					 "fileinto \"%.200s\": not a valid mailbox name",
					 a->mailbox);
				fail_to_inbox(p, e);
				break;
			}
			summary_add(p, "fileinto ", a->mailbox, "");
			break;
		}
		case SIEVE_DISCARD:
			summary_add(p, "discard", NULL, "");
			break;
		case SIEVE_REDIRECT:
			if (redirect_plan(p, store, a->address, m, data, len) < 0)
				keep_default = 1; /* not redirected: kept rather than lost */
			break;
		case SIEVE_REJECT:
		case SIEVE_EREJECT:
			p->reject = a->kind == SIEVE_REJECT ? 1 : 2;
			log_printable(p->reason, sizeof(p->reason), a->reason ? a->reason : "",
				      a->reason ? strlen(a->reason) : 0);
			for (char *c = p->reason; *c; c++)
				if (*c == '\r' || *c == '\n')
					*c = ' ';
			summary_add(p, "reject (", p->reason, ")");
			break;
		case SIEVE_VACATION:
			if (p->user_id != 0)
				vacation_plan(p, store, a, m, msg.env_from, msg.env_to, now);
			break;
		}
	}
	sv_mail_free(&m);
	if (!p->failed && keep_default) {
		target_add(p, "", res.keep_flags, 0);
		summary_add(p, "", res.implicit_keep ? "implicit " : "", "keep");
	}
	sieve_result_free(&res);
	goto out;
keep:
	target_add(p, "", NULL, 0);
out:
	for (size_t i = 0; i < nscripts; i++)
		sieve_script_free(&scripts[i]);
	free(scripts);
	for (size_t i = 0; i < ec.ntexts; i++)
		free(ec.texts[i]);
	free(ec.texts);
	free(user_text);
	if (p->failed)
		log_warn_as("local", "%s: sieve: user=<%s>: %s; the message goes to INBOX", p->qid,
			    p->user, p->error);
	else if (p->ran)
		log_info_as("local", "%s: sieve: user=<%s>: %s", p->qid, p->user, p->summary);
}

/* --- after the commit -------------------------------------------------------------------- */

/* One queue entry: the bytes as a blob, the queue's reference to it. */
static int queue_one(struct store_txn *txn, const void *data, size_t len, const char *from,
		     const char *to, char qid_r[QUEUE_ID_MAX])
{
	uint8_t h[STORE_HASH_LEN];
	const char *rcpts[1] = {to};
	struct queue_add_info info = {.client = "local"};
	int rc;
	if ((rc = store_blob_put(txn, data, len, h)) != 0 || (rc = queue_new_id(txn, qid_r)) != 0)
		return rc;
	return queue_add(txn, qid_r, h, from, rcpts, 1, (int64_t)time(NULL), &info);
}

int sieve_vacation_send(struct store_txn *txn, const char *qid, const char *to, const char *data,
			size_t len)
{
	char pto[300], q[QUEUE_ID_MAX];
	int rc = queue_one(txn, data, len, "", to, q);
	if (rc != 0)
		return rc;
	log_printable(pto, sizeof(pto), to, strlen(to));
	log_info_as("local", "%s: sieve: vacation reply to <%s>, %zu bytes, queued as %s", qid, pto,
		    len, q);
	return 0;
}

struct finish_ctx {
	struct sieve_plan *p;
	uint8_t err_key[STORE_HASH_LEN];
	int notify;
	int64_t now;
};

static int notice_add(struct store_txn *txn, struct sieve_plan *p, int64_t now)
{
	struct store_mailbox inbox;
	char date[64];
	time_t tt = (time_t)now;
	struct tm tm;
	struct buf b;
	int rc;

	if ((rc = store_mailbox_get(txn, p->user_id, "INBOX", &inbox)) != 0)
		return rc;
	localtime_r(&tt, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	buf_init(&b, 16384);
	buf_printf(
	    &b,
	    "From: Mail filter <MAILER-DAEMON@%s>\r\nTo: %s\r\nSubject: Your mail filter (Sieve) "
	    "failed\r\n"
	    "Date: %s\r\nMessage-ID: <sieve.%lld.%u@%s>\r\nAuto-Submitted: auto-generated\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
	    "Your Sieve rules could not sort a message (queue id %s):\r\n\r\n    %s\r\n\r\n"
	    "The message was delivered to your INBOX, as if there were no rules; no\r\n"
	    "mail is lost. Correct the script with your mail program's filter editor\r\n"
	    "(ManageSieve) or by editing the file .sieve in your mail folder on the\r\n"
	    "mount. You are told once about each new error.\r\n",
	    ss.hostname, p->user, date, (long long)now, p->user_id, ss.hostname, p->qid, p->error);
	struct store_msg_new m = {.flags = STORE_F_RECENT, .no_quota = 1};
	if ((rc = store_blob_put(txn, b.data, b.len, m.hash)) == 0)
		rc = store_msg_add(txn, inbox.id, &m, NULL);
	buf_free(&b);
	return rc;
}

static int finish_fn(struct store_txn *txn, void *arg)
{
	struct finish_ctx *f = arg;
	struct sieve_plan *p = f->p;
	int rc;
	if (p->vacation != NULL) {
		if ((rc = sieve_memory_expire(txn, p->user_id, SIEVE_MEM_VACATION, f->now)) != 0 ||
		    (rc = sieve_memory_put(txn, p->user_id, SIEVE_MEM_VACATION, p->vacation_key,
					   p->vacation_until)) != 0 ||
		    (rc = sieve_vacation_send(txn, p->qid, p->vacation_to, p->vacation,
					      p->vacation_len)) != 0)
			return rc;
	}
	if (p->nredirect > 0 && p->user_id != 0 &&
	    (rc = sieve_memory_expire(txn, p->user_id, SIEVE_MEM_REDIRECT, f->now)) != 0)
		return rc;
	for (size_t i = 0; i < p->nredirect; i++) {
		char q[QUEUE_ID_MAX], pto[300], pfrom[300];
		if (p->user_id != 0 &&
		    (rc = sieve_memory_put(txn, p->user_id, SIEVE_MEM_REDIRECT, p->redirect_key[i],
					   f->now + SIEVE_REDIRECT_PERIOD)) != 0)
			return rc;
		if ((rc = queue_one(txn, p->data, p->len, p->env_from, p->redirect_to[i], q)) != 0)
			return rc;
		log_printable(pto, sizeof(pto), p->redirect_to[i], strlen(p->redirect_to[i]));
		log_printable(pfrom, sizeof(pfrom), p->env_from, strlen(p->env_from));
		log_info_as("local",
			    "%s: sieve: redirect to <%s> from <%s>, %zu bytes, queued as %s",
			    p->qid, pto, pfrom, p->len, q);
	}
	if (f->notify) {
		if (sieve_memory_check(txn, p->user_id, SIEVE_MEM_ERROR, f->err_key, f->now))
			return 0;
		if ((rc = sieve_memory_put(txn, p->user_id, SIEVE_MEM_ERROR, f->err_key,
					   f->now + SIEVE_NOTICE_PERIOD)) != 0 ||
		    (rc = notice_add(txn, p, f->now)) != 0)
			return rc;
	}
	return 0;
}

int sieve_finish(struct store *store, struct sieve_plan *p)
{
	struct finish_ctx f = {.p = p, .now = (int64_t)time(NULL)};
	if (p->nredirect == 0 && (p->user_id == 0 || (p->vacation == NULL && !p->failed)))
		return 0;
	if (p->failed) {
		char k[700];
		int n = snprintf(k, sizeof(k), "%u\n%s", p->user_id, p->error);
		store_hash(k, (size_t)n, f.err_key);
		struct store_txn *txn = NULL;
		f.notify = 1;
		if (store_read_begin(store, &txn) == 0) {
			f.notify =
			    !sieve_memory_check(txn, p->user_id, SIEVE_MEM_ERROR, f.err_key, f.now);
			store_read_end(&txn);
		}
		if (!f.notify && p->vacation == NULL && p->nredirect == 0)
			return 0;
	}
	int rc = store_write(store, finish_fn, &f);
	if (rc != 0)
		log_warn_as("local",
			    "%s: sieve: user=<%s>: cannot queue the vacation reply or the "
			    "redirects, or record the error notice: %s",
			    p->qid, p->user, store_strerror(rc));
	return rc;
}

void sieve_plan_keep(struct sieve_plan *p)
{
	if (!p->reject)
		return;
	p->reject = 0;
	target_add(p, "", NULL, 0);
	log_info_as(
	    "local",
	    "%s: sieve: user=<%s>: the rejection cannot be said to the client (one reply for "
	    "several recipients): kept instead",
	    p->qid, p->user);
}

void sieve_plan_free(struct sieve_plan *p)
{
	free(p->targets);
	free(p->vacation);
	free(p->vacation_to);
	for (size_t i = 0; i < p->nredirect; i++)
		free(p->redirect_to[i]);
	free(p->redirect_to);
	free(p->redirect_key);
	memset(p, 0, sizeof(*p));
}
