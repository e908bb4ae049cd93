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

struct alias_cmd {
	struct cli *cli;
	struct store *store;
	struct alias_args a;
};

/* A store error of `alias add|del|list` as a message; 0 if none. */
static int alias_result(int rc, const char *sub, const struct alias_args *a)
{
	if (rc == STORE_EEXIST) {
		cli_error("alias add: %s exists already (alias del it first)", a->address);
		return 1;
	}
	if (rc == STORE_ENOTFOUND) {
		cli_error("alias %s: no alias %s", sub, a->address);
		return 1;
	}
	if (rc == STORE_EINVAL) {
		cli_error("alias %s: '%s' is not a usable address", sub, a->address);
		return 1;
	}
	if (rc != 0) {
		cli_error("alias %s: %s", sub, cli_store_hint(rc));
		return 1;
	}
	return 0;
}

static int alias_add(void *arg)
{
	struct alias_cmd *c = arg;
	int rc;

	if (strchr(c->a.target, '@') == NULL && cli_directory_embedded(c->cli)) {
		/* a target without '@' is a user name: refuse a typo rather than lose mail later */
		struct store_txn *txn = NULL;
		struct store_user u;
		if ((rc = store_read_begin(c->store, &txn)) == 0) {
			rc = store_user_get(txn, c->a.target, &u);
			store_read_end(&txn);
		}
		if (rc == STORE_ENOTFOUND) {
			cli_error("alias add: no user '%s' (mailkeep user list shows them; a "
				  "target with '@' is an "
				  "address)",
				  c->a.target);
			return 1;
		}
	}
	if (alias_result(store_write(c->store, do_add, &c->a), "add", &c->a) != 0)
		return 1;
	printf("alias %s -> %s added\n", c->a.address, c->a.target);
	return 0;
}

static int alias_del(void *arg)
{
	struct alias_cmd *c = arg;

	if (alias_result(store_write(c->store, do_del, &c->a), "del", &c->a) != 0)
		return 1;
	printf("alias %s deleted\n", c->a.address);
	return 0;
}

static int alias_list(void *arg)
{
	struct alias_cmd *c = arg;
	struct store_txn *txn = NULL;
	int rc;

	if ((rc = store_read_begin(c->store, &txn)) == 0) {
		rc = store_alias_foreach(txn, print_alias, NULL);
		store_read_end(&txn);
	}
	return alias_result(rc, "list", &c->a);
}

/* flags: the number of arguments after the sub-command, and SUB_READ_ONLY. */
#define ARGS(n) ((n) << 4)
static const struct subcommand alias_subcommands[] = {
    {"add", ARGS(2), alias_add},
    {"del", ARGS(1), alias_del},
    {"list", ARGS(0) | SUB_READ_ONLY, alias_list},
    {NULL, 0, NULL},
};

static int run(struct cli *cli, int argc, char **argv)
{
	struct alias_cmd c = {.cli = cli};
	const struct subcommand *sub;

	if (argc < 2 || (sub = cli_subcommand_find(alias_subcommands, argv[1])) == NULL ||
	    argc - 2 != sub->flags >> 4)
		return cli_usage(&cmd_alias);
	c.a.address = argc > 2 ? argv[2] : NULL;
	c.a.target = argc > 3 ? argv[3] : NULL;
	if ((c.store = cli_store(cli, (sub->flags & SUB_READ_ONLY) != 0)) == NULL)
		return 1;
	return sub->run(&c);
}

const struct command cmd_alias = {
    "alias",
    "add ADDRESS TARGET | del ADDRESS | list",
    "manage addresses that lead to users",
    alias_help,
    run,
};
