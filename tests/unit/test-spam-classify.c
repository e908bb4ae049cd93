/* test-spam-classify — learning and classifying through the store: per-user
 * separation, exact corrections, the delivery and Junk-move hooks, training
 * modes, the global set, and the combining arithmetic. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "index/params.h"
#include "index/spam.h"
#include "index/store.h"
#include "index/store_internal.h"

struct fixture {
	char dir[256];
	struct store *store;
	uint32_t alice, bob;
};

static const char spam1[] = "From: winner@lottery.example\r\nSubject: Cheap pills online now\r\n\r\n"
			    "Buy cheap pills online now, best price guaranteed, click here\r\n";
static const char spam2[] = "From: deals@pharma.example\r\nSubject: Cheap pills for you\r\n\r\n"
			    "Cheap pills, best price, order online now and save money\r\n";
static const char ham1[] = "From: carol@work.example\r\nSubject: Meeting notes for Monday\r\n\r\n"
			   "Hi team, the meeting notes for Monday are attached, see you at the review\r\n";
static const char ham2[] = "From: dave@work.example\r\nSubject: Review of the Monday meeting\r\n\r\n"
			   "Thanks for the notes, the review is moved to Tuesday, same room\r\n";
static const char probe_spam[] = "From: x@spam.example\r\nSubject: Cheap pills online\r\n\r\n"
				 "Best price for cheap pills, order online now\r\n";

static int add_users_fn(struct store_txn *txn, void *ctx)
{
	struct fixture *f = ctx;
	struct store_user u;
	int rc = store_user_ensure(txn, "alice", &u);
	if (rc != 0)
		return rc;
	f->alice = u.id;
	rc = store_user_ensure(txn, "bob", &u);
	f->bob = u.id;
	return rc;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];
	snprintf(f->dir, sizeof(f->dir), "/tmp/mk-test-spam-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(store_open(f->dir, NULL, &f->store, err, sizeof(err)), 0);
	assert_int_equal(store_write(f->store, add_users_fn, f), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char path[512];
	store_set_hooks(f->store, NULL);
	store_close(&f->store);
	const char *names[] = {"data.mdb", "lock.mdb", "changes"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", f->dir, names[i]);
		unlink(path);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

struct learn {
	uint32_t user;
	const char *msg;
	enum spam_class cls;
	int correction;
	int changed;
};

static int learn_fn(struct store_txn *txn, void *ctx)
{
	struct learn *l = ctx;
	return spam_learn_data(txn, NULL, l->user, l->msg, strlen(l->msg), l->cls, l->correction, &l->changed);
}

static int learn(struct fixture *f, uint32_t user, const char *msg, enum spam_class cls, int correction)
{
	struct learn l = {user, msg, cls, correction, 0};
	assert_int_equal(store_write(f->store, learn_fn, &l), 0);
	return l.changed;
}

static struct spam_count token(struct fixture *f, uint32_t user, const char *text)
{
	struct store_txn *txn;
	struct spam_count c;
	assert_int_equal(store_read_begin(f->store, &txn), 0);
	assert_int_equal(spam_db_token(txn, user, spam_token_hash(text, strlen(text)), &c), 0);
	store_read_end(&txn);
	return c;
}

static struct spam_stats stats(struct fixture *f, uint32_t user)
{
	struct store_txn *txn;
	struct spam_stats st;
	assert_int_equal(store_read_begin(f->store, &txn), 0);
	assert_int_equal(spam_db_stats(txn, user, &st), 0);
	store_read_end(&txn);
	return st;
}

static struct spam_verdict classify(struct fixture *f, uint32_t user, const char *msg)
{
	struct store_txn *txn;
	struct spam_verdict v;
	assert_int_equal(store_read_begin(f->store, &txn), 0);
	assert_int_equal(spam_classify_data(txn, NULL, user, msg, strlen(msg), &v, NULL), 0);
	store_read_end(&txn);
	return v;
}

/* A message from a fixed generator: common words, words of its class, now
 * and then one of the other class's, and rarer words (no randomness from
 * outside). */
