/* relay — the backup MX: mail for relay_domains is accepted for valid
 * recipients only (relay_recipient_maps: files in Postfix's relay_recipients
 * shape, and/or the user directory, e.g. the organisation's LDAP), queued
 * (index/queue.h) and handed by mailkeep-smtpout to the best MX that is not
 * this host, retrying until maximal_queue_lifetime. Refusing unknown
 * recipients at RCPT keeps the backup from accepting mail it would have to
 * bounce later (backscatter).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/array.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "smtpin/smtpin.h"

#define RELAY_MAP_MAX ((size_t)64 << 20)

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_file(struct server *srv, const char *path, char *err, size_t errsize)
{
	char *data = NULL;
	size_t len = 0, cap = srv->nrelay_rcpts;

	if (mk_read_file(path, RELAY_MAP_MAX, &data, &len) < 0) {
		snprintf(err, errsize, "relay_recipient_maps: cannot read %s", path);
		return -1;
	}
	for (char *line = data, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		while (*line == ' ' || *line == '\t')
			line++;
		if (*line == '#' || *line == 0 || *line == '\r')
			continue;
		size_t l = strcspn(line, " \t\r");
		line[l] = 0;
		for (char *c = line; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		*ARRAY_PUSH(srv->relay_rcpts, srv->nrelay_rcpts, cap) = xstrdup(line);
	}
	free(data);
	return 0;
}

int relay_load(struct server *srv, char *err, size_t errsize)
{
	const struct config_list *maps = &srv->p.relay_recipient_maps;

	for (size_t i = 0; i < maps->n; i++) {
		const char *m = maps->item[i];
		if (strcmp(m, "directory") == 0) {
			srv->relay_directory = 1;
			continue;
		}
		/* Postfix's "hash:/etc/postfix/relay_recipients" is read as the text it was made
		 * from */
		if (strncmp(m, "hash:", 5) == 0 || strncmp(m, "texthash:", 9) == 0)
			m = strchr(m, ':') + 1;
		if (load_file(srv, m, err, errsize) < 0)
			return -1;
	}
	if (srv->nrelay_rcpts > 1)
		qsort(srv->relay_rcpts, srv->nrelay_rcpts, sizeof(*srv->relay_rcpts), cmp_str);
	if (srv->p.relay_domains.n > 0 && maps->n == 0)
		log_warn_as("smtpd",
			    "relay_domains is set but relay_recipient_maps is empty: every "
			    "recipient of those domains is refused");
	return 0;
}

int relay_domain(struct server *srv, const char *domain)
{
	const struct config_list *l = &srv->p.relay_domains;

	for (size_t i = 0; i < l->n; i++)
		if (strcasecmp(l->item[i], domain) == 0)
			return 1;
	return 0;
}

static int in_files(struct server *srv, const char *addr)
{
	char key[SMTP_ADDR_MAX + 2], *k = key;
	const char *at = strrchr(addr, '@');

	mk_strlcpy(key, addr, sizeof(key));
	smtp_lower(key);
	if (bsearch(&k, srv->relay_rcpts, srv->nrelay_rcpts, sizeof(char *), cmp_str))
		return 1;
	if (at != NULL) {
		snprintf(key, sizeof(key), "%s", at);
		smtp_lower(key);
		if (bsearch(&k, srv->relay_rcpts, srv->nrelay_rcpts, sizeof(char *), cmp_str))
			return 1;
	}
	return 0;
}

static void relay_reply(struct session *s, int result)
{
	char reply[700], to[SMTP_ADDR_MAX + 1];

	PRINTABLE(to, s->cur.addr);
	if (result == DIR_OK) {
		session_add_remote_rcpt(s);
		s->cnt_ok[SMTP_RCPT]++;
		session_reply(s, "250 2.1.5 Ok");
	} else if (result == DIR_NOTFOUND) {
		snprintf(
		    reply, sizeof(reply),
		    "550 5.1.1 <%s>: Recipient address rejected: User unknown in relay recipient "
		    "table",
		    to);
		session_logreject(s, "RCPT", reply);
		session_reply(s, "%s", reply);
	} else {
		snprintf(reply, sizeof(reply), "451 4.3.0 <%s>: Temporary lookup failure", to);
		session_logreject(s, "RCPT", reply);
		session_reply(s, "%s", reply);
	}
	session_resume(s);
	session_unref(s);
}

static void directory_done(struct session *s, int result, const char *user)
{
	(void)user;
	if (s->closed) {
		session_unref(s);
		return;
	}
	relay_reply(s, result == DIR_OK		? DIR_OK
		       : result == DIR_NOTFOUND ? DIR_NOTFOUND
						: DIR_TEMPFAIL);
}

void relay_rcpt(struct session *s)
{
	struct server *srv = s->srv;

	if (in_files(srv, s->cur.addr)) {
		relay_reply(s, DIR_OK);
		return;
	}
	if (srv->relay_directory && srv->dir != NULL) {
		deliver_lookup_rcpt(s, directory_done); /* the directory answers on the pool */
		return;
	}
	relay_reply(s, DIR_NOTFOUND);
}
