/* restrictions — smtpd_*_restrictions, evaluated in the order the admin wrote
 * them, as Postfix does: within one list the first PERMIT ends that list (the
 * next list is still evaluated), the first REJECT or DEFER ends everything.
 * With smtpd_delay_reject (the default) the client, HELO and sender lists are
 * evaluated at RCPT TO, so the log names the recipient.
 *
 * Some restrictions wait (DNS, a policy server, the greylist in the store):
 * they return PENDING and their callback resumes the evaluation where it
 * stopped. The session is busy meanwhile and holds a reference.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/array.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "smtpin/smtpin.h"

#define PENDING 100

struct cidr_entry {
	struct net_cidr net;
	char *action;
};

enum subject { SUBJ_CLIENT, SUBJ_HELO, SUBJ_SENDER, SUBJ_RCPT, SUBJ_DATA, SUBJ_EOD };

struct restr_eval {
	struct session *s;
	const struct restr_list *lists[6];
	enum subject subj[6];
	int nlists, li;
	size_t ii;
	void (*done)(struct session *s, const struct restr_result *res);
	struct restr_result res;
	const struct restr_item *item; /* the one waiting */
	int rhsbl_step;
	unsigned gen; /* srv->gen at the start: a SIGHUP meanwhile starts it again */
};

static const struct {
	const char *name;
	enum restr_type type;
	int has_arg;
} restr_names[] = {
    {"permit", R_PERMIT, 0},
    {"reject", R_REJECT, 0},
    {"defer", R_DEFER, 0},
    {"dunno", R_DUNNO, 0},
    {"permit_mynetworks", R_PERMIT_MYNETWORKS, 0},
    {"permit_sasl_authenticated", R_PERMIT_SASL, 0},
    {"reject_unauth_destination", R_REJECT_UNAUTH_DEST, 0},
    {"defer_unauth_destination", R_DEFER_UNAUTH_DEST, 0},
    {"reject_invalid_helo_hostname", R_REJECT_INVALID_HELO, 0},
    {"reject_invalid_hostname", R_REJECT_INVALID_HELO, 0},
    {"reject_non_fqdn_helo_hostname", R_REJECT_NON_FQDN_HELO, 0},
    {"reject_non_fqdn_hostname", R_REJECT_NON_FQDN_HELO, 0},
    {"reject_unknown_recipient_domain", R_REJECT_UNKNOWN_RCPT_DOMAIN, 0},
    {"reject_unknown_sender_domain", R_REJECT_UNKNOWN_SENDER_DOMAIN, 0},
    {"reject_non_fqdn_sender", R_REJECT_NON_FQDN_SENDER, 0},
    {"reject_non_fqdn_recipient", R_REJECT_NON_FQDN_RCPT, 0},
    {"check_client_access", R_CHECK_CLIENT_ACCESS, 1},
    {"permit_dnswl_client", R_PERMIT_DNSWL, 1},
    {"reject_rbl_client", R_REJECT_RBL, 1},
    {"reject_rhsbl_sender", R_REJECT_RHSBL_SENDER, 1},
    {"reject_rhsbl_client", R_REJECT_RHSBL_CLIENT, 1},
    {"reject_unauth_pipelining", R_REJECT_UNAUTH_PIPELINING, 0},
    {"check_policy_service", R_CHECK_POLICY, 1},
    {"check_greylist", R_GREYLIST, 0},
    {"reject_unlisted_recipient", R_REJECT_UNLISTED_RCPT, 0},
    {"reject_spf_fail", R_REJECT_SPF_FAIL, 0},
    {"reject_dkim_fail", R_REJECT_DKIM_FAIL, 0},
    {"reject_dmarc_fail", R_REJECT_DMARC_FAIL, 0},
};

/* --- tables -------------------------------------------------------------- */

