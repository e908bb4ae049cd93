/* sieve_match — comparators (RFC 4790: i;octet, i;ascii-casemap,
 * i;ascii-numeric) and match types (RFC 5228 2.7.1, relational RFC 5231,
 * regex), with the match variables of RFC 5229 3.2.
 *
 * Every loop here is bounded by the budget the run passes in (the same one
 * the regex engine uses): :contains is at most value x key comparisons and
 * :matches at most value x pattern steps (one backtrack point, the last
 * '*', so never exponential), and the budget stops both early.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "index/sieve_priv.h"
#include "lib/xmalloc.h"

void sv_matchvars_clear(struct sv_matchvars *mv)
{
	for (int i = 0; i < 10; i++) {
		free(mv->v[i]);
		mv->v[i] = NULL;
		mv->len[i] = 0;
	}
}

static void setvar(struct sv_matchvars *mv, int i, const char *s, size_t n)
{
	if (i < 0 || i > 9)
		return;
	free(mv->v[i]);
	if (n > SIEVE_MAX_VARIABLE_SIZE)
		n = SIEVE_MAX_VARIABLE_SIZE;
	mv->v[i] = xstrndup(s, n);
	mv->len[i] = n;
}

static int eqc(enum sv_cmp cmp, unsigned char a, unsigned char b)
{
	return cmp == C_ASCIICASEMAP ? tolower(a) == tolower(b) : a == b;
}

/* i;ascii-numeric (RFC 4790 9.1): the leading digits as a number; a string
 * without a leading digit is positive infinity. Leading zeros do not count. */
static int numeric_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int ainf = alen == 0 || !isdigit((unsigned char)a[0]);
	int binf = blen == 0 || !isdigit((unsigned char)b[0]);
	if (ainf || binf)
		return ainf == binf ? 0 : (ainf ? 1 : -1);
	size_t ai = 0, bi = 0, ae, be;
	while (ai + 1 < alen && a[ai] == '0' && isdigit((unsigned char)a[ai + 1]))
		ai++;
	while (bi + 1 < blen && b[bi] == '0' && isdigit((unsigned char)b[bi + 1]))
		bi++;
	for (ae = ai; ae < alen && isdigit((unsigned char)a[ae]); ae++)
		;
	for (be = bi; be < blen && isdigit((unsigned char)b[be]); be++)
		;
	if (ae - ai != be - bi)
		return ae - ai < be - bi ? -1 : 1;
	int c = memcmp(a + ai, b + bi, ae - ai);
	return c < 0 ? -1 : c > 0;
}

int sv_compare(enum sv_cmp cmp, const char *a, size_t alen, const char *b, size_t blen)
{
	if (cmp == C_NUMERIC)
		return numeric_cmp(a, alen, b, blen);
	size_t n = alen < blen ? alen : blen;
	for (size_t i = 0; i < n; i++) {
		int x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (cmp == C_ASCIICASEMAP) {
			x = tolower(x);
			y = tolower(y);
		}
		if (x != y)
			return x < y ? -1 : 1;
	}
	return alen == blen ? 0 : (alen < blen ? -1 : 1);
}

int sv_rel_holds(enum sv_rel rel, int c)
{
	switch (rel) {
	case R_GT:
		return c > 0;
	case R_GE:
		return c >= 0;
	case R_LT:
		return c < 0;
	case R_LE:
		return c <= 0;
	case R_EQ:
		return c == 0;
	case R_NE:
		return c != 0;
	}
	return 0;
}

static int spend(uint64_t *budget, uint64_t n)
{
	if (*budget < n) {
		*budget = 0;
		return -1;
	}
	*budget -= n;
	return 0;
}

static int contains(enum sv_cmp cmp, const char *v, size_t vlen, const char *k, size_t klen,
		    uint64_t *budget)
{
	if (klen == 0)
		return 1;
	if (klen > vlen)
		return 0;
	if (cmp == C_OCTET)
		return memmem(v, vlen, k, klen) != NULL;
	if (spend(budget, (uint64_t)(vlen - klen + 1) * 1) < 0)
		return -1;
	for (size_t i = 0; i + klen <= vlen; i++) {
		if (tolower((unsigned char)v[i]) != tolower((unsigned char)k[0]))
			continue;
		if (spend(budget, klen) < 0)
			return -1;
		size_t j;
		for (j = 0; j < klen && eqc(cmp, (unsigned char)v[i + j], (unsigned char)k[j]); j++)
			;
		if (j == klen)
			return 1;
	}
	return 0;
}

