/* smtpin — what the files of mailkeep-smtpin share: the server (settings read
 * once, the event base, the store, the directory, the worker pool) and the
 * session (one SMTP or LMTP conversation).
 *
 * Threads. Everything runs on the event loop thread except the work handed to
 * the pool (jobs.c): store_deliver (blocks until the commit is durable),
 * greylist and postscreen-cache writes, directory lookups and password checks.
 * A job's done function runs back on the loop thread. A session waiting for a
 * job or a DNS answer is "busy": it reads nothing more until it is resumed,
 * and holds a reference so it outlives a client that hangs up meanwhile.
 */
#ifndef SMTPIN_SMTPIN_H
#define SMTPIN_SMTPIN_H

#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdint.h>

#include "index/greylist.h"
#include "index/params.h"
#include "index/store.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "index/dir.h"
#include "smtpin/params.h"
#include "lib/tls.h"
#include "smtpin/data.h"
#include "smtpin/limits.h"
#include "smtpin/parse.h"

struct daemon;
struct reload_retired;

enum listener_kind {
	LISTEN_SMTP,
	LISTEN_SMTPS,
	LISTEN_LMTP,
	LISTEN_POLICY,
	LISTEN_SUBMISSION,  /* 587: STARTTLS, then AUTH (submission.c) */
	LISTEN_SUBMISSIONS, /* 465: implicit TLS, then AUTH */
};

struct listener {
	struct server *srv;
	enum listener_kind kind;
	char spec[256];
	int fd;
	struct event *ev;
};

/* --- restrictions (restrictions.c) --- */

enum restr_type {
	R_PERMIT,
	R_REJECT,
	R_DEFER,
	R_DUNNO,
	R_PERMIT_MYNETWORKS,
	R_PERMIT_SASL,
	R_REJECT_UNAUTH_DEST,
	R_DEFER_UNAUTH_DEST,
	R_REJECT_INVALID_HELO,
	R_REJECT_NON_FQDN_HELO,
	R_REJECT_UNKNOWN_RCPT_DOMAIN,
	R_REJECT_UNKNOWN_SENDER_DOMAIN,
	R_REJECT_NON_FQDN_SENDER,
	R_REJECT_NON_FQDN_RCPT,
	R_CHECK_CLIENT_ACCESS,
	R_PERMIT_DNSWL,
	R_REJECT_RBL,
	R_REJECT_RHSBL_SENDER,
	R_REJECT_RHSBL_CLIENT,
	R_REJECT_UNAUTH_PIPELINING,
	R_CHECK_POLICY,
	R_GREYLIST,
	R_REJECT_UNLISTED_RCPT,
	R_REJECT_SPF_FAIL, /* end of data: the authentication checks (authres.c) */
	R_REJECT_DKIM_FAIL,
	R_REJECT_DMARC_FAIL,
};

struct cidr_entry;
struct dnsbl_site;

struct restr_item {
	enum restr_type type;
	char *arg;		 /* as written */
	struct cidr_entry *cidr; /* check_client_access cidr:FILE, loaded at start */
	size_t ncidr;
	struct dnsbl_site *site; /* rbl / dnswl / rhsbl */
};

struct restr_list {
	const char *name; /* "smtpd_recipient_restrictions" */
	struct restr_item *items;
	size_t n;
};

/* What a restriction (or a whole list) decided. */
enum restr_verdict { V_DUNNO = 0, V_PERMIT, V_REJECT, V_DEFER };

struct restr_result {
	enum restr_verdict verdict;
	char reply[1400]; /* "554 5.7.1 <x>: Relay access denied" for REJECT/DEFER */
};

/* --- postscreen (postscreen.c) --- */

enum ps_action { PS_IGNORE, PS_ENFORCE, PS_DROP };

struct dnsbl_site {
	char domain[256];
	/* reply pattern: per octet, a list of [lo,hi] ranges; n == 0: any 127.x */
	struct {
		uint8_t lo[8], hi[8];
		int n;
	} octet[4];
	int has_pattern;
	int weight;
};

struct server {
	struct config *cfg;
	struct common_params common; /* the shared settings, typed (index/params.h) */
	struct smtpin_params p;	     /* smtpin's own (smtpin/params.def) */
	struct event_base *base;
	struct evdns_base *dns;
	struct store *store;
	struct directory *dir;
	struct tls_holder tls; /* replaced on SIGHUP (smtpin_tls_reload) */
	struct jobs *jobs;
	struct limits *limits; /* the connection policy (limits.c) */

