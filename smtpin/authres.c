/* authres — SPF (libspf2), DKIM (libopendkim) and DMARC (libopendmarc) of
 * mail from clients that did not authenticate, as the seed's rspamd and
 * OpenDMARC do, written into an Authentication-Results header (RFC 8601)
 * right below our Received: header and as per-recipient metadata
 * (auth.spf=, auth.dkim=, auth.dmarc=) that the mount shows as
 * user.auth.spf/dkim/dmarc.
 *
 * Why in the bytes: the results belong to the SMTP transaction (client
 * address, HELO, envelope sender, the message), like our Received: header,
 * which is in the bytes already; every recipient of one transaction shares
 * them, so the blob is still stored once per transaction, and a MUA, grep on
 * the mount, an export and the spam filter's header tokens all see them. A
 * header claiming our authserv-id that came with the message is taken out
 * (RFC 8601 5: a forged one must not be believed). doc/smtpin.md says more.
 *
 * Policy: by default the results are recorded and the spam filter weighs
 * them (its tokens include the header). With smtpd_dmarc_enforce, a DMARC
 * failure for a domain that publishes p=reject is refused (550 5.7.1) and
 * one for p=quarantine goes to Junk.
 *
 * The checks block (DNS through lib/dnsq.c, pointed at dns_resolver), so they
 * run on the job pool; the session waits, as for a delivery.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <opendkim/dkim.h>
#include <opendmarc/dmarc.h>
#include <spf2/spf.h>
#include <spf2/spf_dns.h>
#include <spf2/spf_dns_rr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/dkim.h"
#include "lib/dnsq.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "smtpin/smtpin.h"

/* not in dmarc.h, exported by libopendmarc: the organizational domain */
int opendmarc_get_tld(u_char *domain, u_char *tld, size_t tld_len);

static struct dnsq *dnsq;
static DKIM_LIB *vlib;
static SPF_dns_server_t spf_dns;
static int dmarc_ready;

/* --- libspf2's DNS through dnsq ---------------------------------------------- */

static SPF_dns_rr_t *spf_lookup(SPF_dns_server_t *srv, const char *domain, ns_type type, int cache)
{
	struct ub_result *r;
	SPF_dns_rr_t *rr;
	int n = 0;

	(void)cache;
	if (dnsq_query(srv->hook, domain, type, &r) < 0)
		return SPF_dns_rr_new_init(srv, domain, type, 0, TRY_AGAIN);
	if (r->nxdomain) {
		ub_resolve_free(r);
		return SPF_dns_rr_new_init(srv, domain, type, 0, HOST_NOT_FOUND);
	}
	if (r->rcode != 0) {
		ub_resolve_free(r);
		return SPF_dns_rr_new_init(srv, domain, type, 0, TRY_AGAIN);
	}
	if (!r->havedata) {
		ub_resolve_free(r);
		return SPF_dns_rr_new_init(srv, domain, type, 0, NO_DATA);
	}
	rr = SPF_dns_rr_new_init(srv, domain, type, r->ttl, NETDB_SUCCESS);
	if (rr == NULL) {
		ub_resolve_free(r);
		return NULL;
	}
	for (int i = 0; r->data[i] != NULL; i++) {
		const unsigned char *p = (const unsigned char *)r->data[i];
		size_t len = (size_t)r->len[i];
		char text[4096];
		switch ((int)type) {
		case ns_t_a:
			if (len != 4 ||
			    SPF_dns_rr_buf_realloc(rr, n, sizeof(struct in_addr)) != SPF_E_SUCCESS)
				continue;
			memcpy(&rr->rr[n]->a, p, 4);
			n++;
			break;
		case ns_t_aaaa:
			if (len != 16 ||
			    SPF_dns_rr_buf_realloc(rr, n, sizeof(struct in6_addr)) != SPF_E_SUCCESS)
				continue;
			memcpy(&rr->rr[n]->aaaa, p, 16);
			n++;
			break;
		case ns_t_txt:
		case ns_t_spf:
			if (dnsq_txt(p, len, text, sizeof(text)) < 0 ||
			    SPF_dns_rr_buf_realloc(rr, n, strlen(text) + 1) != SPF_E_SUCCESS)
				continue;
			memcpy(rr->rr[n]->txt, text, strlen(text) + 1);
			n++;
			break;
		case ns_t_mx:
			if (len < 3 || dnsq_wire_name(p + 2, len - 2, text, sizeof(text)) < 0 ||
			    SPF_dns_rr_buf_realloc(rr, n, strlen(text) + 1) != SPF_E_SUCCESS)
				continue;
			memcpy(rr->rr[n]->mx, text, strlen(text) + 1);
			n++;
			break;
		case ns_t_ptr:
			if (dnsq_wire_name(p, len, text, sizeof(text)) < 0 ||
			    SPF_dns_rr_buf_realloc(rr, n, strlen(text) + 1) != SPF_E_SUCCESS)
				continue;
			memcpy(rr->rr[n]->ptr, text, strlen(text) + 1);
			n++;
			break;
		default:
			break;
		}
	}
	rr->num_rr = n;
	if (n == 0)
		rr->herrno = NO_DATA;
	ub_resolve_free(r);
	return rr;
}

