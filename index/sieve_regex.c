/* sieve_regex — POSIX extended regular expressions for :regex, without
 * backtracking.
 *
 * Why not regcomp/regexec: glibc's regexec backtracks for back-references
 * (which it accepts in EREs), its memory for nested bounded repetitions
 * ("(a{1,255}){1,255}") has no limit we can set, and one call cannot be
 * stopped. This engine is Thompson's construction run as a Pike VM (Russ
 * Cox, "Regular Expression Matching: the Virtual Machine Approach"): the
 * pattern becomes a program of at most SIEVE_REGEX_MAX_PROG instructions
 * ({n,m} unrolled, at most 255), and the input is read once, left to right,
 * with at most one thread per instruction. So the work is at most
 * (program size) x (input length) steps, whatever the pattern — "(a+)+$"
 * on "aaaa...!" is linear — and a budget (the caller's) stops a run early.
 *
 * Supported: literals, '.', [bracket] with ranges, negation and [:class:],
 * ^ $, ( ) groups (the first 9 are ${1}..${9}), |, * + ? {n} {n,} {n,m},
 * and glibc's \w \W \s \S; any other \c is c. Not supported: back-references
 * (\1 in a pattern), [=x=] and [.x.] (refused at compile time). Matching
 * takes the leftmost match and, among those, the one the alternatives'
 * order prefers (Perl's rule, not POSIX's leftmost-longest): a capture may
 * differ from glibc's for ambiguous patterns; whether it matches never does.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index/sieve_priv.h"
#include "lib/xmalloc.h"

enum rop { R_CHAR, R_ANY, R_CLASS, R_SPLIT, R_JMP, R_SAVE, R_BOL, R_EOL, R_MATCH };

struct rinst {
	enum rop op;
	int x, y; /* jump targets; R_CHAR: x is the byte; R_SAVE: x is the slot */
	int cls;  /* R_CLASS: index into classes */
};

struct sv_regex {
	struct rinst *prog;
	int n;
	unsigned char (*classes)[32];
	int nclasses;
};

/* --- the tree ------------------------------------------------------------------ */

enum rnode { N_EMPTY, N_CHAR, N_ANY, N_CLASS, N_CAT, N_ALT, N_GROUP, N_REPEAT, N_BOL, N_EOL };
struct rn {
	enum rnode kind;
	int c, cls, group, min, max; /* max -1: no bound */
	struct rn *a, *b;	     /* CAT/ALT: left, right; GROUP/REPEAT: a */
};

struct rparse {
	const unsigned char *p, *end;
	int icase;
	struct rn *pool;
	int npool, cappool;
	unsigned char (*classes)[32];
	int nclasses, capclasses;
	int ngroups;
	int depth;
	const char *err;
};

static struct rn *mk(struct rparse *rp, enum rnode k)
{
	if (rp->npool >= rp->cappool) {
		rp->err = "pattern too complex";
		return NULL;
	}
	struct rn *n = &rp->pool[rp->npool++];
	memset(n, 0, sizeof(*n));
	n->kind = k;
	return n;
}

static int new_class(struct rparse *rp)
{
	if (rp->nclasses == rp->capclasses) {
		rp->capclasses = rp->capclasses ? rp->capclasses * 2 : 8;
		rp->classes = xreallocarray(rp->classes, (size_t)rp->capclasses, 32);
	}
	memset(rp->classes[rp->nclasses], 0, 32);
	return rp->nclasses++;
}

static void cls_set(unsigned char *set, int c)
{
	set[(unsigned)c >> 3] |= (unsigned char)(1u << (c & 7));
}

static int named_class(unsigned char *set, const char *name, size_t len)
{
	static const struct {
		const char *name;
		int (*fn)(int);
	} classes[] = {{"alpha", isalpha}, {"digit", isdigit},	 {"alnum", isalnum},
		       {"upper", isupper}, {"lower", islower},	 {"space", isspace},
		       {"punct", ispunct}, {"print", isprint},	 {"graph", isgraph},
		       {"cntrl", iscntrl}, {"xdigit", isxdigit}, {"blank", isblank}};
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
		if (strlen(classes[i].name) == len && memcmp(classes[i].name, name, len) == 0) {
			for (int c = 0; c < 128; c++)
				if (classes[i].fn(c))
					cls_set(set, c);
			return 0;
		}
	}
	return -1;
}

