/* params_imapd — settings of imapd (see doc/imapd.md and mailkeep-imapd(8)). */
#include "index/params.h"

const struct config_param params_imapd[] = {
	{"imapd_listen", CONFIG_LIST, "127.0.0.1:1143", 0, 0,
	 "where IMAP with STARTTLS listens (host:port, several allowed; empty = off)"},
	{"imapd_tls_listen", CONFIG_LIST, "127.0.0.1:1993", 0, 0,
	 "where IMAP over implicit TLS listens (imaps; empty = off)"},
	{"imapd_tls_cert_file", CONFIG_STR, "$tls_cert_file", 0, 0, "PEM certificate chain for imapd"},
	{"imapd_tls_key_file", CONFIG_STR, "$tls_key_file", 0, 0, "PEM private key for imapd"},
	{"imapd_plaintext_networks", CONFIG_LIST, "127.0.0.1/32 [::1]/128", 0, 0,
	 "clients that may log in without TLS (everyone else sees LOGINDISABLED)"},
	{"imap_max_line_length", CONFIG_SIZE, "64k", 1024, 16 << 20,
	 "longest command line (literals excluded); longer: BYE"},
	{"imap_max_literal_size", CONFIG_SIZE, "64m", 1024, 1LL << 32,
	 "largest literal, so the largest APPEND (APPENDLIMIT)"},
	{"imap_idle_interval", CONFIG_TIME, "2m", 1, 3600, "time between \"* OK Still here\" lines during IDLE"},
	{"imap_client_timeout", CONFIG_TIME, "30m", 10, 86400, "autologout of an idle logged-in client"},
	{"imap_login_timeout", CONFIG_TIME, "60s", 1, 3600, "time a client has to log in"},
	{"imap_auth_penalty", CONFIG_TIME, "2s", 0, 60,
	 "delay after the first failed login from an IP; doubles with each failure"},
	{"imap_auth_penalty_max", CONFIG_TIME, "15s", 0, 600, "the delay after failed logins grows up to this"},
	{"imap_max_commands_per_second", CONFIG_INT, "2000", 1, 1000000,
	 "commands one connection may send per second; faster ones are slowed down"},
	{"imap_max_connections", CONFIG_INT, "1000", 1, 100000, "simultaneous IMAP connections"},
	{NULL, 0, NULL, 0, 0, NULL},
};
