/* reload — SIGHUP: smtpin takes every setting that can change without a
 * restart, all at once or none (lib/daemon.h's apply hook).
 *
 * The skeleton has read the file again and checked every value. Here the new
 * settings are made into a shadow struct server by the same code that reads
 * them at start (smtpin_read_settings: the restriction lists, their cidr
 * tables and DNS lists, postscreen, greylisting, limits, TLS names), the spam
 * filter's settings are checked and the user directory (LDAP) is opened
 * anew. Anything that fails refuses the whole reload, and nothing has changed.
 * Then, on the loop thread, with the worker pool paused (no delivery, lookup
 * or password check runs while the pointers change), the settings fields are
 * swapped with the shadow's, the directory and the spam settings replaced,
 * the generation counted up; the limits, the log and the certificate follow.
 * A restriction check waiting for a DNS or policy answer starts again under
 * the new lists (restrictions.c), so no check mixes the two.
 *
 * The settings replaced (and the configuration their strings point into) are
 * kept until the last session that began before the swap has ended: a
 * session's pending work may still hold a pointer into them.
 *
 * What needs a restart (the listeners, the worker threads, the store, the
 * resolver, the connection table's own settings, the pid file, mail_owner) is
 * compared and, when changed, named in the log with the value still in use.
 *
 * A field added to struct server's settings must be added to SETTINGS below,
 * or it keeps its value from the start.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index/dir.h"
#include "index/spam.h"
#include "lib/daemon.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "smtpin/smtpin.h"

/* The fields of struct server that smtpin_read_settings fills. */
#define SETTINGS(X)                                                                                \
	X(common)                                                                                  \
	X(p)                                                                                       \
	X(hostname) X(banner) X(ps_banner) X(timeout) X(line_max) X(size_limit) X(rcpt_limit)      \
	    X(soft_errors) X(hard_errors) X(conn_per_client) X(conn_limit) X(helo_required)        \
		X(strict) X(delay_reject) X(forbid_bare) X(reject_unlisted) X(sasl)                \
		    X(tls_auth_only) X(tls_level) X(tls_received) X(mynetworks) X(nmynetworks)     \
			X(mydest) X(nmydest) X(r_client) X(r_helo) X(r_sender) X(r_relay)          \
			    X(r_rcpt) X(r_data) X(policy_timeout) X(retry_window)                  \
				X(policy_default) X(greylist) X(greylist_text)                     \
				    X(ps_access_mynetworks) X(ps_cidr) X(ps_ncidr)                 \
					X(ps_deny_action) X(ps_greet_action) X(ps_dnsbl_action)    \
					    X(ps_pipe_action) X(ps_nonsmtp_action)                 \
						X(ps_bare_action) X(ps_greet_wait) X(ps_greet_ttl) \
						    X(ps_dnsbl_ttl) X(ps_sites) X(ps_nsites)       \
							X(ps_threshold) X(ps_allow_threshold)      \
							    X(ps_pipe) X(ps_nonsmtp) X(ps_bare)    \
								X(ps_forbidden) X(ps_nforbidden)

struct reload_retired {
	struct server *old; /* a shadow holding the settings replaced */
	unsigned gen;	    /* sessions of a generation below this may use them */
	size_t left;	    /* such sessions still allocated */
	struct reload_retired *next;
};

static void free_list(struct restr_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->items[i].arg);
		cidr_free(l->items[i].cidr, l->items[i].ncidr);
		free(l->items[i].site);
	}
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

/* Frees what smtpin_read_settings allocated in a shadow, and its configuration. */
static void shadow_free(struct server *n)
{
	struct restr_list *lists[] = {&n->r_client, &n->r_helo, &n->r_sender,
				      &n->r_relay,  &n->r_rcpt, &n->r_data};
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		free_list(lists[i]);
	cidr_free(n->ps_cidr, n->ps_ncidr);
	free(n->ps_sites);
	smtpin_params_unbind(&n->p);
	common_params_unbind(&n->common);
	config_free(&n->cfg);
	free(n);
}

void smtpin_reload_session_gone(struct server *srv, unsigned gen)
{
	struct reload_retired **pp = &srv->retired;

	while (*pp != NULL) {
		struct reload_retired *r = *pp;
		if (gen < r->gen && r->left > 0)
			r->left--;
		if (r->left == 0) {
			*pp = r->next;
			shadow_free(r->old);
			free(r);
		} else {
			pp = &r->next;
		}
	}
}

/* Settings read only at start: named when they changed. */
static int restart_str(const char *name, const char *now, const char *want)
{
	if (strcmp(now != NULL ? now : "", want != NULL ? want : "") == 0)
		return 0;
	log_warn("SIGHUP: %s changed to \"%s\": that takes a restart of mailkeep-smtpin "
		 "(systemctl restart mailkeep); \"%s\" is used until then",
		 name, want != NULL ? want : "", now != NULL ? now : "");
	return 1;
}

