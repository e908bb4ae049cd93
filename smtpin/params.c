/* params — binds smtpin/params.def's settings into struct smtpin_params. */
#include "smtpin/params.h"

static const struct config_bind binds[] = {
#define PARAM(name, TYPE, def, min, max, doc) CONFIG_BIND(struct smtpin_params, name, TYPE),
#include "smtpin/params.def"
    CONFIG_BIND_END,
};

void smtpin_params_bind(struct config *cfg, struct smtpin_params *p)
{
	config_bind(cfg, binds, p);
}

void smtpin_params_unbind(struct smtpin_params *p)
{
	config_unbind(binds, p);
}