int cidr_load(const char *path, struct cidr_entry **entries_r, size_t *n_r, char *err,
	      size_t errsize)
{
	char *data = NULL, *save = NULL;
	size_t len, n = 0, cap = 0, lineno = 0;
	struct cidr_entry *e = NULL;

	*entries_r = NULL;
	*n_r = 0;
	if (mk_read_file(path, 1 << 24, &data, &len) < 0) {
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		return -1;
	}
	for (char *line = strtok_r(data, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		while (isspace((unsigned char)*line))
			line++;
		if (*line == '#' || *line == 0)
			continue;
		char *sp = line;
		while (*sp && !isspace((unsigned char)*sp))
			sp++;
		char *action = sp;
		if (*sp)
			*sp++ = 0, action = sp;
		while (isspace((unsigned char)*action))
			action++;
		size_t al = strlen(action);
		while (al > 0 && isspace((unsigned char)action[al - 1]))
			action[--al] = 0;
		ARRAY_RESERVE(e, cap, n + 1);
		if (net_cidr_parse(line, &e[n].net) < 0 || al == 0) {
			snprintf(err, errsize, "%s:%zu: bad entry (want: network/prefix action)",
				 path, lineno);
			cidr_free(e, n);
			free(data);
			return -1;
		}
		e[n].action = xstrdup(action);
		n++;
	}
	free(data);
	*entries_r = e;
	*n_r = n;
	return 0;
}

const char *cidr_lookup(const struct cidr_entry *e, size_t n, const char *addr)
{
	for (size_t i = 0; i < n; i++)
		if (net_cidr_match(&e[i].net, addr))
			return e[i].action;
	return NULL;
}

void cidr_free(struct cidr_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].action);
	free(e);
}

int client_in_mynetworks(struct server *srv, const char *addr)
{
	return net_cidr_match_list(addr, (const char *const *)srv->mynetworks, srv->nmynetworks);
}

int domain_is_local(struct server *srv, const char *domain)
{
	for (size_t i = 0; i < srv->nmydest; i++)
		if (strcasecmp(srv->mydest[i], domain) == 0)
			return 1;
	return 0;
}

static int load_list(const struct config_list *list, const char *name, struct restr_list *l,
		     char *err, size_t errsize)
{
	char **items = list->item;
	size_t n = list->n;

	l->name = name;
	l->items = xcalloc(n ? n : 1, sizeof(*l->items));
	for (size_t i = 0; i < n; i++) {
		size_t k;
		for (k = 0; k < sizeof(restr_names) / sizeof(restr_names[0]); k++)
			if (strcasecmp(items[i], restr_names[k].name) == 0)
				break;
		if (k == sizeof(restr_names) / sizeof(restr_names[0])) {
			snprintf(err, errsize, "%s: unknown restriction \"%s\"", name, items[i]);
			goto fail;
		}
		struct restr_item *it = &l->items[l->n++];
		it->type = restr_names[k].type;
		if (!restr_names[k].has_arg)
			continue;
		if (i + 1 >= n) {
			snprintf(err, errsize, "%s: %s needs an argument", name, items[i]);
			goto fail;
		}
		it->arg = xstrdup(items[++i]);
		switch (it->type) {
		case R_CHECK_CLIENT_ACCESS:
			if (strncmp(it->arg, "cidr:", 5) != 0) {
				snprintf(err, errsize,
					 "%s: check_client_access %s: only cidr:/file tables are "
					 "supported",
					 name, it->arg);
				goto fail;
			}
			if (cidr_load(it->arg + 5, &it->cidr, &it->ncidr, err, errsize) < 0)
				goto fail;
			break;
		case R_PERMIT_DNSWL:
		case R_REJECT_RBL:
		case R_REJECT_RHSBL_SENDER:
		case R_REJECT_RHSBL_CLIENT:
			it->site = xcalloc(1, sizeof(*it->site));
			if (dnsbl_site_parse(it->arg, it->site, 0) < 0) {
				snprintf(
				    err, errsize,
				    "%s: bad DNS list \"%s\" (want domain or domain=127.0.0.2)",
				    name, it->arg);
				goto fail;
			}
			break;
		case R_CHECK_POLICY:
			if (strncmp(it->arg, "inet:", 5) != 0 &&
			    strncmp(it->arg, "unix:", 5) != 0) {
				snprintf(err, errsize,
					 "%s: check_policy_service %s: want inet:host:port or "
					 "unix:/path",
					 name, it->arg);
				goto fail;
			}
			break;
		default:
			break;
		}
	}
	return 0;
fail:
	return -1;
}

