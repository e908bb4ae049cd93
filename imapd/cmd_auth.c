/* cmd_auth — commands of any state and of the not-authenticated state:
 * CAPABILITY, NOOP, LOGOUT, ID, STARTTLS, LOGIN, AUTHENTICATE PLAIN (SASL-IR),
 * ENABLE, COMPRESS, NAMESPACE; logins wait for the shared penalty
 * (imapd/limits.c, lib/anvil.h); the password checks, run on a few worker
 * threads. */
#include <errno.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "imapd/limits.h"
#include "imapd/session.h"
#include "lib/base64.h"
#include "lib/log.h"
#include "lib/util.h"

void sess_capabilities(struct session *s, struct buf *out)
{
	buf_append_str(out, "IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID ENABLE IDLE");
	if (s->state == S_NOTAUTH) {
		if (!s->tls && tls_holder_ready(&s->d->tls))
			buf_append_str(out, " STARTTLS");
		if (!s->tls && !s->plaintext_ok)
			buf_append_str(out, " LOGINDISABLED");
		else
			buf_append_str(out, " AUTH=PLAIN");
		return;
	}
	buf_printf(out, " NAMESPACE UIDPLUS MOVE SPECIAL-USE CREATE-SPECIAL-USE CONDSTORE QRESYNC UNSELECT"
			" CHILDREN LIST-EXTENDED LIST-STATUS ESEARCH SORT SORT=DISPLAY ESORT THREAD=REFERENCES"
			" THREAD=ORDEREDSUBJECT MULTIAPPEND CATENATE BINARY STATUS=SIZE CONTEXT=SEARCH CONTEXT=SORT SEARCHRES NOTIFY"
			" QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE%s APPENDLIMIT=%llu",
		   s->io.compress ? "" : " COMPRESS=DEFLATE", (unsigned long long)s->d->max_literal);
}

void cmd_capability(struct session *s, struct imap_command *cmd)
{
	struct buf caps;
	(void)cmd;
	buf_init(&caps, 4096);
	sess_capabilities(s, &caps);
	sess_untagged(s, "CAPABILITY %s", caps.data);
	buf_free(&caps);
	sess_tagged(s, "OK", "Capability completed.");
}

void cmd_noop(struct session *s, struct imap_command *cmd)
{
	(void)cmd;
	sess_sync(s, 1);
	sess_tagged(s, "OK", "NOOP completed.");
}

void cmd_logout(struct session *s, struct imap_command *cmd)
{
	(void)cmd;
	sess_untagged(s, "BYE Logging out");
	sess_tagged(s, "OK", "Logout completed.");
	s->state = S_LOGOUT;
}

void cmd_id(struct session *s, struct imap_command *cmd)
{
	(void)cmd;
	sess_untagged(s, "ID (\"name\" \"mailkeep\" \"vendor\" \"mailkeep\")");
	sess_tagged(s, "OK", "ID completed.");
}

void cmd_namespace(struct session *s, struct imap_command *cmd)
{
	(void)cmd;
	sess_untagged(s, "NAMESPACE ((\"\" \".\")) NIL NIL");
	sess_tagged(s, "OK", "Namespace completed.");
}

void cmd_enable(struct session *s, struct imap_command *cmd)
{
	char enabled[128] = "";
	if (cmd->nargs == 0) {
		sess_tagged(s, "BAD", "ENABLE needs a capability");
		return;
	}
	for (size_t i = 0; i < cmd->nargs; i++) {
		if (imap_arg_is_atom(&cmd->args[i], "CONDSTORE") && !s->condstore) {
			s->condstore = 1;
			strncat(enabled, " CONDSTORE", sizeof(enabled) - strlen(enabled) - 1);
		} else if (imap_arg_is_atom(&cmd->args[i], "IMAP4rev2") && !s->rev2) {
			/* RFC 9051: UTF-8 names, no \Recent, ESEARCH for SEARCH */
			s->rev2 = 1;
			strncat(enabled, " IMAP4rev2", sizeof(enabled) - strlen(enabled) - 1);
		} else if (imap_arg_is_atom(&cmd->args[i], "QRESYNC") && !s->qresync) {
			s->qresync = 1;
			if (!s->condstore) {
				s->condstore = 1;
				strncat(enabled, " CONDSTORE", sizeof(enabled) - strlen(enabled) - 1);
			}
			strncat(enabled, " QRESYNC", sizeof(enabled) - strlen(enabled) - 1);
		}
	}
	sess_untagged(s, "ENABLED%s", enabled);
	sess_tagged(s, "OK", "Enabled.");
}