static void gen_msg(char *buf, size_t size, unsigned seed, int spam)
{
	static const char *const common[] = {"the", "a", "to", "of", "and", "in", "is", "for", "you", "on",
					     "this", "that", "with", "are", "be", "we", "it", "at", "your", "as"};
	static const char *const sp[] = {"cheap", "pills", "winner", "offer", "free", "click", "money",
					 "viagra", "casino", "prize", "deal", "urgent"};
	static const char *const hm[] = {"meeting", "notes", "review", "patch", "kernel", "build", "thanks",
					 "monday", "agenda", "draft", "release", "bug"};
	uint32_t x = seed * 2654435761u + 1;
	size_t off = (size_t)snprintf(buf, size, "From: %s%u@example.org\r\nSubject:", spam ? "s" : "h", seed % 7);
	for (int w = 0; w < 120 && off + 32 < size; w++) {
		x = x * 1103515245u + 12345u;
		unsigned r = (x >> 16) % 100, k = (x >> 8) % 12;
		char rare[16];
		snprintf(rare, sizeof(rare), "w%u", (x >> 4) % 1500);
		const char *word = r < 40   ? common[(x >> 4) % 20]
				   : r < 70 ? (spam ? sp[k] : hm[k])
				   : r < 75 ? (spam ? hm[k] : sp[k])
					    : rare;
		off += (size_t)snprintf(buf + off, size - off, "%s%s", word, w == 5 ? "\r\n\r\n" : " ");
	}
	snprintf(buf + off, size - off, "\r\n");
}

/* alice learns 200 generated messages, the global set every third. */
static int learn_corpus_fn(struct store_txn *txn, void *ctx)
{
	struct fixture *f = ctx;
	char msg[2048];
	int rc = 0;
	for (unsigned i = 0; i < 200 && rc == 0; i++) {
		enum spam_class cls = i % 2 ? SPAM_CLASS_SPAM : SPAM_CLASS_INNOCENT;
		gen_msg(msg, sizeof(msg), i, i % 2);
		rc = spam_learn_data(txn, NULL, f->alice, msg, strlen(msg), cls, 0, NULL);
		if (rc == 0 && i % 3 == 0)
			rc = spam_learn_data(txn, NULL, SPAM_GLOBAL_USER, msg, strlen(msg), cls, 0, NULL);
	}
	return rc;
}

/* What spam_classify_data gives, with every count read (the set has its
 * windows, so the levels that take no part are left out alike). */
static void classify_all_read(struct store_txn *txn, const struct spam_settings *s, uint32_t user, const char *msg,
			      struct spam_verdict *v)
{
	struct spam_tokens set;
	struct spam_stats us, gs;
	assert_int_equal(spam_db_stats(txn, user, &us), 0);
	int merge = user != SPAM_GLOBAL_USER && us.spam_learned + us.innocent_learned < s->min_user_training;
	if (merge) {
		assert_int_equal(spam_db_stats(txn, SPAM_GLOBAL_USER, &gs), 0);
		us.spam_learned += gs.spam_learned;
		us.innocent_learned += gs.innocent_learned;
	}
	spam_tokens_collect(&set, msg, strlen(msg), s->tokenizer, SPAM_COLLECT_WINDOWS);
	struct spam_count *c = calloc(set.n + 1, sizeof(*c));
	assert_int_equal(spam_db_counts(txn, user, merge, &set, c, NULL), 0);
	spam_combine(s->algorithm, &set, c, us.spam_learned, us.innocent_learned, s->threshold, v);
	free(c);
	spam_tokens_free(&set);
}

/* Classifying reads only the tokens that can matter (spam_db_counts with a
 * cut); the verdict must be bit for bit the one with every count read: for a
 * user alone, for one with the global set, and for both algorithms. */
