/* cmd_user — `mailkeep user add|del|passwd|list|show|quota` for the embedded user
 * directory (users in the store). Passwords are hashed with lib/password.h and
 * read from a file, standard input or the terminal: never from the command
 * line, where `ps` would show them. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "index/quota.h"
#include "lib/password.h"
#include "lib/util.h"
#include "tools/cli.h"
#include "tools/cmd_user_ldap.h"

static const char user_help[] =
    "  user add NAME [--password-file FILE | --no-password] [--uid N] [--gid N]\n"
    "        a new user with INBOX, Sent, Drafts, Junk, Trash and Archive; the password\n"
    "        is the first line of FILE (\"-\": standard input), else asked on the terminal\n"
    "  user passwd NAME [--password-file FILE]     a new password\n"
    "  user del NAME --yes     the user, all of their mail and the aliases pointing at them\n"
    "  user list               one name per line\n"
    "  user show NAME          id, owner on the mount, mailboxes with their counts, quota use\n"
    "  user quota NAME [--storage SIZE|default] [--messages N|default]\n"
    "        sets the user's own limits (SIZE: bytes, or with k, m, g; 0 = no limit;\n"
    "        default = quota_storage_limit / quota_message_limit); without options, shows them\n"
    "  user test-password NAME [--password-file FILE]   checks a password (exit 0 if right)\n"
    "With user_directory = ldap:FILE, list, show and test-password ask the directory,\n"
    "and add, del and passwd are refused (change users with the LDAP tools).\n"
    "--uid/--gid set the owner of the user's files on the mount (default: the mount's).\n\n"
    "examples:\n"
    "  mailkeep user add bob --password-file /root/bob.pw\n"
    "  printf '%s\\n' \"$PW\" | mailkeep user passwd bob --password-file -\n"
    "  mailkeep user show bob\n"
    "  mailkeep user quota bob --storage 2g --messages 100000\n";

static int print_quota(struct store_txn *txn, uint32_t user_id);

struct user_args {
	const char *name;
	struct store_user *user;
	int result;
};

static int do_add(struct store_txn *txn, void *ctx)
{
	struct user_args *a = ctx;
	uint32_t id;
	return store_user_add(txn, a->user, &id);
}

static int do_update(struct store_txn *txn, void *ctx)
{
	struct user_args *a = ctx;
	return store_user_update(txn, a->user);
}

static int do_del(struct store_txn *txn, void *ctx)
{
	struct user_args *a = ctx;
	return store_user_del(txn, a->name);
}

static int get_user(struct store *store, const char *name, struct store_user *u)
{
	struct store_txn *txn = NULL;
	int rc = store_read_begin(store, &txn);

	if (rc == 0) {
		rc = store_user_get(txn, name, u);
		store_read_end(&txn);
	}
	if (rc == STORE_ENOTFOUND)
		cli_error("no user '%s' (mailkeep user list shows them)", name);
	else if (rc != 0)
		cli_error("cannot read the store: %s", store_strerror(rc));
	return rc;
}

static int print_name(const struct store_user *u, void *ctx)
{
	(void)ctx;
	printf("%s\n", u->name);
	return 0;
}

static int print_mailbox(const struct store_mailbox *mb, void *ctx)
{
	static const char *const su[] = {"Sent",    "Drafts", "Junk",	"Trash",
					 "Archive", "All",    "Flagged"};
	char use[64] = "";
	(void)ctx;
	for (int i = 0; i < 7; i++)
		if (mb->special_use & (1u << i)) {
			snprintf(use, sizeof(use), " \\%s", su[i]);
			break;
		}
	printf("  %-24s messages %u unseen %u bytes %llu uidvalidity %u uidnext %u%s\n", mb->name,
	       mb->messages, mb->unseen, (unsigned long long)mb->bytes, mb->uidvalidity,
	       mb->uidnext, use);
	return 0;
}

static int set_password(struct store_user *u, const char *file, int none)
{
	char pw[256];

	u->password[0] = '\0';
	if (none)
		return 0;
	if (cli_read_password(file, 1, pw, sizeof(pw)) < 0)
		return -1;
	if (password_hash(pw, u->password, sizeof(u->password)) < 0) {
		explicit_bzero(pw, sizeof(pw));
		cli_error("cannot hash the password");
		return -1;
	}
	explicit_bzero(pw, sizeof(pw));
	return 0;
}

/* What the sub-commands share: the options and the NAME. */
struct user_cmd {
	struct store *store;
	struct cli *cli;
	const char *name;
	const char *pwfile;
	int nopw, yes;
	uint64_t uid, gid;
	const char *storage, *messages; /* user quota's options */
};

