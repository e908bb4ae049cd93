/* dns — asynchronous lookups for DNS lists and host names, through libevent's
 * evdns and the resolver named by dns_resolver (tests point it at a local
 * dnsmasq), plus Postfix's DNSBL site syntax: domain[=pattern][*weight] where
 * the pattern is four octets, each a number, [lo..hi] or [a;b;c]. */
#include <arpa/inet.h>
#include <event2/dns.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "smtpin/smtpin.h"

struct dns_req {
	void (*cb)(const struct dns_answer *a, void *arg);
	void *arg;
	int ptr;
};

int dns_start(struct server *srv, char *err, size_t errsize)
{
	char **ns = srv->p.dns_resolver.item, t[32];
	size_t n = srv->p.dns_resolver.n;

	srv->dns = evdns_base_new(srv->base, 0);
	if (srv->dns == NULL) {
		snprintf(err, errsize, "cannot start the DNS resolver");
		return -1;
	}
	if (n == 0) {
		if (evdns_base_resolv_conf_parse(srv->dns, DNS_OPTION_NAMESERVERS,
						 "/etc/resolv.conf") != 0)
			log_warn("cannot read /etc/resolv.conf: DNS lists will not answer");
	}
	for (size_t i = 0; i < n; i++) {
		if (evdns_base_nameserver_ip_add(srv->dns, ns[i]) != 0) {
			snprintf(err, errsize,
				 "dns_resolver: bad name server \"%s\" (want ip or ip:port)",
				 ns[i]);
			return -1;
		}
	}
	snprintf(t, sizeof(t), "%d", (int)srv->p.dns_timeout);
	evdns_base_set_option(srv->dns, "timeout:", t);
	evdns_base_set_option(srv->dns, "attempts:", "2");
	evdns_base_set_option(srv->dns, "randomize-case:", "0");
	return 0;
}

static void on_answer(int result, char type, int count, int ttl, void *addresses, void *arg)
{
	struct dns_req *r = arg;
	struct dns_answer a;

	(void)ttl;
	memset(&a, 0, sizeof(a));
	if (result == DNS_ERR_NONE && count > 0) {
		a.status = 0;
		if (type == DNS_IPv4_A) {
			const uint32_t *ip = addresses;
			for (int i = 0; i < count && i < 8; i++)
				a.addr[a.n++] = ntohl(ip[i]);
		} else if (type == DNS_PTR) {
			mk_strlcpy(a.name, *(char **)addresses, sizeof(a.name));
		}
	} else if (result == DNS_ERR_NOTEXIST || result == DNS_ERR_NONE) {
		a.status = 1;
	} else {
		a.status = -1;
	}
	r->cb(&a, r->arg);
	free(r);
}

void dns_lookup_a(struct server *srv, const char *name,
		  void (*cb)(const struct dns_answer *a, void *arg), void *arg)
{
	struct dns_req *r = xcalloc(1, sizeof(*r));

	r->cb = cb;
	r->arg = arg;
	if (evdns_base_resolve_ipv4(srv->dns, name, DNS_QUERY_NO_SEARCH, on_answer, r) == NULL) {
		/* evdns has called nothing: answer "failure" ourselves */
		struct dns_answer a = {.status = -1};
		free(r);
		cb(&a, arg);
	}
}

void dns_lookup_ptr(struct server *srv, const char *addr,
		    void (*cb)(const struct dns_answer *a, void *arg), void *arg)
{
	struct dns_req *r = xcalloc(1, sizeof(*r));
	struct in_addr in;
	struct in6_addr in6;
	struct evdns_request *req = NULL;

	r->cb = cb;
	r->arg = arg;
	r->ptr = 1;
	if (inet_pton(AF_INET, addr, &in) == 1)
		req = evdns_base_resolve_reverse(srv->dns, &in, DNS_QUERY_NO_SEARCH, on_answer, r);
	else if (inet_pton(AF_INET6, addr, &in6) == 1)
		req = evdns_base_resolve_reverse_ipv6(srv->dns, &in6, DNS_QUERY_NO_SEARCH,
						      on_answer, r);
	if (req == NULL) {
		struct dns_answer a = {.status = -1};
		free(r);
		cb(&a, arg);
	}
}

