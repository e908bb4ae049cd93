/* run_watch — readiness, the metrics endpoint and the store's size history
 * for `mailkeep run` (see run_watch.h).
 *
 * The endpoint is a minimal HTTP/1.0 server, one request per connection,
 * answered inline in the supervisor's loop: a scrape every 15 s is the load
 * it is for. A request is read for at most 2 s and 4 KB; anything but
 * "GET /metrics" (or "GET /") gets 404. Keep metrics_listen on localhost (or
 * behind a firewall): it tells how much mail an instance gets, never what.
 */
#define _GNU_SOURCE 1
#include "tools/run_watch.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "lib/metrics.h"
#include "lib/net.h"
#include "lib/sdnotify.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "tools/run_guard.h"
#include "tools/store_history.h"
#include "tools/svc_check.h"

#define LISTEN_MAX 8
#define SVC_MAX 8
#define SAMPLE_EVERY (6 * 3600)
#define REQUEST_MAX 4096

struct run_watch {
	struct cli *cli;
	int fds[LISTEN_MAX];
	size_t nfds;
	struct metrics *m;
	int ready;
	double next_check;
	time_t next_sample;
	pid_t last_pid[SVC_MAX];
	int up[SVC_MAX]; /* answered at the last check */
	struct run_watch_svc svc[SVC_MAX];
	size_t nsvc;
};

struct run_watch *run_watch_start(struct cli *cli, char *err, size_t errsize)
{
	struct run_watch *w = xcalloc(1, sizeof(*w));
	const struct config_list *l = &cli->common.metrics_listen;
	char e[256];

	w->cli = cli;
	for (size_t i = 0; i < l->n; i++) {
		if (w->nfds == LISTEN_MAX)
			break;
		int fd = net_listen(l->item[i], 16, e, sizeof(e));
		if (fd < 0) {
			snprintf(err, errsize, "metrics_listen = %s: %s", l->item[i], e);
			run_watch_stop(&w);
			return NULL;
		}
		w->fds[w->nfds++] = fd;
	}
	const char *rundir = cli->common.run_directory;
	if (rundir != NULL && *rundir != 0) {
		char path[4200];
		mk_mkdirs(rundir, 0755);
		snprintf(path, sizeof(path), "%s/%s", rundir, METRICS_FILE);
		if (metrics_open(path, cli->common.mail_owner, 0, &w->m, e, sizeof(e)) < 0)
			cli_warn("run: counters not kept: %s", e);
	}
	w->next_sample = time(NULL); /* one sample at the start */
	return w;
}

/* connect: 1 to connect to each listener; 0 to look for the listening
 * sockets only (readiness and scrapes: a connection is a "connect from" line
 * in the mail log, five a second while a service starts would be noise). */
static int svc_up(struct run_watch *w, const struct run_watch_svc *s, int connect)
{
	if (s->pid <= 0 || kill(s->pid, 0) < 0)
		return 0;
	if (strcmp(s->bin, "mailkeep-fs") == 0) {
		const char *mp = w->cli->common.mount_point;
		struct statfs sfs;
		return mp != NULL && *mp != 0 && run_guard_mounted(mp) && statfs(mp, &sfs) == 0;
	}
	if (connect)
		return svc_all_answer(w->cli->cfg, s->bin, 0.5);
	struct svc_listener l[16];
	size_t n = svc_listeners(w->cli->cfg, s->bin, l, 16);
	for (size_t i = 0; i < n && i < 16; i++)
		if (!svc_listening(l[i].spec))
			return 0;
	return 1;
}

