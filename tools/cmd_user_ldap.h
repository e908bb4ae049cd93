/* cmd_user_ldap — `mailkeep user ...` when users come from a directory other
 * than the store (user_directory = ldap...): list, show and test-password read
 * the directory; add, del and passwd are refused with a pointer to the LDAP
 * tools. */
#ifndef MK_TOOLS_CMD_USER_LDAP_H
#define MK_TOOLS_CMD_USER_LDAP_H

#include "tools/cli.h"

/* Exit status when the directory cannot answer now (sendmail's EX_TEMPFAIL). */
#define EXIT_TEMPFAIL 75

/* argv as cmd_user's run() gets it (argv[0] = "user", argv[1] = the
 * sub-command). Returns the exit status: 0, 1, EXIT_USAGE or EXIT_TEMPFAIL. */
int user_ldap_run(struct cli *cli, int argc, char **argv);

#endif
