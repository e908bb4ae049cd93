/* cmd_fsck — `mailkeep fsck`: re-hashes every blob and checks every reference
 * and counter (store_fsck); prints one line per problem and exits 1 if any. */
#include <getopt.h>
#include <string.h>

#include "lib/util.h"
#include "tools/cli.h"

struct fsck_run {
	struct progress prog;
	uint64_t problems;
};

static void report(const char *problem, void *ctx)
{
	struct fsck_run *f = ctx;

	progress_end(&f->prog);
	f->prog.last = 0;
	printf("problem: %s\n", problem);
	fflush(stdout);
	f->problems++;
}

static void progress(uint64_t done, uint64_t total, void *ctx)
{
	struct fsck_run *f = ctx;
	progress_update(&f->prog, done, total, done, 0);
}

static const char fsck_help[] =
    "Checks the whole store: every message's bytes are hashed again and compared with\n"
    "their SHA-256 key, every message must point at an existing blob, every blob's\n"
    "reference count must equal the messages pointing at it, and mailbox counters\n"
    "(messages, unseen, UIDNEXT, HIGHESTMODSEQ) must agree with the messages.\n"
    "Prints one line per problem (\"problem: ...\") and exits 1 if there is any,\n"
    "0 if the store is consistent. It reads only, and may run while mail arrives.\n"
    "With STORE_DIR (a backup made by `mailkeep backup DST`: DST, or any store\n"
    "directory holding data.mdb) it checks that store instead of the configured one,\n"
    "and needs no configuration file.\n\n"
    "examples:\n  mailkeep fsck && echo store ok\n"
    "  mailkeep fsck /srv/backup/mailkeep-2026-12-01\n";

static int run(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{NULL, 0, NULL, 0}};
	struct fsck_run f = {0};
	struct store *store;
	int c, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
		return cli_usage(&cmd_fsck);
	if (argc - optind > 1)
		return cli_usage(&cmd_fsck);
	if (optind < argc)
		store = cli_store_at(cli, argv[optind]); /* a backup: no configuration needed */
	else
		store = cli_store(cli, 1);
	if (store == NULL)
		return 1;
	progress_init(&f.prog, "checking");
	double t0 = mk_monotonic();
	rc = store_fsck(store, report, progress, &f);
	progress_end(&f.prog);
	if (rc < 0) {
		cli_error("fsck could not run: %s", cli_store_hint(rc));
		return 1;
	}
	if (rc > 0) {
		printf("fsck: %d problem%s found in %s (%.1f s)\n", rc, rc == 1 ? "" : "s",
		       store_dir(store), mk_monotonic() - t0);
		return 1;
	}
	struct store_stats st;
	if (store_stats(store, &st) == 0)
		printf("fsck: %s is consistent: %llu %s, %llu %s checked (%.1f s)\n",
		       store_dir(store), (unsigned long long)st.messages,
		       cli_plural(st.messages, "message", "messages"), (unsigned long long)st.blobs,
		       cli_plural(st.blobs, "blob", "blobs"), mk_monotonic() - t0);
	else
		printf("fsck: %s is consistent (%.1f s)\n", store_dir(store), mk_monotonic() - t0);
	return 0;
}

const struct command cmd_fsck = {
    "fsck",    "[STORE_DIR]", "check every message's bytes, reference and counter in the store",
    fsck_help, run,
};
