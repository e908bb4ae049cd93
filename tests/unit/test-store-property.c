/* test-store-property — long random sequences of deliver / copy / move / flag /
 * expunge / delete-user, checked after every step against a simple in-memory
 * model: reference counts exact, UIDs strictly increasing per mailbox, modseq
 * monotonic, no blob leaked or freed early, and fsck clean at the end.
 * The seed is fixed (MK_PROPERTY_SEED overrides it) so a failure repeats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "index/store.h"

#define USERS 3
#define BOXES 3 /* INBOX, Archive, Junk per user */
#define BODIES 12
#define MAXMSG 4096

static const char *const box_names[BOXES] = {"INBOX", "Archive", "Junk"};

struct model_msg {
	int live;
	int body;
	uint32_t uid;
	uint32_t flags;
};

struct model_box {
	uint32_t mbid;
	uint32_t last_uid;
	uint64_t last_modseq;
	struct model_msg msgs[MAXMSG];
	int n;
};

struct model {
	int user_exists[USERS];
	struct model_box box[USERS][BOXES];
	uint8_t hash[BODIES][STORE_HASH_LEN];
	int hashed[BODIES];
};

static char body_text[BODIES][128];

static int refs_of(struct model *m, int body)
{
	int n = 0;
	for (int u = 0; u < USERS; u++)
		for (int b = 0; b < BOXES; b++)
			for (int i = 0; i < m->box[u][b].n; i++)
				if (m->box[u][b].msgs[i].live && m->box[u][b].msgs[i].body == body)
					n++;
	return n;
}

static struct model_msg *pick_live(struct model *m, int u, int b, unsigned r)
{
	struct model_box *mb = &m->box[u][b];
	int live = 0;
	for (int i = 0; i < mb->n; i++)
		live += mb->msgs[i].live;
	if (live == 0)
		return NULL;
	int k = r % live;
	for (int i = 0; i < mb->n; i++)
		if (mb->msgs[i].live && k-- == 0)
			return &mb->msgs[i];
	return NULL;
}

struct op {
	int kind;
	uint32_t mbid, uid, dst;
	uint32_t flags;
	const char *user;
	struct store_msg out;
};

static int op_fn(struct store_txn *txn, void *ctx)
{
	struct op *o = ctx;
	struct store_user u = {0};
	switch (o->kind) {
	case 1: return store_msg_copy(txn, o->mbid, o->uid, o->dst, &o->out);
	case 2: return store_msg_move(txn, o->mbid, o->uid, o->dst, &o->out);
	case 3: return store_msg_set_flags(txn, o->mbid, o->uid, STORE_FLAGS_SET, o->flags, NULL, 0, &o->out);
	case 4: return store_msg_expunge(txn, o->mbid, o->uid);
	case 5: return store_user_del(txn, o->user);
	case 6:
		snprintf(u.name, sizeof(u.name), "%s", o->user);
		return store_user_add(txn, &u, NULL);
	}
	return STORE_EINVAL;
}

static void model_add(struct model_box *mb, int body, uint32_t uid, uint32_t flags)
{
	assert_true(mb->n < MAXMSG);
	/* UIDs strictly increase within a mailbox. */
	assert_true(uid > mb->last_uid);
	mb->last_uid = uid;
	mb->msgs[mb->n++] = (struct model_msg){1, body, uid, flags};
}

static void load_mailboxes(struct store *s, struct model *m, int u)
{
	struct store_txn *txn;
	struct store_user su;
	char name[16];

	snprintf(name, sizeof(name), "user%d", u);
	assert_int_equal(store_read_begin(s, &txn), 0);
	assert_int_equal(store_user_get(txn, name, &su), 0);
	for (int b = 0; b < BOXES; b++) {
		struct store_mailbox mb;
		assert_int_equal(store_mailbox_get(txn, su.id, box_names[b], &mb), 0);
		memset(&m->box[u][b], 0, sizeof(m->box[u][b]));
		m->box[u][b].mbid = mb.id;
	}
	store_read_end(&txn);
}

/* Compares the store with the model. */
static void check(struct store *s, struct model *m)
{
	struct store_txn *txn;
	assert_int_equal(store_read_begin(s, &txn), 0);
	for (int u = 0; u < USERS; u++) {
		if (!m->user_exists[u])
			continue;
		for (int b = 0; b < BOXES; b++) {
			struct model_box *mb = &m->box[u][b];
			struct store_mailbox smb;
			assert_int_equal(store_mailbox_get_by_id(txn, mb->mbid, &smb), 0);
			/* HIGHESTMODSEQ never goes down. */
			assert_true(smb.highestmodseq >= mb->last_modseq);
			mb->last_modseq = smb.highestmodseq;
			assert_true(smb.uidnext > mb->last_uid);
			int live = 0;
			for (int i = 0; i < mb->n; i++) {
				struct store_msg sm;
				int rc = store_msg_get(txn, mb->mbid, mb->msgs[i].uid, &sm);
				if (!mb->msgs[i].live) {
					assert_int_equal(rc, STORE_ENOTFOUND);
					continue;
				}
				live++;
				assert_int_equal(rc, 0);
				assert_memory_equal(sm.hash, m->hash[mb->msgs[i].body], STORE_HASH_LEN);
				assert_int_equal(sm.flags, mb->msgs[i].flags);
				assert_true(sm.modseq <= smb.highestmodseq);
			}
			assert_int_equal(smb.messages, live);
		}
	}
	for (int body = 0; body < BODIES; body++) {
		if (!m->hashed[body])
			continue;
		struct store_blob_info bi;
		int refs = refs_of(m, body);
		int rc = store_blob_info(txn, m->hash[body], &bi);
		if (refs == 0) {
			assert_int_equal(rc, STORE_ENOTFOUND); /* freed with the last reference */
		} else {
			assert_int_equal(rc, 0); /* never freed early */
			assert_int_equal(bi.refs, refs);
		}
	}
	store_read_end(&txn);
}

