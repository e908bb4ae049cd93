/* params — the settings registry: every mailkeep.conf setting with its name,
 * type, default, bounds and one line of documentation (Postfix's
 * mail_params.h idea), and the settings every program shares.
 *
 * Each area lists its settings once, as X-macro lines in a .def file of its
 * own folder (lib/config.h, "Typed settings"):
 *
 *   index/params_store.def   shared: directories, identity, logging, TLS files
 *   smtpin/params.def        mailkeep-smtpin         (struct smtpin_params)
 *   imapd/params.def         mailkeep-imapd          (struct imapd_params)
 *   fs/params.def            mailkeep-fs             (struct fs_params)
 *   index/params_ldap.def    the LDAP user directory (struct ldap_params)
 *   index/params_spam.def    the spam filter         (struct spam_params)
 *   index/params_sieve.def   Sieve at delivery       (struct sieve_params)
 *   index/params_quota.def   quotas                  (struct quota_params)
 *
 * The tables below are not written by hand: the Makefile generates
 * build/gen/params_registry.c from that list of .def files (PARAMS_DEFS), so
 * that `mailkeep check` knows every name (and says "did you mean") and `make
 * man` writes mailkeep.conf(5), while no folder includes another program's
 * files (doc/architecture.md says why it is generated). Each program binds
 * its own .def and this file's shared settings into typed structs at start-up.
 */
#ifndef MK_PARAMS_H
#define MK_PARAMS_H

#include "lib/config.h"

/* One area of the registry (a section of `mailkeep check --list` and of the
 * man page). */
struct params_area {
	const char *title;		   /* "Inbound SMTP and LMTP (mailkeep-smtpin)" */
	const struct config_param *params; /* ends with a NULL name */
	const struct config_enum *enums;   /* its enumerated settings; ends with a NULL name */
};
/* Every area, in the order of PARAMS_DEFS; ends with a NULL title. */
extern const struct params_area params_registry[];

/* Each area's tables by name (generated; the tests read them). */
extern const struct config_param params_store[], params_smtpin[], params_imapd[], params_fs[],
    params_ldap[], params_spam[], params_sieve[], params_quota[];
extern const struct config_enum params_store_enums[], params_smtpin_enums[], params_imapd_enums[],
    params_fs_enums[], params_ldap_enums[], params_spam_enums[], params_sieve_enums[],
    params_quota_enums[];

/* Adds every table of the registry (settings and their words) to cfg. */
void params_add_all(struct config *cfg);
/* Loads path (or an empty config if path is NULL) with every table added.
 * Returns NULL with "file:line: ..." in err on a syntax error. */
struct config *params_load(const char *path, char *err, size_t errsize);

/* The settings every program shares (index/params_store.def), typed:
 * struct common_params, common_params_bind(), common_params_unbind(). */
#define PARAMS_NAME common
#define PARAMS_DEF "index/params_store.def"
#include "lib/config_area.h"

/* The shared connection policy's settings (anvil_*, auth_*) for lib/anvil.h. */
struct anvil_settings;
void params_anvil_settings(const struct common_params *c, struct anvil_settings *as_r);

#endif
