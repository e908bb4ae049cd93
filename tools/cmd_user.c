/* cmd_user — `mailkeep user add|del|passwd|list|show` for the embedded user
 * directory (users in the store). Passwords are hashed with lib/password.h and
 * read from a file, standard input or the terminal: never from the command
 * line, where `ps` would show them. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    "  user show NAME          id, owner on the mount, mailboxes with their counts\n"
    "  user test-password NAME [--password-file FILE]   checks a password (exit 0 if right)\n"
    "With user_directory = ldap:FILE, list, show and test-password ask the directory,\n"
    "and add, del and passwd are refused (change users with the LDAP tools).\n"
    "--uid/--gid set the owner of the user's files on the mount (default: the mount's).\n\n"
    "examples:\n"
    "  mailkeep user add bob --password-file /root/bob.pw\n"
    "  printf '%s\\n' \"$PW\" | mailkeep user passwd bob --password-file -\n"
    "  mailkeep user show bob\n";

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

static int run(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"password-file", required_argument, NULL, 'p'},
	    {"no-password", no_argument, NULL, 'n'},
	    {"uid", required_argument, NULL, 'u'},
	    {"gid", required_argument, NULL, 'g'},
	    {"yes", no_argument, NULL, 'y'},
	    {NULL, 0, NULL, 0},
	};
	const char *pwfile = NULL;
	int nopw = 0, yes = 0, c, rc;
	uint64_t uid = 0, gid = 0;
	struct store_user u;
	struct user_args a = {.user = &u};
	struct store *store;

	if (argc < 2)
		return cli_usage(&cmd_user);
	if (cli_config(cli) == NULL)
		return 1;
	if (!cli_directory_embedded(cli))
		return user_ldap_run(cli, argc, argv); /* tools/cmd_user_ldap.c */
	const char *sub = argv[1];
	argc--;
	argv++;
	while ((c = getopt_long(argc, argv, "p:nu:g:y", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			pwfile = optarg;
			break;
		case 'n':
			nopw = 1;
			break;
		case 'u':
		case 'g':
			if (mk_parse_u64(optarg, 0, 0xfffffffe, c == 'u' ? &uid : &gid) < 0) {
				cli_error("user: --%s wants a number", c == 'u' ? "uid" : "gid");
				return EXIT_USAGE;
			}
			break;
		case 'y':
			yes = 1;
			break;
		default:
			return cli_usage(&cmd_user);
		}
	}
	int nargs = argc - optind;
	const char *name = nargs > 0 ? argv[optind] : NULL;
	int needs_name = strcmp(sub, "list") != 0;
	if ((needs_name && nargs != 1) || (!needs_name && nargs != 0))
		return cli_usage(&cmd_user);
	if (strcmp(sub, "add") != 0 && strcmp(sub, "del") != 0 && strcmp(sub, "passwd") != 0 &&
	    strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0 &&
	    strcmp(sub, "test-password") != 0) {
		cli_error(
		    "user: unknown sub-command '%s' (add, del, passwd, list, show, test-password)",
		    sub);
		return EXIT_USAGE;
	}
	if ((store = cli_store(cli, strcmp(sub, "list") == 0 || strcmp(sub, "show") == 0)) == NULL)
		return 1;
	a.name = name;

	if (strcmp(sub, "add") == 0) {
		memset(&u, 0, sizeof(u));
		if (mk_strlcpy(u.name, name, sizeof(u.name)) >= sizeof(u.name)) {
			cli_error("user add: the name is longer than %d bytes", STORE_NAME_MAX);
			return 1;
		}
		u.uid = (uint32_t)uid;
		u.gid = (uint32_t)gid;
		u.created = (int64_t)time(NULL);
		if (set_password(&u, pwfile, nopw) < 0)
			return 1;
		rc = store_write(store, do_add, &a);
		explicit_bzero(u.password, sizeof(u.password));
		if (rc == STORE_EEXIST) {
			cli_error("user add: '%s' exists already", name);
			return 1;
		}
		if (rc == STORE_EINVAL) {
			cli_error("user add: '%s' is not a usable name (1-%d bytes, no '/', no "
				  "control characters)",
				  name, STORE_NAME_MAX);
			return 1;
		}
		if (rc != 0) {
			cli_error("user add: %s", cli_store_hint(rc));
			return 1;
		}
		printf("user %s added%s\n", name,
		       nopw ? " (no password: cannot log in until `mailkeep user passwd`)" : "");
		return 0;
	}
	if (strcmp(sub, "test-password") == 0) {
		char pw[256];
		int ok;
		if (get_user(store, name, &u) != 0)
			return 1;
		if (cli_read_password(pwfile, 0, pw, sizeof(pw)) < 0)
			return 1;
		ok = password_verify(pw, u.password);
		explicit_bzero(pw, sizeof(pw));
		explicit_bzero(u.password, sizeof(u.password));
		if (!ok) {
			cli_error("user test-password: wrong password for %s", name);
			return 1;
		}
		printf("password of %s is correct\n", name);
		return 0;
	}
	if (strcmp(sub, "passwd") == 0) {
		if (get_user(store, name, &u) != 0)
			return 1;
		if (set_password(&u, pwfile, 0) < 0)
			return 1;
		rc = store_write(store, do_update, &a);
		explicit_bzero(u.password, sizeof(u.password));
		if (rc != 0) {
			cli_error("user passwd: %s", cli_store_hint(rc));
			return 1;
		}
		printf("password of %s changed\n", name);
		return 0;
	}
	if (strcmp(sub, "del") == 0) {
		char q[512];
		if (get_user(store, name, &u) != 0)
			return 1;
		snprintf(q, sizeof(q), "Delete user %s and ALL of their mail?", name);
		if (!yes && !cli_confirm(q)) {
			cli_error(
			    "user del: not deleted (add --yes to delete %s and all of their mail)",
			    name);
			return 1;
		}
		rc = store_write(store, do_del, &a);
		if (rc != 0) {
			cli_error("user del: %s", cli_store_hint(rc));
			return 1;
		}
		printf("user %s deleted\n", name);
		return 0;
	}
	struct store_txn *txn = NULL;
	if ((rc = store_read_begin(store, &txn)) != 0) {
		cli_error("cannot read the store: %s", store_strerror(rc));
		return 1;
	}
	if (strcmp(sub, "list") == 0) {
		rc = store_user_foreach(txn, print_name, NULL);
	} else {
		rc = store_user_get(txn, name, &u);
		if (rc == 0) {
			char when[64] = "?";
			time_t t = (time_t)u.created;
			struct tm tm;
			if (gmtime_r(&t, &tm) != NULL)
				strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
			printf(
			    "user %s\nid %u\nuid %u\ngid %u\npassword %s\ncreated %s\nmailboxes:\n",
			    u.name, u.id, u.uid, u.gid, u.password[0] == '\0' ? "none" : "set",
			    when);
			rc = store_mailbox_foreach(txn, u.id, print_mailbox, NULL);
		}
	}
	store_read_end(&txn);
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

const struct command cmd_user = {
    "user",
    "add|del|passwd|list|show|test-password [NAME] [options]",
    "manage the users kept in the store",
    user_help,
    run,
};
