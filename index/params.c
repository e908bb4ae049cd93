/* params — the list of every settings table, and loading a config with all of them. */
#include <stdio.h>

#include "index/params.h"

void params_add_all(struct config *cfg)
{
	config_add_params(cfg, params_store);
	config_add_params(cfg, params_smtpin);
	config_add_params(cfg, params_imapd);
	config_add_params(cfg, params_fs);
	config_add_params(cfg, params_ldap);
	config_add_params(cfg, params_spam);
	config_add_params(cfg, params_anvil);
	config_add_enums(cfg, params_store_enums);
	config_add_enums(cfg, params_smtpin_enums);
	config_add_enums(cfg, params_ldap_enums);
	config_add_enums(cfg, params_spam_enums);
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