static void test_random_sequences(void **state)
{
	(void)state;
	char dir[] = "/tmp/mk-test-prop-XXXXXX", err[256], path[300];
	struct store *s;
	struct model *m = calloc(1, sizeof(*m));
	unsigned seed = getenv("MK_PROPERTY_SEED") ? (unsigned)strtoul(getenv("MK_PROPERTY_SEED"), NULL, 10) : 4711;
	const int steps = 1500;

	assert_non_null(mkdtemp(dir));
	assert_int_equal(store_open(dir, NULL, &s, err, sizeof(err)), 0);
	srandom(seed);
	for (int i = 0; i < BODIES; i++)
		snprintf(body_text[i], sizeof(body_text[i]), "Subject: body %d\r\n\r\n%0*d\r\n", i, 10 + i * 7, i);
	for (int u = 0; u < USERS; u++) {
		struct op o = {.kind = 6, .user = (const char *[]){"user0", "user1", "user2"}[u]};
		assert_int_equal(store_write(s, op_fn, &o), 0);
		m->user_exists[u] = 1;
		load_mailboxes(s, m, u);
	}

	for (int step = 0; step < steps; step++) {
		int u = random() % USERS, b = random() % BOXES, kind = random() % 100;
		char uname[16];
		snprintf(uname, sizeof(uname), "user%d", u);
		if (!m->user_exists[u]) {
			struct op o = {.kind = 6, .user = uname};
			assert_int_equal(store_write(s, op_fn, &o), 0);
			m->user_exists[u] = 1;
			load_mailboxes(s, m, u);
		} else if (kind < 40) {
			/* deliver one body to 1..3 recipients (some mailboxes by name) */
			int body = random() % BODIES, n = 1 + random() % 3;
			struct store_rcpt r[3];
			int users[3], boxes[3];
			for (int k = 0; k < n; k++) {
				users[k] = random() % USERS;
				boxes[k] = random() % BOXES;
				if (!m->user_exists[users[k]])
					users[k] = u;
			}
			char names[3][16];
			for (int k = 0; k < n; k++) {
				snprintf(names[k], sizeof(names[k]), "user%d", users[k]);
				r[k] = (struct store_rcpt){.user = names[k], .mailbox = box_names[boxes[k]]};
			}
			uint8_t hash[STORE_HASH_LEN];
			assert_int_equal(store_deliver(s, body_text[body], strlen(body_text[body]), 0, r, n, hash), 0);
			memcpy(m->hash[body], hash, STORE_HASH_LEN);
			m->hashed[body] = 1;
			for (int k = 0; k < n; k++) {
				assert_int_equal(r[k].result, 0);
				model_add(&m->box[users[k]][boxes[k]], body, r[k].uid,
					  STORE_F_RECENT); /* new mail */
			}
		} else if (kind < 65) {
			/* copy (kind < 55) or move to another mailbox of the same user */
			struct model_msg *mm = pick_live(m, u, b, random());
			int d = (b + 1 + random() % (BOXES - 1)) % BOXES;
			if (mm == NULL)
				continue;
			struct op o = {.kind = kind < 55 ? 1 : 2, .mbid = m->box[u][b].mbid, .uid = mm->uid,
				       .dst = m->box[u][d].mbid};
			assert_int_equal(store_write(s, op_fn, &o), 0);
			model_add(&m->box[u][d], mm->body, o.out.uid, mm->flags);
			if (o.kind == 2)
				mm->live = 0;
		} else if (kind < 85) {
			struct model_msg *mm = pick_live(m, u, b, random());
			if (mm == NULL)
				continue;
			uint32_t flags = random() & (STORE_F_SEEN | STORE_F_FLAGGED | STORE_F_ANSWERED);
			struct op o = {.kind = 3, .mbid = m->box[u][b].mbid, .uid = mm->uid, .flags = flags};
			assert_int_equal(store_write(s, op_fn, &o), 0);
			mm->flags = flags;
		} else if (kind < 98) {
			struct model_msg *mm = pick_live(m, u, b, random());
			if (mm == NULL)
				continue;
			struct op o = {.kind = 4, .mbid = m->box[u][b].mbid, .uid = mm->uid};
			assert_int_equal(store_write(s, op_fn, &o), 0);
			mm->live = 0;
		} else {
			struct op o = {.kind = 5, .user = uname};
			assert_int_equal(store_write(s, op_fn, &o), 0);
			m->user_exists[u] = 0;
			for (int bb = 0; bb < BOXES; bb++)
				for (int i = 0; i < m->box[u][bb].n; i++)
					m->box[u][bb].msgs[i].live = 0;
		}
		check(s, m);
	}
	assert_int_equal(store_fsck(s, NULL, NULL, NULL), 0);
	store_close(&s);
	free(m);
	const char *names[] = {"data.mdb", "lock.mdb", "changes"};
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_sequences),
	};
	return cmocka_run_group_tests_name("store-property", tests, NULL, NULL);
}
