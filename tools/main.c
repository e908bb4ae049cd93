/* main — the `mailkeep` command: global options and the command table.
 *
 *   mailkeep [-c CONF] [-v] COMMAND [ARGS...]
 *
 * The configuration is -c CONF, else $MAILKEEP_CONF, else
 * /etc/mailkeep/mailkeep.conf. Every command answers --help. To add a command
 * see tools/cli.h and doc/tools.md.
 */
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/util.h"
#include "tools/cli.h"

static const struct command *const commands[] = {
    &cmd_init,	 &cmd_check, &cmd_user,	  &cmd_alias, &cmd_import,  &cmd_export,   &cmd_fsck,
    &cmd_backup, &cmd_stats, &cmd_smtpin, &cmd_imapd, &cmd_mount,   &cmd_run,	   &cmd_spam,
    &cmd_status, &cmd_phone, &cmd_sieve,  &cmd_queue, &cmd_smtpout, &cmd_sendmail, &cmd_dkim,
};

static void usage_all(FILE *f)
{
	fprintf(f,
		"usage: mailkeep [-c CONF] [-v] COMMAND [ARGS...]\n\n"
		"  -c CONF   the configuration file (default: $MAILKEEP_CONF, else %s)\n"
		"  -v        more detail on stderr\n\ncommands:\n",
		MAILKEEP_DEFAULT_CONF);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n", commands[i]->name, commands[i]->summary);
	fprintf(f, "\n`mailkeep COMMAND --help` tells more; man mailkeep(1), mailkeep.conf(5).\n");
}

static int wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return 0;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct cli cli = {0};
	const char *env = getenv("MAILKEEP_CONF");
	int c, rc;

	cli.conf_path = MAILKEEP_DEFAULT_CONF;
	if (env != NULL && env[0] != '\0') {
		cli.conf_path = env;
		cli.conf_given = 1;
	}
	{
		char exe[4096];
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n > 0) {
			exe[n] = '\0';
			mk_strlcpy(cli.exe_dir, dirname(exe), sizeof(cli.exe_dir));
		}
	}
	/* a link named sendmail (/usr/sbin/sendmail -> mailkeep): the sendmail interface */
	{
		char a0[4096];
		mk_strlcpy(a0, argv[0], sizeof(a0));
		if (strcmp(basename(a0), "sendmail") == 0) {
			argv[0] = "sendmail";
			rc = cmd_sendmail.run(&cli, argc, argv);
			cli_close(&cli);
			return rc;
		}
	}
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	while ((c = getopt_long(argc, argv, "+c:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cli.conf_path = optarg;
			cli.conf_given = 1;
			break;
		case 'v':
			cli.verbose++;
			break;
		case 'h':
			usage_all(stdout);
			return 0;
		default:
			usage_all(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage_all(stderr);
		return EXIT_USAGE;
	}
	argc -= optind;
	argv += optind;
	if (strcmp(argv[0], "help") == 0 && argc == 1) {
		usage_all(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const struct command *cmd = commands[i];
		if (strcmp(cmd->name, argv[0]) != 0 &&
		    !(strcmp(argv[0], "help") == 0 && argc == 2 && strcmp(cmd->name, argv[1]) == 0))
			continue;
		if (strcmp(argv[0], "help") == 0 || wants_help(argc, argv)) {
			printf("usage: mailkeep %s %s\n\n%s\n\n%s", cmd->name, cmd->args,
			       cmd->summary, cmd->help);
			return 0;
		}
		optind = 0; /* each command runs getopt_long from a clean state */
		rc = cmd->run(&cli, argc, argv);
		cli_close(&cli);
		return rc;
	}
	cli_error("unknown command '%s' (mailkeep --help lists them)", argv[0]);
	return EXIT_USAGE;
}
