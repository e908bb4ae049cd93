/* net — sockets and privileges, no protocol knowledge. */
#ifndef MK_NET_H
#define MK_NET_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Opens a listening TCP socket on "host:port", "[v6]:port" or ":port"
 * (all addresses), or a Unix socket on "unix:/path" (mode 0666, replaced if
 * stale). Non-blocking, close-on-exec, SO_REUSEADDR. Returns the fd or -1 with
 * a message in err. */
int net_listen(const char *spec, int backlog, char *err, size_t errsize);
/* The daemons' backlog: deep enough that a connection flood does not make
 * the kernel drop a legitimate client's SYN (it would wait a second to
 * retry); the kernel caps it at net.core.somaxconn. */
#define LISTEN_BACKLOG 1024
/* Connects (blocking, with timeout in seconds) to "host:port" or "unix:/path".
 * Returns the fd or -1 with err. */
int net_connect(const char *spec, double timeout, char *err, size_t errsize);
/* Formats a peer address as text ("127.0.0.1", "::1", "unix"). */
void net_addr_str(const struct sockaddr *sa, socklen_t len, char *out, size_t outsize);
/* Drops root to user (name) after ports are bound: initgroups (the user's
 * groups in /etc/group stay, e.g. ssl-cert for a TLS key), setgid, setuid,
 * and checks root cannot be regained. No-op if not root or user is NULL/"".
 * Returns 0 or -1 with err. */
int net_drop_privileges(const char *user, char *err, size_t errsize);
/* 1 if addr (text) is inside one of the CIDR entries of list ("127.0.0.0/8 [::1]/128 ..."). */
int net_cidr_match_list(const char *addr, const char *const *list, size_t n);
/* Parses "a.b.c.d/len" or "[v6]/len" or "v6/len" or a bare address. Returns 0 or -1. */
struct net_cidr {
	int family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	int prefix;
};
int net_cidr_parse(const char *text, struct net_cidr *cidr_r);
int net_cidr_match(const struct net_cidr *cidr, const char *addr);

#endif