int restrictions_load(struct server *srv, char *err, size_t errsize)
{
#define LOAD(name, l) load_list(&srv->p.name, #name, l, err, errsize)
	if (LOAD(smtpd_client_restrictions, &srv->r_client) < 0 ||
	    LOAD(smtpd_helo_restrictions, &srv->r_helo) < 0 ||
	    LOAD(smtpd_sender_restrictions, &srv->r_sender) < 0 ||
	    LOAD(smtpd_relay_restrictions, &srv->r_relay) < 0 ||
	    LOAD(smtpd_recipient_restrictions, &srv->r_rcpt) < 0 ||
	    LOAD(smtpd_data_restrictions, &srv->r_data) < 0 ||
	    LOAD(smtpd_end_of_data_restrictions, &srv->r_eod) < 0)
		return -1;
#undef LOAD
	return 0;
}

/* --- evaluation -------------------------------------------------------------- */

static void eval_run(struct restr_eval *e);

static enum subject cur_subject(struct restr_eval *e)
{
	return e->subj[e->li];
}

/* "554 5.7.1 <x>: Recipient address rejected: text", in Postfix's words. */
static int set_reply(struct restr_eval *e, int code, const char *dsn, const char *text)
{
	struct session *s = e->s;
	char who[SMTP_ADDR_MAX + 1];
	const char *what;

	switch (cur_subject(e)) {
	case SUBJ_CLIENT:
		mk_strlcpy(who, s->client, sizeof(who));
		what = "Client host rejected";
		break;
	case SUBJ_HELO:
		mk_strlcpy(who, s->helo, sizeof(who));
		what = "Helo command rejected";
		break;
	case SUBJ_SENDER:
		PRINTABLE(who, s->from.addr);
		what = "Sender address rejected";
		break;
	case SUBJ_RCPT:
		PRINTABLE(who, s->cur.addr);
		what = "Recipient address rejected";
		break;
	case SUBJ_EOD:
		mk_strlcpy(who, "END-OF-MESSAGE", sizeof(who));
		what = "End-of-data rejected";
		break;
	default:
		mk_strlcpy(who, "DATA", sizeof(who));
		what = "Data command rejected";
		break;
	}
	snprintf(e->res.reply, sizeof(e->res.reply), "%d %s <%s>: %s: %s", code, dsn, who, what,
		 text);
	return code >= 500 ? V_REJECT : V_DEFER;
}

/* An access-table or policy action: OK, DUNNO, REJECT text, DEFER text,
 * DEFER_IF_PERMIT text, 4xx/5xx text. Unknown actions are DUNNO (logged). */
static int apply_action(struct restr_eval *e, const char *action)
{
	char word[32];
	size_t i = 0;

	while (action[i] && !isspace((unsigned char)action[i]) && i < sizeof(word) - 1) {
		word[i] = action[i];
		i++;
	}
	word[i] = 0;
	const char *text = action + i;
	while (isspace((unsigned char)*text))
		text++;
	/* a leading enhanced status code in the text is ours to set */
	if (isdigit((unsigned char)text[0]) && text[1] == '.') {
		while (*text && !isspace((unsigned char)*text))
			text++;
		while (isspace((unsigned char)*text))
			text++;
	}
	if (strcasecmp(word, "OK") == 0 || strcasecmp(word, "PERMIT") == 0)
		return V_PERMIT;
	if (strcasecmp(word, "DUNNO") == 0 || word[0] == 0 || strcasecmp(word, "PREPEND") == 0 ||
	    strcasecmp(word, "WARN") == 0 || strcasecmp(word, "INFO") == 0)
		return V_DUNNO;
	if (strcasecmp(word, "REJECT") == 0)
		return set_reply(e, 554, "5.7.1", *text ? text : "Access denied");
	if (strcasecmp(word, "DEFER") == 0 || strcasecmp(word, "DEFER_IF_PERMIT") == 0 ||
	    strcasecmp(word, "DEFER_IF_REJECT") == 0)
		return set_reply(e, 450, "4.7.1", *text ? text : "Service unavailable");
	if (strlen(word) == 3 && (word[0] == '4' || word[0] == '5') &&
	    isdigit((unsigned char)word[1]) && isdigit((unsigned char)word[2])) {
		int code = (word[0] - '0') * 100 + (word[1] - '0') * 10 + (word[2] - '0');
		return set_reply(e, code, word[0] == '4' ? "4.7.1" : "5.7.1",
				 *text ? text : "Access denied");
	}
	log_warn_as("smtpd", "unknown access action \"%s\": treated as DUNNO", word);
	return V_DUNNO;
}

