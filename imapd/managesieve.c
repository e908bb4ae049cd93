/* managesieve — a ManageSieve (RFC 5804) session, one thread per connection
 * as IMAP's (see imapd/managesieve.h). Before STARTTLS only local clients
 * (imapd_plaintext_networks) may log in; AUTHENTICATE PLAIN goes through the
 * same password check and per-IP penalty as IMAP's LOGIN. Scripts are
 * checked by the interpreter's parser before they are stored, so a script
 * in the store always compiles; CHECKSCRIPT and a refused PUTSCRIPT say the
 * error's line and column.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "imapd/limits.h"
#include "imapd/managesieve.h"
#include "imapd/session.h"
#include "index/sieve.h"
#include "index/sieve_deliver.h"
#include "lib/base64.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/util.h"
#include "lib/xmalloc.h"

struct ms {
	struct imapd *d;
	struct io io;
	struct buf in;
	char ip[64], lip[64], id[24];
	int tls, plaintext_ok, authed, done;
	char user[STORE_NAME_MAX + 1];
	uint32_t user_id;
};

/* --- replies ------------------------------------------------------------------ */

/* A string as ManageSieve writes it: quoted when short and plain, else a literal. */
static void put_string(struct ms *m, const char *s, size_t len)
{
	int plain = len < 1024;
	for (size_t i = 0; i < len && plain; i++)
		if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
			plain = 0;
	if (!plain) {
		io_printf(&m->io, "{%zu}\r\n", len);
		io_write(&m->io, s, len);
		return;
	}
	io_puts(&m->io, "\"");
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			io_puts(&m->io, "\\");
		io_write(&m->io, s + i, 1);
	}
	io_puts(&m->io, "\"");
}

/* OK / NO / BYE, an optional (CODE), an optional text. */
static void reply(struct ms *m, const char *status, const char *code, const char *text)
{
	io_puts(&m->io, status);
	if (code != NULL)
		io_printf(&m->io, " (%s)", code);
	if (text != NULL) {
		io_puts(&m->io, " ");
		put_string(m, text, strlen(text));
	}
	io_puts(&m->io, "\r\n");
}

static void capabilities(struct ms *m)
{
	io_puts(&m->io, "\"IMPLEMENTATION\" \"mailkeep ManageSieve\"\r\n");
	io_printf(&m->io, "\"SIEVE\" \"%s\"\r\n", sieve_extensions_list);
	if (!m->tls && tls_holder_ready(&m->d->tls))
		io_puts(&m->io, "\"STARTTLS\"\r\n");
	/* RFC 5804 2.1: no plaintext mechanism is offered where it may not be used */
	io_printf(&m->io, "\"SASL\" \"%s\"\r\n",
		  m->authed			? ""
		  : (m->tls || m->plaintext_ok) ? "PLAIN"
						: "");
	if (m->authed) {
		io_puts(&m->io, "\"OWNER\" ");
		put_string(m, m->user, strlen(m->user));
		io_puts(&m->io, "\r\n");
	}
	io_printf(&m->io, "\"MAXREDIRECTS\" \"%d\"\r\n", SIEVE_MAX_REDIRECTS);
	io_puts(&m->io, "\"VERSION\" \"1.0\"\r\n");
}

/* --- reading -------------------------------------------------------------------- */

/* Reads more into m->in: 1, or 0 when the client is gone (or idle too long). */
static int read_more(struct ms *m)
{
	if (io_flush(&m->io) < 0)
		return 0;
	long n = io_read(&m->io, &m->in);
	if (n == -2) {
		reply(m, "BYE", NULL, "Command too long");
		return 0;
	}
	if (n <= 0) {
		if (n < 0)
			reply(m, "BYE", NULL, "Disconnected for inactivity");
		return 0;
	}
	return 1;
}

/* Drops n bytes of input, reading them first if they have not come yet (a
 * literal over the limit). 0, or -1 when the client is gone. */
static int discard(struct ms *m, size_t n)
{
	while (n > 0) {
		if (m->in.len == 0 && !read_more(m))
			return -1;
		size_t k = m->in.len < n ? m->in.len : n;
		buf_consume(&m->in, k);
		n -= k;
	}
	return 0;
}

/* --- scripts in the store ----------------------------------------------------------- */

enum wop { W_PUT, W_ACTIVATE, W_DELETE, W_RENAME };
struct wjob {
	enum wop op;
	uint32_t user_id;
	const char *name, *name2, *text;
	size_t len;
	int too_many;
};

static int count_cb(const char *name, size_t len, int active, void *ctx)
{
	(void)name;
	(void)len;
	(void)active;
	(*(unsigned *)ctx)++;
	return 0;
}

