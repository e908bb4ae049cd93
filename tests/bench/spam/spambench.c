/* spambench — drives mailkeep's spam filter on a temporary store for the
 * benchmark (tests/bench/spam/run.sh): learns the files of a training list
 * and classifies those of a test list, printing "path probability verdict
 * exact-probability" lines (the last in C's %a: bit for bit) and the
 * classification rate on stderr.
 *
 *   spambench STOREDIR TRAIN-LIST TEST-LIST [chi-square|graham] [sbph|osb] [teft|toe]
 *
 * List lines are "spam PATH" or "ham PATH". In teft mode (the default) every
 * training message is learned; in toe mode training messages are classified
 * in order and only the misclassified ones are learned, as DSPAM's TOE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	for (size_t i = b->from; i < b->to; i++) {
		struct item *x = &b->it[i];
		enum spam_class cls = x->spam ? SPAM_CLASS_SPAM : SPAM_CLASS_INNOCENT;
		if (b->toe) {
			struct spam_verdict v;
			int rc = spam_classify_data(txn, b->s, 1, x->data, x->len, &v, NULL);
			if (rc != 0)
				return rc;
			if (v.spam == x->spam)
				continue;
		}
		int rc = spam_learn_data(txn, b->s, 1, x->data, x->len, cls, 0, NULL);
		if (rc != 0)
			return rc;
	}
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

	if (argc < 4) {
		fprintf(stderr, "usage: spambench STOREDIR TRAIN-LIST TEST-LIST [alg] [tokenizer] [teft|toe]\n");
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

	double t0 = mk_monotonic();
	for (size_t i = 0; i < ntrain; i += 100) {
		struct batch b = {&s, train, i, i + 100 < ntrain ? i + 100 : ntrain, toe};
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
		/* the exact probability (%a) too: runs can be compared bit for bit */
		printf("%s %.6f %d %a\n", test[i].path, v.probability, v.spam, v.probability);
	}
	store_read_end(&txn);
	double t2 = mk_monotonic(), c2 = cpu_now();
	fprintf(stderr, "spambench: learned %zu in %.2fs (%.1f/s), classified %zu in %.2fs (%.1f/s)\n", ntrain,
		t1 - t0, ntrain / (t1 - t0), ntest, t2 - t1, ntest / (t2 - t1));
	fprintf(stderr, "spambench: classifying took %.2f s of CPU (%.1f/s)\n", c2 - c1, ntest / (c2 - c1));
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
