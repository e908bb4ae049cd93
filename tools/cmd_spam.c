/* cmd_spam — `mailkeep spam train|classify|explain|stats`: the spam filter
 * on message files, folders of them (Maildir cur/ and new/ included, searched
 * recursively) and the store's own mailboxes. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "index/spam.h"
#include "lib/util.h"
#include "tools/cli.h"

#define SPAM_FILE_MAX (64u << 20)
/* A write transaction learns up to TRAIN_BATCH messages or runs TRAIN_SECONDS:
 * LMDB copies each page a transaction touches once, and one message touches
 * a third of the token table's pages, so small transactions would leave the
 * file three times the table (89 MB against 30 with 2000 a transaction on
 * the bench's training set). */
#define TRAIN_BATCH 2000
#define TRAIN_SECONDS 10.0
/* Tokens noted for the end of a transaction (spam_db_defer_begin): about
 * 64 bytes each, so 1 M bounds the memory of a bulk training to ~100 MB. */
#define TRAIN_DEFER_MAX 1000000

static const char spam_help[] =
    "  train (--spam | --innocent | --forget) (--user USER | --global) [--on-error] [--passes N]\n"
    "        PATH... | --mailbox NAME\n"
    "        learn messages as spam or innocent (or forget them) for a user, or for the\n"
    "        shared global set that serves users with little training of their own.\n"
    "        A message learned before as the other class is corrected exactly.\n"
    "        --on-error learns only the messages the filter gets wrong; --passes N goes\n"
    "        over them again until none is wrong (N passes at most). Progress is drawn\n"
    "        on a terminal.\n"
    "  classify [--user USER] PATH...\n"
    "        print PATH, result, probability and confidence (full precision), one a line\n"
    "  explain [--user USER] FILE\n"
    "        the verdict and the tokens that decided it, with the user's counts\n"
    "  stats [--user USER]\n"
    "        what each user (and the global set) has learned, tokens, bytes, last purge\n"
    "  purge [--user USER | --global] [--now YYYY-MM-DD]\n"
    "        remove old hapaxes, rare and stale tokens and apply the cap (for cron)\n"
    "  rebuild [--user USER | --global]\n"
    "        learn everything learned again with the current tokenizer, from the\n"
    "        store's mail (converts a token database of the older format)\n\n"
    "PATH is a message file or a folder (searched recursively: a Maildir works).\n"
    "--mailbox NAME takes the user's messages in that store mailbox instead.\n"
    "Settings: spam_algorithm, spam_tokenizer, spam_threshold, spam_token_limit,\n"
    "spam_purge_* ... (doc/spam.md, mailkeep-spam(1)).\n\n"
    "examples:\n"
    "  mailkeep spam train --spam --user alice ~/old-spam/\n"
    "  mailkeep spam train --innocent --global /srv/corpus/ham\n"
    "  mailkeep spam train --spam --user alice --on-error --passes 3 ~/old-spam/\n"
    "  mailkeep spam classify --user alice message.eml\n"
    "  mailkeep spam explain --user alice message.eml\n"
    "  mailkeep spam stats\n"
    "  mailkeep spam purge --now 2027-06-01\n"
    "  mailkeep spam rebuild\n";

struct opts {
	const char *user;
	const char *mailbox;
	const char *now;
	int global;
	int cls_set;
	int on_error;
	int passes;
	uint64_t passes_u;
	enum spam_class cls;
};

/* --- walking files ---------------------------------------------------------- */

typedef int file_fn(const char *path, const char *data, size_t len, void *ctx);

/* Calls fn for each regular file under path (read whole when read is set,
 * else with NULL data). */
static int walk_any(const char *path, file_fn *fn, void *ctx, int depth, int read)
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
				if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path, nm) <
				    sizeof(sub))
					rc = walk_any(sub, fn, ctx, depth + 1, read);
			} else if (rc == 0 && nm[0] == '.' && strcmp(nm, ".") != 0 &&
				   strcmp(nm, "..") != 0) {
				/* Maildir++ folders (".Junk") are folders too */
				if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path, nm) <
					sizeof(sub) &&
				    stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
					rc = walk_any(sub, fn, ctx, depth + 1, read);
			}
			free(names[i]);
		}
		free(names);
		return rc;
	}
	if (!S_ISREG(st.st_mode))
		return 0;
	if (!read)
		return fn(path, NULL, (size_t)st.st_size, ctx);
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