static void icase_fold(unsigned char *set)
{
	for (int c = 'a'; c <= 'z'; c++) {
		int u = c - 'a' + 'A';
		if ((set[c >> 3] >> (c & 7)) & 1)
			cls_set(set, u);
		if ((set[u >> 3] >> (u & 7)) & 1)
			cls_set(set, c);
	}
}

static struct rn *parse_bracket(struct rparse *rp)
{
	int ci = new_class(rp);
	unsigned char *set = rp->classes[ci];
	int neg = 0, first = 1;
	if (rp->p < rp->end && *rp->p == '^') {
		neg = 1;
		rp->p++;
	}
	for (;;) {
		if (rp->p >= rp->end) {
			rp->err = "[ without ]";
			return NULL;
		}
		int c = *rp->p;
		if (c == ']' && !first) {
			rp->p++;
			break;
		}
		first = 0;
		if (c == '[' && rp->end - rp->p >= 2 &&
		    (rp->p[1] == ':' || rp->p[1] == '=' || rp->p[1] == '.')) {
			if (rp->p[1] != ':') {
				rp->err = "[= =] and [. .] are not supported";
				return NULL;
			}
			const unsigned char *nm = rp->p + 2, *q = nm;
			while (q + 1 < rp->end && !(q[0] == ':' && q[1] == ']'))
				q++;
			if (q + 1 >= rp->end ||
			    named_class(set, (const char *)nm, (size_t)(q - nm)) < 0) {
				rp->err = "unknown character class";
				return NULL;
			}
			rp->p = q + 2;
			continue;
		}
		rp->p++;
		if (rp->end - rp->p >= 2 && rp->p[0] == '-' && rp->p[1] != ']') {
			int hi = rp->p[1];
			rp->p += 2;
			if (hi < c) {
				rp->err = "a range ends before it starts";
				return NULL;
			}
			for (int k = c; k <= hi; k++)
				cls_set(set, k);
		} else {
			cls_set(set, c);
		}
	}
	if (rp->icase)
		icase_fold(set);
	if (neg)
		for (int k = 0; k < 32; k++)
			set[k] = (unsigned char)~set[k];
	struct rn *n = mk(rp, N_CLASS);
	if (n)
		n->cls = ci;
	return n;
}

static struct rn *parse_alt(struct rparse *rp);

static struct rn *char_node(struct rparse *rp, int c)
{
	if (rp->icase && isalpha(c)) {
		int ci = new_class(rp);
		cls_set(rp->classes[ci], tolower(c));
		cls_set(rp->classes[ci], toupper(c));
		struct rn *n = mk(rp, N_CLASS);
		if (n)
			n->cls = ci;
		return n;
	}
	struct rn *n = mk(rp, N_CHAR);
	if (n)
		n->c = c;
	return n;
}

static struct rn *parse_atom(struct rparse *rp)
{
	int c = *rp->p++;
	struct rn *n;
	switch (c) {
	case '(':
		if (++rp->depth > 64) {
			rp->err = "groups nested too deeply";
			return NULL;
		}
		{
			int g = ++rp->ngroups;
			struct rn *inner = parse_alt(rp);
			if (inner == NULL)
				return NULL;
			if (rp->p >= rp->end || *rp->p != ')') {
				rp->err = "( without )";
				return NULL;
			}
			rp->p++;
			rp->depth--;
			n = mk(rp, N_GROUP);
			if (n) {
				n->group = g;
				n->a = inner;
			}
			return n;
		}
	case '[':
		return parse_bracket(rp);
	case '.':
		return mk(rp, N_ANY);
	case '^':
		return mk(rp, N_BOL);
	case '$':
		return mk(rp, N_EOL);
	case '\\':
		if (rp->p >= rp->end) {
			rp->err = "trailing backslash";
			return NULL;
		}
		c = *rp->p++;
		if (isdigit(c) && c != '0') {
			rp->err = "back-references are not supported";
			return NULL;
		}
		if (c == 'w' || c == 'W' || c == 's' || c == 'S') {
			int ci = new_class(rp);
			unsigned char *set = rp->classes[ci];
			if (c == 'w' || c == 'W') {
				named_class(set, "alnum", 5);
				cls_set(set, '_');
			} else {
				named_class(set, "space", 5);
			}
			if (isupper(c))
				for (int k = 0; k < 32; k++)
					set[k] = (unsigned char)~set[k];
			n = mk(rp, N_CLASS);
			if (n)
				n->cls = ci;
			return n;
		}
		return char_node(rp, c);
	case '*':
	case '+':
	case '?':
	case '{':
		rp->err = "a repetition with nothing before it";
		return NULL;
	default:
		return char_node(rp, c);
	}
}

