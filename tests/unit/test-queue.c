/* test-queue — index/queue*.c on a temporary store: a submission stores the
 * bytes once for local and remote recipients in one write, per-recipient
 * results, the schedule, hold/flush/delete, the blob reference released with
 * the last recipient (fsck clean at each step), and the DSN's shape. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "index/queue.h"

static char dir[64];
static struct store *st;

static int setup(void **state)
{
	char err[256];
	struct store_options o = {0};
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test-queue.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	return store_open(dir, &o, &st, err, sizeof(err)) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	store_close(&st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void report(const char *problem, void *ctx)
{
	(void)ctx;
	fprintf(stderr, "fsck: %s\n", problem);
}

static int fsck(void)
{
	return store_fsck(st, report, NULL, NULL);
}

static const char MSG[] = "From: alice@example.org\r\nSubject: hi\r\n\r\nbody\r\n";

struct result_ctx {
	const char *qid;
	uint32_t idx;
	enum queue_result res;
	const char *dsn, *why;
	struct queue_msg upd;
	int do_upd, do_del;
};

static int result_fn(struct store_txn *txn, void *ctx)
{
	struct result_ctx *r = ctx;
	int rc = 0;
	if (r->why != NULL)
		rc = queue_rcpt_result(txn, r->qid, r->idx, r->res, r->dsn, r->why,
				       "mx[192.0.2.1]:25");
	if (rc == 0 && r->do_upd)
		rc = queue_update(txn, &r->upd);
	if (rc == 0 && r->do_del)
		rc = queue_delete(txn, r->qid);
	return rc;
}

static int count_rcpt(const struct queue_rcpt *r, void *ctx)
{
	(*(int *)ctx)++;
	(void)r;
	return 0;
}

struct due {
	char qid[QUEUE_ID_MAX];
	int n;
};
static int due_cb(const char *qid, int64_t when, void *ctx)
{
	struct due *d = ctx;
	(void)when;
	snprintf(d->qid, sizeof(d->qid), "%s", qid);
	d->n++;
	return 0;
}

static void test_submit_and_results(void **state)
{
	struct store_rcpt local[1] = {{.user = "bob"}};
	const char *remote[] = {"carol@example.com", "dave@example.net"};
	struct queue_submission sub = {.data = MSG,
				       .len = sizeof(MSG) - 1,
				       .from = "alice@example.org",
				       .qid = "ABC123",
				       .local = local,
				       .nlocal = 1,
				       .remote = remote,
				       .nremote = 2,
				       .now = 1000};
	char qid[QUEUE_ID_MAX];
	uint8_t hash[STORE_HASH_LEN];
	struct store_txn *txn;
	struct queue_msg m;
	struct store_blob_info bi;
	(void)state;

	assert_int_equal(queue_submit(st, &sub, qid, hash), 0);
	assert_string_equal(qid, "ABC123");
	assert_int_equal(local[0].result, 0);
	assert_int_equal(fsck(), 0);
	assert_int_equal(store_read_begin(st, &txn), 0);
	assert_int_equal(queue_get(txn, qid, &m), 0);
	assert_int_equal(m.nrcpt, 2);
	assert_string_equal(m.from, "alice@example.org");
	assert_int_equal(m.size, sizeof(MSG) - 1);
	/* one blob, two references: bob's INBOX and the queue entry */
	assert_int_equal(store_blob_info(txn, hash, &bi), 0);
	assert_int_equal(bi.refs, 2);
	struct due d = {{0}, 0};
	assert_int_equal(queue_due(txn, 999, 0, due_cb, &d), 0);
	assert_int_equal(d.n, 0);
	assert_int_equal(queue_due(txn, 1000, 0, due_cb, &d), 0);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.qid, "ABC123");
	store_read_end(&txn);

	/* the same wished-for id again: a new one is chosen */
	char qid2[QUEUE_ID_MAX];
	sub.nlocal = 0;
	assert_int_equal(queue_submit(st, &sub, qid2, NULL), 0);
	assert_string_not_equal(qid2, "ABC123");

	/* carol sent, dave deferred, then bounced */
	struct result_ctx r = {
	    .qid = qid, .idx = 0, .res = QUEUE_SENT, .dsn = "2.0.0", .why = "250 ok"};
	assert_int_equal(store_write(st, result_fn, &r), 0);
	r = (struct result_ctx){.qid = qid,
				.idx = 1,
				.res = QUEUE_DEFERRED,
				.dsn = "4.4.1",
				.why = "connect to mx: Connection refused"};
	assert_int_equal(store_read_begin(st, &txn), 0);
	assert_int_equal(queue_get(txn, qid, &m), 0);
	store_read_end(&txn);
	assert_int_equal(m.nrcpt, 1);
	m.tries = 1;
	m.next_try = 2000;
	r.upd = m;
	r.do_upd = 1;
	assert_int_equal(store_write(st, result_fn, &r), 0);
	assert_int_equal(fsck(), 0);
	assert_int_equal(store_read_begin(st, &txn), 0);
	d.n = 0;
	assert_int_equal(queue_due(txn, 1999, 0, due_cb, &d), 0);
	assert_int_equal(d.n, 1); /* only the second message */
	assert_string_equal(d.qid, qid2);
	int n = 0;
	assert_int_equal(queue_rcpt_foreach(txn, qid, count_rcpt, &n), 0);
	assert_int_equal(n, 1);
	struct queue_rcpt qr;
	assert_int_equal(queue_rcpt_get(txn, qid, 1, &qr), 0);
	assert_string_equal(qr.addr, "dave@example.net");
	assert_string_equal(qr.dsn, "4.4.1");
	assert_int_equal(qr.state, QUEUE_PENDING);
	store_read_end(&txn);

	/* hold */
	assert_int_equal(store_read_begin(st, &txn), 0);
	assert_int_equal(queue_get(txn, qid, &m), 0);
	store_read_end(&txn);
	m.hold = 1;
	r = (struct result_ctx){.qid = qid, .upd = m, .do_upd = 1};
	assert_int_equal(store_write(st, result_fn, &r), 0);
	assert_int_equal(fsck(), 0);
	assert_int_equal(store_read_begin(st, &txn), 0);
	d.n = 0;
	assert_int_equal(queue_due(txn, 1 << 30, 0, due_cb, &d), 0);
	assert_int_equal(d.n, 1); /* the held one is never due */
	uint64_t msgs, rcpts, held;
	assert_int_equal(queue_count(txn, &msgs, &rcpts, &held), 0);
	assert_int_equal(msgs, 2);
	assert_int_equal(rcpts, 3);
	assert_int_equal(held, 1);
	store_read_end(&txn);

	/* delete both: the blob keeps bob's reference only */
	r = (struct result_ctx){.qid = qid, .do_del = 1};
	assert_int_equal(store_write(st, result_fn, &r), 0);
	r = (struct result_ctx){.qid = qid2, .do_del = 1};
	assert_int_equal(store_write(st, result_fn, &r), 0);
	assert_int_equal(fsck(), 0);
	assert_int_equal(store_read_begin(st, &txn), 0);
	assert_int_equal(store_blob_info(txn, hash, &bi), 0);
	assert_int_equal(bi.refs, 1);
	assert_int_equal(queue_get(txn, qid, &m), STORE_ENOTFOUND);
	store_read_end(&txn);
}

