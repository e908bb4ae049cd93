/* params — the mailkeep command's own settings, typed: struct tools_params has
 * one field per line of tools/params.def (lib/config_area.h). */
#ifndef MK_TOOLS_PARAMS_H
#define MK_TOOLS_PARAMS_H

#define PARAMS_NAME tools
#define PARAMS_DEF "tools/params.def"
#include "lib/config_area.h"

#endif
