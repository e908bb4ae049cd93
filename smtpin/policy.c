/* policy — Postfix's policy delegation protocol (SMTPD_POLICY_README), both
 * ways:
 *   server: greylist_policy_listen serves the store's greylist to any MX
 *           (Postfix: check_policy_service inet:127.0.0.1:10060), so several
 *           hosts share one greylist;
 *   client: the check_policy_service restriction asks such a server.
 * A request is "name=value" lines ended by an empty line; the answer is
 * "action=..." and an empty line. A greylist or policy server that cannot
 * answer means DUNNO: mail is accepted, never lost.
 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "smtpin/smtpin.h"

#define POLICY_LINE_MAX 4096
#define POLICY_ATTRS_MAX 64

/* --- server ------------------------------------------------------------------ */

struct pconn {
	struct server *srv;
	struct bufferevent *bev;
	char peer[64];
	char client[64], sender[SMTP_ADDR_MAX + 1], rcpt[SMTP_ADDR_MAX + 1], state[32], request[64];
	int nattrs;
	int busy, closed, refs;
	/* job results */
	int rc;
	enum greylist_verdict verdict;
	int64_t wait;
};

static void pconn_unref(struct pconn *c)
{
	if (--c->refs == 0)
		free(c);
}

static void pconn_close(struct pconn *c)
{
	if (c->closed)
		return;
	c->closed = 1;
	bufferevent_free(c->bev);
	pconn_unref(c);
}

static void pconn_input(struct pconn *c);

static void pconn_reset(struct pconn *c)
{
	c->client[0] = c->sender[0] = c->rcpt[0] = c->state[0] = c->request[0] = 0;
	c->nattrs = 0;
}

static void grey_work(void *arg)
{
	struct pconn *c = arg;

	c->rc = greylist_check(c->srv->store, c->client, c->sender, c->rcpt, (int64_t)time(NULL),
			       &c->srv->greylist, &c->verdict, &c->wait);
}

static void grey_done(void *arg)
{
	struct pconn *c = arg;
	char sender[SMTP_ADDR_MAX + 1], rcpt[SMTP_ADDR_MAX + 1];

	c->busy = 0;
	if (c->closed) {
		pconn_unref(c);
		return;
	}
	char client[64];
	PRINTABLE(sender, c->sender);
	PRINTABLE(rcpt, c->rcpt);
	PRINTABLE(client, c->client);
	struct evbuffer *out = bufferevent_get_output(c->bev);
	if (c->rc != 0) {
		log_warn("policy: greylist unavailable (%s): DUNNO for %s", store_strerror(c->rc),
			 client);
		evbuffer_add_printf(out, "action=DUNNO\n\n");
	} else if (c->verdict == GREYLIST_DEFER) {
		log_info("policy: greylisted client=%s, from=<%s>, to=<%s>, wait=%lld", client,
			 sender, rcpt, (long long)c->wait);
		evbuffer_add_printf(out, "action=DEFER_IF_PERMIT %s (%lld seconds left)\n\n",
				    c->srv->greylist_text, (long long)c->wait);
	} else {
		log_info("policy: pass client=%s, from=<%s>, to=<%s>", client, sender, rcpt);
		evbuffer_add_printf(out, "action=DUNNO\n\n");
	}
	pconn_reset(c);
	bufferevent_enable(c->bev, EV_READ);
	pconn_input(c);
	pconn_unref(c);
}

static void pconn_request(struct pconn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	if (strcmp(c->request, "smtpd_access_policy") != 0) {
		evbuffer_add_printf(out, "action=DUNNO\n\n");
		pconn_reset(c);
		return;
	}
	if (strcasecmp(c->state, "RCPT") != 0 || c->client[0] == 0 || c->rcpt[0] == 0) {
		evbuffer_add_printf(out, "action=DUNNO\n\n");
		pconn_reset(c);
		return;
	}
	c->busy = 1;
	c->refs++;
	bufferevent_disable(c->bev, EV_READ);
	job_submit(c->srv, grey_work, grey_done, c);
}

static void pconn_input(struct pconn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	while (!c->closed && !c->busy) {
		size_t len;
		char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
		if (line == NULL) {
			if (evbuffer_get_length(in) > POLICY_LINE_MAX) {
				log_warn("policy: line too long from %s", c->peer);
				pconn_close(c);
			}
			return;
		}
		if (len > POLICY_LINE_MAX || ++c->nattrs > POLICY_ATTRS_MAX) {
			free(line);
			log_warn("policy: request too large from %s", c->peer);
			pconn_close(c);
			return;
		}
		if (len == 0) {
			free(line);
			pconn_request(c);
			continue;
		}
		char *eq = strchr(line, '=');
		if (eq != NULL) {
			*eq = 0;
			const char *v = eq + 1;
			if (strcmp(line, "request") == 0)
				mk_strlcpy(c->request, v, sizeof(c->request));
			else if (strcmp(line, "protocol_state") == 0)
				mk_strlcpy(c->state, v, sizeof(c->state));
			else if (strcmp(line, "client_address") == 0)
				mk_strlcpy(c->client, v, sizeof(c->client));
			else if (strcmp(line, "sender") == 0)
				mk_strlcpy(c->sender, v, sizeof(c->sender));
			else if (strcmp(line, "recipient") == 0)
				mk_strlcpy(c->rcpt, v, sizeof(c->rcpt));
		}
		free(line);
	}
}

