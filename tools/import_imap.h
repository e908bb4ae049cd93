/* import_imap — `mailkeep import USER imaps://LOGIN@HOST[:PORT]`: every
 * folder of an IMAP server (see import_imap.c and doc/tools.md). */
#ifndef MK_TOOLS_IMPORT_IMAP_H
#define MK_TOOLS_IMPORT_IMAP_H

#include "tools/cli.h"

/* 1 if s is an imap:// or imaps:// URL. */
int import_imap_is_url(const char *s);
/* The whole `mailkeep import` for a server: argv as the command got it
 * (argv[0] = "import"). Returns the exit status. */
int import_imap_main(struct cli *cli, int argc, char **argv);
/* With users in LDAP, makes sure the store knows user (tools/cmd_import.c).
 * Returns 0, or the exit status after saying why not. */
int import_user_ready(struct cli *cli, struct store *store, const char *user);

#endif
