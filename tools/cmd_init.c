/* cmd_init — `mailkeep init DIR`: a complete instance in one directory:
 * DIR/mailkeep.conf, a self-signed certificate in DIR/tls, the store in
 * DIR/data/store, and optionally a first user with a welcome message in INBOX.
 * Run as a normal user it picks unprivileged local ports, so an instance can be
 * tried anywhere without root. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "index/params.h"
#include "lib/log.h"
#include "lib/password.h"
#include "lib/tls.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "tools/cli.h"

static const char init_help[] =
    "Makes the directory DIR into a mailkeep instance:\n"
    "  DIR/mailkeep.conf          config_directory = DIR, data_directory = DIR/data\n"
    "  DIR/tls/cert.pem, key.pem  a self-signed certificate for --hostname (10 years)\n"
    "  DIR/data/store             the store;  DIR/data/run  pid files and sockets\n"
    "  DIR/mail                   where `mailkeep mount` shows the Maildirs\n"
    "Not run as root (or with --local), the services are set to unprivileged ports on\n"
    "127.0.0.1 (SMTP 2525, LMTP 2424, IMAP 1143, IMAPS 1993, ManageSieve 4190) and log to stderr.\n"
    "  --user NAME            also add this user, with a welcome message in INBOX\n"
    "  --password-file FILE   the user's password: the first line of FILE (\"-\": stdin);\n"
    "                         else asked on the terminal, else the user gets none\n"
    "  --hostname NAME        myhostname (default: this host's name)\n"
    "  --domain NAME          mydomain (default: the hostname without its first label)\n"
    "  --local                unprivileged local ports and stderr logs even as root\n"
    "  --force                write into a DIR that holds an instance already (the\n"
    "                         config and the certificate are replaced; the store is kept)\n\n"
    "example:\n"
    "  mailkeep init --user bob --password-file bob.pw ~/mk\n"
    "  export MAILKEEP_CONF=~/mk/mailkeep.conf; mailkeep run\n";

static int write_text(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	if (f == NULL) {
		cli_error("init: cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	fputs(text, f);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0) {
		cli_error("init: cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	chmod(path, mode);
	return 0;
}

static void rfc5322_date(time_t t, char *out, size_t size)
{
	struct tm tm;
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char mons[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	gmtime_r(&t, &tm);
	snprintf(out, size, "%.3s, %02u %.3s %04u %02u:%02u:%02u +0000",
		 days[(unsigned)tm.tm_wday % 7u], (unsigned)tm.tm_mday % 32u,
		 mons[(unsigned)tm.tm_mon % 12u], (unsigned)(tm.tm_year + 1900) % 10000u,
		 (unsigned)tm.tm_hour % 24u, (unsigned)tm.tm_min % 60u, (unsigned)tm.tm_sec % 61u);
}

/* The welcome message: plain text, CRLF line ends, as a message received by SMTP would be. */
static int welcome_message(const char *user, const char *host, const char *domain, const char *dir,
			   char **out_r, size_t *len_r)
{
	char date[64], id[32];
	time_t now = time(NULL);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (f == NULL)
		return -1;
	rfc5322_date(now, date, sizeof(date));
	mk_queue_id(id, sizeof(id));
	fprintf(
	    f,
	    "Return-Path: <postmaster@%s>\r\n"
	    "Delivered-To: %s@%s\r\n"
	    "From: mailkeep <postmaster@%s>\r\n"
	    "To: %s@%s\r\n"
	    "Subject: Welcome to mailkeep\r\n"
	    "Date: %s\r\n"
	    "Message-ID: <%s.welcome@%s>\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n"
	    "\r\n"
	    "Hello %s,\r\n"
	    "\r\n"
	    "this is your mail store, kept by mailkeep in %s.\r\n"
	    "Every message is stored once, whatever the number of mailboxes that hold it.\r\n"
	    "\r\n"
	    "Ways to read your mail:\r\n"
	    "  - as files: `mailkeep mount` shows it as Maildirs under the mount_point\r\n"
	    "    (%s/mail/%s/cur/ ...): grep, mutt -f, mblaze and rsync just work;\r\n"
	    "  - over IMAP with any mail client (`mailkeep imapd`);\r\n"
	    "  - with the command line: mailkeep export %s DIR writes a plain Maildir.\r\n"
	    "\r\n"
	    "Bring old mail in with\r\n"
	    "  mailkeep import %s ~/Maildir      (or an mbox file, or a directory of messages)\r\n"
	    "\r\n"
	    "Keep a copy with `mailkeep backup DIR`; check the store with `mailkeep fsck`.\r\n"
	    "The manual: man mailkeep, man mailkeep.conf.\r\n",
	    host, user, domain, host, user, domain, date, id, host, user, dir, dir, user, user,
	    user);
	if (fclose(f) != 0) {
		free(text);
		return -1;
	}
	*out_r = text;
	*len_r = len;
	return 0;
}

