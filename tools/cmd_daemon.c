/* cmd_daemon — `mailkeep smtpin|smtpout|imapd|mount` exec the service binaries
 * (mailkeep-smtpin, mailkeep-imapd, mailkeep-fs), found next to the mailkeep
 * binary or in PREFIX/lib/mailkeep; `mailkeep run` starts every one that is
 * installed, in the foreground, and restarts one that dies (with a growing
 * pause, so a service that cannot start does not spin). SIGHUP to `run` is
 * passed on to the services (they load their TLS certificates again). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"
#include "lib/xmalloc.h"
#include "tools/cli.h"
#include "tools/run_guard.h"
#include "tools/run_watch.h"

/* The path of a service binary, or -1 if it is not installed. */
static int find_service(struct cli *cli, const char *bin, char *out, size_t size)
{
	return cli_find_service(cli, bin, out, size);
}

static int exec_service(struct cli *cli, const char *bin, int argc, char **argv)
{
	char path[4200];
	char **args = xcalloc((size_t)argc + 4, sizeof(*args));
	int k = 0;

	if (find_service(cli, bin, path, sizeof(path)) < 0) {
		cli_error("%s is not installed (looked in %s and %s/../lib/mailkeep)", bin,
			  cli->exe_dir, cli->exe_dir);
		free(args);
		return 1;
	}
	args[k++] = path;
	args[k++] = "-c";
	args[k++] = (char *)cli->conf_path;
	for (int i = 1; i < argc; i++)
		args[k++] = argv[i];
	args[k] = NULL;
	execv(path, args);
	cli_error("cannot run %s: %s", path, strerror(errno));
	free(args);
	return 1;
}

static int run_smtpin(struct cli *cli, int argc, char **argv)
{
	return exec_service(cli, "mailkeep-smtpin", argc, argv);
}
static int run_smtpout(struct cli *cli, int argc, char **argv)
{
	return exec_service(cli, "mailkeep-smtpout", argc, argv);
}
static int run_imapd(struct cli *cli, int argc, char **argv)
{
	return exec_service(cli, "mailkeep-imapd", argc, argv);
}
static int run_mount(struct cli *cli, int argc, char **argv)
{
	return exec_service(cli, "mailkeep-fs", argc, argv);
}

static volatile sig_atomic_t stop_signal, hup;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		hup = 1;
	else
		stop_signal = sig;
}

struct service {
	const char *name, *bin;
	char path[4200];
	pid_t pid;
	double started, next_start;
	double pause;
};

static pid_t start_service(struct cli *cli, struct service *s, const char *rundir)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid < 0) {
		cli_error("run: cannot start %s: %s", s->name, strerror(errno));
		return -1;
	}
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		/* ignored until the service handles it: a SIGHUP passed on while it
		 * starts must not kill it (exec keeps an ignored signal ignored) */
		signal(SIGHUP, SIG_IGN);
		/* the service ends with us, even if we are killed with SIGKILL (the
		 * signal is armed again after a service drops privileges:
		 * net_drop_privileges); if we died already, do not start */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(1);
		execl(s->path, s->path, "-c", cli->conf_path, "-f", (char *)NULL);
		fprintf(stderr, "mailkeep: run: cannot exec %s: %s\n", s->path, strerror(errno));
		_exit(127);
	}
	s->pid = pid;
	s->started = mk_monotonic();
	if (rundir != NULL)
		run_guard_record(rundir, s->bin, pid);
	fprintf(stderr, "mailkeep: run: started %s (pid %ld)\n", s->name, (long)pid);
	return pid;
}

static const char run_help[] =
    "Starts every service that is installed — mailkeep-smtpin (SMTP and LMTP),\n"
    "mailkeep-smtpout (the outbound queue), mailkeep-imapd (IMAP), mailkeep-fs\n"
    "(the mount) — each with -c CONF -f, and\n"
    "watches them: one that exits is started again after a pause that grows from\n"
    "1 s to 60 s while it keeps failing. SIGTERM or SIGINT stops them all (SIGKILL\n"
    "after 10 s) and then run itself. SIGHUP is passed on to the services, which\n"
    "load their TLS certificates again (a renewal) and keep running. Stays in the\n"
    "foreground (for systemd, or `mailkeep run &`); writes its pid to\n"
    "$run_directory/mailkeep.pid. The services end with it even when it is killed\n"
    "with SIGKILL. Before starting, it refuses to run beside another `run` of the\n"
    "same configuration, stops services of this instance left running, names a\n"
    "process of something else holding one of its ports (and exits 1), and detaches\n"
    "a stale mount. --without NAME (smtpin, smtpout, imapd, mount;\n"
    "repeatable) leaves a\n"
    "service to something else (the Debian units run the mount in a unit of its own).\n"
    "  mailkeep smtpin|smtpout|imapd|mount [ARGS]  run one service (exec), with -c CONF and "
    "ARGS\n\n"
    "examples:\n  mailkeep -c /srv/mail/mailkeep.conf run\n  mailkeep imapd -f\n";

