/* cmd_alias — `mailkeep alias add|del|list`: addresses that lead to a user (or
 * to another address), kept in the store. */
#include <getopt.h>
#include <string.h>

#include "tools/cli.h"

static const char alias_help[] =
    "  alias add ADDRESS TARGET   mail for ADDRESS goes to TARGET (a user name or an address)\n"
    "  alias del ADDRESS\n"
    "  alias list                 \"ADDRESS TARGET\" per line\n"
    "Addresses are lower-cased. A user's own name@domain for each domain of\n"
    "mydestination reaches them without an alias.\n\n"
    "examples:\n"
    "  mailkeep alias add postmaster@example.org bob\n"
    "  mailkeep alias add bob.smith@example.org bob\n";

struct alias_args {
	const char *address, *target;
};

static int do_add(struct store_txn *txn, void *ctx)
{
	struct alias_args *a = ctx;
	return store_alias_add(txn, a->address, a->target);
}

static int do_del(struct store_txn *txn, void *ctx)
{
	struct alias_args *a = ctx;
	return store_alias_del(txn, a->address);
}

static int print_alias(const char *address, const char *target, void *ctx)
{
	(void)ctx;
	printf("%s %s\n", address, target);
	return 0;
}

static int run(struct cli *cli, int argc, char **argv)
{
	struct alias_args a = {0};
	struct store *store;
	int rc;

	if (argc < 2)
		return cli_usage(&cmd_alias);
	const char *sub = argv[1];
	if (strcmp(sub, "add") == 0 && argc == 4) {
		a.address = argv[2];
		a.target = argv[3];
	} else if (strcmp(sub, "del") == 0 && argc == 3) {
		a.address = argv[2];
	} else if (!(strcmp(sub, "list") == 0 && argc == 2)) {
		return cli_usage(&cmd_alias);
	}
	if ((store = cli_store(cli, strcmp(sub, "list") == 0)) == NULL)
		return 1;
	if (strcmp(sub, "add") == 0 && strchr(a.target, '@') == NULL &&
	    cli_directory_embedded(cli)) {
		/* a target without '@' is a user name: refuse a typo rather than lose mail later */
		struct store_txn *txn = NULL;
		struct store_user u;
		if ((rc = store_read_begin(store, &txn)) == 0) {
			rc = store_user_get(txn, a.target, &u);
			store_read_end(&txn);
		}
		if (rc == STORE_ENOTFOUND) {
			cli_error("alias add: no user '%s' (mailkeep user list shows them; a "
				  "target with '@' is an "
				  "address)",
				  a.target);
			return 1;
		}
	}
	if (strcmp(sub, "list") == 0) {
		struct store_txn *txn = NULL;
		if ((rc = store_read_begin(store, &txn)) == 0) {
			rc = store_alias_foreach(txn, print_alias, NULL);
			store_read_end(&txn);
		}
	} else {
		rc = store_write(store, strcmp(sub, "add") == 0 ? do_add : do_del, &a);
	}
	if (rc == STORE_EEXIST) {
		cli_error("alias add: %s exists already (alias del it first)", a.address);
		return 1;
	}
	if (rc == STORE_ENOTFOUND) {
		cli_error("alias %s: no alias %s", sub, a.address);
		return 1;
	}
	if (rc == STORE_EINVAL) {
		cli_error("alias %s: '%s' is not a usable address", sub, a.address);
		return 1;
	}
	if (rc != 0) {
		cli_error("alias %s: %s", sub, cli_store_hint(rc));
		return 1;
	}
	if (strcmp(sub, "add") == 0)
		printf("alias %s -> %s added\n", a.address, a.target);
	else if (strcmp(sub, "del") == 0)
		printf("alias %s deleted\n", a.address);
	return 0;
}

const struct command cmd_alias = {
    "alias",
    "add ADDRESS TARGET | del ADDRESS | list",
    "manage addresses that lead to users",
    alias_help,
    run,
};
