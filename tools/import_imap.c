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
 * Files: this one is the run (options, the URL, connecting, retries and
 * back-off, the two steps per folder); import_imap_folders.c the folders and
 * the record hook; import_imap_fetch.c the messages and flag changes;
 * import_imap_int.h what they share.
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

#include "lib/util.h"
#include "lib/xmalloc.h"
#include "tools/import_imap.h"
#include "tools/import_imap_int.h"

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

	r->bytes_before += r->c.bytes_in;
	imapc_close(&r->c);
	if (imapc_connect(&r->c, &r->o) < 0)
		return -1;
	rc = r->oauth2 ? imapc_oauth2(&r->c, r->login, r->secret, r->oauth2_mech)
		       : imapc_login(&r->c, r->login, r->secret);
	if (rc != 0)
		return rc;
	r->gmail = imapc_has_cap(&r->c, "X-GM-EXT-1");
	if (r->gmail && !r->max_bytes_given && r->max_bytes == 0) {
		r->max_bytes = GMAIL_DAILY;
		if (!r->quiet)
			cli_warn(
			    "import: Gmail allows about 2500 MB of IMAP downloads a day: this run "
			    "stops after 2400 MB (--max-bytes changes it, 0 for no limit); run it "
			    "again the next day to go on");
	}
	r->condstore = imapc_has_cap(&r->c, "CONDSTORE") || imapc_has_cap(&r->c, "QRESYNC");
	if (r->condstore && imapc_has_cap(&r->c, "ENABLE") &&
	    (rc = imapc_cmd(&r->c, NULL, NULL, "ENABLE CONDSTORE")) < 0)
		return -1;
	if (imapc_has_cap(&r->c, "NAMESPACE") && (rc = imapc_cmd(&r->c, ns_cb, r, "NAMESPACE")) < 0)
		return -1;
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

/* Step 1 for a folder: EXAMINE, compare with the record, list the UIDs to
 * fetch. Returns as imapc_cmd, or 3 after saying why the folder is left. */
static int step_prepare(struct imap_run *r, struct folder *f)
{
	int rc = imap_examine(r, f);

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
	    f->st.last_uid > 0 && (rc = imap_sync_flags(r, f)) != 0)
		return rc;
	if (!f->st.by_content && f->uidnext != 0 && f->uidnext <= f->st.last_uid + 1)
		return 0; /* nothing new */
	return imap_list_folder(r, f);
}

/* Step 2: the messages. */
static int step_fetch(struct imap_run *r, struct folder *f)
{
	int rc;

	if (f->prefix >= f->nuids)
		return 0;
	if ((rc = imap_examine(r, f)) != 0)
		return rc;
	if (f->uidvalidity_now != f->st.uidvalidity) {
		cli_error("import: %s: UIDVALIDITY changed during the import: run it again",
			  f->shown);
		return 3;
	}
	return imap_fetch_folder(r, f);
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

struct imap_opts {
	const char *pwfile, *tokfile; /* --password-file, --oauth2-token-file */
	const char *user, *url;
	uint64_t batch;
};

/* The options into r and o. Returns 0, or EXIT_USAGE after saying why. */
static int parse_options(struct imap_run *r, struct imap_opts *o, int argc, char **argv)
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
	uint64_t v;
	int c;

	while ((c = getopt_long(argc, argv, "b:q", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			o->pwfile = optarg;
			break;
		case 'O':
			o->tokfile = optarg;
			break;
		case 'C':
			r->o.ca_file = optarg;
			break;
		case 'R':
			if (parse_size(optarg, &v) < 0 || v == 0) {
				cli_error("import: --max-rate wants bytes a second (e.g. 500k)");
				return EXIT_USAGE;
			}
			r->max_rate = (double)v;
			break;
		case 'M':
			r->max_bytes_given = 1;
			if (parse_size(optarg, &r->max_bytes) < 0) {
				cli_error(
				    "import: --max-bytes wants a size (e.g. 2400m; 0: no limit)");
				return EXIT_USAGE;
			}
			break;
		case 'F':
			r->full = 1;
			break;
		case 'T':
			if (mk_parse_u64(optarg, 1, 3600, &v) < 0) {
				cli_error("import: --timeout wants seconds (1 to 3600)");
				return EXIT_USAGE;
			}
			r->o.timeout = (double)v;
			break;
		case 'b':
			if (mk_parse_u64(optarg, 1, 1000000, &o->batch) < 0) {
				cli_error("import: --batch wants a number from 1 to 1000000");
				return EXIT_USAGE;
			}
			break;
		case 'r':
			if (mk_parse_u64(optarg, 0, 100, &v) < 0) {
				cli_error("import: --retries wants a number from 0 to 100");
				return EXIT_USAGE;
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
				return EXIT_USAGE;
			}
			r->oauth2_mech = optarg;
			break;
		default:
			cli_error(
			    "import: for a server, the options are: --password-file, "
			    "--oauth2-token-file, --ca-file, --max-rate, --max-bytes, --full, "
			    "--timeout, --retries, --oauth2-mechanism, --mailbox, --batch, -q (see "
			    "--help)");
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 2 || !import_imap_is_url(argv[optind + 1])) {
		cli_error(
		    "import: usage: mailkeep import [options] USER imaps://LOGIN@HOST[:PORT]");
		return EXIT_USAGE;
	}
	o->user = argv[optind];
	o->url = argv[optind + 1];
	if (o->pwfile != NULL && o->tokfile != NULL) {
		cli_error("import: give --password-file or --oauth2-token-file, not both");
		return EXIT_USAGE;
	}
	return parse_url(r, o->url) < 0 ? EXIT_USAGE : 0;
}

/* Connects and logs in before anything is written: a wrong password, an
 * untrusted certificate or no STARTTLS leave the store as it was. A
 * network error is tried again twice. Returns 0, or 1 after saying why. */
static int first_login(struct imap_run *r, const char *url)
{
	int attempt = 0;

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
			return 1;
		}
		if (strstr(r->c.err, "TLS") != NULL || strstr(r->c.err, "STARTTLS") != NULL ||
		    strstr(r->c.err, "cannot connect") != NULL || ++attempt > 2) {
			cli_error("import: %s: %s", url, r->c.err);
			cli_error("import: nothing was imported");
			return 1;
		}
		backoff(r, attempt, r->c.err);
	}
	return 0;
}