static int parse_int(struct rparse *rp, int *v)
{
	int n = 0, any = 0;
	while (rp->p < rp->end && isdigit(*rp->p)) {
		n = n * 10 + (*rp->p++ - '0');
		any = 1;
		if (n > 255)
			return -1;
	}
	*v = n;
	return any ? 0 : -1;
}

static struct rn *parse_repeat(struct rparse *rp)
{
	struct rn *atom = parse_atom(rp);
	while (atom != NULL && rp->p < rp->end) {
		int c = *rp->p, min, max;
		if (c == '*') {
			min = 0;
			max = -1;
			rp->p++;
		} else if (c == '+') {
			min = 1;
			max = -1;
			rp->p++;
		} else if (c == '?') {
			min = 0;
			max = 1;
			rp->p++;
		} else if (c == '{') {
			rp->p++;
			if (parse_int(rp, &min) < 0) {
				rp->err = "{n,m} needs numbers up to 255";
				return NULL;
			}
			max = min;
			if (rp->p < rp->end && *rp->p == ',') {
				rp->p++;
				if (rp->p < rp->end && *rp->p == '}')
					max = -1;
				else if (parse_int(rp, &max) < 0 || max < min) {
					rp->err = "{n,m} needs numbers up to 255, n <= m";
					return NULL;
				}
			}
			if (rp->p >= rp->end || *rp->p != '}') {
				rp->err = "{ without }";
				return NULL;
			}
			rp->p++;
		} else {
			break;
		}
		struct rn *r = mk(rp, N_REPEAT);
		if (r == NULL)
			return NULL;
		r->a = atom;
		r->min = min;
		r->max = max;
		atom = r;
	}
	return atom;
}

static struct rn *parse_cat(struct rparse *rp)
{
	struct rn *left = NULL;
	while (rp->p < rp->end && *rp->p != '|' && *rp->p != ')') {
		struct rn *r = parse_repeat(rp);
		if (r == NULL)
			return NULL;
		if (left == NULL) {
			left = r;
		} else {
			struct rn *c = mk(rp, N_CAT);
			if (c == NULL)
				return NULL;
			c->a = left;
			c->b = r;
			left = c;
		}
	}
	return left ? left : mk(rp, N_EMPTY);
}

static struct rn *parse_alt(struct rparse *rp)
{
	struct rn *left = parse_cat(rp);
	while (left != NULL && rp->p < rp->end && *rp->p == '|') {
		rp->p++;
		struct rn *right = parse_cat(rp);
		if (right == NULL)
			return NULL;
		struct rn *a = mk(rp, N_ALT);
		if (a == NULL)
			return NULL;
		a->a = left;
		a->b = right;
		left = a;
	}
	return left;
}

/* --- code ------------------------------------------------------------------------- */

struct emit {
	struct rinst *prog;
	int n;
	int over;
};

static int emit(struct emit *e, enum rop op, int x, int y)
{
	if (e->n >= SIEVE_REGEX_MAX_PROG) {
		e->over = 1;
		return SIEVE_REGEX_MAX_PROG - 1;
	}
	e->prog[e->n].op = op;
	e->prog[e->n].x = x;
	e->prog[e->n].y = y;
	e->prog[e->n].cls = 0;
	return e->n++;
}