static void write_metrics(struct run_watch *w, FILE *out)
{
	if (w->m != NULL) {
		struct metrics_value *v = xcalloc(METRICS_SLOTS, sizeof(*v));
		size_t n = metrics_snapshot(w->m, v, METRICS_SLOTS);
		metrics_write_text(v, n < METRICS_SLOTS ? n : METRICS_SLOTS, out);
		free(v);
	}
	fprintf(out,
		"# HELP mailkeep_up 1 if the service runs and listens (the mount: is mounted and "
		"answers)\n"
		"# TYPE mailkeep_up gauge\n");
	for (size_t i = 0; i < w->nsvc; i++)
		if (w->svc[i].installed)
			fprintf(out, "mailkeep_up{service=\"%s\"} %d\n", w->svc[i].name,
				svc_up(w, &w->svc[i], 0));
	uint64_t bytes;
	if (store_size_now(w->cli->common.store_directory, &bytes) == 0)
		fprintf(out,
			"# HELP mailkeep_store_bytes size of the store's data file (data.mdb)\n"
			"# TYPE mailkeep_store_bytes gauge\nmailkeep_store_bytes %llu\n",
			(unsigned long long)bytes);
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static void serve(struct run_watch *w, int lfd)
{
	char req[REQUEST_MAX + 1], *body = NULL;
	size_t len = 0, blen = 0;
	struct timeval tv = {2, 0};
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (len < REQUEST_MAX) {
		ssize_t k = recv(fd, req + len, REQUEST_MAX - len, 0);
		if (k <= 0)
			break;
		len += (size_t)k;
		req[len] = '\0';
		if (strstr(req, "\r\n\r\n") != NULL || strstr(req, "\n\n") != NULL)
			break;
	}
	req[len] = '\0';
	int ok = strncmp(req, "GET /metrics ", 13) == 0 || strncmp(req, "GET / ", 6) == 0 ||
		 strncmp(req, "GET /metrics?", 13) == 0;
	FILE *f = open_memstream(&body, &blen);
	if (f == NULL) {
		close(fd);
		return;
	}
	if (ok)
		write_metrics(w, f);
	else
		fputs("not found: the counters are at /metrics\n", f);
	fclose(f);
	char head[256];
	int hn =
	    snprintf(head, sizeof(head),
		     "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		     ok ? "200 OK" : "404 Not Found", blen);
	/* send, not write: a client gone already must not SIGPIPE the supervisor */
	if (send_all(fd, head, (size_t)hn) == 0)
		(void)send_all(fd, body, blen);
	free(body);
	shutdown(fd, SHUT_WR);
	close(fd);
}

static void check_ready(struct run_watch *w)
{
	char status[512];
	size_t off = 0, installed = 0, up = 0;

	for (size_t i = 0; i < w->nsvc; i++) {
		if (!w->svc[i].installed)
			continue;
		installed++;
		w->up[i] = svc_up(w, &w->svc[i], 0);
		up += (size_t)w->up[i];
		int k = snprintf(status + off, sizeof(status) - off, "%s%s %s", off ? ", " : "",
				 w->svc[i].name, w->up[i] ? "up" : "starting");
		if (k > 0 && (size_t)k < sizeof(status) - off)
			off += (size_t)k;
	}
	if (installed > 0 && up == installed) {
		char msg[600];
		snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status);
		sdnotify(msg);
		fprintf(stderr, "mailkeep: run: ready: %s\n", status);
		w->ready = 1;
	}
}

void run_watch_tick(struct run_watch *w, int ms, const struct run_watch_svc *svc, size_t n)
{
	struct pollfd p[LISTEN_MAX];

	if (n > SVC_MAX)
		n = SVC_MAX;
	for (size_t i = 0; i < n; i++) {
		/* a new pid after one that was there: a restart */
		if (svc[i].pid > 0 && w->last_pid[i] > 0 && svc[i].pid != w->last_pid[i] &&
		    w->m != NULL) {
			char series[METRICS_NAME_MAX];
			snprintf(series, sizeof(series),
				 "mailkeep_service_restarts_total{service=\"%s\"}", svc[i].name);
			metrics_add(w->m, series, "services started again by mailkeep run", 1);
		}
		if (svc[i].pid > 0)
			w->last_pid[i] = svc[i].pid;
		w->svc[i] = svc[i];
	}
	w->nsvc = n;
	double now = mk_monotonic();
	if (!w->ready && now >= w->next_check) {
		check_ready(w);
		w->next_check = now + 0.2;
	}
	if (time(NULL) >= w->next_sample) {
		store_history_add(w->cli->common.data_directory, w->cli->common.store_directory,
				  (int64_t)time(NULL));
		w->next_sample = time(NULL) + SAMPLE_EVERY;
	}
	for (size_t i = 0; i < w->nfds; i++)
		p[i] = (struct pollfd){.fd = w->fds[i], .events = POLLIN};
	int r = poll(p, w->nfds, ms);
	for (size_t i = 0; r > 0 && i < w->nfds; i++)
		if (p[i].revents & POLLIN)
			serve(w, w->fds[i]);
}

void run_watch_reloading(struct run_watch *w)
{
	(void)w;
	sdnotify("STATUS=SIGHUP passed on to the services: they read the configuration again");
}

void run_watch_stop(struct run_watch **wp)
{
	struct run_watch *w = *wp;

	if (w == NULL)
		return;
	sdnotify("STOPPING=1");
	for (size_t i = 0; i < w->nfds; i++)
		close(w->fds[i]);
	metrics_close(&w->m);
	free(w);
	*wp = NULL;
}