static void pconn_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	pconn_input(arg);
}

static void pconn_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	pconn_close(arg);
}

void policy_accept(struct listener *lst, int fd, const char *peer)
{
	struct pconn *c = xcalloc(1, sizeof(*c));
	struct timeval tv = {300, 0};

	c->srv = lst->srv;
	c->refs = 1;
	mk_strlcpy(c->peer, peer, sizeof(c->peer));
	c->bev = bufferevent_socket_new(lst->srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(fd);
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, pconn_read, NULL, pconn_event, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* --- client -------------------------------------------------------------------- */

struct pquery {
	struct session *s;
	void (*done)(struct session *s, const char *action);
	struct bufferevent *bev;
	char service[256];
	int finished;
};

static void pquery_finish(struct pquery *q, const char *action)
{
	if (q->finished)
		return;
	q->finished = 1;
	if (q->bev) {
		bufferevent_free(q->bev);
		q->bev = NULL;
	}
	q->done(q->s, action);
	free(q);
}

static void pquery_fail(struct pquery *q, const char *why)
{
	log_warn("problem talking to server %s: %s", q->service, why);
	pquery_finish(q, q->s->srv->policy_default);
}

static void pquery_read(struct bufferevent *bev, void *arg)
{
	struct pquery *q = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char action[600] = "";

	for (;;) {
		size_t len;
		char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
		if (line == NULL) {
			if (evbuffer_get_length(in) > POLICY_LINE_MAX)
				pquery_fail(q, "answer too long");
			return;
		}
		if (len == 0) {
			free(line);
			if (action[0] == 0) {
				pquery_fail(q, "no action in the answer");
				return;
			}
			pquery_finish(q, action);
			return;
		}
		if (strncmp(line, "action=", 7) == 0)
			log_printable(action, sizeof(action), line + 7, len - 7);
		free(line);
	}
}

static void pquery_event(struct bufferevent *bev, short what, void *arg)
{
	struct pquery *q = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	pquery_fail(q, what & BEV_EVENT_TIMEOUT ? "timeout" : "connection failed or closed");
}

void policy_query(struct session *s, const char *service,
		  void (*done)(struct session *s, const char *action))
{
	struct server *srv = s->srv;
	struct pquery *q = xcalloc(1, sizeof(*q));
	struct sockaddr_storage ss;
	int sslen = sizeof(ss);
	struct timeval tv = {(time_t)srv->policy_timeout, 0};

	q->s = s;
	q->done = done;
	mk_strlcpy(q->service, service, sizeof(q->service));
	memset(&ss, 0, sizeof(ss));
	if (strncmp(service, "unix:", 5) == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)&ss;
		un->sun_family = AF_UNIX;
		if (mk_strlcpy(un->sun_path, service + 5, sizeof(un->sun_path)) >=
		    sizeof(un->sun_path)) {
			pquery_fail(q, "socket path too long");
			return;
		}
		sslen = sizeof(*un);
	} else if (evutil_parse_sockaddr_port(service + 5, (struct sockaddr *)&ss, &sslen) < 0) {
		pquery_fail(q, "bad address");
		return;
	}
	q->bev = bufferevent_socket_new(srv->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (q->bev == NULL) {
		pquery_fail(q, "out of sockets");
		return;
	}
	bufferevent_setcb(q->bev, pquery_read, NULL, pquery_event, q);
	bufferevent_set_timeouts(q->bev, &tv, &tv);
	bufferevent_enable(q->bev, EV_READ | EV_WRITE);
	struct evbuffer *out = bufferevent_get_output(q->bev);
	evbuffer_add_printf(
	    out,
	    "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=%s\n"
	    "client_address=%s\nclient_name=%s\nreverse_client_name=%s\nhelo_name=%s\n"
	    "sender=%s\nrecipient=%s\nrecipient_count=%zu\nqueue_id=%s\ninstance=%s\n"
	    "size=%llu\nsasl_method=%s\nsasl_username=%s\nencryption_protocol=%s\n\n",
	    s->lmtp    ? "LMTP"
	    : s->esmtp ? "ESMTP"
		       : "SMTP",
	    s->addr, s->name, s->name, s->helo, s->from.addr, s->cur.addr, s->nrcpt, s->qid, s->qid,
	    (unsigned long long)s->from.size, s->authed ? s->sasl_method : "",
	    s->authed ? s->sasl_user : "", s->tls ? "TLS" : "");
	if (bufferevent_socket_connect(q->bev, (struct sockaddr *)&ss, sslen) < 0) {
		pquery_fail(q, "cannot connect");
		return;
	}
}
