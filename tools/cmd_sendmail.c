/* cmd_sendmail — `mailkeep sendmail`: the sendmail(8) interface cron, scripts
 * and mail(1) use, as Postfix's sendmail is (`-t`, `-f`, `-i`/`-oi`, `-F`;
 * `-B`, `-N`, `-o*` and `-v` are taken and ignored). A link named sendmail to
 * the mailkeep binary runs this command.
 *
 * The message is read from standard input (at most SENDMAIL_MAX bytes; a
 * line "." alone ends it unless -i/-oi), lines end in CRLF as on the wire, a
 * Received: header is put in front, and Date:, Message-ID: and From: are
 * added when missing (Postfix's cleanup does the same). Then it is one write
 * to the store (index/queue.h, queue_submit): local recipients get it in
 * their INBOX, the others are queued for mailkeep-smtpout. Exit codes are
 * sendmail's (sysexits.h): 0 done, 64 usage, 65 bad message, 67 unknown
 * local user, 75 try again (store full or busy), 70 anything else.
 */
#include <ctype.h>
#include <getopt.h>
#include <libetpan/libetpan.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "index/dir.h"
#include "index/queue.h"
#include "lib/buf.h"
#include "lib/dkim.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "tools/cli.h"

#define SENDMAIL_MAX ((size_t)64 << 20)
#define SENDMAIL_RCPT_MAX 10000

static const char sendmail_help[] =
    "Sends a message read from standard input, as sendmail(8) does, so that cron,\n"
    "scripts and mail(1) can send through mailkeep (link /usr/sbin/sendmail to the\n"
    "mailkeep binary; it then behaves as `mailkeep sendmail`).\n\n"
    "  -t             the recipients are also those of the To:, Cc: and Bcc: headers\n"
    "                 (Bcc: is removed)\n"
    "  -f SENDER      the envelope sender (default: the user running it @$myhostname)\n"
    "  -F NAME        the full name for a From: header that is added\n"
    "  -i, -oi        a line with a single \".\" does not end the message\n"
    "  -B, -N, -oX, -v  accepted and ignored\n\n"
    "It writes to the store directly: run it as root or mail_owner. Mail for our own\n"
    "domains (mydestination) goes into the users' INBOX; the rest is queued for\n"
    "mailkeep-smtpout. At most 64 MiB and 10,000 recipients.\n\n"
    "examples:\n"
    "  printf 'Subject: backup done\\n\\nok\\n' | mailkeep sendmail -f root@example.org "
    "admin@example.org\n"
    "  mailkeep sendmail -t -oi < message.eml\n";

struct rcpts {
	char **v;
	size_t n, cap;
};

static int add_rcpt(struct rcpts *r, const char *addr, const char *myhostname)
{
	char buf[QUEUE_ADDR_MAX];

	if (addr == NULL || addr[0] == 0)
		return 0;
	if (strlen(addr) >= QUEUE_ADDR_MAX - 256 || strpbrk(addr, " \t\r\n<>\"") != NULL) {
		cli_error("sendmail: bad recipient address \"%s\"", addr);
		return -1;
	}
	if (strchr(addr, '@') == NULL)
		snprintf(buf, sizeof(buf), "%s@%s", addr, myhostname);
	else
		mk_strlcpy(buf, addr, sizeof(buf));
	const char *at = strrchr(buf, '@');
	if (at == buf || at[1] == 0) {
		cli_error("sendmail: bad recipient address \"%s\"", addr);
		return -1;
	}
	for (size_t i = 0; i < r->n; i++)
		if (strcasecmp(r->v[i], buf) == 0)
			return 0;
	if (r->n >= SENDMAIL_RCPT_MAX) {
		cli_error("sendmail: more than %d recipients", SENDMAIL_RCPT_MAX);
		return -1;
	}
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 16;
		r->v = xreallocarray(r->v, r->cap, sizeof(*r->v));
	}
	r->v[r->n++] = xstrdup(buf);
	return 0;
}