void cmd_compress(struct session *s, struct imap_command *cmd)
{
	if (cmd->nargs != 1 || !imap_arg_is_atom(&cmd->args[0], "DEFLATE")) {
		sess_tagged(s, "BAD", "Only COMPRESS DEFLATE is supported");
		return;
	}
	if (s->io.compress) {
		sess_tagged(s, "NO", "[COMPRESSIONACTIVE] DEFLATE is already active");
		return;
	}
	sess_tagged(s, "OK", "DEFLATE active.");
	if (io_flush(&s->io) < 0)
		return;
	if (io_compress(&s->io) < 0)
		s->state = S_LOGOUT;
}

void cmd_starttls(struct session *s, struct imap_command *cmd)
{
	char err[256];
	(void)cmd;
	if (s->tls) {
		sess_tagged(s, "BAD", "TLS is already active");
		return;
	}
	if (!tls_holder_ready(&s->d->tls)) {
		sess_tagged(s, "NO", "TLS is not configured");
		return;
	}
	sess_tagged(s, "OK", "Begin TLS negotiation now.");
	if (io_flush(&s->io) < 0)
		return;
	/* Anything the client sent after STARTTLS in plaintext is thrown away:
	 * it must not be taken as a command from inside TLS (CVE-2011-0411). */
	size_t cmdlen = sess_current_cmdlen();
	if (s->in.len > cmdlen) {
		log_info("%s: [%s]: %zu bytes after STARTTLS discarded", s->id, s->ip, s->in.len - cmdlen);
		s->in.len = cmdlen;
	}
	if (sess_start_tls(s, err, sizeof(err)) < 0) {
		log_info("%s: [%s]: %s", s->id, s->ip, err);
		s->state = S_LOGOUT;
		s->io.failed = 1;
		return;
	}
	s->tls = 1;
}

/* --- authentication --------------------------------------------------------- */

/* --- password checks on worker threads --------------------------------------
 *
 * A password check costs a yescrypt hash: about 28 ms of CPU and 16 MB of
 * memory here. Sessions hand their checks to a few worker threads (as many
 * as CPUs, at least AUTH_WORKERS_MIN, so a slow LDAP bind does not hold up
 * the rest) and wait for the answer: however many clients log in at once,
 * only that many hashes run, so the CPU and memory a login storm can take is
 * bounded and the sessions already working keep theirs. */

#define AUTH_WORKERS_MIN 4
#define AUTH_WORKERS_MAX 16
#define AUTH_WORKER_NICE 5

struct auth_job {
	struct directory *dir;
	const char *login, *password;
	struct dir_user user;
	enum dir_result result;
	char error[DIR_ERROR_MAX]; /* dir_error() is per thread: carried back */
	int done;
	pthread_cond_t cond;
	struct auth_job *next;
};

static pthread_mutex_t auth_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t auth_work = PTHREAD_COND_INITIALIZER;
static struct auth_job *auth_head, *auth_tail;
static pthread_once_t auth_once = PTHREAD_ONCE_INIT;
static int auth_workers; /* started; 0: checks run in the session's thread */

static void *auth_worker(void *arg)
{
	(void)arg;
	/* below the sessions: a command never waits for CPU behind a hash */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), AUTH_WORKER_NICE) < 0)
		log_warn("password check thread: cannot lower its priority: %s", strerror(errno));
	for (;;) {
		pthread_mutex_lock(&auth_lock);
		while (auth_head == NULL)
			pthread_cond_wait(&auth_work, &auth_lock);
		struct auth_job *j = auth_head;
		auth_head = j->next;
		if (auth_head == NULL)
			auth_tail = NULL;
		pthread_mutex_unlock(&auth_lock);
		j->result = dir_authenticate(j->dir, j->login, j->password, &j->user);
		mk_strlcpy(j->error, dir_error(), sizeof(j->error));
		pthread_mutex_lock(&auth_lock);
		j->done = 1;
		pthread_cond_signal(&j->cond);
		pthread_mutex_unlock(&auth_lock);
	}
	return NULL;
}

static void auth_start(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < AUTH_WORKERS_MIN)
		n = AUTH_WORKERS_MIN;
	if (n > AUTH_WORKERS_MAX)
		n = AUTH_WORKERS_MAX;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* signals stay blocked: the threads inherit the session thread's mask */
	for (long i = 0; i < n; i++) {
		pthread_t th;
		if (pthread_create(&th, &attr, auth_worker, NULL) != 0)
			break;
		auth_workers++;
	}
	pthread_attr_destroy(&attr);
	if (auth_workers == 0)
		log_warn("cannot start password check threads: sessions check passwords themselves");
}