static void eval_finish(struct restr_eval *e)
{
	struct session *s = e->s;
	struct restr_result res = e->res;
	void (*done)(struct session *, const struct restr_result *) = e->done;

	s->eval = NULL;
	free(e);
	done(s, &res);
}

/* An async restriction answered. */
static void eval_resume(struct restr_eval *e, int verdict)
{
	e->item = NULL;
	if (verdict == V_REJECT || verdict == V_DEFER) {
		e->res.verdict = (enum restr_verdict)verdict;
		eval_finish(e);
		return;
	}
	if (verdict == V_PERMIT) {
		e->li++;
		e->ii = 0;
	} else {
		e->ii++;
	}
	eval_run(e);
}

static void dnsbl_cb(const struct dns_answer *a, void *arg)
{
	struct restr_eval *e = arg;
	const struct restr_item *it = e->item;
	struct session *s = e->s;
	char text[600];

	if (a->status != 0 || !dnsbl_site_match(it->site, a)) {
		eval_resume(e, V_DUNNO);
		return;
	}
	if (it->type == R_PERMIT_DNSWL) {
		log_info_as("smtpd", "%s: permit_dnswl_client: %s listed in %s",
			    s->qid[0] ? s->qid : "NOQUEUE", s->client, it->site->domain);
		eval_resume(e, V_PERMIT);
		return;
	}
	if (it->type == R_REJECT_RBL)
		snprintf(text, sizeof(text),
			 "Service unavailable; Client host [%s] blocked using %s", s->addr,
			 it->site->domain);
	else if (it->type == R_REJECT_RHSBL_SENDER)
		snprintf(text, sizeof(text),
			 "Service unavailable; Sender address [%s] blocked using %s",
			 s->from.domain, it->site->domain);
	else
		snprintf(text, sizeof(text),
			 "Service unavailable; Client host [%s] blocked using %s", s->name,
			 it->site->domain);
	/* Postfix words these without the "<subject>: ... rejected:" prefix */
	snprintf(e->res.reply, sizeof(e->res.reply), "554 5.7.1 %s", text);
	eval_resume(e, V_REJECT);
}

static void lookup_list(struct restr_eval *e, const char *prefix)
{
	char name[600];

	snprintf(name, sizeof(name), "%s.%s", prefix, e->item->site->domain);
	dns_lookup_a(e->s->srv, name, dnsbl_cb, e);
}

static void ptr_cb(const struct dns_answer *a, void *arg)
{
	struct restr_eval *e = arg;
	struct session *s = e->s;

	if (a->status == 0 && a->name[0]) {
		PRINTABLE(s->name, a->name);
		snprintf(s->client, sizeof(s->client), "%s[%s]", s->name, s->addr);
	}
	if (strcmp(s->name, "unknown") == 0 || strcmp(s->name, "localhost") == 0) {
		eval_resume(e, V_DUNNO);
		return;
	}
	lookup_list(e, s->name);
}

static void domain_cb(const struct dns_answer *a, void *arg)
{
	struct restr_eval *e = arg;
	int sender = e->item->type == R_REJECT_UNKNOWN_SENDER_DOMAIN;

	if (a->status == 1) {
		eval_resume(e, set_reply(e, sender ? 553 : 550, sender ? "5.1.8" : "5.1.2",
					 "Domain not found"));
		return;
	}
	if (a->status < 0) {
		eval_resume(e, set_reply(e, 450, sender ? "4.1.8" : "4.1.2", "Domain not found"));
		return;
	}
	eval_resume(e, V_DUNNO);
}

