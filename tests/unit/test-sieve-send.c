/* test-sieve-send — index/sieve_deliver.c's vacation replies and redirects on a
 * temporary store: each is a queue entry (from <> for the reply, the envelope
 * sender kept for a redirect) written by sieve_finish, the blob referenced
 * (fsck clean), a redirect of the same message to the same address not done
 * twice (kept instead), nothing queued for a script that fails, and expired
 * memories forgotten. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "index/queue.h"
#include "index/sieve.h"
#include "index/sieve_deliver.h"

static char dir[64];
static struct store *st;

struct put_ctx {
	const char *text;
};

static int put_fn(struct store_txn *txn, void *ctx)
{
	struct put_ctx *p = ctx;
	struct store_user u;
	int rc = store_user_ensure(txn, "bob", &u);
	if (rc == 0)
		rc = sieve_script_put(txn, u.id, "main", p->text, strlen(p->text));
	if (rc == 0)
		rc = sieve_script_activate(txn, u.id, "main");
	return rc;
}

static void put_script(const char *text)
{
	struct put_ctx p = {text};
	assert_int_equal(store_write(st, put_fn, &p), 0);
}

static int setup(void **state)
{
	char err[256];
	struct store_options o = {0};
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test-sieve-send.XXXXXX");
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

struct seen {
	int n;
	struct queue_msg m;
};

static int msg_cb(const struct queue_msg *m, void *ctx)
{
	struct seen *s = ctx;
	s->m = *m;
	s->n++;
	return 0;
}

static int rcpt_cb(const struct queue_rcpt *r, void *ctx)
{
	strcpy(ctx, r->addr); /* test only: QUEUE_ADDR_MAX bytes */
	return 0;
}

/* The queue's messages: how many; the last one's sender, recipient, bytes. */
static int queued(struct queue_msg *last, char rcpt[QUEUE_ADDR_MAX], char **data, size_t *len)
{
	struct store_txn *txn = NULL;
	struct seen s = {0};
	assert_int_equal(store_read_begin(st, &txn), 0);
	assert_int_equal(queue_foreach(txn, msg_cb, &s), 0);
	if (s.n > 0) {
		const void *d;
		*last = s.m;
		assert_int_equal(queue_rcpt_foreach(txn, s.m.qid, rcpt_cb, rcpt), 0);
		assert_int_equal(store_blob_get(txn, s.m.hash, &d, len), 0);
		*data = malloc(*len + 1);
		memcpy(*data, d, *len);
		(*data)[*len] = 0;
	}
	store_read_end(&txn);
	return s.n;
}

static void plan_finish(const char *msg, const char *from, struct sieve_plan *p)
{
	struct store_rcpt r = {.user = "bob"};
	sieve_plan(st, &r, msg, strlen(msg), from, "bob@example.org", "Q1", p);
	assert_int_equal(sieve_finish(st, p), 0);
}

static const char MSG[] = "From: carol@example.com\r\nTo: bob@example.org\r\nSubject: hi\r\n"
			  "Message-ID: <m1@example.com>\r\n\r\nbody\r\n";

static void test_redirect(void **state)
{
	struct sieve_plan p;
	struct queue_msg m;
	char rcpt[QUEUE_ADDR_MAX], *data = NULL;
	size_t len;
	(void)state;
	put_script("redirect \"dave@remote.test\";\n");
	plan_finish(MSG, "carol@example.com", &p);
	assert_int_equal(p.ntargets, 0); /* the implicit keep is cancelled */
	assert_int_equal(p.nredirect, 1);
	sieve_plan_free(&p);
	assert_int_equal(queued(&m, rcpt, &data, &len), 1);
	assert_string_equal(m.from, "carol@example.com");
	assert_string_equal(rcpt, "dave@remote.test");
	assert_int_equal(len, strlen(MSG));
	assert_memory_equal(data, MSG, len);
	free(data);
	assert_int_equal(store_fsck(st, report, NULL, NULL), 0);
	/* the same message again (a loop): kept, nothing queued */
	plan_finish(MSG, "carol@example.com", &p);
	assert_int_equal(p.nredirect, 0);
	assert_int_equal(p.ntargets, 1);
	sieve_plan_free(&p);
	assert_int_equal(queued(&m, rcpt, &data, &len), 1);
	free(data);
	/* from the null sender: redirected from the null sender */
	static const char M2[] = "Subject: bounce\r\nMessage-ID: <m2@example.com>\r\n\r\nx\r\n";
	plan_finish(M2, "", &p);
	assert_int_equal(p.nredirect, 1);
	sieve_plan_free(&p);
	assert_int_equal(queued(&m, rcpt, &data, &len), 2);
	free(data);
	assert_int_equal(store_fsck(st, report, NULL, NULL), 0);
}

