/* params — binds fs/params.def's settings into struct fs_params. */
#include "fs/params.h"

static const struct config_bind binds[] = {
#define PARAM(name, TYPE, def, min, max, doc) CONFIG_BIND(struct fs_params, name, TYPE),
#include "fs/params.def"
    CONFIG_BIND_END,
};

void fs_params_bind(struct config *cfg, struct fs_params *p)
{
	config_bind(cfg, binds, p);
}

void fs_params_unbind(struct fs_params *p)
{
	config_unbind(binds, p);
}
