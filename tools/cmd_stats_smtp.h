/* cmd_stats_smtp — `mailkeep stats --smtp [LOGFILE...]`: a postscreen-style
 * summary of what smtpin accepted and refused, read from its log lines. */
#ifndef MK_TOOLS_CMD_STATS_SMTP_H
#define MK_TOOLS_CMD_STATS_SMTP_H

#include "tools/cli.h"

/* argv as cmd_stats got it (argv[0] = "stats", "--smtp" anywhere). Returns
 * the exit status. */
int stats_smtp_run(struct cli *cli, int argc, char **argv);

#endif
