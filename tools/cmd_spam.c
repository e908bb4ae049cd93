/* cmd_spam — `mailkeep spam train|classify|explain|stats`: the spam filter
 * on message files, folders of them (Maildir cur/ and new/ included, searched
 * recursively) and the store's own mailboxes. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "index/spam.h"
#include "lib/util.h"
#include "tools/cli.h"

#define SPAM_FILE_MAX (64u << 20)
#define TRAIN_BATCH 50

static const char spam_help[] =
	"  train (--spam | --innocent | --forget) (--user USER | --global) PATH... | --mailbox NAME\n"
	"        learn messages as spam or innocent (or forget them) for a user, or for the\n"
	"        shared global set that serves users with little training of their own.\n"
	"        A message learned before as the other class is corrected exactly.\n"
	"  classify [--user USER] PATH...\n"
	"        print PATH, result, probability and confidence, one message per line\n"
	"  explain [--user USER] FILE\n"
	"        the verdict and the tokens that decided it, with the user's counts\n"
	"  stats [--user USER]\n"
	"        what each user (and the global set) has learned and how it went\n\n"
	"PATH is a message file or a folder (searched recursively: a Maildir works).\n"
	"--mailbox NAME takes the user's messages in that store mailbox instead.\n"
	"Settings: spam_algorithm, spam_tokenizer, spam_threshold, ... (doc/spam.md).\n\n"
	"examples:\n"
	"  mailkeep spam train --spam --user alice ~/old-spam/\n"
	"  mailkeep spam train --innocent --global /srv/corpus/ham\n"
	"  mailkeep spam classify --user alice message.eml\n"
	"  mailkeep spam explain --user alice message.eml\n"
	"  mailkeep spam stats\n";

struct opts {
	const char *user;
	const char *mailbox;
	int global;
	int cls_set;
	enum spam_class cls;
};

/* --- walking files ---------------------------------------------------------- */

typedef int file_fn(const char *path, const char *data, size_t len, void *ctx);

static int walk(const char *path, file_fn *fn, void *ctx, int depth)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		cli_error("spam: %s: %s", path, strerror(errno));
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		struct dirent **names;
		int n, rc = 0;
		if (depth > 16)
			return 0;
		if ((n = scandir(path, &names, NULL, alphasort)) < 0) {
			cli_error("spam: %s: %s", path, strerror(errno));
			return -1;
		}
		for (int i = 0; i < n; i++) {
			char sub[4096];
			const char *nm = names[i]->d_name;
			if (rc == 0 && nm[0] != '.' && strcmp(nm, "tmp") != 0) {
				if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path, nm) < sizeof(sub))
					rc = walk(sub, fn, ctx, depth + 1);
			} else if (rc == 0 && nm[0] == '.' && strcmp(nm, ".") != 0 && strcmp(nm, "..") != 0) {
				/* Maildir++ folders (".Junk") are folders too */
				if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path, nm) < sizeof(sub) &&
				    stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
					rc = walk(sub, fn, ctx, depth + 1);
			}
			free(names[i]);
		}
		free(names);
		return rc;
	}
	if (!S_ISREG(st.st_mode))
		return 0;
	char *data;
	size_t len;
	if (mk_read_file(path, SPAM_FILE_MAX, &data, &len) != 0) {
		cli_error("spam: %s: %s", path, strerror(errno));
		return -1;
	}
	int rc = fn(path, data, len, ctx);
	free(data);
	return rc;
}

static int user_id_of(struct store *store, const struct opts *o, uint32_t *id_r)
{
	struct store_txn *txn;
	struct store_user u;
	int rc;

	if (o->global || o->user == NULL) {
		*id_r = SPAM_GLOBAL_USER;
		return 0;
	}
	if ((rc = store_read_begin(store, &txn)) != 0) {
		cli_error("spam: %s", cli_store_hint(rc));
		return -1;
	}
	rc = store_user_get(txn, o->user, &u);
	store_read_end(&txn);
	if (rc != 0) {
		cli_error("spam: no user %s (mailkeep user list shows them)", o->user);
		return -1;
	}
	*id_r = u.id;
	return 0;
}

