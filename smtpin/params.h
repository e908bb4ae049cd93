/* params — mailkeep-smtpin's settings, typed: one field per line of
 * smtpin/params.def, named as the setting (lib/config.h, "Typed settings").
 * smtpin_params_bind fills them at start-up; a misspelt name does not compile. */
#ifndef MK_SMTPIN_PARAMS_H
#define MK_SMTPIN_PARAMS_H

#include "lib/config.h"

struct smtpin_params {
#define PARAM(name, TYPE, def, min, max, doc) CONFIG_FIELD(name, TYPE)
#include "smtpin/params.def"
};

/* Fills p from cfg (which must outlive p's strings). smtpin_params_unbind
 * frees the lists. */
void smtpin_params_bind(struct config *cfg, struct smtpin_params *p);
void smtpin_params_unbind(struct smtpin_params *p);

#endif
