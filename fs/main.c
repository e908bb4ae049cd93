/* mailkeep-fs — shows every user's mail as a Maildir under the mount point.
 *
 *   mailkeep-fs [-c CONF] [-f] [-v] [-d] [MOUNTPOINT] [--help] [--version]
 *
 * The flags every daemon has are lib/daemon.h's (-v: what the watcher
 * invalidates); -d is FUSE debugging output (implies -f); MOUNTPOINT
 * overrides mount_point.
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
#include "fs/params.h"
#include "index/dir.h"
#include "index/params.h"
#include "index/quota.h"
#include "index/sieve_deliver.h"
#include "index/spam.h"
#include "lib/daemon.h"
#include "lib/log.h"
#include "lib/util.h"

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

static int open_store(const struct common_params *common, struct store **store_r)
{
	struct store_options opt = {0};
	char err[512];
	const char *dir = common->store_directory;

	opt.map_size = common->store_map_size;
	opt.map_max = common->store_map_max;
	if (!dir || store_open(dir, &opt, store_r, err, sizeof(err)) < 0) {
		log_warn("cannot open the store %s: %s", dir ? dir : "(unset)", dir ? err : "");
		return -1;
	}
	return 0;
}

static int debug;

static void on_flag(struct daemon *d, int c, const char *arg)
{
	(void)arg;
	if (c == 'd')
		debug = d->foreground = 1;
}

static const struct daemon_spec spec = {
    .name = "fs",
    .synopsis = "[-d] [MOUNTPOINT]",
    .help = "Shows every user's mail as a Maildir under MOUNTPOINT (default: mount_point),\n"
	    "with libfuse. Unmount with `fusermount3 -u MOUNTPOINT` or SIGTERM; SIGHUP is\n"
	    "ignored (nothing to reload). See mailkeep-fs(8).\n"
	    "  -d             FUSE debugging output (implies -f)",
    .flags = "d",
    .flag = on_flag,
    .max_args = 1,
    /* libfuse's own handlers end its loop on SIGTERM and SIGINT */
    .signals = 0,
    .load = params_load,
};

static void read_settings(struct fs *fs, const struct fs_params *p)
{
	memset(fs, 0, sizeof(*fs));
	pthread_mutex_init(&fs->lock, NULL);
	fs->entry_timeout = p->fs_entry_timeout;
	fs->attr_timeout = p->fs_attr_timeout;
	fs->negative_timeout = p->fs_negative_timeout;
	fs->default_uid = p->fs_default_uid < 0 ? getuid() : (uid_t)p->fs_default_uid;
	fs->default_gid = p->fs_default_gid < 0 ? getgid() : (gid_t)p->fs_default_gid;
	fs->tmp_max_size = p->fs_tmp_max_size;
	fs->tmp_max_total = p->fs_tmp_max_total;
	clock_gettime(CLOCK_REALTIME, &fs->start);
	fs->root_mtime = fs->start;
}

/* A usable, existing mount point, and a store that opens (it is opened again
 * after the fork). Returns 0 or -1 (logged). */
static int check_before_mount(struct fs *fs, const char *mountpoint, const char *conf,
			      const struct common_params *common)
{
	if (!mountpoint || !*mountpoint) {
		log_warn("no mount point: set mount_point in %s", conf);
		return -1;
	}
	clear_stale_mount(mountpoint);
	if (mk_mkdirs(mountpoint, 0755) < 0) {
		log_warn("cannot create %s: %m", mountpoint);
		return -1;
	}
	if (open_store(common, &fs->store) < 0)
		return -1;
	store_close(&fs->store);
	return 0;
}

static struct fuse_session *new_session(struct fs *fs, const struct fs_params *p, char *argv0,
					struct fuse_args *args)
{
	static char opts[256];
	static char *fargv[4];

	snprintf(opts, sizeof(opts), "fsname=mailkeep,subtype=mailkeep,default_permissions%s",
		 geteuid() == 0 && p->fs_allow_other ? ",allow_other" : "");
	fargv[0] = argv0;
	fargv[1] = "-o";
	fargv[2] = opts;
	fargv[3] = debug ? "-d" : NULL;
	*args = (struct fuse_args)FUSE_ARGS_INIT(debug ? 4 : 3, fargv);
	struct fuse_session *se = fuse_session_new(args, &fs_ops, sizeof(fs_ops), fs);
	if (!se)
		log_warn("cannot start a FUSE session");
	return se;
}

/* Files that are not mail: <data_directory>/files/<user>/ (plain.c); each
 * one the kernel knows holds a descriptor. */
