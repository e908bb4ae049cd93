#define _GNU_SOURCE
/* test-store — the store's properties, one behaviour per test. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "index/store.h"
#include "index/store_internal.h"

struct fixture {
	char dir[256];
	struct store *store;
};

static void rm_rf(const char *dir)
{
	char path[512];
	const char *names[] = {"data.mdb", "lock.mdb", "changes"};

	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

static int open_store(struct fixture *f, uint64_t map_size, uint64_t map_max)
{
	char err[256];
	struct store_options opt = {.map_size = map_size, .map_max = map_max};

	return store_open(f->dir, &opt, &f->store, err, sizeof(err));
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/mk-test-store-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(open_store(f, 0, 0), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	store_close(&f->store);
	rm_rf(f->dir);
	free(f);
	return 0;
}

struct add_user_ctx {
	const char *name;
	uint32_t id;
};

static int add_user_fn(struct store_txn *txn, void *ctx)
{
	struct add_user_ctx *c = ctx;
	struct store_user u = {0};
	snprintf(u.name, sizeof(u.name), "%s", c->name);
	return store_user_add(txn, &u, &c->id);
}

static uint32_t add_user(struct store *s, const char *name)
{
	struct add_user_ctx c = {name, 0};
	assert_int_equal(store_write(s, add_user_fn, &c), 0);
	return c.id;
}

static struct store_mailbox get_mailbox(struct store *s, uint32_t user_id, const char *name)
{
	struct store_txn *txn;
	struct store_mailbox mb;
	assert_int_equal(store_read_begin(s, &txn), 0);
	assert_int_equal(store_mailbox_get(txn, user_id, name, &mb), 0);
	store_read_end(&txn);
	return mb;
}

static void deliver(struct store *s, const char *data, const char *u1, const char *u2, uint8_t *hash)
{
	struct store_rcpt r[2] = {{.user = u1}, {.user = u2}};
	assert_int_equal(store_deliver(s, data, strlen(data), 1700000000, r, u2 ? 2 : 1, hash), 0);
	assert_int_equal(r[0].result, 0);
	if (u2)
		assert_int_equal(r[1].result, 0);
}

static int count_problems(struct store *s)
{
	return store_fsck(s, NULL, NULL, NULL);
}

static void test_user_has_default_mailboxes(void **state)
{
	struct fixture *f = *state;
	uint32_t id = add_user(f->store, "bob");
	struct store_mailbox junk = get_mailbox(f->store, id, "Junk"), inbox = get_mailbox(f->store, id, "inbox");

	assert_string_equal(inbox.name, "INBOX");
	assert_true(junk.special_use & STORE_SU_JUNK);
	assert_int_equal(get_mailbox(f->store, id, "Sent").special_use, STORE_SU_SENT);
	assert_int_equal(get_mailbox(f->store, id, "Trash").special_use, STORE_SU_TRASH);
	assert_int_equal(get_mailbox(f->store, id, "Drafts").special_use, STORE_SU_DRAFTS);
	assert_int_equal(get_mailbox(f->store, id, "Archive").special_use, STORE_SU_ARCHIVE);
	assert_true(inbox.uidvalidity > 0);
	assert_int_equal(inbox.uidnext, 1);
	/* A second user with the same name is refused. */
	struct add_user_ctx c = {"bob", 0};
	assert_int_equal(store_write(f->store, add_user_fn, &c), STORE_EEXIST);
	struct add_user_ctx bad = {"../x", 0};
	assert_int_equal(store_write(f->store, add_user_fn, &bad), STORE_EINVAL);
}

static void test_dedup_and_refcount(void **state)
{
	struct fixture *f = *state;
	uint8_t hash[STORE_HASH_LEN];
	struct store_txn *txn;
	struct store_blob_info bi;
	struct store_stats st;
	const char *msg = "Subject: hi\r\n\r\nbody\r\n";

	add_user(f->store, "alice");
	add_user(f->store, "bob");
	deliver(f->store, msg, "alice", "bob", hash);
	assert_int_equal(store_stats(f->store, &st), 0);
	assert_int_equal(st.blobs, 1);
	assert_int_equal(st.messages, 2);
	assert_int_equal(st.bytes_stored, strlen(msg));
	assert_int_equal(st.bytes_referenced, 2 * strlen(msg));

	assert_int_equal(store_read_begin(f->store, &txn), 0);
	assert_int_equal(store_blob_info(txn, hash, &bi), 0);
	assert_int_equal(bi.refs, 2);
	const void *data;
	size_t len;
	assert_int_equal(store_blob_get(txn, hash, &data, &len), 0);
	assert_int_equal(len, strlen(msg));
	assert_memory_equal(data, msg, len);
	store_read_end(&txn);
	assert_int_equal(count_problems(f->store), 0);
}

struct mbop {
	uint32_t mbid, uid, dst;
	int op;
	struct store_msg out;
};

static int mbop_fn(struct store_txn *txn, void *ctx)
{
	struct mbop *o = ctx;
	switch (o->op) {
	case 0: return store_msg_expunge(txn, o->mbid, o->uid);
	case 1: return store_msg_copy(txn, o->mbid, o->uid, o->dst, &o->out);
	case 2: return store_msg_move(txn, o->mbid, o->uid, o->dst, &o->out);
	}
	return STORE_EINVAL;
}