/* dir_authenticate on a worker; error_r gets dir_error()'s text. */
static enum dir_result auth_check(struct directory *dir, const char *login, const char *password,
				  struct dir_user *user_r, char *error_r, size_t errsize)
{
	pthread_once(&auth_once, auth_start);
	if (auth_workers == 0) {
		enum dir_result r = dir_authenticate(dir, login, password, user_r);
		mk_strlcpy(error_r, dir_error(), errsize);
		return r;
	}
	struct auth_job j = {.dir = dir, .login = login, .password = password};
	pthread_cond_init(&j.cond, NULL);
	pthread_mutex_lock(&auth_lock);
	if (auth_tail != NULL)
		auth_tail->next = &j;
	else
		auth_head = &j;
	auth_tail = &j;
	pthread_cond_signal(&auth_work);
	while (!j.done)
		pthread_cond_wait(&j.cond, &auth_lock);
	pthread_mutex_unlock(&auth_lock);
	pthread_cond_destroy(&j.cond);
	*user_r = j.user;
	mk_strlcpy(error_r, j.error, errsize);
	return j.result;
}

static int user_ensure_fn(struct store_txn *txn, void *ctx)
{
	struct store_user *u = ctx;
	return store_user_ensure(txn, u->name, u);
}

static void do_login(struct session *s, const char *login, const char *password, const char *method)
{
	struct imapd *d = s->d;
	struct dir_user du;
	char plogin[128];
	log_printable(plogin, sizeof(plogin), login, strlen(login));
	if (!s->tls && !s->plaintext_ok) {
		log_info("%s: [%s]: refused %s before TLS: user=<%s>", s->id, s->ip, method, plogin);
		sess_tagged(s, "NO", "[PRIVACYREQUIRED] Use STARTTLS (or port 993) before logging in.");
		return;
	}
	/* the shared penalty: this attempt waits its turn (imapd/limits.c) */
	if (imap_limits_auth_wait(s, login, method) < 0)
		return;
	memset(&du, 0, sizeof(du));
	char derr[DIR_ERROR_MAX];
	enum dir_result r = auth_check(d->dir, login, password, &du, derr, sizeof(derr));
	unsigned failures = imap_limits_auth_result(s, login, r == DIR_OK ? 1 : r == DIR_TEMPFAIL || r == DIR_ERROR ? -1 : 0);
	if (r == DIR_TEMPFAIL || r == DIR_ERROR) {
		log_warn("%s: [%s]: user directory unavailable for user=<%s>: %s", s->id, s->ip, plogin,
			 derr);
		sess_tagged(s, "NO", "[UNAVAILABLE] The user directory is unavailable, try again later.");
		return;
	}
	if (r != DIR_OK) {
		/* fail2ban: see doc/fail2ban/mailkeep-imapd.conf; the next attempt
		 * from this network or for this user waits the penalty */
		log_warn("%s: [%s]: IMAP authentication failed: method=%s, user=<%s>, failures=%u", s->id, s->ip,
			 method, plogin, failures);
		sess_tagged(s, "NO", "[AUTHENTICATIONFAILED] Authentication failed.");
		return;
	}
	struct store_user su;
	memset(&su, 0, sizeof(su));
	mk_strlcpy(su.name, du.name, sizeof(su.name));
	struct store_txn *txn = NULL;
	int sr = store_read_begin(d->store, &txn);
	if (sr == 0)
		sr = store_user_get(txn, du.name, &su);
	store_read_end(&txn);
	if (sr == STORE_ENOTFOUND)
		sr = store_write(d->store, user_ensure_fn, &su);
	if (sr != 0) {
		sess_store_error(s, sr, "Login");
		return;
	}
	mk_strlcpy(s->user, su.name, sizeof(s->user));
	s->user_id = su.id;
	s->state = S_AUTH;
	imap_limits_login(s->io.fd);
	log_info("%s: login: user=<%s>, method=%s, rip=%s, lip=%s%s", s->id, s->user, method, s->ip, s->lip,
		 s->tls ? ", TLS" : "");
	struct buf caps;
	buf_init(&caps, 4096);
	sess_capabilities(s, &caps);
	sess_tagged(s, "OK", "[CAPABILITY %s] Logged in", caps.data);
	buf_free(&caps);
}

void cmd_login(struct session *s, struct imap_command *cmd)
{
	if (cmd->nargs != 2) {
		sess_tagged(s, "BAD", "LOGIN needs a user name and a password");
		return;
	}
	const char *user = imap_arg_astring(s->arena, &cmd->args[0]);
	const char *pass = imap_arg_astring(s->arena, &cmd->args[1]);
	if (user == NULL || pass == NULL) {
		sess_tagged(s, "BAD", "Bad user name or password");
		return;
	}
	do_login(s, user, pass, "LOGIN");
}

