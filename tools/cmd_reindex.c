/* cmd_reindex — `mailkeep reindex`: rebuilds the words index from every
 * stored message, or indexes what waits in its queue (--pending). */
#include <getopt.h>
#include <string.h>

#include "index/fts.h"
#include "lib/util.h"
#include "tools/cli.h"

struct reindex_run {
	double start, last;
};

static void progress(uint64_t done, uint64_t queued, void *ctx)
{
	struct reindex_run *r = ctx;
	double now = mk_monotonic();
	if (now - r->last < 1.0 && queued > 0)
		return;
	r->last = now;
	fprintf(stderr, "reindex: %llu messages indexed, %llu to go, %.0f msg/s\n",
		(unsigned long long)done, (unsigned long long)queued,
		(double)done / (now - r->start > 0.001 ? now - r->start : 0.001));
}

static const char reindex_help[] =
    "Builds the words index that `mailkeep search`, IMAP SEARCH TEXT/BODY and the\n"
    "mount's .search/ folders use (doc/search.md). New mail is indexed by the\n"
    "daemons as it arrives; run this after an upgrade that changes how text is\n"
    "cut into words, or to drop the words of deleted mail. It empties the index,\n"
    "queues every message and indexes them in batches (short transactions: the\n"
    "daemons go on meanwhile, and a search is complete all along, only slower).\n"
    "Stopped half-way, run it with --pending to go on.\n\n"
    "  --pending   only index what waits in the queue\n\n"
    "example:\n  mailkeep reindex\n";

static int run(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"pending", no_argument, NULL, 'p'},
					     {NULL, 0, NULL, 0}};
	struct reindex_run r = {0};
	int c, pending = 0, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'p')
			return cli_usage(&cmd_reindex);
		pending = 1;
	}
	if (optind != argc)
		return cli_usage(&cmd_reindex);
	struct store *store = cli_store(cli, 0);
	if (store == NULL)
		return 1;
	r.start = mk_monotonic();
	if (!pending && (rc = fts_reset(store)) != 0) {
		cli_error("reindex: %s", cli_store_hint(rc));
		return 1;
	}
	uint64_t done = 0;
	if ((rc = fts_index_pending(store, 0, &done, progress, &r)) != 0) {
		cli_error("reindex: stopped after %llu messages: %s (run `mailkeep reindex "
			  "--pending` to go on)",
			  (unsigned long long)done, cli_store_hint(rc));
		return 1;
	}
	printf("reindex: %llu messages indexed in %.1f s\n", (unsigned long long)done,
	       mk_monotonic() - r.start);
	return 0;
}

const struct command cmd_reindex = {
    "reindex", "[--pending]", "build the full-text words index again", reindex_help, run,
};