/* --- libopendkim's DNS through dnsq: the answer packet as it came ---------------- */

struct dkim_q {
	size_t len;
	int error;
};

static int dkim_qstart(void *srv, int type, unsigned char *query, unsigned char *buf, size_t buflen,
		       void **qh)
{
	struct ub_result *r;
	struct dkim_q *q = xcalloc(1, sizeof(*q));

	if (dnsq_query(srv, (const char *)query, type, &r) < 0) {
		q->error = 1;
	} else {
		size_t n = (size_t)r->answer_len;
		if (n > buflen)
			n = buflen;
		memcpy(buf, r->answer_packet, n);
		q->len = n;
		ub_resolve_free(r);
	}
	*qh = q;
	return 0;
}

static int dkim_qwait(void *srv, void *qh, struct timeval *to, size_t *bytes, int *error,
		      int *dnssec)
{
	struct dkim_q *q = qh;

	(void)srv;
	(void)to;
	if (bytes)
		*bytes = q->len;
	if (error)
		*error = q->error;
	if (dnssec)
		*dnssec = DKIM_DNSSEC_UNKNOWN;
	return q->error ? DKIM_DNS_ERROR : DKIM_DNS_SUCCESS;
}

static int dkim_qcancel(void *srv, void *qh)
{
	(void)srv;
	free(qh);
	return 0;
}

int authres_init(struct server *srv, char *err, size_t errsize)
{
	const struct config_list *ns = &srv->p.dns_resolver;

	if (!srv->p.smtpd_authentication_checks)
		return 0;
	if ((dnsq = dnsq_open(ns->item, ns->n, err, errsize)) == NULL)
		return -1;
	memset(&spf_dns, 0, sizeof(spf_dns));
	spf_dns.lookup = spf_lookup;
	spf_dns.name = "mailkeep-unbound";
	spf_dns.hook = dnsq;
	if ((vlib = dkim_init(NULL, NULL)) == NULL) {
		snprintf(err, errsize, "libopendkim could not start");
		return -1;
	}
	dkim_dns_set_query_service(vlib, dnsq);
	dkim_dns_set_query_start(vlib, dkim_qstart);
	dkim_dns_set_query_waitreply(vlib, dkim_qwait);
	dkim_dns_set_query_cancel(vlib, dkim_qcancel);
	OPENDMARC_LIB_T lib;
	memset(&lib, 0, sizeof(lib));
	const char *psl = srv->p.dmarc_public_suffix_list;
	if (psl[0] && access(psl, R_OK) == 0) {
		lib.tld_type = OPENDMARC_TLD_TYPE_MOZILLA;
		mk_strlcpy((char *)lib.tld_source_file, psl, sizeof(lib.tld_source_file));
	} else {
		log_warn_as(
		    "smtpd",
		    "dmarc_public_suffix_list %s cannot be read: organizational domains are "
		    "the last two labels",
		    psl);
	}
	if (opendmarc_policy_library_init(&lib) != DMARC_PARSE_OKAY) {
		snprintf(err, errsize, "libopendmarc could not start");
		return -1;
	}
	dmarc_ready = 1;
	return 0;
}

/* --- the checks (on a pool thread) --------------------------------------------------- */

struct authres_job {
	struct session *s;
	/* inputs, copied */
	char ip[64], helo[256], from[SMTP_ADDR_MAX + 1], qid[24];
	/* results */
	char spf[16], spf_domain[300], spf_origin[16];
	char dkim[16], dkim_detail[900];
	char dmarc[16], dmarc_detail[300], from_domain[256];
	int dmarc_policy; /* DMARC_POLICY_* or 0 */
	int p;		  /* DMARC_RECORD_P_* of the domain */
};

