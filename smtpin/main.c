/* mailkeep-smtpin — inbound SMTP and LMTP into the store.
 *
 *   mailkeep-smtpin [-c CONF] [-f]
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

#include "index/dirs.h"
#include "index/params.h"
#include "index/retry.h"
#include "index/spam.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/util.h"
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

static int add_listeners(struct server *srv, const char *setting, enum listener_kind kind,
			 char *err, size_t errsize)
{
	char **items = NULL;
	size_t n = 0;

	if (config_get_list(srv->cfg, setting, &items, &n) < 0) {
		snprintf(err, errsize, "%s: unknown setting", setting);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		srv->listeners =
		    realloc(srv->listeners, (srv->nlisteners + 1) * sizeof(*srv->listeners));
		if (srv->listeners == NULL)
			log_fatal("out of memory");
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
		l->fd = net_listen(items[i], 128, e, sizeof(e));
		if (l->fd < 0) {
			snprintf(err, errsize, "%s: %s", setting, e);
			free(items);
			return -1;
		}
		srv->nlisteners++;
	}
	free(items);
	return 0;
}

static int read_settings(struct server *srv, char *err, size_t errsize)
{
	struct config *cfg = srv->cfg;
	const char *v;

	mk_strlcpy(srv->hostname, config_get(cfg, "myhostname"), sizeof(srv->hostname));
	mk_strlcpy(srv->banner, config_get(cfg, "smtpd_banner"), sizeof(srv->banner));
	srv->timeout = config_get_time(cfg, "smtpd_timeout");
	srv->line_max = (size_t)config_get_int(cfg, "line_length_limit");
	srv->size_limit = config_get_size(cfg, "message_size_limit");
	srv->rcpt_limit = (int)config_get_int(cfg, "smtpd_recipient_limit");
	srv->soft_errors = (int)config_get_int(cfg, "smtpd_soft_error_limit");
	srv->hard_errors = (int)config_get_int(cfg, "smtpd_hard_error_limit");
	srv->conn_per_client = (int)config_get_int(cfg, "smtpd_client_connection_count_limit");
	srv->conn_limit = (int)config_get_int(cfg, "smtpd_connection_limit");
	srv->helo_required = config_get_bool(cfg, "smtpd_helo_required");
	srv->strict = config_get_bool(cfg, "strict_rfc821_envelopes");
	srv->delay_reject = config_get_bool(cfg, "smtpd_delay_reject");
	srv->forbid_bare = config_get_bool(cfg, "smtpd_forbid_bare_newline");
	srv->reject_unlisted = config_get_bool(cfg, "smtpd_reject_unlisted_recipient");
	srv->sasl = config_get_bool(cfg, "smtpd_sasl_auth_enable");
	srv->tls_auth_only = config_get_bool(cfg, "smtpd_tls_auth_only");
	srv->tls_received = config_get_bool(cfg, "smtpd_tls_received_header");
	v = config_get(cfg, "smtpd_tls_security_level");
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
	config_get_list(cfg, "mynetworks", &srv->mynetworks, &srv->nmynetworks);
	for (size_t i = 0; i < srv->nmynetworks; i++) {
		struct net_cidr c;
		if (net_cidr_parse(srv->mynetworks[i], &c) < 0) {
			snprintf(err, errsize, "mynetworks: bad network \"%s\"",
				 srv->mynetworks[i]);
			return -1;
		}
	}
	config_get_list(cfg, "mydestination", &srv->mydest, &srv->nmydest);
	srv->policy_timeout = config_get_time(cfg, "smtpd_policy_service_timeout");
	srv->retry_window = (int64_t)config_get_time(cfg, "smtpd_retry_dedup_window");
	mk_strlcpy(srv->policy_default, config_get(cfg, "smtpd_policy_service_default_action"),
		   sizeof(srv->policy_default));
	srv->greylist.delay = (int64_t)config_get_time(cfg, "greylist_delay");
	srv->greylist.retry_window = (int64_t)config_get_time(cfg, "greylist_retry_window");
	srv->greylist.max_age = (int64_t)config_get_time(cfg, "greylist_max_age");
	srv->greylist.auto_allow = (uint32_t)config_get_int(cfg, "greylist_auto_allow");
	mk_strlcpy(srv->greylist_text, config_get(cfg, "greylist_text"),
		   sizeof(srv->greylist_text));
	if (restrictions_load(srv, err, errsize) < 0 || postscreen_load(srv, err, errsize) < 0)
		return -1;
	return 0;
}

void server_shutdown(struct server *srv)
{
	event_base_loopexit(srv->base, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;

	(void)what;
	if (sig == SIGHUP) {
		/* certificate renewal (certbot's deploy hook); sessions keep their context */
		log_info("SIGHUP: loading the TLS certificate again (other changes to the "
			 "configuration take a restart of mailkeep-smtpin)");
		smtpin_tls_reload(srv);
		return;
	}
	if (srv->stopping)
		return;
	log_info("terminating on signal %d", (int)sig);
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
	struct expire_job *j = calloc(1, sizeof(*j));

	(void)fd;
	(void)what;
	if (j == NULL)
		log_fatal("out of memory");
	j->srv = srv;
	job_submit(srv, expire_work, expire_done, j);
}