/* --- train -------------------------------------------------------------------- */

struct pending {
	char *data;
	size_t len;
};

struct trainer {
	struct store *store;
	const struct spam_settings *s;
	uint32_t user_id;
	enum spam_class cls;
	struct pending batch[TRAIN_BATCH];
	size_t n;
	unsigned long learned, unchanged, files;
	/* --mailbox */
	uint32_t mbid;
};

static int train_batch_fn(struct store_txn *txn, void *ctx)
{
	struct trainer *t = ctx;
	unsigned long learned = 0, unchanged = 0;
	for (size_t i = 0; i < t->n; i++) {
		int changed = 0;
		int rc = spam_learn_data(txn, t->s, t->user_id, t->batch[i].data, t->batch[i].len, t->cls, 0, &changed);
		if (rc != 0)
			return rc;
		if (changed)
			learned++;
		else
			unchanged++;
	}
	t->learned += learned;
	t->unchanged += unchanged;
	return 0;
}

static int flush(struct trainer *t)
{
	int rc = t->n ? store_write(t->store, train_batch_fn, t) : 0;
	for (size_t i = 0; i < t->n; i++)
		free(t->batch[i].data);
	t->n = 0;
	if (rc != 0) {
		cli_error("spam: train: %s", cli_store_hint(rc));
		return -1;
	}
	return 0;
}

static int train_file(const char *path, const char *data, size_t len, void *ctx)
{
	struct trainer *t = ctx;
	(void)path;
	t->batch[t->n].data = malloc(len ? len : 1);
	if (t->batch[t->n].data == NULL) {
		cli_error("spam: out of memory");
		return -1;
	}
	memcpy(t->batch[t->n].data, data, len);
	t->batch[t->n].len = len;
	t->n++;
	t->files++;
	return t->n == TRAIN_BATCH ? flush(t) : 0;
}

struct mb_train {
	struct trainer *t;
	struct store_txn *txn;
};

static int train_msg_cb(const struct store_msg *msg, void *ctx)
{
	struct mb_train *m = ctx;
	int changed = 0;
	int rc = spam_learn_msg(m->txn, m->t->s, m->t->user_id, msg, m->t->cls, 0, &changed);
	if (rc != 0)
		return rc;
	m->t->files++;
	if (changed)
		m->t->learned++;
	else
		m->t->unchanged++;
	return 0;
}

static int train_mailbox_fn(struct store_txn *txn, void *ctx)
{
	struct mb_train m = {ctx, txn};
	return store_msg_foreach(txn, m.t->mbid, train_msg_cb, &m);
}

static int do_train(struct cli *cli, const struct spam_settings *s, const struct opts *o, int argc, char **argv)
{
	struct store *store;
	struct trainer *t;
	int rc = 0;

	if (!o->cls_set || (!o->global && o->user == NULL) || (argc == 0) == (o->mailbox == NULL)) {
		cli_error("spam train: say --spam, --innocent or --forget, --user USER or --global, "
			  "and files or --mailbox NAME");
		return EXIT_USAGE;
	}
	if (o->mailbox && o->global) {
		cli_error("spam train: --mailbox needs --user");
		return EXIT_USAGE;
	}
	if ((store = cli_store(cli, 0)) == NULL)
		return 1;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return 1;
	t->store = store;
	t->s = s;
	t->cls = o->cls;
	if (user_id_of(store, o, &t->user_id) != 0) {
		free(t);
		return 1;
	}
	if (o->mailbox) {
		struct store_txn *txn;
		struct store_mailbox mb;
		if ((rc = store_read_begin(store, &txn)) == 0) {
			rc = store_mailbox_get(txn, t->user_id, o->mailbox, &mb);
			store_read_end(&txn);
		}
		if (rc != 0) {
			cli_error("spam train: %s: no mailbox %s", o->user, o->mailbox);
			free(t);
			return 1;
		}
		t->mbid = mb.id;
		if ((rc = store_write(store, train_mailbox_fn, t)) != 0)
			cli_error("spam train: %s", cli_store_hint(rc));
	} else {
		for (int i = 0; i < argc && rc == 0; i++)
			rc = walk(argv[i], train_file, t, 0);
		if (flush(t) != 0)
			rc = -1;
	}
	printf("%lu messages: %lu learned as %s, %lu unchanged (%s)\n", t->files, t->learned,
	       spam_class_name(t->cls), t->unchanged, o->global ? "global" : o->user);
	free(t);
	return rc == 0 ? 0 : 1;
}

