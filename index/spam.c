/* spam — the filter's glue (see spam.h): settings, the store hooks
 * (classify at delivery, retrain on moves into and out of Junk), learning
 * stored messages, and the mount's user.spam.* xattrs. */
#include "index/spam.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "index/store_internal.h"
#include "lib/log.h"
#include "lib/util.h"

static struct spam_settings attached;
static int have_attached;

void spam_settings_default(struct spam_settings *s)
{
	s->enabled = 1;
	s->algorithm = SPAM_ALG_CHI;
	s->mode = SPAM_MODE_TOE;
	s->tokenizer = SPAM_TOK_OSB4;
	s->threshold = 0.50;
	s->min_user_training = 50;
	s->tum_limit = 2500;
	s->purge.hapax_days = 15;
	s->purge.rare_days = 60;
	s->purge.stale_days = 180;
	s->purge.token_limit = 2000000;
	s->purge.interval_days = 1;
}

const struct spam_settings *spam_settings(void)
{
	if (!have_attached) {
		spam_settings_default(&attached);
		have_attached = 1;
	}
	return &attached;
}

/* The settings of index/params_spam.def, typed (spam_settings_load reads them). */
struct spam_params {
#define PARAM(name, TYPE, def, min, max, doc) CONFIG_FIELD(name, TYPE)
#include "index/params_spam.def"
};
static const struct config_bind spam_binds[] = {
#define PARAM(name, TYPE, def, min, max, doc) CONFIG_BIND(struct spam_params, name, TYPE),
#include "index/params_spam.def"
    CONFIG_BIND_END,
};

int spam_settings_load(struct config *cfg, struct spam_settings *s, char *err, size_t errsize)
{
	struct spam_params p;
	const char *v;

	config_bind(cfg, spam_binds, &p);
	spam_settings_default(s);
	s->enabled = p.spam_filter;
	v = p.spam_algorithm;
	if (v && spam_algorithm_parse(v, &s->algorithm) != 0) {
		snprintf(err, errsize, "spam_algorithm = %.64s: use chi-square or graham", v);
		return -1;
	}
	v = p.spam_training_mode;
	if (v) {
		if (strcasecmp(v, "toe") == 0)
			s->mode = SPAM_MODE_TOE;
		else if (strcasecmp(v, "teft") == 0)
			s->mode = SPAM_MODE_TEFT;
		else if (strcasecmp(v, "tum") == 0)
			s->mode = SPAM_MODE_TUM;
		else {
			snprintf(err, errsize, "spam_training_mode = %.64s: use toe, teft or tum",
				 v);
			return -1;
		}
	}
	v = p.spam_tokenizer;
	if (v && spam_tokenizer_parse(v, &s->tokenizer) != 0) {
		snprintf(err, errsize, "spam_tokenizer = %.64s: use osb4, osb or sbph", v);
		return -1;
	}
	s->threshold = (double)p.spam_threshold / 100.0;
	s->min_user_training = (unsigned)p.spam_min_user_training;
	s->tum_limit = (unsigned)p.spam_tum_limit;
	s->purge.token_limit = (uint64_t)p.spam_token_limit;
	s->purge.hapax_days = (unsigned)p.spam_purge_hapax;
	s->purge.rare_days = (unsigned)p.spam_purge_rare;
	s->purge.stale_days = (unsigned)p.spam_purge_stale;
	s->purge.interval_days = (unsigned)p.spam_purge_interval;
	return 0;
}

/* --- classifying ------------------------------------------------------------------ */

int spam_classify_data(struct store_txn *txn, const struct spam_settings *s, uint32_t user_id,
		       const void *data, size_t len, struct spam_verdict *v,
		       struct spam_tokens *set_r)
{
	struct spam_tokens local, *set = set_r ? set_r : &local;
	struct spam_stats us, gs;
	struct spam_count *counts = NULL;
	int merge, rc;