/* The addresses of an address-list header value (libetpan's RFC 5322 parser). */
static int header_rcpts(struct rcpts *r, const char *value, size_t len, const char *myhostname)
{
	struct mailimf_address_list *al = NULL;
	size_t idx = 0;
	int rc = 0;

	if (mailimf_address_list_parse(value, len, &idx, &al) != MAILIMF_NO_ERROR || al == NULL)
		return 0; /* "undisclosed-recipients:;" and other empty lists */
	for (clistiter *it = clist_begin(al->ad_list); it && rc == 0; it = clist_next(it)) {
		struct mailimf_address *a = clist_content(it);
		if (a->ad_type == MAILIMF_ADDRESS_MAILBOX) {
			rc = add_rcpt(r, a->ad_data.ad_mailbox->mb_addr_spec, myhostname);
		} else if (a->ad_data.ad_group->grp_mb_list != NULL) {
			clist *l = a->ad_data.ad_group->grp_mb_list->mb_list;
			for (clistiter *g = clist_begin(l); g && rc == 0; g = clist_next(g)) {
				struct mailimf_mailbox *mb = clist_content(g);
				rc = add_rcpt(r, mb->mb_addr_spec, myhostname);
			}
		}
	}
	mailimf_address_list_free(al);
	return rc;
}

/* Reads stdin into b with CRLF line ends; "." alone ends it unless ignore_dots. */
static int read_message(struct buf *b, int ignore_dots)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;

	while ((n = getline(&line, &cap, stdin)) > 0) {
		size_t l = (size_t)n;
		if (line[l - 1] == '\n')
			l--;
		if (l > 0 && line[l - 1] == '\r')
			l--;
		if (!ignore_dots && l == 1 && line[0] == '.')
			break;
		if (buf_append(b, line, l) < 0 || buf_append(b, "\r\n", 2) < 0) {
			rc = -1;
			break;
		}
	}
	free(line);
	return rc;
}

/* Length of the header (up to and with the empty line's CRLF, or all). */
static size_t header_end(const char *d, size_t len)
{
	if (len >= 2 && d[0] == '\r' && d[1] == '\n')
		return 0;
	for (size_t i = 0; i + 3 < len; i++)
		if (memcmp(d + i, "\r\n\r\n", 4) == 0)
			return i + 2;
	return len;
}

/* 1 if the header d[0..hlen) has a field of that name. */
static int has_field(const char *d, size_t hlen, const char *name)
{
	size_t nl = strlen(name);

	for (size_t i = 0; i < hlen;) {
		if (hlen - i > nl && strncasecmp(d + i, name, nl) == 0 && d[i + nl] == ':')
			return 1;
		const char *e = memchr(d + i, '\n', hlen - i);
		if (e == NULL)
			break;
		i = (size_t)(e - d) + 1;
	}
	return 0;
}

/* Walks the header: collects To/Cc/Bcc recipients (if t) and drops Bcc. */
static int scan_header(struct buf *msg, size_t hlen, int t, struct rcpts *r, const char *myhostname,
		       size_t *hlen_r)
{
	struct buf out;
	size_t i = 0;
	int rc = 0;

	buf_init(&out, msg->max);
	while (i < hlen && rc == 0) {
		/* one field with its continuation lines */
		size_t s = i;
		do {
			const char *e = memchr(msg->data + i, '\n', hlen - i);
			i = e ? (size_t)(e - msg->data) + 1 : hlen;
		} while (i < hlen && (msg->data[i] == ' ' || msg->data[i] == '\t'));
		const char *f = msg->data + s;
		size_t fl = i - s;
		const char *colon = memchr(f, ':', fl);
		size_t name_len = colon ? (size_t)(colon - f) : 0;
		int is_to = name_len == 2 && strncasecmp(f, "To", 2) == 0;
		int is_cc = name_len == 2 && strncasecmp(f, "Cc", 2) == 0;
		int is_bcc = name_len == 3 && strncasecmp(f, "Bcc", 3) == 0;
		if (t && (is_to || is_cc || is_bcc))
			rc = header_rcpts(r, colon + 1, fl - name_len - 1, myhostname);
		if (!is_bcc)
			buf_append(&out, f, fl);
	}
	*hlen_r = out.len;
	if (rc == 0) {
		buf_append(&out, msg->data + hlen, msg->len - hlen);
		buf_free(msg);
		*msg = out;
	} else {
		buf_free(&out);
	}
	return rc;
}