static int script_exists(struct store_txn *txn, uint32_t uid, const char *name)
{
	const char *t;
	size_t l;
	return sieve_script_get(txn, uid, name, &t, &l) == 0;
}

static int write_fn(struct store_txn *txn, void *ctx)
{
	struct wjob *w = ctx;
	unsigned n = 0;
	switch (w->op) {
	case W_PUT:
		if (!script_exists(txn, w->user_id, w->name)) {
			sieve_script_foreach(txn, w->user_id, count_cb, &n);
			if (n >= sieve_max_scripts()) {
				w->too_many = 1;
				return STORE_EINVAL;
			}
		}
		return sieve_script_put(txn, w->user_id, w->name, w->text, w->len);
	case W_ACTIVATE:
		return sieve_script_activate(txn, w->user_id, w->name);
	case W_DELETE:
		return sieve_script_delete(txn, w->user_id, w->name);
	case W_RENAME:
		return sieve_script_rename(txn, w->user_id, w->name, w->name2);
	}
	return STORE_EINVAL;
}

/* Compiles text; on an error answers NO with the line and column. 0 if it compiles. */
static int check(struct ms *m, const char *text, size_t len)
{
	struct sieve_script *s;
	struct sieve_error err;
	char e[400];
	if (sieve_compile(text, len, sieve_max_script_size(), &s, &err) == 0) {
		sieve_script_free(&s);
		return 0;
	}
	sieve_error_format(&err, e, sizeof(e));
	reply(m, "NO", err.line ? NULL : "QUOTA/MAXSIZE", e);
	return -1;
}

static void store_reply(struct ms *m, int rc, const struct wjob *w, const char *ok)
{
	if (rc == 0)
		reply(m, "OK", NULL, ok);
	else if (w->too_many)
		reply(m, "NO", "QUOTA/MAXSCRIPTS", "Too many scripts (sieve_max_scripts)");
	else if (rc == STORE_ENOTFOUND)
		reply(m, "NO", "NONEXISTENT", "There is no script of that name");
	else if (rc == STORE_EEXIST && w->op == W_DELETE)
		reply(m, "NO", "ACTIVE",
		      "The script is active: deactivate it first (SETACTIVE \"\")");
	else if (rc == STORE_EEXIST)
		reply(m, "NO", "ALREADYEXISTS", "A script of that name exists");
	else if (rc == STORE_EINVAL)
		reply(m, "NO", NULL, "Bad script name");
	else
		reply(m, "NO", "TRYLATER", store_strerror(rc));
}

static int name_arg(struct ms *m, const struct ms_arg *a, int empty_ok)
{
	if ((a->len == 0 && empty_ok) || (a->len == strlen(a->s) && sieve_name_valid(a->s)))
		return 0;
	reply(m, "NO", NULL, "Bad script name");
	return -1;
}

static void do_write(struct ms *m, struct wjob *w, const char *ok, const char *what)
{
	w->user_id = m->user_id;
	int rc = store_write(m->d->store, write_fn, w);
	if (rc == 0) {
		char pn[200];
		log_printable(pn, sizeof(pn), w->name ? w->name : "",
			      w->name ? strlen(w->name) : 0);
		log_info("%s: managesieve: user=<%s>: %s \"%s\"", m->id, m->user, what, pn);
	}
	store_reply(m, rc, w, ok);
}

static int list_cb(const char *name, size_t len, int active, void *ctx)
{
	struct ms *m = ctx;
	(void)len;
	put_string(m, name, strlen(name));
	io_puts(&m->io, active ? " ACTIVE\r\n" : "\r\n");
	return 0;
}

/* --- commands --------------------------------------------------------------------------- */