static void policy_cb(struct session *s, const char *action)
{
	struct restr_eval *e = s->eval;

	eval_resume(e, apply_action(e, action));
}

struct grey_job {
	struct restr_eval *e;
	char addr[64];
	char sender[SMTP_ADDR_MAX + 1];
	char rcpt[SMTP_ADDR_MAX + 1];
	int rc;
	enum greylist_verdict verdict;
	int64_t wait;
};

static void grey_work(void *arg)
{
	struct grey_job *g = arg;
	struct server *srv = g->e->s->srv;

	g->rc = greylist_check(srv->store, g->addr, g->sender, g->rcpt, (int64_t)time(NULL),
			       &srv->greylist, &g->verdict, &g->wait);
}

static void grey_done(void *arg)
{
	struct grey_job *g = arg;
	struct restr_eval *e = g->e;
	struct session *s = e->s;
	int v = V_DUNNO;

	if (g->rc != 0) {
		log_warn_as("smtpd", "greylist unavailable (%s): accepting mail from %s",
			    store_strerror(g->rc), s->client);
	} else if (g->verdict == GREYLIST_DEFER) {
		char text[400];
		snprintf(text, sizeof(text), "%s (%lld seconds left)", s->srv->greylist_text,
			 (long long)g->wait);
		v = set_reply(e, 450, "4.7.1", text);
	}
	free(g);
	eval_resume(e, v);
}

/* reject_unauth_destination, defer_unauth_destination: relay control at RCPT. */
static int eval_relay(struct restr_eval *e, const struct restr_item *it)
{
	struct session *s = e->s;
	char to[SMTP_ADDR_MAX + 1];

	if (cur_subject(e) != SUBJ_RCPT)
		return V_DUNNO;
	/* our domains, and those we are a backup MX for (relay_domains), as Postfix's */
	if (strcasecmp(s->cur.addr, "postmaster") == 0 ||
	    (!smtp_addr_routing_trick(&s->cur) && (domain_is_local(s->srv, s->cur.domain) ||
						    relay_domain(s->srv, s->cur.domain))))
		return V_DUNNO;
	PRINTABLE(to, s->cur.addr);
	if (it->type == R_DEFER_UNAUTH_DEST)
		snprintf(e->res.reply, sizeof(e->res.reply), "454 4.7.1 <%s>: Relay access denied",
			 to);
	else
		snprintf(e->res.reply, sizeof(e->res.reply), "554 5.7.1 <%s>: Relay access denied",
			 to);
	return it->type == R_DEFER_UNAUTH_DEST ? V_DEFER : V_REJECT;
}

/* The syntax of the HELO name, the sender and the recipient. */
static int eval_names(struct restr_eval *e, const struct restr_item *it)
{
	struct session *s = e->s;

	switch (it->type) {
	case R_REJECT_INVALID_HELO:
		if (!s->helo_seen || smtp_helo_valid(s->helo))
			return V_DUNNO;
		e->subj[e->li] = SUBJ_HELO;
		return set_reply(e, 501, "5.5.2", "Invalid name");
	case R_REJECT_NON_FQDN_HELO:
		if (!s->helo_seen || (s->helo[0] == '[' && smtp_helo_valid(s->helo)) ||
		    smtp_domain_is_fqdn(s->helo))
			return V_DUNNO;
		e->subj[e->li] = SUBJ_HELO;
		return set_reply(e, 504, "5.5.2", "need fully-qualified hostname");
	case R_REJECT_NON_FQDN_SENDER:
		if (!s->mail_seen || s->from.null_path || smtp_domain_is_fqdn(s->from.domain))
			return V_DUNNO;
		e->subj[e->li] = SUBJ_SENDER;
		return set_reply(e, 504, "5.5.2", "need fully-qualified address");
	case R_REJECT_NON_FQDN_RCPT:
		if (cur_subject(e) != SUBJ_RCPT || strcasecmp(s->cur.addr, "postmaster") == 0 ||
		    smtp_domain_is_fqdn(s->cur.domain))
			return V_DUNNO;
		return set_reply(e, 504, "5.5.2", "need fully-qualified address");
	default:
		return V_DUNNO;
	}
}