static void test_skipped_lookups_change_nothing(void **state)
{
	struct fixture *f = *state;
	char msg[2048];
	struct spam_settings s;
	size_t skipped = 0, compared = 0;

	spam_settings_default(&s);
	assert_int_equal(store_write(f->store, learn_corpus_fn, f), 0);
	assert_int_equal(stats(f, f->alice).unclosed_learned, 0);
	struct store_txn *txn;
	assert_int_equal(store_read_begin(f->store, &txn), 0);
	for (int alg = 0; alg < 2; alg++) {
		s.algorithm = alg ? SPAM_ALG_GRAHAM : SPAM_ALG_CHI;
		for (unsigned i = 1000; i < 1040; i++) {
			uint32_t user = i % 4 == 0 ? f->bob : f->alice; /* bob: the global set only */
			struct spam_verdict a, b;
			gen_msg(msg, sizeof(msg), i, i % 2);
			assert_int_equal(spam_classify_data(txn, &s, user, msg, strlen(msg), &a, NULL), 0);
			classify_all_read(txn, &s, user, msg, &b);
			assert_memory_equal(&a.probability, &b.probability, sizeof(double));
			assert_int_equal(a.spam, b.spam);
			assert_int_equal(a.ntokens, b.ntokens);
			assert_int_equal(a.nused, b.nused);
			assert_int_equal(a.nfactors, b.nfactors);
			for (size_t k = 0; k < a.nfactors; k++) {
				assert_true(a.factors[k].hash == b.factors[k].hash);
				assert_memory_equal(&a.factors[k].p, &b.factors[k].p, sizeof(double));
			}
			compared++;
			/* and tokens were skipped: counts left 0 that are not */
			struct spam_tokens set;
			struct spam_stats us;
			struct spam_cut cut;
			assert_int_equal(spam_db_stats(txn, f->alice, &us), 0);
			spam_tokens_collect(&set, msg, strlen(msg), s.tokenizer, SPAM_COLLECT_WINDOWS);
			for (size_t k = 0; k < a.nfactors; k++) { /* windows of 4 and 5 words take no part */
				long x = spam_tokens_find(&set, a.factors[k].hash);
				assert_true(x >= 0);
				assert_true(set.level[x] < SPAM_LEVELS_USED);
			}
			struct spam_count *all = calloc(set.n + 1, sizeof(*all)), *some = calloc(set.n + 1, sizeof(*some));
			spam_cut_init(&cut, s.algorithm, us.spam_learned, us.innocent_learned);
			assert_int_equal(spam_db_counts(txn, f->alice, 0, &set, some, &cut), 0);
			assert_int_equal(spam_db_counts(txn, f->alice, 0, &set, all, NULL), 0);
			for (size_t k = 0; k < set.n; k++) {
				if (set.level[k] >= SPAM_LEVELS_USED) { /* not read: no part in verdicts */
					assert_int_equal(some[k].spam, 0);
					assert_int_equal(some[k].innocent, 0);
					continue;
				}
				if (some[k].spam || some[k].innocent) {
					assert_int_equal(some[k].spam, all[k].spam);
					assert_int_equal(some[k].innocent, all[k].innocent);
				} else if (all[k].spam || all[k].innocent) {
					assert_int_equal(s.algorithm, SPAM_ALG_CHI); /* Graham skips only the unknown */
					skipped++;
				}
			}
			free(all);
			free(some);
			spam_tokens_free(&set);
		}
	}
	store_read_end(&txn);
	assert_int_equal(compared, 80);
	assert_true(skipped > 0);
}

/* A message learned with OSB lacks the sub-windows: the statistics count it,
 * and while it is in the model every token is read (still the same verdict). A
 * statistics record from before that count is counted from the signatures. */
