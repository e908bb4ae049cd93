/* spamtune — the cross-validation that chose the spam filter's design and
 * its default cut-off (doc/spam.md), kept to repeat it. In memory, seconds a
 * run: tokenizes every message once with the project's tokenizer, then for
 * each of the 5 folds of the tuning part trains a model and scores the fold.
 * The held-out 20% (FNV-1a of the file name % 5 == 0) is never read unless
 * HELDOUT=1 (then: trained on the whole tuning part, scored on it once).
 *
 *   cc -O2 -I. -o spamtune tests/bench/spam/spamtune.c build/index/libindex.a \
 *      build/lib/libmk.a -llmdb -lcrypto -lm -pthread
 *   TOK=2 MODEL=0 RS=0.0178 RX=0.55 TOP=150 ./spamtune CORPUS     (the shipped choice)
 *
 * TOK: 0 sbph, 1 osb, 2 osb4. FEAT: 1 byte 4-grams only, 2 the tokenizer's
 * and 4-grams again, 3 the tokenizer's and the 4-grams of the body's first
 * GLEN bytes. MODEL: 0 chi-square (RS, RX, MINDEV, TOP, W: innocent
 * weight), 1 log-likelihood sum (A, CLIP), 2 online logistic regression
 * (ETA, NORM), 3 Winnow (ALPHA, BETA). TRAIN: 0 everything, 1 on error,
 * 2 with a thick threshold (THICK); PASSES; PRUNE=n drops tokens seen n
 * times or fewer after training. Prints FP/FN at CUT, FN at FP <= 0.2%,
 * 1-AUC, and the cut-off minimising 10 x FP + FN ("best10"). DUMP=1 prints
 * every score. */
#define _GNU_SOURCE
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index/spam_token.h"
#include "lib/util.h"

struct msg {
	char name[128];
	int spam, fold, held;
	uint64_t *tok;
	size_t n;
};

static uint64_t fnv(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static int cmpstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static struct msg *M;
static size_t NM;

static void load(const char *corpus, int kind)
{
	const char *cls[2] = {"ham", "spam"};
	for (int c = 0; c < 2; c++) {
		char dir[512];
		snprintf(dir, sizeof dir, "%s/%s", corpus, cls[c]);
		DIR *d = opendir(dir);
		struct dirent *e;
		char **names = NULL;
		size_t nn = 0;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.') continue;
			names = realloc(names, (nn + 1) * sizeof(*names));
			names[nn++] = strdup(e->d_name);
		}
		closedir(d);
		qsort(names, nn, sizeof(*names), cmpstr);
		size_t k = 0;
		for (size_t i = 0; i < nn; i++) {
			M = realloc(M, (NM + 1) * sizeof(*M));
			struct msg *m = &M[NM++];
			memset(m, 0, sizeof(*m));
			snprintf(m->name, sizeof m->name, "%s", names[i]);
			m->spam = c;
			m->held = fnv(names[i]) % 5 == 0;
			m->fold = m->held ? -1 : (int)(k++ % 5);
			char path[1024];
			snprintf(path, sizeof path, "%s/%s", dir, names[i]);
			char *data; size_t len;
			if (mk_read_file(path, 64 << 20, &data, &len) != 0) abort();
			struct spam_tokens set;
			int feat = getenv("FEAT") ? atoi(getenv("FEAT")) : 0;
			size_t glen = getenv("GLEN") ? (size_t)atoi(getenv("GLEN")) : 3000;
			int gn = getenv("GN") ? atoi(getenv("GN")) : 4;
			if (feat == 0) {
				spam_tokens_collect(&set, data, len, kind, 0);
			} else {
				uint64_t *h = NULL; size_t nh = 0;
				if (feat == 2 || feat == 3) {
					spam_tokens_collect(&set, data, len, kind, 0);
					h = malloc((set.n + glen) * 8);
					memcpy(h, set.hash, set.n * 8); nh = set.n;
					spam_tokens_free(&set);
				} else h = malloc((glen + 1) * 8);
				const char *d = data; size_t l = len;
				if (feat == 3) { /* the body's start */
					const char *e = memmem(d, l, "\n\n", 2), *e2 = memmem(d, l, "\r\n\r\n", 4);
					if (e2 && (!e || e2 < e)) e = e2 + 2;
					if (e) { l -= (size_t)(e + 2 - d); d = e + 2; }
				}
				if (l > 5 && memcmp(d, "From ", 5) == 0) { const char *nl = memchr(d, '\n', l); if (nl) { l -= (size_t)(nl + 1 - d); d = nl + 1; } }
				if (l > glen) l = glen;
				for (size_t j = 0; j + gn <= l; j++) h[nh++] = spam_token_hash(d + j, (size_t)gn) ^ 0x5555;
				spam_tokens_from_hashes(&set, h, nh);
				free(h);
			}
			m->tok = malloc(set.n * 8 + 8);
			memcpy(m->tok, set.hash, set.n * 8);
			m->n = set.n;
			spam_tokens_free(&set);
			free(data);
			free(names[i]);
		}
		free(names);
	}
}