static const char *spf_word(SPF_result_t r)
{
	switch (r) {
	case SPF_RESULT_PASS:
		return "pass";
	case SPF_RESULT_FAIL:
		return "fail";
	case SPF_RESULT_SOFTFAIL:
		return "softfail";
	case SPF_RESULT_NEUTRAL:
		return "neutral";
	case SPF_RESULT_NONE:
		return "none";
	case SPF_RESULT_TEMPERROR:
		return "temperror";
	case SPF_RESULT_PERMERROR:
		return "permerror";
	default:
		return "permerror";
	}
}

static void check_spf(struct authres_job *j)
{
	SPF_server_t *srv = SPF_server_new_dns(&spf_dns, 0);
	SPF_request_t *req;
	SPF_response_t *resp = NULL;

	mk_strlcpy(j->spf, "none", sizeof(j->spf));
	if (srv == NULL)
		return;
	req = SPF_request_new(srv);
	int bad = strchr(j->ip, ':') ? SPF_request_set_ipv6_str(req, j->ip)
				     : SPF_request_set_ipv4_str(req, j->ip);
	if (bad == SPF_E_SUCCESS) {
		if (j->helo[0])
			SPF_request_set_helo_dom(req, j->helo);
		/* the null sender: the HELO identity (RFC 7208 2.4) */
		if (j->from[0]) {
			SPF_request_set_env_from(req, j->from);
			mk_strlcpy(j->spf_origin, "mailfrom", sizeof(j->spf_origin));
			const char *at = strrchr(j->from, '@');
			mk_strlcpy(j->spf_domain, at ? at + 1 : j->from, sizeof(j->spf_domain));
		} else {
			mk_strlcpy(j->spf_origin, "helo", sizeof(j->spf_origin));
			mk_strlcpy(j->spf_domain, j->helo, sizeof(j->spf_domain));
			char postmaster[300];
			snprintf(postmaster, sizeof(postmaster), "postmaster@%s", j->helo);
			SPF_request_set_env_from(req, postmaster);
		}
		SPF_request_query_mailfrom(req, &resp);
		if (resp != NULL)
			mk_strlcpy(j->spf, spf_word(SPF_response_result(resp)), sizeof(j->spf));
	}
	if (resp)
		SPF_response_free(resp);
	SPF_request_free(req);
	SPF_server_free(srv);
}

static void check_dkim(struct authres_job *j, const char *msg, size_t len, DMARC_POLICY_T *pctx)
{
	DKIM_STAT st;
	DKIM *d = dkim_verify(vlib, (const unsigned char *)j->qid, NULL, &st);
	DKIM_SIGINFO **sigs = NULL;
	int nsigs = 0, any_pass = 0;
	size_t o = 0;

	mk_strlcpy(j->dkim, "none", sizeof(j->dkim));
	j->dkim_detail[0] = 0;
	if (d == NULL)
		return;
	st = dkim_chunk(d, (unsigned char *)msg, len);
	if (st == DKIM_STAT_OK)
		st = dkim_chunk(d, NULL, 0);
	if (st == DKIM_STAT_OK || st == DKIM_STAT_NOSIG)
		st = dkim_eom(d, NULL);
	if (dkim_getsiglist(d, &sigs, &nsigs) != DKIM_STAT_OK)
		nsigs = 0;
	for (int i = 0; i < nsigs; i++) {
		DKIM_SIGINFO *sig = sigs[i];
		unsigned int flags = dkim_sig_getflags(sig);
		const char *dom = (const char *)dkim_sig_getdomain(sig);
		const char *sel = (const char *)dkim_sig_getselector(sig);
		const char *res;
		int e = dkim_sig_geterror(sig);
		if (DKIM_SIG_CHECK(sig))
			res = "pass";
		else if (!(flags & DKIM_SIGFLAG_PROCESSED) || (flags & DKIM_SIGFLAG_IGNORE))
			res = "neutral";
		else if (e == DKIM_SIGERROR_KEYFAIL || e == DKIM_SIGERROR_DNSSYNTAX)
			res = "temperror";
		else if (e == DKIM_SIGERROR_NOKEY || e == DKIM_SIGERROR_MULTIREPLY ||
			 (e > 0 && e < DKIM_SIGERROR_NOKEY) ||
			 (e >= DKIM_SIGERROR_KEYVERSION && e <= DKIM_SIGERROR_KEYTOOSMALL))
			res = "permerror";
		else
			res = "fail";
		if (strcmp(res, "pass") == 0)
			any_pass = 1;
		if (i == 0 ||
		    (any_pass && strcmp(res, "pass") == 0 && strcmp(j->dkim, "pass") != 0))
			mk_strlcpy(j->dkim, res, sizeof(j->dkim));
		unsigned char b[16];
		size_t bl = sizeof(b) - 1;
		if (dkim_get_sigsubstring(d, sig, (char *)b, &bl) != DKIM_STAT_OK)
			bl = 0;
		b[bl] = 0;
		if (bl > 8)
			b[8] = 0;
		char reason[96] = "";
		if (strcmp(res, "pass") != 0 && e > 0)
			snprintf(reason, sizeof(reason), " (%.80s)", dkim_sig_geterrorstr(e));
		int n = snprintf(j->dkim_detail + o, sizeof(j->dkim_detail) - o,
				 "%s\tdkim=%s%s header.d=%.100s header.s=%.60s header.b=%s",
				 o ? ";\r\n" : "", res, reason, dom ? dom : "", sel ? sel : "", b);
		if (n > 0 && (size_t)n < sizeof(j->dkim_detail) - o)
			o += (size_t)n;
		if (pctx != NULL && dom != NULL)
			opendmarc_policy_store_dkim(
			    pctx, (u_char *)dom, (u_char *)sel,
			    strcmp(res, "pass") == 0	    ? DMARC_POLICY_DKIM_OUTCOME_PASS
			    : strcmp(res, "temperror") == 0 ? DMARC_POLICY_DKIM_OUTCOME_TMPFAIL
							    : DMARC_POLICY_DKIM_OUTCOME_FAIL,
			    (u_char *)res);
	}
	if (any_pass)
		mk_strlcpy(j->dkim, "pass", sizeof(j->dkim));
	dkim_free(d);
}

