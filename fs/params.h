/* params — mailkeep-fs's settings, typed: one field per line of
 * fs/params.def, named as the setting (lib/config.h, "Typed settings").
 * fs_params_bind fills them at start-up; a misspelt name does not compile. */
#ifndef MK_FS_PARAMS_H
#define MK_FS_PARAMS_H

#include "lib/config.h"

struct fs_params {
#define PARAM(name, TYPE, def, min, max, doc) CONFIG_FIELD(name, TYPE)
#include "fs/params.def"
};

/* Fills p from cfg (which must outlive p's strings). fs_params_unbind
 * frees the lists. */
void fs_params_bind(struct config *cfg, struct fs_params *p);
void fs_params_unbind(struct fs_params *p);

#endif
