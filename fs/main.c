/* mailkeep-fs — shows every user's mail as a Maildir under the mount point.
 *
 *   mailkeep-fs [-c CONF] [-f] [-d] [MOUNTPOINT]
 *
 * -c CONF   configuration (default $MAILKEEP_CONF or /etc/mailkeep/mailkeep.conf)
 * -f        stay in the foreground and log to stderr
 * -d        FUSE debugging output (implies -f)
 * -v        verbose logging (what the watcher invalidates)
 * MOUNTPOINT overrides mount_point.
 *
 * libfuse 3 low-level API, multi-threaded. The process daemonizes before it
 * opens the store (an LMDB environment must not cross fork()). Unmount with
 * `fusermount3 -u MOUNTPOINT` (or umount as root), or SIGTERM. SIGHUP is
 * ignored (nothing to reload; `mailkeep run` passes it to every service).
 */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/fs.h"
#include "index/dirs.h"
#include "index/params.h"
#include "index/spam.h"
#include "lib/log.h"
#include "lib/util.h"

static void usage(void)
{
	fprintf(stderr, "usage: mailkeep-fs [-c CONF] [-f] [-d] [-v] [MOUNTPOINT]\n");
	exit(2);
}

extern char **environ;

/* A mount left by a mailkeep-fs that died (mailkeep run restarts it) answers
 * ENOTCONN: detach it so that we can mount again. */
static void clear_stale_mount(const char *mountpoint)
{
	struct stat st;
	pid_t pid;
	int status;
	char *argv[] = {"fusermount3", "-u", "-z", (char *)mountpoint, NULL};

	if (stat(mountpoint, &st) == 0 || errno != ENOTCONN)
		return;
	log_warn("%s: a stale mount (a previous mailkeep-fs died); detaching it", mountpoint);
	if (geteuid() == 0 && umount2(mountpoint, MNT_DETACH) == 0)
		return;
	if (posix_spawnp(&pid, "fusermount3", NULL, NULL, argv, environ) == 0)
		waitpid(pid, &status, 0);
}