/* The DMARC record of domain, else of its organizational domain. */
static int dmarc_record(const char *domain, char *rec, size_t size, char *used, size_t usize,
			int *temp)
{
	char name[300], org[256];
	const char *try[2] = {domain, NULL};

	*temp = 0;
	if (opendmarc_get_tld((u_char *)domain, (u_char *)org, sizeof(org)) == 0 && org[0] &&
	    strcasecmp(org, domain) != 0)
		try[1] = org;
	for (int k = 0; k < 2 && try[k]; k++) {
		struct ub_result *r;
		snprintf(name, sizeof(name), "_dmarc.%s", try[k]);
		if (dnsq_query(dnsq, name, ns_t_txt, &r) < 0) {
			*temp = 1;
			return -1;
		}
		if (r->rcode != 0 && !r->nxdomain) {
			*temp = 1;
			ub_resolve_free(r);
			return -1;
		}
		for (int i = 0; r->havedata && r->data[i]; i++) {
			if (dnsq_txt((unsigned char *)r->data[i], (size_t)r->len[i], rec, size) ==
				0 &&
			    strncasecmp(rec, "v=DMARC1", 8) == 0) {
				mk_strlcpy(used, try[k], usize);
				ub_resolve_free(r);
				return 0;
			}
		}
		ub_resolve_free(r);
	}
	return -1;
}