static void test_copy_move_expunge_free(void **state)
{
	struct fixture *f = *state;
	uint8_t hash[STORE_HASH_LEN];
	struct store_txn *txn;
	struct store_blob_info bi;
	uint32_t id = add_user(f->store, "carol");

	deliver(f->store, "Subject: x\r\n\r\ny\r\n", "carol", NULL, hash);
	struct store_mailbox inbox = get_mailbox(f->store, id, "INBOX"), arch = get_mailbox(f->store, id, "Archive");
	uint64_t m0 = inbox.highestmodseq;

	struct mbop copy = {.mbid = inbox.id, .uid = 1, .dst = arch.id, .op = 1};
	assert_int_equal(store_write(f->store, mbop_fn, &copy), 0);
	assert_int_equal(copy.out.uid, 1);
	struct mbop move = {.mbid = inbox.id, .uid = 1, .dst = arch.id, .op = 2};
	assert_int_equal(store_write(f->store, mbop_fn, &move), 0);
	assert_int_equal(move.out.uid, 2);
	/* A move keeps the Maildir base name when it is free in the target. */
	assert_int_not_equal(strcmp(copy.out.base, ""), 0);

	inbox = get_mailbox(f->store, id, "INBOX");
	assert_int_equal(inbox.messages, 0);
	assert_true(inbox.highestmodseq > m0);
	assert_int_equal(get_mailbox(f->store, id, "Archive").messages, 2);

	assert_int_equal(store_read_begin(f->store, &txn), 0);
	assert_int_equal(store_blob_info(txn, hash, &bi), 0);
	assert_int_equal(bi.refs, 2);
	store_read_end(&txn);

	struct mbop e1 = {.mbid = arch.id, .uid = 1, .op = 0}, e2 = {.mbid = arch.id, .uid = 2, .op = 0};
	assert_int_equal(store_write(f->store, mbop_fn, &e1), 0);
	assert_int_equal(store_write(f->store, mbop_fn, &e1), STORE_ENOTFOUND);
	assert_int_equal(store_write(f->store, mbop_fn, &e2), 0);
	assert_int_equal(store_read_begin(f->store, &txn), 0);
	assert_int_equal(store_blob_info(txn, hash, &bi), STORE_ENOTFOUND);
	store_read_end(&txn);
	assert_int_equal(count_problems(f->store), 0);
}

static int collect_expunged(uint32_t uid, uint64_t modseq, void *ctx)
{
	uint32_t *uids = ctx;
	(void)modseq;
	uids[uids[0] + 1] = uid;
	uids[0]++;
	return 0;
}

struct flags_op {
	uint32_t mbid, uid;
	enum store_flag_op op;
	uint32_t flags;
	const char *kw;
	uint64_t unchangedsince;
	struct store_msg out;
};

static int flags_fn(struct store_txn *txn, void *ctx)
{
	struct flags_op *o = ctx;
	return store_msg_set_flags(txn, o->mbid, o->uid, o->op, o->flags, o->kw, o->unchangedsince, &o->out);
}

static void test_flags_keywords_modseq(void **state)
{
	struct fixture *f = *state;
	uint32_t id = add_user(f->store, "dave");

	deliver(f->store, "Subject: 1\r\n\r\n1\r\n", "dave", NULL, NULL);
	struct store_mailbox inbox = get_mailbox(f->store, id, "INBOX");
	assert_int_equal(inbox.unseen, 1);
	assert_int_equal(inbox.recent, 1); /* delivered: new mail */

	struct flags_op o = {inbox.id, 1, STORE_FLAGS_ADD, STORE_F_SEEN | STORE_F_FLAGGED, "$Junk work", 0, {0}};
	assert_int_equal(store_write(f->store, flags_fn, &o), 0);
	uint64_t ms1 = o.out.modseq;
	assert_int_equal(o.out.flags, STORE_F_SEEN | STORE_F_FLAGGED | STORE_F_RECENT);
	assert_string_equal(o.out.keywords, "$Junk work");
	assert_int_equal(get_mailbox(f->store, id, "INBOX").unseen, 0);

	/* Adding what is there already changes nothing, not even the modseq. */
	o.kw = "WORK";
	assert_int_equal(store_write(f->store, flags_fn, &o), 0);
	assert_int_equal(o.out.modseq, ms1);

	struct flags_op r = {inbox.id, 1, STORE_FLAGS_REMOVE, STORE_F_FLAGGED, "$junk", 0, {0}};
	assert_int_equal(store_write(f->store, flags_fn, &r), 0);
	assert_true(r.out.modseq > ms1);
	assert_string_equal(r.out.keywords, "work");
	assert_int_equal(r.out.flags, STORE_F_SEEN | STORE_F_RECENT);

	/* UNCHANGEDSINCE older than the message's modseq fails and changes nothing. */
	struct flags_op u = {inbox.id, 1, STORE_FLAGS_SET, 0, NULL, ms1, {0}};
	assert_int_equal(store_write(f->store, flags_fn, &u), STORE_EMODIFIED);
	struct store_txn *txn;
	struct store_msg m;
	assert_int_equal(store_read_begin(f->store, &txn), 0);
	assert_int_equal(store_msg_get(txn, inbox.id, 1, &m), 0);
	assert_int_equal(m.flags, STORE_F_SEEN | STORE_F_RECENT);
	store_read_end(&txn);

	/* Expunges are remembered by modseq. */
	uint64_t before = get_mailbox(f->store, id, "INBOX").highestmodseq;
	struct mbop e = {.mbid = inbox.id, .uid = 1, .op = 0};
	assert_int_equal(store_write(f->store, mbop_fn, &e), 0);
	uint32_t uids[8] = {0};
	assert_int_equal(store_read_begin(f->store, &txn), 0);
	assert_int_equal(store_expunged_since(txn, inbox.id, before, collect_expunged, uids), 0);
	store_read_end(&txn);
	assert_int_equal(uids[0], 1);
	assert_int_equal(uids[1], 1);
	assert_int_equal(count_problems(f->store), 0);
}