static int walk(const char *path, file_fn *fn, void *ctx, int depth)
{
	return walk_any(path, fn, ctx, depth, 1);
}

static int walk_paths(const char *path, file_fn *fn, void *ctx, int depth)
{
	return walk_any(path, fn, ctx, depth, 0);
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

/* What to learn: files (read when their batch comes) or store messages (by
 * blob hash). */
struct item {
	char *path;		      /* NULL for a store message */
	uint8_t hash[STORE_HASH_LEN]; /* a store message's blob */
	int right;		      /* (--on-error) classified right in the last pass */
};

struct trainer {
	struct store *store;
	const struct spam_settings *s;
	uint32_t user_id;
	enum spam_class cls;
	int on_error, pass;
	struct item *items;
	size_t n, cap;
	size_t from, to; /* the batch: to is set by train_batch_fn */
	int passes;
	struct progress *pr;
	unsigned long learned, unchanged, right, failed;
	unsigned long pass_learned;
	uint64_t bytes;
};

static int collect_file(const char *path, const char *data, size_t len, void *ctx)
{
	struct trainer *t = ctx;
	(void)data;
	(void)len;
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 1024;
		struct item *it = realloc(t->items, t->cap * sizeof(*it));
		if (it == NULL) {
			cli_error("spam: out of memory");
			return -1;
		}
		t->items = it;
	}
	memset(&t->items[t->n], 0, sizeof(t->items[t->n]));
	t->items[t->n].path = strdup(path);
	if (t->items[t->n].path == NULL) {
		cli_error("spam: out of memory");
		return -1;
	}
	t->n++;
	return 0;
}

static int collect_msg(const struct store_msg *msg, void *ctx)
{
	struct trainer *t = ctx;
	if (collect_file("", NULL, 0, t) != 0)
		return -1;
	free(t->items[t->n - 1].path);
	t->items[t->n - 1].path = NULL;
	memcpy(t->items[t->n - 1].hash, msg->hash, STORE_HASH_LEN);
	return 0;
}

/* One batch in one write transaction: with --on-error each message is
 * classified first (seeing what the batch learned so far) and learned only
 * when the verdict is wrong; in passes after the first, a message still
 * classified wrong is learned once more (train until no error). */
static int train_batch_fn(struct store_txn *txn, void *ctx)
{
	struct trainer *t = ctx;
	unsigned long learned = 0, unchanged = 0, right = 0, failed = 0;
	uint64_t bytes = 0;
	int rc = 0;

	double start = mk_monotonic();
	/* learning without classifying: the token changes are applied once at the end */
	int deferred = !(t->on_error || t->pass > 0) && spam_db_defer_begin(txn) == 0;
	size_t i;
	for (i = t->from; i < t->n && i - t->from < TRAIN_BATCH && rc == 0; i++) {
		if (i > t->from && (mk_monotonic() - start > TRAIN_SECONDS ||
				    spam_db_defer_size(txn) > TRAIN_DEFER_MAX))
			break;
		progress_update(t->pr, (uint64_t)t->pass * t->n + i, (uint64_t)t->passes * t->n, i,
				t->bytes + bytes);
		struct item *it = &t->items[i];
		char *file = NULL;
		const void *data;
		size_t len;
		int changed = 0, again = 0;
		if (it->path != NULL) {
			if (mk_read_file(it->path, SPAM_FILE_MAX, &file, &len) != 0) {
				cli_error("spam: %s: %s", it->path, strerror(errno));
				failed++;
				continue;
			}
			data = file;
		} else if ((rc = store_blob_get(txn, it->hash, &data, &len)) != 0) {
			break;
		}
		bytes += len;
		if ((t->on_error || t->pass > 0) && t->cls != SPAM_CLASS_NONE) {
			struct spam_verdict v;
			rc = spam_classify_data(txn, t->s, t->user_id, data, len, &v, NULL);
			it->right = rc == 0 && v.spam == (t->cls == SPAM_CLASS_SPAM);
			if (rc == 0 && it->right) {
				right++;
				free(file);
				continue;
			}
			again = t->pass > 0;
		}
		if (rc == 0)
			rc = spam_learn_data(txn, t->s, t->user_id, data, len, t->cls, 0, again,
					     &changed);
		if (changed)
			learned++;
		else
			unchanged++;
		free(file);
	}
	if (deferred) {
		if (rc == 0)
			rc = spam_db_defer_flush(txn, &t->s->purge);
		else
			spam_db_defer_cancel(txn);
	}
	if (rc != 0)
		return rc;
	t->to = i;
	t->learned += learned;
	t->pass_learned += learned;
	t->unchanged += unchanged;
	t->right += right;
	t->failed += failed;
	t->bytes += bytes;
	return 0;
}

