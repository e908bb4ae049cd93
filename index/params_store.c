/* params_store — settings shared by every mailkeep program: where the data is,
 * who we are, logging, TLS files, the user directory. */
#include "index/params.h"

const struct config_param params_store[] = {
	{"config_directory", CONFIG_STR, "/etc/mailkeep", 0, 0, "where mailkeep.conf and the TLS files live"},
	{"data_directory", CONFIG_STR, "/var/lib/mailkeep", 0, 0, "the instance's data: the store, caches"},
	{"store_directory", CONFIG_STR, "$data_directory/store", 0, 0, "the LMDB store"},
	{"store_map_size", CONFIG_SIZE, "1g", 1 << 20, 0, "initial LMDB map size; it grows on demand"},
	{"store_map_max", CONFIG_SIZE, "1024g", 1 << 20, 0, "the map never grows past this (a full store: 4xx / NO)"},
	{"myhostname", CONFIG_STR, "localhost.localdomain", 0, 0, "this host's fully qualified name"},
	{"mydomain", CONFIG_STR, "localdomain", 0, 0, "this host's domain"},
	{"recipient_delimiter", CONFIG_STR, "+", 0, 0, "separates a user name from an address extension (bob+lists)"},
	{"mydestination", CONFIG_LIST, "$myhostname, localhost, $mydomain", 0, 0,
	 "domains delivered into this store"},
	{"mail_owner", CONFIG_STR, "", 0, 0, "unprivileged user daemons switch to after binding ports (\"\" = stay)"},
	{"syslog_name", CONFIG_STR, "mailkeep", 0, 0, "first part of log idents (mailkeep/smtpd[pid])"},
	{"log_target", CONFIG_STR, "syslog", 0, 0, "syslog (LOG_MAIL) or stderr"},
	{"tls_cert_file", CONFIG_STR, "$config_directory/tls/cert.pem", 0, 0, "PEM certificate chain for TLS"},
	{"tls_key_file", CONFIG_STR, "$config_directory/tls/key.pem", 0, 0, "PEM private key for TLS"},
	{"user_directory", CONFIG_STR, "embedded", 0, 0,
	 "where users come from: embedded, or ldap:/path/to/ldap-users.cf"},
	{"run_directory", CONFIG_STR, "$data_directory/run", 0, 0, "pid files and Unix sockets"},
	{"mount_point", CONFIG_STR, "/mail", 0, 0, "where `mailkeep mount` shows the Maildirs"},
	{NULL, 0, NULL, 0, 0, NULL},
};

/* The words of the enumerated settings above, as the programs read them: an
 * empty user_directory is embedded (index/dirs.c), "ldap:" alone reads the
 * ldap_* settings of this file; an empty log_target is syslog. */
const struct config_enum params_store_enums[] = {
	{"log_target", "syslog stderr", NULL, CONFIG_ENUM_EMPTY},
	{"user_directory", "embedded ldap ldap:", NULL, CONFIG_ENUM_EMPTY},
	{NULL, NULL, NULL, 0},
};