struct mbname_op {
	uint32_t user;
	const char *a, *b;
	int op;
};

static int mbname_fn(struct store_txn *txn, void *ctx)
{
	struct mbname_op *o = ctx;
	switch (o->op) {
	case 0: return store_mailbox_create(txn, o->user, o->a, 0, NULL);
	case 1: return store_mailbox_rename(txn, o->user, o->a, o->b);
	case 2: return store_mailbox_delete(txn, o->user, o->a);
	case 3: return store_mailbox_subscribe(txn, o->user, o->a, 1);
	case 4: return store_mailbox_subscribe(txn, o->user, o->a, 0);
	case 5: return store_user_del(txn, o->b);
	}
	return STORE_EINVAL;
}

static int collect_sub_cb(const char *name, void *ctx)
{
	char *out = ctx;
	strncat(out, name, 255 - strlen(out));
	strncat(out, ";", 255 - strlen(out));
	return 0;
}

/* The subscribed names that have no mailbox, as "a;b;". */
static void subs_without_mailbox(struct store *s, uint32_t user, char out[256])
{
	struct store_txn *txn;
	out[0] = '\0';
	assert_int_equal(store_read_begin(s, &txn), 0);
	assert_int_equal(store_subscription_foreach(txn, user, collect_sub_cb, out), 0);
	store_read_end(&txn);
}

/* RFC 3501 6.3.6: names are subscribed, mailboxes or not; deleting keeps it */
static void test_subscriptions_by_name(void **state)
{
	struct fixture *f = *state;
	uint32_t id = add_user(f->store, "sam");
	char subs[256];
	struct mbname_op o = {id, "Later", NULL, 3};
	assert_int_equal(store_write(f->store, mbname_fn, &o), 0);
	subs_without_mailbox(f->store, id, subs);
	assert_string_equal(subs, "Later;");
	o.op = 0; /* creating it: the mailbox carries the subscription */
	assert_int_equal(store_write(f->store, mbname_fn, &o), 0);
	assert_true(get_mailbox(f->store, id, "Later").subscribed);
	subs_without_mailbox(f->store, id, subs);
	assert_string_equal(subs, "");
	o.op = 2; /* deleting it: the name stays subscribed */
	assert_int_equal(store_write(f->store, mbname_fn, &o), 0);
	subs_without_mailbox(f->store, id, subs);
	assert_string_equal(subs, "Later;");
	o.op = 4;
	assert_int_equal(store_write(f->store, mbname_fn, &o), 0);
	subs_without_mailbox(f->store, id, subs);
	assert_string_equal(subs, "");
	o.op = 3;
	o.a = "Gone";
	assert_int_equal(store_write(f->store, mbname_fn, &o), 0);
	struct mbname_op del = {id, NULL, "sam", 5}; /* the user goes, and the names with it */
	assert_int_equal(store_write(f->store, mbname_fn, &del), 0);
	subs_without_mailbox(f->store, id, subs);
	assert_string_equal(subs, "");
	assert_int_equal(count_problems(f->store), 0);
}

static void test_mailbox_hierarchy(void **state)
{
	struct fixture *f = *state;
	uint32_t id = add_user(f->store, "erin");
	struct mbname_op o = {id, "Lists", NULL, 0};

	assert_int_equal(store_write(f->store, mbname_fn, &o), 0);
	o.a = "Lists.lkml";
	assert_int_equal(store_write(f->store, mbname_fn, &o), 0);
	assert_int_equal(store_write(f->store, mbname_fn, &o), STORE_EEXIST);
	o.a = "Lists..x";
	assert_int_equal(store_write(f->store, mbname_fn, &o), STORE_EINVAL);
	o.a = "a/b";
	assert_int_equal(store_write(f->store, mbname_fn, &o), STORE_EINVAL);
	o.a = ".hidden";
	assert_int_equal(store_write(f->store, mbname_fn, &o), STORE_EINVAL);

	struct store_mailbox lkml = get_mailbox(f->store, id, "Lists.lkml");
	struct mbname_op del = {id, "Lists", NULL, 2};
	assert_int_equal(store_write(f->store, mbname_fn, &del), STORE_ENOTEMPTY);
	struct mbname_op ren = {id, "Lists", "Old", 1};
	assert_int_equal(store_write(f->store, mbname_fn, &ren), 0);
	struct store_mailbox moved = get_mailbox(f->store, id, "Old.lkml");
	assert_int_equal(moved.id, lkml.id);
	assert_int_equal(moved.uidvalidity, lkml.uidvalidity);
	struct mbname_op delinbox = {id, "INBOX", NULL, 2};
	assert_int_equal(store_write(f->store, mbname_fn, &delinbox), STORE_EINVAL);

	/* Renaming INBOX moves its messages into the new mailbox; INBOX stays. */
	deliver(f->store, "Subject: a\r\n\r\na\r\n", "erin", NULL, NULL);
	struct mbname_op rin = {id, "INBOX", "Saved", 1};
	assert_int_equal(store_write(f->store, mbname_fn, &rin), 0);
	assert_int_equal(get_mailbox(f->store, id, "INBOX").messages, 0);
	assert_int_equal(get_mailbox(f->store, id, "Saved").messages, 1);
	assert_int_equal(count_problems(f->store), 0);
}

