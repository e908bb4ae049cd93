/* run_watch — what `mailkeep run` does besides starting and restarting the
 * services (tools/cmd_daemon.c): it tells systemd when every service answers
 * (Type=notify: READY=1, STATUS=..., STOPPING=1; lib/sdnotify.h), serves the
 * instance's counters in Prometheus's text format on metrics_listen, and adds
 * a sample of the store's size to its history every few hours
 * (tools/store_history.h). One thread: the supervisor's loop waits in
 * run_watch_tick instead of sleeping. */
#ifndef MK_TOOLS_RUN_WATCH_H
#define MK_TOOLS_RUN_WATCH_H

#include <stddef.h>
#include <sys/types.h>

#include "tools/cli.h"

struct run_watch;

/* A service as the supervisor sees it now. */
struct run_watch_svc {
	const char *name; /* "smtpin" */
	const char *bin;  /* "mailkeep-smtpin" */
	int installed;	  /* run starts it */
	pid_t pid;	  /* 0: not running now */
};

/* Binds metrics_listen (a port that cannot be bound is an error: err says
 * which and why) and opens the shared counters. Returns NULL with err. */
struct run_watch *run_watch_start(struct cli *cli, char *err, size_t errsize);
/* Waits up to ms milliseconds, answering scrapes meanwhile; tells systemd
 * READY=1 once every installed service answers, and notes restarts. */
void run_watch_tick(struct run_watch *w, int ms, const struct run_watch_svc *svc, size_t n);
/* SIGHUP was passed on to the services. */
void run_watch_reloading(struct run_watch *w);
/* STOPPING=1; closes the endpoint. */
void run_watch_stop(struct run_watch **w);

#endif