static int run(struct cli *cli, int argc, char **argv)
{
	const char *from = NULL, *fullname = NULL;
	int t = 0, ignore_dots = 0, c, ret = EX_SOFTWARE;
	struct rcpts r = {0};
	struct buf msg, full;
	char sender[QUEUE_ADDR_MAX], qid[QUEUE_ID_MAX] = "";
	struct directory *dir = NULL;
	struct store *store;

	buf_init(&msg, SENDMAIL_MAX);
	buf_init(&full, SENDMAIL_MAX + 8192);
	/* sendmail's flags, -oi and -oem as two-letter options of -o */
	opterr = 0;
	while ((c = getopt(argc, argv, "tif:r:F:o:B:NV:vbmL:O:q:")) != -1) {
		switch (c) {
		case 't':
			t = 1;
			break;
		case 'i':
			ignore_dots = 1;
			break;
		case 'f':
		case 'r':
			from = optarg;
			break;
		case 'F':
			fullname = optarg;
			break;
		case 'o':
			if (strcmp(optarg, "i") == 0)
				ignore_dots = 1;
			break;
		case 'B':
		case 'N':
		case 'V':
		case 'v':
		case 'b':
		case 'm':
		case 'L':
		case 'O':
		case 'q':
			break;
		default:
			cli_error("sendmail: unknown flag -%c", optopt);
			return EX_USAGE;
		}
	}
	if (cli_config(cli) == NULL)
		return EX_SOFTWARE;
	const char *myhost = cli->common.myhostname;
	for (int i = optind; i < argc; i++)
		if (add_rcpt(&r, argv[i], myhost) < 0)
			return EX_USAGE;
	if (from == NULL) {
		struct passwd *pw = getpwuid(getuid());
		snprintf(sender, sizeof(sender), "%s@%s", pw ? pw->pw_name : "root", myhost);
	} else {
		if (strpbrk(from, " \t\r\n<>") != NULL || strlen(from) >= sizeof(sender)) {
			cli_error("sendmail: bad sender address \"%s\"", from);
			return EX_USAGE;
		}
		mk_strlcpy(sender, from, sizeof(sender));
		if (strcmp(from, "<>") == 0)
			sender[0] = 0;
	}
	if (read_message(&msg, ignore_dots) < 0) {
		cli_error("sendmail: the message is larger than %zu bytes", SENDMAIL_MAX);
		ret = EX_DATAERR;
		goto out;
	}
	size_t hlen = header_end(msg.data ? msg.data : "", msg.len);
	if (scan_header(&msg, hlen, t, &r, myhost, &hlen) < 0) {
		ret = EX_DATAERR;
		goto out;
	}
	if (r.n == 0) {
		cli_error("sendmail: no recipients (give them as arguments, or -t)");
		ret = EX_USAGE;
		goto out;
	}
	/* a Received: line, then what cleanup(8) adds when missing */
	time_t now = time(NULL);
	struct tm tm;
	char date[64];
	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	mk_queue_id(qid, sizeof(qid));
	buf_printf(&full, "Received: by %s (mailkeep, from userid %ld)\r\n\tid %s; %s\r\n", myhost,
		   (long)getuid(), qid, date);
	const char *hd = msg.data ? msg.data : "";
	if (!has_field(hd, hlen, "Date"))
		buf_printf(&full, "Date: %s\r\n", date);
	if (!has_field(hd, hlen, "Message-ID"))
		buf_printf(&full, "Message-Id: <%s@%s>\r\n", qid, myhost);
	if (!has_field(hd, hlen, "From")) {
		if (fullname != NULL)
			buf_printf(&full, "From: %s <%s>\r\n", fullname,
				   sender[0] ? sender : "MAILER-DAEMON");
		else
			buf_printf(&full, "From: %s\r\n", sender[0] ? sender : "MAILER-DAEMON");
	}
	if (hlen == msg.len && hlen > 0)
		buf_append(&msg, "\r\n", 2); /* a header only: the empty line that ends it */
	if (hlen == 0 && msg.len == 0)
		buf_append(&full, "\r\n", 2);
	if (buf_append(&full, msg.data ? msg.data : "", msg.len) < 0) {
		ret = EX_DATAERR;
		goto out;
	}

	/* signed with the keys of the From: domain, as submitted mail is */
	char dom[256], derr[512], *sig = NULL;
	size_t sl = 0;
	if (cli->common.dkim_sign && dkim_from_domain(full.data, full.len, dom, sizeof(dom)) == 0) {
		if (dkim_sign_message(cli->common.dkim_key_directory, dom, full.data, full.len,
				      &sig, &sl, derr, sizeof(derr)) < 0)
			cli_warn("sendmail: not signed: %s", derr);
		if (sl > 0) {
			struct buf b;
			buf_init(&b, full.max + sl);
			buf_append(&b, sig, sl);
			buf_append(&b, full.data, full.len);
			buf_free(&full);
			full = b;
		}
		free(sig);
	}
	/* local recipients: who they are */
	if ((store = cli_store(cli, 0)) == NULL) {
		ret = EX_TEMPFAIL;
		goto out;
	}
	char err[512];
	if (directory_open(cli->cfg, store, &dir, err, sizeof(err)) < 0) {
		cli_error("sendmail: cannot open the user directory: %s", err);
		ret = EX_TEMPFAIL;
		goto out;
	}
	struct store_rcpt *local = xcalloc(r.n, sizeof(*local));
	char(*users)[DIR_NAME_MAX] = xcalloc(r.n, sizeof(*users));
	char **metas = xcalloc(r.n, sizeof(*metas));
	const char **remote = xcalloc(r.n, sizeof(*remote));
	size_t nlocal = 0, nremote = 0;
	ret = 0;
	for (size_t i = 0; i < r.n && ret == 0; i++) {
		const char *domain = strrchr(r.v[i], '@') + 1;
		int is_local = 0;
		for (size_t k = 0; k < cli->common.mydestination.n; k++)
			if (strcasecmp(cli->common.mydestination.item[k], domain) == 0)
				is_local = 1;
		if (!is_local) {
			remote[nremote++] = r.v[i];
			continue;
		}
		struct dir_user u;
		char low[QUEUE_ADDR_MAX];
		mk_strlcpy(low, r.v[i], sizeof(low));
		for (char *p = low; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		int dr = dir_lookup_address(dir, low, &u);
		if (dr == DIR_NOTFOUND) {
			cli_error("sendmail: <%s>: user unknown", r.v[i]);
			ret = EX_NOUSER;
		} else if (dr != DIR_OK) {
			cli_error("sendmail: <%s>: user lookup failed: %s", r.v[i], dir_error());
			ret = EX_TEMPFAIL;
		} else {
			mk_strlcpy(users[nlocal], u.name, DIR_NAME_MAX);
			struct buf m;
			buf_init(&m, STORE_META_MAX - 1);
			buf_printf(
			    &m, "from=<%s>\nto=<%s>\nclient=local\nqueue_id=%s\nproto=sendmail\n",
			    sender, r.v[i], qid);
			metas[nlocal] = m.data ? m.data : xstrdup("");
			local[nlocal].user = users[nlocal];
			local[nlocal].meta = metas[nlocal];
			nlocal++;
		}
	}
	if (ret == 0) {
		struct queue_submission sub = {
		    .data = full.data,
		    .len = full.len,
		    .from = sender,
		    .qid = qid,
		    .local = local,
		    .nlocal = nlocal,
		    .remote = remote,
		    .nremote = nremote,
		    .info = {.client = "local", .sasl_user = NULL},
		};
		char used[QUEUE_ID_MAX];
		int rc = queue_submit(store, &sub, used, NULL);
		if (rc != 0) {
			cli_error("sendmail: not sent: %s", cli_store_hint(rc));
			ret = rc == STORE_EFULL || rc == STORE_EIO ? EX_TEMPFAIL : EX_SOFTWARE;
		} else if (cli->verbose) {
			fprintf(stderr, "mailkeep: sendmail: %s: %zu local, %zu queued (%s)\n", qid,
				nlocal, nremote, used[0] ? used : "-");
		}
	}
	for (size_t i = 0; i < nlocal; i++)
		free(metas[i]);
	free(metas);
	free(users);
	free(local);
	free(remote);
out:
	dir_close(&dir);
	for (size_t i = 0; i < r.n; i++)
		free(r.v[i]);
	free(r.v);
	buf_free(&msg);
	buf_free(&full);
	return ret;
}

const struct command cmd_sendmail = {
    "sendmail",
    "[-t] [-i|-oi] [-f SENDER] [-F NAME] [RECIPIENT...]",
    "send a message from standard input (the sendmail interface, for cron and scripts)",
    sendmail_help,
    run,
};
