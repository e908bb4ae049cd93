/* params_imapd — settings of imapd (see doc/mailkeep.conf.5). */
#include "index/params.h"

const struct config_param params_imapd[] = {
	{NULL, 0, NULL, 0, 0, NULL},
};
