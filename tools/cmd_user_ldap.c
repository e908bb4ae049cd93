/* cmd_user_ldap — `mailkeep user list|show|test-password` against the LDAP
 * directory (see tools/cmd_user_ldap.h). Read-only: users are changed with the
 * LDAP tools (ldapadd, ldapmodify, ldappasswd, ldapdelete), which this says. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "index/dirs.h"
#include "lib/directory.h"
#include "lib/log.h"
#include "tools/cmd_user_ldap.h"

#define READ_ONLY_HINT                                                                              \
	"users come from the LDAP directory (user_directory = %s) and are read-only here: add, change " \
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
		cli_error("user %s: the LDAP directory cannot answer now (%s); try again later", what, dir_error());
		return EXIT_TEMPFAIL;
	default:
		cli_error("user %s: %s", what, dir_error()[0] != '\0' ? dir_error() : dir_result_str(r));
		return 1;
	}
}

int user_ldap_run(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"password-file", required_argument, NULL, 'p'},
		{NULL, 0, NULL, 0},
	};
	const char *pwfile = NULL, *sub, *name;
	struct directory *dir = NULL;
	struct dir_user u;
	char err[512], pw[1024];
	enum dir_result r;
	int c, status = 1;

	if (argc < 2)
		return cli_usage(&cmd_user);
	sub = argv[1];
	argc--;
	argv++;
	if (cli_config(cli) == NULL)
		return 1;
	if (strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0 && strcmp(sub, "test-password") != 0) {
		cli_error("user %s: " READ_ONLY_HINT, sub, config_get(cli->cfg, "user_directory"));
		return 1;
	}
	while ((c = getopt_long(argc, argv, "p:", opts, NULL)) != -1) {
		if (c != 'p')
			return cli_usage(&cmd_user);
		pwfile = optarg;
	}
	if ((strcmp(sub, "list") == 0) != (argc - optind == 0) || argc - optind > 1)
		return cli_usage(&cmd_user);
	name = argc > optind ? argv[optind] : NULL;
	if (directory_open(cli->cfg, NULL, &dir, err, sizeof err) < 0) {
		cli_error("%s", err);
		return 1;
	}
	if (strcmp(sub, "list") == 0) {
		r = dir_list(dir, print_user_name, NULL);
		status = result_status(r, "list", "");
	} else if (strcmp(sub, "show") == 0) {
		memset(&u, 0, sizeof u);
		r = strchr(name, '@') != NULL ? dir_lookup_address(dir, name, &u) : dir_get_user(dir, name, &u);
		status = result_status(r, "show", name);
		if (status == 0) {
			printf("user %s\nmail %s\nuid %u\ngid %u\ndn %s\n", u.name, u.mail, (unsigned)u.uid,
			       (unsigned)u.gid, u.dn);
			printf("directory %s (read-only: change users with the LDAP tools)\n",
			       config_get(cli->cfg, "user_directory"));
			show_mailboxes(cli, u.name);
		}
	} else {
		if (cli_read_password(pwfile, 0, pw, sizeof pw) == 0) {
			r = dir_authenticate(dir, name, pw, &u);
			explicit_bzero(pw, sizeof pw);
			status = result_status(r, "test-password", name);
			if (status == 0)
				printf("password of %s is correct (user %s, %s)\n", name, u.name, u.dn);
		}
	}
	dir_close(&dir);
	return status;
}
