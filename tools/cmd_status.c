/* cmd_status — `mailkeep status`: which services of this instance run, and
 * what the shared connection table (lib/anvil.h) holds now: clients with
 * connections not logged in, a connection rate, failed logins or a penalty;
 * users with failed logins or a lockout; what the limits refused since each
 * service started. Read-only (it takes the table's lock for a moment). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "index/params.h"
#include "lib/anvil.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "tools/cli.h"
#include "tools/run_guard.h"
#include "tools/store_history.h"
#include "tools/svc_check.h"

#define MAX_SHOWN 10000

static long pid_of(const char *rundir, const char *file)
{
	char path[4200], *text = NULL;
	size_t len;
	uint64_t v;
	long pid = 0;

	snprintf(path, sizeof(path), "%s/%s", rundir, file);
	if (mk_read_file(path, 64, &text, &len) < 0)
		return 0;
	char *nl = strchr(text, '\n');
	if (nl)
		*nl = 0;
	if (mk_parse_u64(text, 2, 4194304, &v) == 0 && (kill((pid_t)v, 0) == 0 || errno == EPERM))
		pid = (long)v;
	free(text);
	return pid;
}

static void seconds(double s, char *out, size_t size)
{
	if (s <= 0)
		snprintf(out, size, "-");
	else if (s < 120)
		snprintf(out, size, "%.0fs", s < 1 ? 1 : s);
	else if (s < 7200)
		snprintf(out, size, "%.0fm", s / 60);
	else if (s < 172800)
		snprintf(out, size, "%.0fh", s / 3600);
	else
		snprintf(out, size, "%.0fd", s / 86400);
}

static const struct status_svc {
	const char *name, *file, *bin;
	int column;
} status_svcs[] = {
    {"smtpin", "run.mailkeep-smtpin.pid", "mailkeep-smtpin", ANVIL_SMTPIN},
    {"smtpout", "run.mailkeep-smtpout.pid", "mailkeep-smtpout", -1},
    {"imapd", "run.mailkeep-imapd.pid", "mailkeep-imapd", ANVIL_IMAPD},
    {"mount", "run.mailkeep-fs.pid", "mailkeep-fs", -1},
};
#define NSVC (sizeof(status_svcs) / sizeof(status_svcs[0]))

/* A service's pid: the pid file of `run`, else (a service started on its
 * own) the process that holds the service's column of the connection table. */
static long svc_pid(struct cli *cli, const char *rundir, const struct status_svc *sv,
		    const struct anvil_column_info *cols)
{
	long pid = pid_of(rundir, sv->file);
	if (pid == 0 && cols != NULL && sv->column >= 0 && cols[sv->column].pid > 0 &&
	    (kill((pid_t)cols[sv->column].pid, 0) == 0 || errno == EPERM))
		pid = cols[sv->column].pid;
	if (pid == 0) /* started on its own, or by another unit (the mount) */
		pid = (long)run_guard_find(cli->conf_path, sv->bin);
	return pid;
}

/* 1 if the service answers: each listener accepts a connection (connect), or
 * is there (!connect: --wait looks five times a second, and each connection
 * would be a line in the mail log); the mount is mounted. */
static int svc_line(struct cli *cli, const struct status_svc *sv, long pid, int print, int connect)
{
	char line[2048];
	size_t off = 0;
	int up = pid > 0;

#define ADD(...)                                                                                   \
	do {                                                                                       \
		int k_ = snprintf(line + off, sizeof(line) - off, __VA_ARGS__);                    \
		if (k_ > 0)                                                                        \
			off +=                                                                     \
			    (size_t)k_ < sizeof(line) - off ? (size_t)k_ : sizeof(line) - off - 1; \
	} while (0)
	if (pid > 0)
		ADD("running, pid %ld", pid);
	else
		ADD("not running");
	if (strcmp(sv->bin, "mailkeep-fs") == 0) {
		const char *mp = cli->common.mount_point;
		int mounted = mp != NULL && *mp != 0 && run_guard_mounted(mp);
		struct statfs sfs;
		int stale = mounted && statfs(mp, &sfs) < 0; /* ENOTCONN: its daemon is gone */
		ADD("; %s %s",
		    stale     ? "a stale mount (nobody serves it) on"
		    : mounted ? "mounted on"
			      : "not mounted on",
		    mp != NULL ? mp : "-");
		mounted = mounted && !stale;
		up = up && mounted;
	} else if (pid > 0) {
		struct svc_listener l[16];
		size_t n = svc_listeners(cli->cfg, sv->bin, l, 16);
		for (size_t i = 0; i < n && i < 16; i++) {
			int ok = connect ? svc_answers(l[i].spec, 1.0) : svc_listening(l[i].spec);
			ADD("%s%s %s", i == 0 ? "; " : ", ", l[i].spec,
			    ok ? "answers" : "DOES NOT ANSWER");
			up = up && ok;
		}
	}
#undef ADD
	if (print)
		printf("  %-8s %s\n", sv->name, line);
	return up;
}