static int old_stats_fn(struct store_txn *txn, void *ctx)
{
	struct fixture *f = ctx;
	uint8_t k[4], v[56];
	MDB_val key = {4, k}, val;
	store_put_be32(k, f->alice);
	int rc = mdb_get(store_txn_mdb(txn), store_txn_dbi(txn, DB_SPAM_STATS), &key, &val);
	if (rc != 0 || val.mv_size != 64)
		return STORE_EIO;
	memcpy(v, val.mv_data, sizeof(v)); /* the first 7 fields, as before */
	val.mv_size = sizeof(v);
	val.mv_data = v;
	rc = mdb_put(store_txn_mdb(txn), store_txn_dbi(txn, DB_SPAM_STATS), &key, &val, 0);
	store_txn_touch(txn);
	return rc ? STORE_EIO : 0;
}

struct learn_with {
	const struct spam_settings *s;
	uint32_t user;
	const char *msg;
	enum spam_class cls;
};

static int learn_with_fn(struct store_txn *txn, void *ctx)
{
	struct learn_with *l = ctx;
	return spam_learn_data(txn, l->s, l->user, l->msg, strlen(l->msg), l->cls, 0, NULL);
}

static void test_unclosed_learned(void **state)
{
	struct fixture *f = *state;
	char msg[2048];
	struct spam_settings osb, sbph;

	spam_settings_default(&sbph);
	osb = sbph;
	osb.tokenizer = SPAM_TOK_OSB;
	for (unsigned i = 0; i < 20; i++) {
		gen_msg(msg, sizeof(msg), i, i % 2);
		learn(f, f->alice, msg, i % 2 ? SPAM_CLASS_SPAM : SPAM_CLASS_INNOCENT, 0);
	}
	gen_msg(msg, sizeof(msg), 500, 1);
	struct learn_with l = {&osb, f->alice, msg, SPAM_CLASS_SPAM};
	assert_int_equal(store_write(f->store, learn_with_fn, &l), 0);
	assert_int_equal(stats(f, f->alice).unclosed_learned, 1);
	/* flipped while the setting is SBPH: still learned with OSB's tokens */
	l.s = &sbph;
	l.cls = SPAM_CLASS_INNOCENT;
	assert_int_equal(store_write(f->store, learn_with_fn, &l), 0);
	assert_int_equal(stats(f, f->alice).unclosed_learned, 1);

	struct store_txn *txn;
	struct spam_verdict a, b;
	gen_msg(msg, sizeof(msg), 2000, 1);
	assert_int_equal(store_read_begin(f->store, &txn), 0);
	assert_int_equal(spam_classify_data(txn, &sbph, f->alice, msg, strlen(msg), &a, NULL), 0);
	classify_all_read(txn, &sbph, f->alice, msg, &b);
	store_read_end(&txn);
	assert_memory_equal(&a.probability, &b.probability, sizeof(double));

	/* a record from before: not known, then counted from the signatures */
	assert_int_equal(store_write(f->store, old_stats_fn, f), 0);
	assert_true(stats(f, f->alice).unclosed_learned == SPAM_STATS_UNKNOWN);
	assert_int_equal(stats(f, f->alice).innocent_learned, 11);
	gen_msg(msg, sizeof(msg), 501, 0);
	learn(f, f->alice, msg, SPAM_CLASS_INNOCENT, 0);
	assert_int_equal(stats(f, f->alice).unclosed_learned, 1);
	/* forgetting the OSB message */
	gen_msg(msg, sizeof(msg), 500, 1);
	learn(f, f->alice, msg, SPAM_CLASS_NONE, 0);
	assert_int_equal(stats(f, f->alice).unclosed_learned, 0);
	assert_int_equal(stats(f, f->alice).innocent_learned, 11);
}