static int do_train(struct cli *cli, const struct spam_settings *s, const struct opts *o, int argc,
		    char **argv)
{
	struct store *store;
	struct trainer *t;
	struct progress pr;
	int rc = 0;

	if (!o->cls_set || (!o->global && o->user == NULL) || (argc == 0) == (o->mailbox == NULL)) {
		cli_error(
		    "spam train: say --spam, --innocent or --forget, --user USER or --global, "
		    "and files or --mailbox NAME");
		return EXIT_USAGE;
	}
	if (o->mailbox && o->global) {
		cli_error("spam train: --mailbox needs --user");
		return EXIT_USAGE;
	}
	if (o->passes < 1 || o->passes > 100) {
		cli_error("spam train: --passes takes 1 to 100");
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
	t->on_error = o->on_error;
	if (user_id_of(store, o, &t->user_id) != 0) {
		free(t);
		return 1;
	}
	if (o->mailbox) {
		struct store_txn *txn;
		struct store_mailbox mb;
		if ((rc = store_read_begin(store, &txn)) == 0) {
			rc = store_mailbox_get(txn, t->user_id, o->mailbox, &mb);
			if (rc == 0)
				rc = store_msg_foreach(txn, mb.id, collect_msg, t);
			store_read_end(&txn);
		}
		if (rc != 0) {
			cli_error("spam train: %s: no mailbox %s", o->user, o->mailbox);
			rc = -1;
		}
	} else {
		for (int i = 0; i < argc && rc == 0; i++)
			rc = walk_paths(argv[i], collect_file, t, 0);
	}
	int passes = t->cls == SPAM_CLASS_NONE ? 1 : o->passes;
	t->passes = passes;
	t->pr = &pr;
	progress_init(&pr, "spam train");
	for (t->pass = 0; rc == 0 && t->pass < passes; t->pass++) {
		t->pass_learned = 0;
		if (t->pass > 0)
			t->right = 0;
		for (t->from = 0; t->from < t->n && rc == 0; t->from = t->to) {
			if ((rc = store_write(store, train_batch_fn, t)) != 0) {
				cli_error("spam train: %s", cli_store_hint(rc));
				cli_disk_hint(cli->common.data_directory, rc);
			}
			progress_update(&pr, (uint64_t)t->pass * t->n + t->to,
					(uint64_t)passes * t->n, t->to, t->bytes);
		}
		if (t->pass > 0 || passes > 1)
			printf("pass %d: %lu learned, %lu classified right\n", t->pass + 1,
			       t->pass_learned, t->right);
		if (t->pass_learned == 0 && (t->on_error || t->pass > 0))
			break; /* no error left */
	}
	progress_end(&pr);
	printf("%zu messages: %lu learned as %s, %lu unchanged", t->n, t->learned,
	       spam_class_name(t->cls), t->unchanged);
	if (t->on_error || passes > 1)
		printf(", %lu classified right", t->right);
	printf(" (%s)\n", o->global ? "global" : o->user);
	for (size_t i = 0; i < t->n; i++)
		free(t->items[i].path);
	free(t->items);
	if (t->failed)
		rc = -1;
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
		printf("%s %s %.17g %.17g\n", path, v.spam ? "Spam" : "Innocent", v.probability,
		       v.confidence);
	} else if (rc == 0) {
		char factors[4096];
		struct spam_stats st;
		spam_factors_format(&v, factors, sizeof(factors));
		printf("file: %s\nresult: %s\nprobability: %.17g\nconfidence: %.17g\nscore: "
		       "%.17g\nalgorithm: %s\n"
		       "tokenizer: %s\ntokens: %zu (%zu decided)\nfactors: %s\n",
		       path, v.spam ? "Spam" : "Innocent", v.probability, v.confidence, v.score,
		       spam_algorithm_name(c->s->algorithm), spam_tokenizer_name(c->s->tokenizer),
		       v.ntokens, v.nused, factors);
		spam_db_stats(txn, c->user_id, &st);
		printf("learned: %llu spam, %llu innocent\n", (unsigned long long)st.spam_learned,
		       (unsigned long long)st.innocent_learned);
		printf("%-10s %8s %8s  %s\n", "p", "spam", "innocent", "token");
		for (size_t i = 0; i < v.nfactors; i++) {
			struct spam_count cnt = {0, 0};
			spam_db_token(txn, c->user_id, v.factors[i].hash, &cnt, NULL);
			const char *t = v.factors[i].text ? v.factors[i].text : "?";
			mk_strlcpy(printable, t, sizeof(printable));
			for (char *p = printable; *p; p++)
				if ((unsigned char)*p < 32 || *p == 127)
					*p = '?';
			printf("%-10.6f %8u %8u  %s\n", v.factors[i].p, cnt.spam, cnt.innocent,
			       printable);
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
	uint64_t bytes = 0;
	char day[16] = "never";
	if (spam_db_stats(txn, id, &st) != 0 || spam_db_bytes(txn, id, &bytes) != 0)
		return;
	if (st.last_purge) {
		time_t t = (time_t)st.last_purge * 86400;
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(day, sizeof(day), "%Y-%m-%d", &tm);
	}
	printf("%s spam_learned %llu innocent_learned %llu spam_classified %llu "
	       "innocent_classified %llu "
	       "spam_misses %llu false_positives %llu tokens %llu bytes %llu purged %llu "
	       "last_purge %s\n",
	       name, (unsigned long long)st.spam_learned, (unsigned long long)st.innocent_learned,
	       (unsigned long long)st.spam_classified, (unsigned long long)st.innocent_classified,
	       (unsigned long long)st.spam_misses, (unsigned long long)st.false_positives,
	       (unsigned long long)st.tokens, (unsigned long long)bytes,
	       (unsigned long long)st.purged, day);
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
	if (spam_db_has_old_format(txn))
		cli_warn("spam: tokens of the older format are not read: run `mailkeep spam "
			 "rebuild` once");
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

/* --- purge / rebuild ------------------------------------------------------------------ */

/* "YYYY-MM-DD" -> days since 1970; -1 if it is not one. */
static long parse_day(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *end = strptime(s, "%Y-%m-%d", &tm);
	if (end == NULL || *end != 0)
		return -1;
	time_t t = timegm(&tm);
	return t < 0 ? -1 : (long)(t / 86400);
}

struct purge_ctx {
	struct store *store;
	const struct spam_settings *s;
	int failed;
};

static void purge_one(struct purge_ctx *p, const char *name, uint32_t id)
{
	struct spam_purge_result r;
	int rc = spam_purge(p->store, p->s, id, &r);
	if (rc != 0) {
		cli_error("spam purge: %s: %s", name, cli_store_hint(rc));
		p->failed = 1;
		return;
	}
	printf("%s purged hapax %llu rare %llu stale %llu evicted %llu tokens %llu\n", name,
	       (unsigned long long)r.hapax, (unsigned long long)r.rare, (unsigned long long)r.stale,
	       (unsigned long long)r.evicted, (unsigned long long)r.tokens);
}

struct name_id {
	char name[STORE_NAME_MAX + 8];
	uint32_t id;
};

struct user_list {
	struct name_id *u;
	size_t n;
};

static int list_user(const struct store_user *u, void *ctx)
{
	struct user_list *l = ctx;
	struct name_id *n = realloc(l->u, (l->n + 1) * sizeof(*n));
	if (n == NULL)
		return -1;
	l->u = n;
	snprintf(l->u[l->n].name, sizeof(l->u[l->n].name), "user %s", u->name);
	l->u[l->n].id = u->id;
	l->n++;
	return 0;
}

static int do_purge(struct cli *cli, const struct spam_settings *s, const struct opts *o)
{
	struct purge_ctx p = {.s = s};
	struct user_list l = {0};
	struct store_txn *txn;
	int rc;

	if (o->now) {
		long day = parse_day(o->now);
		if (day <= 0) {
			cli_error("spam purge: --now %s: say YYYY-MM-DD", o->now);
			return EXIT_USAGE;
		}
		spam_db_set_today((uint32_t)day);
	}
	if ((p.store = cli_store(cli, 0)) == NULL)
		return 1;
	if (o->user || o->global) {
		uint32_t id;
		if (user_id_of(p.store, o, &id) != 0)
			return 1;
		purge_one(&p, o->global ? "global" : o->user, id);
		return p.failed;
	}
	if ((rc = store_read_begin(p.store, &txn)) != 0) {
		cli_error("spam purge: %s", cli_store_hint(rc));
		return 1;
	}
	rc = store_user_foreach(txn, list_user, &l);
	store_read_end(&txn);
	purge_one(&p, "global", SPAM_GLOBAL_USER);
	for (size_t i = 0; i < l.n; i++)
		purge_one(&p, l.u[i].name, l.u[i].id);
	free(l.u);
	return rc == 0 ? p.failed : 1;
}

static void rebuild_progress(uint64_t done, uint64_t total, void *ctx)
{
	progress_update(ctx, done, total, done, 0);
}

static int do_rebuild(struct cli *cli, const struct spam_settings *s, const struct opts *o)
{
	struct store *store = cli_store(cli, 0);
	struct progress pr;
	uint64_t relearned = 0, lost = 0;
	uint32_t id = UINT32_MAX;
	int rc;

	if (store == NULL)
		return 1;
	if ((o->user || o->global) && user_id_of(store, o, &id) != 0)
		return 1;
	progress_init(&pr, "spam rebuild");
	rc = spam_rebuild(store, s, id, rebuild_progress, &pr, &relearned, &lost);
	progress_end(&pr);
	if (rc != 0) {
		cli_error("spam rebuild: %s", cli_store_hint(rc));
		return 1;
	}
	printf("%llu messages learned again with %s", (unsigned long long)relearned,
	       spam_tokenizer_name(s->tokenizer));
	if (lost)
		printf(", %llu dropped (their bytes are not in the store: train them again from "
		       "their files)",
		       (unsigned long long)lost);
	printf("\n");
	return 0;
}

static int run(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"user", required_argument, NULL, 'u'},
	    {"global", no_argument, NULL, 'g'},
	    {"spam", no_argument, NULL, 's'},
	    {"innocent", no_argument, NULL, 'i'},
	    {"ham", no_argument, NULL, 'i'},
	    {"forget", no_argument, NULL, 'f'},
	    {"mailbox", required_argument, NULL, 'm'},
	    {"on-error", no_argument, NULL, 'e'},
	    {"passes", required_argument, NULL, 'p'},
	    {"now", required_argument, NULL, 'n'},
	    {NULL, 0, NULL, 0},
	};
	struct opts o = {.passes = 1};
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
	while ((c = getopt_long(argc, argv, "u:gsifm:ep:n:", opts, NULL)) != -1) {
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
			o.cls = c == 's'   ? SPAM_CLASS_SPAM
				: c == 'i' ? SPAM_CLASS_INNOCENT
					   : SPAM_CLASS_NONE;
			break;
		case 'm':
			o.mailbox = optarg;
			break;
		case 'e':
			o.on_error = 1;
			break;
		case 'p':
			if (mk_parse_u64(optarg, 1, 100, &o.passes_u) != 0) {
				cli_error("spam: --passes %s: say a number", optarg);
				return EXIT_USAGE;
			}
			o.passes = (int)o.passes_u;
			break;
		case 'n':
			o.now = optarg;
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
	if (strcmp(sub, "purge") == 0)
		return argc ? cli_usage(&cmd_spam) : do_purge(cli, &s, &o);
	if (strcmp(sub, "rebuild") == 0)
		return argc ? cli_usage(&cmd_spam) : do_rebuild(cli, &s, &o);
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
	cli_error("spam: unknown subcommand %s (train, classify, explain, stats, purge, rebuild)",
		  sub);
	return EXIT_USAGE;
}

const struct command cmd_spam = {
    "spam",
    "train|classify|explain|stats|purge|rebuild [options] [PATH...]",
    "train the spam filter, classify and explain messages, show what it learned",
    spam_help,
    run,
};
