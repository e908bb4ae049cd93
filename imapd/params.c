/* params — binds imapd/params.def's settings into struct imapd_params. */
#include "imapd/params.h"

static const struct config_bind binds[] = {
#define PARAM(name, TYPE, def, min, max, doc) CONFIG_BIND(struct imapd_params, name, TYPE),
#include "imapd/params.def"
    CONFIG_BIND_END,
};

void imapd_params_bind(struct config *cfg, struct imapd_params *p)
{
	config_bind(cfg, binds, p);
}

void imapd_params_unbind(struct imapd_params *p)
{
	config_unbind(binds, p);
}