static int restart_list(const char *name, const struct config_list *now,
			const struct config_list *want)
{
	char a[1024] = "", b[1024] = "";
	for (size_t i = 0; i < now->n; i++)
		snprintf(a + strlen(a), sizeof(a) - strlen(a), "%s%s", i ? " " : "", now->item[i]);
	for (size_t i = 0; i < want->n; i++)
		snprintf(b + strlen(b), sizeof(b) - strlen(b), "%s%s", i ? " " : "", want->item[i]);
	return restart_str(name, a, b);
}

static int restart_num(const char *name, double now, double want)
{
	char a[64], b[64];
	if (now == want)
		return 0;
	snprintf(a, sizeof(a), "%g", now);
	snprintf(b, sizeof(b), "%g", want);
	return restart_str(name, a, b);
}

static int restart_needed(const struct server *o, const struct server *n)
{
	int k = 0;
#define LIST(area, f) k += restart_list(#f, &o->area.f, &n->area.f)
#define STR(area, f) k += restart_str(#f, o->area.f, n->area.f)
#define NUM(area, f) k += restart_num(#f, (double)o->area.f, (double)n->area.f)
	LIST(p, smtpd_listen);
	LIST(p, smtpd_tls_wrappermode_listen);
	LIST(p, lmtp_listen);
	LIST(p, greylist_policy_listen);
	NUM(p, smtpd_delivery_threads);
	STR(p, smtpd_pid_file);
	LIST(p, dns_resolver);
	NUM(p, dns_timeout);
	STR(common, store_directory);
	NUM(common, store_map_size);
	NUM(common, store_map_max);
	STR(common, run_directory);
	STR(common, mail_owner);
	NUM(common, anvil_ipv4_prefix_length);
	NUM(common, anvil_ipv6_prefix_length);
	NUM(common, anvil_rate_time_unit);
	NUM(common, auth_penalty);
	NUM(common, auth_penalty_max);
	NUM(common, auth_failure_lockout);
	NUM(common, auth_failure_lockout_window);
	NUM(common, auth_known_client_time);
#undef LIST
#undef STR
#undef NUM
	return k;
}

int smtpin_reload(void *arg, struct config *cfg, char *err, size_t errsize)
{
	struct server *srv = arg;
	struct server *n = xcalloc(1, sizeof(*n));
	struct spam_settings ss;
	struct directory *dir = NULL;

	n->cfg = cfg;
	common_params_bind(cfg, &n->common);
	smtpin_params_bind(cfg, &n->p);
	if (smtpin_read_settings(n, err, errsize) < 0 ||
	    spam_settings_load(cfg, &ss, err, errsize) != 0 ||
	    directory_open(cfg, srv->store, &dir, err, errsize) < 0) {
		n->cfg = NULL; /* the skeleton frees it */
		shadow_free(n);
		return -1;
	}
	int restart = restart_needed(srv, n);
	int relog = strcmp(srv->common.syslog_name, n->common.syslog_name) != 0 ||
		    strcmp(srv->common.log_target, n->common.log_target) != 0;

	/* the swap: nothing of the pool runs meanwhile */
	jobs_pause(srv);
	struct directory *old_dir = srv->dir;
	n->cfg = srv->cfg;
	srv->cfg = cfg;
#define SWAP(f)                                                                                    \
	do {                                                                                       \
		unsigned char tmp_[sizeof(srv->f)];                                                \
		memcpy(tmp_, &srv->f, sizeof(srv->f));                                             \
		memcpy(&srv->f, &n->f, sizeof(srv->f));                                            \
		memcpy(&n->f, tmp_, sizeof(srv->f));                                               \
	} while (0);
	SETTINGS(SWAP)
#undef SWAP
	srv->dir = dir;
	if (!ss.enabled) {
		store_set_hooks(srv->store, NULL); /* the filter turned off: no verdicts */
	} else if (spam_attach(srv->store, cfg) < 0) {
		log_warn("SIGHUP: the spam filter keeps its settings from before");
	}
	srv->gen++;
	jobs_resume(srv);
	dir_close(&old_dir); /* no job holds it: the pool was idle */
	limits_reload(srv);
	if (relog)
		daemon_log_reopen(srv->daemon, srv->common.syslog_name, srv->common.log_target);

	/* the old settings, until the sessions that began under them are gone */
	struct reload_retired *r = xcalloc(1, sizeof(*r));
	r->old = n;
	r->gen = srv->gen;
	r->left = srv->nalive;
	r->next = srv->retired;
	srv->retired = r;
	if (r->left == 0)
		smtpin_reload_session_gone(srv, srv->gen);
	log_info("SIGHUP: configuration reloaded from %s: restrictions, postscreen, DNS lists, "
		 "greylisting, limits, spam filter, user directory, logging%s; new connections "
		 "and the next command of open sessions use it",
		 srv->daemon->conf_path,
		 restart ? " (what waits for a restart is named above)" : "");
	return 0;
}
