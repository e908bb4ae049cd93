#define _GNU_SOURCE
/* test-store-blob — compression at rest: every byte back as stored, through
 * every encoding (raw, packed chunks, one big frame), with and without a
 * dictionary; chunks freed with their blob; an older store read; compaction
 * in place, killed half-way and resumed. */
#include <setjmp.h>
#include <signal.h>
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

#include "index/fts.h"
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

static int reopen(struct fixture *f, int level, int read_only)
{
	char err[256];
	struct store_options opt = {.compress_level = level, .read_only = read_only};

	store_close(&f->store);
	int rc = store_open(f->dir, &opt, &f->store, err, sizeof(err));
	if (rc != 0)
		print_error("store_open: %s\n", err);
	return rc;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/mk-test-blob-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(reopen(f, 0, 0), 0);
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

static int add_user_fn(struct store_txn *txn, void *ctx)
{
	struct store_user u = {0};
	snprintf(u.name, sizeof(u.name), "%s", (const char *)ctx);
	return store_user_add(txn, &u, NULL);
}

static void deliver(struct store *s, const void *data, size_t len, uint8_t hash[STORE_HASH_LEN])
{
	struct store_rcpt r = {.user = "bob"};
	assert_int_equal(store_deliver(s, data, len, 0, &r, 1, hash), 0);
	assert_int_equal(r.result, 0);
}

static void problem(const char *p, void *ctx)
{
	(void)ctx;
	print_error("fsck: %s\n", p);
}

static int fsck(struct store *s)
{
	return store_fsck(s, problem, NULL, NULL);
}

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Mail-like text: header, then lines of words from a small vocabulary with
 * numbers in them, so a dictionary and zstd both find something. */
static char *mail_text(size_t len, unsigned n)
{
	static const char *words[] = {"the",	"mail",	   "store",   "archive", "kernel",
				      "patch",	"meeting", "thanks",  "regards", "please",
				      "review", "release", "attached"};
	char *m = malloc(len + 1);
	size_t o =
	    (size_t)snprintf(m, len + 1,
			     "From: Sender %u <s%u@example.org>\r\nTo: bob@example.org\r\n"
			     "Subject: message %u\r\nMessage-ID: <%u.%llu@example.org>\r\n\r\n",
			     n % 97, n % 97, n, n, (unsigned long long)rnd());
	while (o < len) {
		char num[24];
		const char *w = words[rnd() % 13];
		if (rnd() % 9 == 0) {
			snprintf(num, sizeof(num), "%llu", (unsigned long long)(rnd() % 100000));
			w = num;
		}
		for (size_t i = 0; w[i] != '\0' && o < len; i++)
			m[o++] = w[i];
		if (o < len)
			m[o++] = rnd() % 12 == 0 ? '\n' : ' ';
	}
	m[len] = '\0';
	return m;
}

static void check_bytes(struct store *s, const uint8_t hash[STORE_HASH_LEN], const void *want,
			size_t len, int encoding)
{
	struct store_txn *txn;
	struct store_blob_info bi;
	const void *data;
	size_t got;

	assert_int_equal(store_read_begin(s, &txn), 0);
	assert_int_equal(store_blob_info(txn, hash, &bi), 0);
	if (encoding >= 0 && bi.encoding != encoding)
		print_error("blob of %zu bytes: encoding %u, %llu stored, wanted %d\n", len,
			    bi.encoding, (unsigned long long)bi.stored, encoding);
	if (encoding >= 0)
		assert_int_equal(bi.encoding, encoding);
	assert_int_equal(store_blob_get(txn, hash, &data, &got), 0);
	assert_int_equal(got, len);
	assert_memory_equal(data, want, len);
	/* a second read (the big ones come from the cache) */
	assert_int_equal(store_blob_get(txn, hash, &data, &got), 0);
	assert_int_equal(got, len);
	assert_memory_equal(data, want, len);
	store_read_end(&txn);
}

static void test_round_trip_every_encoding(void **state)
{
	struct fixture *f = *state;
	uint8_t h[7][STORE_HASH_LEN];

	assert_int_equal(store_write(f->store, add_user_fn, "bob"), 0);
	char *small = mail_text(6000, 1); /* packed */
	char *tiny = mail_text(40, 2);	  /* too small to bother: raw */
	size_t rl = 300000;
	unsigned char *random = malloc(rl); /* incompressible: raw */
	for (size_t i = 0; i < rl; i++)
		random[i] = (unsigned char)rnd();
	size_t bl = (size_t)50 << 20;
	char *big = mail_text(bl, 3); /* 50 MB: over 4 MB, raw (read from the map) */
	size_t zl = (size_t)3 << 20;  /* 3 MB, half random base64: a frame over 1 MB */
	char *z = mail_text(zl, 5);
	for (size_t i = zl / 2; i < zl; i++)
		z[i] =
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[rnd() & 63];
	char *mid = mail_text(200000, 4); /* packed, over the decoded cache's threshold */
	deliver(f->store, small, 6000, h[0]);
	deliver(f->store, tiny, 40, h[1]);
	deliver(f->store, random, rl, h[2]);
	deliver(f->store, big, bl, h[3]);
	deliver(f->store, mid, 200000, h[4]);
	deliver(f->store, "", 0, h[5]);
	deliver(f->store, z, zl, h[6]);
	check_bytes(f->store, h[0], small, 6000, STORE_ENC_PACKED);
	check_bytes(f->store, h[1], tiny, 40, STORE_ENC_RAW);
	check_bytes(f->store, h[2], random, rl, STORE_ENC_RAW);
	check_bytes(f->store, h[3], big, bl, STORE_ENC_RAW);
	check_bytes(f->store, h[6], z, zl, STORE_ENC_ZSTD);
	check_bytes(f->store, h[4], mid, 200000, STORE_ENC_PACKED);
	check_bytes(f->store, h[5], "", 0, STORE_ENC_RAW);
	assert_int_equal(fsck(f->store), 0);
	/* after a reopen, with no cache */
	assert_int_equal(reopen(f, 0, 1), 0);
	check_bytes(f->store, h[6], z, zl, STORE_ENC_ZSTD);
	check_bytes(f->store, h[0], small, 6000, STORE_ENC_PACKED);
	struct store_stats st;
	assert_int_equal(store_stats(f->store, &st), 0);
	assert_int_equal(st.blobs, 7);
	assert_int_equal(st.blobs_compressed, 3);
	assert_true(st.bytes_encoded < st.bytes_stored); /* the 50 MB one is raw */
	free(small);
	free(tiny);
	free(random);
	free(big);
	free(mid);
	free(z);
}

/* More compressed blobs read in one transaction than it keeps: the last
 * STORE_TXN_KEPT stay valid together (ASan would see a use after free). */
static void test_many_reads_in_one_transaction(void **state)
{
	struct fixture *f = *state;
	enum { N = 3 * STORE_TXN_KEPT };
	uint8_t h[N][STORE_HASH_LEN];
	char *m[N];

	assert_int_equal(store_write(f->store, add_user_fn, "bob"), 0);
	for (int i = 0; i < N; i++) {
		m[i] = mail_text(3000 + (size_t)i * 100, (unsigned)i);
		deliver(f->store, m[i], strlen(m[i]), h[i]);
	}
	struct store_txn *txn;
	const void *d[N];
	size_t len;
	assert_int_equal(store_read_begin(f->store, &txn), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(store_blob_get(txn, h[i], &d[i], &len), 0);
		assert_int_equal(len, strlen(m[i]));
		for (int j = i - STORE_TXN_KEPT + 1; j <= i; j++)
			if (j >= 0)
				assert_memory_equal(d[j], m[j], strlen(m[j]));
	}
	store_read_end(&txn);
	for (int i = 0; i < N; i++)
		free(m[i]);
}

struct expunge_ctx {
	uint32_t mbid;
};

static int expunge_all_fn(struct store_txn *txn, void *ctx)
{
	struct expunge_ctx *c = ctx;
	struct store_msg m;
	struct store_cursor *cur;
	uint32_t uids[4096];
	size_t n = 0;
	int rc = store_msg_cursor_open(txn, c->mbid, 1, &cur);
	if (rc != 0)
		return rc;
	while (n < 4096 && store_msg_cursor_next(cur, &m) == 0)
		uids[n++] = m.uid;
	store_msg_cursor_close(&cur);
	for (size_t i = 0; i < n; i++)
		if ((rc = store_msg_expunge(txn, c->mbid, uids[i])) != 0)
			return rc;
	return 0;
}

static uint64_t table_entries(struct store *s, enum store_db db)
{
	struct store_txn *txn;
	MDB_stat ms;
	assert_int_equal(store_read_begin(s, &txn), 0);
	assert_int_equal(mdb_stat(store_txn_mdb(txn), store_txn_dbi(txn, db), &ms), 0);
	store_read_end(&txn);
	return ms.ms_entries;
}

/* The packs' free story: chunks go with their blob; when every message is
 * expunged, no chunk is left, and the pages go back to LMDB. */
static void test_expunge_frees_chunks(void **state)
{
	struct fixture *f = *state;
	uint8_t h[STORE_HASH_LEN];

	assert_int_equal(store_write(f->store, add_user_fn, "bob"), 0);
	for (unsigned i = 0; i < 200; i++) {
		char *m = mail_text(2000 + i * 97, i);
		deliver(f->store, m, strlen(m), h);
		free(m);
	}
	assert_true(table_entries(f->store, DB_BLOBCHUNKS) >= 200);
	assert_int_equal(fsck(f->store), 0);
	struct store_txn *txn;
	struct store_mailbox mb;
	assert_int_equal(store_read_begin(f->store, &txn), 0);
	assert_int_equal(store_mailbox_get(txn, 1, "INBOX", &mb), 0);
	store_read_end(&txn);
	/* half of them first: the others stay readable, fsck stays clean */
	struct expunge_ctx c = {mb.id};
	assert_int_equal(store_write(f->store, expunge_all_fn, &c), 0);
	assert_int_equal(table_entries(f->store, DB_BLOBCHUNKS), 0);
	assert_int_equal(table_entries(f->store, DB_BLOBINFO), 0);
	assert_int_equal(fsck(f->store), 0);
}

/* fsck sees a chunk that belongs to nobody and a blob missing a chunk. */
static int damage_chunks_fn(struct store_txn *txn, void *ctx)
{
	(void)ctx;
	MDB_cursor *cur;
	MDB_val k, v;
	uint8_t key[8];
	int rc = mdb_cursor_open(store_txn_mdb(txn), store_txn_dbi(txn, DB_BLOBCHUNKS), &cur);
	if (rc != 0)
		return STORE_EIO;
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	if (rc == 0)
		rc = mdb_cursor_del(cur, 0); /* a blob loses its first chunk */
	mdb_cursor_close(cur);
	store_put_be64(key, (uint64_t)1 << 60);
	k.mv_size = 8;
	k.mv_data = key;
	v.mv_size = 5;
	v.mv_data = "stray";
	if (rc == 0)
		rc = mdb_put(store_txn_mdb(txn), store_txn_dbi(txn, DB_BLOBCHUNKS), &k, &v, 0);
	return rc ? STORE_EIO : 0;
}

static void test_fsck_checks_chunks(void **state)
{
	struct fixture *f = *state;
	uint8_t h[STORE_HASH_LEN];

	assert_int_equal(store_write(f->store, add_user_fn, "bob"), 0);
	char *m = mail_text(9000, 7);
	deliver(f->store, m, 9000, h);
	free(m);
	assert_int_equal(fsck(f->store), 0);
	assert_int_equal(store_write(f->store, damage_chunks_fn, NULL), 0);
	assert_int_equal(store_fsck(f->store, NULL, NULL, NULL), 2);
}

/* A dictionary trained from the store's mail shrinks what comes after;
 * blobs of an older dictionary stay readable after a new one is made. */
static void test_dictionaries(void **state)
{
	struct fixture *f = *state;
	enum { N = 300 };
	uint8_t h[N][STORE_HASH_LEN];
	char *m[N];
	char err[256];
	uint32_t id1, id2;

	assert_int_equal(store_write(f->store, add_user_fn, "bob"), 0);
	for (int i = 0; i < N / 3; i++) {
		m[i] = mail_text(2500, (unsigned)i);
		deliver(f->store, m[i], strlen(m[i]), h[i]);
	}
	assert_int_equal(store_dict_train(f->store, 0, &id1, err, sizeof(err)), 0);
	assert_int_equal(id1, 1);
	for (int i = N / 3; i < 2 * N / 3; i++) {
		m[i] = mail_text(2500, (unsigned)i);
		deliver(f->store, m[i], strlen(m[i]), h[i]);
	}
	assert_int_equal(store_dict_train(f->store, 0, &id2, err, sizeof(err)), 0);
	assert_int_equal(id2, 2);
	for (int i = 2 * N / 3; i < N; i++) {
		m[i] = mail_text(2500, (unsigned)i);
		deliver(f->store, m[i], strlen(m[i]), h[i]);
	}
	struct store_txn *txn;
	struct store_blob_info bi;
	uint64_t without = 0, with = 0;
	assert_int_equal(store_read_begin(f->store, &txn), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(store_blob_info(txn, h[i], &bi), 0);
		assert_int_equal(bi.dict, i < N / 3 ? 0 : i < 2 * N / 3 ? id1 : id2);
		if (i < N / 3)
			without += bi.stored;
		else if (i >= 2 * N / 3)
			with += bi.stored;
	}
	store_read_end(&txn);
	assert_true(with < without);
	assert_int_equal(reopen(f, 0, 1), 0);
	for (int i = 0; i < N; i++) {
		check_bytes(f->store, h[i], m[i], strlen(m[i]), -1);
		free(m[i]);
	}
	assert_int_equal(fsck(f->store), 0);
}

/* A store of an older mailkeep: raw blobs, and none of the tables added
 * since (blobchunks, dicts, the words index, retries).
 * The new code reads it read-only as it is, and adds the tables when it
 * opens it for writing. */
static int count_hit(const struct store_msg *m, void *ctx)
{
	(void)m;
	(*(int *)ctx)++;
	return 0;
}

static int drop_new_tables_fn(struct store_txn *txn, void *ctx)
{
	(void)ctx;
	static const enum store_db newer[] = {DB_BLOBCHUNKS, DB_DICTS,	     DB_FTS_QUEUE,
					      DB_FTS_DOCS,   DB_FTS_HASHES,  DB_FTS_WORDS,
					      DB_RETRIES,    DB_IMPORT_STATE};
	for (size_t i = 0; i < sizeof(newer) / sizeof(newer[0]); i++)
		if (mdb_drop(store_txn_mdb(txn), store_txn_dbi(txn, newer[i]), 1) != 0)
			return STORE_EIO;
	return 0;
}

static void test_old_store_read_by_new_code(void **state)
{
	struct fixture *f = *state;
	uint8_t h[STORE_HASH_LEN];

	assert_int_equal(reopen(f, -1, 0), 0); /* as an older mailkeep: raw */
	assert_int_equal(store_write(f->store, add_user_fn, "bob"), 0);
	char *m = mail_text(7000, 9);
	deliver(f->store, m, 7000, h);
	assert_int_equal(store_write(f->store, drop_new_tables_fn, NULL), 0);
	assert_int_equal(reopen(f, 0, 1), 0);
	check_bytes(f->store, h, m, 7000, STORE_ENC_RAW);
	assert_int_equal(fsck(f->store), 0);
	/* searched without an index: every message read */
	struct fts_query q;
	struct store_txn *txn;
	struct store_user u;
	int found = 0;
	assert_int_equal(fts_query_parse("\"message 9\"", &q), 0);
	assert_int_equal(store_read_begin(f->store, &txn), 0);
	assert_int_equal(store_user_get(txn, "bob", &u), 0);
	assert_int_equal(fts_search(txn, u.id, 0, &q, count_hit, &found, NULL), 0);
	store_read_end(&txn);
	fts_query_free(&q);
	assert_int_equal(found, 1);
	struct store_stats st;
	assert_int_equal(store_stats(f->store, &st), 0);
	assert_int_equal(st.blobs_compressed, 0);
	assert_int_equal(reopen(f, 0, 0), 0);
	check_bytes(f->store, h, m, 7000, STORE_ENC_RAW);
	free(m);
}

struct kill_ctx {
	int rounds;
};

static void kill_after(const struct store_compact_progress *p, void *ctx)
{
	struct kill_ctx *k = ctx;
	(void)p;
	if (--k->rounds == 0)
		raise(SIGKILL);
}

/* compact: a raw store converted in place; killed with SIGKILL after some
 * rounds, it is consistent, and the next run goes on from there. */
static void test_compact_killed_and_resumed(void **state)
{
	struct fixture *f = *state;
	enum { N = 1500 };
	static uint8_t h[N][STORE_HASH_LEN];
	static size_t len[N];
	char err[256];

	assert_int_equal(reopen(f, -1, 0), 0);
	assert_int_equal(store_write(f->store, add_user_fn, "bob"), 0);
	for (int i = 0; i < N; i++) {
		char *m = mail_text(1500 + (size_t)(rnd() % 20000), (unsigned)i);
		len[i] = strlen(m);
		deliver(f->store, m, len[i], h[i]);
		free(m);
	}
	struct store_stats before;
	assert_int_equal(store_stats(f->store, &before), 0);
	assert_int_equal(before.blobs_compressed, 0);
	store_close(&f->store);

	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store *s;
		struct store_options o = {0};
		struct kill_ctx k = {3};
		struct store_compact_opts co = {.level = 3, .batch = 100};
		if (store_open(f->dir, &o, &s, err, sizeof(err)) != 0)
			_exit(2);
		store_compact(s, &co, kill_after, &k, err, sizeof(err));
		_exit(3); /* not reached: killed in the third round */
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	assert_int_equal(reopen(f, 0, 0), 0);
	assert_int_equal(fsck(f->store), 0);
	struct store_stats half;
	assert_int_equal(store_stats(f->store, &half), 0);
	assert_true(half.blobs_compressed > 0);
	assert_true(half.blobs_compressed < N);

	struct store_compact_progress last = {0};
	struct store_compact_opts co = {.level = 3, .batch = 100};
	void copy_progress(const struct store_compact_progress *p, void *ctx);
	assert_int_equal(store_compact(f->store, &co, copy_progress, &last, err, sizeof(err)), 0);
	assert_true(last.resumed);
	assert_int_equal(last.done, N);
	assert_int_equal(fsck(f->store), 0);
	struct store_stats after;
	assert_int_equal(store_stats(f->store, &after), 0);
	assert_true(after.blobs_compressed > N * 9 / 10);
	assert_true(after.bytes_encoded < before.bytes_encoded / 2);
	assert_int_equal(after.bytes_stored, before.bytes_stored);
	/* every byte as it was */
	struct store_txn *txn;
	assert_int_equal(store_read_begin(f->store, &txn), 0);
	for (int i = 0; i < N; i++) {
		const void *d;
		size_t l;
		uint8_t again[STORE_HASH_LEN];
		assert_int_equal(store_blob_get(txn, h[i], &d, &l), 0);
		assert_int_equal(l, len[i]);
		store_hash(d, l, again);
		assert_memory_equal(again, h[i], STORE_HASH_LEN);
	}
	store_read_end(&txn);
	/* a second run has nothing left to do */
	memset(&last, 0, sizeof(last));
	assert_int_equal(store_compact(f->store, &co, copy_progress, &last, err, sizeof(err)), 0);
	assert_false(last.resumed);
	assert_int_equal(last.converted, 0);
}

void copy_progress(const struct store_compact_progress *p, void *ctx)
{
	*(struct store_compact_progress *)ctx = *p;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip_every_encoding, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_many_reads_in_one_transaction, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expunge_frees_chunks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fsck_checks_chunks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dictionaries, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_old_store_read_by_new_code, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_compact_killed_and_resumed, setup, teardown),
	};
	return cmocka_run_group_tests_name("store-blob", tests, NULL, NULL);
}
