/* cmd_compact — `mailkeep compact`: converts the store in place to compressed
 * blobs (store_compact), on a live system, resumable; prints progress and
 * what it saved. */
#include <getopt.h>
#include <string.h>

#include "lib/util.h"
#include "tools/cli.h"

struct compact_run {
	double start, last;
	int verbose;
	struct store_compact_progress p;
};

static void progress(const struct store_compact_progress *p, void *ctx)
{
	struct compact_run *r = ctx;
	double now = mk_monotonic();
	char b1[32], b2[32];

	r->p = *p;
	if (now - r->last < 1.0 && p->done < p->total)
		return;
	r->last = now;
	fprintf(stderr, "compact: %llu/%llu blobs (%d%%), %llu converted, %s -> %s, %.0f blobs/s\n",
		(unsigned long long)p->done, (unsigned long long)p->total,
		p->total ? (int)(p->done * 100 / p->total) : 100, (unsigned long long)p->converted,
		cli_human_bytes(p->bytes_before, b1, sizeof(b1)),
		cli_human_bytes(p->bytes_after, b2, sizeof(b2)),
		(double)p->done / (now - r->start > 0.001 ? now - r->start : 0.001));
}

static const char compact_help[] =
    "Stores every message compressed where that takes less room: zstd with a\n"
    "dictionary trained from this store's own mail, small messages packed so that\n"
    "LMDB's 4 KB pages are filled (doc/store.md, \"Compression\"). New mail is\n"
    "compressed as it arrives (store_compression_level, 6) with the newest\n"
    "dictionary; run compact after an upgrade, after a big import, or now and\n"
    "then from cron to train a better dictionary (--retrain) and recompress\n"
    "(--recompress).\n\n"
    "It runs beside the daemons: it works in rounds of --batch messages, each\n"
    "read without blocking anyone and written in one short transaction. Where it\n"
    "got to is kept in the store: if it is stopped (Ctrl-C, a crash, a reboot),\n"
    "the next `mailkeep compact` goes on from there. Reading gives the same bytes\n"
    "before, during and after. The file (data.mdb) does not shrink: LMDB reuses\n"
    "the freed pages for new mail (`mailkeep stats`: free_bytes); `mailkeep backup`\n"
    "writes a copy without them.\n\n"
    "  --level N      zstd level 1-19 (default 9; 19 is smallest and slowest)\n"
    "  --retrain      train a new dictionary first (one is trained if there is none)\n"
    "  --recompress   also messages already compressed with an older dictionary\n"
    "  --batch N      messages per transaction (default 256)\n\n"
    "example:\n  mailkeep compact && mailkeep stats | grep bytes\n";

static int run(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"level", required_argument, NULL, 'l'},
					     {"retrain", no_argument, NULL, 'r'},
					     {"recompress", no_argument, NULL, 'R'},
					     {"batch", required_argument, NULL, 'b'},
					     {NULL, 0, NULL, 0}};
	struct store_compact_opts o = {0};
	struct compact_run r = {0};
	struct store *store;
	uint64_t v;
	char err[512], b1[32], b2[32];
	int c, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (mk_parse_u64(optarg, 1, 19, &v) != 0) {
				cli_error("compact: --level takes 1 to 19");
				return EXIT_USAGE;
			}
			o.level = (int)v;
			break;
		case 'b':
			if (mk_parse_u64(optarg, 1, 100000, &v) != 0) {
				cli_error("compact: --batch takes 1 to 100000");
				return EXIT_USAGE;
			}
			o.batch = (size_t)v;
			break;
		case 'r':
			o.retrain = 1;
			break;
		case 'R':
			o.recompress = 1;
			break;
		default:
			return cli_usage(&cmd_compact);
		}
	}
	if (optind != argc)
		return cli_usage(&cmd_compact);
	if ((store = cli_store(cli, 0)) == NULL)
		return 1;
	r.start = mk_monotonic();
	rc = store_compact(store, &o, progress, &r, err, sizeof(err));
	if (rc != 0) {
		cli_error("compact: %s", err);
		return 1;
	}
	struct store_stats st;
	if (store_stats(store, &st) == 0)
		printf("compact: %llu of %llu blobs converted in %.1f s%s; the store's messages "
		       "take %s "
		       "for %s (%.2fx), %llu of %llu blobs compressed, %llu dictionar%s\n",
		       (unsigned long long)r.p.converted, (unsigned long long)r.p.total,
		       mk_monotonic() - r.start,
		       r.p.resumed ? " (went on from an earlier run)" : "",
		       cli_human_bytes(st.bytes_encoded, b1, sizeof(b1)),
		       cli_human_bytes(st.bytes_stored, b2, sizeof(b2)),
		       st.bytes_stored ? (double)st.bytes_encoded / (double)st.bytes_stored : 1.0,
		       (unsigned long long)st.blobs_compressed, (unsigned long long)st.blobs,
		       (unsigned long long)st.dicts, st.dicts == 1 ? "y" : "ies");
	return 0;
}

const struct command cmd_compact = {
    "compact",
    "[--level N] [--retrain] [--recompress] [--batch N]",
    "compress the stored messages in place (resumable, while mail arrives)",
    compact_help,
    run,
};
