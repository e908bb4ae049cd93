/* params_fs — settings of fs (see doc/mailkeep.conf.5). */
#include "index/params.h"

const struct config_param params_fs[] = {
	{NULL, 0, NULL, 0, 0, NULL},
};
