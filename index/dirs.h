/* dirs — opens the user directory that mailkeep.conf names (user_directory):
 *   embedded                       users and aliases in the store (index/dir_embedded.c)
 *   ldap:/etc/mailkeep/ldap.cf     LDAP, settings as Postfix's ldap_table(5) (lib/directory_ldap.c)
 * Recipient addresses are matched against mydestination first by the callers;
 * the directory answers for the local part and full address. */
#ifndef MK_DIRS_H
#define MK_DIRS_H

#include <stddef.h>

#include "index/store.h"
#include "lib/config.h"
#include "lib/directory.h"

/* Opens the directory. The embedded backend uses store (which must outlive the
 * directory). Returns 0, or -1 with a sentence in err. */
int directory_open(struct config *cfg, struct store *store, struct directory **dir_r, char *err,
		   size_t errsize);
/* The embedded backend alone. */
struct directory *dir_embedded_open(struct store *store, struct config *cfg);

#endif
