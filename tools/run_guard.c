/* run_guard — what `mailkeep run` does about an instance it does not own yet:
 * another `mailkeep run` of it still alive (refused), services of it left
 * running by a supervisor that died (stopped), a port held by something else
 * (refused, naming the process), a mount left behind (detached).
 *
 * "The same instance" means the same configuration file: a service is ours if
 * /proc/PID/exe is the service's binary (by name) and its command line has
 * `-c CONF` with CONF naming the same file (compared by device and inode).
 * Services are found by the pid files `run` writes for them
 * ($run_directory/run.<service>.pid), by a look at every process of a
 * service binary (/proc) and, for a port held by something else, by the
 * owner of the listening socket of each TCP listener in the configuration
 * (/proc/net/tcp{,6} and /proc/PID/fd): that one is named, not stopped.
 */
#define _GNU_SOURCE 1
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "index/params.h"
#include "lib/util.h"
#include "tools/run_guard.h"

extern char **environ;

/* 1 if a setting of the registry names listeners (every service's list
 * settings called *_listen: smtpd_listen, imapd_tls_listen, ...), so that a
 * listener added later is looked at too, without a list here to keep. */
static int is_listener_setting(const struct config_param *prm)
{
	size_t n = strlen(prm->name);
	return prm->type == CONFIG_LIST && n > 7 && strcmp(prm->name + n - 7, "_listen") == 0;
}

static int same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	if (stat(a, &sa) < 0 || stat(b, &sb) < 0)
		return strcmp(a, b) == 0;
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* The process's command line as NUL-separated words; returns its length or -1. */
static ssize_t read_cmdline(pid_t pid, char *buf, size_t size)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return n;
}

