/* daemon — the start-up every mailkeep daemon shares (see daemon.h). */
#define _GNU_SOURCE 1
#include "lib/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/net.h"
#include "lib/util.h"

#define DEFAULT_CONF "/etc/mailkeep/mailkeep.conf"

static void usage(const struct daemon_spec *spec, FILE *f)
{
	fprintf(f, "usage: mailkeep-%s [-c CONF] [-f] [-v]%s%s\n", spec->name,
		spec->synopsis != NULL ? " " : "", spec->synopsis != NULL ? spec->synopsis : "");
}

static void help(const struct daemon_spec *spec)
{
	usage(spec, stdout);
	printf("\n%s\n\n"
	       "  -c CONF        the configuration (default: $MAILKEEP_CONF, else %s)\n"
	       "  -f             stay in the foreground and log to stderr\n"
	       "  -v             verbose logging (also $MAILKEEP_VERBOSE)\n"
	       "  -h, --help     this text\n"
	       "  -V, --version  the version\n",
	       spec->help, DEFAULT_CONF);
}

static void parse_flags(struct daemon *d, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	const struct daemon_spec *spec = d->spec;
	char opts[64];
	int c;

	snprintf(opts, sizeof(opts), "c:fvhV%s", spec->flags != NULL ? spec->flags : "");
	while ((c = getopt_long(argc, argv, opts, longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			d->conf_path = optarg;
			break;
		case 'f':
			d->foreground = 1;
			break;
		case 'v':
			d->verbose = 1;
			break;
		case 'h':
			help(spec);
			exit(0);
		case 'V':
			printf("mailkeep-%s %s\n", spec->name, MAILKEEP_VERSION);
			exit(0);
		case '?':
			usage(spec, stderr);
			fprintf(stderr, "(mailkeep-%s --help tells more)\n", spec->name);
			exit(2);
		default:
			spec->flag(d, c, optarg);
			break;
		}
	}
	d->args = argv + optind;
	d->nargs = argc - optind;
	if (d->nargs > spec->max_args) {
		usage(spec, stderr);
		exit(2);
	}
}

/* SIGHUP, SIGTERM and SIGINT blocked here, and so in every thread made later,
 * and read from a signalfd by the program's loop: a signal that comes before
 * the loop waits for it instead of killing the process. */
static void block_signals(struct daemon *d)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		log_fatal("cannot block signals");
	d->signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->signal_fd < 0)
		log_fatal("signalfd: %s", strerror(errno));
	signal(SIGHUP, SIG_DFL); /* an ignored signal would never reach the fd */
}

void daemon_init(struct daemon *d, const struct daemon_spec *spec, int argc, char **argv)
{
	const char *env = getenv("MAILKEEP_CONF");
	char err[512];

	memset(d, 0, sizeof(*d));
	d->spec = spec;
	d->signal_fd = -1;
	d->conf_path = env != NULL && env[0] != '\0' ? env : DEFAULT_CONF;
	d->verbose = getenv("MAILKEEP_VERBOSE") != NULL;
	parse_flags(d, argc, argv);
	signal(SIGPIPE, SIG_IGN);
	/* SIGHUP (`mailkeep run` passes it on for a certificate renewal) must
	 * never end a daemon, not even one that has nothing to reload */
	signal(SIGHUP, SIG_IGN);
	if (spec->signals)
		block_signals(d);
	d->cfg = spec->load(d->conf_path, err, sizeof(err));
	if (d->cfg == NULL) {
		fprintf(stderr, "mailkeep-%s: %s\n", spec->name, err);
		exit(1);
	}
}

void daemon_log_open(struct daemon *d, const char *syslog_name, const char *log_target)
{
	/* -f logs to stderr, but not when stderr is systemd's journal
	 * ($JOURNAL_STREAM): then log_target = syslog is followed, so that the
	 * lines reach syslog's mail.log (pflogsumm, mailkeep report) and the
	 * journal once each, with the journal's own time stamps */
	int to_stderr = (d->foreground && getenv("JOURNAL_STREAM") == NULL) ||
			(log_target != NULL && strcmp(log_target, "stderr") == 0);
	char *ident = d->ident[d->ident_now];

	snprintf(ident, sizeof(d->ident[0]), "%s/%s",
		 syslog_name != NULL && syslog_name[0] != '\0' ? syslog_name : "mailkeep",
		 d->spec->name);
	log_open(ident, to_stderr ? LOG_TO_STDERR : LOG_TO_SYSLOG);
	log_set_verbose(d->verbose);
}

