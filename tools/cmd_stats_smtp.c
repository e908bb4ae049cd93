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

#include "index/maillog.h"
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
	    dropped, sasl_ok, junk, retrain_spam, retrain_innocent;
	unsigned long classes[MLOG_CLASSES];
	struct table postscreen, reasons, clients, sasl_fail;
};

static void scan_line(struct stats *st, const char *line)
{
	struct maillog_event ev;

	switch (maillog_parse_line(line, &ev)) { /* index/maillog.h: one reading for all */
	case MLOG_CONNECT:
		st->connect++;
		break;
	case MLOG_PASS_NEW:
		st->pass_new++;
		break;
	case MLOG_PASS_OLD:
		st->pass_old++;
		break;
	case MLOG_ALLOWLISTED:
		st->allowlisted++;
		break;
	case MLOG_DROPPED:
		st->dropped++;
		break;
	case MLOG_POSTSCREEN:
		if (strcmp(ev.detail, "DENYLISTED") == 0)
			st->denylisted++;
		count(&st->postscreen, ev.detail);
		break;
	case MLOG_DELIVERED:
		st->delivered++;
		if (ev.junk)
			st->junk++;
		break;
	case MLOG_DEFERRED:
		st->deferred++;
		break;
	case MLOG_SASL_OK:
		st->sasl_ok++;
		break;
	case MLOG_RETRAIN:
		if (ev.junk)
			st->retrain_spam++;
		else
			st->retrain_innocent++;
		break;
	case MLOG_SASL_FAIL:
		count(&st->sasl_fail, ev.detail);
		break;
	case MLOG_REJECT:
		count(&st->clients, ev.client);
		count(&st->reasons, ev.detail);
		st->classes[ev.cls]++;
		break;
	default:
		break;
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
	printf("delivered_to_junk %lu\nretrained_spam %lu\nretrained_innocent %lu\n", st->junk,
	       st->retrain_spam, st->retrain_innocent);
	for (int c = 1; c <= MLOG_CLASSES; c++) /* "other" last */
		printf("rejected_%s %lu\n",
		       maillog_class_name((enum maillog_class)(c % MLOG_CLASSES)),
		       st->classes[c % MLOG_CLASSES]);
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
