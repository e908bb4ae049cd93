/* dnsq — blocking DNS through libunbound (lib/dnsq.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/dnsq.h"
#include "lib/util.h"
#include "lib/xmalloc.h"

struct dnsq {
	struct ub_ctx *ub;
};

struct dnsq *dnsq_open(char *const *servers, size_t n, char *err, size_t errsize)
{
	struct dnsq *q = xcalloc(1, sizeof(*q));
	int rc;

	if ((q->ub = ub_ctx_create()) == NULL) {
		snprintf(err, errsize, "cannot start libunbound");
		free(q);
		return NULL;
	}
	ub_ctx_set_option(q->ub, "do-not-query-localhost:", "no");
	if (n == 0 && (rc = ub_ctx_resolvconf(q->ub, NULL)) != 0) {
		snprintf(err, errsize, "/etc/resolv.conf: %s", ub_strerror(rc));
		ub_ctx_delete(q->ub);
		free(q);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		char spec[128];
		const char *s = servers[i];
		if (s[0] == '[') {
			mk_strlcpy(spec, s + 1, sizeof(spec));
			char *br = strchr(spec, ']');
			if (br != NULL) {
				*br = 0;
				if (br[1] == ':') {
					size_t l = strlen(spec);
					snprintf(spec + l, sizeof(spec) - l, "@%s", br + 2);
				}
			}
		} else {
			mk_strlcpy(spec, s, sizeof(spec));
			char *colon = strchr(spec, ':');
			if (colon != NULL && strchr(colon + 1, ':') == NULL)
				*colon = '@';
		}
		if ((rc = ub_ctx_set_fwd(q->ub, spec)) != 0) {
			snprintf(err, errsize, "bad name server \"%s\": %s", s, ub_strerror(rc));
			ub_ctx_delete(q->ub);
			free(q);
			return NULL;
		}
	}
	return q;
}

void dnsq_close(struct dnsq **q)
{
	if (*q == NULL)
		return;
	ub_ctx_delete((*q)->ub);
	free(*q);
	*q = NULL;
}

int dnsq_query(struct dnsq *q, const char *name, int type, struct ub_result **r_r)
{
	*r_r = NULL;
	if (ub_resolve(q->ub, name, type, 1, r_r) != 0 || *r_r == NULL)
		return -1;
	return 0;
}

int dnsq_wire_name(const unsigned char *p, size_t len, char *out, size_t size)
{
	size_t i = 0, o = 0;

	while (i < len) {
		size_t l = p[i++];
		if (l == 0) {
			out[o] = 0;
			return 0;
		}
		if (l > 63 || i + l > len || o + l + 2 > size)
			return -1;
		if (o > 0)
			out[o++] = '.';
		for (size_t k = 0; k < l; k++) {
			unsigned char c = p[i + k];
			out[o++] = (c > 0x20 && c < 0x7f && c != '.') ? (char)c : '?';
		}
		i += l;
	}
	return -1;
}

int dnsq_txt(const unsigned char *p, size_t len, char *out, size_t size)
{
	size_t i = 0, o = 0;

	while (i < len) {
		size_t l = p[i++];
		if (i + l > len || o + l + 1 > size)
			return -1;
		memcpy(out + o, p + i, l);
		o += l;
		i += l;
	}
	out[o] = 0;
	return 0;
}