static int user_add(void *arg)
{
	struct user_cmd *c = arg;
	struct store_user u;
	struct user_args a = {.name = c->name, .user = &u};
	int rc;

	memset(&u, 0, sizeof(u));
	if (mk_strlcpy(u.name, c->name, sizeof(u.name)) >= sizeof(u.name)) {
		cli_error("user add: the name is longer than %d bytes", STORE_NAME_MAX);
		return 1;
	}
	u.uid = (uint32_t)c->uid;
	u.gid = (uint32_t)c->gid;
	u.created = (int64_t)time(NULL);
	if (set_password(&u, c->pwfile, c->nopw) < 0)
		return 1;
	rc = store_write(c->store, do_add, &a);
	explicit_bzero(u.password, sizeof(u.password));
	if (rc == STORE_EEXIST) {
		cli_error("user add: '%s' exists already", c->name);
		return 1;
	}
	if (rc == STORE_EINVAL) {
		cli_error("user add: '%s' is not a usable name (1-%d bytes, no '/', no "
			  "control characters)",
			  c->name, STORE_NAME_MAX);
		return 1;
	}
	if (rc != 0) {
		cli_error("user add: %s", cli_store_hint(rc));
		return 1;
	}
	printf("user %s added%s\n", c->name,
	       c->nopw ? " (no password: cannot log in until `mailkeep user passwd`)" : "");
	return 0;
}

static int user_test_password(void *arg)
{
	struct user_cmd *c = arg;
	struct store_user u;
	char pw[256];
	int ok;

	if (get_user(c->store, c->name, &u) != 0)
		return 1;
	if (cli_read_password(c->pwfile, 0, pw, sizeof(pw)) < 0)
		return 1;
	ok = password_verify(pw, u.password);
	explicit_bzero(pw, sizeof(pw));
	explicit_bzero(u.password, sizeof(u.password));
	if (!ok) {
		cli_error("user test-password: wrong password for %s", c->name);
		return 1;
	}
	printf("password of %s is correct\n", c->name);
	return 0;
}

static int user_passwd(void *arg)
{
	struct user_cmd *c = arg;
	struct store_user u;
	struct user_args a = {.name = c->name, .user = &u};
	int rc;

	if (get_user(c->store, c->name, &u) != 0)
		return 1;
	if (set_password(&u, c->pwfile, 0) < 0)
		return 1;
	rc = store_write(c->store, do_update, &a);
	explicit_bzero(u.password, sizeof(u.password));
	if (rc != 0) {
		cli_error("user passwd: %s", cli_store_hint(rc));
		return 1;
	}
	printf("password of %s changed\n", c->name);
	return 0;
}

static int user_del(void *arg)
{
	struct user_cmd *c = arg;
	struct store_user u;
	struct user_args a = {.name = c->name, .user = &u};
	char q[512];
	int rc;

	if (get_user(c->store, c->name, &u) != 0)
		return 1;
	snprintf(q, sizeof(q), "Delete user %s and ALL of their mail?", c->name);
	if (!c->yes && !cli_confirm(q)) {
		cli_error("user del: not deleted (add --yes to delete %s and all of their mail)",
			  c->name);
		return 1;
	}
	rc = store_write(c->store, do_del, &a);
	if (rc != 0) {
		cli_error("user del: %s", cli_store_hint(rc));
		return 1;
	}
	printf("user %s deleted\n", c->name);
	return 0;
}

/* The end of list and show: a read error, or an unknown NAME. */
static int read_result(int rc, const char *name)
{
	if (rc == STORE_ENOTFOUND) {
		cli_error("no user '%s' (mailkeep user list shows them)", name);
		return 1;
	}
	if (rc != 0) {
		cli_error("cannot read the store: %s", store_strerror(rc));
		return 1;
	}
	return 0;
}

static int user_list(void *arg)
{
	struct user_cmd *c = arg;
	struct store_txn *txn = NULL;
	int rc = store_read_begin(c->store, &txn);

	if (rc == 0) {
		rc = store_user_foreach(txn, print_name, NULL);
		store_read_end(&txn);
	}
	return read_result(rc, c->name);
}

