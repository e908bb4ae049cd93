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
	s->tokenizer = SPAM_TOK_SBPH;
	s->threshold = 0.90;
	s->min_user_training = 50;
	s->tum_limit = 2500;
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
			snprintf(err, errsize, "spam_training_mode = %.64s: use toe, teft or tum", v);
			return -1;
		}
	}
	v = p.spam_tokenizer;
	if (v && spam_tokenizer_parse(v, &s->tokenizer) != 0) {
		snprintf(err, errsize, "spam_tokenizer = %.64s: use sbph or osb", v);
		return -1;
	}
	s->threshold = (double)p.spam_threshold / 100.0;
	s->min_user_training = (unsigned)p.spam_min_user_training;
	s->tum_limit = (unsigned)p.spam_tum_limit;
	return 0;
}

/* --- classifying ------------------------------------------------------------------ */

int spam_classify_data(struct store_txn *txn, const struct spam_settings *s, uint32_t user_id, const void *data,
		       size_t len, struct spam_verdict *v, struct spam_tokens *set_r)
{
	struct spam_tokens local, *set = set_r ? set_r : &local;
	struct spam_stats us, gs;
	struct spam_count *counts = NULL;
	int merge, rc;

	if (s == NULL)
		s = spam_settings();
	spam_tokens_collect(set, data, len, s->tokenizer, (set_r != NULL ? SPAM_COLLECT_TEXT : 0) | SPAM_COLLECT_WINDOWS);
	rc = spam_db_stats(txn, user_id, &us);
	if (rc != 0)
		goto fail;
	merge = user_id != SPAM_GLOBAL_USER && us.spam_learned + us.innocent_learned < s->min_user_training;
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
	struct spam_cut cut;
	spam_cut_init(&cut, s->algorithm, us.spam_learned, us.innocent_learned);
	rc = spam_db_counts(txn, user_id, merge, set, counts, &cut);
	if (rc != 0)
		goto fail;
	spam_combine(s->algorithm, set, counts, us.spam_learned, us.innocent_learned, s->threshold, v);
fail:
	free(counts);
	if (set_r == NULL)
		spam_tokens_free(&local);
	return rc;
}

void spam_verdict_meta(const struct spam_verdict *v, char *out, size_t size)
{
	char factors[800];
	spam_factors_format(v, factors, sizeof(factors));
	snprintf(out, size, "spam.result=%s\nspam.probability=%.5f\nspam.confidence=%.5f\nspam.factors=%s\n",
		 v->spam ? "Spam" : "Innocent", v->probability, v->confidence, factors);
}

/* --- learning ---------------------------------------------------------------------- */

int spam_learn_data(struct store_txn *txn, const struct spam_settings *s, uint32_t user_id, const void *data,
		    size_t len, enum spam_class cls, int correction, int *changed_r)
{
	uint8_t hash[STORE_HASH_LEN];
	enum spam_class old;
	struct spam_tokens set;
	int rc;

	if (s == NULL)
		s = spam_settings();
	store_hash(data, len, hash);
	rc = spam_db_learned(txn, user_id, hash, &old);
	if (rc != 0)
		return rc;
	if (old == cls) {
		if (changed_r)
			*changed_r = 0;
		return 0;
	}
	if (old != SPAM_CLASS_NONE) /* flipped with the stored signature */
		return spam_db_train(txn, user_id, hash, NULL, s->tokenizer, cls, correction, changed_r);
	spam_tokens_collect(&set, data, len, s->tokenizer, 0);
	rc = spam_db_train(txn, user_id, hash, &set, s->tokenizer, cls, correction, changed_r);
	spam_tokens_free(&set);
	return rc;
}

int spam_learn_msg(struct store_txn *txn, const struct spam_settings *s, uint32_t user_id,
		   const struct store_msg *msg, enum spam_class cls, int correction, int *changed_r)
{
	enum spam_class old;
	const void *data;
	size_t len;
	int rc;

	if (s == NULL)
		s = spam_settings();
	rc = spam_db_learned(txn, user_id, msg->hash, &old);
	if (rc != 0)
		return rc;
	if (old == cls) {
		if (changed_r)
			*changed_r = 0;
		return 0;
	}
	if (old != SPAM_CLASS_NONE)
		return spam_db_train(txn, user_id, msg->hash, NULL, s->tokenizer, cls, correction, changed_r);
	rc = store_blob_get(txn, msg->hash, &data, &len);
	if (rc != 0)
		return rc;
	struct spam_tokens set;
	spam_tokens_collect(&set, data, len, s->tokenizer, 0);
	rc = spam_db_train(txn, user_id, msg->hash, &set, s->tokenizer, cls, correction, changed_r);
	spam_tokens_free(&set);
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

int spam_retrain(struct store *store, uint32_t user_id, uint32_t mbid, uint32_t uid, enum spam_class cls)
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
					   d->spam ? SPAM_CLASS_SPAM : SPAM_CLASS_INNOCENT, 0, NULL);
	}
	if (rc == 0)
		store_txn_touch(txn);
	return rc;
}

static int hook_classify(struct store *store, struct store_rcpt *rcpt, const void *data, size_t len, void *ctx)
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
		struct deliver_train d = {s, user_id, hash, &set, v.spam,
					  s->mode == SPAM_MODE_TEFT ||
						  (s->mode == SPAM_MODE_TUM && learned < s->tum_limit)};
		store_hash(data, len, hash);
		rc = store_write(store, deliver_train_fn, &d);
	}
fail:
	spam_tokens_free(&set);
	return rc;
}