/* LIST, the folders mapped onto ours, their records read, the mailboxes
 * made. Returns 0, or 1 after saying why. */
static int prepare_folders(struct imap_run *r)
{
	struct store_txn *txn = NULL;
	int rc;

	if (imapc_cmd(&r->c, imap_list_cb, r,
		      imapc_has_cap(&r->c, "SPECIAL-USE") && imapc_has_cap(&r->c, "LIST-EXTENDED")
			  ? "LIST \"\" \"*\" RETURN (SPECIAL-USE)"
			  : "LIST \"\" \"*\"") != 0) {
		cli_error("import: LIST failed: %s", r->c.err);
		return 1;
	}
	imap_map_folders(r);
	if ((rc = store_read_begin(r->store, &txn)) == 0) {
		rc = import_state_foreach(txn, importer_user_id(r->imp), r->source, load_state_cb,
					  r);
		store_read_end(&txn);
	}
	if (rc != 0) {
		cli_error("import: cannot read the store: %s", store_strerror(rc));
		return 1;
	}
	if ((rc = store_write(r->store, imap_create_targets, r)) != 0) {
		cli_error("import: cannot create the mailboxes: %s", cli_store_hint(rc));
		return 1;
	}
	return 0;
}

/* Both steps over every folder: all listed first (totals for the progress
 * line), then fetched, \All last. Returns 0, or 1 if a folder failed. */
static int copy_folders(struct imap_run *r)
{
	int rc = 0, attempt = 0;

	importer_set_commit_hook(r->imp, imap_commit_state, r);
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
	return rc;
}

/* The last commit, the summary line and what to do next. Returns the exit status. */
static int report(struct imap_run *r, const char *user, int rc)
{
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
			       (double)r->done_msgs / secs, (double)imap_run_bytes(r) / secs / 1e6);
		}
		if (t->failed > 0)
			rc = 1;
	}
	if (r->stopped_by_limit) {
		cli_warn("import: stopped after %llu bytes (--max-bytes); run the same command "
			 "again to go on",
			 (unsigned long long)imap_run_bytes(r));
	}
	if (r->fatal) {
		cli_error("import stopped; what was stored before stays, and running the same "
			  "import again goes on from there");
		rc = 1;
	} else if (rc != 0) {
		cli_error("import: some folders were not copied (see above); running the same "
			  "import again goes on where it stopped");
	}
	return rc;
}

static void run_free(struct imap_run *r)
{
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
}

int import_imap_main(struct cli *cli, int argc, char **argv)
{
	struct imap_run *r = xcalloc(1, sizeof(*r));
	struct imap_opts o = {.batch = 1000};
	int rc;

	r->cli = cli;
	r->retries = RETRIES;
	/* a server that hangs up makes a write fail with EPIPE, not kill us */
	signal(SIGPIPE, SIG_IGN);
	if ((rc = parse_options(r, &o, argc, argv)) != 0)
		goto out;
	r->oauth2 = o.tokfile != NULL;
	rc = 1;
	if (cli_read_password(r->oauth2 ? o.tokfile : o.pwfile, 0, r->secret, sizeof(r->secret)) <
		0 ||
	    (r->store = cli_store(cli, 0)) == NULL)
		goto out;
	if ((rc = import_user_ready(cli, r->store, o.user)) != 0)
		goto out;
	rc = 1;
	if ((r->imp = importer_new(r->store, o.user, (size_t)o.batch, 0)) == NULL)
		goto out;
	r->t0 = mk_monotonic();
	if ((rc = first_login(r, o.url)) != 0 || (rc = prepare_folders(r)) != 0)
		goto out;
	rc = report(r, o.user, copy_folders(r));
out:
	run_free(r);
	return rc;
}
