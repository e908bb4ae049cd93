/* params_anvil — settings of the connection policy and the authentication
 * penalty that every listener shares (lib/anvil.h; doc/smtpin.md and
 * doc/imapd.md, "Limits under attack"). Each program's own limits stay in its
 * table (smtpd_client_connection_count_limit, imap_client_connection_count_limit, ...). */
#include "index/params.h"

const struct config_param params_anvil[] = {
    {"anvil_ipv4_prefix_length", CONFIG_INT, "32", 8, 32,
     "bits of an IPv4 client address that make one client for the limits (Postfix 3.8's "
     "smtpd_client_ipv4_prefix_length)"},
    {"anvil_ipv6_prefix_length", CONFIG_INT, "64", 16, 128,
     "bits of an IPv6 client address that make one client (64: one customer's /64)"},
    {"anvil_rate_time_unit", CONFIG_TIME, "60s", 1, 3600,
     "the time unit of the connection rate limits"},
    {"auth_penalty", CONFIG_TIME, "2s", 0, 60,
     "wait after a failed login before the same network or user is checked again; doubles "
     "with each failure (SMTP AUTH, IMAP)"},
    {"auth_penalty_max", CONFIG_TIME, "15s", 0, 600, "the wait's ceiling"},
    {"auth_failure_lockout", CONFIG_INT, "0", 0, 1000000,
     "failed logins of a user within auth_failure_lockout_window that lock it out for that "
     "long (0 = off)"},
    {"auth_failure_lockout_window", CONFIG_TIME, "1h", 1, 31536000,
     "the lockout's window and length"},
    {"auth_known_client_time", CONFIG_TIME, "7d", 0, 31536000,
     "a network with a successful login is known this long: reserved slots, no lockout"},
    {NULL, 0, NULL, 0, 0, NULL},
};
