/* cmd_status — `mailkeep status`: which services of this instance run, and
 * what the shared connection table (lib/anvil.h) holds now: clients with
 * connections not logged in, a connection rate, failed logins or a penalty;
 * users with failed logins or a lockout; what the limits refused since each
 * service started. Read-only (it takes the table's lock for a moment). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "index/params.h"
#include "lib/anvil.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "tools/cli.h"

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

/* By the pid files of `run`, else (a service started on its own) by the
 * process that holds the service's column of the connection table. */
static void print_services(const char *rundir, const struct anvil_column_info *cols)
{
	static const struct {
		const char *name, *file;
		int column;
	} svc[] = {
	    {"run", "mailkeep.pid", -1},
	    {"smtpin", "run.mailkeep-smtpin.pid", ANVIL_SMTPIN},
	    {"smtpout", "run.mailkeep-smtpout.pid", -1},
	    {"imapd", "run.mailkeep-imapd.pid", ANVIL_IMAPD},
	    {"mount", "run.mailkeep-fs.pid", -1},
	};
	printf("services:\n");
	for (size_t i = 0; i < sizeof(svc) / sizeof(svc[0]); i++) {
		long pid = pid_of(rundir, svc[i].file);
		if (pid == 0 && svc[i].column >= 0 && cols[svc[i].column].pid > 0 &&
		    (kill((pid_t)cols[svc[i].column].pid, 0) == 0 || errno == EPERM))
			pid = cols[svc[i].column].pid;
		if (pid > 0)
			printf("  %-8s running, pid %ld\n", svc[i].name, pid);
		else
			printf("  %-8s not running\n", svc[i].name);
	}
}

static int run_status(struct cli *cli, int argc, char **argv)
{
	struct config *cfg;
	char path[4200], err[512];

	(void)argv;
	if (argc != 1)
		return cli_usage(&cmd_status);
	if ((cfg = cli_config(cli)) == NULL)
		return 1;
	const char *rundir = cli->common.run_directory;
	snprintf(path, sizeof(path), "%s/anvil", rundir);
	int have_table = access(path, F_OK) == 0;
	struct anvil_column_info cols[ANVIL_COLUMNS];
	struct anvil *a = NULL;
	memset(cols, 0, sizeof(cols));
	struct anvil_settings as;
	params_anvil_settings(&cli->common, &as);
	if (!have_table) {
		print_services(rundir, cols);
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
	print_services(rundir, cols);

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
    "Shows which services of this instance run (by the pid files in $run_directory),\n"
    "and the shared connection table: client networks with connections not logged\n"
    "in (SMTP, IMAP), their connections in the last anvil_rate_time_unit, failed\n"
    "logins and the penalty still to wait; users with failed logins, their penalty\n"
    "and a lockout (auth_failure_lockout); and what the limits refused.\n\n"
    "example:\n  mailkeep status\n";

const struct command cmd_status = {
    "status", "", "services, client limits and login penalties now", status_help, run_status,
};
