/* params — binds tools/params.def's settings into struct tools_params. */
#include "tools/params.h"

#define PARAMS_NAME tools
#define PARAMS_DEF "tools/params.def"
#define PARAMS_DEFINE
#include "lib/config_area.h"
