/* cmd_stats_smtp — reads smtpin's Postfix-shaped log lines (a file, several,
 * or "-" for standard input; default /var/log/mail.log) and prints what
 * happened: connections, postscreen verdicts (PREGREET, DNSBL, BARE NEWLINE,
 * NON-SMTP COMMAND, COMMAND PIPELINING, PASS NEW/OLD), messages delivered,
 * rejections by reason and the clients rejected most, SASL failures. The
 * same lines also feed pflogsumm and fail2ban. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "lib/xmalloc.h"
#include "tools/cmd_stats_smtp.h"

#define TOP_MAX 512

struct counter {
	char key[160];
	unsigned long n;
};

struct table {
	struct counter items[TOP_MAX];
	size_t n;
	unsigned long other;
};

static void count(struct table *t, const char *key)
{
	for (size_t i = 0; i < t->n; i++) {
		if (strcmp(t->items[i].key, key) == 0) {
			t->items[i].n++;
			return;
		}
	}
	if (t->n == TOP_MAX) {
		t->other++;
		return;
	}
	mk_strlcpy(t->items[t->n].key, key, sizeof(t->items[t->n].key));
	t->items[t->n++].n = 1;
}

static int by_count(const void *a, const void *b)
{
	const struct counter *x = a, *y = b;
	return x->n < y->n ? 1 : x->n > y->n ? -1 : strcmp(x->key, y->key);
}

static void print_table(const char *title, struct table *t, size_t top)
{
	qsort(t->items, t->n, sizeof(t->items[0]), by_count);
	printf("\n%s\n", title);
	if (t->n == 0)
		printf("  (none)\n");
	for (size_t i = 0; i < t->n && i < top; i++)
		printf("  %7lu  %s\n", t->items[i].n, t->items[i].key);
	if (t->other)
		printf("  %7lu  (more, not listed)\n", t->other);
}

struct stats {
	unsigned long connect, delivered, deferred, pass_new, pass_old, allowlisted, denylisted,
	    dropped, sasl_ok;
	struct table postscreen, reasons, clients, sasl_fail;
};

/* The reason of a reject reply: "554 5.7.1 <x>: Recipient address rejected: Greylisted ..." -> "450
 * Greylisted". */
static void reason_of(const char *reply, char *out, size_t outsize)
{
	char code[4] = "";
	const char *p = reply;

	if (strlen(p) >= 3 && isdigit((unsigned char)p[0]))
		memcpy(code, p, 3), code[3] = 0;
	const char *r = strstr(reply, "rejected: ");
	if (r)
		p = r + 10;
	else if ((r = strstr(reply, "Service unavailable; ")) != NULL)
		p = r + 21;
	else if ((r = strstr(reply, ">: ")) != NULL)
		p = r + 3;
	else if (strlen(reply) > 10)
		p = reply + 10;
	/* drop what varies per message: addresses in brackets, "(N seconds left)" */
	char buf[160];
	size_t o = 0;
	for (; *p && *p != ';' && o < sizeof(buf) - 1; p++) {
		if (*p == '[') {
			const char *e = strchr(p, ']');
			if (e) {
				p = e;
				buf[o++] = '*';
				continue;
			}
		}
		if (*p == '(')
			break;
		buf[o++] = *p;
	}
	while (o > 0 && buf[o - 1] == ' ')
		o--;
	buf[o] = 0;
	if (outsize < 5)
		return;
	mk_strlcpy(out, code, outsize);
	mk_strlcpy(out + strlen(out), " ", outsize - strlen(out));
	mk_strlcpy(out + strlen(out), buf, outsize - strlen(out));
}

/* smtpin logs as <syslog_name>/smtpin (the daemon), /smtpd (sessions),
 * /postscreen, /qmgr and /local (deliveries), as Postfix's programs do. */
static const char *smtpin_text(const char *line)
{
	static const char *const svcs[] = {"/smtpd[", "/postscreen[", "/qmgr[", "/local[", "/smtpin["};

	for (size_t i = 0; i < sizeof(svcs) / sizeof(svcs[0]); i++) {
		const char *m = strstr(line, svcs[i]);
		if (m != NULL && (m = strstr(m, "]: ")) != NULL)
			return m;
	}
	return NULL;
}

