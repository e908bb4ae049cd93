/* params_ldap — settings of ldap (see doc/mailkeep.conf.5). */
#include "index/params.h"

const struct config_param params_ldap[] = {
	{NULL, 0, NULL, 0, 0, NULL},
};