/* --- classify / explain ------------------------------------------------------------ */

struct classifier {
	struct store *store;
	const struct spam_settings *s;
	uint32_t user_id;
	int explain;
	int failed;
};

static int classify_file(const char *path, const char *data, size_t len, void *ctx)
{
	struct classifier *c = ctx;
	struct store_txn *txn;
	struct spam_verdict v;
	struct spam_tokens set;
	char printable[512];
	int rc;

	if ((rc = store_read_begin(c->store, &txn)) != 0) {
		cli_error("spam: %s", cli_store_hint(rc));
		return -1;
	}
	rc = spam_classify_data(txn, c->s, c->user_id, data, len, &v, &set);
	if (rc == 0 && !c->explain) {
		printf("%s %s %.5f %.5f\n", path, v.spam ? "Spam" : "Innocent", v.probability, v.confidence);
	} else if (rc == 0) {
		char factors[4096];
		struct spam_stats st;
		spam_factors_format(&v, factors, sizeof(factors));
		printf("file: %s\nresult: %s\nprobability: %.5f\nconfidence: %.5f\nalgorithm: %s\ntokenizer: %s\n"
		       "tokens: %zu (%zu decided)\nfactors: %s\n",
		       path, v.spam ? "Spam" : "Innocent", v.probability, v.confidence,
		       spam_algorithm_name(c->s->algorithm), spam_tokenizer_name(c->s->tokenizer), v.ntokens, v.nused,
		       factors);
		spam_db_stats(txn, c->user_id, &st);
		printf("learned: %llu spam, %llu innocent\n", (unsigned long long)st.spam_learned,
		       (unsigned long long)st.innocent_learned);
		printf("%-10s %8s %8s  %s\n", "p", "spam", "innocent", "token");
		for (size_t i = 0; i < v.nfactors; i++) {
			struct spam_count cnt = {0, 0};
			spam_db_token(txn, c->user_id, v.factors[i].hash, &cnt);
			const char *t = v.factors[i].text ? v.factors[i].text : "?";
			mk_strlcpy(printable, t, sizeof(printable));
			for (char *p = printable; *p; p++)
				if ((unsigned char)*p < 32 || *p == 127)
					*p = '?';
			printf("%-10.5f %8u %8u  %s\n", v.factors[i].p, cnt.spam, cnt.innocent, printable);
		}
	}
	store_read_end(&txn);
	spam_tokens_free(&set);
	if (rc != 0) {
		cli_error("spam: %s: %s", path, cli_store_hint(rc));
		c->failed = 1;
	}
	return 0;
}

/* --- stats ---------------------------------------------------------------------------- */

static void print_stats(struct store_txn *txn, const char *name, uint32_t id)
{
	struct spam_stats st;
	if (spam_db_stats(txn, id, &st) != 0)
		return;
	printf("%s spam_learned %llu innocent_learned %llu spam_classified %llu innocent_classified %llu "
	       "spam_misses %llu false_positives %llu tokens %llu\n",
	       name, (unsigned long long)st.spam_learned, (unsigned long long)st.innocent_learned,
	       (unsigned long long)st.spam_classified, (unsigned long long)st.innocent_classified,
	       (unsigned long long)st.spam_misses, (unsigned long long)st.false_positives,
	       (unsigned long long)st.tokens);
}

