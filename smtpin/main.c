/* mailkeep-smtpin — inbound SMTP and LMTP into the store.
 *
 *   mailkeep-smtpin [-c CONF] [-f] [-v] [--help] [--version]   (lib/daemon.h)
 *
 * Reads mailkeep.conf, binds every listener (smtpd_listen,
 * smtpd_tls_wrappermode_listen, lmtp_listen, greylist_policy_listen), drops
 * to mail_owner, opens the store and the user directory, then runs one
 * libevent loop plus a pool of threads for the blocking work. SIGTERM stops
 * accepting, lets deliveries in flight finish (their 250 is only said once
 * stored), and exits. SIGHUP loads the TLS certificate and key again (a
 * renewal) for new connections; open sessions keep the one they started
 * with. See mailkeep-smtpin(8) and doc/smtpin.md.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "index/fts.h"
#include "index/dir.h"
#include "index/params.h"
#include "index/quota.h"
#include "index/sieve_deliver.h"
#include "index/retry.h"
#include "index/spam.h"
#include "index/maillog.h"
#include "lib/daemon.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "smtpin/smtpin.h"

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
	struct listener *lst = arg;

	(void)what;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int c = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (c < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("accept on %s: %s", lst->spec, strerror(errno));
			return;
		}
		if (lst->srv->stopping) {
			close(c);
			continue;
		}
		if (lst->kind == LISTEN_POLICY) {
			char peer[64];
			net_addr_str((struct sockaddr *)&ss, len, peer, sizeof(peer));
			policy_accept(lst, c, peer);
		} else {
			session_accept(lst, c, (struct sockaddr *)&ss, len);
		}
	}
}

static int add_listeners(struct server *srv, const struct config_list *list, const char *setting,
			 enum listener_kind kind, char *err, size_t errsize)
{
	char **items = list->item;
	size_t n = list->n;

	for (size_t i = 0; i < n; i++) {
		srv->listeners =
		    xreallocarray(srv->listeners, srv->nlisteners + 1, sizeof(*srv->listeners));
		struct listener *l = &srv->listeners[srv->nlisteners];
		memset(l, 0, sizeof(*l));
		l->srv = srv;
		l->kind = kind;
		mk_strlcpy(l->spec, items[i], sizeof(l->spec));
		if (strncmp(items[i], "unix:", 5) == 0) {
			char dir[256];
			mk_strlcpy(dir, items[i] + 5, sizeof(dir));
			char *slash = strrchr(dir, '/');
			if (slash != NULL && slash != dir) {
				*slash = 0;
				mk_mkdirs(dir, 0755);
			}
		}
		char e[256];
		/* a deep accept queue: under a connection flood a shallow one fills
		 * between two turns of the loop, and a client's dropped SYN costs
		 * it a second (doc/bench.md, "Under attack") */
		l->fd = net_listen(items[i], LISTEN_BACKLOG, e, sizeof(e));
		if (l->fd < 0) {
			snprintf(err, errsize, "%s: %s", setting, e);
			return -1;
		}
		srv->nlisteners++;
	}
	return 0;
}

