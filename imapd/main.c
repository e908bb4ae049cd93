/* mailkeep-imapd — the IMAP server. Binds imapd_listen (STARTTLS) and
 * imapd_tls_listen (implicit TLS), drops privileges, then runs one thread
 * per connection (doc/imapd.md says why). SIGTERM/SIGINT stop it; SIGHUP
 * loads the TLS certificate and key again for new connections (a renewal),
 * while open sessions keep the context they started with.
 *
 *   mailkeep-imapd [-c CONF] [-f] [-v]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "imapd/limits.h"
#include "imapd/notify.h"
#include "imapd/session.h"
#include "index/dirs.h"
#include "index/params.h"
#include "index/spam.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/tls.h"

#define MAX_LISTENERS 16

static volatile sig_atomic_t stopping, reload;
static atomic_int active;

/* Runs only in the main thread, inside ppoll (every other thread has the
 * signals blocked), so the loop sees the flags at once. */
static void on_signal(int sig)
{
	if (sig == SIGHUP)
		reload = 1;
	else
		stopping = 1;
}

struct conn_arg {
	struct imapd *d;
	int fd;
	int tls;
};

static void *conn_thread(void *p)
{
	struct conn_arg *a = p;
	session_run(a->d, a->fd, a->tls);
	free(a);
	atomic_fetch_sub(&active, 1);
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: mailkeep-imapd [-c CONF] [-f] [-v]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *conf = getenv("MAILKEEP_CONF");
	int foreground = 0, verbose = 0, c;
	char err[512];
	if (conf == NULL)
		conf = "/etc/mailkeep/mailkeep.conf";
	while ((c = getopt(argc, argv, "c:fv")) != -1) {
		switch (c) {
		case 'c': conf = optarg; break;
		case 'f': foreground = 1; break;
		case 'v': verbose = 1; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	/* Signals stay blocked but in the main loop's ppoll: the threads made from
	 * here on (sessions, store watcher, LDAP) inherit the mask, and a SIGHUP
	 * or SIGTERM that comes before the loop waits for it instead of killing. */
	sigset_t sigs, waitmask;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, &waitmask);
	sigdelset(&waitmask, SIGHUP);
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);
	struct config *cfg = params_load(conf, err, sizeof(err));
	if (cfg == NULL) {
		fprintf(stderr, "mailkeep-imapd: %s\n", err);
		return 1;
	}
	const char *target = config_get(cfg, "log_target");
	log_open("mailkeep/imapd", foreground || (target && strcmp(target, "stderr") == 0) ? LOG_TO_STDERR
											     : LOG_TO_SYSLOG);
	log_set_verbose(verbose);

	static struct imapd d;
	d.cfg = cfg;
	pthread_mutex_init(&d.views_lock, NULL);
	d.max_line = (size_t)config_get_size(cfg, "imap_max_line_length");
	d.max_literal = config_get_size(cfg, "imap_max_literal_size");
	d.idle_interval = (int)config_get_time(cfg, "imap_idle_interval");
	d.timeout = (int)config_get_time(cfg, "imap_client_timeout");
	d.login_timeout = (int)config_get_time(cfg, "imap_login_timeout");
	d.max_cmds_per_sec = (unsigned)config_get_int(cfg, "imap_max_commands_per_second");
	if (config_get_list(cfg, "imapd_plaintext_networks", &d.plaintext_nets, &d.nplaintext_nets) < 0)
		log_fatal("imapd_plaintext_networks: cannot read the setting");

	/* listeners first (they may need root), then TLS files, then drop */
	struct pollfd lfd[MAX_LISTENERS];
	int ltls[MAX_LISTENERS];
	size_t nl = 0;
	const char *names[2] = {"imapd_listen", "imapd_tls_listen"};
	for (int t = 0; t < 2; t++) {
		char **items;
		size_t n;
		if (config_get_list(cfg, names[t], &items, &n) < 0)
			continue;
		for (size_t i = 0; i < n && nl < MAX_LISTENERS; i++) {
			int fd = net_listen(items[i], 128, err, sizeof(err));
			if (fd < 0)
				log_fatal("%s = %s: %s", names[t], items[i], err);
			lfd[nl].fd = fd;
			lfd[nl].events = POLLIN;
			ltls[nl] = t;
			nl++;
		}
		free(items);
	}
	if (nl == 0)
		log_fatal("neither imapd_listen nor imapd_tls_listen is set: nothing to do");
	const char *cert = config_get(cfg, "imapd_tls_cert_file"), *key = config_get(cfg, "imapd_tls_key_file");
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
	if (imap_limits_init(cfg, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	if (net_drop_privileges(config_get(cfg, "mail_owner"), err, sizeof(err)) < 0)
		log_fatal("%s", err);

	struct store_options so = {.map_size = config_get_size(cfg, "store_map_size"),
				   .map_max = config_get_size(cfg, "store_map_max")};
	if (store_open(config_get(cfg, "store_directory"), &so, &d.store, err, sizeof(err)) != 0)
		log_fatal("store: %s", err);
	/* MOVE and COPY into or out of Junk retrain the spam filter (store hook) */
	if (spam_attach(d.store, cfg) < 0)
		log_fatal("spam filter settings are unusable");
	if (directory_open(cfg, d.store, &d.dir, err, sizeof(err)) < 0)
		log_fatal("user directory: %s", err);

	if (notify_start(d.store) < 0)
		log_warn("cannot watch the store for changes: IDLE clients will hear of them within a second");
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	log_info("daemon started: %zu listener(s)%s", nl,
		 tls_holder_ready(&d.tls) ? ", TLS on" : "");

	while (!stopping) {
		struct timespec second = {1, 0};
		int r = ppoll(lfd, nl, &second, &waitmask);
		if (r < 0 && errno != EINTR)
			log_fatal("poll: %s", strerror(errno));
		if (reload && !stopping) {
			reload = 0;
			/* certificate renewal: open sessions keep the context they hold */
			log_info("SIGHUP: loading the TLS certificate again (other changes to the "
				 "configuration take a restart of mailkeep-imapd)");
			tls_holder_reload(&d.tls, NULL);
		}
		imap_limits_tick();
		for (size_t i = 0; r > 0 && i < nl; i++) {
			if (!(lfd[i].revents & POLLIN))
				continue;
			int fd = accept4(lfd[i].fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0)
				continue;
			/* imap_max_connections, per-client limits, the reserve, room
			 * made when full (limits.c) */
			if (imap_limits_accept(fd, ltls[i], atomic_load(&active)) < 0)
				continue;
			struct conn_arg *a = malloc(sizeof(*a));
			if (a == NULL)
				abort();
			a->d = &d;
			a->fd = fd;
			a->tls = ltls[i];
			atomic_fetch_add(&active, 1);
			pthread_t th;
			if (pthread_create(&th, &attr, conn_thread, a) != 0) {
				atomic_fetch_sub(&active, 1);
				imap_limits_close(fd);
				close(fd);
				free(a);
				log_warn("cannot start a thread for a connection");
			}
		}
	}
	log_info("daemon stopping");
	for (size_t i = 0; i < nl; i++)
		close(lfd[i].fd);
	/* Sessions end with the process; every answered change is durable already. */
	return 0;
}