struct thread_arg {
	struct store *store;
	int n, id, failures;
};

static void *deliver_thread(void *p)
{
	struct thread_arg *a = p;
	char msg[8192];

	for (int i = 0; i < a->n; i++) {
		struct store_rcpt r = {.user = "group"};
		int len = snprintf(msg, sizeof(msg), "Subject: t%d m%d\r\n\r\n", a->id, i);
		memset(msg + len, 'x', sizeof(msg) - len);
		if (store_deliver(a->store, msg, sizeof(msg), 0, &r, 1, NULL) != 0 || r.result != 0)
			a->failures++;
	}
	return NULL;
}

static void test_group_commit_concurrent(void **state)
{
	struct fixture *f = *state;
	pthread_t t[8];
	struct thread_arg a[8];
	uint32_t id = add_user(f->store, "group");

	for (int i = 0; i < 8; i++) {
		a[i] = (struct thread_arg){f->store, 40, i, 0};
		pthread_create(&t[i], NULL, deliver_thread, &a[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].failures, 0);
	}
	struct store_mailbox inbox = get_mailbox(f->store, id, "INBOX");
	assert_int_equal(inbox.messages, 320);
	assert_int_equal(inbox.uidnext, 321);
	assert_int_equal(count_problems(f->store), 0);
}

struct relaxed_arg {
	struct store *store;
	uint32_t mbid, uid;
	int failures;
};

/* Flips one message's \Flagged 25 times through relaxed writes. */
static void *relaxed_thread(void *p)
{
	struct relaxed_arg *a = p;

	for (int i = 0; i < 25; i++) {
		struct flags_op o = {a->mbid, a->uid, i % 2 ? STORE_FLAGS_REMOVE : STORE_FLAGS_ADD, STORE_F_FLAGGED,
				     NULL, 0, {0}};
		if (store_write_relaxed(a->store, flags_fn, &o) != 0)
			a->failures++;
	}
	return NULL;
}

static void test_relaxed_writes_share_commits_with_durable_ones(void **state)
{
	struct fixture *f = *state;
	pthread_t t[8], d;
	struct relaxed_arg a[8];
	struct thread_arg da;
	uint32_t id = add_user(f->store, "group");
	char msg[64];

	for (int i = 0; i < 8; i++) {
		snprintf(msg, sizeof(msg), "Subject: %d\r\n\r\n%d\r\n", i, i);
		deliver(f->store, msg, "group", NULL, NULL);
	}
	struct store_mailbox inbox = get_mailbox(f->store, id, "INBOX");
	/* Eight sessions changing flags while deliveries come in: relaxed and
	 * durable jobs are batched together, every change is applied once. */
	for (int i = 0; i < 8; i++) {
		a[i] = (struct relaxed_arg){f->store, inbox.id, (uint32_t)i + 1, 0};
		pthread_create(&t[i], NULL, relaxed_thread, &a[i]);
	}
	da = (struct thread_arg){f->store, 10, 99, 0};
	pthread_create(&d, NULL, deliver_thread, &da);
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].failures, 0);
	}
	pthread_join(d, NULL);
	assert_int_equal(da.failures, 0);
	struct store_mailbox after = get_mailbox(f->store, id, "INBOX");
	assert_int_equal(after.highestmodseq, inbox.highestmodseq + 8 * 25 + 10);
	assert_int_equal(after.messages, 18);

	/* Closing flushes the last relaxed commit; everything is there on reopen. */
	store_close(&f->store);
	assert_int_equal(open_store(f, 0, 0), 0);
	struct store_txn *txn;
	struct store_msg m;
	assert_int_equal(store_read_begin(f->store, &txn), 0);
	for (uint32_t uid = 1; uid <= 8; uid++) {
		assert_int_equal(store_msg_get(txn, inbox.id, uid, &m), 0);
		assert_int_equal(m.flags & STORE_F_FLAGGED, STORE_F_FLAGGED); /* 13 adds, 12 removes */
	}
	store_read_end(&txn);
	assert_int_equal(get_mailbox(f->store, id, "INBOX").highestmodseq, after.highestmodseq);
	assert_int_equal(count_problems(f->store), 0);
}

