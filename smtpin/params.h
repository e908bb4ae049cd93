/* params — mailkeep-smtpin's settings, typed: struct smtpin_params has one field
 * per line of smtpin/params.def, named as the setting, and smtpin_params_bind()
 * fills it at start-up (lib/config_area.h); a misspelt name does not compile. */
#ifndef MK_SMTPIN_PARAMS_H
#define MK_SMTPIN_PARAMS_H

#define PARAMS_NAME smtpin
#define PARAMS_DEF "smtpin/params.def"
#include "lib/config_area.h"

#endif
