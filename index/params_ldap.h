/* params_ldap — the LDAP directory's settings as a table for its own .cf file
 * (names without the "ldap_" prefix that mailkeep.conf uses; both are made
 * from index/params_ldap.def, in index/dir_ldap_config.c). */
#ifndef MK_PARAMS_LDAP_H
#define MK_PARAMS_LDAP_H

#include "lib/config.h"

extern const struct config_param params_ldap_cf[];
extern const struct config_enum params_ldap_cf_enums[];

#endif
