/* params_ldap — settings of the LDAP user directory (doc/ldap.md).
 *
 * The names are Postfix's ldap_table(5) names where the meaning is Postfix's
 * (server_host, server_port, search_base, scope, query_filter,
 * result_attribute, bind, bind_dn, bind_pw, start_tls, tls_ca_cert_file,
 * tls_require_cert, version, timeout), plus mailkeep's own for what a user
 * directory needs beyond a lookup table. They are read from a file of their own
 * (user_directory = ldap:/etc/mailkeep/ldap-users.cf, names as below) or from
 * mailkeep.conf itself (user_directory = ldap, names prefixed with "ldap_",
 * as Postfix's main.cf does for ldap:ldap). One list, two tables. */
#include "index/params.h"
#include "index/params_ldap.h"

#define LDAP_PARAMS(X) \
	X("server_host", CONFIG_LIST, "localhost", 0, 0, \
	  "LDAP servers tried in order: host, host:port or ldap://, ldaps://, ldapi:// URLs") \
	X("server_port", CONFIG_INT, "389", 1, 65535, "port for server_host items without one") \
	X("search_base", CONFIG_STR, NULL, 0, 0, "where users are searched, e.g. ou=people,dc=example,dc=org") \
	X("scope", CONFIG_STR, "sub", 0, 0, "search scope: sub, one or base") \
	X("query_filter", CONFIG_STR, "(mail=%s)", 0, 0, \
	  "filter for a recipient address; %s address, %u local part, %d domain (escaped per RFC 4515)") \
	X("result_attribute", CONFIG_STR, "mail", 0, 0, "attribute holding the user's primary address") \
	X("bind", CONFIG_BOOL, "yes", 0, 0, "bind as bind_dn/bind_pw (yes) or search anonymously (no)") \
	X("bind_dn", CONFIG_STR, NULL, 0, 0, "DN to bind as for searches (the reader)") \
	X("bind_pw", CONFIG_STR, NULL, 0, 0, "password of bind_dn") \
	X("start_tls", CONFIG_BOOL, "no", 0, 0, "use STARTTLS on ldap:// connections (TLS 1.2 or later)") \
	X("tls_ca_cert_file", CONFIG_STR, NULL, 0, 0, "CA certificates for the server's certificate") \
	X("tls_require_cert", CONFIG_BOOL, "yes", 0, 0, "refuse a server certificate that does not verify") \
	X("version", CONFIG_INT, "3", 2, 3, "LDAP protocol version") \
	X("timeout", CONFIG_TIME, "10s", 1, 600, "limit for connecting and for each LDAP operation") \
	X("alias_attribute", CONFIG_STR, NULL, 0, 0, \
	  "attribute of alias addresses, e.g. mailAlternateAddress; empty = none") \
	X("user_filter", CONFIG_STR, "(uid=%s)", 0, 0, "filter for a login name (%s)") \
	X("list_filter", CONFIG_STR, "(&(uid=*)(mail=*))", 0, 0, "filter for `mailkeep user list`") \
	X("uid_attribute", CONFIG_STR, "uid", 0, 0, "attribute holding the login (and store) name") \
	X("uidnumber_attribute", CONFIG_STR, "uidNumber", 0, 0, "attribute of the owner uid on the mount") \
	X("gidnumber_attribute", CONFIG_STR, "gidNumber", 0, 0, "attribute of the owner gid on the mount") \
	X("auth_bind", CONFIG_BOOL, "yes", 0, 0, \
	  "check passwords by binding as the user (yes) or by reading password_attribute as bind_dn (no)") \
	X("password_attribute", CONFIG_STR, "userPassword", 0, 0, \
	  "attribute with {SSHA}/{SSHA256}/{SSHA512}/{CRYPT} hashes, when auth_bind = no") \
	X("cache_ttl", CONFIG_TIME, "30s", 0, 3600, "how long a found user is remembered; 0 = not at all") \
	X("negative_cache_ttl", CONFIG_TIME, "10s", 0, 3600, "how long an unknown address is remembered") \
	X("cache_size", CONFIG_INT, "1000", 0, 1000000, "entries in the lookup cache; 0 = no cache") \
	X("max_connections", CONFIG_INT, "4", 1, 64, "connections kept to the LDAP server per process")

#define PARAM_PREFIXED(name, type, def, min, max, doc) {"ldap_" name, type, def, min, max, doc},
#define PARAM_PLAIN(name, type, def, min, max, doc) {name, type, def, min, max, doc},

/* In mailkeep.conf: ldap_server_host, ldap_search_base, ... */
const struct config_param params_ldap[] = {
	LDAP_PARAMS(PARAM_PREFIXED)
	{NULL, 0, NULL, 0, 0, NULL},
};

/* In an ldap:/path/file.cf: server_host, search_base, ... */
const struct config_param params_ldap_cf[] = {
	LDAP_PARAMS(PARAM_PLAIN)
	{NULL, 0, NULL, 0, 0, NULL},
};

/* The LDAP search scope, as lib/directory_ldap.c reads it. */
const struct config_enum params_ldap_enums[] = {
	{"ldap_scope", "sub one base", NULL, 0},
	{NULL, NULL, NULL, 0},
};
const struct config_enum params_ldap_cf_enums[] = {
	{"scope", "sub one base", NULL, 0},
	{NULL, NULL, NULL, 0},
};
