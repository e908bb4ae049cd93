/* smtpout — what the files of mailkeep-smtpout share: the queue manager
 * (Postfix's qmgr) and the SMTP client (Postfix's smtp) in one program.
 *
 *   main.c     start-up, the loop, the store's change notice, the timer
 *   qmgr.c     takes due messages from the queue (index/queue.h), splits their
 *              recipients by destination, hands tasks to connections,
 *              logs each result as Postfix does
 *   client.c   one SMTP connection: resolve, connect, EHLO, STARTTLS, AUTH,
 *              MAIL/RCPT/DATA pipelined, reused for the next message
 *   reply.c    the reply parser (pure; reply.h)
 *   resolve.c  MX, A and AAAA through libunbound, on the loop
 *   commit.c   one thread that writes results into the store, many at a
 *              time in one durable write, and finishes messages: bounces,
 *              delay warnings, the next try, removal; local recipients
 *
 * Threads: the loop (libevent) does all network and bookkeeping; the
 * committer thread does every store write and directory lookup; unbound
 * has its own thread. The loop only reads the store (short read
 * transactions: the due list, a message's bytes while sending).
 */
#ifndef SMTPOUT_SMTPOUT_H
#define SMTPOUT_SMTPOUT_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdint.h>

#include "index/dir.h"
#include "index/params.h"
#include "index/queue.h"
#include "index/store.h"
#include "smtpout/params.h"
#include "smtpout/reply.h"

struct server;
struct dest;
struct conn;

#define QRCPT_UNTRIED (-1)

/* A recipient of an active message: small, since a message may have
 * thousands and two thousand messages may be active; the texts of a result
 * are allocated when there is one. */
struct qrcpt {
	uint32_t idx;
	char *addr;	    /* owned */
	const char *domain; /* points into addr */
	int result;	    /* enum queue_result, or QRCPT_UNTRIED */
	char dsn[16];
	char *why;   /* owned; NULL until a result */
	char *relay; /* owned; NULL until a result */
	int done;
};

/* Sets a recipient's result (why and relay copied). */
void qrcpt_set(struct qrcpt *r, int result, const char *dsn, const char *why, const char *relay);

/* A message being delivered (Postfix's "active queue"). */
struct qmsg {
	struct queue_msg rec; /* as read when it was taken */
	struct qrcpt *rcpts;
	size_t nrcpt;
	int tasks_out;	 /* tasks not yet finished */
	double t_active; /* when it was taken (wall clock) */
	struct qmsg *hnext;
};

/* One message to one destination, up to smtp_destination_recipient_limit recipients. */
struct task {
	struct qmsg *m;
	struct dest *d;
	struct qrcpt **r;
	size_t n;
	double t_start, t_conn, t_xfer; /* taken by a connection, connected, data sent */
	struct task *next;
};

/* A destination: a domain (its MX), the relayhost, or local delivery. */
struct dest {
	struct server *srv;
	char name[300]; /* "example.com", "[relay.example.net]:587", "local" */
	char host[256]; /* what to resolve */
	int port;
	int mx;	   /* look up MX (else A/AAAA of host, or host is an address) */
	int relay; /* the relayhost: AUTH may be used */
	struct task *head, *tail;
	size_t ntasks;
	int nconn;	   /* connections open or being opened */
	int ready_once;	   /* a connection got as far as MAIL once */
	struct conn *idle; /* connections waiting for work */
	double dead_until; /* after every address failed: tasks are deferred at once */
	char dead_why[QUEUE_WHY_MAX];
	char dead_dsn[16];
	struct dest *next;
};

struct server {
	struct config *cfg;
	struct common_params common;
	struct smtpout_params p;
	struct event_base *base;
	struct store *store;
	struct directory *dir;
	SSL_CTX *tls;
	struct resolver *res;
	struct committer *commit;
	int watch_fd;
	struct event *watch_ev, *timer_ev, *sig_ev, *scan_ev;
	int stopping;
	int scan_pending;

	struct qmsg **active; /* hash of active messages by queue id */
	size_t active_cap, nactive;
	struct dest *dests;
	size_t nconn_total;

	/* the relayhost, parsed */
	char relay_host[256];
	int relay_port, relay_mx;
	char sasl_user[256], sasl_pass[256];
	int tls_level; /* 0 none, 1 may, 2 encrypt, 3 verify */
};

/* main.c */
void server_shutdown_check(struct server *srv);

/* qmgr.c */
int qmgr_init(struct server *srv, char *err, size_t errsize);
/* Takes what is due now from the queue; arms the timer for the next. */
void qmgr_scan(struct server *srv);
/* A connection to d is ready for a transaction: the next task, or NULL. */
struct task *dest_next_task(struct dest *d);
/* A connection to d ended (n = 1) or will not be made. */
void dest_conn_gone(struct dest *d);
/* Every address of d failed: the waiting tasks are deferred (or bounced). */
void dest_failed(struct dest *d, int permanent, const char *dsn, const char *why);
/* A task is over: its recipients have results (r->result, dsn, why, relay). */
void task_done(struct server *srv, struct task *t);
/* Starts connections for d while it has work and room. */
void dest_kick(struct server *srv, struct dest *d);
/* Called by commit.c (loop thread) when a message's results are written. */
void qmgr_message_finished(struct server *srv, struct qmsg *m);

/* client.c */
void conn_start(struct server *srv, struct dest *d);
/* An idle connection gets work (the dest has tasks). */
void conn_wake(struct conn *c);
void conn_close_idle(struct server *srv);

/* resolve.c */
struct target {
	char host[256];
	char addr[64];
	int family;
	int pref;
};
struct resolve_result {
	int status; /* 0 ok, 1 permanent failure (no such domain, null MX), -1 temporary */
	char dsn[16];
	char why[QUEUE_WHY_MAX];
	struct target *t;
	size_t n;
};
int resolver_start(struct server *srv, char *err, size_t errsize);
void resolver_stop(struct server *srv);
/* Resolves the addresses to try for d (MX then A/AAAA, or the host alone),
 * in order, at most smtp_mx_address_limit; cb runs on the loop thread with a
 * result it must free with resolve_result_free. */
void resolve_dest(struct server *srv, struct dest *d,
		  void (*cb)(struct resolve_result *r, void *arg), void *arg);
void resolve_result_free(struct resolve_result *r);

/* commit.c */
int commit_start(struct server *srv, char *err, size_t errsize);
void commit_stop(struct server *srv);
/* Writes a task's results (the task is freed by the caller afterwards: the
 * results are copied). last: the message has no other task out, so it is
 * finished in the same write. */
void commit_task(struct server *srv, struct task *t, int last);
/* Local recipients: looked up and stored in the committer's write. */
void commit_local(struct server *srv, struct task *t, int last);
/* Nothing more was tried (shutdown): finish the message with what it has. */
void commit_finish(struct server *srv, struct qmsg *m);

/* tls (client.c): the client context for the configured level. */
int smtpout_tls_init(struct server *srv, char *err, size_t errsize);

#endif
