/* import_imap — `mailkeep import USER imaps://login@host[:port]`: every
 * folder of an IMAP server into the user's mailboxes.
 *
 * One run:
 *   1. connect (TLS verified; imap:// must offer STARTTLS), log in with a
 *      password or an OAuth2 access token, ENABLE CONDSTORE if offered;
 *   2. LIST every folder; special-use folders (\Sent \Drafts \Junk \Trash
 *      \Archive, or their usual names) go into the user's own; \All (Gmail's
 *      All Mail) goes last, into Archive, and brings only what no other
 *      mailbox of the user holds; \Flagged and \Important (Gmail's Starred and
 *      Important: the same messages again) are not copied as folders;
 *   3. for each folder, EXAMINE it (read-only: nothing changes on the
 *      server), compare UIDVALIDITY and HIGHESTMODSEQ with what the store
 *      recorded (index/import_state.h), list the UIDs above the last one
 *      copied, and fetch them in chunks, several commands in flight;
 *   4. each message goes to the importer (tools/importer.h) with its flags,
 *      keywords and internal date; the record of how far each folder got is
 *      written by the importer's commit hook, in the same transaction as the
 *      messages: a run killed at any point resumes where the store says.
 *
 * Above the highest UID an earlier run took, a message is new by definition
 * and is added even if the mailbox holds the same bytes (a folder that
 * really holds a message twice gets it twice). Below it, above the UID under
 * which every message was taken (a server may answer pipelined FETCHes out
 * of order), and for a whole folder without a record (a first run, --full, a
 * changed UIDVALIDITY, until that folder is finished), messages are compared
 * by content, as every other import source is: nothing already there is
 * added again.
 *
 * The server's folder names are modified UTF-7 with its own hierarchy
 * delimiter; ours are UTF-8 with '.'. A '.' inside a name (with a '/'
 * delimiter) becomes U+2024 ONE DOT LEADER and a '/' U+2215 DIVISION SLASH,
 * so "Lists/dev.team" is "Lists" > "dev․team" here, not three levels.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "index/import_state.h"
#include "lib/utf7.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "tools/cli.h"
#include "tools/imapc.h"
#include "tools/import_imap.h"
#include "tools/importer.h"

#define CHUNK_MSGS 250
#define CHUNK_BYTES (16u << 20)
#define WINDOW 4	  /* FETCH commands in flight */
#define RETRIES 8	  /* reconnections in a row without progress */
#define BACKOFF_MAX 300.0 /* seconds */
#define SECRET_MAX 8192

enum folder_kind { FK_NORMAL, FK_ALL, FK_SKIP };

struct uidsize {
	uint32_t uid;
	uint32_t size;
};

/* A message whose flags changed on the server since the last run. */
struct flagchange {
	uint32_t uid;
	uint32_t flags;
	char keywords[STORE_KEYWORDS_MAX];
};

struct folder {
	char wire[1024];		 /* the server's name (modified UTF-7) */
	char target[STORE_NAME_MAX + 1]; /* ours */
	char shown[STORE_NAME_MAX + 1];	 /* the server's name in UTF-8, for messages */
	uint32_t special;		 /* STORE_SU_* of the source folder */
	enum folder_kind kind;
	const char *why; /* FK_SKIP: why */
	int noselect;
	/* progress, committed by the importer's hook */
	struct import_state st; /* how far it got: the record, then this run */
	int dirty;
	int prepared;		    /* listed: uids holds what is to be fetched */
	uint32_t uidvalidity_now;   /* from EXAMINE */
	uint64_t exists;	    /* from EXAMINE */
	uint32_t uidnext;	    /* from EXAMINE, 0 if not said */
	uint64_t modseq;	    /* HIGHESTMODSEQ from EXAMINE, 0 if none */
	uint64_t listed_modseq;	    /* ... when the UIDs were listed */
	struct uidsize *uids;	    /* to fetch, ascending */
	uint8_t *taken;		    /* per uids[i]: in the importer (or gone from the server) */
	size_t nuids, prefix;	    /* uids[0..prefix) are all taken */
	uint32_t resume_hi;	    /* the record's hi_uid when the run began */
	char srcid[17];		    /* names (server, login, folder) in our messages' metadata */
	struct flagchange *changes; /* CONDSTORE: flags changed on the server since */
	size_t nchanges;
	uint64_t bytes;
	int failed;
};

struct imap_run {
	struct cli *cli;
	struct store *store;
	struct importer *imp;
	struct imapc c;
	struct imapc_opts o;
	char host[256];
	char login[512];
	char secret[SECRET_MAX];
	int oauth2;
	const char *oauth2_mech; /* --oauth2-mechanism, or NULL: what the server offers */
	const char *prefix;	 /* --mailbox: every folder under it */
	char source[1024];	 /* "imaps://login@host:port": the key of the records */
	char ns_prefix[256];
	char delim_of_prefix;
	struct folder *folders;
	size_t nfolders;
	int condstore, gmail, full, quiet;
	char special_name[8][STORE_NAME_MAX + 1]; /* our mailbox per STORE_SU_ bit index */
	/* progress */
	struct progress prog;
	uint64_t total_msgs, total_bytes, done_msgs, done_bytes;
	uint64_t elsewhere;	/* \All messages another mailbox holds */
	uint64_t flags_updated; /* messages whose flags followed the server's */
	/* limits */
	double max_rate;
	uint64_t max_bytes;
	double t0;
	int stopped_by_limit;
	int throttled;
	double window_pause;
	int retries;
	int fatal;
};

/* --- options and the URL ------------------------------------------------------ */

static int parse_size(const char *s, uint64_t *v_r)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s)
		return -1;
	switch (tolower((unsigned char)*end)) {
	case 'k':
		v <<= 10;
		end++;
		break;
	case 'm':
		v <<= 20;
		end++;
		break;
	case 'g':
		v <<= 30;
		end++;
		break;
	default:
		break;
	}
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end != '\0')
		return -1;
	*v_r = v;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes in into out. */
static int pct_decode(const char *in, size_t len, char *out, size_t outsize)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char ch = in[i];
		if (ch == '%') {
			int a, b;
			if (i + 2 >= len + 0 || (a = hexval(in[i + 1])) < 0 ||
			    (b = hexval(in[i + 2])) < 0)
				return -1;
			ch = (char)(a * 16 + b);
			i += 2;
		}
		if (ch == '\0' || o + 1 >= outsize)
			return -1;
		out[o++] = ch;
	}
	out[o] = '\0';
	return 0;
}

int import_imap_is_url(const char *s)
{
	return strncasecmp(s, "imaps://", 8) == 0 || strncasecmp(s, "imap://", 7) == 0;
}

