/* auth — AUTH PLAIN and LOGIN (RFC 4954) against the user directory.
 * Offered only under TLS unless smtpd_tls_auth_only = no. A password check
 * may take an LDAP round trip or a slow hash, so it runs on the job pool.
 * Failures are logged as Postfix does, so fail2ban's postfix-sasl filter
 * (and doc/fail2ban/mailkeep-smtpin.conf) match them:
 *   warning: unknown[192.0.2.7]: SASL PLAIN authentication failed: authentication failure
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/base64.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "smtpin/smtpin.h"

struct auth_job {
	struct session *s;
	char login[DIR_NAME_MAX];
	char password[512];
	int result;
	struct dir_user user;
};

static void auth_work(void *arg)
{
	struct auth_job *j = arg;
	struct server *srv = j->s->srv;

	j->result = dir_authenticate(srv->dir, j->login, j->password, &j->user);
}

static void auth_done(void *arg)
{
	struct auth_job *j = arg;
	struct session *s = j->s;

	explicit_bzero(j->password, sizeof(j->password));
	/* the penalty counts the attempt even if the client hung up meanwhile */
	limits_auth_result(s, j->login,
			   j->result == DIR_OK					 ? 1
			   : j->result == DIR_TEMPFAIL || j->result == DIR_ERROR ? -1
										 : 0);
	if (!s->closed) {
		if (j->result == DIR_OK) {
			s->authed = 1;
			mk_strlcpy(s->sasl_user, j->user.name, sizeof(s->sasl_user));
			s->cnt_ok[SMTP_AUTH]++;
			session_reply(s, "235 2.7.0 Authentication successful");
		} else if (j->result == DIR_TEMPFAIL) {
			log_warn_as("smtpd", "%s: SASL %s authentication failed: temporary failure",
				    s->client, s->sasl_method);
			session_reply(s, "454 4.7.0 Temporary authentication failure");
		} else {
			log_warn_as("smtpd",
				    "%s: SASL %s authentication failed: authentication failure",
				    s->client, s->sasl_method);
			session_reply(
			    s, "535 5.7.8 Error: authentication failed: authentication failure");
		}
	}
	free(j);
	session_resume(s);
	session_unref(s);
}

/* The penalty refused the attempt without a check (why), or the session
 * closed while it waited (why NULL). */
static void auth_refused(void *arg, const char *why)
{
	struct auth_job *j = arg;
	struct session *s = j->s;

	explicit_bzero(j->password, sizeof(j->password));
	if (!s->closed && why != NULL) {
		/* the shape of the line above: fail2ban's filters count it */
		log_warn_as("smtpd", "%s: SASL %s authentication failed: %s", s->client,
			    s->sasl_method, why);
		session_reply(s, "454 4.7.0 Temporary authentication failure: too many failed "
				 "attempts, try again later");
	}
	free(j);
	session_resume(s);
	session_unref(s);
}

static void check(struct session *s, const char *login, const char *password)
{
	struct auth_job *j = xcalloc(1, sizeof(*j));

	j->s = s;
	mk_strlcpy(j->login, login, sizeof(j->login));
	mk_strlcpy(j->password, password, sizeof(j->password));
	s->state = SS_CMD;
	s->auth_step = 0;
	session_ref(s);
	s->busy = 1;
	bufferevent_disable(s->bev, EV_READ);
	/* the penalty decides when the password is looked at (limits.c) */
	limits_auth_submit(s, j->login, auth_work, auth_done, auth_refused, j);
}

