/* params — mailkeep-imapd's settings, typed: struct imapd_params has one field
 * per line of imapd/params.def, named as the setting, and imapd_params_bind()
 * fills it at start-up (lib/config_area.h); a misspelt name does not compile. */
#ifndef MK_IMAPD_PARAMS_H
#define MK_IMAPD_PARAMS_H

#define PARAMS_NAME imapd
#define PARAMS_DEF "imapd/params.def"
#include "lib/config_area.h"

#endif
