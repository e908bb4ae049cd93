/* dir_ldap_config — reads the LDAP directory's settings (index/params_ldap.c)
 * from a .cf file or from mailkeep.conf, and opens lib/directory_ldap.c with them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index/dir_ldap.h"
#include "index/params_ldap.h"
#include "lib/directory_ldap.h"
#include "lib/util.h"

#define NAME_MAX_LEN 64

int dir_ldap_spec(const char *v)
{
	return v != NULL && strncmp(v, "ldap", 4) == 0 && (v[4] == '\0' || v[4] == ':');
}

static const char *get(struct config *cfg, const char *prefix, const char *name)
{
	char full[NAME_MAX_LEN];
	const char *v;

	snprintf(full, sizeof full, "%s%s", prefix, name);
	v = config_get(cfg, full);
	return v != NULL ? v : "";
}

static long long get_int(struct config *cfg, const char *prefix, const char *name)
{
	char full[NAME_MAX_LEN];

	snprintf(full, sizeof full, "%s%s", prefix, name);
	return config_get_int(cfg, full);
}

static int get_bool(struct config *cfg, const char *prefix, const char *name)
{
	char full[NAME_MAX_LEN];

	snprintf(full, sizeof full, "%s%s", prefix, name);
	return config_get_bool(cfg, full);
}

static double get_time(struct config *cfg, const char *prefix, const char *name)
{
	char full[NAME_MAX_LEN];

	snprintf(full, sizeof full, "%s%s", prefix, name);
	return config_get_time(cfg, full);
}

/* Opens with the settings named prefix+name in cfg. */
static struct directory *open_from(struct config *cfg, const char *prefix, char *err, size_t errsize)
{
	struct ldap_settings s;
	struct directory *dir;
	char **hosts = NULL;
	size_t nhosts = 0;
	char full[NAME_MAX_LEN];

	memset(&s, 0, sizeof s);
	snprintf(full, sizeof full, "%sserver_host", prefix);
	if (config_get_list(cfg, full, &hosts, &nhosts) < 0) {
		snprintf(err, errsize, "%s: cannot be read", full);
		return NULL;
	}
	s.server_host = (const char *const *)hosts;
	s.server_host_count = nhosts;
	s.server_port = (int)get_int(cfg, prefix, "server_port");
	s.search_base = get(cfg, prefix, "search_base");
	s.scope = get(cfg, prefix, "scope");
	s.query_filter = get(cfg, prefix, "query_filter");
	s.result_attribute = get(cfg, prefix, "result_attribute");
	s.bind = get_bool(cfg, prefix, "bind");
	s.bind_dn = get(cfg, prefix, "bind_dn");
	s.bind_pw = get(cfg, prefix, "bind_pw");
	s.start_tls = get_bool(cfg, prefix, "start_tls");
	s.tls_ca_cert_file = get(cfg, prefix, "tls_ca_cert_file");
	s.tls_require_cert = get_bool(cfg, prefix, "tls_require_cert");
	s.version = (int)get_int(cfg, prefix, "version");
	s.timeout = get_time(cfg, prefix, "timeout");
	s.alias_attribute = get(cfg, prefix, "alias_attribute");
	s.user_filter = get(cfg, prefix, "user_filter");
	s.list_filter = get(cfg, prefix, "list_filter");
	s.uid_attribute = get(cfg, prefix, "uid_attribute");
	s.uidnumber_attribute = get(cfg, prefix, "uidnumber_attribute");
	s.gidnumber_attribute = get(cfg, prefix, "gidnumber_attribute");
	s.auth_bind = get_bool(cfg, prefix, "auth_bind");
	s.password_attribute = get(cfg, prefix, "password_attribute");
	s.cache_ttl = get_time(cfg, prefix, "cache_ttl");
	s.negative_cache_ttl = get_time(cfg, prefix, "negative_cache_ttl");
	s.cache_size = (size_t)get_int(cfg, prefix, "cache_size");
	s.max_connections = (int)get_int(cfg, prefix, "max_connections");
	dir = dir_ldap_open(&s, err, errsize);
	free(hosts);
	return dir;
}

/* The .cf path that spec names, relative names under config_directory. */
static int cf_path(struct config *cfg, const char *spec, char *path, size_t pathsize)
{
	const char *file = spec + 5; /* after "ldap:" */
	const char *confdir = cfg != NULL ? config_get(cfg, "config_directory") : NULL;
	int n;

	if (file[0] == '/' || confdir == NULL || confdir[0] == '\0')
		n = snprintf(path, pathsize, "%s", file);
	else
		n = snprintf(path, pathsize, "%s/%s", confdir, file);
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
	*dir_r = open_from(cfg, "", why, sizeof why);
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
		snprintf(err, errsize, "user_directory: \"%.100s\" is not ldap or ldap:/path/file.cf", spec);
		return -1;
	}
	if (spec[4] == '\0' || spec[5] == '\0') {
		*dir_r = open_from(cfg, "ldap_", why, sizeof why);
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

int dir_ldap_check(struct config *cfg, const char *spec, void (*report)(const char *msg, void *ctx), void *ctx)
{
	char path[4096], err[512];
	struct config *cf;
	struct directory *dir;
	int problems;

	if (!dir_ldap_spec(spec)) {
		snprintf(err, sizeof err, "user_directory: \"%.100s\" is not ldap or ldap:/path/file.cf", spec);
		report(err, ctx);
		return 1;
	}
	if (spec[4] == '\0' || spec[5] == '\0') {
		dir = open_from(cfg, "ldap_", err + 5, sizeof err - 5);
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

		dir = open_from(cf, "", why, sizeof why);
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
