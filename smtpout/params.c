/* params — binds smtpout/params.def's settings into struct smtpout_params. */
#include "smtpout/params.h"

#define PARAMS_NAME smtpout
#define PARAMS_DEF "smtpout/params.def"
#define PARAMS_DEFINE
#include "lib/config_area.h"
