/* cmd_queue — `mailkeep queue list|show|flush|hold|release|delete`: the
 * outbound queue (index/queue.h), with Postfix's habits: `list` is mailq's
 * table, `flush` is `postqueue -f` / `-i ID`, hold/release/delete are
 * `postsuper -h/-H/-d` (ALL for every message). A change is a store write:
 * mailkeep-smtpout sees it through the store's change notice at once. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "index/queue.h"
#include "lib/util.h"
#include "tools/cli.h"

static const char queue_help[] =
    "The outbound queue: mail accepted for other domains (submission, `mailkeep\n"
    "sendmail`, a backup MX) and the notifications (bounces) mailkeep writes,\n"
    "waiting for mailkeep-smtpout.\n\n"
    "  queue list              every message, as mailq prints it: queue id (! = on\n"
    "                          hold), size, arrival, sender, then each recipient\n"
    "                          with the reason of its last failure\n"
    "  queue show ID           the message's envelope, state and bytes\n"
    "  queue flush [ID]        deliver now (all messages, or one)\n"
    "  queue hold ID|ALL       keep it (them) from being delivered\n"
    "  queue release ID|ALL    deliver it (them) again\n"
    "  queue delete ID|ALL     remove it (them) without a bounce\n\n"
    "examples:\n  mailkeep queue list\n  mailkeep queue flush\n  mailkeep queue delete "
    "4911A2B5CA10280000\n";

struct qrun {
	struct cli *cli;
	const char *id;
	int all;
	int64_t now;
	int count;
	uint64_t bytes;
};

static void fmt_time(int64_t t, char *out, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	localtime_r(&tt, &tm);
	strftime(out, size, "%a %b %e %H:%M:%S", &tm);
}

static struct store_txn *list_txn;

static int list_rcpt(const struct queue_rcpt *r, void *ctx)
{
	(void)ctx;
	if (r->why[0])
		printf("%47s(%s)\n", "", r->why);
	printf("%47s%s%s\n", "", r->addr, r->state == QUEUE_BOUNCED ? " (bounced)" : "");
	return 0;
}

static int list_msg(const struct queue_msg *m, void *ctx)
{
	struct qrun *q = ctx;
	char when[64];

	fmt_time(m->arrival, when, sizeof(when));
	printf("%-18s%c %8llu %s  %s\n", m->qid, m->hold ? '!' : ' ', (unsigned long long)m->size,
	       when, m->from[0] ? m->from : "MAILER-DAEMON");
	queue_rcpt_foreach(list_txn, m->qid, list_rcpt, NULL);
	printf("\n");
	q->count++;
	q->bytes += m->size;
	return 0;
}

static int queue_list(struct qrun *q)
{
	struct store *st = cli_store(q->cli, 1);
	uint64_t msgs, rcpts, held;
	int rc;

	if (st == NULL)
		return 1;
	if ((rc = store_read_begin(st, &list_txn)) != 0) {
		cli_error("queue list: %s", cli_store_hint(rc));
		return 1;
	}
	if (queue_count(list_txn, &msgs, &rcpts, &held) == 0 && msgs == 0) {
		printf("Mail queue is empty\n");
		store_read_end(&list_txn);
		return 0;
	}
	printf("-Queue ID-        --Size-- ----Arrival Time---- -Sender/Recipient-------\n");
	rc = queue_foreach(list_txn, list_msg, q);
	store_read_end(&list_txn);
	if (rc != 0) {
		cli_error("queue list: %s", cli_store_hint(rc));
		return 1;
	}
	printf("-- %llu Kbytes in %llu Request%s%s.\n",
	       (unsigned long long)(q->bytes + 1023) / 1024, (unsigned long long)msgs,
	       msgs == 1 ? "" : "s", held ? " (some on hold)" : "");
	return 0;
}

static int show_rcpt(const struct queue_rcpt *r, void *ctx)
{
	(void)ctx;
	printf("recipient: %s%s\n", r->addr, r->state == QUEUE_BOUNCED ? " (bounced)" : "");
	if (r->dsn[0] || r->why[0])
		printf("  last: dsn=%s relay=%s (%s)\n", r->dsn, r->relay[0] ? r->relay : "none",
		       r->why);
	return 0;
}

static int queue_show(struct qrun *q)
{
	struct store *st = cli_store(q->cli, 1);
	struct store_txn *txn;
	struct queue_msg m;
	char when[64], next[64];
	int rc;

	if (st == NULL)
		return 1;
	if ((rc = store_read_begin(st, &txn)) != 0) {
		cli_error("queue show: %s", cli_store_hint(rc));
		return 1;
	}
	if ((rc = queue_get(txn, q->id, &m)) != 0) {
		store_read_end(&txn);
		cli_error("queue show: %s: %s", q->id,
			  rc == STORE_ENOTFOUND ? "no such message in the queue"
						: cli_store_hint(rc));
		return 1;
	}
	fmt_time(m.arrival, when, sizeof(when));
	fmt_time(m.next_try, next, sizeof(next));
	printf("queue_id: %s\nsender: %s\narrival: %s\nsize: %llu\nclient: %s\n", m.qid,
	       m.from[0] ? m.from : "<>", when, (unsigned long long)m.size, m.client);
	if (m.sasl_user[0])
		printf("sasl_username: %s\n", m.sasl_user);
	if (m.kind[0])
		printf("kind: %s\n", m.kind);
	printf("tries: %u\nstate: %s\n", m.tries, m.hold ? "on hold" : "waiting");
	if (!m.hold)
		printf("next_try: %s\n", next);
	queue_rcpt_foreach(txn, m.qid, show_rcpt, NULL);
	const void *data;
	size_t len;
	if (store_blob_get(txn, m.hash, &data, &len) == 0) {
		printf("\n");
		fwrite(data, 1, len, stdout);
	}
	store_read_end(&txn);
	return 0;
}

enum change { CH_FLUSH, CH_HOLD, CH_RELEASE, CH_DELETE };
static enum change change_kind;

struct ids {
	char (*v)[QUEUE_ID_MAX];
	size_t n, cap;
};

static int collect(const struct queue_msg *m, void *ctx)
{
	struct ids *ids = ctx;

	if (ids->n == ids->cap) {
		ids->cap = ids->cap ? ids->cap * 2 : 64;
		ids->v = realloc(ids->v, ids->cap * sizeof(*ids->v));
		if (ids->v == NULL) {
			cli_error("out of memory");
			exit(1);
		}
	}
	mk_strlcpy(ids->v[ids->n++], m->qid, QUEUE_ID_MAX);
	return 0;
}

static int change_fn(struct store_txn *txn, void *ctx)
{
	struct qrun *q = ctx;
	struct ids ids = {0};
	int rc = 0;

	q->count = 0;
	if (change_kind == CH_FLUSH) {
		rc = queue_flush(txn, q->id, q->now);
		if (rc == 0)
			q->count = 1;
		return rc;
	}
	if (q->all) {
		if ((rc = queue_foreach(txn, collect, &ids)) != 0)
			return rc;
	} else {
		ids.v = calloc(1, sizeof(*ids.v));
		if (ids.v == NULL)
			return STORE_EIO;
		mk_strlcpy(ids.v[0], q->id, QUEUE_ID_MAX);
		ids.n = 1;
	}
	for (size_t i = 0; i < ids.n && rc == 0; i++) {
		if (change_kind == CH_DELETE)
			rc = queue_delete(txn, ids.v[i]);
		else
			rc = queue_hold(txn, ids.v[i], change_kind == CH_HOLD);
		if (rc == 0)
			q->count++;
	}
	free(ids.v);
	return rc;
}

static int queue_change(struct qrun *q, enum change kind, const char *verb)
{
	struct store *st = cli_store(q->cli, 0);
	int rc;

	if (st == NULL)
		return 1;
	change_kind = kind;
	q->now = (int64_t)time(NULL);
	rc = store_write(st, change_fn, q);
	if (rc == STORE_ENOTFOUND) {
		cli_error("queue %s: %s: no such message in the queue", verb, q->id);
		return 1;
	}
	if (rc != 0) {
		cli_error("queue %s: %s", verb, cli_store_hint(rc));
		return 1;
	}
	if (kind == CH_FLUSH)
		printf("queue flush: %s due now\n", q->id && q->id[0] ? q->id : "every message is");
	else
		printf("queue %s: %d message%s\n", verb, q->count, q->count == 1 ? "" : "s");
	return 0;
}

static int run(struct cli *cli, int argc, char **argv)
{
	struct qrun q = {.cli = cli};
	const char *sub;

	if (argc < 2)
		return cli_usage(&cmd_queue);
	sub = argv[1];
	q.id = argc > 2 ? argv[2] : NULL;
	q.all = q.id != NULL && strcmp(q.id, "ALL") == 0;
	if (argc > 3)
		return cli_usage(&cmd_queue);
	if (strcmp(sub, "list") == 0 && argc == 2)
		return queue_list(&q);
	if (strcmp(sub, "show") == 0 && q.id && !q.all)
		return queue_show(&q);
	if (strcmp(sub, "flush") == 0 && !q.all)
		return queue_change(&q, CH_FLUSH, "flush");
	if (q.id == NULL)
		return cli_usage(&cmd_queue);
	if (strcmp(sub, "hold") == 0)
		return queue_change(&q, CH_HOLD, "hold");
	if (strcmp(sub, "release") == 0)
		return queue_change(&q, CH_RELEASE, "release");
	if (strcmp(sub, "delete") == 0)
		return queue_change(&q, CH_DELETE, "delete");
	return cli_usage(&cmd_queue);
}

const struct command cmd_queue = {
    "queue",
    "list|show|flush|hold|release|delete [ID|ALL]",
    "the outbound queue: list, show, flush, hold, release, delete (mailq, postqueue, postsuper)",
    queue_help,
    run,
};
