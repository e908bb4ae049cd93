/* cmd_sieve — `mailkeep sieve`: users' Sieve scripts from the command line
 * (what Dovecot's `doveadm sieve` does): check a file, put, get, list,
 * activate, deactivate and delete the scripts kept in the store. The same
 * scripts ManageSieve (port 4190) and the mount's .sieve file show. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index/sieve.h"
#include "index/sieve_deliver.h"
#include "lib/util.h"
#include "tools/cli.h"

static const char sieve_help[] =
    "  sieve check FILE                  parses FILE; errors as FILE:LINE:COLUMN: message\n"
    "  sieve put USER NAME FILE [--activate]   stores FILE as the script NAME (checked first)\n"
    "  sieve get USER NAME               prints the script\n"
    "  sieve list USER                   the user's scripts; the active one is marked ACTIVE\n"
    "  sieve activate USER NAME          makes NAME the script run at delivery\n"
    "  sieve deactivate USER             no script runs at delivery\n"
    "  sieve delete USER NAME            deletes a script that is not active\n\n"
    "examples:\n"
    "  mailkeep sieve check lists.sieve\n"
    "  mailkeep sieve put bob rules ~/rules.sieve --activate\n";

struct put_args {
	const char *user, *name;
	const char *text;
	size_t len;
	int activate, op;
	int too_many;
};

enum { OP_PUT, OP_ACTIVATE, OP_DEACTIVATE, OP_DELETE };

static int count_cb(const char *name, size_t len, int active, void *ctx)
{
	(void)len;
	(void)active;
	(void)name;
	(*(unsigned *)ctx)++;
	return 0;
}

static int write_fn(struct store_txn *txn, void *ctx)
{
	struct put_args *a = ctx;
	struct store_user u;
	int rc = store_user_get(txn, a->user, &u);
	if (rc != 0)
		return rc;
	switch (a->op) {
	case OP_PUT: {
		const char *t;
		size_t l;
		unsigned n = 0;
		if (sieve_script_get(txn, u.id, a->name, &t, &l) != 0) {
			sieve_script_foreach(txn, u.id, count_cb, &n);
			if (n >= sieve_max_scripts()) {
				a->too_many = 1;
				return STORE_EINVAL;
			}
		}
		if ((rc = sieve_script_put(txn, u.id, a->name, a->text, a->len)) == 0 &&
		    a->activate)
			rc = sieve_script_activate(txn, u.id, a->name);
		return rc;
	}
	case OP_ACTIVATE:
		return sieve_script_activate(txn, u.id, a->name);
	case OP_DEACTIVATE:
		return sieve_script_activate(txn, u.id, NULL);
	default:
		return sieve_script_delete(txn, u.id, a->name);
	}
}

static int check_file(const char *path, char **text_r, size_t *len_r)
{
	struct sieve_script *s;
	struct sieve_error err;
	if (mk_read_file(path, 64 * 1024 * 1024, text_r, len_r) < 0) {
		cli_error("cannot read %s", path);
		return 1;
	}
	if (sieve_compile(*text_r, *len_r, sieve_max_script_size(), &s, &err) < 0) {
		if (err.line)
			fprintf(stderr, "%s:%u:%u: %s\n", path, err.line, err.col, err.msg);
		else
			fprintf(stderr, "%s: %s\n", path, err.msg);
		return 1;
	}
	sieve_script_free(&s);
	return 0;
}

static int list_cb(const char *name, size_t len, int active, void *ctx)
{
	(void)ctx;
	printf("%s%s\t%zu bytes\n", name, active ? " ACTIVE" : "", len);
	return 0;
}

static int run(struct cli *cli, int argc, char **argv)
{
	char err[256];
	const char *sub = argc > 1 ? argv[1] : "";
	int activate = argc > 0 && strcmp(argv[argc - 1], "--activate") == 0;
	int nargs = argc - 2 - activate;
	char *text = NULL;
	size_t len = 0;
	int rc;

	if (cli_config(cli) == NULL)
		return 1;
	if (sieve_attach(cli->cfg, err, sizeof(err)) < 0) {
		cli_error("%s", err);
		return 1;
	}
	if (strcmp(sub, "check") == 0 && nargs == 1) {
		rc = check_file(argv[2], &text, &len);
		free(text);
		if (rc == 0)
			printf("%s: ok\n", argv[2]);
		return rc;
	}
	struct put_args a = {.user = nargs > 0 ? argv[2] : NULL,
			     .name = nargs > 1 ? argv[3] : NULL,
			     .activate = activate};
	if ((strcmp(sub, "get") == 0 && nargs == 2) || (strcmp(sub, "list") == 0 && nargs == 1)) {
		struct store *store = cli_store(cli, 1);
		struct store_txn *txn = NULL;
		struct store_user u;
		if (store == NULL)
			return 1;
		if ((rc = store_read_begin(store, &txn)) == 0 &&
		    (rc = store_user_get(txn, a.user, &u)) == 0) {
			if (sub[0] == 'l') {
				rc = sieve_script_foreach(txn, u.id, list_cb, NULL);
			} else if ((rc = sieve_script_get(txn, u.id, a.name, (const char **)&text,
							  &len)) == 0) {
				fwrite(text, 1, len, stdout);
				text = NULL;
			}
		}
		store_read_end(&txn);
		if (rc != 0)
			cli_error("sieve %s: %s", sub,
				  rc == STORE_ENOTFOUND ? "no such user or script"
							: store_strerror(rc));
		return rc != 0;
	}
	if (strcmp(sub, "put") == 0 && nargs == 3) {
		if (!sieve_name_valid(a.name)) {
			cli_error("sieve put: \"%s\" is not a script name", a.name);
			return EXIT_USAGE;
		}
		if ((rc = check_file(argv[4], &text, &len)) != 0) {
			free(text);
			return rc;
		}
		a.op = OP_PUT;
	} else if (strcmp(sub, "activate") == 0 && nargs == 2) {
		a.op = OP_ACTIVATE;
	} else if (strcmp(sub, "deactivate") == 0 && nargs == 1) {
		a.op = OP_DEACTIVATE;
	} else if (strcmp(sub, "delete") == 0 && nargs == 2) {
		a.op = OP_DELETE;
	} else {
		return cli_usage(&cmd_sieve);
	}
	struct store *store = cli_store(cli, 0);
	if (store == NULL) {
		free(text);
		return 1;
	}
	a.text = text ? text : "";
	a.len = len;
	rc = store_write(store, write_fn, &a);
	free(text);
	if (rc == 0)
		return 0;
	if (a.too_many)
		cli_error("sieve put: the user has %u scripts already (sieve_max_scripts)",
			  sieve_max_scripts());
	else if (rc == STORE_EEXIST && a.op == OP_DELETE)
		cli_error("sieve delete: %s is the active script; deactivate it first", a.name);
	else if (rc == STORE_ENOTFOUND)
		cli_error("sieve %s: no such user or script", sub);
	else
		cli_error("sieve %s: %s", sub, cli_store_hint(rc));
	return 1;
}

const struct command cmd_sieve = {
    "sieve",
    "check|put|get|list|activate|deactivate|delete ARGS",
    "manage users' Sieve scripts (mail filters)",
    sieve_help,
    run,
};
