/* params — loading a config with every table of the registry, and the shared
 * settings' binding. The registry itself is generated (see params.h). */
#include <stdio.h>
#include <string.h>

#include "index/params.h"
#include "lib/anvil.h"

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

void params_anvil_settings(const struct common_params *c, struct anvil_settings *as)
{
	memset(as, 0, sizeof(*as));
	as->ipv4_prefix = (int)c->anvil_ipv4_prefix_length;
	as->ipv6_prefix = (int)c->anvil_ipv6_prefix_length;
	as->rate_unit = c->anvil_rate_time_unit;
	as->penalty = c->auth_penalty;
	as->penalty_max =
	    c->auth_penalty_max < c->auth_penalty ? c->auth_penalty : c->auth_penalty_max;
	as->lockout_failures = (unsigned)c->auth_failure_lockout;
	as->lockout_window = c->auth_failure_lockout_window;
	as->known_time = c->auth_known_client_time;
}