static int hook_junk_moved(struct store_txn *txn, uint32_t user_id, const struct store_msg *msg, int to_junk,
			   void *ctx)
{
	const struct spam_settings *s = ctx;
	int rc = spam_learn_msg(txn, s, user_id, msg, to_junk ? SPAM_CLASS_SPAM : SPAM_CLASS_INNOCENT, 1, NULL);

	if (rc == STORE_ENOTFOUND || rc == STORE_ECORRUPT) {
		/* a message without readable bytes cannot teach: let the move happen */
		log_warn("spam: retrain of mailbox %u uid %u skipped: %s", msg->mbid, msg->uid, store_strerror(rc));
		return 0;
	}
	if (rc == 0) /* counted by `mailkeep report` and the metrics (index/maillog.h) */
		log_info_as("spam", "retrain: user=<#%u>, class=%s, mailbox=%u, uid=%u", user_id,
			    to_junk ? "spam" : "innocent", msg->mbid, msg->uid);
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
	"user.spam.result", "user.spam.probability", "user.spam.confidence", "user.spam.factors",
	"user.spam.tokens", "user.spam.class",	     NULL,
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

struct sig_score {
	double dev, p;
	size_t i;
};

static int sig_cmp(const void *a, const void *b)
{
	const struct sig_score *x = a, *y = b;
	if (x->dev != y->dev)
		return x->dev < y->dev ? 1 : -1;
	return x->i < y->i ? -1 : x->i > y->i;
}

/* user.spam.tokens: a summary line, then the 40 strongest tokens of the message
 * that can take part in a verdict, with the user's counts ("p spam innocent
 * token"). */
static int tokens_text(struct store_txn *txn, uint32_t user_id, const struct store_msg *msg, char *out,
		       size_t size)
{
	const struct spam_settings *s = spam_settings();
	const void *data;
	size_t len, off = 0;
	struct spam_tokens set;
	struct spam_stats st;
	enum spam_class learned;
	int rc = store_blob_get(txn, msg->hash, &data, &len);

	if (rc == 0)
		rc = spam_db_stats(txn, user_id, &st);
	if (rc == 0)
		rc = spam_db_learned(txn, user_id, msg->hash, &learned);
	if (rc != 0)
		return rc;
	spam_tokens_collect(&set, data, len, s->tokenizer, SPAM_COLLECT_TEXT | SPAM_COLLECT_WINDOWS);
	struct spam_count *c = calloc(set.n ? set.n : 1, sizeof(*c));
	struct sig_score *sc = calloc(set.n ? set.n : 1, sizeof(*sc));
	if (c == NULL || sc == NULL)
		log_fatal("spam: out of memory");
	rc = spam_db_counts(txn, user_id, 0, &set, c, NULL);
	size_t known = 0;
	for (size_t i = 0; rc == 0 && i < set.n; i++) {
		if (c[i].spam == 0 && c[i].innocent == 0)
			continue;
		if (set.level != NULL && set.level[i] >= SPAM_LEVELS_USED)
			continue; /* takes no part in verdicts */
		double p = spam_token_probability(s->algorithm, c[i], st.spam_learned, st.innocent_learned);
		sc[known].p = p;
		sc[known].dev = p > 0.5 ? p - 0.5 : 0.5 - p;
		sc[known].i = i;
		known++;
	}
	qsort(sc, known, sizeof(*sc), sig_cmp);
	int n = snprintf(out, size, "tokens=%zu known=%zu learned=%s tokenizer=%s\n", set.n, known,
			 spam_class_name(learned), spam_tokenizer_name(s->tokenizer));
	off = n > 0 && (size_t)n < size ? (size_t)n : 0;
	for (size_t k = 0; rc == 0 && k < known && k < 40; k++) {
		size_t i = sc[k].i;
		n = snprintf(out + off, size - off, "%.5f %u %u %s\n", sc[k].p, c[i].spam, c[i].innocent,
			     set.text[i] ? set.text[i] : "?");
		if (n < 0 || (size_t)n >= size - off)
			break;
		off += (size_t)n;
	}
	out[off] = 0;
	free(c);
	free(sc);
	spam_tokens_free(&set);
	return rc;
}

ssize_t spam_xattr_get(struct store_txn *txn, uint32_t user_id, const struct store_msg *msg, const char *name,
		       char *buf, size_t size)
{
	static const char *const keys[] = {"spam.result", "spam.probability", "spam.confidence", "spam.factors"};
	char meta[STORE_META_MAX], val[STORE_META_MAX];
	ssize_t ret = -EIO;
	int which = -1;

	for (int i = 0; spam_xattr_names[i]; i++)
		if (strcmp(name, spam_xattr_names[i]) == 0)
			which = i;
	if (which < 0)
		return -ENODATA;
	if (which == 4) {
		char *t = malloc(16384);
		if (t == NULL)
			return -EIO;
		if (tokens_text(txn, user_id, msg, t, 16384) == 0)
			ret = reply(t, strlen(t), buf, size);
		free(t);
		return ret;
	}
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
		return -ENODATA; /* no verdict at delivery (imported, copied in): `mailkeep spam explain` */
	return reply(val, strlen(val), buf, size);
}

int spam_xattr_set(struct store *store, uint32_t user_id, uint32_t mbid, uint32_t uid, const char *name,
		   const char *value, size_t len)
{
	char v[32];
	enum spam_class cls;

	if (strcmp(name, "user.spam.class") != 0)
		return -ENOTSUP;
	while (len > 0 && (value[len - 1] == '\n' || value[len - 1] == '\r' || value[len - 1] == ' '))
		len--;
	if (len == 0 || len >= sizeof(v))
		return -EINVAL;
	memcpy(v, value, len);
	v[len] = 0;
	if (spam_class_parse(v, &cls) != 0 || cls == SPAM_CLASS_NONE)
		return -EINVAL;
	return spam_retrain(store, user_id, mbid, uid, cls) == 0 ? 0 : -EIO;
}