static int run_all(struct cli *cli, int argc, char **argv)
{
	struct service svc[] = {
	    {.name = "smtpin", .bin = "mailkeep-smtpin"},
	    {.name = "smtpout", .bin = "mailkeep-smtpout"},
	    {.name = "imapd", .bin = "mailkeep-imapd"},
	    {.name = "mount", .bin = "mailkeep-fs"},
	};
	size_t n = sizeof(svc) / sizeof(svc[0]), active = 0;
	struct sigaction sa = {0};
	char pidfile[4200] = "";
	struct config *cfg;

	/* --without NAME: a service another unit runs (the mount: a FUSE mount
	 * made inside a sandboxed unit's mount namespace would not be seen
	 * outside it; doc/ops.md) */
	int without[sizeof(svc) / sizeof(svc[0])] = {0};
	size_t mount = 0; /* the mount's entry: run looks after its mount point */
	while (mount < n - 1 && strcmp(svc[mount].bin, "mailkeep-fs") != 0)
		mount++;
	for (int a = 1; a < argc; a++) {
		size_t k = n;
		if (strcmp(argv[a], "--without") == 0 && a + 1 < argc)
			for (k = 0; k < n && strcmp(svc[k].name, argv[a + 1]) != 0; k++)
				;
		if (k == n) {
			cli_error("run: want --without smtpin|smtpout|imapd|mount, not '%s'",
				  argv[a]);
			return cli_usage(&cmd_run);
		}
		without[k] = 1;
		a++;
	}
	if ((cfg = cli_config(cli)) == NULL)
		return 1;
	for (size_t i = 0; i < n; i++) {
		if (without[i]) {
			svc[i].path[0] = '\0';
			fprintf(stderr, "mailkeep: run: %s: not started (--without)\n",
				svc[i].name);
		} else if (find_service(cli, svc[i].bin, svc[i].path, sizeof(svc[i].path)) == 0) {
			svc[i].pause = 1;
			active++;
		} else {
			svc[i].path[0] = '\0';
			fprintf(stderr, "mailkeep: run: %s is not installed: not started\n",
				svc[i].bin);
		}
	}
	if (active == 0) {
		cli_error("run: no service is installed next to %s", cli->exe_dir);
		return 1;
	}
	const char *rundir = cli->common.run_directory;
	if (rundir != NULL && *rundir == 0)
		rundir = NULL;
	if (rundir != NULL) {
		/* another run of this instance, or services it left behind */
		char err[1024];
		const char *leave[sizeof(svc) / sizeof(svc[0]) + 1] = {NULL};
		for (size_t i = 0, k = 0; i < n; i++)
			if (without[i])
				leave[k++] = svc[i].bin;
		if (run_guard_start(cfg, cli->conf_path, rundir,
				    svc[mount].path[0] != '\0' ? cli->common.mount_point : NULL,
				    leave, err, sizeof(err)) < 0) {
			cli_error("%s", err);
			return 1;
		}
	}
	/* readiness for systemd, the metrics endpoint, the store's size history */
	char werr[1024];
	struct run_watch *watch = run_watch_start(cli, werr, sizeof(werr));
	if (watch == NULL) {
		cli_error("run: %s", werr);
		return 1;
	}
	if (rundir != NULL && mk_mkdirs(rundir, 0755) == 0) {
		int k = snprintf(pidfile, sizeof(pidfile), "%s/mailkeep.pid", rundir);
		if (k > 0 && (size_t)k < sizeof(pidfile)) {
			FILE *f = fopen(pidfile, "w");
			if (f != NULL) {
				fprintf(f, "%ld\n", (long)getpid());
				fclose(f);
			}
		} else {
			pidfile[0] = '\0';
		}
	}
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	for (size_t i = 0; i < n; i++)
		if (svc[i].path[0] != '\0')
			start_service(cli, &svc[i], rundir);
	while (!stop_signal) {
		int status;
		if (hup) {
			hup = 0;
			for (size_t i = 0; i < n; i++) {
				if (svc[i].pid <= 0)
					continue;
				kill(svc[i].pid, SIGHUP);
				fprintf(stderr, "mailkeep: run: SIGHUP passed on to %s (pid %ld)\n",
					svc[i].name, (long)svc[i].pid);
			}
			run_watch_reloading(watch);
		}
		pid_t pid = waitpid(-1, &status, WNOHANG);
		double now = mk_monotonic();
		if (pid > 0) {
			for (size_t i = 0; i < n; i++) {
				if (svc[i].pid != pid)
					continue;
				svc[i].pid = 0;
				if (now - svc[i].started > 60)
					svc[i].pause =
					    1; /* it ran fine for a while: start again quickly */
				if (WIFSIGNALED(status))
					fprintf(stderr,
						"mailkeep: run: %s (pid %ld) killed by signal %d; "
						"restart in %.0f s\n",
						svc[i].name, (long)pid, WTERMSIG(status),
						svc[i].pause);
				else
					fprintf(stderr,
						"mailkeep: run: %s (pid %ld) exited with %d; "
						"restart in %.0f s\n",
						svc[i].name, (long)pid, WEXITSTATUS(status),
						svc[i].pause);
				svc[i].next_start = now + svc[i].pause;
				svc[i].pause = svc[i].pause * 2 > 60 ? 60 : svc[i].pause * 2;
			}
			continue;
		}
		for (size_t i = 0; i < n; i++)
			if (svc[i].path[0] != '\0' && svc[i].pid == 0 && now >= svc[i].next_start)
				start_service(cli, &svc[i], rundir);
		struct run_watch_svc ws[sizeof(svc) / sizeof(svc[0])];
		for (size_t i = 0; i < n; i++)
			ws[i] = (struct run_watch_svc){svc[i].name, svc[i].bin,
						       svc[i].path[0] != '\0', svc[i].pid};
		run_watch_tick(watch, 100, ws, n); /* waits 100 ms, serving scrapes */
	}
	fprintf(stderr, "mailkeep: run: signal %d: stopping the services\n", (int)stop_signal);
	run_watch_stop(&watch);
	for (size_t i = 0; i < n; i++)
		if (svc[i].pid > 0)
			kill(svc[i].pid, SIGTERM);
	double deadline = mk_monotonic() + 10;
	for (;;) {
		size_t alive = 0;
		for (size_t i = 0; i < n; i++) {
			if (svc[i].pid <= 0)
				continue;
			if (waitpid(svc[i].pid, NULL, WNOHANG) == svc[i].pid)
				svc[i].pid = 0;
			else
				alive++;
		}
		if (alive == 0)
			break;
		if (mk_monotonic() > deadline) {
			for (size_t i = 0; i < n; i++)
				if (svc[i].pid > 0) {
					kill(svc[i].pid, SIGKILL);
					waitpid(svc[i].pid, NULL, 0);
					svc[i].pid = 0;
				}
			break;
		}
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	for (size_t i = 0; rundir != NULL && i < n; i++)
		if (svc[i].path[0] != '\0')
			run_guard_forget(rundir, svc[i].bin);
	/* the mount must be gone with its service (one killed after 10 s leaves it) */
	const char *mp = cli->common.mount_point;
	if (svc[mount].path[0] != '\0' && mp != NULL && *mp != 0 && run_guard_mounted(mp) &&
	    run_guard_unmount(mp) < 0)
		cli_warn("run: %s is still mounted; unmount it with fusermount3 -u %s", mp, mp);
	if (pidfile[0] != '\0')
		unlink(pidfile);
	return 0;
}

const struct command cmd_smtpin = {
    "smtpin", "[ARGS]", "run the SMTP/LMTP service (mailkeep-smtpin)", run_help, run_smtpin,
};
const struct command cmd_smtpout = {
    "smtpout", "[ARGS]",    "run the outbound queue and SMTP client (mailkeep-smtpout)",
    run_help,  run_smtpout,
};
const struct command cmd_imapd = {
    "imapd", "[ARGS]", "run the IMAP service (mailkeep-imapd)", run_help, run_imapd,
};
const struct command cmd_mount = {
    "mount",  "[ARGS]",	 "run the mount of every user's mail as Maildirs (mailkeep-fs)",
    run_help, run_mount,
};
const struct command cmd_run = {
    "run",
    "[--without smtpin|smtpout|imapd|mount]...",
    "start and supervise every installed service",
    run_help,
    run_all,
};