	struct listener *listeners;
	size_t nlisteners;
	struct session *sessions; /* all open sessions (a list) */
	int nsessions;
	int stopping;
	struct event *sig_ev, *gc_timer; /* the signalfd (lib/daemon.h), the greylist clean-up */
	struct daemon *daemon;		 /* the skeleton (lib/daemon.h), for the log on SIGHUP */
	unsigned gen;			 /* settings generation: +1 per SIGHUP that changed them */
	size_t nalive;			 /* sessions allocated and not yet freed */
	struct reload_retired *retired;	 /* settings replaced, waiting for their sessions */

	/* settings, read once */
	char hostname[256];
	char banner[512];
	char ps_banner[512];
	double timeout;
	size_t line_max;
	uint64_t size_limit;
	int rcpt_limit, soft_errors, hard_errors, conn_per_client, conn_limit;
	int helo_required, strict, delay_reject, forbid_bare, reject_unlisted;
	int sasl, tls_auth_only, tls_level; /* 0 none, 1 may, 2 encrypt */
	int tls_received;
	char **mynetworks;
	size_t nmynetworks;
	char **mydest;
	size_t nmydest;
	struct restr_list r_client, r_helo, r_sender, r_relay, r_rcpt, r_data, r_eod;
	double policy_timeout;
	int64_t retry_window; /* smtpd_retry_dedup_window (index/retry.h) */
	char policy_default[128];

	struct greylist_params greylist;
	char greylist_text[256];

	/* relay.c: recipients of relay_domains from relay_recipient_maps files */
	char **relay_rcpts; /* sorted, lower case: "bob@example.com", "@example.net" */
	size_t nrelay_rcpts;
	int relay_directory; /* relay_recipient_maps names the user directory */

	/* submission.c: per-user rate windows */
	struct user_rate *rates;
	size_t nrates, rcap;

	/* postscreen */
	int ps_access_mynetworks;
	struct cidr_entry *ps_cidr;
	size_t ps_ncidr;
	enum ps_action ps_deny_action, ps_greet_action, ps_dnsbl_action, ps_pipe_action,
	    ps_nonsmtp_action, ps_bare_action;
	double ps_greet_wait, ps_greet_ttl, ps_dnsbl_ttl;
	struct dnsbl_site *ps_sites;
	size_t ps_nsites;
	int ps_threshold, ps_allow_threshold;
	int ps_pipe, ps_nonsmtp, ps_bare;
	char **ps_forbidden;
	size_t ps_nforbidden;
};

enum sess_state { SS_GREET, SS_CMD, SS_DATA, SS_BDAT, SS_AUTH };

struct rcpt {
	char addr[SMTP_ADDR_MAX + 1];
	char user[DIR_NAME_MAX]; /* the local user; "" for a remote recipient */
	int remote;		 /* queued for smtpout (submission.c) */
};

struct session {
	struct server *srv;
	unsigned gen; /* srv->gen when it began (reload.c) */
	struct listener *lst;
	struct session *next, *prev;
	struct bufferevent *bev;
	int refs;
	int closed;   /* the connection is gone (bev freed) */
	int quitting; /* close once the output is flushed */
	struct event *close_ev;
	struct event *sleep_ev; /* smtpd_soft_error_limit's pause */
	int close_polls, flushed_once, shut_wr;
	int busy; /* waiting for a job or DNS: no input is read */
	enum sess_state state;
	double t_connect;

	char addr[64]; /* client address, "127.0.0.1" */
	char port[8];
	char name[256];	    /* client host name, "unknown" */
	char client[340];   /* "unknown[127.0.0.1]" for logs */
	char ps_client[96]; /* "[127.0.0.1]:41234" for postscreen logs */
	int mynetworks;
	int lmtp;
	int submission; /* a submission listener (587, 465): submission.c */
	char authres_meta[128]; /* auth.spf=... lines for the recipients' metadata (authres.c) */
	char auth_spf[16], auth_dkim[16], auth_dmarc[16]; /* their words, for the restrictions */
	int authres_junk;	/* DMARC quarantine, enforced: into Junk */

	int tls;
	char tls_info[160];
	int esmtp;
	int helo_seen;
	char helo[256]; /* printable copy of the HELO argument */
	int authed;
	char sasl_user[DIR_NAME_MAX];
	char sasl_method[8];
	int auth_step; /* AUTH LOGIN: 1 = waiting for user, 2 = for password */
	char auth_login[DIR_NAME_MAX];

	/* the transaction */
	int mail_seen;
	char qid[24];
	struct smtp_path from;
	struct rcpt *rcpts;
	size_t nrcpt, rcap;
	struct buf msg;
	size_t hdr_len; /* bytes of our Received: header at the start of msg */
	struct smtp_data data;
	int in_bdat; /* a BDAT sequence has started */
	uint64_t bdat_left;
	int bdat_last;
	int bdat_bad; /* the chunks are read but the transaction is refused */
	double t_data;