static void authres_work(void *arg)
{
	struct authres_job *j = arg;
	struct session *s = j->s;
	const char *msg = s->msg.data + s->hdr_len;
	size_t len = s->msg.len - s->hdr_len;
	DMARC_POLICY_T *pctx = NULL;

	check_spf(j);
	if (dkim_from_domain(msg, len, j->from_domain, sizeof(j->from_domain)) < 0)
		j->from_domain[0] = 0;
	if (dmarc_ready && j->from_domain[0]) {
		unsigned char ipb[16];
		int v6 = strchr(j->ip, ':') != NULL;
		if (inet_pton(v6 ? AF_INET6 : AF_INET, j->ip, ipb) == 1)
			pctx = opendmarc_policy_connect_init((u_char *)j->ip,
							     v6 ? DMARC_POLICY_IP_TYPE_IPV6
								: DMARC_POLICY_IP_TYPE_IPV4);
		/* before the DKIM results: alignment is judged as they are stored */
		if (pctx != NULL)
			opendmarc_policy_store_from_domain(pctx, (u_char *)j->from_domain);
	}
	check_dkim(j, msg, len, pctx);
	mk_strlcpy(j->dmarc, "none", sizeof(j->dmarc));
	if (pctx == NULL)
		return;
	char rec[2048], used[256];
	int temp = 0;
	int spf_outcome = strcmp(j->spf, "pass") == 0	     ? DMARC_POLICY_SPF_OUTCOME_PASS
			  : strcmp(j->spf, "temperror") == 0 ? DMARC_POLICY_SPF_OUTCOME_TMPFAIL
			  : strcmp(j->spf, "none") == 0	     ? DMARC_POLICY_SPF_OUTCOME_NONE
							     : DMARC_POLICY_SPF_OUTCOME_FAIL;
	opendmarc_policy_store_spf(pctx, (u_char *)j->spf_domain, spf_outcome,
				   strcmp(j->spf_origin, "helo") == 0
				       ? DMARC_POLICY_SPF_ORIGIN_HELO
				       : DMARC_POLICY_SPF_ORIGIN_MAILFROM,
				   (u_char *)j->spf);
	if (dmarc_record(j->from_domain, rec, sizeof(rec), used, sizeof(used), &temp) < 0) {
		mk_strlcpy(j->dmarc, temp ? "temperror" : "none", sizeof(j->dmarc));
	} else if (opendmarc_policy_store_dmarc(pctx, (u_char *)rec, (u_char *)j->from_domain,
						strcasecmp(used, j->from_domain) == 0
						    ? NULL
						    : (u_char *)used) != DMARC_PARSE_OKAY) {
		mk_strlcpy(j->dmarc, "permerror", sizeof(j->dmarc));
	} else {
		j->dmarc_policy = opendmarc_get_policy_to_enforce(pctx);
		int p = 0, sp = 0;
		opendmarc_policy_fetch_p(pctx, &p);
		opendmarc_policy_fetch_sp(pctx, &sp);
		j->p = strcasecmp(used, j->from_domain) != 0 && sp ? sp : p;
		mk_strlcpy(j->dmarc, j->dmarc_policy == DMARC_POLICY_PASS ? "pass" : "fail",
			   sizeof(j->dmarc));
		snprintf(j->dmarc_detail, sizeof(j->dmarc_detail), " (p=%s dis=%s)",
			 j->p == DMARC_RECORD_P_REJECT	     ? "reject"
			 : j->p == DMARC_RECORD_P_QUARANTINE ? "quarantine"
							     : "none",
			 j->dmarc_policy == DMARC_POLICY_PASS ? "none"
			 : !s->srv->p.smtpd_dmarc_enforce     ? "none"
			 : j->p == DMARC_RECORD_P_REJECT      ? "reject"
			 : j->p == DMARC_RECORD_P_QUARANTINE  ? "quarantine"
							      : "none");
	}
	opendmarc_policy_connect_shutdown(pctx);
}

/* Takes out Authentication-Results fields that claim our authserv-id. */
static void drop_forged(struct session *s, const char *id)
{
	char *d = s->msg.data + s->hdr_len;
	size_t len = s->msg.len - s->hdr_len, i = 0, idl = strlen(id);

	while (i < len) {
		if (d[i] == '\r' || d[i] == '\n')
			break; /* end of the header */
		size_t st = i;
		do {
			char *e = memchr(d + i, '\n', len - i);
			i = e ? (size_t)(e - d) + 1 : len;
		} while (i < len && (d[i] == ' ' || d[i] == '\t'));
		const char *f = d + st;
		if (i - st > 23 && strncasecmp(f, "Authentication-Results:", 23) == 0) {
			const char *v = f + 23;
			while (*v == ' ' || *v == '\t')
				v++;
			if ((size_t)(d + i - v) > idl && strncasecmp(v, id, idl) == 0 &&
			    (v[idl] == ';' || v[idl] == ' ' || v[idl] == '\r')) {
				memmove(d + st, d + i, len - i);
				len -= i - st;
				s->msg.len -= i - st;
				s->msg.data[s->msg.len] = 0;
				i = st;
			}
		}
	}
}

/* The transaction is refused after its data: the reply, and a new one may follow. */
static void refuse(struct session *s, const char *reply)
{
	char from[SMTP_ADDR_MAX + 1];

	PRINTABLE(from, s->from.addr);
	log_info_as("smtpd",
		    "%s: reject: END-OF-MESSAGE from %s: %s; from=<%s> proto=ESMTP helo=<%s>",
		    s->qid, s->client, reply, from, s->helo);
	session_reply(s, "%s", reply);
	s->mail_seen = 0;
	s->nrcpt = 0;
	s->in_bdat = 0;
	s->qid[0] = 0;
	buf_reset(&s->msg);
	session_resume(s);
	session_unref(s);
}

