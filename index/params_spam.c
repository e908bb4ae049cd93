/* params_spam — settings of spam (see doc/mailkeep.conf.5). */
#include "index/params.h"

const struct config_param params_spam[] = {
	{NULL, 0, NULL, 0, 0, NULL},
};