	if (s == NULL)
		s = spam_settings();
	spam_tokens_collect(set, data, len, s->tokenizer,
			    (set_r != NULL ? SPAM_COLLECT_TEXT : 0) | SPAM_COLLECT_WINDOWS);
	rc = spam_db_stats(txn, user_id, &us);
	if (rc != 0)
		goto fail;
	merge = user_id != SPAM_GLOBAL_USER &&
		us.spam_learned + us.innocent_learned < s->min_user_training;
	if (merge) {
		rc = spam_db_stats(txn, SPAM_GLOBAL_USER, &gs);
		if (rc != 0)
			goto fail;
		us.spam_learned += gs.spam_learned;
		us.innocent_learned += gs.innocent_learned;
	}
	counts = calloc(set->n ? set->n : 1, sizeof(*counts));
	if (counts == NULL)
		log_fatal("spam: out of memory");
	rc = spam_db_counts(txn, user_id, merge, set, counts);
	if (rc != 0)
		goto fail;
	spam_combine(s->algorithm, set, counts, us.spam_learned, us.innocent_learned, s->threshold,
		     v);
fail:
	free(counts);
	if (set_r == NULL)
		spam_tokens_free(&local);
	return rc;
}

void spam_verdict_meta(const struct spam_verdict *v, char *out, size_t size)
{
	char factors[700];
	spam_factors_format(v, factors, sizeof(factors));
	snprintf(out, size,
		 "spam.result=%s\nspam.probability=%.17g\nspam.confidence=%.17g\nspam.score=%.17g\n"
		 "spam.tokens=tokens=%zu used=%zu\nspam.factors=%s\n",
		 v->spam ? "Spam" : "Innocent", v->probability, v->confidence, v->score, v->ntokens,
		 v->nused, factors);
}

/* --- learning ---------------------------------------------------------------------- */

/* Learns (or forgets) a message given its bytes: the tokens are collected
 * with the tokenizer its learning record names (a correction takes back
 * exactly what was added), or the settings' one for a message not learned. */
static int learn_bytes(struct store_txn *txn, const struct spam_settings *s, uint32_t user_id,
		       const uint8_t hash[STORE_HASH_LEN], const void *data, size_t len,
		       enum spam_class cls, int correction, int again, int *changed_r)
{
	struct spam_learned_rec rec;
	struct spam_tokens set;
	int rc = spam_db_record(txn, user_id, hash, &rec);

	if (changed_r)
		*changed_r = 0;
	if (rc != 0)
		return rc;
	if (rec.cls == cls && (!again || cls == SPAM_CLASS_NONE))
		return 0;
	if (rec.cls == SPAM_CLASS_NONE && cls == SPAM_CLASS_NONE)
		return 0;
	if (rec.has_list) /* an older record: its token list says what to take back */
		return spam_db_train(txn, user_id, hash, NULL, rec.kind, cls, correction, again,
				     &s->purge, changed_r);
	enum spam_tokenizer kind = rec.cls != SPAM_CLASS_NONE ? rec.kind : s->tokenizer;
	spam_tokens_collect(&set, data, len, kind,
			    spam_db_deferring(txn) ? SPAM_COLLECT_UNSORTED : 0);
	rc = spam_db_train(txn, user_id, hash, &set, kind, cls, correction, again, &s->purge,
			   changed_r);
	spam_tokens_free(&set);
	return rc;
}

int spam_learn_data(struct store_txn *txn, const struct spam_settings *s, uint32_t user_id,
		    const void *data, size_t len, enum spam_class cls, int correction, int again,
		    int *changed_r)
{
	uint8_t hash[STORE_HASH_LEN];

	if (s == NULL)
		s = spam_settings();
	store_hash(data, len, hash);
	return learn_bytes(txn, s, user_id, hash, data, len, cls, correction, again, changed_r);
}