	/* the command being worked on (RCPT, async) */
	struct smtp_path cur;
	struct restr_eval *eval;

	/* counters for the disconnect line */
	unsigned cnt_total[SMTP_VERB_COUNT], cnt_ok[SMTP_VERB_COUNT];
	unsigned cnt_unknown;
	int errors;
	char last_cmd[16];

	/* postscreen */
	int ps_subject;	      /* the client goes through postscreen's tests */
	int ps_fresh;	      /* tests ran this time (not a cached pass) */
	int ps_failed;	      /* a test failed (not cached as a pass) */
	int ps_cached;	      /* the pass was written to the cache */
	char ps_enforce[512]; /* non-empty: every RCPT gets this 5xx reply */
	struct event *greet_ev;
	int greet_over; /* the greet wait has ended */
	int dnsbl_pending;
	int dnsbl_score;
	char dnsbl_hit[256];
	int pipelined;	  /* sent a command while an earlier one had no reply (no PIPELINING) */
	int bare_lf_line; /* the last command line ended in a bare LF */

	struct session_limits lim; /* limits.c */
};

/* main.c */
void server_shutdown(struct server *srv);

/* session.c */
void session_accept(struct listener *lst, int fd, const struct sockaddr *sa, socklen_t salen);
void session_reply(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void session_ref(struct session *s);
void session_unref(struct session *s);
/* Ends the wait begun by a job or DNS request; reads buffered input again. */
void session_resume(struct session *s);
void session_close(struct session *s, const char *why);
/* Stops reading and closes once the replies are sent. */
void session_quit(struct session *s);
/* Sends the final 220 line and starts reading commands (after postscreen). */
void session_greet_done(struct session *s);
void session_logreject(struct session *s, const char *stage, const char *reply);
/* STARTTLS handshake finished (tls.c calls these). */
void session_tls_ready(struct session *s);
void session_tls_failed(struct session *s);

/* jobs.c — a pool of threads for blocking work. */
typedef void job_fn(void *arg);
int jobs_start(struct server *srv, int nthreads, char *err, size_t errsize);
void jobs_stop(struct server *srv);
/* work runs on a pool thread, then done on the loop thread. */
void job_submit(struct server *srv, job_fn *work, job_fn *done, void *arg);
/* SIGHUP (reload.c): waits until no job runs and starts none until
 * jobs_resume, so that the settings, the directory and the spam filter's
 * settings the workers read change while none reads them. Loop thread only. */
void jobs_pause(struct server *srv);
void jobs_resume(struct server *srv);

/* reload.c — SIGHUP: every setting that can change without a restart, at
 * once (lib/daemon.h's apply); the settings replaced are freed when the
 * last session that began under them has ended. */
int smtpin_reload(void *srv, struct config *cfg, char *err, size_t errsize);
/* A session of generation gen has ended (session.c). */
void smtpin_reload_session_gone(struct server *srv, unsigned gen);
/* main.c: the settings read once into srv (and checked); used again on SIGHUP. */
int smtpin_read_settings(struct server *srv, char *err, size_t errsize);

/* deliver.c */
/* Resolves a recipient through the directory (async): a DIR_* result, or
 * DELIVER_OVERQUOTA for a known user who is over quota. */
#define DELIVER_OVERQUOTA 100
void deliver_lookup_rcpt(struct session *s,
			 void (*done)(struct session *s, int dir_result, const char *user));
/* Stores the message in s->msg for every recipient, then replies (async). */
void deliver_message(struct session *s);
void deliver_received_header(struct session *s);
/* retrykey.c: the key of a delivery of s's message to one recipient, for
 * recognising a retry (index/retry.h). Returns 0, or -1 when the message has
 * no Message-ID (no key: it is never taken for a retry). */
int smtpin_retry_key(const struct session *s, const char *rcpt_addr, const char *user,
		     uint8_t key[STORE_HASH_LEN]);
/* The per-recipient metadata text of the current transaction (malloc'd). */
char *deliver_meta(struct session *s, const char *to);

/* relay.c — backup MX: relay_domains, relay_recipient_maps */
int relay_load(struct server *srv, char *err, size_t errsize);
/* 1 if domain is one we are a backup MX for. */
int relay_domain(struct server *srv, const char *domain);
/* RCPT for a relay domain: accepted (queued for the primary) only for a
 * valid recipient; replies, resumes and drops the reference (async). */
void relay_rcpt(struct session *s);

/* authres.c */
int authres_init(struct server *srv, char *err, size_t errsize);
/* At the end of DATA: SPF, DKIM and DMARC (async), the Authentication-Results
 * header, then deliver_message (or a 550 under an enforced DMARC reject). */
void authres_deliver(struct session *s);

/* submission.c */
/* MAIL of an authenticated session: the user's message rate, then the sender
 * must be one of the user's addresses; done gets NULL or the reply refusing it. */
void submission_check_sender(struct session *s, void (*done)(struct session *s, const char *reply));
/* RCPT of an authenticated session outside our domains: the user's recipient
 * rate, then s->cur is added as a remote recipient. 0, or -1 with a reply. */
int submission_remote_rcpt(struct session *s, char *reply, size_t size);
/* Adds s->cur as a recipient to be queued (once). */
void session_add_remote_rcpt(struct session *s);
/* 1 if the transaction goes through the queue (remote recipients, a Sent copy). */
int submission_needs_queue(const struct session *s);
/* Stores the local copies and queues the rest in one write, then replies (async). */
void submission_deliver(struct session *s);
/* Writes the Received: header of an authenticated session; 0 if not one. */
int submission_received_header(struct session *s, const char *date);

/* restrictions.c */
int restrictions_load(struct server *srv, char *err, size_t errsize);
/* Evaluates the lists for a stage ("RCPT": client, helo, sender, relay,
 * recipient when smtpd_delay_reject; "DATA": data; "END-OF-DATA":
 * smtpd_end_of_data_restrictions, after the authentication checks); calls
 * done with the verdict on the loop thread. */
void restrictions_check(struct session *s, const char *stage,
			void (*done)(struct session *s, const struct restr_result *res));
int client_in_mynetworks(struct server *srv, const char *addr);
int domain_is_local(struct server *srv, const char *domain);
/* cidr tables (Postfix cidr_table(5)): returns the action text or NULL. */
int cidr_load(const char *path, struct cidr_entry **entries_r, size_t *n_r, char *err,
	      size_t errsize);
const char *cidr_lookup(const struct cidr_entry *e, size_t n, const char *addr);
void cidr_free(struct cidr_entry *e, size_t n);

/* dns.c */
struct dns_answer {
	int status; /* 0 found, 1 not found (NXDOMAIN / no data), -1 failure */
	int n;
	uint32_t addr[8]; /* IPv4 answers, host byte order */
	char name[256];	  /* PTR answer */
};
int dns_start(struct server *srv, char *err, size_t errsize);
void dns_lookup_a(struct server *srv, const char *name,
		  void (*cb)(const struct dns_answer *a, void *arg), void *arg);
void dns_lookup_ptr(struct server *srv, const char *addr,
		    void (*cb)(const struct dns_answer *a, void *arg), void *arg);
/* "4.3.2.1" for 1.2.3.4, nibbles for IPv6; returns 0 or -1. */
int dns_reverse_name(const char *addr, char *out, size_t outsize);
int dnsbl_site_parse(const char *text, struct dnsbl_site *site_r, int with_weight);
int dnsbl_site_match(const struct dnsbl_site *site, const struct dns_answer *a);

/* postscreen.c */
int postscreen_load(struct server *srv, char *err, size_t errsize);
/* Decides at connect whether the client is tested; sends the banner. */
void postscreen_start(struct session *s);
/* Input arrived during the greet wait. */
void postscreen_pregreet(struct session *s);
/* A deep test failed: "COMMAND PIPELINING", "NON-SMTP COMMAND", "BARE NEWLINE".
 * Returns 1 if the session was dropped. */
int postscreen_fail(struct session *s, const char *test, enum ps_action action, const char *detail);
/* The session ended; remember a client that passed everything. */
void postscreen_end(struct session *s);
enum ps_action ps_action_parse(const char *text);

/* policy.c — the Postfix policy delegation server (greylist) and client. */
void policy_accept(struct listener *lst, int fd, const char *peer);
void policy_query(struct session *s, const char *service,
		  void (*done)(struct session *s, const char *action));

/* tls.c */
int smtpin_tls_init(struct server *srv, char *err, size_t errsize);
/* SIGHUP: loads smtpd_tls_cert_file and smtpd_tls_key_file again for new
 * connections; on failure logs why and keeps the context it had. */
void smtpin_tls_reload(struct server *srv);
/* 1 if STARTTLS (and smtps) can be served: TLS is not "none" and a
 * certificate is loaded. */
int smtpin_tls_ready(struct server *srv);
/* Wraps the session's connection in TLS (after "220 Ready to start TLS"). */
int session_starttls(struct session *s);
struct bufferevent *tls_accept_bev(struct server *srv, int fd);
void tls_describe(struct bufferevent *bev, char *out, size_t outsize);

/* auth.c */
void auth_start(struct session *s, const char *arg);
void auth_continue(struct session *s, const char *line, size_t len);

/* logging helpers */
#define PRINTABLE(dst, src) log_printable(dst, sizeof(dst), src, strlen(src))

#endif
