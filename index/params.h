/* params — every mailkeep.conf setting: name, type, default, bounds, one line
 * of documentation (Postfix's mail_params.h idea). Each area keeps its table in
 * its own file (params_store.c, params_smtpin.c, params_imapd.c, params_fs.c,
 * params_ldap.c, params_spam.c); mailkeep_params() lists them all so that
 * `mailkeep check` knows every name. */
#ifndef MK_PARAMS_H
#define MK_PARAMS_H

#include "lib/config.h"

extern const struct config_param params_store[];
extern const struct config_param params_smtpin[];
extern const struct config_param params_imapd[];
extern const struct config_param params_fs[];
extern const struct config_param params_ldap[];
extern const struct config_param params_spam[];
extern const struct config_param params_anvil[];
/* The words of each area's enumerated settings (config_add_enums). */
extern const struct config_enum params_store_enums[];
extern const struct config_enum params_smtpin_enums[];
extern const struct config_enum params_ldap_enums[];
extern const struct config_enum params_spam_enums[];

/* Adds every table above (settings and their words) to cfg. */
void params_add_all(struct config *cfg);
/* Loads path (or an empty config if path is NULL) with every table added.
 * Returns NULL with "file:line: ..." in err on a syntax error. */
struct config *params_load(const char *path, char *err, size_t errsize);

#endif
