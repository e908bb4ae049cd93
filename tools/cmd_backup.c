/* cmd_backup — `mailkeep backup DST`: a consistent, compacted copy of the live
 * store (store_backup, LMDB's copy with compaction) while mail keeps arriving. */
#include <getopt.h>
#include <sys/stat.h>

#include "lib/util.h"
#include "tools/cli.h"

static const char backup_help[] =
    "Copies the live store into the directory DST (created if missing; it must not\n"
    "already hold a store). The copy is one consistent snapshot, compacted (free\n"
    "pages left out), made while deliveries and IMAP go on. To restore, stop the\n"
    "services and point store_directory at the copy (or move it into place).\n\n"
    "examples:\n"
    "  mailkeep backup /srv/backup/mailkeep-$(date +%F)\n"
    "  mailkeep -c /srv/backup/restore.conf fsck   # check a copy\n";

static int run(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{NULL, 0, NULL, 0}};
	struct store *store;
	char err[512], hb[32];
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
		return cli_usage(&cmd_backup);
	if (argc - optind != 1)
		return cli_usage(&cmd_backup);
	if ((store = cli_store(cli, 1)) == NULL)
		return 1;
	double t0 = mk_monotonic();
	if (store_backup(store, argv[optind], err, sizeof(err)) != 0) {
		cli_error("backup to %s failed: %s", argv[optind], err);
		return 1;
	}
	char path[4200];
	struct stat st;
	int n = snprintf(path, sizeof(path), "%s/data.mdb", argv[optind]);
	if (n > 0 && (size_t)n < sizeof(path) && stat(path, &st) == 0)
		printf("backup: %s written (%s, %.1f s)\n", argv[optind],
		       cli_human_bytes((uint64_t)st.st_size, hb, sizeof(hb)), mk_monotonic() - t0);
	else
		printf("backup: %s written (%.1f s)\n", argv[optind], mk_monotonic() - t0);
	return 0;
}

const struct command cmd_backup = {
    "backup", "DST", "make a consistent copy of the live store", backup_help, run,
};