/* The unknown-domain checks and the DNS lists: answered by DNS callbacks. */
static int eval_dns(struct restr_eval *e, const struct restr_item *it)
{
	struct session *s = e->s;
	struct server *srv = s->srv;
	char rev[128];

	switch (it->type) {
	case R_REJECT_UNKNOWN_RCPT_DOMAIN:
		if (cur_subject(e) != SUBJ_RCPT || s->cur.domain[0] == 0 || s->cur.ip_literal ||
		    domain_is_local(srv, s->cur.domain))
			return V_DUNNO;
		e->item = it;
		dns_lookup_a(srv, s->cur.domain, domain_cb, e);
		return PENDING;
	case R_REJECT_UNKNOWN_SENDER_DOMAIN:
		if (!s->mail_seen || s->from.null_path || s->from.ip_literal ||
		    domain_is_local(srv, s->from.domain))
			return V_DUNNO;
		e->subj[e->li] = SUBJ_SENDER;
		e->item = it;
		dns_lookup_a(srv, s->from.domain, domain_cb, e);
		return PENDING;
	case R_PERMIT_DNSWL:
	case R_REJECT_RBL:
		if (dns_reverse_name(s->addr, rev, sizeof(rev)) < 0)
			return V_DUNNO;
		e->item = it;
		lookup_list(e, rev);
		return PENDING;
	case R_REJECT_RHSBL_SENDER:
		if (!s->mail_seen || s->from.null_path || s->from.domain[0] == 0 ||
		    s->from.ip_literal)
			return V_DUNNO;
		e->item = it;
		lookup_list(e, s->from.domain);
		return PENDING;
	case R_REJECT_RHSBL_CLIENT:
		e->item = it;
		if (strcmp(s->name, "unknown") == 0) {
			dns_lookup_ptr(srv, s->addr, ptr_cb, e);
			return PENDING;
		}
		lookup_list(e, s->name);
		return PENDING;
	default:
		return V_DUNNO;
	}
}

/* check_greylist at RCPT: the store is asked off the event loop. */
static int eval_greylist(struct restr_eval *e, const struct restr_item *it)
{
	struct session *s = e->s;

	if (cur_subject(e) != SUBJ_RCPT)
		return V_DUNNO;
	struct grey_job *g = xcalloc(1, sizeof(*g));
	g->e = e;
	mk_strlcpy(g->addr, s->addr, sizeof(g->addr));
	mk_strlcpy(g->sender, s->from.addr, sizeof(g->sender));
	mk_strlcpy(g->rcpt, s->cur.addr, sizeof(g->rcpt));
	e->item = it;
	job_submit(s->srv, grey_work, grey_done, g);
	return PENDING;
}