/* token table */
struct ent { uint64_t h; double s, n; };
static struct ent *T; static size_t TC, TN;
static void tclear(void) { free(T); TC = 1 << 25; T = calloc(TC, sizeof *T); TN = 0; }
static struct ent *tget(uint64_t h, int add)
{
	if (h == 0) h = 1;
	size_t i = (h * 0x9E3779B97F4A7C15ULL) >> 42 & (TC - 1);
	for (;; i = (i + 1) & (TC - 1)) {
		if (T[i].h == h) return &T[i];
		if (T[i].h == 0) {
			if (!add) return NULL;
			T[i].h = h; TN++; return &T[i];
		}
	}
}

static double NS, NH;
/* params */
static int MODEL; /* 0 chi, 1 nb-llr */
static double P_a = 0.5, P_clip = 5, P_minc = 0, P_thick = 0, P_rx = 0.5, P_rs = 0.45, P_mindev = 0.1, P_w = 1;
static double P_eta = 0.02, P_alpha = 1.23, P_beta = 0.83; static int P_norm = 1;
static int P_top = 150, P_train = 0 /*0 all,1 toe,2 tone*/, P_passes = 1;

static double chi2q_log(double x2, unsigned v)
{
	double m = x2 / 2.0, lm, maxl = -INFINITY, sum = 0.0;
	unsigned k = v / 2;
	if (x2 <= 0.0) return 0.0;
	lm = log(m);
	for (unsigned i = 0; i < k; i++) { double l = -m + i * lm - lgamma(i + 1.0); if (l > maxl) maxl = l; }
	for (unsigned i = 0; i < k; i++) sum += exp(-m + i * lm - lgamma(i + 1.0) - maxl);
	double q = maxl + log(sum);
	return q > 0.0 ? 0.0 : q;
}

static int dcmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return fabs(y - 0.5) > fabs(x - 0.5) ? 1 : fabs(y - 0.5) < fabs(x - 0.5) ? -1 : 0; }
static int lcmp(const void *a, const void *b) { double x = fabs(*(const double *)a), y = fabs(*(const double *)b); return y > x ? 1 : y < x ? -1 : 0; }

/* returns a score: higher = spammier; 0 = undecided */
static double score(const struct msg *m)
{
	static double *buf; static size_t bc;
	if (bc < m->n + 1) { bc = m->n + 1; buf = realloc(buf, bc * sizeof *buf); }
	size_t k = 0;
	double ns = NS ? NS : 1, nh = NH ? NH : 1;
	if (MODEL == 2 || MODEL == 3) {
		double sum = 0;
		for (size_t i = 0; i < m->n; i++) {
			struct ent *e = tget(m->tok[i], 0);
			if (MODEL == 2) sum += e ? e->s : 0;
			else sum += e ? e->s : 1.0;
		}
		if (MODEL == 2) return P_norm ? sum / sqrt((double)m->n + 1) : sum;
		return m->n ? log(sum / (double)m->n) : 0;
	}
	for (size_t i = 0; i < m->n; i++) {
		struct ent *e = tget(m->tok[i], 0);
		if (!e) continue;
		double s = e->s, n = e->n;
		if (s + n <= P_minc) continue;
		if (MODEL == 0) {
			double sr = s / ns, ir = P_w * n / nh;
			double p = sr / (sr + ir);
			double f = (P_rs * P_rx + (s + n) * p) / (P_rs + s + n);
			if (fabs(f - 0.5) < P_mindev) continue;
			buf[k++] = f;
		} else {
			double ps = (s + P_a) / (ns + 2 * P_a), ph = (n + P_a) / (nh + 2 * P_a);
			double l = log(ps / ph);
			if (l > P_clip) l = P_clip;
			if (l < -P_clip) l = -P_clip;
			buf[k++] = l;
		}
	}
	if (MODEL == 0) {
		if (P_top && k > (size_t)P_top) { qsort(buf, k, sizeof *buf, dcmp); k = P_top; }
		if (k == 0) return 0;
		double ls = 0, lh = 0;
		for (size_t i = 0; i < k; i++) { ls += log(1 - buf[i]); lh += log(buf[i]); }
		double lqs = chi2q_log(-2 * ls, 2 * k), lqh = chi2q_log(-2 * lh, 2 * k);
		/* P = (1 + Qh - Qs)/2 ; score as a log ratio that does not saturate */
		return (exp(lqh) - exp(lqs)) != 0 ? (lqh - lqs) : 0;
	} else {
		if (P_top && k > (size_t)P_top) { qsort(buf, k, sizeof *buf, lcmp); k = P_top; }
		double L = 0;
		for (size_t i = 0; i < k; i++) L += buf[i];
		return L;
	}
}

