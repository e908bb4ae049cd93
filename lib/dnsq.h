/* dnsq — blocking DNS questions for code that runs on worker threads (the
 * SPF, DKIM and DMARC checks of inbound mail), through libunbound pointed at
 * the configured name servers ("ip" or "ip:port"; none: /etc/resolv.conf).
 * libunbound rather than the C library's resolver so that the servers (and
 * their port: tests use a local dnsmasq) are a setting, not /etc/resolv.conf.
 * Thread-safe: many threads may ask at once through one struct dnsq.
 */
#ifndef MK_DNSQ_H
#define MK_DNSQ_H

#include <stddef.h>
#include <unbound.h>

struct dnsq;

/* Returns NULL with err if a server is not an address. */
struct dnsq *dnsq_open(char *const *servers, size_t n, char *err, size_t errsize);
void dnsq_close(struct dnsq **q);

/* Asks name/type (class IN). 0 with *r_r (free with ub_resolve_free): see
 * r->rcode, r->nxdomain, r->havedata, r->data/len (rdata, uncompressed),
 * r->answer_packet (wire format); -1 if the question could not be asked. */
int dnsq_query(struct dnsq *q, const char *name, int type, struct ub_result **r_r);

/* A wire-format name (rdata of MX, PTR) into "a.b.c"; -1 if malformed. */
int dnsq_wire_name(const unsigned char *p, size_t len, char *out, size_t size);

/* The character-strings of a TXT rdata, concatenated (as SPF, DKIM and DMARC
 * read them) into out; -1 if it does not fit or is malformed. */
int dnsq_txt(const unsigned char *p, size_t len, char *out, size_t size);

#endif
