/* cmd_user_ldap — `mailkeep user list|show|test-password` against the LDAP
 * directory (see tools/cmd_user_ldap.h). Read-only: users are changed with the
 * LDAP tools (ldapadd, ldapmodify, ldappasswd, ldapdelete), which this says. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "index/dir.h"
#include "lib/log.h"
#include "tools/cmd_user_ldap.h"

#define READ_ONLY_HINT                                                                             \
	"users come from the LDAP directory (user_directory = %s) and are read-only here: add, "   \
	"change "                                                                                  \
	"and delete them with the LDAP tools (ldapadd, ldapmodify, ldappasswd, ldapdelete)"

static int print_user_name(const struct dir_user *u, void *ctx)
{
	(void)ctx;
	printf("%s\n", u->name);
	return 0;
}

static int print_mailbox(const struct store_mailbox *mb, void *ctx)
{
	(void)ctx;
	printf("  %-24s messages %u unseen %u bytes %llu\n", mb->name, mb->messages, mb->unseen,
	       (unsigned long long)mb->bytes);
	return 0;
}

/* The user's mailboxes, if mail was ever delivered to them (the store knows
 * LDAP users from their first message on). */
static void show_mailboxes(struct cli *cli, const char *name)
{
	struct store *store = cli_store(cli, 1);
	struct store_txn *txn = NULL;
	struct store_user su;

	if (store == NULL || store_read_begin(store, &txn) != 0)
		return;
	if (store_user_get(txn, name, &su) == 0) {
		printf("mailboxes:\n");
		store_mailbox_foreach(txn, su.id, print_mailbox, NULL);
	} else {
		printf("mailboxes: none yet (no mail delivered)\n");
	}
	store_read_end(&txn);
}

static int result_status(enum dir_result r, const char *what, const char *name)
{
	char safe[DIR_NAME_MAX];

	log_printable(safe, sizeof safe, name, strlen(name));
	switch (r) {
	case DIR_OK:
		return 0;
	case DIR_NOTFOUND:
		cli_error("user %s: no user or address '%s' in the LDAP directory", what, safe);
		return 1;
	case DIR_BADPASS:
		cli_error("user %s: wrong password for %s", what, safe);
		return 1;
	case DIR_TEMPFAIL:
		cli_error("user %s: the LDAP directory cannot answer now (%s); try again later",
			  what, dir_error());
		return EXIT_TEMPFAIL;
	default:
		cli_error("user %s: %s", what,
			  dir_error()[0] != '\0' ? dir_error() : dir_result_str(r));
		return 1;
	}
}

struct ldap_cmd {
	struct cli *cli;
	struct directory *dir;
	const char *name, *pwfile;
};

static int ldap_list(void *arg)
{
	struct ldap_cmd *c = arg;

	return result_status(dir_list(c->dir, print_user_name, NULL), "list", "");
}

static int ldap_show(void *arg)
{
	struct ldap_cmd *c = arg;
	struct dir_user u;
	int status;

	memset(&u, 0, sizeof u);
	status =
	    result_status(strchr(c->name, '@') != NULL ? dir_lookup_address(c->dir, c->name, &u)
						       : dir_get_user(c->dir, c->name, &u),
			  "show", c->name);
	if (status == 0) {
		printf("user %s\nmail %s\nuid %u\ngid %u\ndn %s\n", u.name, u.mail, (unsigned)u.uid,
		       (unsigned)u.gid, u.dn);
		printf("directory %s (read-only: change users with the LDAP tools)\n",
		       c->cli->common.user_directory);
		show_mailboxes(c->cli, u.name);
	}
	return status;
}

static int ldap_test_password(void *arg)
{
	struct ldap_cmd *c = arg;
	struct dir_user u;
	char pw[1024];
	int status;

	if (cli_read_password(c->pwfile, 0, pw, sizeof pw) != 0)
		return 1;
	enum dir_result r = dir_authenticate(c->dir, c->name, pw, &u);
	explicit_bzero(pw, sizeof pw);
	status = result_status(r, "test-password", c->name);
	if (status == 0)
		printf("password of %s is correct (user %s, %s)\n", c->name, u.name, u.dn);
	return status;
}

/* What LDAP users allow here (the others are changed with the LDAP tools). */
static const struct subcommand ldap_subcommands[] = {
    {"list", SUB_READ_ONLY, ldap_list},
    {"show", SUB_NAME | SUB_READ_ONLY, ldap_show},
    {"test-password", SUB_NAME, ldap_test_password},
    {NULL, 0, NULL},
};

int user_ldap_run(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"password-file", required_argument, NULL, 'p'},
	    {NULL, 0, NULL, 0},
	};
	struct ldap_cmd lc = {.cli = cli};
	const struct subcommand *sub;
	char err[512];
	int c, status;

	if (argc < 2)
		return cli_usage(&cmd_user);
	argc--;
	argv++;
	if (cli_config(cli) == NULL)
		return 1;
	if ((sub = cli_subcommand_find(ldap_subcommands, argv[0])) == NULL) {
		cli_error("user %s: " READ_ONLY_HINT, argv[0], cli->common.user_directory);
		return 1;
	}
	while ((c = getopt_long(argc, argv, "p:", opts, NULL)) != -1) {
		if (c != 'p')
			return cli_usage(&cmd_user);
		lc.pwfile = optarg;
	}
	if (argc - optind != ((sub->flags & SUB_NAME) ? 1 : 0))
		return cli_usage(&cmd_user);
	lc.name = argc > optind ? argv[optind] : NULL;
	if (directory_open(cli->cfg, NULL, &lc.dir, err, sizeof err) < 0) {
		cli_error("%s", err);
		return 1;
	}
	status = sub->run(&lc);
	dir_close(&lc.dir);
	return status;
}