static void ms_authenticate(struct ms *m, struct ms_cmd *c)
{
	struct ms_cmd resp = {0};
	const struct ms_arg *ir = c->nargs > 1 ? &c->args[1] : NULL;
	char *raw = NULL;

	if (m->authed) {
		reply(m, "NO", NULL, "Already authenticated");
		return;
	}
	if (c->nargs < 1 || strcasecmp(c->args[0].s, "PLAIN") != 0) {
		reply(m, "NO", NULL, "Only the PLAIN mechanism is offered");
		return;
	}
	if (!m->tls && !m->plaintext_ok) {
		reply(m, "NO", "ENCRYPT-NEEDED", "Use STARTTLS before logging in");
		return;
	}
	if (ir == NULL) {
		/* the server's (empty) challenge, then the client's response line */
		io_puts(&m->io, "\"\"\r\n");
		for (;;) {
			int r =
			    ms_parse_response(m->in.data ? m->in.data : "", m->in.len, 8192, &resp);
			if (r == MS_DONE && resp.nargs == 1) {
				buf_consume(&m->in, resp.consumed);
				break;
			}
			if (r != MS_MORE) {
				if (r != MS_TOOBIG)
					buf_consume(&m->in, resp.consumed);
				ms_cmd_free(&resp);
				reply(m, "NO", NULL, "Bad SASL response");
				return;
			}
			if (!read_more(m)) {
				m->done = 1;
				return;
			}
		}
		ir = &resp.args[0];
	}
	if (strcmp(ir->s, "*") == 0 && !ir->literal) {
		reply(m, "NO", NULL, "Authentication cancelled");
		goto out;
	}
	size_t blen = ir->len;
	raw = xmalloc(BASE64_DECODED_MAX(blen) + 1);
	long n = blen % 4 == 0 && blen <= 4096
		     ? base64_decode(ir->s, blen, (unsigned char *)raw, BASE64_DECODED_MAX(blen))
		     : -1;
	const char *nul1 = n > 0 ? memchr(raw, '\0', (size_t)n) : NULL;
	const char *nul2 =
	    nul1 ? memchr(nul1 + 1, '\0', (size_t)n - (size_t)(nul1 + 1 - raw)) : NULL;
	if (nul1 == NULL || nul2 == NULL) {
		reply(m, "NO", NULL, "Bad PLAIN response");
		goto out;
	}
	raw[n] = '\0';
	const char *user = nul1 + 1, *pass = nul2 + 1;
	if (nul1 != raw && strcmp(raw, user) != 0) {
		reply(m, "NO", NULL, "Acting as another user is not allowed");
		goto out;
	}
	struct store_user su;
	enum dir_result r =
	    imapd_authenticate(m->d, m->id, m->ip, "ManageSieve", &m->io, user, pass, &su);
	if (r == DIR_TEMPFAIL) {
		reply(m, "NO", "TRYLATER", "Try again later");
	} else if (r != DIR_OK) {
		reply(m, "NO", NULL, "Authentication failed");
	} else {
		m->authed = 1;
		m->user_id = su.id;
		mk_strlcpy(m->user, su.name, sizeof(m->user));
		m->io.timeout_ms = m->d->timeout * 1000;
		imap_limits_login(m->io.fd); /* no longer a stranger's connection */
		log_info("%s: managesieve login: user=<%s>, method=PLAIN, rip=%s, lip=%s%s", m->id,
			 m->user, m->ip, m->lip, m->tls ? ", TLS" : "");
		reply(m, "OK", NULL, "Logged in");
	}
out:
	free(raw);
	ms_cmd_free(&resp);
}

static void ms_starttls(struct ms *m)
{
	char err[256];
	if (m->tls) {
		reply(m, "NO", NULL, "TLS is already active");
		return;
	}
	SSL_CTX *ctx = tls_holder_get(&m->d->tls);
	if (ctx == NULL) {
		reply(m, "NO", NULL, "TLS is not configured");
		return;
	}
	reply(m, "OK", NULL, "Begin TLS negotiation now");
	if (io_flush(&m->io) < 0) {
		SSL_CTX_free(ctx);
		m->done = 1;
		return;
	}
	/* what came after STARTTLS in plaintext is not taken as a command (CVE-2011-0411) */
	if (m->in.len > 0)
		log_info("%s: managesieve: [%s]: %zu bytes after STARTTLS discarded", m->id, m->ip,
			 m->in.len);
	buf_reset(&m->in);
	int rc = io_starttls(&m->io, ctx, err, sizeof(err));
	SSL_CTX_free(ctx);
	if (rc < 0) {
		log_info("%s: managesieve: [%s]: %s", m->id, m->ip, err);
		m->done = 1;
		return;
	}
	m->tls = 1;
	/* RFC 5804 2.2: the capabilities again, under TLS */
	capabilities(m);
	reply(m, "OK", NULL, "TLS negotiation successful");
}

static void ms_putscript(struct ms *m, struct ms_cmd *c, int checkonly)
{
	const struct ms_arg *name = checkonly ? NULL : &c->args[0],
			    *text = &c->args[checkonly ? 0 : 1];
	if (name != NULL && name_arg(m, name, 0) < 0)
		return;
	if (memchr(text->s, '\0', text->len) != NULL) {
		reply(m, "NO", NULL, "line 1, column 1: a NUL byte in the script");
		return;
	}
	if (check(m, text->s, text->len) < 0)
		return;
	if (checkonly) {
		reply(m, "OK", NULL, "Script is valid");
		return;
	}
	struct wjob w = {.op = W_PUT, .name = name->s, .text = text->s, .len = text->len};
	do_write(m, &w, "Script stored", "put");
}