struct add_user {
	struct store_user u;
};

static int do_add_user(struct store_txn *txn, void *ctx)
{
	struct add_user *a = ctx;
	uint32_t id;
	return store_user_add(txn, &a->u, &id);
}

struct init_opts {
	const char *user, *pwfile, *hostname, *domain;
	int force, nopw, local;
	char host[256], dom[256], dir[PATH_MAX];
};

static int parse_options(struct init_opts *o, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"user", required_argument, NULL, 'u'},
	    {"password-file", required_argument, NULL, 'p'},
	    {"no-password", no_argument, NULL, 'n'},
	    {"hostname", required_argument, NULL, 'H'},
	    {"domain", required_argument, NULL, 'd'},
	    {"force", no_argument, NULL, 'f'},
	    {"local", no_argument, NULL, 'l'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "u:p:nH:d:f", opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			o->user = optarg;
			break;
		case 'p':
			o->pwfile = optarg;
			break;
		case 'n':
			o->nopw = 1;
			break;
		case 'H':
			o->hostname = optarg;
			break;
		case 'd':
			o->domain = optarg;
			break;
		case 'f':
			o->force = 1;
			break;
		case 'l':
			o->local = 1;
			break;
		default:
			return -1;
		}
	}
	return argc - optind == 1 ? 0 : -1;
}