/* PLAIN: authzid NUL authcid NUL password */
static void plain(struct session *s, const char *b64, size_t len)
{
	unsigned char dec[1024];
	long n = base64_decode(b64, len, dec, sizeof(dec) - 1);

	if (n < 0) {
		s->state = SS_CMD;
		session_reply(s, "501 5.5.2 Cannot decode response");
		return;
	}
	dec[n] = 0;
	const char *authzid = (const char *)dec;
	const char *nul1 = memchr(dec, 0, (size_t)n);
	const char *nul2 =
	    nul1 ? memchr(nul1 + 1, 0, (size_t)(dec + n - (unsigned char *)nul1 - 1)) : NULL;
	if (nul1 == NULL || nul2 == NULL) {
		s->state = SS_CMD;
		session_reply(s, "501 5.5.2 Invalid authentication data");
		return;
	}
	const char *authcid = nul1 + 1;
	const char *password = nul2 + 1;
	if (authzid[0] && strcmp(authzid, authcid) != 0) {
		s->state = SS_CMD;
		log_warn_as("smtpd",
			    "%s: SASL PLAIN authentication failed: authorization identity differs",
			    s->client);
		session_reply(
		    s, "535 5.7.8 Error: authentication failed: authorization identity differs");
		return;
	}
	check(s, authcid, password);
	explicit_bzero(dec, sizeof(dec));
}

void auth_start(struct session *s, const char *arg)
{
	struct server *srv = s->srv;
	char mech[16];
	const char *init;
	size_t i = 0;

	if (!srv->sasl || srv->dir == NULL) {
		session_reply(s, "503 5.5.1 Error: authentication not enabled");
		return;
	}
	if (!s->tls && (srv->tls_auth_only || s->submission)) {
		session_reply(
		    s, "538 5.7.11 Encryption required for requested authentication mechanism");
		return;
	}
	if (!s->helo_seen || !s->esmtp) {
		session_reply(s, "503 5.5.1 Error: send EHLO first");
		return;
	}
	if (s->authed) {
		session_reply(s, "503 5.5.1 Error: already authenticated");
		return;
	}
	if (s->mail_seen) {
		session_reply(s, "503 5.5.1 Error: MAIL transaction in progress");
		return;
	}
	while (arg[i] && arg[i] != ' ' && i < sizeof(mech) - 1) {
		mech[i] = arg[i];
		i++;
	}
	mech[i] = 0;
	init = arg + i;
	while (*init == ' ')
		init++;
	if (strcasecmp(mech, "PLAIN") == 0) {
		mk_strlcpy(s->sasl_method, "PLAIN", sizeof(s->sasl_method));
		if (*init == 0) {
			s->state = SS_AUTH;
			s->auth_step = 3;
			session_reply(s, "334 ");
			return;
		}
		if (strcmp(init, "=") == 0)
			init = "";
		plain(s, init, strlen(init));
		return;
	}
	if (strcasecmp(mech, "LOGIN") == 0) {
		mk_strlcpy(s->sasl_method, "LOGIN", sizeof(s->sasl_method));
		s->state = SS_AUTH;
		if (*init) {
			auth_continue(
			    s, init,
			    strlen(init)); /* initial response: the user name (RFC 4954 4) */
			return;
		}
		s->auth_step = 1;
		session_reply(s, "334 VXNlcm5hbWU6");
		return;
	}
	session_reply(s, "504 5.5.4 Unsupported authentication mechanism");
}

void auth_continue(struct session *s, const char *line, size_t len)
{
	unsigned char dec[512];
	long n;

	if (len == 1 && line[0] == '*') {
		s->state = SS_CMD;
		s->auth_step = 0;
		session_reply(s, "501 5.7.0 Authentication aborted");
		return;
	}
	if (s->auth_step == 3) {
		plain(s, line, len);
		return;
	}
	if (s->auth_step == 0)
		s->auth_step = 1;
	n = base64_decode(line, len, dec, sizeof(dec) - 1);
	if (n < 0 || memchr(dec, 0, (size_t)n) != NULL) {
		s->state = SS_CMD;
		s->auth_step = 0;
		session_reply(s, "501 5.5.2 Cannot decode response");
		return;
	}
	dec[n] = 0;
	if (s->auth_step == 1) {
		mk_strlcpy(s->auth_login, (const char *)dec, sizeof(s->auth_login));
		s->auth_step = 2;
		session_reply(s, "334 UGFzc3dvcmQ6");
		return;
	}
	check(s, s->auth_login, (const char *)dec);
	explicit_bzero(dec, sizeof(dec));
}