static void test_vacation(void **state)
{
	struct sieve_plan p;
	struct queue_msg m;
	char rcpt[QUEUE_ADDR_MAX], *data = NULL;
	size_t len;
	(void)state;
	put_script("require \"vacation\";\nvacation :subject \"Away\" \"Back on Monday.\";\n");
	plan_finish(MSG, "carol@example.com", &p);
	assert_int_equal(p.ntargets, 1);
	sieve_plan_free(&p);
	assert_int_equal(queued(&m, rcpt, &data, &len), 1);
	assert_string_equal(m.from, "");
	assert_string_equal(rcpt, "carol@example.com");
	assert_non_null(strstr(data, "\r\nSubject: Away\r\n"));
	assert_non_null(strstr(data, "\r\nIn-Reply-To: <m1@example.com>\r\n"));
	assert_non_null(strstr(data, "\r\nAuto-Submitted: auto-replied"));
	free(data);
	/* within the period: no second reply */
	plan_finish(MSG, "carol@example.com", &p);
	sieve_plan_free(&p);
	assert_int_equal(queued(&m, rcpt, &data, &len), 1);
	free(data);
	assert_int_equal(store_fsck(st, report, NULL, NULL), 0);
}

static void test_failed_script_queues_nothing(void **state)
{
	struct sieve_plan p;
	struct queue_msg m;
	char rcpt[QUEUE_ADDR_MAX], *data = NULL;
	size_t len;
	(void)state;
	/* past SIEVE_MAX_REDIRECTS: the script fails, the message goes to INBOX */
	put_script("redirect \"a@remote.test\"; redirect \"b@remote.test\";\n"
		   "redirect \"c@remote.test\"; redirect \"d@remote.test\";\n"
		   "redirect \"e@remote.test\";\n");
	plan_finish(MSG, "carol@example.com", &p);
	assert_true(p.failed);
	assert_int_equal(p.nredirect, 0);
	assert_int_equal(p.ntargets, 1);
	sieve_plan_free(&p);
	assert_int_equal(queued(&m, rcpt, &data, &len), 0);
	/* four are fine */
	put_script("redirect \"a@remote.test\"; redirect \"b@remote.test\";\n"
		   "redirect \"c@remote.test\"; redirect \"d@remote.test\";\n");
	plan_finish(MSG, "carol@example.com", &p);
	assert_false(p.failed);
	assert_int_equal(p.nredirect, 4);
	sieve_plan_free(&p);
	assert_int_equal(queued(&m, rcpt, &data, &len), 4);
	free(data);
	assert_int_equal(store_fsck(st, report, NULL, NULL), 0);
}

struct exp_ctx {
	uint32_t uid;
};

static int expire_fn(struct store_txn *txn, void *ctx)
{
	struct exp_ctx *e = ctx;
	uint8_t a[STORE_HASH_LEN], b[STORE_HASH_LEN], c[STORE_HASH_LEN];
	struct store_user u;
	int rc;
	memset(a, 1, sizeof(a));
	memset(b, 2, sizeof(b));
	memset(c, 3, sizeof(c));
	if ((rc = store_user_ensure(txn, "bob", &u)) != 0)
		return rc;
	e->uid = u.id;
	if ((rc = sieve_memory_put(txn, u.id, SIEVE_MEM_REDIRECT, a, 100)) != 0 ||
	    (rc = sieve_memory_put(txn, u.id, SIEVE_MEM_REDIRECT, b, 300)) != 0 ||
	    (rc = sieve_memory_put(txn, u.id, SIEVE_MEM_REDIRECT, c, 150)) != 0 ||
	    (rc = sieve_memory_put(txn, u.id, SIEVE_MEM_VACATION, a, 100)) != 0)
		return rc;
	return sieve_memory_expire(txn, u.id, SIEVE_MEM_REDIRECT, 200);
}

static void test_memory_expire(void **state)
{
	struct exp_ctx e;
	struct store_txn *txn = NULL;
	uint8_t a[STORE_HASH_LEN], b[STORE_HASH_LEN], c[STORE_HASH_LEN];
	(void)state;
	memset(a, 1, sizeof(a));
	memset(b, 2, sizeof(b));
	memset(c, 3, sizeof(c));
	assert_int_equal(store_write(st, expire_fn, &e), 0);
	assert_int_equal(store_read_begin(st, &txn), 0);
	/* the expired ones are gone (seen even at time 0), the live one stays,
	 * another kind is untouched */
	assert_false(sieve_memory_check(txn, e.uid, SIEVE_MEM_REDIRECT, a, 0));
	assert_false(sieve_memory_check(txn, e.uid, SIEVE_MEM_REDIRECT, c, 0));
	assert_true(sieve_memory_check(txn, e.uid, SIEVE_MEM_REDIRECT, b, 0));
	assert_true(sieve_memory_check(txn, e.uid, SIEVE_MEM_VACATION, a, 0));
	store_read_end(&txn);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_redirect, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_vacation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failed_script_queues_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_memory_expire, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
