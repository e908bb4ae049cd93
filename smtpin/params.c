/* params — binds smtpin/params.def's settings into struct smtpin_params. */
#include "smtpin/params.h"

#define PARAMS_NAME smtpin
#define PARAMS_DEF "smtpin/params.def"
#define PARAMS_DEFINE
#include "lib/config_area.h"
