/* params — mailkeep-smtpout's settings, typed: struct smtpout_params has one
 * field per line of smtpout/params.def, filled by smtpout_params_bind(). */
#ifndef MK_SMTPOUT_PARAMS_H
#define MK_SMTPOUT_PARAMS_H

#define PARAMS_NAME smtpout
#define PARAMS_DEF "smtpout/params.def"
#include "lib/config_area.h"

#endif