/* imap[s]://login@host[:port][/] */
static int parse_url(struct imap_run *r, const char *url)
{
	int tls = strncasecmp(url, "imaps://", 8) == 0;
	const char *p = url + (tls ? 8 : 7), *at, *hostp, *end;
	uint64_t port = tls ? 993 : 143;

	end = p + strcspn(p, "/?#");
	at = NULL;
	for (const char *q = p; q < end; q++)
		if (*q == '@')
			at = q; /* the last '@': a login may be an address */
	if (at == NULL || at == p) {
		cli_error(
		    "import: %s: give the login in the URL: imaps://LOGIN@HOST (an '@' in the "
		    "login may stay as it is or be written %%40)",
		    url);
		return -1;
	}
	if (pct_decode(p, (size_t)(at - p), r->login, sizeof(r->login)) < 0) {
		cli_error("import: %s: the login is not valid", url);
		return -1;
	}
	if (strchr(r->login, ':') != NULL) {
		cli_error("import: %s: no password in the URL, please (it would be seen in the "
			  "process list): give --password-file, or type it when asked",
			  url);
		return -1;
	}
	hostp = at + 1;
	const char *colon = NULL, *hend = end;
	if (*hostp == '[') {
		const char *rb = memchr(hostp, ']', (size_t)(end - hostp));
		if (rb == NULL) {
			cli_error("import: %s: unbalanced [ in the host", url);
			return -1;
		}
		if (rb + 1 < end && rb[1] == ':')
			colon = rb + 1;
		else if (rb + 1 != end) {
			cli_error("import: %s: cannot read the host", url);
			return -1;
		}
		hostp++;
		hend = rb;
	} else {
		colon = memchr(hostp, ':', (size_t)(end - hostp));
		if (colon != NULL)
			hend = colon;
	}
	if (hend == hostp || (size_t)(hend - hostp) >= sizeof(r->host)) {
		cli_error("import: %s: no host", url);
		return -1;
	}
	memcpy(r->host, hostp, (size_t)(hend - hostp));
	r->host[hend - hostp] = '\0';
	if (colon != NULL) {
		char num[16];
		size_t n = (size_t)(end - colon - 1);
		if (n == 0 || n >= sizeof(num)) {
			cli_error("import: %s: bad port", url);
			return -1;
		}
		memcpy(num, colon + 1, n);
		num[n] = '\0';
		if (mk_parse_u64(num, 1, 65535, &port) < 0) {
			cli_error("import: %s: bad port '%s'", url, num);
			return -1;
		}
	}
	if (*end != '\0' && strcmp(end, "/") != 0) {
		cli_error("import: %s: only imaps://LOGIN@HOST[:PORT] is understood (every folder "
			  "is copied)",
			  url);
		return -1;
	}
	for (char *h = r->host; *h != '\0'; h++)
		*h = (char)tolower((unsigned char)*h);
	r->o.host = r->host;
	r->o.port = (unsigned)port;
	r->o.implicit_tls = tls;
	snprintf(r->source, sizeof(r->source), "%s://%s@%s:%u", tls ? "imaps" : "imap", r->login,
		 r->host, (unsigned)port);
	return 0;
}

/* --- folder names ---------------------------------------------------------------- */

/* Appends s to out (at *o), with '.' -> U+2024 and '/' -> U+2215 unless the
 * character is the delimiter (which never reaches here). */
static int put_component(const char *s, size_t len, char *out, size_t outsize, size_t *o)
{
	if (len == 0) {
		s = "_";
		len = 1;
	}
	for (size_t i = 0; i < len; i++) {
		const char *rep = NULL;
		if (s[i] == '.')
			rep = "\xe2\x80\xa4"; /* U+2024 ONE DOT LEADER */
		else if (s[i] == '/')
			rep = "\xe2\x88\x95"; /* U+2215 DIVISION SLASH */
		else if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return -1;
		size_t n = rep != NULL ? strlen(rep) : 1;
		if (*o + n + 1 >= outsize)
			return -1;
		memcpy(out + *o, rep != NULL ? rep : s + i, n);
		*o += n;
	}
	out[*o] = '\0';
	return 0;
}

/* The store name of a server folder (UTF-8 name, the server's delimiter). */
static int map_name(const char *utf8, char delim, char *out, size_t outsize)
{
	size_t o = 0;
	const char *p = utf8;

	out[0] = '\0';
	if (strcasecmp(utf8, "INBOX") == 0) {
		mk_strlcpy(out, "INBOX", outsize);
		return 0;
	}
	for (;;) {
		const char *d = delim != '\0' ? strchr(p, delim) : NULL;
		size_t len = d != NULL ? (size_t)(d - p) : strlen(p);
		if (o > 0) {
			if (o + 2 >= outsize)
				return -1;
			out[o++] = STORE_MAILBOX_SEP;
		}
		if (o == 0 && len == 5 && strncasecmp(p, "INBOX", 5) == 0) {
			memcpy(out, "INBOX", 5);
			o = 5;
			out[o] = '\0';
		} else if (put_component(p, len, out, outsize, &o) < 0) {
			return -1;
		}
		if (d == NULL)
			break;
		p = d + 1;
	}
	return strlen(out) <= STORE_NAME_MAX ? 0 : -1;
}

static const struct {
	const char *attr;
	uint32_t su;
} special_attrs[] = {
    {"\\Sent", STORE_SU_SENT},	     {"\\Drafts", STORE_SU_DRAFTS},   {"\\Junk", STORE_SU_JUNK},
    {"\\Trash", STORE_SU_TRASH},     {"\\Archive", STORE_SU_ARCHIVE}, {"\\All", STORE_SU_ALL},
    {"\\Flagged", STORE_SU_FLAGGED},
};

/* Usual names of special folders on servers that do not say (RFC 6154 came late). */
static const struct {
	const char *name;
	uint32_t su;
} special_names[] = {
    {"Sent", STORE_SU_SENT},	       {"Sent Items", STORE_SU_SENT},
    {"Sent Messages", STORE_SU_SENT},  {"Sent Mail", STORE_SU_SENT},
    {"Drafts", STORE_SU_DRAFTS},       {"Draft", STORE_SU_DRAFTS},
    {"Junk", STORE_SU_JUNK},	       {"Spam", STORE_SU_JUNK},
    {"Junk E-mail", STORE_SU_JUNK},    {"Junk Email", STORE_SU_JUNK},
    {"Bulk Mail", STORE_SU_JUNK},      {"Trash", STORE_SU_TRASH},
    {"Deleted Items", STORE_SU_TRASH}, {"Deleted Messages", STORE_SU_TRASH},
    {"Bin", STORE_SU_TRASH},	       {"Archive", STORE_SU_ARCHIVE},
    {"Archives", STORE_SU_ARCHIVE},
};

static int su_index(uint32_t su)
{
	for (int i = 0; i < 8; i++)
		if (su == (1u << i))
			return i;
	return 0;
}

/* --- the commit hook: records written with the messages --------------------------- */

/* Runs inside each batch's write transaction: the record of every folder
 * this run touched, as far as what is queued goes (the messages queued and
 * the records are read at the same moment, so they agree). */

static int commit_state(struct store_txn *txn, uint32_t user_id, void *ctx)
{
	struct imap_run *r = ctx;
	int rc;

	for (size_t i = 0; i < r->nfolders; i++) {
		struct folder *f = &r->folders[i];
		if (!f->dirty)
			continue;
		if ((rc = import_state_put(txn, user_id, r->source, f->wire, &f->st)) != 0)
			return rc;
	}
	/* nothing is cleared here: the store may run this again (a batch that
	 * found the map full runs again once it grew), and a failed commit keeps
	 * none of it; a folder touched in this run is written with every batch */
	return 0;
}

/* --- connecting ----------------------------------------------------------------------- */

static int ns_cb(struct imapc *c, void *ctx)
{
	struct imap_run *r = ctx;
	const struct imapc_resp *p = &c->resp;

	if (p->status != IMAPC_DATA || !imapc_is_atom(p, p->first, "NAMESPACE"))
		return 0;
	/* (("INBOX." ".") ...) */
	const struct imapc_node *personal = imapc_node(p, p->nodes[p->first].next);
	if (personal == NULL || personal->type != IMAPC_LIST)
		return 0;
	const struct imapc_node *first = imapc_node(p, personal->first);
	if (first == NULL || first->type != IMAPC_LIST)
		return 0;
	if (imapc_copy(p, first->first, r->ns_prefix, sizeof(r->ns_prefix)) < 0)
		r->ns_prefix[0] = '\0';
	char d[4];
	int32_t dn = imapc_node(p, first->first) != NULL ? p->nodes[first->first].next : -1;
	r->delim_of_prefix = imapc_copy(p, dn, d, sizeof(d)) == 0 ? d[0] : '\0';
	return 0;
}

/* Connects and logs in. Returns 0, 1 if the login was refused (do not
 * retry), -1 on a network error. */
