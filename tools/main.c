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

#include "lib/daemon.h"
#include "lib/util.h"
#include "tools/cli.h"

static const struct command *const commands[] = {
    &cmd_init,	 &cmd_check,   &cmd_user,     &cmd_alias, &cmd_import,	&cmd_export, &cmd_fsck,
    &cmd_backup, &cmd_stats,   &cmd_smtpin,   &cmd_imapd, &cmd_mount,	&cmd_run,    &cmd_spam,
    &cmd_status, &cmd_phone,   &cmd_report,   &cmd_sieve, &cmd_compact, &cmd_search, &cmd_reindex,
    &cmd_queue,	 &cmd_smtpout, &cmd_sendmail, &cmd_dkim,
};

static void usage_all(FILE *f)
{
	fprintf(f,
		"usage: mailkeep [-c CONF] [-v] COMMAND [ARGS...]\n\n"
		"  -c CONF   the configuration file (default: $MAILKEEP_CONF, else %s)\n"
		"  -v        more detail on stderr\n"
		"  -V, --version  the version\n\ncommands:\n",
		MAILKEEP_DEFAULT_CONF);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n", commands[i]->name, commands[i]->summary);
	fprintf(f, "\n`mailkeep COMMAND --help` tells more; man mailkeep(1), mailkeep.conf(5).\n");
}

static void rtrim(char *s)
{
	size_t n = strlen(s);
	while (n > 0 && s[n - 1] == ' ')
		s[--n] = '\0';
}

/* `mailkeep CMD SUB --help`: the part of CMD's help about SUB. A command's
 * help lists its sub-commands as lines beginning "  SUB " or "  CMD SUB ",
 * their explanation on lines indented deeper; its examples are lines with
 * "mailkeep CMD SUB". Prints them and returns 1, or 0 if the help has no
 * line for SUB (the whole help is printed then). */
static int print_sub_help(const struct command *cmd, const char *sub)
{
	char lead1[96], lead2[96], example[128];
	const char *p = cmd->help;
	int in_sub = 0, found = 0, examples = 0;

	if (sub == NULL || sub[0] == '-' || strlen(sub) > 40)
		return 0;
	snprintf(lead1, sizeof(lead1), "  %s ", sub);
	snprintf(lead2, sizeof(lead2), "  %s %s ", cmd->name, sub);
	snprintf(example, sizeof(example), "mailkeep %s %s", cmd->name, sub);
	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		char line[512];
		/* a space after the line, so that "  list" matches "  list " */
		snprintf(line, sizeof(line), "%.*s ", (int)(len < 500 ? len : 500), p);
		size_t indent = strspn(line, " ");
		size_t skip = strncmp(line, lead2, strlen(lead2)) == 0	 ? strlen(lead2)
			      : strncmp(line, lead1, strlen(lead1)) == 0 ? strlen(lead1)
									 : 0;
		if (skip > 0) {
			/* "  SUB ARGS   what it does": the synopsis, then its words */
			char *rest = line + skip, *gap = strstr(rest, "   ");
			if (gap != NULL)
				*gap = '\0';
			rtrim(rest);
			printf("%s mailkeep %s %s%s%s\n", found ? "      " : "usage:", cmd->name,
			       sub, rest[0] != '\0' ? " " : "", rest);
			if (gap != NULL) {
				char *what = gap + 3;
				what += strspn(what, " ");
				rtrim(what);
				if (what[0] != '\0')
					printf("        %s\n", what);
			}
			found = in_sub = 1;
		} else if (in_sub && indent > 2 && len > indent) {
			printf("%.*s\n", (int)len, p);
		} else {
			in_sub = 0;
			const char *e = strstr(line, example);
			if (found && e != NULL && e[strlen(example)] == ' ') {
				if (!examples++)
					printf("\nexamples:\n");
				printf("%.*s\n", (int)len, p);
			}
		}
		p = nl != NULL ? nl + 1 : p + len;
	}
	if (found)
		printf("\n`mailkeep %s --help` tells about every sub-command.\n", cmd->name);
	return found;
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
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	while ((c = getopt_long(argc, argv, "+c:vhV", opts, NULL)) != -1) {
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
		case 'V':
			printf("mailkeep %s\n", MAILKEEP_VERSION);
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
			if (strcmp(argv[0], "help") != 0 && argc > 2 &&
			    print_sub_help(cmd, argv[1]))
				return 0;
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