static void test_cursor_next_since_passes_over_unchanged(void **state)
{
	struct fixture *f = *state;
	uint32_t id = add_user(f->store, "since");
	char msg[64];

	for (int i = 0; i < 5; i++) {
		snprintf(msg, sizeof(msg), "Subject: %d\r\n\r\n%d\r\n", i, i);
		deliver(f->store, msg, "since", NULL, NULL);
	}
	struct store_mailbox inbox = get_mailbox(f->store, id, "INBOX");
	uint32_t changed[] = {2, 4};
	for (int i = 0; i < 2; i++) {
		struct flags_op o = {inbox.id, changed[i], STORE_FLAGS_ADD, STORE_F_SEEN, NULL, 0, {0}};
		assert_int_equal(store_write_relaxed(f->store, flags_fn, &o), 0);
	}
	struct store_txn *txn;
	struct store_cursor *cur;
	struct store_msg m;
	uint32_t passed = 99;
	assert_int_equal(store_read_begin(f->store, &txn), 0);
	assert_int_equal(store_msg_cursor_open(txn, inbox.id, 1, &cur), 0);
	assert_int_equal(store_msg_cursor_next_since(cur, inbox.highestmodseq, &m, &passed), 0);
	assert_int_equal(m.uid, 2);
	assert_int_equal(passed, 1);
	assert_true(m.flags & STORE_F_SEEN);
	assert_int_equal(store_msg_cursor_next_since(cur, inbox.highestmodseq, &m, &passed), 0);
	assert_int_equal(m.uid, 4);
	assert_int_equal(passed, 1);
	assert_int_equal(store_msg_cursor_next_since(cur, inbox.highestmodseq, &m, &passed), STORE_ENOTFOUND);
	assert_int_equal(passed, 1);
	store_msg_cursor_close(&cur);
	/* since 0: every message, none passed over. */
	assert_int_equal(store_msg_cursor_open(txn, inbox.id, 1, &cur), 0);
	for (uint32_t uid = 1; uid <= 5; uid++) {
		assert_int_equal(store_msg_cursor_next_since(cur, 0, &m, &passed), 0);
		assert_int_equal(m.uid, uid);
		assert_int_equal(passed, 0);
	}
	store_msg_cursor_close(&cur);
	store_read_end(&txn);
}

static void test_map_grows_then_fills(void **state)
{
	struct fixture *f = *state;
	char *big = malloc(256 * 1024);
	int stored = 0, full = 0;

	store_close(&f->store);
	rm_rf(f->dir);
	assert_int_equal(mkdir(f->dir, 0700), 0);
	/* Starts at 1 MiB, may grow to 8 MiB: about 30 messages of 256 KiB fit. */
	assert_int_equal(open_store(f, 1 << 20, 8 << 20), 0);
	uint32_t id = add_user(f->store, "full");
	for (int i = 0; i < 100 && !full; i++) {
		struct store_rcpt r = {.user = "full"};
		int len = snprintf(big, 256 * 1024, "Subject: %d\r\n\r\n", i);
		memset(big + len, 'a' + i % 26, 256 * 1024 - len);
		int rc = store_deliver(f->store, big, 256 * 1024, 0, &r, 1, NULL);
		if (rc == 0)
			stored++;
		else {
			assert_int_equal(rc, STORE_EFULL);
			full = 1;
		}
	}
	free(big);
	assert_true(full);
	assert_true(stored > 8); /* more than the initial 1 MiB could hold: the map grew */
	assert_int_equal(get_mailbox(f->store, id, "INBOX").messages, stored);
	assert_int_equal(count_problems(f->store), 0);
	/* After a failure, small writes still work if there is room, and the store is consistent. */
	store_close(&f->store);
	assert_int_equal(open_store(f, 1 << 20, 8 << 20), 0);
	assert_int_equal(get_mailbox(f->store, id, "INBOX").messages, stored);
}

static int corrupt_fn(struct store_txn *txn, void *ctx)
{
	uint8_t *hash = ctx;
	MDB_val k = {STORE_HASH_LEN, hash}, v;
	char *copy;
	int rc = mdb_get(store_txn_mdb(txn), store_txn_dbi(txn, DB_BLOBDATA), &k, &v);

	if (rc != 0)
		return STORE_EIO;
	copy = malloc(v.mv_size);
	memcpy(copy, v.mv_data, v.mv_size);
	copy[v.mv_size / 2] ^= 1;
	v.mv_data = copy;
	rc = mdb_put(store_txn_mdb(txn), store_txn_dbi(txn, DB_BLOBDATA), &k, &v, 0);
	free(copy);
	return rc ? STORE_EIO : 0;
}

static int break_ref_fn(struct store_txn *txn, void *ctx)
{
	(void)ctx;
	uint8_t key[8];
	struct store_mailbox mb;
	assert_int_equal(store_mailbox_get(txn, 1, "INBOX", &mb), 0);
	store_put_be32(key, mb.id);
	store_put_be32(key + 4, 2);
	MDB_val k = {8, key};
	/* Remove a message record behind the store's back: the refcount is now wrong. */
	return mdb_del(store_txn_mdb(txn), store_txn_dbi(txn, DB_MSGS), &k, NULL) ? STORE_EIO : 0;
}

static void report_collect(const char *problem, void *ctx)
{
	char *buf = ctx;
	size_t len = strlen(buf);
	snprintf(buf + len, 4096 - len, "%s\n", problem);
}