static void ms_havespace(struct ms *m, struct ms_cmd *c)
{
	uint64_t size;
	if (name_arg(m, &c->args[0], 0) < 0)
		return;
	if (mk_parse_u64(c->args[1].s, 0, UINT64_MAX, &size) < 0) {
		reply(m, "NO", NULL, "The size is a number");
		return;
	}
	if (size > sieve_max_script_size()) {
		char t[128];
		snprintf(t, sizeof(t), "A script may have at most %zu bytes",
			 sieve_max_script_size());
		reply(m, "NO", "QUOTA/MAXSIZE", t);
		return;
	}
	struct store_txn *txn = NULL;
	unsigned n = 0;
	int exists = 0;
	if (store_read_begin(m->d->store, &txn) == 0) {
		exists = script_exists(txn, m->user_id, c->args[0].s);
		sieve_script_foreach(txn, m->user_id, count_cb, &n);
		store_read_end(&txn);
	}
	if (!exists && n >= sieve_max_scripts())
		reply(m, "NO", "QUOTA/MAXSCRIPTS", "Too many scripts (sieve_max_scripts)");
	else
		reply(m, "OK", NULL, "Putscript would succeed");
}

static void ms_getscript(struct ms *m, struct ms_cmd *c)
{
	struct store_txn *txn = NULL;
	const char *t;
	size_t len;
	int rc = store_read_begin(m->d->store, &txn);
	if (rc == 0 && (rc = sieve_script_get(txn, m->user_id, c->args[0].s, &t, &len)) == 0) {
		io_printf(&m->io, "{%zu}\r\n", len);
		io_write(&m->io, t, len);
		io_puts(&m->io, "\r\n");
	}
	store_read_end(&txn);
	if (rc == STORE_ENOTFOUND)
		reply(m, "NO", "NONEXISTENT", "There is no script of that name");
	else if (rc != 0)
		reply(m, "NO", "TRYLATER", store_strerror(rc));
	else
		reply(m, "OK", NULL, "Getscript completed");
}

static void ms_listscripts(struct ms *m)
{
	struct store_txn *txn = NULL;
	int rc = store_read_begin(m->d->store, &txn);
	if (rc == 0)
		rc = sieve_script_foreach(txn, m->user_id, list_cb, m);
	store_read_end(&txn);
	if (rc != 0)
		reply(m, "NO", "TRYLATER", store_strerror(rc));
	else
		reply(m, "OK", NULL, "Listscripts completed");
}

/* The command table: name, arguments (min, max), whether login is needed. */
static const struct {
	const char *name;
	unsigned min, max;
	int auth;
} cmds[] = {
    {"CAPABILITY", 0, 0, 0},   {"NOOP", 0, 1, 0},	  {"LOGOUT", 0, 0, 0},
    {"STARTTLS", 0, 0, 0},     {"AUTHENTICATE", 1, 2, 0}, {"UNAUTHENTICATE", 0, 0, 1},
    {"LISTSCRIPTS", 0, 0, 1},  {"GETSCRIPT", 1, 1, 1},	  {"PUTSCRIPT", 2, 2, 1},
    {"CHECKSCRIPT", 1, 1, 1},  {"SETACTIVE", 1, 1, 1},	  {"DELETESCRIPT", 1, 1, 1},
    {"RENAMESCRIPT", 2, 2, 1}, {"HAVESPACE", 2, 2, 1},
};