int spam_learn_msg(struct store_txn *txn, const struct spam_settings *s, uint32_t user_id,
		   const struct store_msg *msg, enum spam_class cls, int correction, int *changed_r)
{
	struct spam_learned_rec rec;
	const void *data = NULL;
	size_t len = 0;
	int rc;

	if (s == NULL)
		s = spam_settings();
	if (changed_r)
		*changed_r = 0;
	rc = spam_db_record(txn, user_id, msg->hash, &rec);
	if (rc != 0 || rec.cls == cls)
		return rc;
	if (!rec.has_list && (rc = store_blob_get(txn, msg->hash, &data, &len)) != 0)
		return rc;
	return learn_bytes(txn, s, user_id, msg->hash, data, len, cls, correction, 0, changed_r);
}

struct purge_job {
	const struct spam_settings *s;
	uint32_t user_id;
	struct spam_purge_result *res;
};

static int purge_fn(struct store_txn *txn, void *ctx)
{
	struct purge_job *j = ctx;
	return spam_db_purge(txn, j->user_id, &j->s->purge, j->res);
}

int spam_purge(struct store *store, const struct spam_settings *s, uint32_t user_id,
	       struct spam_purge_result *res_r)
{
	struct purge_job j = {s ? s : spam_settings(), user_id, res_r};
	return store_write(store, purge_fn, &j);
}

/* --- rebuilding ------------------------------------------------------------------- */

#define REBUILD_CHUNK 200

struct rb_rec {
	uint32_t user_id;
	uint8_t hash[STORE_HASH_LEN];
	struct spam_learned_rec rec;
	uint64_t *list;
	size_t nlist;
};

struct rb_job {
	const struct spam_settings *s;
	uint32_t user_id; /* UINT32_MAX: all */
	uint8_t resume[4 + STORE_HASH_LEN];
	struct rb_rec recs[REBUILD_CHUNK];
	size_t n;
	int done;
	uint64_t relearned, lost;
	uint32_t
	    cleared_upto; /* users whose tokens were cleared: every id below (all) or the one */
	int cleared;
};

static int rb_collect(uint32_t user_id, const uint8_t hash[STORE_HASH_LEN],
		      const struct spam_learned_rec *rec, const uint64_t *list, size_t nlist,
		      void *ctx)
{
	struct rb_job *j = ctx;
	struct rb_rec *r = &j->recs[j->n++];
	r->user_id = user_id;
	memcpy(r->hash, hash, STORE_HASH_LEN);
	r->rec = *rec;
	r->list = NULL;
	r->nlist = 0;
	if (list != NULL) {
		r->list = malloc((nlist ? nlist : 1) * sizeof(*list));
		if (r->list == NULL)
			log_fatal("spam: out of memory");
		memcpy(r->list, list, nlist * sizeof(*list));
		r->nlist = nlist;
	}
	return 0;
}

struct rb_clear {
	struct store_txn *txn;
	int rc;
};

/* store_user_foreach's callback: clears one user's tokens. */
static int rb_clear_user(const struct store_user *u, void *ctx)
{
	struct rb_clear *c = ctx;
	int had_old;
	if (c->rc == 0)
		c->rc = spam_db_clear_tokens(c->txn, u->id, &had_old);
	return c->rc;
}

/* One chunk: clears the tokens first (the first call), then learns the
 * next REBUILD_CHUNK records again. */