int smtpin_read_settings(struct server *srv, char *err, size_t errsize)
{
	const struct smtpin_params *p = &srv->p;
	const char *v;

	mk_strlcpy(srv->hostname, srv->common.myhostname, sizeof(srv->hostname));
	mk_strlcpy(srv->banner, p->smtpd_banner, sizeof(srv->banner));
	srv->timeout = p->smtpd_timeout;
	srv->line_max = (size_t)p->line_length_limit;
	srv->size_limit = p->message_size_limit;
	srv->rcpt_limit = (int)p->smtpd_recipient_limit;
	srv->soft_errors = (int)p->smtpd_soft_error_limit;
	srv->hard_errors = (int)p->smtpd_hard_error_limit;
	srv->conn_per_client = (int)p->smtpd_client_connection_count_limit;
	srv->conn_limit = (int)p->smtpd_connection_limit;
	srv->helo_required = p->smtpd_helo_required;
	srv->strict = p->strict_rfc821_envelopes;
	srv->delay_reject = p->smtpd_delay_reject;
	srv->forbid_bare = p->smtpd_forbid_bare_newline;
	srv->reject_unlisted = p->smtpd_reject_unlisted_recipient;
	srv->sasl = p->smtpd_sasl_auth_enable;
	srv->tls_auth_only = p->smtpd_tls_auth_only;
	srv->tls_received = p->smtpd_tls_received_header;
	v = p->smtpd_tls_security_level;
	if (v == NULL || strcmp(v, "may") == 0)
		srv->tls_level = 1;
	else if (strcmp(v, "none") == 0)
		srv->tls_level = 0;
	else if (strcmp(v, "encrypt") == 0)
		srv->tls_level = 2;
	else {
		snprintf(err, errsize,
			 "smtpd_tls_security_level: want none, may or encrypt, not \"%s\"", v);
		return -1;
	}
	srv->mynetworks = srv->common.mynetworks.item;
	srv->nmynetworks = srv->common.mynetworks.n;
	for (size_t i = 0; i < srv->nmynetworks; i++) {
		struct net_cidr c;
		if (net_cidr_parse(srv->mynetworks[i], &c) < 0) {
			snprintf(err, errsize, "mynetworks: bad network \"%s\"",
				 srv->mynetworks[i]);
			return -1;
		}
	}
	srv->mydest = srv->common.mydestination.item;
	srv->nmydest = srv->common.mydestination.n;
	srv->policy_timeout = p->smtpd_policy_service_timeout;
	srv->retry_window = (int64_t)p->smtpd_retry_dedup_window;
	mk_strlcpy(srv->policy_default, p->smtpd_policy_service_default_action,
		   sizeof(srv->policy_default));
	srv->greylist.delay = (int64_t)p->greylist_delay;
	srv->greylist.retry_window = (int64_t)p->greylist_retry_window;
	srv->greylist.max_age = (int64_t)p->greylist_max_age;
	srv->greylist.auto_allow = (uint32_t)p->greylist_auto_allow;
	mk_strlcpy(srv->greylist_text, p->greylist_text, sizeof(srv->greylist_text));
	if (restrictions_load(srv, err, errsize) < 0 || postscreen_load(srv, err, errsize) < 0 ||
	    relay_load(srv, err, errsize) < 0)
		return -1;
	return 0;
}

void server_shutdown(struct server *srv)
{
	event_base_loopexit(srv->base, NULL);
}

/* SIGHUP, after the settings (reload.c): the certificate again (certbot's
 * deploy hook, or new file names); sessions keep the context they began with. */
static void on_reload(void *arg)
{
	smtpin_tls_reload(arg);
}

/* SIGTERM, SIGINT: stop accepting; deliveries in flight finish (their 250 is
 * only said once stored), idle sessions hear 421. */
static void on_stop(void *arg, int sig)
{
	struct server *srv = arg;

	if (srv->stopping)
		return;
	log_info("terminating on signal %d", sig);
	srv->stopping = 1;
	for (size_t i = 0; i < srv->nlisteners; i++) {
		if (srv->listeners[i].ev) {
			event_free(srv->listeners[i].ev);
			srv->listeners[i].ev = NULL;
		}
	}
	struct session *next;
	for (struct session *s = srv->sessions; s != NULL; s = next) {
		next = s->next;
		if (!s->busy) {
			session_reply(s, "421 4.3.2 %s Service shutting down", srv->hostname);
			session_close(s, NULL);
		}
	}
	if (srv->nsessions == 0)
		server_shutdown(srv);
	/* busy sessions finish their delivery, then are closed by session_resume */
}

static void on_signal_fd(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	daemon_signal_dispatch(arg);
}

struct expire_job {
	struct server *srv;
	int rc;
};