static void dispatch(struct ms *m, struct ms_cmd *c)
{
	size_t i;
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmds[i].name, c->name) == 0)
			break;
	if (i == sizeof(cmds) / sizeof(cmds[0])) {
		reply(m, "NO", NULL, "Unknown command");
		return;
	}
	if (c->nargs < cmds[i].min || c->nargs > cmds[i].max) {
		reply(m, "NO", NULL, "Wrong number of arguments");
		return;
	}
	if (cmds[i].auth && !m->authed) {
		reply(m, "NO", NULL, "Authenticate first");
		return;
	}
	const char *n = c->name;
	struct wjob w = {0};
	if (strcmp(n, "CAPABILITY") == 0) {
		capabilities(m);
		reply(m, "OK", NULL, "Capability completed");
	} else if (strcmp(n, "NOOP") == 0) {
		if (c->nargs == 1) {
			io_puts(&m->io, "OK (TAG ");
			put_string(m, c->args[0].s, c->args[0].len);
			io_puts(&m->io, ") \"Done\"\r\n");
		} else {
			reply(m, "OK", NULL, "Done");
		}
	} else if (strcmp(n, "LOGOUT") == 0) {
		reply(m, "OK", NULL, "Logout completed");
		m->done = 1;
	} else if (strcmp(n, "STARTTLS") == 0) {
		ms_starttls(m);
	} else if (strcmp(n, "AUTHENTICATE") == 0) {
		ms_authenticate(m, c);
	} else if (strcmp(n, "UNAUTHENTICATE") == 0) {
		m->authed = 0;
		m->user[0] = '\0';
		m->user_id = 0;
		reply(m, "OK", NULL, "Unauthenticated");
	} else if (strcmp(n, "LISTSCRIPTS") == 0) {
		ms_listscripts(m);
	} else if (strcmp(n, "GETSCRIPT") == 0) {
		ms_getscript(m, c);
	} else if (strcmp(n, "PUTSCRIPT") == 0) {
		ms_putscript(m, c, 0);
	} else if (strcmp(n, "CHECKSCRIPT") == 0) {
		ms_putscript(m, c, 1);
	} else if (strcmp(n, "SETACTIVE") == 0) {
		if (name_arg(m, &c->args[0], 1) < 0)
			return;
		w.op = W_ACTIVATE;
		w.name = c->args[0].s;
		do_write(m, &w, c->args[0].len ? "Script activated" : "No script is active now",
			 "activate");
	} else if (strcmp(n, "DELETESCRIPT") == 0) {
		if (name_arg(m, &c->args[0], 0) < 0)
			return;
		w.op = W_DELETE;
		w.name = c->args[0].s;
		do_write(m, &w, "Script deleted", "delete");
	} else if (strcmp(n, "RENAMESCRIPT") == 0) {
		if (name_arg(m, &c->args[0], 0) < 0 || name_arg(m, &c->args[1], 0) < 0)
			return;
		w.op = W_RENAME;
		w.name = c->args[0].s;
		w.name2 = c->args[1].s;
		do_write(m, &w, "Script renamed", "rename");
	} else if (strcmp(n, "HAVESPACE") == 0) {
		ms_havespace(m, c);
	}
}

void managesieve_run(struct imapd *d, int fd)
{
	struct ms *m = xcalloc(1, sizeof(*m));
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	m->d = d;
	io_init(&m->io, fd, d->login_timeout * 1000);
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
		net_addr_str((struct sockaddr *)&ss, sl, m->ip, sizeof(m->ip));
	sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		net_addr_str((struct sockaddr *)&ss, sl, m->lip, sizeof(m->lip));
	m->plaintext_ok =
	    net_cidr_match_list(m->ip, (const char *const *)d->plaintext_nets, d->nplaintext_nets);
	mk_queue_id(m->id, sizeof(m->id));
	/* a literal as big as the largest script, and a line */
	buf_init(&m->in, sieve_max_script_size() + MS_MAX_LINE + 1024);
	log_info("%s: managesieve: connect from [%s]", m->id, m->ip);
	capabilities(m);
	reply(m, "OK", NULL, "mailkeep ManageSieve ready");
	while (!m->done) {
		struct ms_cmd c;
		int r =
		    ms_parse(m->in.data ? m->in.data : "", m->in.len, sieve_max_script_size(), &c);
		if (r == MS_MORE) {
			if (!read_more(m))
				break;
			continue;
		}
		buf_consume(&m->in, c.consumed);
		if (r == MS_TOOBIG) {
			/* skip the literal and the rest of its line, then say why */
			if (discard(m, c.skip) < 0)
				break;
			struct ms_cmd rest;
			int rr;
			while ((rr = ms_parse_response(m->in.data ? m->in.data : "", m->in.len, 0,
						       &rest)) == MS_MORE)
				if (!read_more(m)) {
					m->done = 1;
					break;
				}
			if (m->done)
				break;
			buf_consume(&m->in, rest.consumed);
			ms_cmd_free(&rest);
			reply(m, "NO", "QUOTA/MAXSIZE", c.err);
			continue;
		}
		if (r == MS_ERROR) {
			reply(m, "NO", NULL, c.err);
			continue;
		}
		dispatch(m, &c);
		ms_cmd_free(&c);
	}
	io_flush(&m->io);
	log_info("%s: managesieve: disconnect from [%s]%s%s", m->id, m->ip,
		 m->authed ? " user=" : "", m->authed ? m->user : "");
	buf_free(&m->in);
	imap_limits_close(m->io.fd); /* before the fd is closed and its number reused */
	io_close(&m->io);
	free(m);
}
