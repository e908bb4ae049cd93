/* params — loading a config with every table of the registry, and the shared
 * settings' binding. The registry itself is generated (see params.h). */
#include <stdio.h>

#include "index/params.h"

void params_add_all(struct config *cfg)
{
	for (const struct params_area *a = params_registry; a->title != NULL; a++) {
		config_add_params(cfg, a->params);
		config_add_enums(cfg, a->enums);
	}
}

struct config *params_load(const char *path, char *err, size_t errsize)
{
	struct config *cfg = NULL;

	if (path == NULL)
		cfg = config_new();
	else if (config_load(path, &cfg, err, errsize) < 0)
		return NULL;
	params_add_all(cfg);
	return cfg;
}

static const struct config_bind common_binds[] = {
#define PARAM(name, TYPE, def, min, max, doc) CONFIG_BIND(struct common_params, name, TYPE),
#include "index/params_store.def"
    CONFIG_BIND_END,
};

void params_common_bind(struct config *cfg, struct common_params *p)
{
	config_bind(cfg, common_binds, p);
}

void params_common_unbind(struct common_params *p)
{
	config_unbind(common_binds, p);
}
