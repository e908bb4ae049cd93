/* mailkeep-imapd — the IMAP server. Binds imapd_listen (STARTTLS) and
 * imapd_tls_listen (implicit TLS), drops privileges, then runs one thread
 * per connection (doc/imapd.md says why). SIGTERM/SIGINT stop it; SIGHUP
 * loads the TLS certificate and key again for new connections (a renewal),
 * while open sessions keep the context they started with.
 *
 *   mailkeep-imapd [-c CONF] [-f] [-v] [--help] [--version]   (lib/daemon.h)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "imapd/managesieve.h"
#include "imapd/limits.h"
#include "imapd/notify.h"
#include "imapd/params.h"
#include "imapd/session.h"
#include "index/dir.h"
#include "index/params.h"
#include "index/quota.h"
#include "index/sieve_deliver.h"
#include "index/spam.h"
#include "lib/daemon.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/tls.h"
#include "lib/xmalloc.h"

#define MAX_LISTENERS 16

static int stopping;
static atomic_int active;

static struct imapd d;

/* SIGHUP: a certificate renewal; open sessions keep the context they hold. */
static void on_reload(void *ctx)
{
	(void)ctx;
	if (stopping)
		return;
	log_info("SIGHUP: loading the TLS certificate again (other changes to the "
		 "configuration take a restart of mailkeep-imapd)");
	tls_holder_reload(&d.tls, NULL);
}

static void on_stop(void *ctx, int sig)
{
	(void)ctx;
	(void)sig;
	stopping = 1;
}

static const struct daemon_spec spec = {
    .name = "imapd",
    .help = "The IMAP server: binds imapd_listen (STARTTLS) and imapd_tls_listen (implicit\n"
	    "TLS), drops to mail_owner, and serves one thread per connection. SIGHUP\n"
	    "loads the TLS certificate again; SIGTERM stops it. See mailkeep-imapd(8).",
    .signals = 1,
    .load = params_load,
    .on_reload = on_reload,
    .on_stop = on_stop,
};

struct conn_arg {
	struct imapd *d;
	int fd;
	int tls; /* 2: a ManageSieve connection */
};

static void *conn_thread(void *p)
{
	struct conn_arg *a = p;
	if (a->tls == 2)
		managesieve_run(a->d, a->fd);
	else
		session_run(a->d, a->fd, a->tls);
	free(a);
	atomic_fetch_sub(&active, 1);
	return NULL;
}

/* The settings the sessions read, from imapd's typed ones. */
static void read_settings(const struct imapd_params *p)
{
	pthread_mutex_init(&d.views_lock, NULL);
	d.max_line = (size_t)p->imap_max_line_length;
	d.max_literal = p->imap_max_literal_size;
	d.idle_interval = (int)p->imap_idle_interval;
	d.timeout = (int)p->imap_client_timeout;
	d.login_timeout = (int)p->imap_login_timeout;
	d.max_cmds_per_sec = (unsigned)p->imap_max_commands_per_second;
	if (p->imapd_plaintext_networks.broken)
		log_fatal("imapd_plaintext_networks: cannot read the setting");
	d.plaintext_nets = p->imapd_plaintext_networks.item;
	d.nplaintext_nets = p->imapd_plaintext_networks.n;
}

/* Listeners first (they may need root); the last pollfd is the signals'. */
static size_t add_listeners(const struct imapd_params *p, struct pollfd *lfd, int *ltls)
{
	const char *names[3] = {"imapd_listen", "imapd_tls_listen", "managesieve_listen"};
	const struct config_list *lists[3] = {&p->imapd_listen, &p->imapd_tls_listen, &p->managesieve_listen};
	char err[512];
	size_t nl = 0;

	/* kind 0 IMAP, 1 IMAP over TLS, 2 ManageSieve (a listener of imapd: the
	 * same users, TLS certificate and login penalty) */
	for (int t = 0; t < 3; t++) {
		for (size_t i = 0; i < lists[t]->n && nl < MAX_LISTENERS; i++) {
			int fd = net_listen(lists[t]->item[i], LISTEN_BACKLOG, err, sizeof(err));
			if (fd < 0)
				log_fatal("%s = %s: %s", names[t], lists[t]->item[i], err);
			lfd[nl].fd = fd;
			lfd[nl].events = POLLIN;
			ltls[nl] = t;
			nl++;
		}
	}
	if (nl == 0)
		log_fatal("neither imapd_listen nor imapd_tls_listen is set: nothing to do");
	return nl;
}

