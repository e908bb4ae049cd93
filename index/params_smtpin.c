/* params_smtpin — settings of smtpin (see doc/mailkeep.conf.5). */
#include "index/params.h"

const struct config_param params_smtpin[] = {
	{NULL, 0, NULL, 0, 0, NULL},
};