static void test_fsck_finds_damage(void **state)
{
	struct fixture *f = *state;
	uint8_t h1[STORE_HASH_LEN], h2[STORE_HASH_LEN];
	char report[4096] = "";

	add_user(f->store, "frank");
	deliver(f->store, "Subject: one\r\n\r\none\r\n", "frank", NULL, h1);
	deliver(f->store, "Subject: two\r\n\r\ntwo\r\n", "frank", NULL, h2);
	assert_int_equal(count_problems(f->store), 0);
	assert_int_equal(store_write(f->store, corrupt_fn, h1), 0);
	assert_int_equal(store_fsck(f->store, report_collect, NULL, report), 1);
	assert_non_null(strstr(report, "do not match their hash"));
	report[0] = '\0';
	assert_int_equal(store_write(f->store, break_ref_fn, NULL), 0);
	assert_true(store_fsck(f->store, report_collect, NULL, report) >= 2);
	assert_non_null(strstr(report, "reference count 1, but 0 messages"));
	assert_non_null(strstr(report, "counters say 2 messages"));
}

static void test_backup_is_consistent_copy(void **state)
{
	struct fixture *f = *state;
	char dst[300], err[256];
	struct store *b;
	struct store_stats s1, s2;

	add_user(f->store, "gina");
	deliver(f->store, "Subject: b\r\n\r\nb\r\n", "gina", NULL, NULL);
	snprintf(dst, sizeof(dst), "%s-backup", f->dir);
	assert_int_equal(store_backup(f->store, dst, err, sizeof(err)), 0);
	assert_int_equal(store_backup(f->store, dst, err, sizeof(err)), STORE_EEXIST);
	assert_int_equal(store_open(dst, NULL, &b, err, sizeof(err)), 0);
	assert_int_equal(store_stats(f->store, &s1), 0);
	assert_int_equal(store_stats(b, &s2), 0);
	assert_int_equal(s1.messages, s2.messages);
	assert_int_equal(s1.blobs, s2.blobs);
	assert_int_equal(s1.bytes_stored, s2.bytes_stored);
	assert_int_equal(count_problems(b), 0);
	store_close(&b);
	rm_rf(dst);
}

struct alias_op {
	int op;
};

static int alias_fn(struct store_txn *txn, void *ctx)
{
	struct alias_op *o = ctx;
	if (o->op == 0)
		return store_alias_add(txn, "Postmaster@Example.org", "hank");
	return store_user_del(txn, "hank");
}

static void test_alias_and_user_delete(void **state)
{
	struct fixture *f = *state;
	struct store_txn *txn;
	char target[STORE_NAME_MAX + 1];
	struct store_stats st;
	struct alias_op add = {0}, del = {1};

	add_user(f->store, "hank");
	deliver(f->store, "Subject: h\r\n\r\nh\r\n", "hank", NULL, NULL);
	assert_int_equal(store_write(f->store, alias_fn, &add), 0);
	assert_int_equal(store_write(f->store, alias_fn, &add), STORE_EEXIST);
	assert_int_equal(store_read_begin(f->store, &txn), 0);
	assert_int_equal(store_alias_get(txn, "postmaster@example.ORG", target), 0);
	assert_string_equal(target, "hank");
	store_read_end(&txn);
	assert_int_equal(store_write(f->store, alias_fn, &del), 0);
	assert_int_equal(store_stats(f->store, &st), 0);
	assert_int_equal(st.users, 0);
	assert_int_equal(st.mailboxes, 0);
	assert_int_equal(st.messages, 0);
	assert_int_equal(st.blobs, 0);
	assert_int_equal(st.aliases, 0);
	assert_int_equal(count_problems(f->store), 0);
}

static void test_watch_wakes_on_commit(void **state)
{
	struct fixture *f = *state;
	int fd = store_watch_open(f->store);
	struct store_txn *txn;
	uint64_t s0, s1;

	assert_true(fd >= 0);
	assert_int_equal(store_read_begin(f->store, &txn), 0);
	assert_int_equal(store_change_seq(txn, &s0), 0);
	store_read_end(&txn);
	struct pollfd p = {fd, POLLIN, 0};
	assert_int_equal(poll(&p, 1, 0), 0);
	add_user(f->store, "ivan");
	assert_int_equal(poll(&p, 1, 1000), 1);
	store_watch_drain(fd);
	assert_int_equal(store_read_begin(f->store, &txn), 0);
	assert_int_equal(store_change_seq(txn, &s1), 0);
	store_read_end(&txn);
	assert_true(s1 > s0);
	close(fd);
}

static int cache_fn(struct store_txn *txn, void *ctx)
{
	return store_cache_put(txn, ctx, "test", "derived", 7);
}

static int hook_classify(struct store *s, struct store_rcpt *r, const void *data, size_t len, void *ctx)
{
	(void)s;
	(void)ctx;
	if (memmem(data, len, "VIAGRA", 6) != NULL) {
		r->special_use = STORE_SU_JUNK;
		snprintf(r->hook_meta, sizeof(r->hook_meta), "spam.result=Spam\n");
	}
	return 0;
}

static int hook_moves;
static int hook_junk_moved(struct store_txn *txn, uint32_t user_id, const struct store_msg *m, int to_junk, void *ctx)
{
	(void)txn;
	(void)user_id;
	(void)m;
	(void)ctx;
	hook_moves += to_junk ? 1 : 100;
	return 0;
}