static void write_pidfile(struct server *srv)
{
	const char *path = config_get(srv->cfg, "smtpd_pid_file");
	char buf[32];

	if (path == NULL || *path == 0)
		return;
	char dir[512];
	mk_strlcpy(dir, path, sizeof(dir));
	char *slash = strrchr(dir, '/');
	if (slash != NULL && slash != dir) {
		*slash = 0;
		mk_mkdirs(dir, 0755);
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		log_warn("cannot write %s: %s", path, strerror(errno));
		return;
	}
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (mk_write_all(fd, buf, (size_t)n) < 0)
		log_warn("cannot write %s: %s", path, strerror(errno));
	close(fd);
}

static void usage(void)
{
	fprintf(stderr, "usage: mailkeep-smtpin [-c CONF] [-f]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *conf = getenv("MAILKEEP_CONF");
	int foreground = 0, opt;
	char err[512];
	static char ident[128];
	struct server srv_storage, *srv = &srv_storage;

	memset(srv, 0, sizeof(*srv));
	if (conf == NULL)
		conf = "/etc/mailkeep/mailkeep.conf";
	while ((opt = getopt(argc, argv, "c:fh")) != -1) {
		switch (opt) {
		case 'c':
			conf = optarg;
			break;
		case 'f':
			foreground = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	signal(SIGPIPE, SIG_IGN);
	/* a SIGHUP before the event loop handles it (below) must not kill us */
	signal(SIGHUP, SIG_IGN);

	srv->cfg = params_load(conf, err, sizeof(err));
	if (srv->cfg == NULL) {
		fprintf(stderr, "mailkeep-smtpin: %s\n", err);
		return 1;
	}
	const char *target = config_get(srv->cfg, "log_target");
	snprintf(ident, sizeof(ident), "%s/smtpin", config_get(srv->cfg, "syslog_name"));
	if (getenv("MAILKEEP_VERBOSE"))
		log_set_verbose(1);
	log_open(ident, foreground || (target && strcmp(target, "stderr") == 0) ? LOG_TO_STDERR
										: LOG_TO_SYSLOG);

	if (read_settings(srv, err, sizeof(err)) < 0)
		log_fatal("%s: %s", conf, err);
	if (add_listeners(srv, "smtpd_listen", LISTEN_SMTP, err, sizeof(err)) < 0 ||
	    add_listeners(srv, "smtpd_tls_wrappermode_listen", LISTEN_SMTPS, err, sizeof(err)) <
		0 ||
	    add_listeners(srv, "lmtp_listen", LISTEN_LMTP, err, sizeof(err)) < 0 ||
	    add_listeners(srv, "greylist_policy_listen", LISTEN_POLICY, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	if (!foreground && daemon(0, 0) < 0)
		log_fatal("daemon: %s", strerror(errno));
	if (limits_init(srv, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	if (net_drop_privileges(config_get(srv->cfg, "mail_owner"), err, sizeof(err)) < 0)
		log_fatal("%s", err);
	write_pidfile(srv);

	/* the store is opened after fork: no LMDB environment crosses a fork() */
	struct store_options so = {
	    .map_size = config_get_size(srv->cfg, "store_map_size"),
	    .map_max = config_get_size(srv->cfg, "store_map_max"),
	};
	const char *sdir = config_get(srv->cfg, "store_directory");
	mk_mkdirs(sdir, 0700);
	if (store_open(sdir, &so, &srv->store, err, sizeof(err)) != 0)
		log_fatal("cannot open the store: %s", err);
	if (spam_attach(srv->store, srv->cfg) < 0)
		log_fatal("the spam filter settings are unusable");
	if (directory_open(srv->cfg, srv->store, &srv->dir, err, sizeof(err)) < 0)
		log_fatal("cannot open the user directory: %s", err);

	if (evthread_use_pthreads() < 0)
		log_fatal("libevent without thread support");
	srv->base = event_base_new();
	if (srv->base == NULL)
		log_fatal("cannot start libevent");
	if (dns_start(srv, err, sizeof(err)) < 0 || smtpin_tls_init(srv, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	if (jobs_start(srv, (int)config_get_int(srv->cfg, "smtpd_delivery_threads"), err,
		       sizeof(err)) < 0)
		log_fatal("%s", err);
	for (size_t i = 0; i < srv->nlisteners; i++) {
		struct listener *l = &srv->listeners[i];
		l->ev = event_new(srv->base, l->fd, EV_READ | EV_PERSIST, on_accept, l);
		event_add(l->ev, NULL);
	}
	srv->sig_term = evsignal_new(srv->base, SIGTERM, on_signal, srv);
	srv->sig_int = evsignal_new(srv->base, SIGINT, on_signal, srv);
	srv->sig_hup = evsignal_new(srv->base, SIGHUP, on_signal, srv);
	event_add(srv->sig_term, NULL);
	event_add(srv->sig_int, NULL);
	event_add(srv->sig_hup, NULL);
	limits_start(srv);
	srv->gc_timer = event_new(srv->base, -1, EV_PERSIST, on_gc, srv);
	struct timeval hour = {3600, 0};
	event_add(srv->gc_timer, &hour);

	log_info("daemon started -- mailkeep smtpin, %zu listener(s)", srv->nlisteners);
	for (size_t i = 0; i < srv->nlisteners; i++)
		log_info("listening on %s (%s)", srv->listeners[i].spec,
			 srv->listeners[i].kind == LISTEN_SMTP	  ? "smtp"
			 : srv->listeners[i].kind == LISTEN_SMTPS ? "smtps"
			 : srv->listeners[i].kind == LISTEN_LMTP  ? "lmtp"
								  : "policy");
	event_base_dispatch(srv->base);

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
	store_close(&srv->store);
	tls_holder_destroy(&srv->tls);
	log_info("terminated");
	return 0;
}