void daemon_log_reopen(struct daemon *d, const char *syslog_name, const char *log_target)
{
	d->ident_now = !d->ident_now;
	daemon_log_open(d, syslog_name, log_target);
}

void daemon_detach(struct daemon *d)
{
	if (!d->foreground && daemon(0, 0) < 0)
		log_fatal("daemon: %s", strerror(errno));
}

void daemon_drop_privileges(struct daemon *d, const char *user)
{
	char err[512];

	(void)d;
	if (net_drop_privileges(user, err, sizeof(err)) < 0)
		log_fatal("%s", err);
}

void daemon_write_pidfile(struct daemon *d, const char *path)
{
	char buf[32], dir[512];

	(void)d;
	if (path == NULL || *path == 0)
		return;
	mk_strlcpy(dir, path, sizeof(dir));
	char *slash = strrchr(dir, '/');
	if (slash != NULL && slash != dir) {
		*slash = 0;
		mk_mkdirs(dir, 0755);
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		log_warn("cannot write %s: %s", path, strerror(errno));
		return;
	}
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (mk_write_all(fd, buf, (size_t)n) < 0)
		log_warn("cannot write %s: %s", path, strerror(errno));
	close(fd);
}

void daemon_metrics_open(struct daemon *d, const char *rundir, const char *owner)
{
	struct metrics *m = NULL;
	char err[512], path[4200];

	(void)d;
	if (rundir == NULL || *rundir == 0)
		return;
	mk_mkdirs(rundir, 0755);
	snprintf(path, sizeof(path), "%s/%s", rundir, METRICS_FILE);
	if (metrics_open(path, owner, 0, &m, err, sizeof(err)) < 0) {
		log_warn("counters not kept (mailkeep status and the metrics endpoint will miss "
			 "them): %s",
			 err);
		return;
	}
	metrics_set_default(m);
	log_set_hook(metrics_log_hook);
}

struct first_problem {
	int n;
	char text[600];
};

static void note_problem(const char *msg, void *ctx)
{
	struct first_problem *p = ctx;
	if (p->n++ == 0)
		mk_strlcpy(p->text, msg, sizeof(p->text));
}

/* SIGHUP: the configuration again, checked, then the program's apply. */
static void reload(struct daemon *d)
{
	char err[1024], where[1200];
	struct first_problem prob = {0};

	log_info("SIGHUP: reading %s again", d->conf_path);
	struct config *cfg = d->spec->load(d->conf_path, err, sizeof(err));
	if (cfg == NULL) {
		log_warn("SIGHUP: configuration not reloaded: %s; the one loaded before stays",
			 err);
		return;
	}
	config_check(cfg, note_problem, &prob);
	if (prob.n > 0) {
		log_warn("SIGHUP: configuration not reloaded: %s%s; the one loaded before stays",
			 prob.text, prob.n > 1 ? " (and more: `mailkeep check` lists them)" : "");
		config_free(&cfg);
		return;
	}
	err[0] = '\0';
	if (d->spec->apply(d->ctx, cfg, err, sizeof(err)) < 0) {
		config_locate(cfg, err, where, sizeof(where));
		log_warn("SIGHUP: configuration not reloaded: %s; the one loaded before stays",
			 where);
		config_free(&cfg);
		return;
	}
	d->cfg = cfg;
}

void daemon_signal_dispatch(struct daemon *d)
{
	struct signalfd_siginfo si;

	while (read(d->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			if (d->spec->apply != NULL)
				reload(d);
			if (d->spec->on_reload != NULL)
				d->spec->on_reload(d->ctx);
		} else if (d->spec->on_stop != NULL) {
			d->spec->on_stop(d->ctx, (int)si.ssi_signo);
		}
	}
}
