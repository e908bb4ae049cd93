/* daemon — the start-up every mailkeep daemon shares (Postfix's
 * single_server_main idea): flags, loading the configuration, logging, the pid
 * file, dropping privileges, and SIGHUP/SIGTERM as events of the program's own
 * loop. smtpin, imapd and fs use it; a new daemon (smtpout, ManageSieve)
 * fills a struct daemon_spec and calls the same functions in the same order:
 *
 *     static struct daemon d;
 *     daemon_init(&d, &spec, argc, argv);        flags, signals, configuration
 *     ...bind its settings (index/params.h)...
 *     daemon_log_open(&d, syslog_name, log_target);
 *     ...bind listening sockets (may need root)...
 *     daemon_detach(&d);                         unless -f
 *     daemon_drop_privileges(&d, mail_owner);
 *     daemon_write_pidfile(&d, path);            optional
 *     ...open the store (after any fork), watch d.signal_fd in the loop,
 *        and call daemon_signal_dispatch when it is readable...
 *
 * Flags, the same for every daemon:
 *   -c CONF       the configuration (default $MAILKEEP_CONF, else
 *                 /etc/mailkeep/mailkeep.conf)
 *   -f            stay in the foreground and log to stderr (not when stderr
 *                 is systemd's journal, $JOURNAL_STREAM: log_target then)
 *   -v            verbose logging (also $MAILKEEP_VERBOSE)
 *   -h, --help    what the program does and its flags, on stdout; exit 0
 *   -V, --version the version; exit 0
 * plus the program's own (spec->flags) and positional arguments
 * (spec->max_args). A bad flag prints the usage on stderr and exits 2; a
 * configuration that cannot be read exits 1 with "mailkeep-NAME: file:line: ...".
 *
 * Failures of the later steps are fatal (log_fatal: logged, exit 1): a daemon
 * that cannot drop privileges or write its pid file must not run.
 *
 * lib/ knows no settings table: the program passes the loader (index/'s
 * params_load) and the values of the shared settings.
 */
#ifndef MK_DAEMON_H
#define MK_DAEMON_H

#include <stddef.h>

#define MAILKEEP_VERSION "0.1"

struct config;
struct daemon;

/* What a program tells the skeleton about itself. */
struct daemon_spec {
	const char *name;     /* "smtpin": the binary is mailkeep-smtpin, the log ident
				 <syslog_name>/smtpin */
	const char *synopsis; /* its own flags and arguments for the usage line,
				 e.g. "[-d] [MOUNTPOINT]"; NULL: none */
	const char *help;     /* --help text after the usage line: what it does and its
				 own flags */
	const char *flags;    /* its own getopt letters, e.g. "d" (none: NULL) */
	/* Called for each of its own flags. */
	void (*flag)(struct daemon *d, int c, const char *arg);
	int max_args; /* positional arguments allowed (in d->args) */
	/* 1: SIGHUP, SIGTERM and SIGINT are blocked in every thread and read
	 * from d->signal_fd (see daemon_signal_dispatch). 0: the program handles
	 * SIGTERM itself (fs: libfuse's handlers end its loop); SIGHUP is ignored. */
	int signals;
	/* Loads the configuration (NULL path: none). Returns NULL with err. */
	struct config *(*load)(const char *path, char *err, size_t errsize);
	/* SIGHUP: reload what can be reloaded (TLS certificates); NULL: nothing.
	 * Called after apply (when there is one). */
	void (*on_reload)(void *ctx);
	/* SIGHUP, with the configuration read again and checked by the
	 * skeleton (a file that does not parse, or a setting config_check
	 * refuses, is logged as "file:line: ..." and the running configuration
	 * stays; apply is not called). apply builds everything the new
	 * settings need and, only if all of it works, puts it in place at once
	 * and returns 0: it owns cfg from then on. Otherwise it returns -1
	 * with what is wrong in err ("setting: what", located as file:line by
	 * the skeleton), having changed nothing; the skeleton frees cfg. It
	 * names in the log the changed settings that take a restart. NULL:
	 * only on_reload. */
	int (*apply)(void *ctx, struct config *cfg, char *err, size_t errsize);
	/* SIGTERM or SIGINT (sig says which): stop accepting and finish. */
	void (*on_stop)(void *ctx, int sig);
};

struct daemon {
	const struct daemon_spec *spec;
	const char *conf_path; /* -c, $MAILKEEP_CONF or the default */
	int foreground;	       /* -f */
	int verbose;	       /* -v or $MAILKEEP_VERBOSE */
	char **args;	       /* positional arguments (argv after the flags) */
	int nargs;
	struct config *cfg; /* loaded by daemon_init; the program frees it */
	int signal_fd;	    /* spec->signals: a signalfd of SIGHUP, SIGTERM, SIGINT; else -1 */
	void *ctx;	    /* passed to on_reload and on_stop (the program sets it) */
	char ident[2][128]; /* the log ident, set by daemon_log_open (two: a reload
			       writes the other, so a thread logging meanwhile reads
			       a whole one) */
	int ident_now;
};

/* Parses the flags (answering --help and --version), ignores SIGPIPE, sets up
 * the signals (spec->signals) before any thread exists, and loads the
 * configuration. Exits on --help/--version (0), a bad flag (2) or an
 * unreadable configuration (1). */
void daemon_init(struct daemon *d, const struct daemon_spec *spec, int argc, char **argv);
/* Opens the log as <syslog_name>/<name>: to stderr with -f or log_target =
 * stderr, else to syslog (LOG_MAIL). */
void daemon_log_open(struct daemon *d, const char *syslog_name, const char *log_target);
/* Goes into the background (fork, setsid, stdio to /dev/null) unless -f. */
void daemon_detach(struct daemon *d);
/* Drops root to user after the ports are bound (net_drop_privileges);
 * nothing if not root or user is NULL or "". Fatal on failure. */
void daemon_drop_privileges(struct daemon *d, const char *user);
/* Writes the pid into path (its directory made if missing); NULL or "":
 * nothing. A failure is logged, not fatal (as Postfix's). */
void daemon_write_pidfile(struct daemon *d, const char *path);
/* Opens the instance's shared counters (lib/metrics.h: the file METRICS_FILE
 * in rundir, the $run_directory) as the process's default table, given to owner
 * (mail_owner) when root, and keeps the warnings the process logs in it
 * (`mailkeep status` shows the last ones). Call it after daemon_log_open and
 * before dropping privileges. A failure is logged, not fatal: counting is
 * not worth refusing mail for. */
void daemon_metrics_open(struct daemon *d, const char *rundir, const char *owner);
/* The log again, with settings a reload changed (syslog_name, log_target). */
void daemon_log_reopen(struct daemon *d, const char *syslog_name, const char *log_target);
/* Reads the signals waiting on d->signal_fd and calls spec->on_reload for
 * SIGHUP, spec->on_stop for SIGTERM/SIGINT. Call it when the fd is readable. */
void daemon_signal_dispatch(struct daemon *d);

#endif
