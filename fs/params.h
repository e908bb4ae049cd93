/* params — mailkeep-fs's settings, typed: struct fs_params has one field
 * per line of fs/params.def, named as the setting, and fs_params_bind()
 * fills it at start-up (lib/config_area.h); a misspelt name does not compile. */
#ifndef MK_FS_PARAMS_H
#define MK_FS_PARAMS_H

#define PARAMS_NAME fs
#define PARAMS_DEF "fs/params.def"
#include "lib/config_area.h"

#endif