static void test_per_user_separation(void **state)
{
	struct fixture *f = *state;
	assert_true(learn(f, f->alice, spam1, SPAM_CLASS_SPAM, 0));
	struct spam_count a = token(f, f->alice, "Subject*Cheap+pills");
	struct spam_count b = token(f, f->bob, "Subject*Cheap+pills");
	assert_int_equal(a.spam, 1);
	assert_int_equal(a.innocent, 0);
	assert_int_equal(b.spam, 0);
	assert_int_equal(b.innocent, 0);
	assert_int_equal(stats(f, f->alice).spam_learned, 1);
	assert_int_equal(stats(f, f->bob).spam_learned, 0);
	/* a token seen twice in one message counts once */
	assert_int_equal(token(f, f->alice, "pills").spam, 1);
}

static void test_correction_is_exact(void **state)
{
	struct fixture *f = *state;
	learn(f, f->alice, ham1, SPAM_CLASS_INNOCENT, 0);
	struct spam_stats before = stats(f, f->alice);
	struct spam_count m0 = token(f, f->alice, "Monday");

	/* a wrong training, then its correction */
	assert_true(learn(f, f->alice, spam1, SPAM_CLASS_INNOCENT, 0));
	assert_int_equal(token(f, f->alice, "Subject*Cheap+pills").innocent, 1);
	assert_false(learn(f, f->alice, spam1, SPAM_CLASS_INNOCENT, 0)); /* again: nothing */
	assert_true(learn(f, f->alice, spam1, SPAM_CLASS_SPAM, 1));
	struct spam_count c = token(f, f->alice, "Subject*Cheap+pills");
	assert_int_equal(c.spam, 1);
	assert_int_equal(c.innocent, 0);
	struct spam_stats st = stats(f, f->alice);
	assert_int_equal(st.spam_learned, 1);
	assert_int_equal(st.innocent_learned, before.innocent_learned);
	assert_int_equal(st.spam_misses, 1);
	/* the ham's counts are untouched */
	struct spam_count m1 = token(f, f->alice, "Monday");
	assert_int_equal(m1.innocent, m0.innocent);
	assert_int_equal(m1.spam, m0.spam);

	/* forgetting removes every count the message added */
	assert_true(learn(f, f->alice, spam1, SPAM_CLASS_NONE, 0));
	assert_int_equal(token(f, f->alice, "Subject*Cheap+pills").spam, 0);
	st = stats(f, f->alice);
	assert_int_equal(st.spam_learned, 0);
	assert_int_equal(st.tokens, before.tokens);
}

static void test_classify_learns_to_separate(void **state)
{
	struct fixture *f = *state;
	learn(f, f->alice, spam1, SPAM_CLASS_SPAM, 0);
	learn(f, f->alice, spam2, SPAM_CLASS_SPAM, 0);
	learn(f, f->alice, ham1, SPAM_CLASS_INNOCENT, 0);
	learn(f, f->alice, ham2, SPAM_CLASS_INNOCENT, 0);
	struct spam_verdict v = classify(f, f->alice, probe_spam);
	assert_true(v.spam);
	assert_true(v.probability > 0.9);
	assert_true(v.nfactors > 0);
	int spammy = 0;
	for (size_t i = 0; i < v.nfactors; i++)
		spammy += v.factors[i].p > 0.5;
	assert_true(spammy > 0);
	v = classify(f, f->alice, ham2);
	assert_false(v.spam);
	assert_true(v.probability < 0.1);
	/* bob has learned nothing, and there is no global set: undecided */
	v = classify(f, f->bob, probe_spam);
	assert_false(v.spam);
	assert_true(fabs(v.probability - 0.5) < 1e-9);
}

static void test_global_set_until_user_trained(void **state)
{
	struct fixture *f = *state;
	learn(f, SPAM_GLOBAL_USER, spam1, SPAM_CLASS_SPAM, 0);
	learn(f, SPAM_GLOBAL_USER, spam2, SPAM_CLASS_SPAM, 0);
	learn(f, SPAM_GLOBAL_USER, ham1, SPAM_CLASS_INNOCENT, 0);
	learn(f, SPAM_GLOBAL_USER, ham2, SPAM_CLASS_INNOCENT, 0);
	/* bob (untrained) is served by the global set */
	assert_true(classify(f, f->bob, probe_spam).spam);
	assert_int_equal(token(f, f->bob, "pills").spam, 0);
}

