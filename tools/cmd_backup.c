/* cmd_backup — `mailkeep backup DST`: a consistent, compacted copy of the live
 * store (store_backup, LMDB's copy with compaction) while mail keeps arriving,
 * and of the users' plain files (<data_directory>/files: what programs keep in
 * a Maildir that is not mail, doc/fs.md) into DST/files. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util.h"
#include "tools/cli.h"

static const char backup_help[] =
    "Copies the live store into the directory DST (created if missing; it must not\n"
    "already hold a store). The copy is one consistent snapshot, compacted (free\n"
    "pages left out), made while deliveries and IMAP go on. The users' plain files\n"
    "(<data_directory>/files: notmuch databases, mbsync state, ... kept on the\n"
    "mount beside the mail) are copied into DST/files as they are at that moment.\n"
    "To restore, stop the services, point store_directory at the copy (or move it\n"
    "into place) and move DST/files to <data_directory>/files.\n\n"
    "examples:\n"
    "  mailkeep backup /srv/backup/mailkeep-$(date +%F)\n"
    "  mailkeep -c /srv/backup/restore.conf fsck   # check a copy\n";

/* Copies the regular files and directories under sfd into dfd (recursively,
 * modes kept, nothing followed). Returns 0 or an errno, with what in err. */
static int copy_tree(int sfd, int dfd, const char *path, char *err, size_t errsize, int depth)
{
	DIR *d;
	struct dirent *de;
	int rc = 0;

	if (depth > 64)
		return snprintf(err, errsize, "%s: too deep", path), ELOOP;
	if (!(d = fdopendir(sfd)))
		return snprintf(err, errsize, "%s: %s", path, strerror(errno)), errno;
	while (rc == 0 && (de = readdir(d))) {
		char sub[4400];
		struct stat st;
		int s, t;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* gone meanwhile */
		if (S_ISDIR(st.st_mode)) {
			if ((mkdirat(dfd, de->d_name, st.st_mode & 0700) < 0 && errno != EEXIST) ||
			    (t = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
				rc = errno;
				snprintf(err, errsize, "%s: %s", sub, strerror(rc));
				break;
			}
			if ((s = openat(dirfd(d), de->d_name,
					O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
				close(t);
				continue;
			}
			rc = copy_tree(s, t, sub, err, errsize, depth + 1);
			close(t);
		} else if (S_ISREG(st.st_mode)) {
			char buf[65536];
			ssize_t n = 0;
			if ((s = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) <
			    0)
				continue;
			if ((t = openat(dfd, de->d_name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
					st.st_mode & 0700)) < 0) {
				rc = errno;
				snprintf(err, errsize, "%s: %s", sub, strerror(rc));
				close(s);
				break;
			}
			while ((n = read(s, buf, sizeof(buf))) > 0)
				if (write(t, buf, (size_t)n) != n) {
					n = -1;
					break;
				}
			if (n < 0 || fsync(t) < 0) {
				rc = errno ? errno : EIO;
				snprintf(err, errsize, "%s: %s", sub, strerror(rc));
			}
			close(s);
			if (close(t) < 0 && rc == 0) {
				rc = errno;
				snprintf(err, errsize, "%s: %s", sub, strerror(rc));
			}
		}
	}
	closedir(d);
	return rc;
}

/* DST/files from <data_directory>/files, if there is one. 0 or -1. */
static int backup_files(struct cli *cli, const char *dst, size_t *bytes_r)
{
	char src[4096], to[4200], err[8192] = "";
	int sfd, dfd, rc;
	(void)bytes_r;

	snprintf(src, sizeof(src), "%s/files", cli->common.data_directory);
	if ((sfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : (cli_error("%s: %s", src, strerror(errno)), -1);
	snprintf(to, sizeof(to), "%s/files", dst);
	if ((mkdir(to, 0700) < 0 && errno != EEXIST) ||
	    (dfd = open(to, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		cli_error("%s: %s", to, strerror(errno));
		close(sfd);
		return -1;
	}
	rc = copy_tree(sfd, dfd, src, err, sizeof(err), 0);
	close(dfd);
	if (rc) {
		cli_error("copying the plain files: %s", err);
		return -1;
	}
	printf("backup: %s written (the users' plain files)\n", to);
	return 0;
}

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
	return backup_files(cli, argv[optind], NULL) == 0 ? 0 : 1;
}

const struct command cmd_backup = {
    "backup", "DST", "make a consistent copy of the live store", backup_help, run,
};