void cmd_authenticate(struct session *s, struct imap_command *cmd)
{
	if (cmd->nargs < 1 || cmd->nargs > 2 || cmd->args[0].type != IMAP_ARG_ATOM) {
		sess_tagged(s, "BAD", "AUTHENTICATE needs a mechanism");
		return;
	}
	if (strcasecmp(cmd->args[0].str, "PLAIN") != 0) {
		sess_tagged(s, "NO", "Unsupported authentication mechanism");
		return;
	}
	if (!s->tls && !s->plaintext_ok) {
		sess_tagged(s, "NO", "[PRIVACYREQUIRED] Use STARTTLS (or port 993) before logging in.");
		return;
	}
	const char *b64;
	char *line = NULL;
	if (cmd->nargs == 2) {
		b64 = imap_arg_astring(s->arena, &cmd->args[1]);
		if (b64 == NULL) {
			sess_tagged(s, "BAD", "Bad initial response");
			return;
		}
		if (strcmp(b64, "=") == 0)
			b64 = "";
	} else {
		io_puts(&s->io, "+ \r\n");
		if (sess_read_line(s, sess_current_cmdlen(), &line) < 0) {
			s->state = S_LOGOUT;
			return;
		}
		b64 = line;
	}
	if (strcmp(b64, "*") == 0) {
		sess_tagged(s, "BAD", "Authentication cancelled");
		return;
	}
	size_t len = strlen(b64);
	if (len % 4 != 0 || len > 4096) {
		sess_tagged(s, "BAD", "Bad base64");
		return;
	}
	unsigned char *raw = imap_arena_alloc(s->arena, BASE64_DECODED_MAX(len));
	long n = base64_decode(b64, len, raw, BASE64_DECODED_MAX(len));
	if (n < 0) {
		sess_tagged(s, "BAD", "Bad base64");
		return;
	}
	/* authzid NUL authcid NUL password */
	const char *authz = (const char *)raw;
	const char *nul1 = memchr(raw, '\0', (size_t)n);
	const char *nul2 = nul1 ? memchr(nul1 + 1, '\0', (size_t)n - (size_t)(nul1 + 1 - authz)) : NULL;
	if (nul1 == NULL || nul2 == NULL) {
		sess_tagged(s, "BAD", "Bad PLAIN response");
		return;
	}
	char *user = imap_arena_strndup(s->arena, nul1 + 1, (size_t)(nul2 - nul1 - 1));
	char *pass = imap_arena_strndup(s->arena, nul2 + 1, (size_t)((const char *)raw + n - nul2 - 1));
	if (nul1 != authz && (strlen(user) != (size_t)(nul1 - authz) || strncmp(authz, user, strlen(user)) != 0)) {
		sess_tagged(s, "NO", "[AUTHORIZATIONFAILED] Acting as another user is not allowed");
		return;
	}
	do_login(s, user, pass, "PLAIN");
}

/* The password check of the other listeners of imapd (ManageSieve): the same
 * directory, worker threads and shared penalty (imapd/limits.c) as LOGIN. */
enum dir_result imapd_authenticate(struct imapd *d, const char *id, const char *ip, const char *proto,
				   struct io *io, const char *login, const char *password,
				   struct store_user *su_r)
{
	struct dir_user du;
	char plogin[128], derr[DIR_ERROR_MAX];
	log_printable(plogin, sizeof(plogin), login, strlen(login));
	if (imap_limits_auth_turn(id, ip, proto, io, login, "PLAIN") < 0)
		return DIR_TEMPFAIL;
	memset(&du, 0, sizeof(du));
	enum dir_result r = auth_check(d->dir, login, password, &du, derr, sizeof(derr));
	unsigned failures =
	    imap_limits_auth_done(id, ip, login, r == DIR_OK ? 1 : r == DIR_TEMPFAIL || r == DIR_ERROR ? -1 : 0);
	if (r == DIR_TEMPFAIL || r == DIR_ERROR) {
		log_warn("%s: [%s]: user directory unavailable for user=<%s>: %s", id, ip, plogin, derr);
		return DIR_TEMPFAIL;
	}
	if (r != DIR_OK) {
		/* fail2ban: see doc/fail2ban/mailkeep-imapd.conf */
		log_warn("%s: [%s]: %s authentication failed: method=PLAIN, user=<%s>, failures=%u", id, ip, proto,
			 plogin, failures);
		return DIR_BADPASS;
	}
	memset(su_r, 0, sizeof(*su_r));
	mk_strlcpy(su_r->name, du.name, sizeof(su_r->name));
	struct store_txn *txn = NULL;
	int sr = store_read_begin(d->store, &txn);
	if (sr == 0)
		sr = store_user_get(txn, du.name, su_r);
	store_read_end(&txn);
	if (sr == STORE_ENOTFOUND)
		sr = store_write(d->store, user_ensure_fn, su_r);
	if (sr != 0) {
		log_warn("%s: [%s]: user=<%s>: %s", id, ip, plogin, store_strerror(sr));
		return DIR_TEMPFAIL;
	}
	return DIR_OK;
}