static struct config *config_with(const char *mode)
{
	char err[256];
	struct config *cfg = params_load(NULL, err, sizeof(err));
	assert_non_null(cfg);
	config_set(cfg, "spam_training_mode", mode);
	return cfg;
}

static void deliver(struct fixture *f, const char *user, const char *msg, struct store_rcpt *r)
{
	memset(r, 0, sizeof(*r));
	r->user = user;
	assert_int_equal(store_deliver(f->store, msg, strlen(msg), 0, r, 1, NULL), 0);
	assert_int_equal(r->result, 0);
}

struct move {
	uint32_t mbid, uid, dst;
};

static int move_fn(struct store_txn *txn, void *ctx)
{
	struct move *m = ctx;
	return store_msg_move(txn, m->mbid, m->uid, m->dst, NULL);
}

static struct store_mailbox mailbox(struct fixture *f, uint32_t user, const char *name)
{
	struct store_txn *txn;
	struct store_mailbox mb;
	assert_int_equal(store_read_begin(f->store, &txn), 0);
	assert_int_equal(store_mailbox_get(txn, user, name, &mb), 0);
	store_read_end(&txn);
	return mb;
}

static void test_delivery_to_junk_and_move_retrains(void **state)
{
	struct fixture *f = *state;
	struct config *cfg = config_with("teft");
	struct store_rcpt r;
	char meta[STORE_META_MAX];
	struct store_txn *txn;

	learn(f, f->alice, spam1, SPAM_CLASS_SPAM, 0);
	learn(f, f->alice, spam2, SPAM_CLASS_SPAM, 0);
	learn(f, f->alice, ham1, SPAM_CLASS_INNOCENT, 0);
	learn(f, f->alice, ham2, SPAM_CLASS_INNOCENT, 0);
	assert_int_equal(spam_attach(f->store, cfg), 0);

	struct spam_count before = token(f, f->alice, "Subject*Cheap+pills+online");
	deliver(f, "alice", probe_spam, &r);
	struct store_mailbox junk = mailbox(f, f->alice, "Junk"), inbox = mailbox(f, f->alice, "INBOX");
	assert_int_equal(r.mbid, junk.id);
	assert_int_equal(junk.messages, 1);
	assert_int_equal(store_read_begin(f->store, &txn), 0);
	assert_int_equal(store_msg_meta(txn, junk.id, r.uid, meta), 0);
	store_read_end(&txn);
	assert_non_null(strstr(meta, "spam.result=Spam\n"));
	assert_non_null(strstr(meta, "spam.probability=0.9"));
	assert_non_null(strstr(meta, "spam.factors="));
	/* TEFT: learned at delivery */
	struct spam_count after = token(f, f->alice, "Subject*Cheap+pills+online");
	assert_int_equal(after.spam, before.spam + 1);
	assert_int_equal(stats(f, f->alice).spam_classified, 1);

	/* the user moves it out of Junk: exactly one spam count becomes innocent */
	struct move m = {junk.id, r.uid, inbox.id};
	assert_int_equal(store_write(f->store, move_fn, &m), 0);
	struct spam_count moved = token(f, f->alice, "Subject*Cheap+pills+online");
	assert_int_equal(moved.spam, before.spam);
	assert_int_equal(moved.innocent, before.innocent + 1);
	assert_int_equal(stats(f, f->alice).false_positives, 1);
	/* and back into Junk: the wrong correction is undone */
	struct store_mailbox inbox2 = mailbox(f, f->alice, "INBOX");
	struct move back = {inbox.id, inbox2.uidnext - 1, junk.id};
	assert_int_equal(store_write(f->store, move_fn, &back), 0);
	struct spam_count again = token(f, f->alice, "Subject*Cheap+pills+online");
	assert_int_equal(again.spam, after.spam);
	assert_int_equal(again.innocent, after.innocent);
	config_free(&cfg);
}