static void expire_work(void *arg)
{
	struct expire_job *j = arg;

	j->rc = greylist_expire(j->srv->store, (int64_t)time(NULL), j->srv->greylist.max_age);
	if (j->srv->retry_window > 0)
		store_retry_expire(j->srv->store, (int64_t)time(NULL), j->srv->retry_window);
}

static void expire_done(void *arg)
{
	struct expire_job *j = arg;

	if (j->rc > 0)
		log_info("greylist: %d old entries removed", j->rc);
	free(j);
}

static void on_gc(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	struct expire_job *j = xcalloc(1, sizeof(*j));

	(void)fd;
	(void)what;
	j->srv = srv;
	job_submit(srv, expire_work, expire_done, j);
}

static const struct daemon_spec spec = {
    .name = "smtpin",
    .help = "Inbound SMTP and LMTP into the store: binds smtpd_listen,\n"
	    "smtpd_tls_wrappermode_listen, lmtp_listen and greylist_policy_listen, drops to\n"
	    "mail_owner, and delivers into the store. SIGHUP loads the TLS certificate\n"
	    "again; SIGTERM lets deliveries in flight finish, then exits.\n"
	    "See mailkeep-smtpin(8).",
    .signals = 1,
    .load = params_load,
    .on_reload = on_reload,
    .apply = smtpin_reload,
    .on_stop = on_stop,
};

static void add_every_listener(struct server *srv)
{
	char err[512];

#define LISTENERS(name, kind) add_listeners(srv, &srv->p.name, #name, kind, err, sizeof(err))
	if (LISTENERS(smtpd_listen, LISTEN_SMTP) < 0 ||
	    LISTENERS(smtpd_tls_wrappermode_listen, LISTEN_SMTPS) < 0 ||
	    LISTENERS(submission_listen, LISTEN_SUBMISSION) < 0 ||
	    LISTENERS(submissions_listen, LISTEN_SUBMISSIONS) < 0 ||
	    LISTENERS(lmtp_listen, LISTEN_LMTP) < 0 ||
	    LISTENERS(greylist_policy_listen, LISTEN_POLICY) < 0)
		log_fatal("%s", err);
#undef LISTENERS
}

/* The store, the spam filter and the directory; after the fork, since no
 * LMDB environment may cross a fork(). */