static int rb_fn(struct store_txn *txn, void *ctx)
{
	struct rb_job *j = ctx;
	int rc = 0;

	if (!j->cleared) {
		int had_old;
		if (j->user_id != UINT32_MAX) {
			rc = spam_db_clear_tokens(txn, j->user_id, &had_old);
		} else {
			struct rb_clear c = {txn, 0};
			rc = spam_db_clear_tokens(txn, SPAM_GLOBAL_USER, &had_old);
			if (rc == 0)
				rc = store_user_foreach(txn, rb_clear_user, &c);
			if (rc == 0)
				rc = c.rc;
		}
		if (rc != 0)
			return rc;
		j->cleared = 1;
	}
	j->n = 0;
	rc = spam_db_records(txn, j->user_id, j->resume, REBUILD_CHUNK, rb_collect, j);
	if (rc != 0)
		return rc;
	int deferred = spam_db_defer_begin(txn) == 0;
	if (j->n < REBUILD_CHUNK)
		j->done = 1;
	for (size_t i = 0; i < j->n && rc == 0; i++) {
		struct rb_rec *r = &j->recs[i];
		const void *data;
		size_t len;
		if (store_blob_get(txn, r->hash, &data, &len) == 0) {
			struct spam_tokens set;
			spam_tokens_collect(&set, data, len, j->s->tokenizer,
					    spam_db_deferring(txn) ? SPAM_COLLECT_UNSORTED : 0);
			rc = spam_db_add_tokens(txn, r->user_id, set.hash, set.n, r->rec.cls,
						r->rec.times);
			spam_tokens_free(&set);
			if (rc == 0) {
				struct spam_learned_rec nr = r->rec;
				nr.kind = j->s->tokenizer;
				nr.has_list = 0;
				rc = spam_db_put_record(txn, r->user_id, r->hash, &nr);
			}
			j->relearned++;
		} else if (r->list != NULL) {
			/* trained from a file before issue 16: its list, in the new table */
			rc = spam_db_add_tokens(txn, r->user_id, r->list, r->nlist, r->rec.cls,
						r->rec.times);
			j->relearned++;
		} else {
			/* nothing left to learn it from: forget the record */
			struct spam_learned_rec none = {0};
			rc = spam_db_put_record(txn, r->user_id, r->hash, &none);
			j->lost++;
		}
	}
	for (size_t i = 0; i < j->n; i++)
		free(j->recs[i].list);
	if (deferred) {
		if (rc == 0)
			rc = spam_db_defer_flush(txn, &j->s->purge);
		else
			spam_db_defer_cancel(txn);
	}
	return rc;
}

struct rb_count {
	uint64_t n;
};

static int rb_count_fn(uint32_t user_id, const uint8_t hash[STORE_HASH_LEN],
		       const struct spam_learned_rec *rec, const uint64_t *list, size_t nlist,
		       void *ctx)
{
	(void)user_id, (void)hash, (void)rec, (void)list, (void)nlist;
	((struct rb_count *)ctx)->n++;
	return 0;
}

int spam_rebuild(struct store *store, const struct spam_settings *s, uint32_t user_id,
		 spam_progress_fn *progress, void *ctx, uint64_t *relearned_r, uint64_t *lost_r)
{
	struct rb_job *j = calloc(1, sizeof(*j));
	struct rb_count cnt = {0};
	struct store_txn *txn;
	uint8_t resume[4 + STORE_HASH_LEN] = {0};
	int rc;

	if (j == NULL)
		log_fatal("spam: out of memory");
	if ((rc = store_read_begin(store, &txn)) != 0) {
		free(j);
		return rc;
	}
	rc = spam_db_records(txn, user_id, resume, 0, rb_count_fn, &cnt);
	store_read_end(&txn);
	j->s = s ? s : spam_settings();
	j->user_id = user_id;
	while (rc == 0 && !j->done) {
		rc = store_write(store, rb_fn, j);
		if (rc == 0 && progress)
			progress(j->relearned + j->lost, cnt.n, ctx);
	}
	if (relearned_r)
		*relearned_r = j->relearned;
	if (lost_r)
		*lost_r = j->lost;
	free(j);
	return rc;
}

struct retrain {
	const struct spam_settings *s;
	uint32_t user_id, mbid, uid;
	enum spam_class cls;
};

static int retrain_fn(struct store_txn *txn, void *ctx)
{
	struct retrain *r = ctx;
	struct store_msg msg;
	int rc = store_msg_get(txn, r->mbid, r->uid, &msg);
	if (rc != 0)
		return rc;
	return spam_learn_msg(txn, r->s, r->user_id, &msg, r->cls, 1, NULL);
}

