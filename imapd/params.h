/* params — mailkeep-imapd's settings, typed: one field per line of
 * imapd/params.def, named as the setting (lib/config.h, "Typed settings").
 * imapd_params_bind fills them at start-up; a misspelt name does not compile. */
#ifndef MK_IMAPD_PARAMS_H
#define MK_IMAPD_PARAMS_H

#include "lib/config.h"

struct imapd_params {
#define PARAM(name, TYPE, def, min, max, doc) CONFIG_FIELD(name, TYPE)
#include "imapd/params.def"
};

/* Fills p from cfg (which must outlive p's strings). imapd_params_unbind
 * frees the lists. */
void imapd_params_bind(struct config *cfg, struct imapd_params *p);
void imapd_params_unbind(struct imapd_params *p);

#endif