/* One restriction. Returns a verdict, or PENDING (its callback resumes). */
static int eval_item(struct restr_eval *e, const struct restr_item *it)
{
	struct session *s = e->s;

	switch (it->type) {
	case R_PERMIT:
		return V_PERMIT;
	case R_REJECT:
		return set_reply(e, 554, "5.7.1", "Access denied");
	case R_DEFER:
		return set_reply(e, 450, "4.7.1", "Try again later");
	case R_DUNNO:
	case R_REJECT_UNLISTED_RCPT:
		return V_DUNNO;
	case R_PERMIT_MYNETWORKS:
		return s->mynetworks ? V_PERMIT : V_DUNNO;
	case R_PERMIT_SASL:
		return s->authed ? V_PERMIT : V_DUNNO;
	case R_REJECT_UNAUTH_DEST:
	case R_DEFER_UNAUTH_DEST:
		return eval_relay(e, it);
	case R_REJECT_INVALID_HELO:
	case R_REJECT_NON_FQDN_HELO:
	case R_REJECT_NON_FQDN_SENDER:
	case R_REJECT_NON_FQDN_RCPT:
		return eval_names(e, it);
	case R_REJECT_UNKNOWN_RCPT_DOMAIN:
	case R_REJECT_UNKNOWN_SENDER_DOMAIN:
	case R_PERMIT_DNSWL:
	case R_REJECT_RBL:
	case R_REJECT_RHSBL_SENDER:
	case R_REJECT_RHSBL_CLIENT:
		return eval_dns(e, it);
	case R_CHECK_CLIENT_ACCESS: {
		const char *action = cidr_lookup(it->cidr, it->ncidr, s->addr);
		if (action == NULL)
			return V_DUNNO;
		e->subj[e->li] = SUBJ_CLIENT;
		return apply_action(e, action);
	}
	case R_REJECT_UNAUTH_PIPELINING:
		if (!s->pipelined)
			return V_DUNNO;
		return set_reply(e, 503, "5.5.0", "Improper use of SMTP command pipelining");
	case R_CHECK_POLICY:
		e->item = it;
		policy_query(s, it->arg, policy_cb);
		return PENDING;
	case R_GREYLIST:
		return eval_greylist(e, it);
	/* the authentication checks' results (authres.c), known at the end of data;
	 * the codes are RFC 7372's */
	case R_REJECT_SPF_FAIL:
		if (cur_subject(e) != SUBJ_EOD || strcmp(s->auth_spf, "fail") != 0)
			return V_DUNNO;
		return set_reply(e, 550, "5.7.23", "SPF validation failed");
	case R_REJECT_DKIM_FAIL:
		if (cur_subject(e) != SUBJ_EOD || strcmp(s->auth_dkim, "fail") != 0)
			return V_DUNNO;
		return set_reply(e, 550, "5.7.20", "No passing DKIM signature found");
	case R_REJECT_DMARC_FAIL:
		if (cur_subject(e) != SUBJ_EOD || strcmp(s->auth_dmarc, "fail") != 0)
			return V_DUNNO;
		return set_reply(e, 550, "5.7.1", "DMARC validation failed");
	}
	return V_DUNNO;
}

static void eval_run(struct restr_eval *e)
{
	if (e->gen != e->s->srv->gen) {
		/* the lists changed while an answer was awaited (SIGHUP): the
		 * check starts again, under the new lists only */
		e->gen = e->s->srv->gen;
		e->li = 0;
		e->ii = 0;
	}
	for (; e->li < e->nlists; e->li++, e->ii = 0) {
		const struct restr_list *l = e->lists[e->li];
		for (; e->ii < l->n; e->ii++) {
			int v = eval_item(e, &l->items[e->ii]);
			if (v == PENDING)
				return;
			if (v == V_PERMIT)
				break;
			if (v == V_REJECT || v == V_DEFER) {
				e->res.verdict = (enum restr_verdict)v;
				eval_finish(e);
				return;
			}
		}
	}
	e->res.verdict = V_DUNNO;
	eval_finish(e);
}

void restrictions_check(struct session *s, const char *stage,
			void (*done)(struct session *s, const struct restr_result *res))
{
	struct server *srv = s->srv;
	struct restr_eval *e = xcalloc(1, sizeof(*e));

	e->s = s;
	e->done = done;
	e->gen = srv->gen;
#define ADD(list, sj)                                                                              \
	do {                                                                                       \
		e->lists[e->nlists] = &srv->list;                                                  \
		e->subj[e->nlists++] = sj;                                                         \
	} while (0)
	if (strcmp(stage, "RCPT") == 0) {
		if (srv->delay_reject) {
			ADD(r_client, SUBJ_CLIENT);
			ADD(r_helo, SUBJ_HELO);
			ADD(r_sender, SUBJ_SENDER);
		}
		ADD(r_relay, SUBJ_RCPT);
		ADD(r_rcpt, SUBJ_RCPT);
	} else if (strcmp(stage, "HELO") == 0) {
		ADD(r_client, SUBJ_CLIENT);
		ADD(r_helo, SUBJ_HELO);
	} else if (strcmp(stage, "MAIL") == 0) {
		ADD(r_sender, SUBJ_SENDER);
	} else if (strcmp(stage, "END-OF-DATA") == 0) {
		ADD(r_eod, SUBJ_EOD);
	} else {
		ADD(r_data, SUBJ_DATA);
	}
#undef ADD
	s->eval = e;
	eval_run(e);
}