static int user_show(void *arg)
{
	struct user_cmd *c = arg;
	struct store_txn *txn = NULL;
	struct store_user u;
	int rc = store_read_begin(c->store, &txn);

	if (rc == 0 && (rc = store_user_get(txn, c->name, &u)) == 0) {
		char when[64] = "?";
		time_t t = (time_t)u.created;
		struct tm tm;
		if (gmtime_r(&t, &tm) != NULL)
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
		printf("user %s\nid %u\nuid %u\ngid %u\npassword %s\ncreated %s\nmailboxes:\n",
		       u.name, u.id, u.uid, u.gid, u.password[0] == '\0' ? "none" : "set", when);
		rc = store_mailbox_foreach(txn, u.id, print_mailbox, NULL);
		if (rc == 0)
			rc = print_quota(txn, u.id);
	}
	if (txn != NULL)
		store_read_end(&txn);
	return read_result(rc, c->name);
}

/* "use of limit (percent)" for one resource; the numbers a script or a test
 * compares with IMAP's GETQUOTAROOT (STORAGE there is in KiB, rounded up). */
static void quota_line(const char *what, uint64_t use, uint64_t limit, int own, const char *unit)
{
	if (limit == 0)
		printf("quota %-8s %llu%s of no limit\n", what, (unsigned long long)use, unit);
	else
		printf("quota %-8s %llu%s of %llu%s (%llu%%, %s)\n", what, (unsigned long long)use, unit,
		       (unsigned long long)limit, unit, (unsigned long long)(use * 100 / limit),
		       own ? "the user's own limit" : "the default");
}

static int print_quota(struct store_txn *txn, uint32_t user_id)
{
	struct quota_limits lim, own;
	struct quota_usage use;
	unsigned has = 0;
	uint64_t dedup;
	int rc;

	if (quota_get_own(txn, user_id, &own, &has) != 0)
		has = 0;
	if ((rc = quota_limits(txn, user_id, &lim)) != 0 || (rc = quota_usage(txn, user_id, &use)) != 0 ||
	    (rc = quota_dedup_bytes(txn, user_id, &dedup)) != 0)
		return rc;
	quota_line("storage", use.bytes, lim.storage, has & 1, " bytes");
	quota_line("messages", use.messages, lim.messages, has & 2, "");
	printf("stored   %llu bytes once deduplicated (%llu bytes shared between messages)\n",
	       (unsigned long long)dedup, (unsigned long long)(use.bytes - dedup));
	return 0;
}

struct quota_args {
	const char *name;
	struct quota_limits own;
	unsigned has;
};

static int do_quota(struct store_txn *txn, void *ctx)
{
	struct quota_args *a = ctx;
	struct store_user u;
	int rc = store_user_get(txn, a->name, &u);
	return rc != 0 ? rc : quota_set_own(txn, u.id, &a->own, a->has);
}

/* "2g", "512m", "100000", "default" */
static int quota_value(const char *v, int size, uint64_t *out, int *is_default)
{
	*is_default = strcmp(v, "default") == 0;
	if (*is_default)
		return 0;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	uint64_t mul = 1;
	if (size && *end != '\0' && end[1] == '\0') {
		switch (*end) {
		case 'k': case 'K': mul = 1024; end++; break;
		case 'm': case 'M': mul = 1024 * 1024; end++; break;
		case 'g': case 'G': mul = 1024ULL * 1024 * 1024; end++; break;
		case 't': case 'T': mul = 1024ULL * 1024 * 1024 * 1024; end++; break;
		}
	}
	if (errno != 0 || end == v || *end != '\0' || v[0] == '-' || n > UINT64_MAX / mul)
		return -1;
	*out = (uint64_t)n * mul;
	return 0;
}