static void test_toe_learns_only_errors(void **state)
{
	struct fixture *f = *state;
	struct config *cfg = config_with("toe");
	struct store_rcpt r;

	assert_int_equal(spam_attach(f->store, cfg), 0);
	struct spam_stats st0 = stats(f, f->bob);
	deliver(f, "bob", probe_spam, &r); /* untrained: innocent, to INBOX */
	struct store_mailbox inbox = mailbox(f, f->bob, "INBOX"), junk = mailbox(f, f->bob, "Junk");
	assert_int_equal(r.mbid, inbox.id);
	struct spam_stats st1 = stats(f, f->bob);
	assert_int_equal(st1.spam_learned + st1.innocent_learned, st0.spam_learned + st0.innocent_learned);
	assert_int_equal(token(f, f->bob, "pills").innocent, 0);
	/* the error, corrected by moving into Junk, teaches */
	struct move m = {inbox.id, r.uid, junk.id};
	assert_int_equal(store_write(f->store, move_fn, &m), 0);
	assert_int_equal(token(f, f->bob, "pills").spam, 1);
	assert_int_equal(stats(f, f->bob).spam_misses, 1);
	/* retrain through the xattr path, by id */
	struct store_mailbox junk2 = mailbox(f, f->bob, "Junk");
	assert_int_equal(spam_xattr_set(f->store, f->bob, junk2.id, junk2.uidnext - 1, "user.spam.class",
					"innocent\n", 9),
			 0);
	assert_int_equal(token(f, f->bob, "pills").spam, 0);
	assert_int_equal(token(f, f->bob, "pills").innocent, 1);
	assert_int_equal(spam_xattr_set(f->store, f->bob, junk2.id, junk2.uidnext - 1, "user.spam.class", "maybe", 5),
			 -EINVAL);
	config_free(&cfg);
}

static void test_tum_learns_until_mature(void **state)
{
	struct fixture *f = *state;
	struct config *cfg = config_with("tum");
	struct store_rcpt r;
	char msg[512];

	config_set(cfg, "spam_tum_limit", "2");
	assert_int_equal(spam_attach(f->store, cfg), 0);
	for (int i = 0; i < 4; i++) {
		snprintf(msg, sizeof(msg), "Subject: note %d\r\n\r\nMonday review notes number %d\r\n", i, i);
		deliver(f, "bob", msg, &r);
	}
	/* the first two deliveries were learned, then the user was mature */
	struct spam_stats st = stats(f, f->bob);
	assert_int_equal(st.spam_learned + st.innocent_learned, 2);
	assert_int_equal(st.spam_classified + st.innocent_classified, 4);
	assert_int_equal(token(f, f->bob, "Monday").innocent, 2);
	config_free(&cfg);
}