static int connect_login(struct imap_run *r)
{
	int rc;

	imapc_close(&r->c);
	if (imapc_connect(&r->c, &r->o) < 0)
		return -1;
	rc = r->oauth2 ? imapc_oauth2(&r->c, r->login, r->secret, r->oauth2_mech)
		       : imapc_login(&r->c, r->login, r->secret);
	if (rc != 0)
		return rc;
	r->gmail = imapc_has_cap(&r->c, "X-GM-EXT-1");
	r->condstore = imapc_has_cap(&r->c, "CONDSTORE") || imapc_has_cap(&r->c, "QRESYNC");
	if (r->condstore && imapc_has_cap(&r->c, "ENABLE") &&
	    (rc = imapc_cmd(&r->c, NULL, NULL, "ENABLE CONDSTORE")) < 0)
		return -1;
	if (imapc_has_cap(&r->c, "NAMESPACE") && (rc = imapc_cmd(&r->c, ns_cb, r, "NAMESPACE")) < 0)
		return -1;
	return 0;
}

/* --- LIST ------------------------------------------------------------------------------ */

static int list_cb(struct imapc *c, void *ctx)
{
	struct imap_run *r = ctx;
	const struct imapc_resp *p = &c->resp;
	struct folder f;
	char delim[8] = "";

	if (p->status != IMAPC_DATA || !imapc_is_atom(p, p->first, "LIST"))
		return 0;
	int32_t attrs = p->nodes[p->first].next;
	int32_t dn = attrs >= 0 ? p->nodes[attrs].next : -1;
	int32_t nn = dn >= 0 ? p->nodes[dn].next : -1;
	const struct imapc_node *a = imapc_node(p, attrs);
	if (a == NULL || a->type != IMAPC_LIST || nn < 0)
		return 0;
	memset(&f, 0, sizeof(f));
	if (imapc_copy(p, nn, f.wire, sizeof(f.wire)) < 0) {
		cli_warn("import: a folder name of the server is too long or holds a NUL: skipped");
		return 0;
	}
	if (p->nodes[dn].type != IMAPC_NIL && imapc_copy(p, dn, delim, sizeof(delim)) < 0)
		delim[0] = '\0';
	for (int32_t n = a->first; n >= 0; n = p->nodes[n].next) {
		if (imapc_is_atom(p, n, "\\Noselect") || imapc_is_atom(p, n, "\\NonExistent"))
			f.noselect = 1;
		for (size_t i = 0; i < sizeof(special_attrs) / sizeof(special_attrs[0]); i++)
			if (imapc_is_atom(p, n, special_attrs[i].attr))
				f.special |= special_attrs[i].su;
		if (imapc_is_atom(p, n, "\\Important"))
			f.kind = FK_SKIP, f.why = "\\Important (its messages are in other folders)";
	}
	/* a short name of (server, login, folder) for the messages' metadata */
	{
		uint8_t h[STORE_HASH_LEN];
		char key[sizeof(r->source) + sizeof(f.wire) + 1];
		size_t sl = strlen(r->source), wl = strlen(f.wire);
		memcpy(key, r->source, sl + 1);
		memcpy(key + sl + 1, f.wire, wl);
		store_hash(key, sl + 1 + wl, h);
		for (int i = 0; i < 8; i++)
			snprintf(f.srcid + 2 * i, 3, "%02x", h[i]);
	}
	/* the name in UTF-8 */
	if (utf7_to_utf8(f.wire, f.shown, sizeof(f.shown)) < 0)
		mk_strlcpy(f.shown, f.wire, sizeof(f.shown));
	/* under a personal namespace prefix ("INBOX." on Courier), names are ours without it */
	const char *rel = f.shown;
	size_t pl = strlen(r->ns_prefix);
	if (pl > 0 && strncmp(f.shown, r->ns_prefix, pl) == 0 && f.shown[pl] != '\0')
		rel = f.shown + pl;
	if (map_name(rel, delim[0], f.target, sizeof(f.target)) < 0) {
		f.kind = FK_SKIP;
		f.why = "the name cannot be a mailbox name here (too long or control characters)";
	}
	r->folders = xreallocarray(r->folders, r->nfolders + 1, sizeof(*r->folders));
	r->folders[r->nfolders++] = f;
	return 0;
}

static int folder_order(const void *a, const void *b)
{
	const struct folder *x = a, *y = b;
	/* \All last: it brings only what no other folder brought */
	if ((x->kind == FK_ALL) != (y->kind == FK_ALL))
		return x->kind == FK_ALL ? 1 : -1;
	if (strcasecmp(x->wire, "INBOX") == 0 || strcasecmp(y->wire, "INBOX") == 0)
		return strcasecmp(x->wire, "INBOX") == 0 ? -1 : strcasecmp(y->wire, "INBOX") != 0;
	return strcmp(x->wire, y->wire);
}

static int ours_special(const struct store_mailbox *mb, void *ctx)
{
	struct imap_run *r = ctx;
	for (int i = 0; i < 8; i++)
		if ((mb->special_use & (1u << i)) && r->special_name[i][0] == '\0')
			mk_strlcpy(r->special_name[i], mb->name, sizeof(r->special_name[i]));
	return 0;
}

/* Decides each folder's target: special-use onto ours, \All last. */
static void map_folders(struct imap_run *r)
{
	static const char *const defaults[8] = {"Sent",	   "Drafts",  "Junk", "Trash",
						"Archive", "Archive", "",     ""};
	uint32_t seen = 0;
	struct store_txn *txn = NULL;

	for (int i = 0; i < 8; i++)
		mk_strlcpy(r->special_name[i], defaults[i], sizeof(r->special_name[i]));
	for (int i = 0; i < 8; i++)
		r->special_name[i][0] = '\0';
	if (store_read_begin(r->store, &txn) == 0) {
		(void)store_mailbox_foreach(txn, importer_user_id(r->imp), ours_special, r);
		store_read_end(&txn);
	}
	for (int i = 0; i < 8; i++)
		if (r->special_name[i][0] == '\0')
			mk_strlcpy(r->special_name[i], defaults[i], sizeof(r->special_name[i]));
	/* \All goes into ours Archive */
	mk_strlcpy(r->special_name[su_index(STORE_SU_ALL)],
		   r->special_name[su_index(STORE_SU_ARCHIVE)], STORE_NAME_MAX + 1);

	for (size_t i = 0; i < r->nfolders; i++)
		seen |= r->folders[i].special;
	for (size_t i = 0; i < r->nfolders; i++) {
		struct folder *f = &r->folders[i];
		if (f->kind == FK_SKIP)
			continue;
		if (f->noselect) {
			f->kind = FK_SKIP;
			f->why = NULL; /* a level of the hierarchy: nothing to copy */
			continue;
		}
		if (f->special == 0 && strchr(f->target, STORE_MAILBOX_SEP) == NULL) {
			/* a top-level folder with a usual name, when no folder said it is that */
			for (size_t k = 0; k < sizeof(special_names) / sizeof(special_names[0]);
			     k++)
				if (strcasecmp(f->target, special_names[k].name) == 0 &&
				    !(seen & special_names[k].su))
					f->special = special_names[k].su;
		}
		if (f->special & STORE_SU_FLAGGED) {
			f->kind = FK_SKIP;
			f->why = "\\Flagged (its messages are in other folders, with the flag)";
			continue;
		}
		if (f->special & STORE_SU_ALL) {
			f->kind = FK_ALL;
			mk_strlcpy(f->target, r->special_name[su_index(STORE_SU_ALL)],
				   sizeof(f->target));
			continue;
		}
		for (int b = 0; b < 5; b++)
			if (f->special & (1u << b)) {
				mk_strlcpy(f->target, r->special_name[b], sizeof(f->target));
				break;
			}
	}
	for (size_t i = 0; i < r->nfolders && r->prefix != NULL; i++) {
		/* --mailbox P: INBOX is P, the others P.NAME (ours for special ones) */
		struct folder *f = &r->folders[i];
		char t[2 * STORE_NAME_MAX + 2];
		if (f->kind == FK_SKIP)
			continue;
		if (strcmp(f->target, "INBOX") == 0)
			snprintf(t, sizeof(t), "%s", r->prefix);
		else
			snprintf(t, sizeof(t), "%s%c%s", r->prefix, STORE_MAILBOX_SEP, f->target);
		if (strlen(t) > STORE_NAME_MAX) {
			f->kind = FK_SKIP;
			f->why = "the mailbox name would be too long";
			f->failed = 1;
			continue;
		}
		mk_strlcpy(f->target, t, sizeof(f->target));
	}
	if (r->nfolders > 1)
		qsort(r->folders, r->nfolders, sizeof(*r->folders), folder_order);
}