static void gen(struct emit *e, const struct rn *n, int depth)
{
	int l1, l2;
	if (e->over || depth > 200) {
		e->over = 1;
		return;
	}
	switch (n->kind) {
	case N_EMPTY:
		break;
	case N_CHAR:
		emit(e, R_CHAR, n->c, 0);
		break;
	case N_ANY:
		emit(e, R_ANY, 0, 0);
		break;
	case N_CLASS:
		l1 = emit(e, R_CLASS, 0, 0);
		e->prog[l1].cls = n->cls;
		break;
	case N_BOL:
		emit(e, R_BOL, 0, 0);
		break;
	case N_EOL:
		emit(e, R_EOL, 0, 0);
		break;
	case N_CAT:
		gen(e, n->a, depth + 1);
		gen(e, n->b, depth + 1);
		break;
	case N_ALT:
		l1 = emit(e, R_SPLIT, 0, 0);
		e->prog[l1].x = e->n;
		gen(e, n->a, depth + 1);
		l2 = emit(e, R_JMP, 0, 0);
		e->prog[l1].y = e->n;
		gen(e, n->b, depth + 1);
		e->prog[l2].x = e->n;
		break;
	case N_GROUP:
		if (n->group < SIEVE_REGEX_MAX_GROUPS)
			emit(e, R_SAVE, 2 * n->group, 0);
		gen(e, n->a, depth + 1);
		if (n->group < SIEVE_REGEX_MAX_GROUPS)
			emit(e, R_SAVE, 2 * n->group + 1, 0);
		break;
	case N_REPEAT:
		for (int i = 0; i < n->min && !e->over; i++)
			gen(e, n->a, depth + 1);
		if (n->max < 0) {
			l1 = emit(e, R_SPLIT, 0, 0);
			e->prog[l1].x = e->n;
			gen(e, n->a, depth + 1);
			emit(e, R_JMP, l1, 0);
			e->prog[l1].y = e->n;
		} else {
			int pending[256], np = 0;
			for (int i = n->min; i < n->max && !e->over; i++) {
				l1 = emit(e, R_SPLIT, 0, 0);
				e->prog[l1].x = e->n;
				pending[np++] = l1;
				gen(e, n->a, depth + 1);
			}
			for (int i = 0; i < np; i++)
				e->prog[pending[i]].y = e->n;
		}
		break;
	}
}

struct sv_regex *sv_regex_compile(const char *pat, size_t len, int icase, char *err, size_t errsize)
{
	struct rparse rp;
	struct emit e;
	struct sv_regex *re = NULL;

	if (len > SIEVE_REGEX_MAX_PATTERN) {
		snprintf(err, errsize, "pattern longer than %d bytes", SIEVE_REGEX_MAX_PATTERN);
		return NULL;
	}
	memset(&rp, 0, sizeof(rp));
	rp.p = (const unsigned char *)pat;
	rp.end = rp.p + len;
	rp.icase = icase;
	rp.cappool = (int)len * 3 + 8;
	rp.pool = xcalloc((size_t)rp.cappool, sizeof(*rp.pool));
	struct rn *root = parse_alt(&rp);
	if (root != NULL && rp.p < rp.end) {
		rp.err = ") without (";
		root = NULL;
	}
	if (root == NULL) {
		snprintf(err, errsize, "%s", rp.err ? rp.err : "syntax error");
		goto done;
	}
	memset(&e, 0, sizeof(e));
	e.prog = xcalloc(SIEVE_REGEX_MAX_PROG, sizeof(*e.prog));
	emit(&e, R_SAVE, 0, 0);
	gen(&e, root, 0);
	emit(&e, R_SAVE, 1, 0);
	emit(&e, R_MATCH, 0, 0);
	if (e.over) {
		snprintf(err, errsize,
			 "pattern too complex (over %d steps once repetitions are counted)",
			 SIEVE_REGEX_MAX_PROG);
		free(e.prog);
		goto done;
	}
	re = xcalloc(1, sizeof(*re));
	re->prog = e.prog;
	re->n = e.n;
	re->classes = rp.classes;
	re->nclasses = rp.nclasses;
	rp.classes = NULL;
done:
	free(rp.pool);
	free(rp.classes);
	return re;
}

void sv_regex_free(struct sv_regex **re)
{
	if (re == NULL || *re == NULL)
		return;
	free((*re)->prog);
	free((*re)->classes);
	free(*re);
	*re = NULL;
}

/* --- the VM ----------------------------------------------------------------------- */

#define NCAPS (2 * SIEVE_REGEX_MAX_GROUPS)

struct thread {
	int pc;
	long caps[NCAPS];
};
struct tlist {
	struct thread *t;
	int n;
};
struct sentry {
	int pc; /* -1: restore caps[slot] to val */
	int slot;
	long val;
};

struct vm {
	const struct sv_regex *re;
	unsigned *mark;
	unsigned gen;
	struct sentry *stack;
	size_t len;
	uint64_t *budget;
};

/* Follows the empty moves from pc at input position pos, adding the threads
 * that wait for a byte (or the match) to l in priority order. */
