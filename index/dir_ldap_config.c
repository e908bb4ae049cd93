/* dir_ldap_config — reads the LDAP directory's settings (index/params_ldap.c)
 * from a .cf file or from mailkeep.conf, and opens index/dir_ldap.c with them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index/dir_ldap.h"
#include "index/params.h"
#include "index/params_ldap.h"
#include "lib/util.h"

int dir_ldap_spec(const char *v)
{
	return v != NULL && strncmp(v, "ldap", 4) == 0 && (v[4] == '\0' || v[4] == ':');
}

/* The settings of index/params_ldap.def, typed. */
struct ldap_params {
#define PARAM(name, TYPE, def, min, max, doc) CONFIG_FIELD(name, TYPE)
#include "index/params_ldap.def"
};

/* Their names in mailkeep.conf (ldap_server_host, ...) */
static const struct config_bind binds_conf[] = {
#define PARAM(name, TYPE, def, min, max, doc) CONFIG_BIND(struct ldap_params, name, TYPE),
#include "index/params_ldap.def"
    CONFIG_BIND_END,
};

/* ... and in an ldap:/path/file.cf (server_host, ...) */
#define PARAM_NAME(name) #name
static const struct config_bind binds_cf[] = {
#define PARAM(name, TYPE, def, min, max, doc) CONFIG_BIND(struct ldap_params, name, TYPE),
#include "index/params_ldap.def"
    CONFIG_BIND_END,
};

/* The .cf file's tables: the names without the "ldap_" prefix. */
#define PARAM_NAME(name) #name
const struct config_param params_ldap_cf[] = {
#define PARAM CONFIG_PARAM_ENTRY
#include "index/params_ldap.def"
    {NULL, 0, NULL, 0, 0, NULL},
};
#define PARAM_NAME(name) #name
const struct config_enum params_ldap_cf_enums[] = {
#define PARAM_ENUM CONFIG_ENUM_ENTRY
#include "index/params_ldap.def"
    {NULL, NULL, NULL, 0},
};

static const char *str(const char *v)
{
	return v != NULL ? v : "";
}

/* Opens with the settings of cfg that binds names (mailkeep.conf's or a .cf file's). */
static struct directory *open_from(struct config *cfg, const struct config_bind *binds, char *err,
				   size_t errsize)
{
	struct ldap_params p;
	struct ldap_settings s;
	struct directory *dir;

	memset(&p, 0, sizeof p);
	memset(&s, 0, sizeof s);
	config_bind(cfg, binds, &p);
	if (p.server_host.broken) {
		snprintf(err, errsize, "server_host: cannot be read");
		return NULL;
	}
	s.server_host = (const char *const *)p.server_host.item;
	s.server_host_count = p.server_host.n;
	s.server_port = (int)p.server_port;
	s.search_base = str(p.search_base);
	s.scope = str(p.scope);
	s.query_filter = str(p.query_filter);
	s.result_attribute = str(p.result_attribute);
	s.bind = p.bind;
	s.bind_dn = str(p.bind_dn);
	s.bind_pw = str(p.bind_pw);
	s.start_tls = p.start_tls;
	s.tls_ca_cert_file = str(p.tls_ca_cert_file);
	s.tls_require_cert = p.tls_require_cert;
	s.version = (int)p.version;
	s.timeout = p.timeout;
	s.alias_attribute = str(p.alias_attribute);
	s.user_filter = str(p.user_filter);
	s.list_filter = str(p.list_filter);
	s.uid_attribute = str(p.uid_attribute);
	s.uidnumber_attribute = str(p.uidnumber_attribute);
	s.gidnumber_attribute = str(p.gidnumber_attribute);
	s.quota_storage_attribute = str(p.quota_storage_attribute);
	s.quota_messages_attribute = str(p.quota_messages_attribute);
	s.auth_bind = p.auth_bind;
	s.password_attribute = str(p.password_attribute);
	s.cache_ttl = p.cache_ttl;
	s.negative_cache_ttl = p.negative_cache_ttl;
	s.cache_size = (size_t)p.cache_size;
	s.max_connections = (int)p.max_connections;
	dir = dir_ldap_open(&s, err, errsize);
	config_unbind(binds, &p);
	return dir;
}