/* Creates the target mailboxes (empty folders are copied too) in one write;
 * a name the store refuses skips its folder. */
static int create_targets(struct store_txn *txn, void *ctx)
{
	struct imap_run *r = ctx;
	uint32_t uid = importer_user_id(r->imp);

	for (size_t i = 0; i < r->nfolders; i++) {
		struct folder *f = &r->folders[i];
		struct store_mailbox mb;
		int rc;
		if (f->kind == FK_SKIP)
			continue;
		rc = store_mailbox_get(txn, uid, f->target, &mb);
		if (rc == STORE_ENOTFOUND) {
			/* parents first, as a client's CREATE would make them */
			char parent[STORE_NAME_MAX + 1];
			mk_strlcpy(parent, f->target, sizeof(parent));
			for (char *d = strchr(parent, STORE_MAILBOX_SEP); d != NULL;
			     d = strchr(d + 1, STORE_MAILBOX_SEP)) {
				*d = '\0';
				if (strcasecmp(parent, "INBOX") != 0 &&
				    store_mailbox_get(txn, uid, parent, &mb) == STORE_ENOTFOUND)
					(void)store_mailbox_create(txn, uid, parent, 0, &mb);
				*d = STORE_MAILBOX_SEP;
			}
			rc = store_mailbox_create(txn, uid, f->target, 0, &mb);
		}
		if (rc == STORE_EINVAL || rc == STORE_EEXIST) {
			f->kind = FK_SKIP;
			f->why = "the store refuses the mailbox name";
			f->failed = 1;
			continue;
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* --- per folder: EXAMINE, list, fetch ------------------------------------------------- */

static int examine_cb(struct imapc *c, void *ctx)
{
	struct folder *f = ctx;
	const struct imapc_resp *p = &c->resp;

	if (p->status == IMAPC_DATA && imapc_is_atom(p, p->nodes[p->first].next, "EXISTS")) {
		int64_t n = imapc_number(p, p->first);
		f->exists = n > 0 ? (uint64_t)n : 0;
	}
	if (p->status == IMAPC_OK && p->code >= 0) {
		int32_t k = p->nodes[p->code].first, v = k >= 0 ? p->nodes[k].next : -1;
		int64_t n = imapc_number(p, v);
		if (imapc_is_atom(p, k, "UIDVALIDITY") && n > 0 && n <= UINT32_MAX)
			f->uidvalidity_now = (uint32_t)n;
		else if (imapc_is_atom(p, k, "UIDNEXT") && n > 0 && n <= UINT32_MAX)
			f->uidnext = (uint32_t)n;
		else if (imapc_is_atom(p, k, "HIGHESTMODSEQ") && n > 0)
			f->modseq = (uint64_t)n;
	}
	return 0;
}

/* EXAMINE (read-only: the server's \Seen and \Recent stay as they are). */
static int examine(struct imap_run *r, struct folder *f)
{
	char q[2100];

	if (imapc_quote(f->wire, q, sizeof(q)) < 0) {
		snprintf(r->c.err, sizeof(r->c.err), "the folder name holds a line break");
		return 1;
	}
	f->exists = 0;
	f->uidnext = 0;
	f->modseq = 0;
	f->uidvalidity_now = 0;
	return imapc_cmd(&r->c, examine_cb, f, "EXAMINE %s%s", q,
			 r->condstore ? " (CONDSTORE)" : "");
}

static int uid_cmp(const void *a, const void *b)
{
	const struct uidsize *x = a, *y = b;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

struct listing {
	struct folder *f;
	uint32_t from;
	size_t cap;
	int gmail_all;	   /* Gmail's All Mail: leave out what has a label */
	uint64_t labelled; /* ... so many */
};

/* 1 if a Gmail X-GM-LABELS list holds a label that is a folder (so the
 * message comes with that folder): anything but \Important, \Starred, \Muted. */
static int gmail_in_a_folder(const struct imapc_resp *p, int32_t list)
{
	const struct imapc_node *l = imapc_node(p, list);

	if (l == NULL || l->type != IMAPC_LIST)
		return 0;
	for (int32_t n = l->first; n >= 0; n = p->nodes[n].next) {
		const struct imapc_node *x = &p->nodes[n];
		if (x->type == IMAPC_NIL || x->len == 0)
			continue;
		if ((x->len == 10 && strncasecmp(x->s, "\\Important", 10) == 0) ||
		    (x->len == 8 && strncasecmp(x->s, "\\Starred", 8) == 0) ||
		    (x->len == 6 && strncasecmp(x->s, "\\Muted", 6) == 0))
			continue;
		return 1;
	}
	return 0;
}

static int list_uids_cb(struct imapc *c, void *ctx)
{
	struct listing *l = ctx;
	const struct imapc_resp *p = &c->resp;

	if (p->status != IMAPC_DATA || !imapc_is_atom(p, p->nodes[p->first].next, "FETCH"))
		return 0;
	int32_t items = p->nodes[p->nodes[p->first].next].next;
	int64_t uid = imapc_number(p, imapc_list_get(p, items, "UID"));
	int64_t size = imapc_number(p, imapc_list_get(p, items, "RFC822.SIZE"));
	if (uid < (int64_t)l->from || uid > UINT32_MAX)
		return 0; /* "N:*" answers the last message even when it is below N */
	if (l->gmail_all && gmail_in_a_folder(p, imapc_list_get(p, items, "X-GM-LABELS"))) {
		l->labelled++; /* it comes with its label's folder: not even downloaded */
		return 0;
	}
	if (l->f->nuids == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 1024;
		l->f->uids = xreallocarray(l->f->uids, l->cap, sizeof(*l->f->uids));
	}
	l->f->uids[l->f->nuids].uid = (uint32_t)uid;
	l->f->uids[l->f->nuids].size = size > 0 && size < UINT32_MAX ? (uint32_t)size : 0;
	l->f->nuids++;
	return 0;
}

/* Fills f->uids with what is to be fetched. Returns as imapc_cmd. */
static int list_folder(struct imap_run *r, struct folder *f)
{
	struct listing l = {f, f->st.last_uid + 1, 0, f->kind == FK_ALL && r->gmail, 0};
	int rc;

	free(f->uids);
	free(f->taken);
	f->uids = NULL;
	f->taken = NULL;
	f->nuids = f->prefix = 0;
	f->bytes = 0;
	if (f->exists == 0)
		return 0;
	rc = imapc_cmd(&r->c, list_uids_cb, &l, "UID FETCH %u:* (UID RFC822.SIZE%s)", l.from,
		       l.gmail_all ? " X-GM-LABELS" : "");
	if (rc != 0)
		return rc;
	r->elsewhere += l.labelled;
	if (f->nuids > 1)
		qsort(f->uids, f->nuids, sizeof(*f->uids), uid_cmp);
	f->taken = xcalloc(f->nuids + 1, 1);
	for (size_t i = 0; i < f->nuids; i++)
		f->bytes += f->uids[i].size;
	return 0;
}

/* Flags and keywords of a FETCH's FLAGS list. */
static void flags_of(const struct imapc_resp *p, int32_t list, uint32_t *flags_r, char *kw,
		     size_t kwsize)
{
	static const struct {
		const char *name;
		uint32_t flag;
	} sys[] = {{"\\Seen", STORE_F_SEEN},
		   {"\\Answered", STORE_F_ANSWERED},
		   {"\\Flagged", STORE_F_FLAGGED},
		   {"\\Deleted", STORE_F_DELETED},
		   {"\\Draft", STORE_F_DRAFT}};
	const struct imapc_node *l = imapc_node(p, list);
	size_t o = 0;

	*flags_r = 0;
	kw[0] = '\0';
	if (l == NULL || l->type != IMAPC_LIST)
		return;
	for (int32_t n = l->first; n >= 0; n = p->nodes[n].next) {
		const struct imapc_node *x = &p->nodes[n];
		int known = 0;
		if (x->type != IMAPC_ATOM || x->len == 0)
			continue;
		for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++)
			if (imapc_is_atom(p, n, sys[i].name)) {
				*flags_r |= sys[i].flag;
				known = 1;
			}
		if (known || x->s[0] == '\\')
			continue; /* \Recent and unknown system flags are the server's */
		if (o + x->len + 2 > kwsize) {
			cli_warn(
			    "import: more keywords than a message keeps here (%zu bytes): some "
			    "left out",
			    kwsize);
			break;
		}
		if (o > 0)
			kw[o++] = ' ';
		memcpy(kw + o, x->s, x->len);
		o += x->len;
		kw[o] = '\0';
	}
}

/* Gmail's labels: \Important becomes the keyword $Important, \Starred \Flagged. */
static void gmail_labels(const struct imapc_resp *p, int32_t list, uint32_t *flags, char *kw,
			 size_t kwsize)
{
	const struct imapc_node *l = imapc_node(p, list);

	if (l == NULL || l->type != IMAPC_LIST)
		return;
	for (int32_t n = l->first; n >= 0; n = p->nodes[n].next) {
		const struct imapc_node *x = &p->nodes[n];
		if (x->len == 10 && strncasecmp(x->s, "\\Important", 10) == 0 &&
		    strstr(kw, "$Important") == NULL && strlen(kw) + 12 < kwsize)
			snprintf(kw + strlen(kw), kwsize - strlen(kw), "%s$Important",
				 kw[0] ? " " : "");
		if (x->len == 8 && strncasecmp(x->s, "\\Starred", 8) == 0)
			*flags |= STORE_F_FLAGGED;
	}
}

/* Sleeps so that the bytes read stay under --max-rate. */
static void pace(struct imap_run *r)
{
	if (r->max_rate <= 0)
		return;
	double want = (double)r->c.bytes_in / r->max_rate, spent = mk_monotonic() - r->t0;
	if (want > spent + 0.01) {
		double d = want - spent;
		struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
		nanosleep(&ts, NULL);
	}
}

/* Marks uids[i] taken and moves last_uid over every taken one at the start. */
static void mark_taken(struct folder *f, size_t i)
{
	if (f->taken[i])
		return;
	f->taken[i] = 1;
	if (f->uids[i].uid > f->st.hi_uid)
		f->st.hi_uid = f->uids[i].uid;
	while (f->prefix < f->nuids && f->taken[f->prefix])
		f->prefix++;
	if (f->prefix > 0 && f->uids[f->prefix - 1].uid > f->st.last_uid)
		f->st.last_uid = f->uids[f->prefix - 1].uid;
	f->dirty = 1;
}

static ssize_t uid_index(const struct folder *f, uint32_t uid)
{
	size_t lo = 0, hi = f->nuids;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (f->uids[mid].uid == uid)
			return (ssize_t)mid;
		if (f->uids[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* One message of a FETCH reply. Returns 0, or -2 if the store failed. */
static int fetch_one(struct imap_run *r, struct folder *f)
{
	const struct imapc_resp *p = &r->c.resp;
	char kw[STORE_KEYWORDS_MAX], origin[1400], code[64];
	struct import_msg im = {0};

	if (p->status == IMAPC_OK && p->kind == IMAPC_UNTAGGED) {
		imapc_code(&r->c, code, sizeof(code));
		if (strcasecmp(code, "THROTTLED") == 0)
			r->throttled = 1;
		return 0;
	}
	if (p->status != IMAPC_DATA || !imapc_is_atom(p, p->nodes[p->first].next, "FETCH"))
		return 0;
	int32_t items = p->nodes[p->nodes[p->first].next].next;
	int64_t uid = imapc_number(p, imapc_list_get(p, items, "UID"));
	int32_t body = imapc_list_get(p, items, "BODY[]");
	const struct imapc_node *b = imapc_node(p, body);
	if (uid <= 0 || uid > UINT32_MAX || b == NULL ||
	    (b->type != IMAPC_STRING && b->type != IMAPC_NIL))
		return 0; /* a flag change told by the server meanwhile, not our reply */
	ssize_t idx = uid_index(f, (uint32_t)uid);
	if (idx < 0 || f->taken[idx])
		return 0; /* not asked for, or taken before a reconnection */
	snprintf(origin, sizeof(origin), "%s/%s UID %lld", r->source, f->shown, (long long)uid);
	if (b->type == IMAPC_NIL || b->len == 0) {
		cli_warn("import: %s: the server gave no bytes for the message: skipped", origin);
	} else {
		const struct imapc_node *d =
		    imapc_node(p, imapc_list_get(p, items, "INTERNALDATE"));
		im.mailbox = f->target;
		im.data = b->s;
		im.len = b->len;
		flags_of(p, imapc_list_get(p, items, "FLAGS"), &im.flags, kw, sizeof(kw));
		if (r->gmail)
			gmail_labels(p, imapc_list_get(p, items, "X-GM-LABELS"), &im.flags, kw,
				     sizeof(kw));
		im.keywords = kw[0] ? kw : NULL;
		if (d == NULL || imapc_parse_date(d->s, d->len, &im.internaldate) < 0)
			im.internaldate = 0;
		im.origin = origin;
		/* where it came from: a later run carries flag changes over (CONDSTORE) */
		char meta[96];
		snprintf(meta, sizeof(meta), "imap_source=%s %u %lld\n", f->srcid,
			 f->st.uidvalidity, (long long)uid);
		im.meta = meta;
		/* above every UID an earlier run took, it is new: added as it is; between
		 * the contiguous and the highest taken, an earlier run may have it */
		im.force = !f->st.by_content && (uint32_t)uid > f->resume_hi;
		int add = 1;
		if (f->kind == FK_ALL) {
			uint8_t hash[STORE_HASH_LEN];
			store_hash(b->s, b->len, hash);
			if (importer_user_has(r->imp, hash)) {
				add = 0; /* brought by its label's folder */
				r->elsewhere++;
			}
			im.force = 0;
		}
		if (add && importer_add(r->imp, &im) != 0) {
			r->fatal = 1;
			return -2;
		}
	}
	/* counted as taken from here on; written with the next batch */
	mark_taken(f, (size_t)idx);
	f->st.messages++;
	r->done_msgs++;
	r->done_bytes += b->len;
	progress_update(&r->prog, r->done_bytes, r->total_bytes, r->done_msgs, r->done_bytes);
	pace(r);
	return 0;
}

/* The uid set "a:b,c" of uids[from..to) into out. */
static void uid_set(const struct uidsize *u, size_t from, size_t to, char *out, size_t outsize)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = from; i < to;) {
		size_t j = i;
		while (j + 1 < to && u[j + 1].uid == u[j].uid + 1)
			j++;
		int n = j > i ? snprintf(out + o, outsize - o, "%s%u:%u", o ? "," : "", u[i].uid,
					 u[j].uid)
			      : snprintf(out + o, outsize - o, "%s%u", o ? "," : "", u[i].uid);
		if (n < 0 || (size_t)n >= outsize - o)
			break; /* the caller keeps sets small enough */
		o += (size_t)n;
		i = j + 1;
	}
}

/* Fetches what is not taken of f, WINDOW commands in flight. A server may
 * run pipelined FETCHes at once (Dovecot does) and interleave their replies:
 * each message is looked up by UID, and each tagged reply by its tag.
 * Returns 0, 1 if the server refused (c->err), -1 on a network error, -2 if
 * the store failed. */
static int fetch_folder(struct imap_run *r, struct folder *f)
{
	struct {
		char tag[16];
		size_t from, to;
		int busy;
	} slot[WINDOW];
	char set[4096];
	size_t next = f->prefix, inflight = 0;

	memset(slot, 0, sizeof(slot));
	for (;;) {
		while (next < f->nuids && inflight < WINDOW && !r->stopped_by_limit) {
			while (next < f->nuids && f->taken[next])
				next++;
			if (next >= f->nuids)
				break;
			size_t end = next;
			uint64_t bytes = 0;
			while (end < f->nuids && end - next < CHUNK_MSGS &&
			       (end == next || bytes + f->uids[end].size <= CHUNK_BYTES)) {
				bytes += f->uids[end].size;
				end++;
			}
			int s = 0;
			while (slot[s].busy)
				s++;
			uid_set(f->uids, next, end, set, sizeof(set));
			if (imapc_send(&r->c, slot[s].tag,
				       "UID FETCH %s (UID FLAGS INTERNALDATE BODY.PEEK[]%s)", set,
				       r->gmail ? " X-GM-LABELS" : "") < 0)
				return -1;
			slot[s].from = next;
			slot[s].to = end;
			slot[s].busy = 1;
			inflight++;
			next = end;
		}
		if (inflight == 0)
			break;
		if (imapc_read(&r->c) < 0 || imapc_check_bye(&r->c) < 0)
			return -1;
		const struct imapc_resp *p = &r->c.resp;
		if (p->kind != IMAPC_TAGGED) {
			if (fetch_one(r, f) != 0)
				return -2;
			continue;
		}
		int s;
		for (s = 0; s < WINDOW; s++)
			if (slot[s].busy && p->taglen == strlen(slot[s].tag) &&
			    memcmp(p->tag, slot[s].tag, p->taglen) == 0)
				break;
		if (s == WINDOW)
			continue; /* an earlier command's reply */
		slot[s].busy = 0;
		inflight--;
		if (imapc_tagged_status(&r->c) != 0)
			return 1; /* the others in flight are answered after a reconnection */
		/* every UID of the chunk is answered: one the server did not send is gone */
		for (size_t i = slot[s].from; i < slot[s].to; i++)
			mark_taken(f, i);
		if (r->throttled) {
			/* the server asked to slow down: a pause that grows while it keeps asking
			 */
			r->window_pause = r->window_pause > 0 ? r->window_pause * 2 : 1;
			if (r->window_pause > 60)
				r->window_pause = 60;
			if (!r->quiet)
				cli_warn("import: the server says [THROTTLED]: pausing %.0f s",
					 r->window_pause);
			sleep((unsigned)r->window_pause);
			r->throttled = 0;
		}
		if (r->max_bytes > 0 && r->c.bytes_in >= r->max_bytes)
			r->stopped_by_limit = 1;
	}
	return 0;
}

/* --- the run ------------------------------------------------------------------------------ */

/* A response code that says "try again later". */
static int temporary(const struct imapc *c)
{
	char code[64];
	imapc_code(c, code, sizeof(code));
	return strcasecmp(code, "THROTTLED") == 0 || strcasecmp(code, "UNAVAILABLE") == 0 ||
	       strcasecmp(code, "LIMIT") == 0 || strcasecmp(code, "INUSE") == 0 ||
	       strcasecmp(code, "SERVERBUG") == 0;
}

static void backoff(struct imap_run *r, int attempt, const char *why)
{
	double d = 1;
	for (int i = 1; i < attempt && d < BACKOFF_MAX; i++)
		d *= 2;
	if (d > BACKOFF_MAX)
		d = BACKOFF_MAX;
	progress_end(&r->prog);
	cli_warn("import: %s; trying again in %.0f s (%d of %d)", why, d, attempt, r->retries);
	struct timespec ts = {(time_t)d, 0};
	nanosleep(&ts, NULL);
}

/* Reads the records of every folder at the start. */
static int load_state_cb(const char *folder, const struct import_state *st, void *ctx)
{
	struct imap_run *r = ctx;
	for (size_t i = 0; i < r->nfolders; i++)
		if (strcmp(r->folders[i].wire, folder) == 0)
			r->folders[i].st = *st;
	return 0;
}

/* --- flags changed on the server since the last run (CONDSTORE) ------------------- */

static int change_cmp(const void *a, const void *b)
{
	const struct flagchange *x = a, *y = b;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static int changes_cb(struct imapc *c, void *ctx)
{
	struct folder *f = ctx;
	const struct imapc_resp *p = &c->resp;

	if (p->status != IMAPC_DATA || !imapc_is_atom(p, p->nodes[p->first].next, "FETCH"))
		return 0;
	int32_t items = p->nodes[p->nodes[p->first].next].next;
	int64_t uid = imapc_number(p, imapc_list_get(p, items, "UID"));
	int32_t fl = imapc_list_get(p, items, "FLAGS");
	if (uid <= 0 || uid > f->st.last_uid || fl < 0)
		return 0;
	f->changes = xreallocarray(f->changes, f->nchanges + 1, sizeof(*f->changes));
	struct flagchange *ch = &f->changes[f->nchanges++];
	ch->uid = (uint32_t)uid;
	flags_of(p, fl, &ch->flags, ch->keywords, sizeof(ch->keywords));
	return 0;
}

struct flagfix {
	uint32_t uid; /* ours */
	const struct flagchange *ch;
	uint32_t keep; /* our flags the server has no say in (\Recent) */
};

struct flagscan {
	struct store_txn *txn;
	const struct folder *f;
	struct flagfix *fixes;
	size_t nfixes;
	int rc;
};

/* One of our messages: if it came from this folder and its flags changed there, a fix. */
static int scan_cb(const struct store_msg *msg, void *ctx)
{
	struct flagscan *sc = ctx;
	char meta[STORE_META_MAX], id[17];
	unsigned long long v, u;
	struct flagchange key, *ch;

	if ((sc->rc = store_msg_meta(sc->txn, msg->mbid, msg->uid, meta)) != 0)
		return 1;
	const char *m = strstr(meta, "imap_source=");
	if (m == NULL || sscanf(m, "imap_source=%16s %llu %llu", id, &v, &u) != 3 ||
	    strcmp(id, sc->f->srcid) != 0 || v != sc->f->st.uidvalidity)
		return 0;
	key.uid = (uint32_t)u;
	ch = bsearch(&key, sc->f->changes, sc->f->nchanges, sizeof(key), change_cmp);
	if (ch == NULL)
		return 0;
	uint32_t mine = msg->flags & (STORE_F_SEEN | STORE_F_ANSWERED | STORE_F_FLAGGED |
				      STORE_F_DELETED | STORE_F_DRAFT);
	if (mine == ch->flags && strcmp(msg->keywords, ch->keywords) == 0)
		return 0;
	sc->fixes = xreallocarray(sc->fixes, sc->nfixes + 1, sizeof(*sc->fixes));
	sc->fixes[sc->nfixes].uid = msg->uid;
	sc->fixes[sc->nfixes].ch = ch;
	sc->fixes[sc->nfixes].keep = msg->flags & ~mine;
	sc->nfixes++;
	return 0;
}

struct flagapply {
	uint32_t mbid;
	const struct flagscan *sc;
};

static int apply_fixes(struct store_txn *txn, void *ctx)
{
	struct flagapply *a = ctx;
	int rc;

	for (size_t i = 0; i < a->sc->nfixes; i++) {
		const struct flagfix *x = &a->sc->fixes[i];
		rc = store_msg_set_flags(txn, a->mbid, x->uid, STORE_FLAGS_SET,
					 x->ch->flags | x->keep, x->ch->keywords, 0, NULL);
		if (rc != 0 && rc != STORE_ENOTFOUND) /* expunged here meanwhile: nothing to do */
			return rc;
	}
	return 0;
}

/* The server's flag changes since the recorded HIGHESTMODSEQ onto the
 * messages this import brought from the folder (found by their
 * imap_source metadata): the server's flags win for a message that changed
 * there. Messages expunged on the server stay here (moving in never deletes).
 * Returns as imapc_cmd, or -2 if the store failed. */
static int sync_flags(struct imap_run *r, struct folder *f)
{
	struct flagscan sc = {0};
	struct store_mailbox mb;
	int rc;

	f->nchanges = 0;
	rc = imapc_cmd(&r->c, changes_cb, f, "UID FETCH 1:%u (UID FLAGS) (CHANGEDSINCE %llu)",
		       f->st.last_uid, (unsigned long long)f->st.highestmodseq);
	if (rc != 0 || f->nchanges == 0)
		return rc;
	qsort(f->changes, f->nchanges, sizeof(*f->changes), change_cmp);
	sc.f = f;
	if ((rc = store_read_begin(r->store, &sc.txn)) == 0) {
		rc = store_mailbox_get(sc.txn, importer_user_id(r->imp), f->target, &mb);
		if (rc == 0)
			rc = store_msg_foreach(sc.txn, mb.id, scan_cb, &sc);
		if (rc == 0)
			rc = sc.rc;
		store_read_end(&sc.txn);
	}
	if (rc == STORE_ENOTFOUND) /* the user deleted the mailbox: nothing to follow */
		rc = 0;
	if (rc == 0 && sc.nfixes > 0) {
		struct flagapply a = {mb.id, &sc};
		rc = store_write(r->store, apply_fixes, &a);
		if (rc == 0)
			r->flags_updated += sc.nfixes;
	}
	free(sc.fixes);
	if (rc != 0) {
		cli_error("import: %s: cannot update flags: %s", f->shown, cli_store_hint(rc));
		return -2;
	}
	return 0;
}

/* Step 1 for a folder: EXAMINE, compare with the record, list the UIDs to
 * fetch. Returns as imapc_cmd, or 3 after saying why the folder is left. */
static int step_prepare(struct imap_run *r, struct folder *f)
{
	int rc = examine(r, f);

	if (rc != 0)
		return rc;
	if (f->uidvalidity_now == 0) {
		cli_error("import: %s: the server gave no UIDVALIDITY: cannot copy this folder "
			  "safely",
			  f->shown);
		return 3;
	}
	if (f->st.uidvalidity != f->uidvalidity_now || (r->full && !f->st.by_content)) {
		if (f->st.uidvalidity != 0 && f->st.uidvalidity != f->uidvalidity_now)
			cli_warn("import: %s: UIDVALIDITY changed (%u, was %u): every message is "
				 "compared by content",
				 f->shown, f->uidvalidity_now, f->st.uidvalidity);
		memset(&f->st, 0, sizeof(f->st));
		f->st.uidvalidity = f->uidvalidity_now;
		f->st.by_content = 1;
		f->dirty = 1;
	}
	f->nuids = 0;
	f->bytes = 0;
	f->listed_modseq = f->modseq;
	f->resume_hi = f->st.hi_uid;
	if (!f->st.by_content && f->modseq != 0 && f->modseq == f->st.highestmodseq)
		return 0; /* CONDSTORE: nothing changed since the last run */
	if (!f->st.by_content && r->condstore && f->modseq != 0 && f->st.highestmodseq != 0 &&
	    f->st.last_uid > 0 && (rc = sync_flags(r, f)) != 0)
		return rc;
	if (!f->st.by_content && f->uidnext != 0 && f->uidnext <= f->st.last_uid + 1)
		return 0; /* nothing new */
	return list_folder(r, f);
}

/* Step 2: the messages. */
static int step_fetch(struct imap_run *r, struct folder *f)
{
	int rc;

	if (f->prefix >= f->nuids)
		return 0;
	if ((rc = examine(r, f)) != 0)
		return rc;
	if (f->uidvalidity_now != f->st.uidvalidity) {
		cli_error("import: %s: UIDVALIDITY changed during the import: run it again",
			  f->shown);
		return 3;
	}
	return fetch_folder(r, f);
}

/* Runs step, reconnecting and backing off on network errors and temporary
 * refusals. Returns 0, 1 if the folder failed for good (said), -2 if the
 * store failed. */
static int with_retries(struct imap_run *r, struct folder *f,
			int (*step)(struct imap_run *r, struct folder *f), int *attempt)
{
	for (;;) {
		int rc = r->c.broken || r->c.fd < 0 ? connect_login(r) : 0;
		if (rc == 1) {
			cli_error("import: %s", r->c.err);
			f->failed = 1;
			return 1;
		}
		uint64_t before = f->st.last_uid;
		if (rc == 0)
			rc = step(r, f);
		if (rc == 0 || rc == -2)
			return rc;
		if (rc == 3) {
			f->failed = 1;
			return 1;
		}
		if (rc == 1 && !temporary(&r->c)) {
			cli_error("import: %s: %s", f->shown, r->c.err);
			f->failed = 1;
			return 1;
		}
		/* a network error or a temporary refusal: keep what came, reconnect */
		if (importer_checkpoint(r->imp) != 0)
			return -2;
		if (f->st.last_uid > before)
			*attempt = 0; /* it got somewhere: not in a row */
		if (++*attempt > r->retries) {
			cli_error("import: %s: giving up after %d attempts: %s", f->shown, *attempt,
				  r->c.err);
			f->failed = 1;
			return 1;
		}
		char why[STORE_NAME_MAX + sizeof(r->c.err) + 8];
		snprintf(why, sizeof(why), "%s: %s", f->shown, r->c.err);
		backoff(r, *attempt, why);
		r->c.broken = 1;
	}
}

int import_imap_main(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"password-file", required_argument, NULL, 'p'},
	    {"oauth2-token-file", required_argument, NULL, 'O'},
	    {"ca-file", required_argument, NULL, 'C'},
	    {"max-rate", required_argument, NULL, 'R'},
	    {"max-bytes", required_argument, NULL, 'M'},
	    {"full", no_argument, NULL, 'F'},
	    {"timeout", required_argument, NULL, 'T'},
	    {"batch", required_argument, NULL, 'b'},
	    {"retries", required_argument, NULL, 'r'},
	    {"oauth2-mechanism", required_argument, NULL, 'S'},
	    {"mailbox", required_argument, NULL, 'm'},
	    {"quiet", no_argument, NULL, 'q'},
	    {NULL, 0, NULL, 0},
	};
	struct imap_run *r = xcalloc(1, sizeof(*r));
	const char *pwfile = NULL, *tokfile = NULL, *user, *url;
	uint64_t batch = 1000, v;
	int c, rc = 0, attempt = 0;

	r->cli = cli;
	r->retries = RETRIES;
	/* a server that hangs up makes a write fail with EPIPE, not kill us */
	signal(SIGPIPE, SIG_IGN);
	while ((c = getopt_long(argc, argv, "b:q", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			pwfile = optarg;
			break;
		case 'O':
			tokfile = optarg;
			break;
		case 'C':
			r->o.ca_file = optarg;
			break;
		case 'R':
			if (parse_size(optarg, &v) < 0 || v == 0) {
				cli_error("import: --max-rate wants bytes a second (e.g. 500k)");
				rc = EXIT_USAGE;
				goto out;
			}
			r->max_rate = (double)v;
			break;
		case 'M':
			if (parse_size(optarg, &r->max_bytes) < 0 || r->max_bytes == 0) {
				cli_error("import: --max-bytes wants a size (e.g. 2400m)");
				rc = EXIT_USAGE;
				goto out;
			}
			break;
		case 'F':
			r->full = 1;
			break;
		case 'T':
			if (mk_parse_u64(optarg, 1, 3600, &v) < 0) {
				cli_error("import: --timeout wants seconds (1 to 3600)");
				rc = EXIT_USAGE;
				goto out;
			}
			r->o.timeout = (double)v;
			break;
		case 'b':
			if (mk_parse_u64(optarg, 1, 1000000, &batch) < 0) {
				cli_error("import: --batch wants a number from 1 to 1000000");
				rc = EXIT_USAGE;
				goto out;
			}
			break;
		case 'r':
			if (mk_parse_u64(optarg, 0, 100, &v) < 0) {
				cli_error("import: --retries wants a number from 0 to 100");
				rc = EXIT_USAGE;
				goto out;
			}
			r->retries = (int)v;
			break;
		case 'q':
			r->quiet = 1;
			break;
		case 'm':
			r->prefix = optarg;
			break;
		case 'S':
			if (strcasecmp(optarg, "xoauth2") != 0 &&
			    strcasecmp(optarg, "oauthbearer") != 0) {
				cli_error("import: --oauth2-mechanism is xoauth2 or oauthbearer");
				rc = EXIT_USAGE;
				goto out;
			}
			r->oauth2_mech = optarg;
			break;
		default:
			cli_error(
			    "import: for a server, the options are: --password-file, "
			    "--oauth2-token-file, --ca-file, --max-rate, --max-bytes, --full, "
			    "--timeout, --retries, --oauth2-mechanism, --mailbox, --batch, -q (see "
			    "--help)");
			rc = EXIT_USAGE;
			goto out;
		}
	}
	if (argc - optind != 2 || !import_imap_is_url(argv[optind + 1])) {
		cli_error(
		    "import: usage: mailkeep import [options] USER imaps://LOGIN@HOST[:PORT]");
		rc = EXIT_USAGE;
		goto out;
	}
	user = argv[optind];
	url = argv[optind + 1];
	if (pwfile != NULL && tokfile != NULL) {
		cli_error("import: give --password-file or --oauth2-token-file, not both");
		rc = EXIT_USAGE;
		goto out;
	}
	if (parse_url(r, url) < 0) {
		rc = EXIT_USAGE;
		goto out;
	}
	r->oauth2 = tokfile != NULL;
	if (cli_read_password(r->oauth2 ? tokfile : pwfile, 0, r->secret, sizeof(r->secret)) < 0) {
		rc = 1;
		goto out;
	}
	if ((r->store = cli_store(cli, 0)) == NULL) {
		rc = 1;
		goto out;
	}
	if ((rc = import_user_ready(cli, r->store, user)) != 0)
		goto out;
	if ((r->imp = importer_new(r->store, user, (size_t)batch, 0)) == NULL) {
		rc = 1;
		goto out;
	}
	r->t0 = mk_monotonic();
	/* log in first: a wrong password changes nothing in the store */
	for (;;) {
		int lr = connect_login(r);
		if (lr == 0)
			break;
		if (lr == 1) {
			cli_error("import: %s refused the login of %s: %s", r->host, r->login,
				  r->c.err);
			cli_error(
			    "import: nothing was imported (check the login and password; "
			    "Gmail and Microsoft want an app password or an OAuth2 token, see "
			    "doc/tools.md)");
			rc = 1;
			goto out;
		}
		if (strstr(r->c.err, "TLS") != NULL || strstr(r->c.err, "STARTTLS") != NULL ||
		    strstr(r->c.err, "cannot connect") != NULL || ++attempt > 2) {
			cli_error("import: %s: %s", url, r->c.err);
			cli_error("import: nothing was imported");
			rc = 1;
			goto out;
		}
		backoff(r, attempt, r->c.err);
	}
	attempt = 0;
	if (imapc_cmd(&r->c, list_cb, r,
		      imapc_has_cap(&r->c, "SPECIAL-USE") && imapc_has_cap(&r->c, "LIST-EXTENDED")
			  ? "LIST \"\" \"*\" RETURN (SPECIAL-USE)"
			  : "LIST \"\" \"*\"") != 0) {
		cli_error("import: LIST failed: %s", r->c.err);
		rc = 1;
		goto out;
	}
	map_folders(r);
	{
		struct store_txn *txn = NULL;
		int src = store_read_begin(r->store, &txn);
		if (src == 0) {
			src = import_state_foreach(txn, importer_user_id(r->imp), r->source,
						   load_state_cb, r);
			store_read_end(&txn);
		}
		if (src != 0) {
			cli_error("import: cannot read the store: %s", store_strerror(src));
			rc = 1;
			goto out;
		}
	}
	if ((rc = store_write(r->store, create_targets, r)) != 0) {
		cli_error("import: cannot create the mailboxes: %s", cli_store_hint(rc));
		rc = 1;
		goto out;
	}
	importer_set_commit_hook(r->imp, commit_state, r);
	progress_init(&r->prog, "importing");
	for (size_t i = 0; i < r->nfolders; i++) {
		struct folder *f = &r->folders[i];
		if (f->kind == FK_SKIP) {
			if (f->why != NULL && !r->quiet)
				cli_warn("import: %s: not copied as a folder: %s", f->shown,
					 f->why);
			if (f->failed)
				rc = 1;
			continue;
		}
		int fr = with_retries(r, f, step_prepare, &attempt);
		if (fr == -2) {
			r->fatal = 1;
			break;
		}
		if (fr != 0) {
			rc = 1;
			continue;
		}
		f->prepared = 1;
		r->total_msgs += f->nuids;
		r->total_bytes += f->bytes;
	}
	for (size_t i = 0; i < r->nfolders && !r->fatal && !r->stopped_by_limit; i++) {
		struct folder *f = &r->folders[i];
		if (!f->prepared)
			continue;
		int fr = with_retries(r, f, step_fetch, &attempt);
		if (fr == -2) {
			r->fatal = 1;
			break;
		}
		if (fr != 0) {
			rc = 1;
			continue;
		}
		if (!r->stopped_by_limit) {
			/* finished: from now on, new UIDs are new mail */
			f->st.highestmodseq = f->listed_modseq;
			f->st.by_content = 0;
			if (f->nuids > 0 && f->uids[f->nuids - 1].uid > f->st.last_uid)
				f->st.last_uid = f->uids[f->nuids - 1].uid;
			if (f->st.last_uid > f->st.hi_uid)
				f->st.hi_uid = f->st.last_uid;
			f->dirty = 1;
		}
	}
	if (!r->fatal && importer_checkpoint(r->imp) != 0)
		r->fatal = 1;
	progress_end(&r->prog);
	if (!r->c.broken && r->c.fd >= 0)
		(void)imapc_cmd(&r->c, NULL, NULL, "LOGOUT");
	{
		const struct import_totals *t = importer_totals(r->imp);
		double secs = mk_monotonic() - r->t0;
		char hb[32];
		if (secs < 0.001)
			secs = 0.001;
		if (!r->quiet) {
			printf("imported %llu messages (%s) for %s from %s; %llu already there, "
			       "%llu failed",
			       (unsigned long long)t->added,
			       cli_human_bytes(t->added_bytes, hb, sizeof(hb)), user, r->source,
			       (unsigned long long)t->present, (unsigned long long)t->failed);
			if (r->elsewhere > 0)
				printf(", %llu of All Mail already in another mailbox",
				       (unsigned long long)r->elsewhere);
			if (r->flags_updated > 0)
				printf(", flags of %llu changed as on the server",
				       (unsigned long long)r->flags_updated);
			printf("; %.2f s, %.0f msg/s, %.1f MB/s\n", secs,
			       (double)r->done_msgs / secs, (double)r->c.bytes_in / secs / 1e6);
		}
		if (t->failed > 0)
			rc = 1;
	}
	if (r->stopped_by_limit) {
		cli_warn("import: stopped after %llu bytes (--max-bytes); run the same command "
			 "again to go on",
			 (unsigned long long)r->c.bytes_in);
	}
	if (r->fatal) {
		cli_error("import stopped; what was stored before stays, and running the same "
			  "import again goes on from there");
		rc = 1;
	} else if (rc != 0) {
		cli_error("import: some folders were not copied (see above); running the same "
			  "import again goes on where it stopped");
	}
out:
	imapc_close(&r->c);
	explicit_bzero(r->secret, sizeof(r->secret));
	for (size_t i = 0; i < r->nfolders; i++) {
		free(r->folders[i].uids);
		free(r->folders[i].taken);
		free(r->folders[i].changes);
	}
	free(r->folders);
	importer_free(&r->imp);
	free(r);
	return rc;
}
