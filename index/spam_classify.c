/* spam_classify — Robinson–Fisher chi-square and Graham combining (see
 * spam_classify.h). */
#include "index/spam_classify.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Tokens closer than SPAM_MIN_DEV to 0.5 are noise. */
#define ROBINSON_S SPAM_ROBINSON_S
#define ROBINSON_X SPAM_ROBINSON_X
#define SPAM_MIN_DEV 0.1
/* Past the 150 strongest tokens, more only push both chi-square tails
 * together (cross-validated: 100, 150, 200, 300 and all were tried). */
#define CHI_TOKENS SPAM_CHI_TOKENS
#define GRAHAM_TOKENS 15
#define GRAHAM_MIN_HITS 5

int spam_algorithm_parse(const char *name, enum spam_algorithm *alg_r)
{
	if (strcasecmp(name, "chi-square") == 0 || strcasecmp(name, "chi2") == 0 ||
	    strcasecmp(name, "robinson") == 0)
		*alg_r = SPAM_ALG_CHI;
	else if (strcasecmp(name, "graham") == 0)
		*alg_r = SPAM_ALG_GRAHAM;
	else
		return -1;
	return 0;
}

const char *spam_algorithm_name(enum spam_algorithm alg)
{
	return alg == SPAM_ALG_GRAHAM ? "graham" : "chi-square";
}

/* log Q(x2, v): Q = sum_{i<v/2} e^-m m^i / i!, m = x2/2, summed in log space */
static double chi2q_log(double x2, unsigned v)
{
	double m = x2 / 2.0, lm, maxl = -INFINITY, sum = 0.0;
	unsigned k = v / 2;

	if (x2 <= 0.0)
		return 0.0;
	lm = log(m);
	for (unsigned i = 0; i < k; i++) {
		double l = -m + i * lm - lgamma(i + 1.0);
		if (l > maxl)
			maxl = l;
	}
	for (unsigned i = 0; i < k; i++)
		sum += exp(-m + i * lm - lgamma(i + 1.0) - maxl);
	double q = maxl + log(sum);
	return q > 0.0 ? 0.0 : q;
}

double spam_chi2q(double x2, unsigned v)
{
	return exp(chi2q_log(x2, v));
}

double spam_token_probability(enum spam_algorithm alg, struct spam_count c, uint64_t nspam,
			      uint64_t ninnocent)
{
	double ns = nspam ? (double)nspam : 1.0, ni = ninnocent ? (double)ninnocent : 1.0;

	if (alg == SPAM_ALG_GRAHAM) {
		double g = 2.0 * c.innocent, b = c.spam;
		if (g + b < GRAHAM_MIN_HITS)
			return 0.4; /* Graham's value for the barely known */
		double bs = b / ns > 1.0 ? 1.0 : b / ns, gi = g / ni > 1.0 ? 1.0 : g / ni;
		double p = bs / (gi + bs);
		return p < 0.01 ? 0.01 : p > 0.99 ? 0.99 : p;
	}
	double n = (double)c.spam + c.innocent;
	if (n == 0)
		return ROBINSON_X;
	double sr = c.spam / ns, ir = c.innocent / ni;
	double p = sr / (sr + ir);
	return (ROBINSON_S * ROBINSON_X + n * p) / (ROBINSON_S + n);
}

struct scored {
	size_t i;
	double p, dev;
};

/* The order of strength: deviation down, then hash order (stable). */
static int dev_cmp(const void *a, const void *b)
{
	const struct scored *x = a, *y = b;
	if (x->dev != y->dev)
		return x->dev < y->dev ? 1 : -1;
	return x->i < y->i ? -1 : x->i > y->i;
}

/* Keeps the k strongest of sc[0..n) at the front, in order; returns how many
 * (min(n, k)). A heap of the k strongest seen, weakest on top, then sorted:
 * the same k, in the same order, as sorting all n. */