static void scan_line(struct stats *st, const char *line)
{
	const char *m = smtpin_text(line);
	char key[160];

	if (m == NULL)
		return;
	m += 3;
	if (strncmp(m, "connect from ", 13) == 0) {
		st->connect++;
	} else if (strncmp(m, "PASS NEW ", 9) == 0) {
		st->pass_new++;
	} else if (strncmp(m, "PASS OLD ", 9) == 0) {
		st->pass_old++;
	} else if (strncmp(m, "ALLOWLISTED ", 12) == 0) {
		st->allowlisted++;
	} else if (strncmp(m, "DENYLISTED ", 11) == 0) {
		st->denylisted++;
		count(&st->postscreen, "DENYLISTED");
	} else if (strncmp(m, "DISCONNECT ", 11) == 0) {
		st->dropped++;
	} else if (strncmp(m, "PREGREET ", 9) == 0) {
		count(&st->postscreen, "PREGREET");
	} else if (strncmp(m, "DNSBL rank ", 11) == 0) {
		count(&st->postscreen, "DNSBL");
	} else if (strncmp(m, "BARE NEWLINE ", 13) == 0) {
		count(&st->postscreen, "BARE NEWLINE");
	} else if (strncmp(m, "NON-SMTP COMMAND ", 17) == 0) {
		count(&st->postscreen, "NON-SMTP COMMAND");
	} else if (strncmp(m, "COMMAND PIPELINING ", 19) == 0) {
		count(&st->postscreen, "COMMAND PIPELINING");
	} else if (strstr(m, ", status=sent ") != NULL) {
		st->delivered++;
	} else if (strstr(m, ", status=deferred ") != NULL) {
		st->deferred++;
	} else if (strstr(m, ": client=") != NULL && strstr(m, "sasl_username=") != NULL) {
		st->sasl_ok++;
	} else if (strstr(m, "SASL ") != NULL && strstr(m, "authentication failed") != NULL) {
		const char *c = strstr(m, "warning: ");
		c = c ? c + 9 : m;
		const char *e = strstr(c, ": SASL");
		size_t n = e ? (size_t)(e - c) : strlen(c);
		snprintf(key, sizeof(key), "%.*s", (int)(n < 150 ? n : 150), c);
		count(&st->sasl_fail, key);
	} else {
		const char *r = strstr(m, ": reject: ");
		if (r == NULL)
			return;
		const char *from = strstr(r, " from ");
		const char *colon = from ? strstr(from + 6, ": ") : NULL;
		if (from == NULL || colon == NULL)
			return;
		snprintf(key, sizeof(key), "%.*s",
			 (int)((colon - from - 6) < 150 ? (colon - from - 6) : 150), from + 6);
		count(&st->clients, key);
		reason_of(colon + 2, key, sizeof(key));
		count(&st->reasons, key);
	}
}

static int scan_file(struct stats *st, const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;

	if (f == NULL) {
		cli_error("stats --smtp: cannot read %s", path);
		return -1;
	}
	while (getline(&line, &cap, f) > 0)
		scan_line(st, line);
	free(line);
	if (f != stdin)
		fclose(f);
	return 0;
}

int stats_smtp_run(struct cli *cli, int argc, char **argv)
{
	struct stats *st = xcalloc(1, sizeof(*st));
	int files = 0, rc = 0;
	unsigned long rejects = 0, ps = 0;

	(void)cli;
	if (st == NULL)
		return 1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--smtp") == 0)
			continue;
		if (argv[i][0] == '-' && argv[i][1] != 0) {
			free(st);
			return cli_usage(&cmd_stats);
		}
		files++;
		if (scan_file(st, argv[i]) < 0)
			rc = 1;
	}
	if (files == 0 && scan_file(st, "/var/log/mail.log") < 0)
		rc = 1;
	for (size_t i = 0; i < st->reasons.n; i++)
		rejects += st->reasons.items[i].n;
	for (size_t i = 0; i < st->postscreen.n; i++)
		ps += st->postscreen.items[i].n;
	printf("connections %lu\ndelivered %lu\ndeferred %lu\nrejected %lu\n", st->connect,
	       st->delivered, st->deferred, rejects);
	printf("postscreen pass_new %lu pass_old %lu allowlisted %lu failed %lu dropped %lu\n",
	       st->pass_new, st->pass_old, st->allowlisted, ps, st->dropped);
	printf("sasl ok %lu\n", st->sasl_ok);
	print_table("postscreen tests failed:", &st->postscreen, 20);
	print_table("rejections by reason:", &st->reasons, 20);
	print_table("clients rejected most:", &st->clients, 10);
	print_table("SASL authentication failures by client:", &st->sasl_fail, 10);
	free(st);
	return rc;
}