static void plain_files_start(const struct common_params *common)
{
	char files[4096];
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	snprintf(files, sizeof(files), "%s/files", common->data_directory);
	if (fs_plain_init(files) < 0)
		log_warn("no plain files on the mount (.notmuch, .mbsyncstate, ...)");
}

/* Written files are stored at their last close: learnt from fanotify
 * (close.c), else from RELEASE, for which open() is answered for real;
 * MAILKEEP_FS_NO_FANOTIFY=1 takes the second way as root too (tests). */
static void close_events_start(struct fs *fs, const char *mountpoint)
{
	if (getenv("MAILKEEP_FS_NO_FANOTIFY")) {
		log_info("fs: MAILKEEP_FS_NO_FANOTIFY: open() is answered for real");
		fs->real_open = 1;
	} else if (fs_close_start(fs, mountpoint) == 0) {
		fs->close_events = 1;
	} else {
		fs->real_open = 1;
	}
}

/* After the fork (no LMDB environment crosses one): the store, plain files,
 * the spam filter's hook, the LDAP directory (file owners), close events,
 * the change watcher. */
static int open_after_fork(struct fs *fs, const struct common_params *common, struct config *cfg,
			   const char *mountpoint)
{
	char err[512];

	if (open_store(common, &fs->store) < 0)
		return -1;
	plain_files_start(common);
	/* renames into and out of Junk retrain the spam filter (store hook) */
	if (spam_attach(fs->store, cfg) < 0)
		return -1;
	/* quotas (EDQUOT, df) and Sieve (the .sieve file) */
	if (quota_attach(cfg, err, sizeof(err)) < 0 || sieve_attach(cfg, err, sizeof(err)) < 0) {
		log_warn("%s", err);
		return -1;
	}
	const char *ud = common->user_directory;
	if (ud && strncmp(ud, "ldap:", 5) == 0 &&
	    directory_open(cfg, fs->store, &fs->dir, err, sizeof(err)) < 0) {
		log_warn("user_directory: %s; LDAP users get fs_default_uid", err);
		fs->dir = NULL;
	}
	close_events_start(fs, mountpoint);
	if (fs_watch_start(fs) < 0)
		log_warn("changes made elsewhere will show only after the cache timeouts");
	return 0;
}

/* Answers the kernel until the mount ends. Returns the exit status. */
static int serve(struct fuse_session *se, const struct fs_params *p)
{
	struct fuse_loop_config *loop = fuse_loop_cfg_create();
	int rc;

	if (loop == NULL)
		log_fatal("out of memory (fuse_loop_cfg_create)");
	fuse_loop_cfg_set_clone_fd(loop, 0);
	fuse_loop_cfg_set_max_threads(loop, (unsigned int)p->fs_threads);
	fuse_loop_cfg_set_idle_threads(loop, 4);
	rc = fuse_session_loop_mt(se, loop) == 0 ? 0 : 1;
	fuse_loop_cfg_destroy(loop);
	return rc;
}

int main(int argc, char **argv)
{
	static struct daemon d;
	static struct fs fs;
	struct common_params common = {0};
	struct fs_params p = {0};
	struct fuse_session *se = NULL;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	int rc = 1;

	daemon_init(&d, &spec, argc, argv);
	common_params_bind(d.cfg, &common);
	fs_params_bind(d.cfg, &p);
	daemon_log_open(&d, common.syslog_name, common.log_target);
	read_settings(&fs, &p);
	fs.cfg = d.cfg;
	const char *mountpoint = d.nargs > 0 ? d.args[0] : common.mount_point;
	if (check_before_mount(&fs, mountpoint, d.conf_path, &common) < 0 ||
	    (se = new_session(&fs, &p, argv[0], &args)) == NULL)
		goto out;
	fs.se = se;
	/* libfuse ends the session (unmounts) on SIGHUP as on SIGTERM, but only
	 * where SIGHUP is left at its default: daemon_init ignores it (the mount
	 * has nothing to reload, and `mailkeep run` passes SIGHUP on to every
	 * service for a TLS renewal) */
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, mountpoint) != 0) {
		log_warn("cannot mount on %s", mountpoint);
		goto out_signals;
	}
	if (fuse_daemonize(d.foreground) != 0 ||
	    open_after_fork(&fs, &common, d.cfg, mountpoint) < 0)
		goto out_unmount;
	log_info("mounted on %s (store %s)", mountpoint, store_dir(fs.store));
	rc = serve(se, &p);
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
	fs_params_unbind(&p);
	common_params_unbind(&common);
	config_free(&d.cfg);
	return rc;
}