/* The base name of /proc/PID/exe ("mailkeep-smtpin"), without " (deleted)". */
static int exe_name(pid_t pid, char *out, size_t size)
{
	char path[64], target[4096];

	snprintf(path, sizeof(path), "/proc/%ld/exe", (long)pid);
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	if (n < 0) {
		/* another user's process: the name the kernel keeps (15 bytes) */
		snprintf(path, sizeof(path), "/proc/%ld/comm", (long)pid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -1;
		n = read(fd, target, sizeof(target) - 1);
		close(fd);
		if (n <= 0)
			return -1;
		while (n > 0 && target[n - 1] == '\n')
			n--;
	}
	target[n] = 0;
	char *del = strstr(target, " (deleted)");
	if (del != NULL)
		*del = 0;
	const char *slash = strrchr(target, '/');
	mk_strlcpy(out, slash ? slash + 1 : target, size);
	return 0;
}

/* 1 if pid runs binary `bin` (or `mailkeep` for bin NULL: a supervisor) with -c CONF. */
static int is_ours(pid_t pid, const char *bin, const char *conf)
{
	char name[256], cmd[8192];
	ssize_t n;

	if (pid <= 1 || (kill(pid, 0) < 0 && errno == ESRCH))
		return 0;
	if (exe_name(pid, name, sizeof(name)) < 0)
		return 0;
	/* comm is cut at 15 bytes: "mailkeep-smtpin" fits, "mailkeep-smtpout"
	 * comes as "mailkeep-smtpou" */
	const char *want = bin ? bin : "mailkeep";
	if (strcmp(name, want) != 0 && !(strlen(name) == 15 && strncmp(name, want, 15) == 0))
		return 0;
	if ((n = read_cmdline(pid, cmd, sizeof(cmd))) < 0)
		return 0;
	int run_seen = bin != NULL;
	for (char *w = cmd; w < cmd + n; w += strlen(w) + 1) {
		if (bin == NULL && strcmp(w, "run") == 0)
			run_seen = 1;
		if (strcmp(w, "-c") == 0 && w + strlen(w) + 1 < cmd + n) {
			if (!same_file(w + strlen(w) + 1, conf))
				return 0;
			conf = NULL; /* matched */
		}
	}
	/* a supervisor found through this instance's own pid file may have
	 * been given the configuration by $MAILKEEP_CONF instead of -c */
	return (conf == NULL || bin == NULL) && run_seen;
}

/* 1 while pid runs (a zombie, which its own parent has still to reap, is gone for us). */
static int alive(pid_t pid)
{
	char path[64], stat[512];

	if (kill(pid, 0) < 0 && errno != EPERM)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, stat, sizeof(stat) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	stat[n] = 0;
	const char *paren = strrchr(stat, ')');
	return paren == NULL || paren[1] == 0 || paren[2] != 'Z';
}

/* SIGTERM, up to 10 s, then SIGKILL. Returns 0 once it is gone. */
static int stop_pid(pid_t pid)
{
	if (kill(pid, SIGTERM) < 0)
		return errno == ESRCH ? 0 : -1;
	double deadline = mk_monotonic() + 10;
	while (mk_monotonic() < deadline) {
		/* a child of ours (never here, but harmless) is reaped, others vanish */
		waitpid(pid, NULL, WNOHANG);
		if (!alive(pid))
			return 0;
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	for (int i = 0; i < 100 && alive(pid); i++) {
		waitpid(pid, NULL, WNOHANG);
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	if (alive(pid)) {
		errno = EBUSY;
		return -1;
	}
	return 0;
}

static pid_t read_pidfile(const char *path)
{
	char *text = NULL;
	size_t len;
	uint64_t v;

	if (mk_read_file(path, 64, &text, &len) < 0)
		return -1;
	char *nl = strchr(text, '\n');
	if (nl)
		*nl = 0;
	int ok = mk_parse_u64(text, 2, 4194304, &v) == 0;
	free(text);
	return ok ? (pid_t)v : -1;
}

/* Socket inodes listening on TCP port `port` (any address), from /proc/net/tcp{,6}. */
static size_t listening_inodes(unsigned port, unsigned long *inodes, size_t max)
{
	static const char *const files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
	size_t n = 0;

	for (size_t f = 0; f < 2; f++) {
		FILE *fp = fopen(files[f], "re");
		char line[512];
		if (fp == NULL)
			continue;
		if (fgets(line, sizeof(line), fp) == NULL) { /* header */
			fclose(fp);
			continue;
		}
		while (fgets(line, sizeof(line), fp) != NULL && n < max) {
			char local[128], remote[128];
			unsigned st;
			unsigned long inode;
			/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
			if (sscanf(line, "%*s %127s %127s %x %*s %*s %*s %*s %*s %lu", local,
				   remote, &st, &inode) != 4)
				continue;
			char *colon = strrchr(local, ':');
			if (st != 0x0A || colon == NULL || strtoul(colon + 1, NULL, 16) != port)
				continue;
			inodes[n++] = inode;
		}
		fclose(fp);
	}
	return n;
}

/* The process holding socket inode `inode`, or -1 (none found: another user's,
 * which only root can see). */
static pid_t socket_owner(unsigned long inode)
{
	char want[64];
	DIR *proc = opendir("/proc");
	struct dirent *e;
	pid_t found = -1;

	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	if (proc == NULL)
		return -1;
	while (found < 0 && (e = readdir(proc)) != NULL) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		char fddir[300];
		snprintf(fddir, sizeof(fddir), "/proc/%s/fd", e->d_name);
		DIR *fds = opendir(fddir);
		struct dirent *fe;
		if (fds == NULL)
			continue;
		while ((fe = readdir(fds)) != NULL) {
			char link[600], target[128];
			snprintf(link, sizeof(link), "%s/%s", fddir, fe->d_name);
			ssize_t k = readlink(link, target, sizeof(target) - 1);
			if (k <= 0)
				continue;
			target[k] = 0;
			if (strcmp(target, want) == 0) {
				found = (pid_t)atol(e->d_name);
				break;
			}
		}
		closedir(fds);
	}
	closedir(proc);
	return found;
}

/* The TCP port of a listener spec ("127.0.0.1:25", "[::1]:143", ":25"), or 0
 * (a unix: socket). */
static unsigned spec_port(const char *spec)
{
	uint64_t v;

	if (strncmp(spec, "unix:", 5) == 0)
		return 0;
	const char *colon = strrchr(spec, ':');
	if (colon == NULL || mk_parse_u64(colon + 1, 1, 65535, &v) < 0)
		return 0;
	return (unsigned)v;
}

static const char *const service_bins[] = {"mailkeep-smtpin", "mailkeep-smtpout", "mailkeep-imapd",
					   "mailkeep-fs", NULL};

static int stop_leftover(pid_t pid, const char *bin, const char *why)
{
	fprintf(stderr,
		"mailkeep: run: %s (pid %ld) of this instance is still running (%s); stopping it\n",
		bin, (long)pid, why);
	if (stop_pid(pid) < 0) {
		fprintf(stderr, "mailkeep: run: cannot stop %s (pid %ld): %s\n", bin, (long)pid,
			strerror(errno));
		return -1;
	}
	return 0;
}

/* 3. for one listener setting: whoever holds one of its TCP ports. Ours
 * (it came up meanwhile) is stopped; anything else is named and we refuse,
 * instead of looping on "Address already in use". Returns 0 or -1 with err. */
static int check_listeners(struct config *cfg, const char *setting, const char *conf, char *err,
			   size_t errsize)
{
	char **items = NULL;
	size_t n = 0;

	if (config_get_list(cfg, setting, &items, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned port = spec_port(items[i]);
		unsigned long inodes[8];
		size_t ni = port ? listening_inodes(port, inodes, 8) : 0;
		for (size_t k = 0; k < ni; k++) {
			pid_t pid = socket_owner(inodes[k]);
			const char *mine = NULL;
			for (size_t b = 0; pid > 0 && service_bins[b] != NULL; b++)
				if (is_ours(pid, service_bins[b], conf))
					mine = service_bins[b];
			if (mine != NULL) {
				char why[300];
				snprintf(why, sizeof(why), "it holds %s = %s", setting, items[i]);
				if (stop_leftover(pid, mine, why) == 0)
					continue;
			}
			char name[256] = "unknown";
			if (pid > 0) {
				exe_name(pid, name, sizeof(name));
				snprintf(err, errsize,
					 "run: %s = %s: port %u is in use by pid %ld (%s), which "
					 "is not a "
					 "service of this instance; stop it or change %s",
					 setting, items[i], port, (long)pid, name, setting);
			} else {
				snprintf(err, errsize,
					 "run: %s = %s: port %u is in use by another user's "
					 "process; stop "
					 "it or change %s",
					 setting, items[i], port, setting);
			}
			free(items);
			return -1;
		}
	}
	free(items);
	return 0;
}

/* 1 if bin is in leave (a NULL-terminated list, or NULL). */
static int left(const char *const *leave, const char *bin)
{
	for (size_t i = 0; leave != NULL && leave[i] != NULL; i++)
		if (strcmp(leave[i], bin) == 0)
			return 1;
	return 0;
}

int run_guard_start(struct config *cfg, const char *conf, const char *rundir,
		    const char *mount_point, const char *const *leave, char *err, size_t errsize)
{
	char path[4200];

	/* 1. a supervisor of this instance that is alive: refuse */
	snprintf(path, sizeof(path), "%s/mailkeep.pid", rundir);
	pid_t sup = read_pidfile(path);
	if (sup > 0 && sup != getpid() && is_ours(sup, NULL, conf)) {
		snprintf(err, errsize,
			 "run: mailkeep run is already running for %s (pid %ld, %s); stop it first "
			 "(kill %ld)",
			 conf, (long)sup, path, (long)sup);
		return -1;
	}
	/* 2. the services a dead supervisor left behind, by the pid files it wrote */
	for (size_t i = 0; service_bins[i] != NULL; i++) {
		if (left(leave, service_bins[i]))
			continue;
		snprintf(path, sizeof(path), "%s/run.%s.pid", rundir, service_bins[i]);
		pid_t pid = read_pidfile(path);
		if (pid > 0 && is_ours(pid, service_bins[i], conf) &&
		    stop_leftover(pid, service_bins[i], path) < 0) {
			snprintf(err, errsize, "run: %s (pid %ld) of this instance will not stop",
				 service_bins[i], (long)pid);
			return -1;
		}
		unlink(path);
	}
	/* 2b. any other process of a service binary with this configuration
	 * (a mount started by hand holds no port) */
	DIR *proc = opendir("/proc");
	struct dirent *e;
	while (proc != NULL && (e = readdir(proc)) != NULL) {
		uint64_t v;
		if (mk_parse_u64(e->d_name, 2, 4194304, &v) < 0 || (pid_t)v == getpid())
			continue;
		for (size_t i = 0; service_bins[i] != NULL; i++) {
			if (left(leave, service_bins[i]) ||
			    !is_ours((pid_t)v, service_bins[i], conf))
				continue;
			if (stop_leftover((pid_t)v, service_bins[i], "found by its -c argument") <
			    0) {
				snprintf(err, errsize,
					 "run: %s (pid %ld) of this instance will not stop",
					 service_bins[i], (long)v);
				closedir(proc);
				return -1;
			}
		}
	}
	if (proc != NULL)
		closedir(proc);
	/* 3. whoever holds one of our ports: ours (started by hand) is stopped,
	 * anything else is named and we refuse, instead of looping on
	 * "Address already in use" */
	for (const struct params_area *area = params_registry; area->title != NULL; area++) {
		int skip = 0;
		for (size_t i = 0; leave != NULL && leave[i] != NULL; i++) {
			char tag[64];
			snprintf(tag, sizeof(tag), "(%s)", leave[i]);
			skip |= strstr(area->title, tag) != NULL;
		}
		for (const struct config_param *prm = area->params; !skip && prm->name != NULL;
		     prm++) {
			if (is_listener_setting(prm) &&
			    check_listeners(cfg, prm->name, conf, err, errsize) < 0)
				return -1;
		}
	}
	/* 4. a mount left behind by a mailkeep-fs that died is detached */
	if (mount_point != NULL && *mount_point != 0 && run_guard_mounted(mount_point))
		run_guard_unmount(mount_point);
	return 0;
}

pid_t run_guard_find(const char *conf, const char *bin)
{
	DIR *proc = opendir("/proc");
	struct dirent *e;
	pid_t found = 0;

	while (proc != NULL && found == 0 && (e = readdir(proc)) != NULL) {
		uint64_t v;
		if (mk_parse_u64(e->d_name, 2, 4194304, &v) == 0 && (pid_t)v != getpid() &&
		    is_ours((pid_t)v, bin, conf))
			found = (pid_t)v;
	}
	if (proc != NULL)
		closedir(proc);
	return found;
}

void run_guard_record(const char *rundir, const char *bin, pid_t pid)
{
	char path[4200], text[32];

	snprintf(path, sizeof(path), "%s/run.%s.pid", rundir, bin);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	int n = snprintf(text, sizeof(text), "%ld\n", (long)pid);
	(void)!mk_write_all(fd, text, (size_t)n);
	close(fd);
}

void run_guard_forget(const char *rundir, const char *bin)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/run.%s.pid", rundir, bin);
	unlink(path);
}

/* Unescapes mountinfo's octal escapes (\040 for a space) in place. */
static void mountinfo_unescape(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = 0;
}

int run_guard_mounted(const char *mountpoint)
{
	char want[4096];
	FILE *fp = fopen("/proc/self/mountinfo", "re");
	char line[8192];
	int found = 0;

	if (realpath(mountpoint, want) == NULL)
		mk_strlcpy(want, mountpoint, sizeof(want)); /* ENOTCONN: a stale mount */
	if (fp == NULL)
		return 0;
	while (!found && fgets(line, sizeof(line), fp) != NULL) {
		/* id parent major:minor root mountpoint options ... - fstype source */
		char mp[4096];
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
			continue;
		mountinfo_unescape(mp);
		const char *dash = strstr(line, " - ");
		if (strcmp(mp, want) == 0 && dash != NULL && strncmp(dash + 3, "fuse", 4) == 0)
			found = 1;
	}
	fclose(fp);
	return found;
}

int run_guard_unmount(const char *mountpoint)
{
	pid_t pid;
	int status = 0;
	char *argv[] = {"fusermount3", "-u", "-z", (char *)mountpoint, NULL};

	fprintf(stderr,
		"mailkeep: run: %s is still mounted (its mailkeep-fs is gone); detaching it\n",
		mountpoint);
	if (geteuid() == 0 && umount2(mountpoint, MNT_DETACH) == 0)
		return 0;
	if (posix_spawnp(&pid, "fusermount3", NULL, NULL, argv, environ) == 0)
		waitpid(pid, &status, 0);
	else
		return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}