static int user_quota(void *arg)
{
	struct user_cmd *c = arg;
	struct quota_args a = {.name = c->name};
	struct store_txn *txn = NULL;
	struct store_user u;
	int rc, d;

	if (c->storage == NULL && c->messages == NULL)
		goto show;
	if ((rc = store_read_begin(c->store, &txn)) != 0)
		return read_result(rc, c->name);
	if ((rc = store_user_get(txn, c->name, &u)) == 0 && quota_get_own(txn, u.id, &a.own, &a.has) != 0) {
		a.has = 0;
		memset(&a.own, 0, sizeof(a.own));
	}
	store_read_end(&txn);
	if (rc != 0)
		return read_result(rc, c->name);
	if (c->storage != NULL) {
		if (quota_value(c->storage, 1, &a.own.storage, &d) < 0) {
			cli_error("user quota: --storage %s: give bytes (k, m, g, t allowed) or default", c->storage);
			return EXIT_USAGE;
		}
		a.has = d ? a.has & ~1u : a.has | 1u;
	}
	if (c->messages != NULL) {
		if (quota_value(c->messages, 0, &a.own.messages, &d) < 0) {
			cli_error("user quota: --messages %s: give a number or default", c->messages);
			return EXIT_USAGE;
		}
		a.has = d ? a.has & ~2u : a.has | 2u;
	}
	if ((rc = store_write(c->store, do_quota, &a)) != 0) {
		cli_error("user quota %s: %s", c->name, cli_store_hint(rc));
		return 1;
	}
show:
	if ((rc = store_read_begin(c->store, &txn)) == 0 && (rc = store_user_get(txn, c->name, &u)) == 0)
		rc = print_quota(txn, u.id);
	store_read_end(&txn);
	return read_result(rc, c->name);
}

/* The sub-commands: name, whether it takes a NAME, whether it only reads. */
static const struct subcommand user_subcommands[] = {
    {"add", SUB_NAME, user_add},
    {"del", SUB_NAME, user_del},
    {"passwd", SUB_NAME, user_passwd},
    {"list", SUB_READ_ONLY, user_list},
    {"show", SUB_NAME | SUB_READ_ONLY, user_show},
    {"quota", SUB_NAME, user_quota},
    {"test-password", SUB_NAME, user_test_password},
    {NULL, 0, NULL},
};

static int parse_options(struct user_cmd *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"password-file", required_argument, NULL, 'p'},
	    {"no-password", no_argument, NULL, 'n'},
	    {"uid", required_argument, NULL, 'u'},
	    {"gid", required_argument, NULL, 'g'},
	    {"yes", no_argument, NULL, 'y'},
	    {"storage", required_argument, NULL, 's'},
	    {"messages", required_argument, NULL, 'm'},
	    {NULL, 0, NULL, 0},
	};
	int o;

	while ((o = getopt_long(argc, argv, "p:nu:g:ys:m:", opts, NULL)) != -1) {
		switch (o) {
		case 'p':
			c->pwfile = optarg;
			break;
		case 'n':
			c->nopw = 1;
			break;
		case 'u':
		case 'g':
			if (mk_parse_u64(optarg, 0, 0xfffffffe, o == 'u' ? &c->uid : &c->gid) < 0) {
				cli_error("user: --%s wants a number", o == 'u' ? "uid" : "gid");
				return EXIT_USAGE;
			}
			break;
		case 'y':
			c->yes = 1;
			break;
		case 's':
			c->storage = optarg;
			break;
		case 'm':
			c->messages = optarg;
			break;
		default:
			return cli_usage(&cmd_user);
		}
	}
	return 0;
}

static int run(struct cli *cli, int argc, char **argv)
{
	struct user_cmd c = {0};
	const struct subcommand *sub;
	int rc;

	if (argc < 2)
		return cli_usage(&cmd_user);
	if (cli_config(cli) == NULL)
		return 1;
	if (!cli_directory_embedded(cli))
		return user_ldap_run(cli, argc, argv); /* tools/cmd_user_ldap.c */
	argc--;
	argv++;
	if ((rc = parse_options(&c, argc, argv)) != 0)
		return rc;
	int nargs = argc - optind;
	c.name = nargs > 0 ? argv[optind] : NULL;
	sub = cli_subcommand_find(user_subcommands, argv[0]);
	if (sub != NULL && nargs != ((sub->flags & SUB_NAME) ? 1 : 0))
		return cli_usage(&cmd_user);
	if (sub == NULL) {
		if (nargs != 1)
			return cli_usage(&cmd_user);
		char names[128];
		cli_subcommand_names(user_subcommands, names, sizeof(names));
		cli_error("user: unknown sub-command '%s' (%s)", argv[0], names);
		return EXIT_USAGE;
	}
	if ((c.store = cli_store(cli, (sub->flags & SUB_READ_ONLY) != 0)) == NULL)
		return 1;
	char qerr[256];
	if (quota_attach(cli->cfg, qerr, sizeof(qerr)) < 0) {
		cli_error("%s", qerr);
		return 1;
	}
	c.cli = cli;
	return sub->run(&c);
}

const struct command cmd_user = {
    "user",
    "add|del|passwd|list|show|quota|test-password [NAME] [options]",
    "manage the users kept in the store",
    user_help,
    run,
};