static void print_services(struct cli *cli, const char *rundir,
			   const struct anvil_column_info *cols)
{
	long run = pid_of(rundir, "mailkeep.pid");
	char path[4200];

	printf("services:\n");
	if (run > 0)
		printf("  %-8s running, pid %ld\n", "run", run);
	else
		printf("  %-8s not running\n", "run");
	for (size_t i = 0; i < NSVC; i++) {
		if (cli_find_service(cli, status_svcs[i].bin, path, sizeof(path)) < 0) {
			printf("  %-8s not installed\n", status_svcs[i].name);
			continue;
		}
		svc_line(cli, &status_svcs[i], svc_pid(cli, rundir, &status_svcs[i], cols), 1, 1);
	}
	const struct config_list *ml = &cli->common.metrics_listen;
	for (size_t i = 0; i < ml->n; i++)
		printf("  %-8s http://%s/metrics %s\n", "metrics", ml->item[i],
		       svc_answers(ml->item[i], 1.0) ? "answers" : "does not answer");
}

/* --wait SECONDS: until every installed service runs and answers. */
static int wait_services(struct cli *cli, const char *rundir, double secs)
{
	double deadline = mk_monotonic() + secs;
	char path[4200];

	for (;;) {
		int all = 1;
		for (size_t i = 0; i < NSVC && all; i++)
			if (cli_find_service(cli, status_svcs[i].bin, path, sizeof(path)) == 0)
				all = svc_line(cli, &status_svcs[i],
					       svc_pid(cli, rundir, &status_svcs[i], NULL), 0, 0);
		if (all)
			return 0;
		if (mk_monotonic() > deadline)
			return -1;
		struct timespec ts = {0, 200 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

/* Queues. None in this build: mail is stored as it arrives. The outbound
 * queue (index/queue_*.h, `mailkeep queue`) adds its sizes here: this
 * function is the one place status asks about queues. */
static void print_queues(struct cli *cli)
{
	(void)cli;
	printf("queues:\n  %-8s none in this build (mail is stored as it arrives)\n", "outbound");
}

static void print_store(struct cli *cli)
{
	const char *sdir = cli->common.store_directory;
	uint64_t now_bytes;
	char h[32], h2[32];

	printf("store: %s\n", sdir);
	if (store_size_now(sdir, &now_bytes) < 0) {
		printf("  size     none yet (no data.mdb)\n");
		return;
	}
	printf("  size     %s (data.mdb)\n", cli_human_bytes(now_bytes, h, sizeof(h)));
	struct store_sample *v = NULL;
	int64_t t = (int64_t)time(NULL);
	size_t n = store_history_read(cli->common.data_directory, t - 31 * 86400, &v);
	static const struct {
		const char *what;
		int days;
	} spans[] = {{"1 day", 1}, {"7 days", 7}, {"30 days", 30}};
	printf("  growth  ");
	int any = 0;
	for (size_t i = 0; i < sizeof(spans) / sizeof(spans[0]); i++) {
		uint64_t then;
		if (!store_history_at(v, n, t - spans[i].days * 86400, &then))
			continue;
		int64_t d = (int64_t)now_bytes - (int64_t)then;
		printf("%s %c%s in %s", any ? "," : "", d < 0 ? '-' : '+',
		       cli_human_bytes((uint64_t)(d < 0 ? -d : d), h2, sizeof(h2)), spans[i].what);
		any = 1;
	}
	if (!any)
		printf(" not known yet (`mailkeep run` keeps a sample every 6 hours in "
		       "%s/stats/store-size)",
		       cli->common.data_directory);
	printf("\n");
	free(v);
}

static uint64_t family_sum(const struct metrics_value *v, size_t n, const char *family,
			   const char *label)
{
	uint64_t sum = 0;
	size_t fl = strlen(family);
	for (size_t i = 0; i < n; i++)
		if (strncmp(v[i].name, family, fl) == 0 &&
		    (v[i].name[fl] == '\0' || v[i].name[fl] == '{') &&
		    (label == NULL || strstr(v[i].name + fl, label) != NULL))
			sum += v[i].value;
	return sum;
}

/* The shared counters (lib/metrics.h) in a few lines, and the last warnings. */
static void print_counters(const char *rundir)
{
	char path[4200], err[512];
	struct metrics *m = NULL;

	snprintf(path, sizeof(path), "%s/%s", rundir, METRICS_FILE);
	if (access(path, F_OK) != 0 || metrics_open(path, NULL, 1, &m, err, sizeof(err)) < 0) {
		printf("counters: none yet (%s: no service has run)\n", path);
		return;
	}
	struct metrics_value *v = xcalloc(METRICS_SLOTS, sizeof(*v));
	size_t n = metrics_snapshot(m, v, METRICS_SLOTS);
	if (n > METRICS_SLOTS)
		n = METRICS_SLOTS;
	printf("counters (since the table was made; `mailkeep report` has the days):\n");
	printf(
	    "  smtp     %llu connections, %llu rejected (postscreen %llu, dnsbl %llu, greylist "
	    "%llu, "
	    "unknown user %llu, relay %llu, other %llu), postscreen tests failed %llu\n",
	    (unsigned long long)family_sum(v, n, "mailkeep_smtp_connections_total", NULL),
	    (unsigned long long)family_sum(v, n, "mailkeep_smtp_rejections_total", NULL),
	    (unsigned long long)family_sum(v, n, "mailkeep_smtp_rejections_total",
					   "\"postscreen\""),
	    (unsigned long long)family_sum(v, n, "mailkeep_smtp_rejections_total", "\"dnsbl\""),
	    (unsigned long long)family_sum(v, n, "mailkeep_smtp_rejections_total", "\"greylist\""),
	    (unsigned long long)family_sum(v, n, "mailkeep_smtp_rejections_total",
					   "\"unknown_user\""),
	    (unsigned long long)family_sum(v, n, "mailkeep_smtp_rejections_total", "\"relay\""),
	    (unsigned long long)family_sum(v, n, "mailkeep_smtp_rejections_total", "\"other\""),
	    (unsigned long long)family_sum(v, n, "mailkeep_postscreen_failures_total", NULL));
	printf(
	    "  delivery %llu stored (%llu into Junk), %llu deferred; retrained %llu as spam, %llu "
	    "as innocent\n",
	    (unsigned long long)family_sum(v, n, "mailkeep_deliveries_total", NULL),
	    (unsigned long long)family_sum(v, n, "mailkeep_deliveries_total", "\"junk\""),
	    (unsigned long long)family_sum(v, n, "mailkeep_deliveries_deferred_total", NULL),
	    (unsigned long long)family_sum(v, n, "mailkeep_spam_retrains_total", "\"spam\""),
	    (unsigned long long)family_sum(v, n, "mailkeep_spam_retrains_total", "\"innocent\""));
	printf("  imap     %llu connections, %llu sessions logged in, %llu logins refused\n",
	       (unsigned long long)family_sum(v, n, "mailkeep_imap_connections_total", NULL),
	       (unsigned long long)family_sum(v, n, "mailkeep_imap_sessions_total", NULL),
	       (unsigned long long)family_sum(v, n, "mailkeep_imap_auth_failures_total", NULL));
	uint64_t restarts = family_sum(v, n, "mailkeep_service_restarts_total", NULL);
	if (restarts > 0)
		printf("  run      %llu service restarts\n", (unsigned long long)restarts);
	free(v);
	struct metrics_note notes[5];
	size_t k = metrics_notes(m, notes, 5);
	printf("last warnings: %s\n", k == 0 ? "none" : "");
	for (size_t i = 0; i < k; i++) {
		char when[32];
		time_t t = (time_t)notes[i].time;
		struct tm tm;
		localtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		printf("  %s %s: %s\n", when, notes[i].who, notes[i].text);
	}
	metrics_close(&m);
}

static int run_status(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"wait", required_argument, NULL, 'w'},
					     {NULL, 0, NULL, 0}};
	struct config *cfg;
	char path[4200], err[512];
	double wait = -1;
	int c;

	while ((c = getopt_long(argc, argv, "w:", opts, NULL)) != -1) {
		uint64_t secs;
		if (c != 'w' || mk_parse_u64(optarg, 0, 3600, &secs) < 0) {
			if (c == 'w')
				cli_error("status --wait: want seconds (0 to 3600), not '%s'",
					  optarg);
			return cli_usage(&cmd_status);
		}
		wait = (double)secs;
	}
	if (optind != argc)
		return cli_usage(&cmd_status);
	if ((cfg = cli_config(cli)) == NULL)
		return 1;
	const char *rundir = cli->common.run_directory;
	if (wait >= 0) {
		if (wait_services(cli, rundir, wait) == 0) {
			printf("every service runs and answers\n");
			return 0;
		}
		print_services(cli, rundir, NULL);
		cli_error("status --wait: not every service answers after %.0f s", wait);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/anvil", rundir);
	int have_table = access(path, F_OK) == 0;
	struct anvil_column_info cols[ANVIL_COLUMNS];
	struct anvil *a = NULL;
	memset(cols, 0, sizeof(cols));
	struct anvil_settings as;
	params_anvil_settings(&cli->common, &as);
	if (!have_table) {
		print_services(cli, rundir, NULL);
		print_queues(cli);
		print_store(cli);
		print_counters(rundir);
		printf("connection table: none yet (%s: no service has run)\n", path);
		return 0;
	}
	if (anvil_open(path, &as, -1, NULL, &a, err, sizeof(err)) < 0) {
		cli_error("status: %s", err);
		return 1;
	}
	struct anvil_net_info *nets = xcalloc(MAX_SHOWN, sizeof(*nets));
	struct anvil_user_info *users = xcalloc(MAX_SHOWN, sizeof(*users));
	size_t nn = 0, nu = 0;
	anvil_snapshot(a, nets, MAX_SHOWN, &nn, users, MAX_SHOWN, &nu, cols);
	anvil_close(&a);
	print_services(cli, rundir, cols);
	print_queues(cli);
	print_store(cli);
	print_counters(rundir);

	printf("clients (networks of /%d and /%d) with connections not logged in, connections in "
	       "the last %.0fs, failed logins or a penalty: %zu\n",
	       as.ipv4_prefix, as.ipv6_prefix, as.rate_unit, nn);
	if (nn > 0)
		printf("  %-28s %6s %6s %6s %8s %8s %8s\n", "client", "smtp", "imap", "rate",
		       "failed", "penalty", "known");
	for (size_t i = 0; i < nn; i++) {
		char key[64], pen[16], known[16];
		anvil_key_str(&nets[i].key, key, sizeof(key));
		seconds(nets[i].penalty_left, pen, sizeof(pen));
		seconds(nets[i].known_left, known, sizeof(known));
		printf("  %-28s %6u %6u %6.0f %8u %8s %8s\n", key, nets[i].conns[ANVIL_SMTPIN],
		       nets[i].conns[ANVIL_IMAPD], nets[i].rate, nets[i].failures, pen, known);
	}
	printf("users with failed logins or a lockout: %zu\n", nu);
	if (nu > 0)
		printf("  %-28s %8s %8s %10s\n", "user", "failed", "penalty", "locked");
	for (size_t i = 0; i < nu; i++) {
		char pen[16], locked[16];
		seconds(users[i].penalty_left, pen, sizeof(pen));
		seconds(users[i].locked_left, locked, sizeof(locked));
		printf("  %-28s %8u %8s %10s\n", users[i].name, users[i].failures, pen, locked);
	}
	static const char *const evname[ANVIL_EV_COUNT] = {
	    "connections refused (client limits, server full)",
	    "sessions closed to make room",
	    "sessions closed by the stress timeout",
	    "logins refused unchecked (penalty queue, lockout)",
	};
	printf("since each service started:%*s %10s %10s\n", 24, "", "smtpin", "imapd");
	for (int ev = 0; ev < ANVIL_EV_COUNT; ev++)
		printf("  %-50s %10lu %10lu\n", evname[ev], cols[ANVIL_SMTPIN].events[ev],
		       cols[ANVIL_IMAPD].events[ev]);
	free(nets);
	free(users);
	return 0;
}

static const char status_help[] =
    "Shows which services of this instance run (by the pid files in $run_directory)\n"
    "and whether each answers on its listeners (the mount: whether it is mounted),\n"
    "the metrics endpoint, the queues, the store's size and growth (from the samples\n"
    "`mailkeep run` keeps), the shared counters (connections, rejections by reason,\n"
    "deliveries, spam verdicts and retrains, IMAP sessions) and the last warnings the\n"
    "services logged, then the shared connection table: client networks with connections not "
    "logged\n"
    "in (SMTP, IMAP), their connections in the last anvil_rate_time_unit, failed\n"
    "logins and the penalty still to wait; users with failed logins, their penalty\n"
    "and a lockout (auth_failure_lockout); and what the limits refused.\n"
    "  --wait SECONDS   instead: wait until every installed service runs and answers;\n"
    "                   exit 0, or 1 with the services' lines after SECONDS\n\n"
    "examples:\n  mailkeep status\n  mailkeep run & mailkeep status --wait 30\n";

const struct command cmd_status = {
    "status",
    "[--wait SECONDS]",
    "services, queues, store, counters, client limits and login penalties now",
    status_help,
    run_status,
};
