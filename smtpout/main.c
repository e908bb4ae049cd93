/* mailkeep-smtpout — the outbound queue manager and SMTP client.
 *
 *   mailkeep-smtpout [-c CONF] [-f] [-v] [--help] [--version]   (lib/daemon.h)
 *
 * Reads mailkeep.conf, drops to mail_owner, opens the store and the user
 * directory, and delivers what the queue holds (index/queue.h): to the
 * relayhost, or to each domain's MX, or into the store for our own domains.
 * It wakes when any process changes the store (the change notice: smtpin
 * queued a message, `mailkeep queue flush`) and when the next message is
 * due. SIGTERM: no new deliveries, transactions in flight finish and their
 * results are written, then it exits. See mailkeep-smtpout(8) and
 * doc/sending.md.
 */
#define _GNU_SOURCE 1
#include <event2/event.h>
#include <event2/thread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/daemon.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "smtpout/smtpout.h"

int commit_idle(struct server *srv);

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	qmgr_scan(arg);
}

static void on_scan(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	srv->scan_pending = 0;
	qmgr_scan(srv);
}

/* Another process (or our committer) changed the store: a scan soon, at
 * most one per 20 ms however many commits. */
static void on_watch(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)what;
	store_watch_drain((int)fd);
	if (!srv->scan_pending && !srv->stopping) {
		srv->scan_pending = 1;
		struct timeval tv = {0, 20000};
		evtimer_add(srv->scan_ev, &tv);
	}
}

void server_shutdown_check(struct server *srv)
{
	if (srv->stopping && srv->nconn_total == 0 && commit_idle(srv))
		event_base_loopexit(srv->base, NULL);
}

static void on_stop_timer(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	if (srv->nconn_total == 0 && commit_idle(srv)) {
		event_base_loopexit(srv->base, NULL);
		return;
	}
	conn_close_idle(srv);
}

static void on_stop(void *arg, int sig)
{
	struct server *srv = arg;
	static struct event *poll_ev;

	if (srv->stopping)
		return;
	log_info("terminating on signal %d", sig);
	srv->stopping = 1;
	evtimer_del(srv->timer_ev);
	evtimer_del(srv->scan_ev);
	/* tasks not started stay in the queue as they are (still due at restart) */
	for (struct dest *d = srv->dests; d; d = d->next) {
		struct task *t;
		while ((t = dest_next_task(d)) != NULL) {
			t->m->tasks_out--;
			free(t->r);
			free(t);
		}
	}
	conn_close_idle(srv);
	poll_ev = event_new(srv->base, -1, EV_PERSIST, on_stop_timer, srv);
	struct timeval tv = {0, 100000};
	event_add(poll_ev, &tv);
	/* transactions in flight get a minute; then we go regardless (their
	 * recipients are still in the queue, and are tried again at start) */
	struct timeval dl = {60, 0};
	event_base_loopexit(srv->base, &dl);
	server_shutdown_check(srv);
}

static void on_signal_fd(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	daemon_signal_dispatch(arg);
}

static const struct daemon_spec spec = {
    .name = "smtpout",
    .help = "The outbound queue manager and SMTP client: delivers the queue (submitted\n"
	    "mail, bounces, a backup MX's mail) to the relayhost or to each domain's MX,\n"
	    "retries with backoff, returns what cannot be delivered (RFC 3464).\n"
	    "SIGTERM lets transactions in flight finish, then exits.\n"
	    "See mailkeep-smtpout(8).",
    .signals = 1,
    .load = params_load,
    .on_stop = on_stop,
};

static struct event *new_event(struct server *srv, evutil_socket_t fd, short what,
			       event_callback_fn cb, void *arg)
{
	struct event *ev = event_new(srv->base, fd, what, cb, arg);

	if (ev == NULL)
		log_fatal("out of memory (event_new)");
	return ev;
}

int main(int argc, char **argv)
{
	static struct daemon d;
	static struct server srv_storage;
	struct server *srv = &srv_storage;
	char err[512];

	daemon_init(&d, &spec, argc, argv);
	d.ctx = srv;
	srv->cfg = d.cfg;
	common_params_bind(srv->cfg, &srv->common);
	smtpout_params_bind(srv->cfg, &srv->p);
	daemon_log_open(&d, srv->common.syslog_name, srv->common.log_target);
	if (qmgr_init(srv, err, sizeof(err)) < 0 || smtpout_tls_init(srv, err, sizeof(err)) < 0)
		log_fatal("%s: %s", d.conf_path, err);
	daemon_detach(&d);
	daemon_drop_privileges(&d, srv->common.mail_owner);
	daemon_write_pidfile(&d, srv->p.smtpout_pid_file);
	srand((unsigned)(time(NULL) ^ getpid()));

	struct store_options so = {.map_size = srv->common.store_map_size,
				   .map_max = srv->common.store_map_max};
	mk_mkdirs(srv->common.store_directory, 0700);
	if (store_open(srv->common.store_directory, &so, &srv->store, err, sizeof(err)) != 0)
		log_fatal("cannot open the store: %s", err);
	if (directory_open(srv->cfg, srv->store, &srv->dir, err, sizeof(err)) < 0)
		log_fatal("cannot open the user directory: %s", err);

	if (evthread_use_pthreads() < 0)
		log_fatal("libevent without thread support");
	srv->base = event_base_new();
	if (srv->base == NULL)
		log_fatal("cannot start libevent");
	if (resolver_start(srv, err, sizeof(err)) < 0 || commit_start(srv, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	srv->timer_ev = new_event(srv, -1, 0, on_timer, srv);
	srv->scan_ev = new_event(srv, -1, 0, on_scan, srv);
	srv->watch_fd = store_watch_open(srv->store);
	if (srv->watch_fd >= 0) {
		srv->watch_ev = new_event(srv, srv->watch_fd, EV_READ | EV_PERSIST, on_watch, srv);
		event_add(srv->watch_ev, NULL);
	} else {
		log_warn("no change notice from the store: new mail waits for the next timer");
	}
	srv->sig_ev = new_event(srv, d.signal_fd, EV_READ | EV_PERSIST, on_signal_fd, &d);
	event_add(srv->sig_ev, NULL);

	if (srv->relay_host[0])
		log_info("daemon started -- mailkeep smtpout, relayhost %s, TLS %s",
			 srv->p.relayhost, srv->p.smtp_tls_security_level);
	else
		log_info("daemon started -- mailkeep smtpout, direct to MX (port %lld), TLS %s",
			 srv->p.smtp_port, srv->p.smtp_tls_security_level);
	qmgr_scan(srv);
	event_base_dispatch(srv->base);
	srv->stopping = 1;
	commit_stop(srv);
	resolver_stop(srv);
	dir_close(&srv->dir);
	store_close(&srv->store);
	log_info("terminated");
	return 0;
}
