/* params — binds fs/params.def's settings into struct fs_params. */
#include "fs/params.h"

#define PARAMS_NAME fs
#define PARAMS_DEF "fs/params.def"
#define PARAMS_DEFINE
#include "lib/config_area.h"