static void open_store(struct server *srv)
{
	struct store_options so = {
	    .map_size = srv->common.store_map_size,
	    .map_max = srv->common.store_map_max,
	    .compress_level = srv->common.store_compression_level ? (int)srv->common.store_compression_level : -1,
	};
	const char *sdir = srv->common.store_directory;
	char err[512];

	mk_mkdirs(sdir, 0700);
	if (store_open(sdir, &so, &srv->store, err, sizeof(err)) != 0)
		log_fatal("cannot open the store: %s", err);
	if (spam_attach(srv->store, srv->cfg) < 0)
		log_fatal("the spam filter settings are unusable");
	fts_indexer_start(srv->store); /* new mail into the words index (index/fts.h) */
	if (sieve_attach(srv->cfg, err, sizeof(err)) < 0 || quota_attach(srv->cfg, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	if (directory_open(srv->cfg, srv->store, &srv->dir, err, sizeof(err)) < 0)
		log_fatal("cannot open the user directory: %s", err);
}

static struct event *new_event(struct server *srv, evutil_socket_t fd, short what,
			       event_callback_fn cb, void *arg)
{
	struct event *ev = event_new(srv->base, fd, what, cb, arg);

	if (ev == NULL)
		log_fatal("out of memory (event_new)");
	return ev;
}

/* libevent, the resolver, TLS, the worker threads, and the events of the
 * listeners, the signals and the greylist's hourly clean-up. */
static void start_loop(struct server *srv, struct daemon *d)
{
	char err[512];

	if (evthread_use_pthreads() < 0)
		log_fatal("libevent without thread support");
	srv->base = event_base_new();
	if (srv->base == NULL)
		log_fatal("cannot start libevent");
	if (dns_start(srv, err, sizeof(err)) < 0 || smtpin_tls_init(srv, err, sizeof(err)) < 0 ||
	    authres_init(srv, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	if (jobs_start(srv, (int)srv->p.smtpd_delivery_threads, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	for (size_t i = 0; i < srv->nlisteners; i++) {
		struct listener *l = &srv->listeners[i];
		l->ev = new_event(srv, l->fd, EV_READ | EV_PERSIST, on_accept, l);
		event_add(l->ev, NULL);
	}
	srv->sig_ev = new_event(srv, d->signal_fd, EV_READ | EV_PERSIST, on_signal_fd, d);
	event_add(srv->sig_ev, NULL);
	limits_start(srv);
	srv->gc_timer = new_event(srv, -1, EV_PERSIST, on_gc, srv);
	struct timeval hour = {3600, 0};
	event_add(srv->gc_timer, &hour);
}

static const char *kind_name(enum listener_kind kind)
{
	return kind == LISTEN_SMTP	    ? "smtp"
	       : kind == LISTEN_SMTPS	    ? "smtps"
	       : kind == LISTEN_LMTP	    ? "lmtp"
	       : kind == LISTEN_SUBMISSION  ? "submission"
	       : kind == LISTEN_SUBMISSIONS ? "submissions"
					    : "policy";
}

static void stop(struct server *srv)
{
	jobs_stop(srv);
	for (size_t i = 0; i < srv->nlisteners; i++) {
		if (srv->listeners[i].ev)
			event_free(srv->listeners[i].ev);
		close(srv->listeners[i].fd);
		if (strncmp(srv->listeners[i].spec, "unix:", 5) == 0)
			unlink(srv->listeners[i].spec + 5);
	}
	limits_fini(srv);
	dir_close(&srv->dir);
	fts_indexer_stop();
	store_close(&srv->store);
	tls_holder_destroy(&srv->tls);
}

int main(int argc, char **argv)
{
	static struct daemon d;
	static struct server srv_storage;
	struct server *srv = &srv_storage;
	char err[512];

	daemon_init(&d, &spec, argc, argv);
	d.ctx = srv;
	srv->daemon = &d;
	srv->cfg = d.cfg;
	common_params_bind(srv->cfg, &srv->common);
	smtpin_params_bind(srv->cfg, &srv->p);
	daemon_log_open(&d, srv->common.syslog_name, srv->common.log_target);
	daemon_metrics_open(&d, srv->common.run_directory, srv->common.mail_owner);
	log_set_hook(maillog_metrics_hook); /* count what is logged (index/maillog.h) */
	if (smtpin_read_settings(srv, err, sizeof(err)) < 0)
		log_fatal("%s: %s", d.conf_path, err);
	add_every_listener(srv);
	daemon_detach(&d);
	/* the shared connection table, made (and given to mail_owner) as root */
	if (limits_init(srv, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	daemon_drop_privileges(&d, srv->common.mail_owner);
	daemon_write_pidfile(&d, srv->p.smtpd_pid_file);
	open_store(srv);
	start_loop(srv, &d);

	log_info("daemon started -- mailkeep smtpin, %zu listener(s)", srv->nlisteners);
	for (size_t i = 0; i < srv->nlisteners; i++) {
		log_info("listening on %s (%s)", srv->listeners[i].spec,
			 kind_name(srv->listeners[i].kind));
		/* AUTH needs TLS there: without a certificate nobody can send */
		if (srv->listeners[i].kind == LISTEN_SUBMISSION && !smtpin_tls_ready(srv))
			log_warn("%s: submission without TLS (smtpd_tls_security_level, "
				 "smtpd_tls_cert_file): clients cannot authenticate until a "
				 "certificate is loaded (SIGHUP)",
				 srv->listeners[i].spec);
	}
	event_base_dispatch(srv->base);
	stop(srv);
	log_info("terminated");
	return 0;
}