static void eod_done(struct session *s, const struct restr_result *r)
{
	if (s->closed) {
		session_unref(s);
		return;
	}
	if (r->verdict == V_REJECT || r->verdict == V_DEFER) {
		refuse(s, r->reply);
		return;
	}
	deliver_message(s);
}

static void authres_done(void *arg)
{
	struct authres_job *j = arg;
	struct session *s = j->s;
	struct server *srv = s->srv;

	if (s->closed) {
		free(j);
		session_unref(s);
		return;
	}
	log_info_as("smtpd", "%s: spf=%s dkim=%s dmarc=%s header.from=%s", s->qid, j->spf, j->dkim,
		    j->dmarc, j->from_domain[0] ? j->from_domain : "-");
	if (srv->p.smtpd_dmarc_enforce && j->dmarc_policy == DMARC_POLICY_REJECT) {
		char reply[400];
		snprintf(reply, sizeof(reply),
			 "550 5.7.1 Message rejected: DMARC policy of %.200s says reject",
			 j->from_domain);
		free(j);
		refuse(s, reply);
		return;
	}
	s->authres_junk = srv->p.smtpd_dmarc_enforce && j->dmarc_policy == DMARC_POLICY_QUARANTINE;
	snprintf(s->authres_meta, sizeof(s->authres_meta),
		 "auth.spf=%s\nauth.dkim=%s\nauth.dmarc=%s\n", j->spf, j->dkim, j->dmarc);
	/* the header, right below our Received: (our own trace: received, then
	 * checked), above everything the client sent */
	drop_forged(s, srv->p.authserv_id);
	struct buf h;
	buf_init(&h, s->msg.max + 4096);
	buf_append(&h, s->msg.data, s->hdr_len);
	buf_printf(&h, "Authentication-Results: %s;\r\n\tspf=%s smtp.%s=%s", srv->p.authserv_id,
		   j->spf, j->spf_origin[0] ? j->spf_origin : "mailfrom",
		   j->spf_domain[0] ? j->spf_domain : "unknown");
	if (j->dkim_detail[0])
		buf_printf(&h, ";\r\n%s", j->dkim_detail);
	else
		buf_printf(&h, ";\r\n\tdkim=none");
	buf_printf(&h, ";\r\n\tdmarc=%s%s header.from=%s\r\n", j->dmarc, j->dmarc_detail,
		   j->from_domain[0] ? j->from_domain : "unknown");
	size_t ours = h.len;
	if (buf_append(&h, s->msg.data + s->hdr_len, s->msg.len - s->hdr_len) == 0) {
		s->hdr_len = ours;
		buf_free(&s->msg);
		s->msg = h;
	} else {
		buf_free(&h);
	}
	mk_strlcpy(s->auth_spf, j->spf, sizeof(s->auth_spf));
	mk_strlcpy(s->auth_dkim, j->dkim, sizeof(s->auth_dkim));
	mk_strlcpy(s->auth_dmarc, j->dmarc, sizeof(s->auth_dmarc));
	free(j);
	if (srv->r_eod.n > 0) {
		/* smtpd_end_of_data_restrictions: reject_spf_fail and the like */
		restrictions_check(s, "END-OF-DATA", eod_done);
		return;
	}
	deliver_message(s); /* replies, resets, resumes, drops the reference */
}

void authres_deliver(struct session *s)
{
	struct server *srv = s->srv;

	s->authres_meta[0] = 0;
	s->authres_junk = 0;
	s->auth_spf[0] = s->auth_dkim[0] = s->auth_dmarc[0] = 0;
	if (!srv->p.smtpd_authentication_checks || dnsq == NULL || s->authed || s->lmtp) {
		deliver_message(s);
		return;
	}
	struct authres_job *j = xcalloc(1, sizeof(*j));
	j->s = s;
	mk_strlcpy(j->ip, s->addr, sizeof(j->ip));
	mk_strlcpy(j->helo, s->helo, sizeof(j->helo));
	mk_strlcpy(j->from, s->from.addr, sizeof(j->from));
	mk_strlcpy(j->qid, s->qid, sizeof(j->qid));
	job_submit(srv, authres_work, authres_done, j);
}
