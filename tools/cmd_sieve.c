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
    "  sieve delete USER NAME            deletes a script that is not active\n"
    "  sieve test FILE MESSAGE [--from ADDR] [--to ADDR] [--spam PERCENT]\n"
    "        runs FILE on the message file MESSAGE and prints what it would do, one action\n"
    "        a line (store FOLDER [+flags ...], discard, redirect ADDR, reject REASON,\n"
    "        vacation), as Pigeonhole's sieve-test; nothing is stored or sent\n\n"
    "examples:\n"
    "  mailkeep sieve check lists.sieve\n"
    "  mailkeep sieve put bob rules ~/rules.sieve --activate\n"
    "  mailkeep sieve test rules.sieve msg.eml --to bob+lists@example.org\n";

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

static int flags_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "store NAME +flags \\seen $x" with the flags lower-cased and sorted. */
static void print_store(const char *mailbox, const char *flags)
{
	char *copy = flags ? strdup(flags) : NULL, *words[64];
	size_t n = 0;
	for (char *w = copy ? strtok(copy, " ") : NULL; w && n < 64; w = strtok(NULL, " ")) {
		for (char *c = w; *c; c++)
			*c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
		words[n++] = w;
	}
	qsort(words, n, sizeof(*words), flags_cmp);
	printf("store %s", mailbox);
	for (size_t i = 0; i < n; i++)
		printf("%s%s", i ? " " : " +flags ", words[i]);
	printf("\n");
	free(copy);
}

static int test_exists(void *ctx, const char *name)
{
	(void)ctx;
	return strcmp(name, "INBOX") == 0;
}

/* mailkeep sieve test FILE MESSAGE [--from A] [--to B] [--spam P] */
static int sieve_test(int argc, char **argv)
{
	const char *from = "sender@example.com", *to = "recipient@example.org";
	int spam = -1;
	char *text = NULL, *msg = NULL;
	size_t len, mlen;
	struct sieve_script *s = NULL;
	struct sieve_error err;
	int rc = 1;

	for (int i = 4; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--from") == 0)
			from = argv[i + 1];
		else if (strcmp(argv[i], "--to") == 0)
			to = argv[i + 1];
		else if (strcmp(argv[i], "--spam") == 0) {
			uint64_t v;
			if (mk_parse_u64(argv[i + 1], 0, 100, &v) < 0) {
				cli_error("sieve test: --spam takes a percentage, 0 to 100");
				return EXIT_USAGE;
			}
			spam = (int)v;
		} else
			return cli_usage(&cmd_sieve);
	}
	if ((argc - 4) % 2 != 0)
		return cli_usage(&cmd_sieve);
	if (check_file(argv[2], &text, &len) != 0)
		goto out;
	if (mk_read_file(argv[3], 64 * 1024 * 1024, &msg, &mlen) < 0) {
		cli_error("cannot read %s", argv[3]);
		goto out;
	}
	sieve_compile(text, len, sieve_max_script_size(), &s, &err);
	/* an mbox "From " line first (a file saved from a mailbox) is not part of
	 * the message, as Pigeonhole's sieve-test takes it too */
	const char *data = msg;
	if (mlen > 5 && memcmp(msg, "From ", 5) == 0) {
		const char *nl = memchr(msg, '\n', mlen);
		data = nl ? nl + 1 : msg + mlen;
	}
	struct sieve_msg m = {.data = data,
			      .len = mlen - (size_t)(data - msg),
			      .env_from = from,
			      .env_to = to,
			      .user = "test",
			      .spam_percent = spam};
	struct sieve_env env = {.mailbox_exists = test_exists};
	struct sieve_result res;
	if (sieve_execute(&s, 1, &m, &env, &res) < 0) {
		char e[400];
		sieve_error_format(&res.err, e, sizeof(e));
		printf("error %s\nstore INBOX\n", e);
	} else {
		for (size_t i = 0; i < res.n; i++) {
			const struct sieve_action *a = &res.actions[i];
			switch (a->kind) {
			case SIEVE_KEEP:
				print_store("INBOX", a->flags);
				break;
			case SIEVE_FILEINTO:
				print_store(a->mailbox, a->flags);
				break;
			case SIEVE_DISCARD:
				printf("discard\n");
				break;
			case SIEVE_REDIRECT:
				printf("redirect %s\n", a->address);
				break;
			case SIEVE_REJECT:
			case SIEVE_EREJECT:
				printf("reject %s\n", a->reason);
				break;
			case SIEVE_VACATION:
				printf("vacation\n");
				break;
			}
		}
		if (res.implicit_keep)
			print_store("INBOX", res.keep_flags);
	}
	sieve_result_free(&res);
	rc = 0;
out:
	sieve_script_free(&s);
	free(text);
	free(msg);
	return rc;
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
	if (strcmp(sub, "test") == 0 && argc >= 4)
		return sieve_test(argc, argv);
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
    "check|put|get|list|activate|deactivate|delete|test ARGS",
    "manage users' Sieve scripts (mail filters)",
    sieve_help,
    run,
};