/* UTF-8 length of the character at s: 1 for a byte that does not start a
 * well-formed sequence (a stray byte is one character, and a lead byte
 * never swallows an ASCII byte after it). */
static size_t u8len(const char *s, size_t avail)
{
	unsigned char c = (unsigned char)s[0];
	size_t n = c < 0x80 ? 1 : c >= 0xf8 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
	if (n > avail)
		return 1;
	for (size_t i = 1; i < n; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			return 1;
	return n;
}

/* :matches: '*' any run, '?' one character, '\' quotes the next. The last
 * '*' seen is the only backtracking point: each failure moves it one
 * character on, so the work is at most vlen x plen. Wildcards are
 * numbered for ${1}..${9} in the order they appear. */
static int glob(enum sv_cmp cmp, const char *v, size_t vlen, const char *p, size_t plen,
		struct sv_matchvars *mv, uint64_t *budget)
{
	size_t si = 0, pi = 0, star_pi = (size_t)-1, star_si = 0;
	int star_w = 0, w = 0;
	long ws[10], we[10];
	int star_wcount = 0;

	for (int i = 0; i < 10; i++)
		ws[i] = we[i] = -1;
	for (;;) {
		if (spend(budget, 1) < 0)
			return -1;
		if (pi < plen && p[pi] == '*') {
			star_pi = pi;
			star_si = si;
			star_w = ++w;
			star_wcount = w;
			if (star_w < 10)
				ws[star_w] = we[star_w] = (long)si;
			pi++;
			continue;
		}
		if (si < vlen && pi < plen) {
			if (p[pi] == '?') {
				size_t n = u8len(v + si, vlen - si);
				if (++w < 10) {
					ws[w] = (long)si;
					we[w] = (long)(si + n);
				}
				si += n;
				pi++;
				continue;
			}
			size_t q = pi;
			if (p[q] == '\\' && q + 1 < plen)
				q++;
			if (eqc(cmp, (unsigned char)v[si], (unsigned char)p[q])) {
				si++;
				pi = q + 1;
				continue;
			}
		}
		if (si >= vlen && pi >= plen)
			break;
		if (star_pi == (size_t)-1 || star_si >= vlen)
			return 0;
		/* the last '*' takes one more character */
		star_si += u8len(v + star_si, vlen - star_si);
		si = star_si;
		pi = star_pi + 1;
		w = star_wcount;
		if (star_w < 10)
			we[star_w] = (long)star_si;
	}
	if (mv != NULL) {
		sv_matchvars_clear(mv);
		setvar(mv, 0, v, vlen);
		for (int i = 1; i < 10 && i <= w; i++)
			if (ws[i] >= 0)
				setvar(mv, i, v + ws[i], (size_t)(we[i] - ws[i]));
	}
	return 1;
}

int sv_match_one(const struct sv_node *n, const char *val, size_t vlen, const char *key,
		 size_t klen, struct sv_matchvars *mv, uint64_t *budget, char *err, size_t errsize)
{
	int r;
	switch (n->match) {
	case M_IS:
		return sv_compare(n->cmp, val, vlen, key, klen) == 0;
	case M_CONTAINS:
		r = contains(n->cmp, val, vlen, key, klen, budget);
		break;
	case M_MATCHES:
		r = glob(n->cmp, val, vlen, key, klen, mv, budget);
		break;
	case M_VALUE:
	case M_COUNT:
		return sv_rel_holds(n->rel, sv_compare(n->cmp, val, vlen, key, klen));
	case M_REGEX: {
		struct sv_regex *re =
		    sv_regex_compile(key, klen, n->cmp == C_ASCIICASEMAP, err, errsize);
		long caps[2 * SIEVE_REGEX_MAX_GROUPS];
		if (re == NULL)
			return -1;
		r = sv_regex_exec(re, val, vlen, caps, budget);
		sv_regex_free(&re);
		if (r == 1 && mv != NULL) {
			sv_matchvars_clear(mv);
			for (int i = 0; i < SIEVE_REGEX_MAX_GROUPS; i++)
				if (caps[2 * i] >= 0 && caps[2 * i + 1] >= caps[2 * i])
					setvar(mv, i, val + caps[2 * i],
					       (size_t)(caps[2 * i + 1] - caps[2 * i]));
		}
		break;
	}
	default:
		return 0;
	}
	if (r < 0 && err[0] == '\0')
		snprintf(err, errsize,
			 "matching took too long (over the step budget): the script is stopped");
	return r;
}