int spam_retrain(struct store *store, uint32_t user_id, uint32_t mbid, uint32_t uid,
		 enum spam_class cls)
{
	struct retrain r = {spam_settings(), user_id, mbid, uid, cls};
	return store_write(store, retrain_fn, &r);
}

/* --- hooks -------------------------------------------------------------------------- */

struct deliver_train {
	const struct spam_settings *s;
	uint32_t user_id;
	const uint8_t *hash;
	const struct spam_tokens *set;
	int spam;
	int learn;
};

static int deliver_train_fn(struct store_txn *txn, void *ctx)
{
	struct deliver_train *d = ctx;
	int rc = spam_db_count_verdict(txn, d->user_id, d->spam);
	if (rc == 0 && d->learn) {
		enum spam_class old;
		rc = spam_db_learned(txn, d->user_id, d->hash, &old);
		if (rc == 0 && old == SPAM_CLASS_NONE)
			rc = spam_db_train(txn, d->user_id, d->hash, d->set, d->s->tokenizer,
					   d->spam ? SPAM_CLASS_SPAM : SPAM_CLASS_INNOCENT, 0, 0,
					   &d->s->purge, NULL);
	}
	if (rc == 0)
		store_txn_touch(txn);
	return rc;
}

static int hook_classify(struct store *store, struct store_rcpt *rcpt, const void *data, size_t len,
			 void *ctx)
{
	const struct spam_settings *s = ctx;
	struct store_txn *txn = NULL;
	struct store_user user;
	struct spam_verdict v;
	struct spam_tokens set = {0};
	struct spam_stats st = {0};
	uint32_t user_id = SPAM_GLOBAL_USER;
	int rc, known;

	rc = store_read_begin(store, &txn);
	if (rc != 0)
		return rc;
	known = store_user_get(txn, rcpt->user, &user) == 0;
	if (known) {
		user_id = user.id;
		rc = spam_db_stats(txn, user_id, &st);
	}
	if (rc == 0)
		rc = spam_classify_data(txn, s, user_id, data, len, &v, &set);
	store_read_end(&txn);
	if (rc != 0)
		goto fail;
	rcpt->special_use = v.spam ? STORE_SU_JUNK : STORE_SU_NONE;
	spam_verdict_meta(&v, rcpt->hook_meta, sizeof(rcpt->hook_meta));
	/* In toe mode nothing is learned at delivery: no second durable write
	 * per recipient (verdicts are then not counted in the statistics). */
	if (known && s->mode != SPAM_MODE_TOE) {
		uint8_t hash[STORE_HASH_LEN];
		uint64_t learned = st.spam_learned + st.innocent_learned;
		struct deliver_train d = {
		    s,
		    user_id,
		    hash,
		    &set,
		    v.spam,
		    s->mode == SPAM_MODE_TEFT || (s->mode == SPAM_MODE_TUM && learned < s->tum_limit)};
		store_hash(data, len, hash);
		rc = store_write(store, deliver_train_fn, &d);
	}
fail:
	spam_tokens_free(&set);
	return rc;
}

static int hook_junk_moved(struct store_txn *txn, uint32_t user_id, const struct store_msg *msg,
			   int to_junk, void *ctx)
{
	const struct spam_settings *s = ctx;
	int rc = spam_learn_msg(txn, s, user_id, msg,
				to_junk ? SPAM_CLASS_SPAM : SPAM_CLASS_INNOCENT, 1, NULL);

	if (rc == STORE_ENOTFOUND || rc == STORE_ECORRUPT) {
		/* a message without readable bytes cannot teach: let the move happen */
		log_warn("spam: retrain of mailbox %u uid %u skipped: %s", msg->mbid, msg->uid,
			 store_strerror(rc));
		return 0;
	}
	return rc;
}