static void test_hooks_and_cache(void **state)
{
	struct fixture *f = *state;
	uint8_t hash[STORE_HASH_LEN];
	struct store_txn *txn;
	const void *data;
	size_t len;
	char meta[STORE_META_MAX];
	struct store_hooks h = {.classify = hook_classify, .junk_moved = hook_junk_moved};
	uint32_t id = add_user(f->store, "judy");

	store_set_hooks(f->store, &h);
	deliver(f->store, "Subject: VIAGRA\r\n\r\nbuy\r\n", "judy", NULL, hash);
	struct store_mailbox junk = get_mailbox(f->store, id, "Junk"), inbox = get_mailbox(f->store, id, "INBOX");
	assert_int_equal(junk.messages, 1);
	assert_int_equal(inbox.messages, 0);
	assert_int_equal(store_read_begin(f->store, &txn), 0);
	assert_int_equal(store_msg_meta(txn, junk.id, 1, meta), 0);
	assert_string_equal(meta, "spam.result=Spam\n");
	store_read_end(&txn);

	struct mbop move = {.mbid = junk.id, .uid = 1, .dst = inbox.id, .op = 2};
	assert_int_equal(store_write(f->store, mbop_fn, &move), 0);
	assert_int_equal(hook_moves, 100);
	struct mbop back = {.mbid = inbox.id, .uid = 1, .dst = junk.id, .op = 1};
	assert_int_equal(store_write(f->store, mbop_fn, &back), 0);
	assert_int_equal(hook_moves, 101);
	store_set_hooks(f->store, NULL);

	assert_int_equal(store_write(f->store, cache_fn, hash), 0);
	assert_int_equal(store_read_begin(f->store, &txn), 0);
	assert_int_equal(store_cache_get(txn, hash, "test", &data, &len), 0);
	assert_int_equal(len, 7);
	assert_memory_equal(data, "derived", 7);
	store_read_end(&txn);
	/* The cache goes with the last reference to the blob. */
	struct mbop e1 = {.mbid = inbox.id, .uid = 1, .op = 0}, e2 = {.mbid = junk.id, .uid = 2, .op = 0};
	assert_int_equal(store_write(f->store, mbop_fn, &e1), 0);
	assert_int_equal(store_write(f->store, mbop_fn, &e2), 0);
	assert_int_equal(store_read_begin(f->store, &txn), 0);
	assert_int_equal(store_cache_get(txn, hash, "test", &data, &len), STORE_ENOTFOUND);
	store_read_end(&txn);
	assert_int_equal(count_problems(f->store), 0);
}

static void test_unknown_mailbox_fails_one_recipient(void **state)
{
	struct fixture *f = *state;
	add_user(f->store, "kim");
	struct store_rcpt r[2] = {{.user = "kim", .mailbox = "Nope"}, {.user = "kim"}};
	assert_int_equal(store_deliver(f->store, "a\r\n", 3, 0, r, 2, NULL), 0);
	assert_int_equal(r[0].result, STORE_ENOTFOUND);
	assert_int_equal(r[1].result, 0);
	struct store_rcpt only = {.user = "kim", .mailbox = "Nope"};
	assert_int_equal(store_deliver(f->store, "b\r\n", 3, 0, &only, 1, NULL), STORE_ENOTFOUND);
	/* All or nothing: one bad recipient and the good one gets nothing either. */
	struct store_rcpt both[2] = {{.user = "kim"}, {.user = "kim", .mailbox = "Nope"}};
	assert_int_equal(store_deliver_atomic(f->store, "c\r\n", 3, 0, both, 2, NULL), STORE_ENOTFOUND);
	assert_int_equal(both[0].result, STORE_ENOTFOUND);
	assert_int_equal(get_mailbox(f->store, 1, "INBOX").messages, 1);
	struct store_stats st;
	assert_int_equal(store_stats(f->store, &st), 0);
	assert_int_equal(st.blobs, 1); /* neither "b" nor "c" was stored */
	assert_int_equal(count_problems(f->store), 0);
}

/* --- read-only opening, from another process ------------------------------------- */

/* In the child, a failed check exits with its line number (no cmocka there). */
#define CHILD_CHECK(c)                                                                             \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "child: %s:%d: %s\n", __FILE__, __LINE__, #c);             \
			_exit(1);                                                                  \
		}                                                                                  \
	} while (0)

static int child_count_inbox(struct store *ro, uint32_t *n_r, const char *want_body)
{
	struct store_txn *txn;
	struct store_user u;
	struct store_mailbox mb;
	struct store_msg m;
	struct store_cursor *cur;
	const void *data;
	size_t len;
	int found = 0, rc;

	if ((rc = store_read_begin(ro, &txn)) != 0)
		return rc;
	if ((rc = store_user_get(txn, "rosa", &u)) == 0 &&
	    (rc = store_mailbox_get(txn, u.id, "INBOX", &mb)) == 0 &&
	    (rc = store_msg_cursor_open(txn, mb.id, 1, &cur)) == 0) {
		*n_r = 0;
		while (store_msg_cursor_next(cur, &m) == 0) {
			(*n_r)++;
			if (store_blob_get(txn, m.hash, &data, &len) == 0 &&
			    len == strlen(want_body) && memcmp(data, want_body, len) == 0)
				found = 1;
		}
		store_msg_cursor_close(&cur);
		if (!found)
			rc = STORE_ENOTFOUND;
	}
	store_read_end(&txn);
	return rc;
}

