/* params — binds imapd/params.def's settings into struct imapd_params. */
#include "imapd/params.h"

#define PARAMS_NAME imapd
#define PARAMS_DEF "imapd/params.def"
#define PARAMS_DEFINE
#include "lib/config_area.h"