/* The host name (this machine's by default) and the domain (its tail). */
static int names(struct init_opts *o)
{
	if (o->hostname == NULL) {
		if (gethostname(o->host, sizeof(o->host)) != 0 || o->host[0] == '\0')
			mk_strlcpy(o->host, "localhost.localdomain", sizeof(o->host));
		o->host[sizeof(o->host) - 1] = '\0';
		o->hostname = o->host;
	}
	if (o->domain == NULL) {
		const char *dot = strchr(o->hostname, '.');
		mk_strlcpy(o->dom, dot != NULL && dot[1] != '\0' ? dot + 1 : "localdomain",
			   sizeof(o->dom));
		o->domain = o->dom;
	}
	for (const char *p = o->hostname; *p; p++)
		if (!(*p == '.' || *p == '-' || (*p >= '0' && *p <= '9') ||
		      (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) {
			cli_error("init: '%s' is not a host name", o->hostname);
			return -1;
		}
	return 0;
}

/* DIR and its sub-folders; refuses an instance that exists without --force. */
static int make_dirs(struct init_opts *o, const char *arg)
{
	static const char *const subdirs[] = {"tls", "data", "data/run", "mail"};
	char path[PATH_MAX + 64];

	if (mk_mkdirs(arg, 0755) < 0 || realpath(arg, o->dir) == NULL) {
		cli_error("init: cannot make %s: %s", arg, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/mailkeep.conf", o->dir);
	if (access(path, F_OK) == 0 && !o->force) {
		cli_error("init: %s exists already: %s is an instance (--force writes over its "
			  "config and certificate)",
			  path, o->dir);
		return -1;
	}
	if (names(o) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", o->dir, subdirs[i]);
		if (mk_mkdirs(path, i < 2 ? 0700 : 0755) < 0) {
			cli_error("init: cannot make %s: %s", path, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* Not made by root (or with --local): the services on unprivileged ports of
 * 127.0.0.1, written only for the services this build knows, so that `check`
 * stays clean. */
static void local_ports(FILE *f)
{
	static const struct {
		const char *name, *value;
	} ports[] = {
	    {"smtpd_listen", "127.0.0.1:2525"},
	    {"lmtp_listen", "unix:$run_directory/lmtp, 127.0.0.1:2424"},
	    {"imapd_listen", "127.0.0.1:1143"},
	    {"imapd_tls_listen", "127.0.0.1:1993"},
	    {"managesieve_listen", "127.0.0.1:4190"},
	};
	char perr[256];
	struct config *known = params_load(NULL, perr, sizeof(perr));

	fprintf(f, "\n# Not made by root (or made with --local): unprivileged "
		   "ports on 127.0.0.1.\n");
	for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
		if (known != NULL && config_get(known, ports[i].name) != NULL)
			fprintf(f, "%s = %s\n", ports[i].name, ports[i].value);
		else
			fprintf(f, "# %s = %s   (for when that service is built)\n", ports[i].name,
				ports[i].value);
	}
	config_free(&known);
}

/* DIR/mailkeep.conf; the command's configuration from now on. */
static int write_config(struct cli *cli, const struct init_opts *o)
{
	char *conf = NULL, date[64], path[PATH_MAX + 64];
	size_t conflen = 0;
	FILE *f = open_memstream(&conf, &conflen);
	int root = geteuid() == 0 && !o->local;

	if (f == NULL)
		log_fatal("out of memory (open_memstream)");
	rfc5322_date(time(NULL), date, sizeof(date));
	fprintf(f,
		"# mailkeep.conf, made by `mailkeep init` on %s.\n"
		"# Syntax as Postfix's main.cf. Every setting with its default and meaning:\n"
		"#   mailkeep check --list     or     man 5 mailkeep.conf\n"
		"# Check this file after a change with: mailkeep -c %s/mailkeep.conf check\n"
		"\n"
		"config_directory = %s\n"
		"data_directory = $config_directory/data\n"
		"myhostname = %s\n"
		"mydomain = %s\n"
		"mydestination = $myhostname, localhost, $mydomain\n"
		"log_target = %s\n"
		"mount_point = $config_directory/mail\n",
		date, o->dir, o->dir, o->hostname, o->domain, root ? "syslog" : "stderr");
	if (!root)
		local_ports(f);
	else /* ManageSieve is off by default (tests and other instances share hosts) */
		fprintf(f, "# ManageSieve (RFC 5804), for mail programs' filter editors\n"
			   "managesieve_listen = 0.0.0.0:4190\n");
	fclose(f);
	snprintf(path, sizeof(path), "%s/mailkeep.conf", o->dir);
	int rc = write_text(path, conf, 0644);
	free(conf);
	if (rc < 0)
		return -1;
	cli->conf_path = xstrdup(path);
	cli->conf_given = 1;
	return 0;
}

/* The first user, with a welcome message in INBOX (a user that exists is kept). */
static int add_first_user(struct store *store, struct init_opts *o)
{
	struct add_user a = {0};
	char pw[256];
	int rc;

	if (mk_strlcpy(a.u.name, o->user, sizeof(a.u.name)) >= sizeof(a.u.name)) {
		cli_error("init: the user name is too long");
		return -1;
	}
	a.u.created = (int64_t)time(NULL);
	if (!o->nopw && (o->pwfile != NULL || isatty(STDIN_FILENO))) {
		if (cli_read_password(o->pwfile, 1, pw, sizeof(pw)) < 0)
			return -1;
		if (password_hash(pw, a.u.password, sizeof(a.u.password)) < 0) {
			cli_error("init: cannot hash the password");
			return -1;
		}
		explicit_bzero(pw, sizeof(pw));
	} else {
		o->nopw = 1;
	}
	rc = store_write(store, do_add_user, &a);
	explicit_bzero(a.u.password, sizeof(a.u.password));
	if (rc == STORE_EEXIST) {
		printf("user %s exists already: kept as it is\n", o->user);
		return 0;
	}
	if (rc != 0) {
		cli_error("init: cannot add user %s: %s", o->user,
			  rc == STORE_EINVAL ? "not a usable name" : cli_store_hint(rc));
		return -1;
	}
	char *msg;
	size_t len;
	uint8_t hash[STORE_HASH_LEN];
	struct store_rcpt rcpt = {.user = o->user, .mailbox = "INBOX"};
	if (welcome_message(o->user, o->hostname, o->domain, o->dir, &msg, &len) < 0)
		log_fatal("out of memory (the welcome message)");
	rc = store_deliver(store, msg, len, (int64_t)time(NULL), &rcpt, 1, hash);
	free(msg);
	if (rc != 0 || rcpt.result != 0) {
		cli_error("init: cannot deliver the welcome message: %s",
			  store_strerror(rc != 0 ? rc : rcpt.result));
		return -1;
	}
	printf("user %s added%s, with a welcome message in INBOX\n", o->user,
	       o->nopw ? " without a password (set one: mailkeep user passwd)" : "");
	return 0;
}

static int run(struct cli *cli, int argc, char **argv)
{
	struct init_opts o = {0};
	char cert[PATH_MAX + 32], key[PATH_MAX + 32], err[512];
	struct store *store;

	if (parse_options(&o, argc, argv) < 0)
		return cli_usage(&cmd_init);
	if (make_dirs(&o, argv[optind]) < 0 || write_config(cli, &o) < 0)
		return 1;
	snprintf(cert, sizeof(cert), "%s/tls/cert.pem", o.dir);
	snprintf(key, sizeof(key), "%s/tls/key.pem", o.dir);
	if (tls_make_self_signed(o.hostname, cert, key, err, sizeof(err)) < 0) {
		cli_error("init: cannot make the certificate: %s", err);
		return 1;
	}
	if ((store = cli_store(cli, 0)) == NULL)
		return 1;
	if (o.user != NULL && add_first_user(store, &o) < 0)
		return 1;
	printf("instance ready in %s\n  config  %s/mailkeep.conf\n  store   %s/data/store\n  tls   "
	       "  %s/tls/cert.pem\n"
	       "use it with:  export MAILKEEP_CONF=%s/mailkeep.conf\n",
	       o.dir, o.dir, o.dir, o.dir, o.dir);
	return 0;
}

const struct command cmd_init = {
    "init",
    "[--user NAME [--password-file FILE]] [--hostname H] DIR",
    "make an instance: config, certificate, store, a first user",
    init_help,
    run,
};