static int noop_fn(struct store_txn *txn, void *ctx)
{
	(void)txn;
	(void)ctx;
	return 0;
}

/* What `mailkeep stats` or `fsck` does while smtpin owns the store: open it
 * read-only in another process, read, and see the writer's later commits. */
static void test_read_only_open_from_another_process(void **state)
{
	struct fixture *f = *state;
	const char *m1 = "Subject: one\r\n\r\nfirst\r\n", *m2 = "Subject: two\r\n\r\nsecond\r\n";
	int to_child[2], to_parent[2], status;
	char b = 0;

	add_user(f->store, "rosa");
	deliver(f->store, m1, "rosa", NULL, NULL);
	assert_int_equal(pipe(to_child), 0);
	assert_int_equal(pipe(to_parent), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* The parent's environment is never used here (LMDB: not across fork). */
		struct store_options opt = {.read_only = 1};
		struct store *ro = NULL;
		struct store_stats st;
		char err[256];
		uint32_t n = 0;
		close(to_child[1]);
		close(to_parent[0]);
		CHILD_CHECK(store_open(f->dir, &opt, &ro, err, sizeof(err)) == 0);
		CHILD_CHECK(store_stats(ro, &st) == 0);
		CHILD_CHECK(st.users == 1 && st.messages == 1 && st.blobs == 1 &&
			    st.mailboxes == 6);
		CHILD_CHECK(st.bytes_stored == strlen(m1) && st.map_size > 0 && st.file_bytes > 0);
		CHILD_CHECK(child_count_inbox(ro, &n, m1) == 0 && n == 1);
		CHILD_CHECK(store_write(ro, noop_fn, NULL) == STORE_EINVAL);
		CHILD_CHECK(store_fsck(ro, NULL, NULL, NULL) == 0);
		CHILD_CHECK(write(to_parent[1], "r", 1) == 1);
		CHILD_CHECK(read(to_child[0], &b, 1) == 1); /* the parent delivered m2 */
		CHILD_CHECK(child_count_inbox(ro, &n, m2) == 0 && n == 2);
		CHILD_CHECK(store_stats(ro, &st) == 0 && st.messages == 2 && st.blobs == 2);
		store_close(&ro);
		_exit(0);
	}
	close(to_child[0]);
	close(to_parent[1]);
	/* A child that failed a check has exited: read gets EOF, not 'r'. */
	int got = (int)read(to_parent[0], &b, 1);
	if (got == 1) {
		deliver(f->store, m2, "rosa", NULL, NULL);
		assert_int_equal(write(to_child[1], "w", 1), 1);
	}
	close(to_child[1]);
	close(to_parent[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(got, 1);
}

static void test_read_only_open_of_no_store(void **state)
{
	(void)state;
	char dir[] = "/tmp/mk-test-store-ro-XXXXXX", err[256] = "";
	struct store_options opt = {.read_only = 1};
	struct store *ro = NULL;

	assert_non_null(mkdtemp(dir));
	assert_int_equal(store_open(dir, &opt, &ro, err, sizeof(err)), STORE_ENOTFOUND);
	assert_null(ro);
	assert_non_null(strstr(err, "no store"));
	rm_rf(dir);
}

/* New mail is \Recent (the mount's new/, IMAP's RECENT) whatever else it has. */
static void test_delivery_is_recent(void **state)
{
	struct fixture *f = *state;
	struct store_rcpt r[2] = {{.user = "nils"},
				  {.user = "nils", .mailbox = "Sent", .flags = STORE_F_SEEN}};
	struct store_txn *txn;
	struct store_msg m;

	uint32_t id = add_user(f->store, "nils");
	assert_int_equal(store_deliver(f->store, "a\r\n", 3, 0, r, 2, NULL), 0);
	assert_int_equal(r[0].result, 0);
	assert_int_equal(r[1].result, 0);
	assert_int_equal(store_read_begin(f->store, &txn), 0);
	assert_int_equal(store_msg_get(txn, r[0].mbid, r[0].uid, &m), 0);
	assert_int_equal(m.flags, STORE_F_RECENT);
	assert_int_equal(store_msg_get(txn, r[1].mbid, r[1].uid, &m), 0);
	assert_int_equal(m.flags, STORE_F_RECENT | STORE_F_SEEN);
	store_read_end(&txn);
	assert_int_equal(get_mailbox(f->store, id, "INBOX").recent, 1);
	assert_int_equal(get_mailbox(f->store, id, "INBOX").unseen, 1);
	assert_int_equal(count_problems(f->store), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_user_has_default_mailboxes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dedup_and_refcount, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_copy_move_expunge_free, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flags_keywords_modseq, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mailbox_hierarchy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_subscriptions_by_name, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_group_commit_concurrent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_relaxed_writes_share_commits_with_durable_ones,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cursor_next_since_passes_over_unchanged, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_map_grows_then_fills, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fsck_finds_damage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backup_is_consistent_copy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_alias_and_user_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_watch_wakes_on_commit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hooks_and_cache, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_mailbox_fails_one_recipient, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_read_only_open_from_another_process, setup,
					    teardown),
	    cmocka_unit_test(test_read_only_open_of_no_store),
	    cmocka_unit_test_setup_teardown(test_delivery_is_recent, setup, teardown),
	};
	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