int dns_reverse_name(const char *addr, char *out, size_t outsize)
{
	unsigned char a[16];

	if (inet_pton(AF_INET, addr, a) == 1) {
		snprintf(out, outsize, "%u.%u.%u.%u", a[3], a[2], a[1], a[0]);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, a) == 1) {
		static const char hex[] = "0123456789abcdef";
		size_t o = 0;
		if (outsize < 64)
			return -1;
		for (int i = 15; i >= 0; i--) {
			out[o++] = hex[a[i] & 15];
			out[o++] = '.';
			out[o++] = hex[a[i] >> 4];
			out[o++] = i ? '.' : 0;
		}
		return 0;
	}
	return -1;
}

/* One octet pattern: "2", "[2..11]", "[2;4;8]". */
static int octet_parse(const char *p, size_t len, uint8_t *lo, uint8_t *hi, int *n)
{
	char tmp[64];
	uint64_t a, b;

	if (len == 0 || len >= sizeof(tmp))
		return -1;
	memcpy(tmp, p, len);
	tmp[len] = 0;
	*n = 0;
	if (tmp[0] != '[') {
		if (mk_parse_u64(tmp, 0, 255, &a) < 0)
			return -1;
		lo[0] = hi[0] = (uint8_t)a;
		*n = 1;
		return 0;
	}
	if (tmp[len - 1] != ']')
		return -1;
	tmp[len - 1] = 0;
	char *save = NULL;
	for (char *item = strtok_r(tmp + 1, ";", &save); item; item = strtok_r(NULL, ";", &save)) {
		char *dots = strstr(item, "..");
		if (*n >= 8)
			return -1;
		if (dots) {
			*dots = 0;
			if (mk_parse_u64(item, 0, 255, &a) < 0 ||
			    mk_parse_u64(dots + 2, 0, 255, &b) < 0 || a > b)
				return -1;
		} else {
			if (mk_parse_u64(item, 0, 255, &a) < 0)
				return -1;
			b = a;
		}
		lo[*n] = (uint8_t)a;
		hi[*n] = (uint8_t)b;
		(*n)++;
	}
	return *n > 0 ? 0 : -1;
}

int dnsbl_site_parse(const char *text, struct dnsbl_site *site, int with_weight)
{
	char buf[512];
	uint64_t w;

	memset(site, 0, sizeof(*site));
	site->weight = 1;
	if (mk_strlcpy(buf, text, sizeof(buf)) >= sizeof(buf))
		return -1;
	char *star = strrchr(buf, '*');
	if (star != NULL) {
		if (!with_weight)
			return -1;
		*star = 0;
		int neg = star[1] == '-';
		if (mk_parse_u64(star + 1 + neg, 0, 1000, &w) < 0)
			return -1;
		site->weight = neg ? -(int)w : (int)w;
	}
	char *eq = strchr(buf, '=');
	if (eq != NULL) {
		*eq = 0;
		const char *p = eq + 1;
		for (int i = 0; i < 4; i++) {
			const char *end = p;
			/* an octet ends at a '.' outside brackets */
			int inb = 0;
			while (*end && (inb || *end != '.')) {
				if (*end == '[')
					inb = 1;
				else if (*end == ']')
					inb = 0;
				end++;
			}
			if (octet_parse(p, (size_t)(end - p), site->octet[i].lo, site->octet[i].hi,
					&site->octet[i].n) < 0)
				return -1;
			if (i < 3) {
				if (*end != '.')
					return -1;
				p = end + 1;
			} else if (*end != 0) {
				return -1;
			}
		}
		site->has_pattern = 1;
	}
	if (buf[0] == 0 || strlen(buf) >= sizeof(site->domain) || strchr(buf, ' '))
		return -1;
	mk_strlcpy(site->domain, buf, sizeof(site->domain));
	return 0;
}

int dnsbl_site_match(const struct dnsbl_site *site, const struct dns_answer *a)
{
	for (int i = 0; i < a->n; i++) {
		uint32_t ip = a->addr[i];
		if (!site->has_pattern) {
			/* any 127.0.0.0/8 answer lists the client */
			if (ip >> 24 == 127)
				return 1;
			continue;
		}
		int ok = 1;
		for (int o = 0; o < 4 && ok; o++) {
			uint8_t v = (uint8_t)(ip >> (24 - 8 * o));
			int hit = 0;
			for (int k = 0; k < site->octet[o].n; k++)
				if (v >= site->octet[o].lo[k] && v <= site->octet[o].hi[k])
					hit = 1;
			ok = hit;
		}
		if (ok)
			return 1;
	}
	return 0;
}