static void learn(const struct msg *m, double d)
{
	for (size_t i = 0; i < m->n; i++) {
		struct ent *e = tget(m->tok[i], 1);
		if (m->spam) e->s += d; else e->n += d;
	}
	if (m->spam) NS += d; else NH += d;
}

static double CUT = 0;
static void update(const struct msg *m, double sc)
{
	if (MODEL == 2) {
		double x = P_norm ? 1 / sqrt((double)m->n + 1) : 1;
		double p = 1 / (1 + exp(-sc));
		double g = P_eta * ((m->spam ? 1 : 0) - p) * x;
		for (size_t i = 0; i < m->n; i++) { struct ent *e = tget(m->tok[i], 1); e->s += g; e->n += 1; }
	} else {
		for (size_t i = 0; i < m->n; i++) { struct ent *e = tget(m->tok[i], 1); if (e->n == 0) { e->s = 1.0; } e->n += 1; e->s *= m->spam ? P_alpha : P_beta; }
	}
	if (m->spam) NS++; else NH++;
}
static void train(struct msg **tr, size_t n)
{
	for (int pass = 0; pass < P_passes; pass++) {
		size_t learned = 0;
		for (size_t i = 0; i < n; i++) {
			struct msg *m = tr[i];
			if (MODEL >= 2) {
				double sc = score(m) - CUT;
				int wrong = m->spam ? sc <= 0 : sc > 0;
				if (P_train == 0 || wrong || fabs(sc) < P_thick) { update(m, sc + CUT); learned++; }
				continue;
			}
			if ((P_train == 0 || P_train == 3) && pass == 0) { learn(m, 1); learned++; continue; }
			double sc = score(m) - CUT;
			int wrong = m->spam ? sc <= 0 : sc > 0;
			int near = fabs(sc) < P_thick;
			if (wrong || ((P_train == 2 || P_train == 3) && near)) { learn(m, 1); learned++; }
		}
		if (getenv("VERBOSE")) fprintf(stderr, "pass %d learned %zu\n", pass, learned);
		if (learned == 0) break;
	}
}

struct res { double sc; int spam; };
static int rcmp(const void *a, const void *b) { const struct res *x = a, *y = b; return x->sc < y->sc ? -1 : x->sc > y->sc; }