static void test_xattr_get(void **state)
{
	struct fixture *f = *state;
	struct config *cfg = config_with("toe");
	struct store_rcpt r;
	struct store_txn *txn;
	struct store_msg msg;
	char buf[16384];

	learn(f, f->alice, spam1, SPAM_CLASS_SPAM, 0);
	learn(f, f->alice, ham1, SPAM_CLASS_INNOCENT, 0);
	assert_int_equal(spam_attach(f->store, cfg), 0);
	deliver(f, "alice", probe_spam, &r);
	assert_int_equal(store_read_begin(f->store, &txn), 0);
	assert_int_equal(store_msg_get(txn, r.mbid, r.uid, &msg), 0);
	ssize_t n = spam_xattr_get(txn, f->alice, &msg, "user.spam.result", buf, sizeof(buf));
	assert_true(n > 0);
	buf[n] = 0;
	assert_string_equal(buf, "Spam");
	assert_int_equal(spam_xattr_get(txn, f->alice, &msg, "user.spam.result", NULL, 0), n);
	assert_int_equal(spam_xattr_get(txn, f->alice, &msg, "user.spam.result", buf, 2), -ERANGE);
	n = spam_xattr_get(txn, f->alice, &msg, "user.spam.tokens", buf, sizeof(buf));
	assert_true(n > 0);
	buf[n] = 0;
	assert_non_null(strstr(buf, "learned=none"));
	n = spam_xattr_get(txn, f->alice, &msg, "user.spam.class", buf, sizeof(buf));
	buf[n] = 0;
	assert_string_equal(buf, "none");
	assert_int_equal(spam_xattr_get(txn, f->alice, &msg, "user.other", buf, sizeof(buf)), -ENODATA);
	store_read_end(&txn);
	config_free(&cfg);
}

static void test_combining_arithmetic(void **state)
{
	(void)state;
	assert_true(fabs(spam_chi2q(0.0, 4) - 1.0) < 1e-12);
	assert_true(fabs(spam_chi2q(2.0, 2) - exp(-1.0)) < 1e-12);
	/* Q(4, 4) = e^-2 (1 + 2) */
	assert_true(fabs(spam_chi2q(4.0, 4) - 3.0 * exp(-2.0)) < 1e-12);
	/* thousands of degrees of freedom do not underflow to nonsense */
	double q = spam_chi2q(20000.0, 20000);
	assert_true(q > 0.0 && q < 1.0);
	struct spam_count c = {10, 0};
	assert_true(spam_token_probability(SPAM_ALG_CHI, c, 10, 10) > 0.95);
	assert_true(spam_token_probability(SPAM_ALG_GRAHAM, c, 10, 10) == 0.99);
	struct spam_count few = {1, 1};
	assert_true(spam_token_probability(SPAM_ALG_GRAHAM, few, 10, 10) == 0.4);
}

static void test_graham_separates(void **state)
{
	struct fixture *f = *state;
	struct store_txn *txn;
	struct spam_verdict v;
	struct spam_settings s;

	for (int i = 0; i < 5; i++) {
		/* Graham wants 5 sightings; distinct blobs for the same words */
		char a[512], b[512];
		snprintf(a, sizeof(a), "%sX-N: %d\r\n", spam1, i);
		snprintf(b, sizeof(b), "%sX-N: %d\r\n", ham1, i);
		learn(f, f->alice, a, SPAM_CLASS_SPAM, 0);
		learn(f, f->alice, b, SPAM_CLASS_INNOCENT, 0);
	}
	spam_settings_default(&s);
	s.algorithm = SPAM_ALG_GRAHAM;
	assert_int_equal(store_read_begin(f->store, &txn), 0);
	assert_int_equal(spam_classify_data(txn, &s, f->alice, probe_spam, strlen(probe_spam), &v, NULL), 0);
	assert_true(v.spam);
	assert_true(v.nfactors <= 15);
	assert_int_equal(spam_classify_data(txn, &s, f->alice, ham1, strlen(ham1), &v, NULL), 0);
	assert_false(v.spam);
	store_read_end(&txn);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_per_user_separation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_correction_is_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_classify_learns_to_separate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_global_set_until_user_trained, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delivery_to_junk_and_move_retrains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_toe_learns_only_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tum_learns_until_mature, setup, teardown),
		cmocka_unit_test_setup_teardown(test_xattr_get, setup, teardown),
		cmocka_unit_test(test_combining_arithmetic),
		cmocka_unit_test_setup_teardown(test_skipped_lookups_change_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unclosed_learned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_graham_separates, setup, teardown),
	};
	return cmocka_run_group_tests_name("spam-classify", tests, NULL, NULL);
}
