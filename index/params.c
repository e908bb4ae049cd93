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

#define PARAMS_NAME common
#define PARAMS_DEF "index/params_store.def"
#define PARAMS_DEFINE
#include "lib/config_area.h"