static void report(struct res *r, size_t n, const char *what)
{
	qsort(r, n, sizeof *r, rcmp);
	size_t nh = 0, ns = 0;
	for (size_t i = 0; i < n; i++) { if (r[i].spam) ns++; else nh++; }
	/* AUC with ties half */
	double wins = 0; size_t hb = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i, th = 0, ts = 0;
		while (j < n && r[j].sc == r[i].sc) { if (r[j].spam) ts++; else th++; j++; }
		wins += ts * (hb + 0.5 * th);
		hb += th; i = j;
	}
	double auc = wins / ((double)nh * ns);
	size_t fp = 0, fn = 0;
	for (size_t i = 0; i < n; i++) { if (r[i].spam && r[i].sc <= CUT) fn++; if (!r[i].spam && r[i].sc > CUT) fp++; }
	/* FN at FP <= 0.2% : cutoff above the k-th highest ham */
	size_t fpmax = (size_t)(0.002 * nh), seen = 0; double c = -INFINITY;
	for (size_t i = n; i-- > 0;) if (!r[i].spam) { if (seen == fpmax) { c = r[i].sc; break; } seen++; }
	size_t fn2 = 0; for (size_t i = 0; i < n; i++) if (r[i].spam && !(r[i].sc > c)) fn2++;
	/* cost-minimizing cutoff 10*FP+FN */
	double bestc = 0; size_t bestcost = (size_t)-1;
	for (size_t i = 0; i + 1 <= n; i++) {
		double cc = r[i].sc; size_t f1 = 0, f2 = 0;
		for (size_t j = 0; j < n; j++) { if (r[j].spam && r[j].sc <= cc) f2++; if (!r[j].spam && r[j].sc > cc) f1++; }
		if (10 * f1 + f2 < bestcost) { bestcost = 10 * f1 + f2; bestc = cc; }
		if (n > 4000) i += 3;
	}
	printf("%s: ham %zu spam %zu | cut %.3g FP %zu (%.2f%%) FN %zu (%.2f%%) | FN@FP<=%zu %zu (%.2f%%) | 1-AUC %.4f%% | best10 cut %.4g cost %zu | tokens %zu\n",
	       what, nh, ns, CUT, fp, 100.0 * fp / nh, fn, 100.0 * fn / ns, fpmax, fn2, 100.0 * fn2 / ns, 100 * (1 - auc), bestc, bestcost, TN);
	if (getenv("WORST")) {
		for (size_t i = 0; i < n; i++) ;
	}
}

int main(int argc, char **argv)
{
	const char *corpus = argc > 1 ? argv[1] : "/work/shared/corpus/spamassassin";
	int kind = getenv("TOK") ? atoi(getenv("TOK")) : 1;
#define G(v, name) if (getenv(name)) v = atof(getenv(name))
	G(MODEL, "MODEL"); G(P_a, "A"); G(P_clip, "CLIP"); G(P_minc, "MINC"); G(P_thick, "THICK");
	G(P_rx, "RX"); G(P_rs, "RS"); G(P_mindev, "MINDEV"); G(P_w, "W"); G(P_top, "TOP"); G(P_train, "TRAIN");
	G(P_passes, "PASSES"); G(CUT, "CUT"); G(P_eta, "ETA"); G(P_alpha, "ALPHA"); G(P_beta, "BETA"); G(P_norm, "NORM");
	load(corpus, kind);
	size_t tot = 0; for (size_t i = 0; i < NM; i++) tot += M[i].n;
	fprintf(stderr, "loaded %zu msgs, %.0f tokens/msg\n", NM, (double)tot / NM);
	struct msg **tr = malloc(NM * sizeof *tr);
	struct res *r = malloc(NM * sizeof *r); size_t nr = 0;
	int held = getenv("HELDOUT") != NULL;
	for (int f = held ? -1 : 0; f < (held ? 0 : 5); f++) {
		tclear(); NS = NH = 0;
		size_t n = 0;
		for (size_t i = 0; i < NM; i++) if (!M[i].held && M[i].fold != f) tr[n++] = &M[i];
		/* fixed shuffle */
		uint64_t x = 88172645463325252ULL + (uint64_t)(f + 1);
		for (size_t i = n; i > 1; i--) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; size_t j = x % i; struct msg *t = tr[i - 1]; tr[i - 1] = tr[j]; tr[j] = t; }
		train(tr, n);
		if (getenv("PRUNE")) { size_t k = 0; for (size_t i = 0; i < TC; i++) if (T[i].h && T[i].s + T[i].n <= atof(getenv("PRUNE"))) { k++; } 
			/* rebuild without */
			struct ent *old = T; size_t oc = TC; T = calloc(TC, sizeof *T); TN = 0;
			for (size_t i = 0; i < oc; i++) if (old[i].h && old[i].s + old[i].n > atof(getenv("PRUNE"))) { struct ent *e = tget(old[i].h, 1); e->s = old[i].s; e->n = old[i].n; }
			free(old); (void)k; }
		for (size_t i = 0; i < NM; i++) {
			int in = held ? M[i].held : (!M[i].held && M[i].fold == f);
			if (!in) continue;
			r[nr].sc = score(&M[i]); r[nr].spam = M[i].spam; nr++;
			if (getenv("DUMP")) printf("S %s %d %.6g\n", M[i].name, M[i].spam, r[nr-1].sc);
		}
	}
	report(r, nr, held ? "HELDOUT" : "CV");
	return 0;
}