static void test_remote_only_frees_blob(void **state)
{
	const char *remote[] = {"x@example.com"};
	static const char body[] = "Subject: only remote\r\n\r\nx\r\n";
	struct queue_submission sub = {
	    .data = body, .len = sizeof(body) - 1, .from = "", .remote = remote, .nremote = 1};
	char qid[QUEUE_ID_MAX];
	uint8_t hash[STORE_HASH_LEN];
	struct store_txn *txn;
	struct store_blob_info bi;
	(void)state;

	assert_int_equal(queue_submit(st, &sub, qid, hash), 0);
	struct result_ctx r = {
	    .qid = qid, .idx = 0, .res = QUEUE_SENT, .dsn = "2.0.0", .why = "250", .do_del = 1};
	assert_int_equal(store_write(st, result_fn, &r), 0);
	assert_int_equal(store_read_begin(st, &txn), 0);
	assert_int_equal(store_blob_info(txn, hash, &bi), STORE_ENOTFOUND);
	store_read_end(&txn);
	assert_int_equal(fsck(), 0);
}

static void test_bad_input(void **state)
{
	struct queue_submission sub = {.data = "x", .len = 1, .from = "a@b"};
	char qid[QUEUE_ID_MAX];
	(void)state;
	assert_int_equal(queue_submit(st, &sub, qid, NULL), STORE_EINVAL); /* no recipient */
	const char *remote[] = {""};
	sub.remote = remote;
	sub.nremote = 1;
	assert_int_equal(queue_submit(st, &sub, qid, NULL), STORE_EINVAL); /* empty address */
	assert_int_equal(fsck(), 0);
}

static void test_dsn(void **state)
{
	struct queue_dsn_rcpt r[] = {{"dave@example.net", "5.1.1",
				      "550 5.1.1 <dave@example.net>: no such user",
				      "mx.example.net[192.0.2.1]:25"}};
	struct queue_dsn d = {.reporting_mta = "mx.example.org",
			      .qid = "ABC",
			      .arrival = 1000,
			      .now = 2000,
			      .sender = "alice@example.org",
			      .rcpts = r,
			      .nrcpts = 1,
			      .orig = MSG,
			      .orig_len = sizeof(MSG) - 1,
			      .return_limit = 50000};
	char *out;
	size_t len;
	(void)state;

	assert_int_equal(queue_dsn_make(&d, &out, &len), 0);
	assert_non_null(
	    strstr(out, "Content-Type: multipart/report; report-type=delivery-status;"));
	assert_non_null(strstr(out, "Final-Recipient: rfc822; dave@example.net\r\n"));
	assert_non_null(strstr(out, "Action: failed\r\nStatus: 5.1.1\r\n"));
	assert_non_null(strstr(out, "Remote-MTA: dns; mx.example.net\r\n"));
	assert_non_null(strstr(out, "Diagnostic-Code: smtp; 550 5.1.1"));
	assert_non_null(strstr(out, "Content-Type: message/rfc822\r\n\r\nFrom: alice@example.org"));
	assert_int_equal(strlen(out), len);
	free(out);
	d.delayed = 1;
	assert_int_equal(queue_dsn_make(&d, &out, &len), 0);
	assert_non_null(strstr(out, "Action: delayed\r\n"));
	assert_non_null(strstr(out, "text/rfc822-headers"));
	assert_null(strstr(out, "\r\nbody\r\n")); /* headers only */
	free(out);
	d.sender = "";
	assert_int_equal(queue_dsn_make(&d, &out, &len), STORE_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_submit_and_results),
	    cmocka_unit_test(test_remote_only_frees_blob),
	    cmocka_unit_test(test_bad_input),
	    cmocka_unit_test(test_dsn),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
