/* spambench — drives mailkeep's spam filter on a temporary store for the
 * benchmark (tests/bench/spam/run.sh): learns the files of a training list
 * and classifies those of a test list, printing "path probability verdict
 * score" lines (probability and score with full precision) and on stderr the
 * training and classification rates and the token table's size.
 *
 *   spambench STOREDIR TRAIN-LIST TEST-LIST [chi-square|graham] [osb4|osb|sbph] [teft|toe]
 *   spambench --growth STOREDIR N CORPUS-LIST
 *
 * List lines are "spam PATH" or "ham PATH". In teft mode (the default) every
 * training message is learned; in toe mode training messages are classified
 * in order and only the misclassified ones are learned, as DSPAM's TOE.
 * --growth learns N messages made from the corpus list's, 1000 a
 * transaction, each copy changed
 * (a header of its own and 40 words drawn from a synthetic vocabulary of
 * 200,000, Zipf-like, so that every copy brings new tokens), and prints the
 * token count, the table's bytes and the store file's size every 5,000. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "index/spam.h"
#include "index/store.h"
#include "lib/util.h"

/* CPU seconds of this process: steadier than the wall clock on a shared machine. */
static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Messages learned per write transaction, as `mailkeep spam train` does:
 * LMDB copies a page once per transaction, so big ones keep the file small. */
#define LEARN_BATCH 2000

struct item {
	int spam;
	char *path;
	char *data;
	size_t len;
};

static struct item *load_list(const char *path, size_t *n_r)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	struct item *it = NULL;
	size_t n = 0, cap = 0;

	if (f == NULL) {
		perror(path);
		exit(1);
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		char *sp = strchr(line, ' ');
		if (sp == NULL)
			continue;
		*sp = 0;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			it = realloc(it, cap * sizeof(*it));
		}
		it[n].spam = strcmp(line, "spam") == 0;
		it[n].path = strdup(sp + 1);
		if (mk_read_file(it[n].path, 64 << 20, &it[n].data, &it[n].len) != 0) {
			perror(it[n].path);
			exit(1);
		}
		n++;
	}
	fclose(f);
	*n_r = n;
	return it;
}

struct batch {
	const struct spam_settings *s;
	struct item *it;
	size_t from, to;
	int toe;
};

static int learn_fn(struct store_txn *txn, void *ctx)
{
	struct batch *b = ctx;
	/* as `mailkeep spam train` does: without classifying, the token changes
	 * are applied once at the end of the transaction */
	int deferred = !b->toe && spam_db_defer_begin(txn) == 0, rc = 0;
	for (size_t i = b->from; i < b->to && rc == 0; i++) {
		struct item *x = &b->it[i];
		enum spam_class cls = x->spam ? SPAM_CLASS_SPAM : SPAM_CLASS_INNOCENT;
		if (b->toe) {
			struct spam_verdict v;
			rc = spam_classify_data(txn, b->s, 1, x->data, x->len, &v, NULL);
			if (rc != 0)
				break;
			if (v.spam == x->spam)
				continue;
		}
		rc = spam_learn_data(txn, b->s, 1, x->data, x->len, cls, 0, 0, NULL);
	}
	if (deferred) {
		if (rc == 0)
			rc = spam_db_defer_flush(txn, &b->s->purge);
		else
			spam_db_defer_cancel(txn);
	}
	return rc;
}

