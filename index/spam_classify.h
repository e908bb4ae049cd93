/* spam_classify — the combining of token evidence into a verdict: pure
 * arithmetic, no I/O (spam_db.c brings the counts).
 *
 *   chi-square  Robinson's f(w) with Fisher's inverse chi-square combining
 *               (DSPAM's and bogofilter's default): every token whose f(w)
 *               is at least 0.1 from 0.5 counts, the 150 strongest at most.
 *               The score is the log-ratio of the two tails (it does not
 *               saturate as the indicator (1 + S - H) / 2 does); the
 *               probability maps it to (0, 1), 0.5 at the cut-off chosen by
 *               cross-validation (SPAM_CHI_BIAS, doc/spam.md).
 *   graham      Paul Graham's "A Plan for Spam": innocent counts doubled,
 *               p(w) bounded to [0.01, 0.99], the 15 most interesting tokens,
 *               Bayes' rule.
 *
 * The result is a probability of spam in [0, 1], a confidence (how far from
 * undecided: |2p - 1|) and the deciding factors: the tokens that weighed most,
 * with their own probability, as DSPAM's X-DSPAM-Factors.
 */
#ifndef MK_SPAM_CLASSIFY_H
#define MK_SPAM_CLASSIFY_H

#include <stddef.h>
#include <stdint.h>

#include "index/spam_token.h"

enum spam_algorithm {
	SPAM_ALG_CHI = 0,
	SPAM_ALG_GRAHAM = 1,
};

#define SPAM_FACTORS_MAX 15

/* Robinson's strength s and assumed probability x of a barely known token:
 * chosen by 5-fold cross-validation on the tuning part of the SpamAssassin
 * corpus (tests/bench/spam/spamtune.c, doc/spam.md). */
#define SPAM_ROBINSON_S 0.0178
#define SPAM_ROBINSON_X 0.55
/* The score at which the probability is 0.5 (the default cut-off, from the
 * cross-validation), and the scale that keeps probabilities off 0 and 1
 * (scores reach about +-950 with 150 tokens). */
#define SPAM_CHI_BIAS 5.2
#define SPAM_CHI_SCALE 30.0

/* Of a word's SBPH windows, those with at most SPAM_LEVELS_USED - 1 earlier
 * words take part in a verdict (11 of the 16): the windows of 4 and 5 words
 * repeat what their sub-windows say, mostly in mail made from one template,
 * and chi-square took each as independent evidence (see doc/spam.md). They
 * are still learned. Applies to sets collected with SPAM_COLLECT_WINDOWS. */
#define SPAM_LEVELS_USED 3

/* How often a token was seen in learned spam and learned innocent mail. */
struct spam_count {
	uint32_t spam, innocent;
};

struct spam_factor {
	uint64_t hash;
	const char *text; /* points into the token set; NULL if not known */
	double p;	  /* the token's own spam probability */
};

struct spam_verdict {
	int spam;	    /* 1 = spam */
	double score;	    /* chi-square: ln Q(ham tail) - ln Q(spam tail), above 0 spammy; graham:
			       log-odds */
	double probability; /* of spam: 1 / (1 + exp(-(score - SPAM_CHI_BIAS) / SPAM_CHI_SCALE)) */
	double confidence;  /* 0..1 */
	size_t nfactors;
	struct spam_factor factors[SPAM_FACTORS_MAX];
	size_t ntokens; /* distinct tokens in the message */
	size_t nused;	/* tokens that took part in the decision */
};

int spam_algorithm_parse(const char *name, enum spam_algorithm *alg_r);
const char *spam_algorithm_name(enum spam_algorithm alg);

/* Combines: set holds the message's distinct tokens, counts[i] the counts of
 * set->hash[i]; nspam / ninnocent are the numbers of messages learned as each.
 * With windows (set->level), tokens of level SPAM_LEVELS_USED and above take
 * no part.
 * threshold: probability at or above which the verdict is spam. */
void spam_combine(enum spam_algorithm alg, const struct spam_tokens *set,
		  const struct spam_count *counts, uint64_t nspam, uint64_t ninnocent,
		  double threshold, struct spam_verdict *v_r);

#define SPAM_CHI_TOKENS 150

/* Robinson's f(w) for one token (chi-square), exposed for `mailkeep spam explain`. */
double spam_token_probability(enum spam_algorithm alg, struct spam_count c, uint64_t nspam,
			      uint64_t ninnocent);

/* Q(x2, v): the probability that a chi-square variable with v (even) degrees
 * of freedom exceeds x2. Computed in log space, so thousands of tokens do not
 * underflow. */
double spam_chi2q(double x2, unsigned v);

/* Writes the factors as DSPAM's X-DSPAM-Factors, on one line:
 * "N, token1 0.99000, token2 0.01000, ...". Returns 0, or -1 if cut short. */
int spam_factors_format(const struct spam_verdict *v, char *out, size_t size);

#endif