static int addthread(struct vm *vm, struct tlist *l, int pc0, long *caps, long pos)
{
	int sp = 0;
	vm->stack[sp++] = (struct sentry){.pc = pc0};
	while (sp > 0) {
		struct sentry e = vm->stack[--sp];
		if (e.pc < 0) {
			caps[e.slot] = e.val;
			continue;
		}
		if (*vm->budget == 0)
			return -1;
		(*vm->budget)--;
		int pc = e.pc;
		if (vm->mark[pc] == vm->gen)
			continue;
		vm->mark[pc] = vm->gen;
		const struct rinst *in = &vm->re->prog[pc];
		switch (in->op) {
		case R_JMP:
			vm->stack[sp++] = (struct sentry){.pc = in->x};
			break;
		case R_SPLIT:
			vm->stack[sp++] = (struct sentry){.pc = in->y};
			vm->stack[sp++] = (struct sentry){.pc = in->x};
			break;
		case R_SAVE:
			vm->stack[sp++] =
			    (struct sentry){.pc = -1, .slot = in->x, .val = caps[in->x]};
			caps[in->x] = pos;
			vm->stack[sp++] = (struct sentry){.pc = pc + 1};
			break;
		case R_BOL:
			if (pos == 0)
				vm->stack[sp++] = (struct sentry){.pc = pc + 1};
			break;
		case R_EOL:
			if ((size_t)pos == vm->len)
				vm->stack[sp++] = (struct sentry){.pc = pc + 1};
			break;
		default:
			l->t[l->n].pc = pc;
			memcpy(l->t[l->n].caps, caps, sizeof(l->t[l->n].caps));
			l->n++;
			break;
		}
	}
	return 0;
}

int sv_regex_exec(const struct sv_regex *re, const char *s, size_t len, long *caps_r,
		  uint64_t *budget)
{
	struct vm vm = {.re = re, .len = len, .budget = budget};
	struct tlist cl, nl;
	long caps[NCAPS], matched[NCAPS];
	int found = 0, rc = 0;

	if (len > SIEVE_REGEX_MAX_INPUT)
		len = vm.len = SIEVE_REGEX_MAX_INPUT;
	vm.mark = xcalloc((size_t)re->n, sizeof(*vm.mark));
	/* each instruction is entered once per position: at most two entries each */
	vm.stack = xcalloc((size_t)re->n * 2 + 2, sizeof(*vm.stack));
	cl.t = xcalloc((size_t)re->n, sizeof(*cl.t));
	nl.t = xcalloc((size_t)re->n, sizeof(*nl.t));
	cl.n = nl.n = 0;
	for (int i = 0; i < NCAPS; i++)
		caps[i] = -1;
	vm.gen = 1;
	if (addthread(&vm, &cl, 0, caps, 0) < 0) {
		rc = -1;
		goto out;
	}
	for (size_t pos = 0;; pos++) {
		int c = pos < len ? (unsigned char)s[pos] : -1;
		vm.gen++;
		nl.n = 0;
		for (int i = 0; i < cl.n; i++) {
			struct thread *t = &cl.t[i];
			const struct rinst *in = &re->prog[t->pc];
			int ok = 0;
			if (*budget == 0) {
				rc = -1;
				goto out;
			}
			(*budget)--;
			switch (in->op) {
			case R_MATCH:
				found = 1;
				memcpy(matched, t->caps, sizeof(matched));
				cl.n = i; /* lower-priority threads are cut */
				break;
			case R_CHAR:
				ok = c == in->x;
				break;
			case R_ANY:
				ok = c >= 0;
				break;
			case R_CLASS:
				ok = c >= 0 && ((re->classes[in->cls][c >> 3] >> (c & 7)) & 1);
				break;
			default:
				break;
			}
			if (ok && addthread(&vm, &nl, t->pc + 1, t->caps, (long)pos + 1) < 0) {
				rc = -1;
				goto out;
			}
		}
		if (c < 0)
			break;
		/* no match yet: a new attempt starts at the next position, last in priority */
		if (!found) {
			for (int i = 0; i < NCAPS; i++)
				caps[i] = -1;
			if (addthread(&vm, &nl, 0, caps, (long)pos + 1) < 0) {
				rc = -1;
				goto out;
			}
		}
		if (nl.n == 0)
			break;
		struct tlist tmp = cl;
		cl = nl;
		nl = tmp;
	}
	rc = found;
	if (found && caps_r != NULL)
		memcpy(caps_r, matched, sizeof(matched));
out:
	free(vm.mark);
	free(vm.stack);
	free(cl.t);
	free(nl.t);
	return rc;
}