int spam_attach(struct store *store, struct config *cfg)
{
	char err[256];
	struct spam_settings s;

	if (spam_settings_load(cfg, &s, err, sizeof(err)) != 0) {
		log_warn("spam: %s", err);
		return -1;
	}
	attached = s;
	have_attached = 1;
	if (!s.enabled)
		return 0;
	struct store_txn *txn;
	if (store_read_begin(store, &txn) == 0) {
		if (spam_db_has_old_format(txn))
			log_warn("spam: the token database is in the format before mailkeep's "
				 "issue 16 and is not "
				 "read: run `mailkeep spam rebuild` once");
		store_read_end(&txn);
	}
	struct store_hooks hooks = {
	    .classify = hook_classify,
	    .junk_moved = hook_junk_moved,
	    .ctx = &attached,
	};
	store_set_hooks(store, &hooks);
	return 0;
}

/* --- xattrs --------------------------------------------------------------------------- */

const char *const spam_xattr_names[] = {
    "user.spam.result",
    "user.spam.probability",
    "user.spam.confidence",
    "user.spam.factors",
    "user.spam.tokens",
    "user.spam.class",
    NULL,
};

/* The value of "key=" in metadata lines into out; 0 or -1 if absent. */
static int meta_value(const char *meta, const char *key, char *out, size_t size)
{
	size_t kl = strlen(key);
	const char *p = meta;

	while (p && *p) {
		if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
			const char *v = p + kl + 1, *e = strchr(v, '\n');
			size_t l = e ? (size_t)(e - v) : strlen(v);
			if (l >= size)
				l = size - 1;
			memcpy(out, v, l);
			out[l] = 0;
			return 0;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

static ssize_t reply(const char *value, size_t vl, char *buf, size_t size)
{
	if (size == 0)
		return (ssize_t)vl;
	if (vl > size)
		return -ERANGE;
	memcpy(buf, value, vl);
	return (ssize_t)vl;
}

ssize_t spam_xattr_get(struct store_txn *txn, uint32_t user_id, const struct store_msg *msg,
		       const char *name, char *buf, size_t size)
{
	static const char *const keys[] = {"spam.result", "spam.probability", "spam.confidence",
					   "spam.factors", "spam.tokens"};
	char meta[STORE_META_MAX], val[STORE_META_MAX];
	int which = -1;

	for (int i = 0; spam_xattr_names[i]; i++)
		if (strcmp(name, spam_xattr_names[i]) == 0)
			which = i;
	if (which < 0)
		return -ENODATA;
	if (which == 5) {
		enum spam_class learned;
		if (spam_db_learned(txn, user_id, msg->hash, &learned) != 0)
			return -EIO;
		const char *c = spam_class_name(learned);
		return reply(c, strlen(c), buf, size);
	}
	if (store_msg_meta(txn, msg->mbid, msg->uid, meta) != 0)
		meta[0] = 0;
	if (meta_value(meta, keys[which], val, sizeof(val)) != 0)
		return -ENODATA; /* no verdict at delivery (imported, copied in): `mailkeep spam
				    explain` */
	return reply(val, strlen(val), buf, size);
}

int spam_xattr_set(struct store *store, uint32_t user_id, uint32_t mbid, uint32_t uid,
		   const char *name, const char *value, size_t len)
{
	char v[32];
	enum spam_class cls;

	if (strcmp(name, "user.spam.class") != 0)
		return -ENOTSUP;
	while (len > 0 &&
	       (value[len - 1] == '\n' || value[len - 1] == '\r' || value[len - 1] == ' '))
		len--;
	if (len == 0 || len >= sizeof(v))
		return -EINVAL;
	memcpy(v, value, len);
	v[len] = 0;
	if (spam_class_parse(v, &cls) != 0 || cls == SPAM_CLASS_NONE)
		return -EINVAL;
	return spam_retrain(store, user_id, mbid, uid, cls) == 0 ? 0 : -EIO;
}