static uint64_t file_size(const char *dir)
{
	char p[4096];
	struct stat st;
	snprintf(p, sizeof(p), "%s/data.mdb", dir);
	return stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static void print_size(struct store *store, const char *dir, const char *when)
{
	struct store_txn *txn;
	struct spam_stats st;
	uint64_t bytes = 0;
	struct rusage ru;
	if (store_read_begin(store, &txn) != 0)
		exit(1);
	spam_db_stats(txn, 1, &st);
	spam_db_bytes(txn, 1, &bytes);
	store_read_end(&txn);
	getrusage(RUSAGE_SELF, &ru);
	fprintf(stderr,
		"spambench: %s: tokens %llu, table %llu bytes, store file %llu bytes, max RSS %ld "
		"KiB\n",
		when, (unsigned long long)st.tokens, (unsigned long long)bytes,
		(unsigned long long)file_size(dir), ru.ru_maxrss);
}

/* --growth: N perturbed copies of the corpus, learned in batches of 100. */
static int growth(const char *dir, size_t n, const char *list)
{
	struct store *store;
	char err[256];
	struct spam_settings s;
	size_t nit;
	struct item *it = load_list(list, &nit);
	struct store_options opt = {.map_size = 1ull << 30};
	uint64_t x = 0x9E3779B97F4A7C15ull;

	spam_settings_default(&s);
	if (store_open(dir, &opt, &store, err, sizeof(err)) != 0) {
		fprintf(stderr, "spambench: %s\n", err);
		return 1;
	}
	double t0 = mk_monotonic();
	struct item *batch = calloc(LEARN_BATCH, sizeof(*batch));
	for (size_t done = 0; done < n;) {
		size_t k = 0;
		/* 1000 a transaction: the sizes are printed every 5000 */
		for (; k < 1000 && done + k < n; k++) {
			size_t i = done + k;
			const struct item *src = &it[i % nit];
			size_t cap = src->len + 1024;
			char *d = malloc(cap);
			int h = snprintf(d, cap, "X-Copy: %zu\r\n", i / nit);
			memcpy(d + h, src->data, src->len);
			size_t len = (size_t)h + src->len;
			len += (size_t)snprintf(d + len, cap - len, "\r\n");
			for (int w = 0; w < 40; w++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				/* Zipf-like: rank = 200000^u */
				double u = (double)(x >> 11) / 9007199254740992.0;
				unsigned rank = (unsigned)pow(200000.0, u);
				len += (size_t)snprintf(d + len, cap - len, " w%ux", rank);
			}
			batch[k].spam = src->spam;
			batch[k].data = d;
			batch[k].len = len;
			batch[k].path = NULL;
		}
		struct batch b = {&s, batch, 0, k, 0};
		int rc = store_write(store, learn_fn, &b);
		for (size_t j = 0; j < k; j++)
			free(batch[j].data);
		if (rc != 0) {
			fprintf(stderr, "spambench: learn: %s\n", store_strerror(rc));
			return 1;
		}
		done += k;
		if (done % 5000 == 0 || done == n) {
			char when[64];
			snprintf(when, sizeof(when), "%zu learned (%.0f/s)", done,
				 done / (mk_monotonic() - t0));
			print_size(store, dir, when);
		}
	}
	free(batch);
	store_close(&store);
	return 0;
}

int main(int argc, char **argv)
{
	struct store *store;
	struct store_txn *txn;
	struct spam_settings s;
	struct item *train, *test;
	size_t ntrain, ntest;
	char err[256];
	int toe = 0;

	if (argc == 5 && strcmp(argv[1], "--growth") == 0)
		return growth(argv[2], (size_t)strtoul(argv[3], NULL, 10), argv[4]);
	if (argc < 4) {
		fprintf(stderr, "usage: spambench STOREDIR TRAIN-LIST TEST-LIST [alg] [tokenizer] "
				"[teft|toe]\n");
		return 2;
	}
	spam_settings_default(&s);
	s.min_user_training = 0;
	if (argc > 4 && spam_algorithm_parse(argv[4], &s.algorithm) != 0)
		return 2;
	if (argc > 5 && spam_tokenizer_parse(argv[5], &s.tokenizer) != 0)
		return 2;
	if (argc > 6)
		toe = strcmp(argv[6], "toe") == 0;
	if (s.algorithm == SPAM_ALG_GRAHAM)
		s.threshold = 0.9;
	s.purge.interval_days = 0; /* one day's training: the date rules would find nothing old */
	if (getenv("SPAM_TOKEN_LIMIT"))
		s.purge.token_limit = strtoull(getenv("SPAM_TOKEN_LIMIT"), NULL, 10);
	struct store_options opt = {.map_size = 1ull << 30};
	if (store_open(argv[1], &opt, &store, err, sizeof(err)) != 0) {
		fprintf(stderr, "spambench: %s\n", err);
		return 1;
	}
	if (strcmp(argv[2], "-") == 0) {
		train = NULL;
		ntrain = 0;
	} else {
		train = load_list(argv[2], &ntrain);
	}
	test = load_list(argv[3], &ntest);

	double t0 = mk_monotonic(), c0 = cpu_now();
	for (size_t i = 0; i < ntrain; i += LEARN_BATCH) {
		struct batch b = {&s, train, i, i + LEARN_BATCH < ntrain ? i + LEARN_BATCH : ntrain,
				  toe};
		int rc = store_write(store, learn_fn, &b);
		if (rc != 0) {
			fprintf(stderr, "spambench: learn: %s\n", store_strerror(rc));
			return 1;
		}
	}
	double t1 = mk_monotonic(), c1 = cpu_now();
	if (store_read_begin(store, &txn) != 0)
		return 1;
	for (size_t i = 0; i < ntest; i++) {
		struct spam_verdict v;
		if (spam_classify_data(txn, &s, 1, test[i].data, test[i].len, &v, NULL) != 0) {
			fprintf(stderr, "spambench: classify failed\n");
			return 1;
		}
		/* the score in full: it orders what the probability may round alike */
		printf("%s %.17g %d %.17g\n", test[i].path, v.probability, v.spam, v.score);
	}
	store_read_end(&txn);
	double t2 = mk_monotonic(), c2 = cpu_now();
	fprintf(stderr,
		"spambench: learned %zu in %.2fs (%.1f/s), classified %zu in %.2fs (%.1f/s)\n",
		ntrain, t1 - t0, ntrain / (t1 - t0), ntest, t2 - t1, ntest / (t2 - t1));
	fprintf(stderr, "spambench: training took %.2f s of CPU (%.1f/s)\n", c1 - c0,
		ntrain / (c1 - c0));
	fprintf(stderr, "spambench: classifying took %.2f s of CPU (%.1f/s)\n", c2 - c1,
		ntest / (c2 - c1));
	print_size(store, argv[1], "after training");
	for (size_t i = 0; i < ntrain; i++) {
		free(train[i].path);
		free(train[i].data);
	}
	for (size_t i = 0; i < ntest; i++) {
		free(test[i].path);
		free(test[i].data);
	}
	free(train);
	free(test);
	store_close(&store);
	return 0;
}