static size_t strongest(struct scored *sc, size_t n, size_t k)
{
	if (n <= k) {
		qsort(sc, n, sizeof(*sc), dev_cmp);
		return n;
	}
	for (size_t j = 0; j < n; j++) {
		struct scored x = sc[j];
		size_t i;
		if (j < k) { /* sift up: the weakest (largest in dev_cmp) on top */
			for (i = j; i > 0 && dev_cmp(&sc[(i - 1) / 2], &x) < 0; i = (i - 1) / 2)
				sc[i] = sc[(i - 1) / 2];
			sc[i] = x;
			continue;
		}
		if (dev_cmp(&x, &sc[0]) >= 0)
			continue; /* weaker than the weakest kept */
		for (i = 0;;) {	  /* replace the top, sift down */
			size_t l = 2 * i + 1, m = l;
			if (l >= k)
				break;
			if (l + 1 < k && dev_cmp(&sc[l + 1], &sc[l]) > 0)
				m = l + 1;
			if (dev_cmp(&sc[m], &x) <= 0)
				break;
			sc[i] = sc[m];
			i = m;
		}
		sc[i] = x;
	}
	qsort(sc, k, sizeof(*sc), dev_cmp);
	return k;
}

void spam_combine(enum spam_algorithm alg, const struct spam_tokens *set,
		  const struct spam_count *counts, uint64_t nspam, uint64_t ninnocent,
		  double threshold, struct spam_verdict *v)
{
	struct scored *sc = malloc((set->n ? set->n : 1) * sizeof(*sc));
	size_t n = 0;

	if (sc == NULL) {
		fprintf(stderr, "spam: out of memory\n");
		abort();
	}
	memset(v, 0, sizeof(*v));
	v->ntokens = set->n;
	for (size_t i = 0; i < set->n; i++) {
		if (counts[i].spam == 0 && counts[i].innocent == 0)
			continue;
		if (set->level != NULL && set->level[i] >= SPAM_LEVELS_USED)
			continue;
		double p = spam_token_probability(alg, counts[i], nspam, ninnocent);
		double dev = fabs(p - 0.5);
		if (alg == SPAM_ALG_CHI && dev < SPAM_MIN_DEV)
			continue;
		sc[n].i = i;
		sc[n].p = p;
		sc[n].dev = dev;
		n++;
	}
	n = strongest(sc, n, alg == SPAM_ALG_GRAHAM ? GRAHAM_TOKENS : CHI_TOKENS);
	if (n == 0) {
		v->probability = alg == SPAM_ALG_GRAHAM
				     ? 0.5
				     : 1.0 / (1.0 + exp(SPAM_CHI_BIAS / SPAM_CHI_SCALE));
	} else if (alg == SPAM_ALG_GRAHAM) {
		double lp = 0.0, lq = 0.0; /* logs of prod p and prod (1-p) */
		for (size_t k = 0; k < n; k++) {
			lp += log(sc[k].p);
			lq += log(1.0 - sc[k].p);
		}
		v->score = lp - lq;
		v->probability = 1.0 / (1.0 + exp(lq - lp));
	} else {
		double ls = 0.0, lh = 0.0;
		for (size_t k = 0; k < n; k++) {
			ls += log(1.0 - sc[k].p);
			lh += log(sc[k].p);
		}
		double lqs = chi2q_log(-2.0 * ls, 2 * (unsigned)n);
		double lqh = chi2q_log(-2.0 * lh, 2 * (unsigned)n);
		/* Fisher's indicator is (1 + Qh - Qs) / 2; its log-ratio keeps the
		 * order where the indicator rounds to 0 or 1 */
		v->score = lqh - lqs;
		v->probability = 1.0 / (1.0 + exp(-(v->score - SPAM_CHI_BIAS) / SPAM_CHI_SCALE));
	}
	v->nused = n;
	v->confidence = fabs(2.0 * v->probability - 1.0);
	v->spam = v->probability >= threshold;
	for (size_t k = 0; k < n && v->nfactors < SPAM_FACTORS_MAX; k++) {
		struct spam_factor *f = &v->factors[v->nfactors++];
		f->hash = set->hash[sc[k].i];
		f->text = set->text ? set->text[sc[k].i] : NULL;
		f->p = sc[k].p;
	}
	free(sc);
}

int spam_factors_format(const struct spam_verdict *v, char *out, size_t size)
{
	size_t off = 0;
	int n = snprintf(out, size, "%zu", v->nfactors);

	if (n < 0 || (size_t)n >= size)
		return -1;
	off = (size_t)n;
	for (size_t i = 0; i < v->nfactors; i++) {
		char hex[24];
		const char *t = v->factors[i].text;
		if (t == NULL) {
			snprintf(hex, sizeof(hex), "%016llx",
				 (unsigned long long)v->factors[i].hash);
			t = hex;
		}
		n = snprintf(out + off, size - off, ", %s %.6f", t, v->factors[i].p);
		if (n < 0 || (size_t)n >= size - off) {
			out[off] = 0;
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}