static int open_store(struct config *cfg, struct store **store_r)
{
	struct store_options opt = {0};
	char err[512];
	const char *dir = config_get(cfg, "store_directory");

	opt.map_size = config_get_size(cfg, "store_map_size");
	opt.map_max = config_get_size(cfg, "store_map_max");
	if (!dir || store_open(dir, &opt, store_r, err, sizeof(err)) < 0) {
		log_warn("cannot open the store %s: %s", dir ? dir : "(unset)", dir ? err : "");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *conf = getenv("MAILKEEP_CONF");
	const char *mountpoint = NULL;
	int foreground = 0, debug = 0, c, rc = 1;
	char err[512], opts[256];
	struct fs fs;
	struct config *cfg = NULL;
	struct fuse_session *se = NULL;
	struct fuse_loop_config *loop = NULL;
	char *fargv[4];
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	long long v;

	while ((c = getopt(argc, argv, "c:fdvh")) != -1) {
		switch (c) {
		case 'v':
			log_set_verbose(1);
			break;
		case 'c':
			conf = optarg;
			break;
		case 'f':
			foreground = 1;
			break;
		case 'd':
			debug = foreground = 1;
			break;
		default:
			usage();
		}
	}
	if (optind < argc)
		mountpoint = argv[optind++];
	if (optind < argc)
		usage();
	if (!conf)
		conf = "/etc/mailkeep/mailkeep.conf";

	if (!(cfg = params_load(conf, err, sizeof(err)))) {
		fprintf(stderr, "mailkeep-fs: %s\n", err);
		return 1;
	}
	log_open("mailkeep/fs", foreground || strcmp(config_get(cfg, "log_target"), "stderr") == 0
				    ? LOG_TO_STDERR
				    : LOG_TO_SYSLOG);

	memset(&fs, 0, sizeof(fs));
	pthread_mutex_init(&fs.lock, NULL);
	fs.cfg = cfg;
	fs.entry_timeout = config_get_time(cfg, "fs_entry_timeout");
	fs.attr_timeout = config_get_time(cfg, "fs_attr_timeout");
	fs.negative_timeout = config_get_time(cfg, "fs_negative_timeout");
	v = config_get_int(cfg, "fs_default_uid");
	fs.default_uid = v < 0 ? getuid() : (uid_t)v;
	v = config_get_int(cfg, "fs_default_gid");
	fs.default_gid = v < 0 ? getgid() : (gid_t)v;
	fs.tmp_max_size = config_get_size(cfg, "fs_tmp_max_size");
	fs.tmp_max_total = config_get_size(cfg, "fs_tmp_max_total");
	clock_gettime(CLOCK_REALTIME, &fs.start);
	fs.root_mtime = fs.start;

	if (!mountpoint)
		mountpoint = config_get(cfg, "mount_point");
	if (!mountpoint || !*mountpoint) {
		log_warn("no mount point: set mount_point in %s", conf);
		goto out;
	}
	clear_stale_mount(mountpoint);
	if (mk_mkdirs(mountpoint, 0755) < 0) {
		log_warn("cannot create %s: %m", mountpoint);
		goto out;
	}
	/* check the store opens before mounting; it is opened again after fork */
	if (open_store(cfg, &fs.store) < 0)
		goto out;
	store_close(&fs.store);

	snprintf(opts, sizeof(opts), "fsname=mailkeep,subtype=mailkeep,default_permissions%s",
		 geteuid() == 0 && config_get_bool(cfg, "fs_allow_other") ? ",allow_other" : "");
	fargv[0] = argv[0];
	fargv[1] = "-o";
	fargv[2] = opts;
	fargv[3] = debug ? "-d" : NULL;
	args = (struct fuse_args)FUSE_ARGS_INIT(debug ? 4 : 3, fargv);
	se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), &fs);
	if (!se) {
		log_warn("cannot start a FUSE session");
		goto out;
	}
	fs.se = se;
	/* libfuse ends the session (unmounts) on SIGHUP as on SIGTERM, but only
	 * where SIGHUP is left at its default: the mount has nothing to reload, and
	 * `mailkeep run` passes SIGHUP on to every service (TLS renewal), so it is
	 * ignored here */
	signal(SIGHUP, SIG_IGN);
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, mountpoint) != 0) {
		log_warn("cannot mount on %s", mountpoint);
		goto out_signals;
	}
	if (fuse_daemonize(foreground) != 0)
		goto out_unmount;
	if (open_store(cfg, &fs.store) < 0)
		goto out_unmount;
	{
		/* files that are not mail: <data_directory>/files/<user>/ (plain.c);
		 * each one the kernel knows holds a descriptor */
		char files[4096];
		struct rlimit rl;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		snprintf(files, sizeof(files), "%s/files", config_get(cfg, "data_directory"));
		if (fs_plain_init(files) < 0)
			log_warn("no plain files on the mount (.notmuch, .mbsyncstate, ...)");
	}
	/* renames into and out of Junk retrain the spam filter (store hook) */
	if (spam_attach(fs.store, cfg) < 0)
		goto out_unmount;
	{
		const char *ud = config_get(cfg, "user_directory");
		if (ud && strncmp(ud, "ldap:", 5) == 0 &&
		    directory_open(cfg, fs.store, &fs.dir, err, sizeof(err)) < 0) {
			log_warn("user_directory: %s; LDAP users get fs_default_uid", err);
			fs.dir = NULL;
		}
	}
	/* written files are stored at their last close: learnt from fanotify
	 * (close.c), else from RELEASE, for which open() is answered for real;
	 * MAILKEEP_FS_NO_FANOTIFY=1 takes the second way as root too (tests) */
	if (getenv("MAILKEEP_FS_NO_FANOTIFY")) {
		log_info("fs: MAILKEEP_FS_NO_FANOTIFY: open() is answered for real");
		fs.real_open = 1;
	} else if (fs_close_start(&fs, mountpoint) == 0) {
		fs.close_events = 1;
	} else {
		fs.real_open = 1;
	}
	if (fs_watch_start(&fs) < 0)
		log_warn("changes made elsewhere will show only after the cache timeouts");
	log_info("mounted on %s (store %s)", mountpoint, store_dir(fs.store));

	loop = fuse_loop_cfg_create();
	fuse_loop_cfg_set_clone_fd(loop, 0);
	fuse_loop_cfg_set_max_threads(loop, (unsigned int)config_get_int(cfg, "fs_threads"));
	fuse_loop_cfg_set_idle_threads(loop, 4);
	rc = fuse_session_loop_mt(se, loop) == 0 ? 0 : 1;
	fuse_loop_cfg_destroy(loop);
	log_info("unmounting %s", mountpoint);
	fs_close_stop();
	fs_watch_stop(&fs);
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out:
	if (fs.dir)
		dir_close(&fs.dir);
	if (fs.store)
		store_close(&fs.store);
	fuse_opt_free_args(&args);
	fs_pending_free(&fs);
	fs_plain_free();
	fs_state_free(&fs);
	config_free(&cfg);
	return rc;
}