static void load_tls(const struct imapd_params *p)
{
	const char *cert = p->imapd_tls_cert_file, *key = p->imapd_tls_key_file;
	char err[512];

	tls_holder_init(&d.tls, cert, key);
	if (cert && key && access(cert, R_OK) == 0 && access(key, R_OK) == 0) {
		if (tls_holder_load(&d.tls, err, sizeof(err)) < 0)
			log_fatal("TLS: %s", err);
		log_info("TLS certificate %s: %s", cert, err);
	} else {
		log_warn("no TLS certificate (%s): no STARTTLS or imaps until a SIGHUP loads one; "
			 "only local clients can log in",
			 cert ? cert : "unset");
	}
}

static void open_store(const struct common_params *common, struct config *cfg)
{
	struct store_options so = {.map_size = common->store_map_size,
				   .map_max = common->store_map_max};
	char err[512];

	if (store_open(common->store_directory, &so, &d.store, err, sizeof(err)) != 0)
		log_fatal("store: %s", err);
	/* MOVE and COPY into or out of Junk retrain the spam filter (store hook) */
	if (spam_attach(d.store, cfg) < 0)
		log_fatal("spam filter settings are unusable");
	char qerr[256];
	if (quota_attach(cfg, qerr, sizeof(qerr)) < 0 || sieve_attach(cfg, qerr, sizeof(qerr)) < 0)
		log_fatal("%s", qerr);
	if (directory_open(cfg, d.store, &d.dir, err, sizeof(err)) < 0)
		log_fatal("user directory: %s", err);
	if (notify_start(d.store) < 0)
		log_warn("cannot watch the store for changes: IDLE clients will hear of them "
			 "within a second");
}

/* One accepted connection: a thread, unless a limit says no (imap_max_connections,
 * the client's limits, the reserve; limits.c makes room when it can). */
static void serve(int fd, int tls, pthread_attr_t *attr)
{
	if (imap_limits_accept(fd, tls, atomic_load(&active)) < 0)
		return;
	struct conn_arg *a = xmalloc(sizeof(*a));
	a->d = &d;
	a->fd = fd;
	a->tls = tls;
	atomic_fetch_add(&active, 1);
	pthread_t th;
	if (pthread_create(&th, attr, conn_thread, a) != 0) {
		atomic_fetch_sub(&active, 1);
		imap_limits_close(fd);
		close(fd);
		free(a);
		log_warn("cannot start a thread for a connection");
	}
}

int main(int argc, char **argv)
{
	static struct daemon dm;
	static struct common_params common;
	static struct imapd_params p;
	struct pollfd lfd[MAX_LISTENERS + 1];
	int ltls[MAX_LISTENERS];
	pthread_attr_t attr;

	/* the signals are blocked from here on, in every thread made later
	 * (sessions, store watcher, LDAP), and read from dm.signal_fd */
	daemon_init(&dm, &spec, argc, argv);
	d.cfg = dm.cfg;
	common_params_bind(d.cfg, &common);
	imapd_params_bind(d.cfg, &p);
	daemon_log_open(&dm, common.syslog_name, common.log_target);
	read_settings(&p);
	size_t nl = add_listeners(&p, lfd, ltls);
	lfd[nl].fd = dm.signal_fd;
	lfd[nl].events = POLLIN;
	load_tls(&p);
	char err[512];
	/* the shared connection table, made (and given to mail_owner) as root */
	if (imap_limits_init(&common, &p, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	daemon_drop_privileges(&dm, common.mail_owner);
	open_store(&common, d.cfg);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	log_info("daemon started: %zu listener(s)%s", nl,
		 tls_holder_ready(&d.tls) ? ", TLS on" : "");

	while (!stopping) {
		int r = poll(lfd, nl + 1, 1000);
		if (r < 0 && errno != EINTR)
			log_fatal("poll: %s", strerror(errno));
		if (r > 0 && (lfd[nl].revents & POLLIN))
			daemon_signal_dispatch(&dm);
		imap_limits_tick();
		for (size_t i = 0; r > 0 && i < nl && !stopping; i++) {
			if (!(lfd[i].revents & POLLIN))
				continue;
			int fd = accept4(lfd[i].fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0)
				serve(fd, ltls[i], &attr);
		}
	}
	log_info("daemon stopping");
	for (size_t i = 0; i < nl; i++)
		close(lfd[i].fd);
	/* Sessions end with the process; every answered change is durable already. */
	return 0;
}