static int stats_user(const struct store_user *u, void *ctx)
{
	char name[STORE_NAME_MAX + 8];
	snprintf(name, sizeof(name), "user %s", u->name);
	print_stats(ctx, name, u->id);
	return 0;
}

static int do_stats(struct cli *cli, const struct opts *o)
{
	struct store *store = cli_store(cli, 1);
	struct store_txn *txn;
	int rc;

	if (store == NULL)
		return 1;
	if ((rc = store_read_begin(store, &txn)) != 0) {
		cli_error("spam stats: %s", cli_store_hint(rc));
		return 1;
	}
	if (o->user) {
		struct store_user u;
		if ((rc = store_user_get(txn, o->user, &u)) != 0) {
			store_read_end(&txn);
			cli_error("spam stats: no user %s", o->user);
			return 1;
		}
		stats_user(&u, txn);
	} else {
		print_stats(txn, "global", SPAM_GLOBAL_USER);
		rc = store_user_foreach(txn, stats_user, txn);
	}
	store_read_end(&txn);
	return rc == 0 ? 0 : 1;
}

static int run(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"user", required_argument, NULL, 'u'}, {"global", no_argument, NULL, 'g'},
		{"spam", no_argument, NULL, 's'},	{"innocent", no_argument, NULL, 'i'},
		{"ham", no_argument, NULL, 'i'},	{"forget", no_argument, NULL, 'f'},
		{"mailbox", required_argument, NULL, 'm'}, {NULL, 0, NULL, 0},
	};
	struct opts o = {0};
	struct spam_settings s;
	struct config *cfg;
	char err[256];
	const char *sub;
	int c;

	if (argc < 2)
		return cli_usage(&cmd_spam);
	sub = argv[1];
	argc--;
	argv++;
	optind = 1;
	while ((c = getopt_long(argc, argv, "u:gsifm:", opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			o.user = optarg;
			break;
		case 'g':
			o.global = 1;
			break;
		case 's':
		case 'i':
		case 'f':
			if (o.cls_set) {
				cli_error("spam: one of --spam, --innocent, --forget");
				return EXIT_USAGE;
			}
			o.cls_set = 1;
			o.cls = c == 's' ? SPAM_CLASS_SPAM : c == 'i' ? SPAM_CLASS_INNOCENT : SPAM_CLASS_NONE;
			break;
		case 'm':
			o.mailbox = optarg;
			break;
		default:
			return cli_usage(&cmd_spam);
		}
	}
	if (o.user && o.global) {
		cli_error("spam: --user and --global exclude each other");
		return EXIT_USAGE;
	}
	if ((cfg = cli_config(cli)) == NULL)
		return 1;
	if (spam_settings_load(cfg, &s, err, sizeof(err)) != 0) {
		cli_error("spam: %s", err);
		return 1;
	}
	argc -= optind;
	argv += optind;
	if (strcmp(sub, "train") == 0)
		return do_train(cli, &s, &o, argc, argv);
	if (strcmp(sub, "stats") == 0)
		return argc ? cli_usage(&cmd_spam) : do_stats(cli, &o);
	if (strcmp(sub, "classify") == 0 || strcmp(sub, "explain") == 0) {
		struct classifier cl = {.s = &s, .explain = sub[0] == 'e'};
		if (argc == 0 || (cl.explain && argc != 1))
			return cli_usage(&cmd_spam);
		if ((cl.store = cli_store(cli, 1)) == NULL)
			return 1;
		if (user_id_of(cl.store, &o, &cl.user_id) != 0)
			return 1;
		for (int i = 0; i < argc; i++)
			if (walk(argv[i], classify_file, &cl, 0) != 0)
				cl.failed = 1;
		return cl.failed;
	}
	cli_error("spam: unknown subcommand %s (train, classify, explain, stats)", sub);
	return EXIT_USAGE;
}

const struct command cmd_spam = {
	"spam", "train|classify|explain|stats [options] [PATH...]",
	"train the spam filter, classify and explain messages, show what it learned", spam_help, run,
};