/* The .cf path that spec names, relative names under config_directory. */
static int cf_path(struct config *cfg, const char *spec, char *path, size_t pathsize)
{
	const char *file = spec + 5; /* after "ldap:" */
	struct common_params common = {0};
	int n;

	if (cfg != NULL)
		common_params_bind(cfg, &common);
	if (file[0] == '/' || common.config_directory == NULL || common.config_directory[0] == '\0')
		n = snprintf(path, pathsize, "%s", file);
	else
		n = snprintf(path, pathsize, "%s/%s", common.config_directory, file);
	common_params_unbind(&common);
	return n < 0 || (size_t)n >= pathsize ? -1 : 0;
}

static struct config *load_cf(const char *path, char *err, size_t errsize)
{
	struct config *cfg = NULL;

	if (config_load(path, &cfg, err, errsize) < 0)
		return NULL;
	config_add_params(cfg, params_ldap_cf);
	config_add_enums(cfg, params_ldap_cf_enums);
	return cfg;
}

int dir_ldap_open_file(const char *path, struct directory **dir_r, char *err, size_t errsize)
{
	struct config *cfg = load_cf(path, err, errsize);
	char why[256];

	*dir_r = NULL;
	if (cfg == NULL)
		return -1;
	*dir_r = open_from(cfg, binds_cf, why, sizeof why);
	config_free(&cfg);
	if (*dir_r == NULL) {
		snprintf(err, errsize, "%s: %s", path, why);
		return -1;
	}
	return 0;
}

int dir_ldap_open_config(struct config *cfg, const char *spec, struct directory **dir_r, char *err,
			 size_t errsize)
{
	char path[4096], why[256];

	*dir_r = NULL;
	if (!dir_ldap_spec(spec)) {
		snprintf(err, errsize,
			 "user_directory: \"%.100s\" is not ldap or ldap:/path/file.cf", spec);
		return -1;
	}
	if (spec[4] == '\0' || spec[5] == '\0') {
		*dir_r = open_from(cfg, binds_conf, why, sizeof why);
		if (*dir_r == NULL) {
			snprintf(err, errsize, "ldap_%s", why);
			return -1;
		}
		return 0;
	}
	if (cf_path(cfg, spec, path, sizeof path) < 0) {
		snprintf(err, errsize, "user_directory: file name too long");
		return -1;
	}
	return dir_ldap_open_file(path, dir_r, err, errsize);
}

int dir_ldap_check(struct config *cfg, const char *spec, void (*report)(const char *msg, void *ctx),
		   void *ctx)
{
	char path[4096], err[512];
	struct config *cf;
	struct directory *dir;
	int problems;

	if (!dir_ldap_spec(spec)) {
		snprintf(err, sizeof err,
			 "user_directory: \"%.100s\" is not ldap or ldap:/path/file.cf", spec);
		report(err, ctx);
		return 1;
	}
	if (spec[4] == '\0' || spec[5] == '\0') {
		dir = open_from(cfg, binds_conf, err + 5, sizeof err - 5);
		if (dir != NULL) {
			dir_close(&dir);
			return 0;
		}
		memcpy(err, "ldap_", 5);
		report(err, ctx);
		return 1;
	}
	if (cf_path(cfg, spec, path, sizeof path) < 0) {
		report("user_directory: file name too long", ctx);
		return 1;
	}
	cf = load_cf(path, err, sizeof err);
	if (cf == NULL) {
		report(err, ctx);
		return 1;
	}
	problems = config_check(cf, report, ctx);
	if (problems == 0) {
		char why[256];

		dir = open_from(cf, binds_cf, why, sizeof why);
		if (dir == NULL) {
			snprintf(err, sizeof err, "%.250s: %.250s", path, why);
			report(err, ctx);
			problems++;
		} else {
			dir_close(&dir);
		}
	}
	config_free(&cf);
	return problems;
}
