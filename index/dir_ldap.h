/* dir_ldap — opens the LDAP user directory from mailkeep's configuration.
 *
 *   user_directory = ldap:/etc/mailkeep/ldap-users.cf   settings in that file, Postfix
 *                                                       ldap_table(5) names (server_host, ...)
 *   user_directory = ldap                               settings in mailkeep.conf, with an
 *                                                       "ldap_" prefix (ldap_server_host, ...)
 *
 * A relative file name is taken relative to config_directory. The file has
 * mailkeep.conf's (main.cf's) syntax. See doc/ldap.md.
 */
#ifndef MK_DIR_LDAP_H
#define MK_DIR_LDAP_H

#include <stddef.h>

#include "lib/config.h"
#include "lib/directory.h"

/* Returns 1 if a user_directory value names the LDAP backend ("ldap" or "ldap:..."). */
int dir_ldap_spec(const char *user_directory);

/* Opens the backend that spec (user_directory's value) names; cfg is
 * mailkeep.conf. Returns 0, or -1 with a sentence ("file:line: ..." for a bad
 * file) in err. No connection is made yet (see lib/directory_ldap.h). */
int dir_ldap_open_config(struct config *cfg, const char *spec, struct directory **dir_r, char *err,
			 size_t errsize);

/* Opens the backend from a .cf file alone. Returns 0 or -1 with err. */
int dir_ldap_open_file(const char *path, struct directory **dir_r, char *err, size_t errsize);

/* For `mailkeep check`: loads the .cf file that spec names (nothing to do for
 * "ldap": mailkeep.conf is checked with params_ldap) and calls report once per
 * problem ("file:line: what is wrong"), including settings the backend refuses.
 * Returns the number of problems. */
int dir_ldap_check(struct config *cfg, const char *spec, void (*report)(const char *msg, void *ctx), void *ctx);

#endif
