/* sieve_run — the interpreter: checked scripts and one message in, a list of
 * actions out (index/sieve.h). No I/O: what it needs of the store comes
 * through struct sieve_env's callbacks, so tests and the fuzz target run it
 * on bytes alone.
 *
 * Bounds: SIEVE_MAX_STEPS commands and tests per run, a regex/matching
 * budget (SIEVE_REGEX_BUDGET steps), SIEVE_MAX_ACTIONS actions,
 * SIEVE_MAX_REDIRECTS redirects, includes SIEVE_MAX_INCLUDE_DEPTH deep and
 * SIEVE_MAX_SCRIPTS in all, SIEVE_MAX_VARIABLES variables of at most
 * SIEVE_MAX_VARIABLE_SIZE bytes. Going past one is a run-time error: the
 * caller delivers to INBOX and tells the user.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "index/sieve_priv.h"
#include "lib/array.h"
#include "lib/buf.h"
#include "lib/xmalloc.h"

#define SIEVE_REGEX_BUDGET 50000000ULL /* about a quarter of a second here */

struct var {
	char name[65];
	char *val;
	size_t len;
};
struct scope {
	struct var *v;
	size_t n, cap;
	char **globals; /* names declared `global` in this script */
	size_t nglobals, capglobals;
	unsigned ext;
};

struct run {
	const struct sieve_msg *msg;
	const struct sieve_env *env;
	struct sieve_result *res;
	struct sv_mail *mail;
	struct sv_matchvars mv;
	struct scope globals;
	char *flags; /* imap4flags' internal variable, space-separated; NULL = none */
	uint64_t steps;
	uint64_t budget;
	unsigned depth;
	char **included; /* "p:name" / "g:name" run so far (for :once and the total) */
	size_t nincluded, capincluded;
	struct sieve_script **compiled;
	size_t ncompiled, capcompiled;
	int nredirects;
	int have_vacation, have_reject;
};

enum { R_CONT = 0, R_STOP = 1, R_RETURN = 2, R_ERR = -1 };

static int fail(struct run *r, const struct sv_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct run *r, const struct sv_node *n, const char *fmt, ...)
{
	va_list ap;
	if (r->res->failed)
		return R_ERR;
	r->res->failed = 1;
	r->res->err.line = n ? n->line : 0;
	r->res->err.col = n ? n->col : 0;
	va_start(ap, fmt);
	vsnprintf(r->res->err.msg, sizeof(r->res->err.msg), fmt, ap);
	va_end(ap);
	return R_ERR;
}

/* --- variables ------------------------------------------------------------------ */

static struct var *var_find(struct run *r, struct scope *sc, const char *name, size_t nlen,
			    int create)
{
	struct scope *where = sc;
	for (size_t i = 0; i < sc->nglobals; i++)
		if (strlen(sc->globals[i]) == nlen && strncasecmp(sc->globals[i], name, nlen) == 0)
			where = &r->globals;
	for (size_t i = 0; i < where->n; i++)
		if (strlen(where->v[i].name) == nlen &&
		    strncasecmp(where->v[i].name, name, nlen) == 0)
			return &where->v[i];
	if (!create || nlen > 64)
		return NULL;
	if (where->n + r->globals.n >= SIEVE_MAX_VARIABLES)
		return NULL;
	struct var *v = ARRAY_PUSH(where->v, where->n, where->cap);
	memset(v, 0, sizeof(*v));
	memcpy(v->name, name, nlen);
	v->name[nlen] = '\0';
	return v;
}

static void scope_free(struct scope *sc)
{
	for (size_t i = 0; i < sc->n; i++)
		free(sc->v[i].val);
	free(sc->v);
	for (size_t i = 0; i < sc->nglobals; i++)
		free(sc->globals[i]);
	free(sc->globals);
	memset(sc, 0, sizeof(*sc));
}

/* Expands ${name} and ${0}..${9} (RFC 5229 3) when the script requires
 * variables; a name that is not set is "". Returns a malloc'd string. */
static char *expand(struct run *r, struct scope *sc, const char *s, size_t len, size_t *len_r)
{
	if (!(sc->ext & SV_EXT_VARIABLES) || memmem(s, len, "${", 2) == NULL) {
		*len_r = len;
		return xstrndup(s, len);
	}
	struct buf b;
	buf_init(&b, SIEVE_MAX_STRING);
	for (size_t i = 0; i < len;) {
		if (s[i] == '$' && i + 1 < len && s[i + 1] == '{') {
			const char *end = memchr(s + i + 2, '}', len - i - 2);
			size_t nl = end ? (size_t)(end - (s + i + 2)) : 0;
			const char *name = s + i + 2;
			int ok = end != NULL && nl > 0 && nl <= 64;
			int num = ok && isdigit((unsigned char)name[0]);
			for (size_t k = 0; ok && k < nl; k++)
				if (num ? !isdigit((unsigned char)name[k])
					: !(isalnum((unsigned char)name[k]) || name[k] == '_' ||
					    name[k] == '.'))
					ok = 0;
			if (ok && !num && !(isalpha((unsigned char)name[0]) || name[0] == '_'))
				ok = 0;
			if (ok) {
				if (num) {
					unsigned idx = 0;
					for (size_t k = 0; k < nl && idx < 100; k++)
						idx = idx * 10 + (unsigned)(name[k] - '0');
					if (idx < 10 && r->mv.v[idx])
						buf_append(&b, r->mv.v[idx], r->mv.len[idx]);
				} else {
					struct var *v = var_find(r, sc, name, nl, 0);
					if (v != NULL && v->val)
						buf_append(&b, v->val, v->len);
				}
				i += nl + 3;
				continue;
			}
		}
		buf_append(&b, s + i, 1);
		i++;
	}
	*len_r = b.len;
	char *out = b.data ? b.data : xstrdup("");
	return out;
}

/* A string list with variables expanded: a new list the caller frees. */
struct xlist {
	char **s;
	size_t *len;
	size_t n;
};
static void xlist_make(struct run *r, struct scope *sc, const struct sv_strlist *sl,
		       struct xlist *x)
{
	x->n = sl ? sl->n : 0;
	x->s = xcalloc(x->n + 1, sizeof(char *));
	x->len = xcalloc(x->n + 1, sizeof(size_t));
	for (size_t i = 0; i < x->n; i++)
		x->s[i] = expand(r, sc, sl->s[i], sl->len[i], &x->len[i]);
}
static void xlist_free(struct xlist *x)
{
	for (size_t i = 0; i < x->n; i++)
		free(x->s[i]);
	free(x->s);
	free(x->len);
}

/* --- flags (imap4flags) ------------------------------------------------------------- */

/* Adds each flag of text (space-separated) to the set *set, once
 * (case-insensitive), bounded. */
static void flags_add(char **set, const char *text, size_t len)
{
	struct buf b;
	buf_init(&b, 4096);
	if (*set)
		buf_append_str(&b, *set);
	for (size_t i = 0; i < len;) {
		while (i < len && text[i] == ' ')
			i++;
		size_t s = i;
		while (i < len && text[i] != ' ')
			i++;
		if (i == s)
			continue;
		/* already there? */
		int dup = 0;
		for (const char *p = b.data; p && *p;) {
			const char *e = strchr(p, ' ');
			size_t fl = e ? (size_t)(e - p) : strlen(p);
			if (fl == i - s && strncasecmp(p, text + s, fl) == 0)
				dup = 1;
			p = e ? e + 1 : p + fl;
		}
		if (!dup) {
			if (b.len > 0)
				buf_append(&b, " ", 1);
			buf_append(&b, text + s, i - s);
		}
	}
	free(*set);
	*set = b.data ? b.data : NULL;
}

static void flags_remove(char **set, const char *text, size_t len)
{
	if (*set == NULL)
		return;
	char *old = *set;
	struct buf b;
	buf_init(&b, 4096);
	for (const char *p = old; *p;) {
		const char *e = strchr(p, ' ');
		size_t fl = e ? (size_t)(e - p) : strlen(p);
		int drop = 0;
		for (size_t i = 0; i < len && !drop;) {
			while (i < len && text[i] == ' ')
				i++;
			size_t s = i;
			while (i < len && text[i] != ' ')
				i++;
			if (i > s && i - s == fl && strncasecmp(text + s, p, fl) == 0)
				drop = 1;
		}
		if (!drop && fl > 0) {
			if (b.len > 0)
				buf_append(&b, " ", 1);
			buf_append(&b, p, fl);
		}
		p = e ? e + 1 : p + fl;
	}
	free(old);
	*set = b.data;
}

/* The flag set a flag command or hasflag works on: a variable or the internal one. */
static char **flagvar(struct run *r, struct scope *sc, const char *name, struct var **v_r)
{
	*v_r = NULL;
	if (name == NULL)
		return &r->flags;
	struct var *v = var_find(r, sc, name, strlen(name), 1);
	*v_r = v;
	return v ? &v->val : NULL;
}

/* --- actions --------------------------------------------------------------------- */

static struct sieve_action *add_action(struct run *r, const struct sv_node *n,
				       enum sieve_action_kind k)
{
	if (r->res->n >= SIEVE_MAX_ACTIONS) {
		fail(r, n, "too many actions (at most %d)", SIEVE_MAX_ACTIONS);
		return NULL;
	}
	struct sieve_action *a = ARRAY_PUSH(r->res->actions, r->res->n, r->res->cap);
	memset(a, 0, sizeof(*a));
	a->kind = k;
	return a;
}

static int reject_conflict(struct run *r, const struct sv_node *n, enum sieve_action_kind k)
{
	for (size_t i = 0; i < r->res->n; i++) {
		enum sieve_action_kind o = r->res->actions[i].kind;
		int is_rej = o == SIEVE_REJECT || o == SIEVE_EREJECT;
		int k_rej = k == SIEVE_REJECT || k == SIEVE_EREJECT;
		if ((is_rej && k != SIEVE_DISCARD) ||
		    (k_rej && (o == SIEVE_KEEP || o == SIEVE_FILEINTO || o == SIEVE_REDIRECT ||
			       o == SIEVE_VACATION)))
			return fail(r, n, "%s cannot be used together with %s",
				    k_rej ? "reject" : "this action",
				    is_rej ? "reject" : "keep, fileinto, redirect or vacation");
	}
	return 0;
}

static char *flags_of(struct run *r, struct scope *sc, const struct sv_node *n)
{
	if (n->flags == NULL)
		return r->flags ? xstrdup(r->flags) : NULL;
	char *set = NULL;
	struct xlist x;
	xlist_make(r, sc, n->flags, &x);
	for (size_t i = 0; i < x.n; i++)
		flags_add(&set, x.s[i], x.len[i]);
	xlist_free(&x);
	return set;
}

/* --- tests ------------------------------------------------------------------------ */

struct mctx {
	struct run *r;
	const struct sv_node *n;
	struct xlist *keys;
	int matched;
	size_t count;
	int error;
	char err[200];
	/* address tests */
	enum sv_addrpart part;
	const char *sep;
	/* :index */
	uint64_t want_index, seen;
	size_t total;
};

/* Matches one value against every key; 1 stops the caller's walk. */
static int match_value(struct mctx *m, const char *v, size_t vlen)
{
	if (m->n->match == M_COUNT) {
		m->count++;
		return 0;
	}
	for (size_t k = 0; k < m->keys->n; k++) {
		int r = sv_match_one(m->n, v, vlen, m->keys->s[k], m->keys->len[k], &m->r->mv,
				     &m->r->budget, m->err, sizeof(m->err));
		if (r < 0) {
			m->error = 1;
			return 1;
		}
		if (r > 0) {
			m->matched = 1;
			return 1;
		}
	}
	return 0;
}

static int count_result(struct mctx *m)
{
	char num[32];
	snprintf(num, sizeof(num), "%zu", m->count);
	for (size_t k = 0; k < m->keys->n; k++)
		if (sv_rel_holds(m->n->rel, sv_compare(m->n->cmp, num, strlen(num), m->keys->s[k],
						       m->keys->len[k])))
			return 1;
	return 0;
}

/* :index n / :last n picks one occurrence among total. */
static int index_skip(struct mctx *m)
{
	if (!m->n->has_index)
		return 0;
	m->seen++;
	uint64_t want =
	    m->n->last ? (m->total + 1 > m->n->num ? m->total + 1 - m->n->num : 0) : m->n->num;
	return m->seen != want;
}

static int header_cb(const char *val, size_t len, void *ctx)
{
	struct mctx *m = ctx;
	if (index_skip(m))
		return 0;
	return match_value(m, val, len);
}

static int addr_part(struct mctx *m, const char *local, size_t llen, const char *domain,
		     size_t dlen)
{
	if (domain == NULL) {
		/* not a valid address: only :all sees it, as the raw text (RFC 5228 2.7.4) */
		if (m->n->match == M_COUNT) {
			m->count++;
			return 0;
		}
		return m->part == AP_ALL ? match_value(m, local, llen) : 0;
	}
	char buf[1100];
	const char *v = buf;
	size_t vlen = 0;
	const char *sep = m->sep ? m->sep : "+";
	const char *plus = memmem(local, llen, sep, strlen(sep));
	switch (m->part) {
	case AP_ALL:
		if (dlen > 0)
			vlen = (size_t)snprintf(buf, sizeof(buf), "%.*s@%.*s", (int)llen, local,
						(int)dlen, domain);
		else
			vlen = (size_t)snprintf(buf, sizeof(buf), "%.*s", (int)llen, local);
		if (vlen >= sizeof(buf))
			vlen = sizeof(buf) - 1;
		break;
	case AP_LOCALPART:
		v = local;
		vlen = llen;
		break;
	case AP_DOMAIN:
		v = domain;
		vlen = dlen;
		break;
	case AP_USER:
		v = local;
		vlen = plus ? (size_t)(plus - local) : llen;
		break;
	case AP_DETAIL:
		if (plus == NULL)
			return 0; /* RFC 5233: no detail, no match (not even :matches "*") */
		v = plus + strlen(sep);
		vlen = llen - (size_t)(v - local);
		break;
	}
	return match_value(m, v, vlen);
}

static int address_cb2(const char *local, size_t llen, const char *domain, size_t dlen, void *ctx)
{
	return addr_part(ctx, local, llen, domain, dlen);
}

static int address_hdr_cb(const char *val, size_t len, void *ctx)
{
	struct mctx *m = ctx;
	if (index_skip(m))
		return 0;
	return sv_addresses(val, len, address_cb2, ctx);
}

static int body_cb(const char *text, size_t len, void *ctx)
{
	return match_value(ctx, text, len);
}

static int finish(struct run *r, struct mctx *m)
{
	if (m->error)
		return fail(r, m->n, "%s", m->err);
	if (m->n->match == M_COUNT)
		return count_result(m);
	return m->matched;
}

static int eval(struct run *r, struct scope *sc, const struct sv_node *n);

struct date_find {
	struct mctx *m;
	char *val;
	size_t len;
};
static int date_find_cb(const char *val, size_t len, void *ctx)
{
	struct date_find *df = ctx;
	if (index_skip(df->m))
		return 0;
	df->val = xstrndup(val, len);
	df->len = len;
	return 1;
}

static int local_zone(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (localtime_r(&tt, &tm) == NULL)
		return 0;
	return (int)(tm.tm_gmtoff / 60);
}

static int test_date(struct run *r, struct scope *sc, const struct sv_node *n, struct mctx *m)
{
	int64_t t;
	int zone;
	char part_val[128];
	size_t plen;
	char *part = NULL;
	int rc = 0;

	if (n->op == OP_DATE) {
		size_t hl;
		char *hname = expand(r, sc, n->pos[0]->s[0], n->pos[0]->len[0], &hl);
		struct date_find df = {.m = m};
		m->total = sv_mail_header_count(r->mail, hname);
		sv_mail_header(r->mail, hname, 0, date_find_cb, &df);
		free(hname);
		if (df.val == NULL)
			return n->match == M_COUNT ? count_result(m) : 0;
		/* RFC 5260 4: the date of a Received field follows its last ';';
		 * a date that cannot be parsed makes the test false */
		const char *dv = df.val;
		size_t dl = df.len;
		const char *semi = strrchr(df.val, ';');
		if (strcasecmp(n->pos[0]->s[0], "received") == 0 && semi != NULL) {
			dv = semi + 1;
			dl = df.len - (size_t)(dv - df.val);
		}
		if (sv_parse_date(dv, dl, &t, &zone) < 0) {
			free(df.val);
			return n->match == M_COUNT ? count_result(m) : 0;
		}
		free(df.val);
		if (!n->zone_original)
			zone = local_zone(t);
	} else {
		t = r->msg->now;
		zone = local_zone(t);
	}
	if (n->zone) {
		size_t zl;
		char *zs = expand(r, sc, n->zone->s[0], n->zone->len[0], &zl);
		int z;
		if (sv_parse_zone(zs, &z) == 0)
			zone = z;
		free(zs);
	}
	const struct sv_strlist *pl = n->pos[n->op == OP_DATE ? 1 : 0];
	part = expand(r, sc, pl->s[0], pl->len[0], &plen);
	if (sv_date_part(t, zone, part, part_val, sizeof(part_val)) < 0) {
		rc = fail(r, n, "unknown date part \"%.40s\"", part);
	} else {
		match_value(m, part_val, strlen(part_val));
		rc = finish(r, m);
	}
	free(part);
	return rc;
}

/* 1 true, 0 false, -1 error. */
static int eval_test(struct run *r, struct scope *sc, const struct sv_node *n)
{
	struct xlist keys = {0}, src = {0};
	struct mctx m;
	int rc = 0;

	memset(&m, 0, sizeof(m));
	m.r = r;
	m.n = n;
	m.keys = &keys;
	m.sep = r->msg->subaddress_sep;
	m.part = n->addrpart;
	if (n->npos > 0 && n->pos[n->npos - 1] != NULL)
		xlist_make(r, sc, n->pos[n->npos - 1], &keys);

	switch (n->op) {
	case OP_TRUE:
		rc = 1;
		break;
	case OP_FALSE:
		rc = 0;
		break;
	case OP_NOT:
		rc = eval(r, sc, &n->tests[0]);
		rc = rc < 0 ? rc : !rc;
		break;
	case OP_ALLOF:
	case OP_ANYOF:
		rc = n->op == OP_ALLOF;
		for (size_t i = 0; i < n->ntests; i++) {
			int t = eval(r, sc, &n->tests[i]);
			if (t < 0) {
				rc = t;
				break;
			}
			if (n->op == OP_ALLOF && !t) {
				rc = 0;
				break;
			}
			if (n->op == OP_ANYOF && t) {
				rc = 1;
				break;
			}
		}
		break;
	case OP_EXISTS:
		rc = 1;
		for (size_t i = 0; i < keys.n; i++)
			if (sv_mail_header_count(r->mail, keys.s[i]) == 0)
				rc = 0;
		break;
	case OP_SIZE:
		rc = n->over ? r->msg->len > n->num : r->msg->len < n->num;
		break;
	case OP_HEADER:
	case OP_ADDRESS:
		xlist_make(r, sc, n->pos[0], &src);
		for (size_t i = 0; i < src.n && !m.matched && !m.error; i++) {
			m.seen = 0;
			m.total = sv_mail_header_count(r->mail, src.s[i]);
			sv_mail_header(r->mail, src.s[i], 0,
				       n->op == OP_HEADER ? header_cb : address_hdr_cb, &m);
		}
		rc = finish(r, &m);
		break;
	case OP_ENVELOPE:
		xlist_make(r, sc, n->pos[0], &src);
		for (size_t i = 0; i < src.n && !m.matched && !m.error; i++) {
			const char *e = NULL;
			if (strcasecmp(src.s[i], "from") == 0)
				e = r->msg->env_from ? r->msg->env_from : "";
			else if (strcasecmp(src.s[i], "to") == 0)
				e = r->msg->env_to ? r->msg->env_to : "";
			else
				continue;
			if (e[0] == '\0') {
				/* the null sender: every part is "" (RFC 5228 5.4) */
				if (n->addrpart != AP_DETAIL)
					match_value(&m, "", 0);
			} else {
				sv_addresses(e, strlen(e), address_cb2, &m);
			}
		}
		rc = finish(r, &m);
		break;
	case OP_BODY:
		sv_mail_body(r->mail, n->bodyx, n->content, body_cb, &m);
		rc = finish(r, &m);
		break;
	case OP_STRING:
		xlist_make(r, sc, n->pos[0], &src);
		for (size_t i = 0; i < src.n && !m.matched && !m.error; i++) {
			if (n->match == M_COUNT && src.len[i] == 0)
				continue; /* RFC 5229 5: empty strings do not count */
			match_value(&m, src.s[i], src.len[i]);
		}
		rc = finish(r, &m);
		break;
	case OP_DATE:
	case OP_CURRENTDATE:
		rc = test_date(r, sc, n, &m);
		break;
	case OP_MAILBOXEXISTS:
		rc = 1;
		for (size_t i = 0; i < keys.n; i++)
			if (r->env == NULL || r->env->mailbox_exists == NULL ||
			    !r->env->mailbox_exists(r->env->ctx, keys.s[i]))
				rc = 0;
		break;
	case OP_SPAMTEST:
	case OP_VIRUSTEST: {
		char v[16];
		int p = r->msg->spam_percent;
		if (n->op == OP_VIRUSTEST)
			snprintf(v, sizeof(v), "%d", r->msg->virus_value);
		else if (p < 0)
			snprintf(v, sizeof(v), "0"); /* not tested */
		else if (n->percent)
			snprintf(v, sizeof(v), "%d", p);
		else /* RFC 5235: 1 certainly not spam .. 10 certainly spam */
			snprintf(v, sizeof(v), "%d", 1 + (p * 9 + 50) / 100);
		match_value(&m, v, strlen(v));
		rc = finish(r, &m);
		break;
	}
	case OP_HASFLAG: {
		char *set = NULL;
		if (n->pos[0] != NULL) {
			for (size_t i = 0; i < n->pos[0]->n; i++) {
				struct var *v =
				    var_find(r, sc, n->pos[0]->s[i], n->pos[0]->len[i], 0);
				if (v && v->val)
					flags_add(&set, v->val, v->len);
			}
		} else if (r->flags) {
			set = xstrdup(r->flags);
		}
		for (const char *p = set; p && *p && !m.matched && !m.error;) {
			const char *e = strchr(p, ' ');
			size_t fl = e ? (size_t)(e - p) : strlen(p);
			match_value(&m, p, fl);
			p = e ? e + 1 : p + fl;
		}
		free(set);
		rc = finish(r, &m);
		break;
	}
	default:
		rc = fail(r, n, "%s is not a test", n->id);
		break;
	}
	xlist_free(&keys);
	if (src.s)
		xlist_free(&src);
	return rc;
}

static int eval(struct run *r, struct scope *sc, const struct sv_node *n)
{
	if (++r->steps > SIEVE_MAX_STEPS)
		return fail(r, n, "the script ran too long (over %d steps)", SIEVE_MAX_STEPS);
	return eval_test(r, sc, n);
}

/* --- commands ------------------------------------------------------------------------- */

static int run_script(struct run *r, const struct sieve_script *s, const char *name);

/* A mailbox name in UTF-8: each run of bytes that is not well-formed UTF-8
 * becomes U+FFFD (what Pigeonhole does to a name made from raw 8-bit
 * header bytes); takes s, returns a malloc'd string. */
static char *utf8_valid(char *s)
{
	size_t n = strlen(s), o = 0;
	char *out = xmalloc(n * 3 + 1);
	int in_bad = 0;
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		size_t k = c < 0x80		   ? 1
			   : c >= 0xc2 && c < 0xe0 ? 2
			   : c >= 0xe0 && c < 0xf0 ? 3
			   : c >= 0xf0 && c < 0xf5 ? 4
						   : 0;
		for (size_t j = 1; k > 0 && j < k; j++)
			if (i + j >= n || ((unsigned char)s[i + j] & 0xc0) != 0x80)
				k = 0;
		if (k == 0) {
			if (!in_bad) {
				memcpy(out + o, "\xef\xbf\xbd", 3);
				o += 3;
			}
			in_bad = 1;
			i++;
			continue;
		}
		in_bad = 0;
		memcpy(out + o, s + i, k);
		o += k;
		i += k;
	}
	out[o] = '\0';
	free(s);
	return out;
}

static char *one(struct run *r, struct scope *sc, const struct sv_strlist *sl, size_t *len_r)
{
	return expand(r, sc, sl->s[0], sl->len[0], len_r);
}

static int do_set(struct run *r, struct scope *sc, const struct sv_node *n)
{
	size_t nl, vl;
	char *name = one(r, sc, n->pos[0], &nl);
	char *val = one(r, sc, n->pos[1], &vl);
	int mods = n->modifiers;
	if (mods & (SV_MOD_LOWER | SV_MOD_UPPER))
		for (size_t i = 0; i < vl; i++)
			val[i] = (char)(mods & SV_MOD_LOWER ? tolower((unsigned char)val[i])
							    : toupper((unsigned char)val[i]));
	if (vl > 0 && (mods & SV_MOD_LOWERFIRST))
		val[0] = (char)tolower((unsigned char)val[0]);
	if (vl > 0 && (mods & SV_MOD_UPPERFIRST))
		val[0] = (char)toupper((unsigned char)val[0]);
	if (mods & SV_MOD_QUOTEWILDCARD) {
		struct buf b;
		buf_init(&b, SIEVE_MAX_STRING);
		for (size_t i = 0; i < vl; i++) {
			if (val[i] == '*' || val[i] == '?' || val[i] == '\\')
				buf_append(&b, "\\", 1);
			buf_append(&b, val + i, 1);
		}
		free(val);
		vl = b.len;
		val = b.data ? b.data : xstrdup("");
	}
	if (mods & SV_MOD_LENGTH) {
		size_t chars = 0;
		for (size_t i = 0; i < vl; i++)
			if (((unsigned char)val[i] & 0xc0) != 0x80)
				chars++;
		free(val);
		val = xmalloc(24);
		vl = (size_t)snprintf(val, 24, "%zu", chars);
	}
	if (vl > SIEVE_MAX_VARIABLE_SIZE) {
		vl = SIEVE_MAX_VARIABLE_SIZE; /* RFC 5229 3: a server may truncate */
		val[vl] = '\0';
	}
	struct var *v = var_find(r, sc, name, nl, 1);
	free(name);
	if (v == NULL) {
		free(val);
		return fail(r, n, "too many variables (at most %d)", SIEVE_MAX_VARIABLES);
	}
	free(v->val);
	v->val = val;
	v->len = vl;
	return R_CONT;
}

static int do_flags(struct run *r, struct scope *sc, const struct sv_node *n)
{
	struct xlist x;
	xlist_make(r, sc, n->pos[1], &x);
	size_t nvars = n->pos[0] ? n->pos[0]->n : 1;
	for (size_t k = 0; k < nvars; k++) {
		struct var *v;
		char **set = flagvar(r, sc, n->pos[0] ? n->pos[0]->s[k] : NULL, &v);
		if (set == NULL) {
			xlist_free(&x);
			return fail(r, n, "too many variables (at most %d)", SIEVE_MAX_VARIABLES);
		}
		if (n->op == OP_SETFLAG) {
			free(*set);
			*set = NULL;
		}
		for (size_t i = 0; i < x.n; i++) {
			if (n->op == OP_REMOVEFLAG)
				flags_remove(set, x.s[i], x.len[i]);
			else
				flags_add(set, x.s[i], x.len[i]);
		}
		if (v != NULL)
			v->len = v->val ? strlen(v->val) : 0;
	}
	xlist_free(&x);
	return R_CONT;
}

static int do_vacation(struct run *r, struct scope *sc, const struct sv_node *n)
{
	if (r->have_vacation)
		return fail(r, n, "vacation may be used once per message");
	if (reject_conflict(r, n, SIEVE_VACATION) < 0)
		return R_ERR;
	struct sieve_action *a = add_action(r, n, SIEVE_VACATION);
	size_t l;
	if (a == NULL)
		return R_ERR;
	r->have_vacation = 1;
	a->reason = one(r, sc, n->pos[0], &l);
	a->mime = n->mime;
	if (n->subject)
		a->subject = one(r, sc, n->subject, &l);
	if (n->from)
		a->from = one(r, sc, n->from, &l);
	if (n->handle)
		a->handle = one(r, sc, n->handle, &l);
	if (n->addresses) {
		struct xlist x;
		xlist_make(r, sc, n->addresses, &x);
		a->addresses = x.s;
		a->naddresses = x.n;
		free(x.len);
	}
	/* RFC 5230 4.1: the period is at least a day (the server's minimum here;
	 * :seconds may ask for less, never below an hour) and at most 60 days */
	int64_t period =
	    n->has_index ? (int64_t)n->num * (n->period_seconds ? 1 : 86400) : 7 * 86400;
	int64_t min = n->period_seconds ? 3600 : 86400;
	if (period < min)
		period = min;
	if (period > 60 * 86400)
		period = 60 * 86400;
	a->period = period;
	return R_CONT;
}

static int do_include(struct run *r, struct scope *sc, const struct sv_node *n)
{
	size_t nl;
	char *name = one(r, sc, n->pos[0], &nl);
	char key[SIEVE_NAME_MAX + 3];
	int rc = R_CONT;

	if (!sieve_name_valid(name)) {
		rc = fail(r, n, "\"%.80s\" is not a script name", name);
		goto out;
	}
	snprintf(key, sizeof(key), "%c:%s", n->global ? 'g' : 'p', name);
	for (size_t i = 0; i < r->nincluded; i++)
		if (strcmp(r->included[i], key) == 0 && n->once)
			goto out;
	if (r->depth >= SIEVE_MAX_INCLUDE_DEPTH) {
		rc = fail(r, n, "includes nested too deeply (at most %d)", SIEVE_MAX_INCLUDE_DEPTH);
		goto out;
	}
	if (r->nincluded >= SIEVE_MAX_SCRIPTS) {
		rc = fail(r, n, "too many included scripts (at most %d)", SIEVE_MAX_SCRIPTS);
		goto out;
	}
	const char *text;
	size_t len;
	if (r->env == NULL || r->env->load == NULL ||
	    r->env->load(r->env->ctx, n->global, name, &text, &len) < 0) {
		if (!n->optional)
			rc = fail(r, n, "included %s script \"%.80s\" does not exist",
				  n->global ? "global" : "personal", name);
		goto out;
	}
	struct sieve_script *inc;
	struct sieve_error err;
	if (sieve_compile(text, len, r->env->max_size, &inc, &err) < 0) {
		char e[300];
		sieve_error_format(&err, e, sizeof(e));
		rc = fail(r, n, "included script \"%.80s\": %s", name, e);
		goto out;
	}
	*ARRAY_PUSH(r->compiled, r->ncompiled, r->capcompiled) = inc;
	*ARRAY_PUSH(r->included, r->nincluded, r->capincluded) = xstrdup(key);
	r->depth++;
	rc = run_script(r, inc, name);
	r->depth--;
	if (rc == R_RETURN)
		rc = R_CONT;
out:
	free(name);
	return rc;
}

static int exec_list(struct run *r, struct scope *sc, const struct sv_node *cmds, size_t n);

static int exec(struct run *r, struct scope *sc, const struct sv_node *n, int *cond_done)
{
	struct sieve_action *a;
	size_t l;

	if (++r->steps > SIEVE_MAX_STEPS)
		return fail(r, n, "the script ran too long (over %d steps)", SIEVE_MAX_STEPS);
	switch (n->op) {
	case OP_REQUIRE:
		return R_CONT;
	case OP_IF:
	case OP_ELSIF:
	case OP_ELSE: {
		if (n->op != OP_IF && *cond_done)
			return R_CONT;
		int t = 1;
		if (n->op != OP_ELSE && (t = eval(r, sc, &n->tests[0])) < 0)
			return R_ERR;
		*cond_done = t;
		return t ? exec_list(r, sc, n->block, n->nblock) : R_CONT;
	}
	case OP_STOP:
		return R_STOP;
	case OP_RETURN:
		return R_RETURN;
	case OP_KEEP:
		if (reject_conflict(r, n, SIEVE_KEEP) < 0 ||
		    (a = add_action(r, n, SIEVE_KEEP)) == NULL)
			return R_ERR;
		a->flags = flags_of(r, sc, n);
		r->res->implicit_keep = 0;
		return R_CONT;
	case OP_DISCARD:
		r->res->implicit_keep = 0;
		return add_action(r, n, SIEVE_DISCARD) ? R_CONT : R_ERR;
	case OP_FILEINTO:
		if (reject_conflict(r, n, SIEVE_FILEINTO) < 0 ||
		    (a = add_action(r, n, SIEVE_FILEINTO)) == NULL)
			return R_ERR;
		a->mailbox = utf8_valid(one(r, sc, n->pos[0], &l));
		a->flags = flags_of(r, sc, n);
		a->create = n->create;
		if (!n->copy)
			r->res->implicit_keep = 0;
		return R_CONT;
	case OP_REDIRECT:
		if (++r->nredirects > SIEVE_MAX_REDIRECTS)
			return fail(r, n, "too many redirects (at most %d)", SIEVE_MAX_REDIRECTS);
		if (reject_conflict(r, n, SIEVE_REDIRECT) < 0 ||
		    (a = add_action(r, n, SIEVE_REDIRECT)) == NULL)
			return R_ERR;
		a->address = one(r, sc, n->pos[0], &l);
		if (strchr(a->address, '@') == NULL || l > 512)
			return fail(r, n, "redirect: \"%.80s\" is not an address", a->address);
		if (!n->copy)
			r->res->implicit_keep = 0;
		return R_CONT;
	case OP_REJECT:
	case OP_EREJECT:
		if (r->have_reject)
			return fail(r, n, "reject may be used once per message");
		if (reject_conflict(r, n, n->op == OP_REJECT ? SIEVE_REJECT : SIEVE_EREJECT) < 0 ||
		    (a = add_action(r, n, n->op == OP_REJECT ? SIEVE_REJECT : SIEVE_EREJECT)) ==
			NULL)
			return R_ERR;
		r->have_reject = 1;
		a->reason = one(r, sc, n->pos[0], &l);
		r->res->implicit_keep = 0;
		return R_CONT;
	case OP_VACATION:
		return do_vacation(r, sc, n);
	case OP_SET:
		return do_set(r, sc, n);
	case OP_ADDFLAG:
	case OP_SETFLAG:
	case OP_REMOVEFLAG:
		return do_flags(r, sc, n);
	case OP_INCLUDE:
		return do_include(r, sc, n);
	case OP_GLOBAL:
		for (size_t i = 0; i < n->pos[0]->n; i++)
			*ARRAY_PUSH(sc->globals, sc->nglobals, sc->capglobals) =
			    xstrdup(n->pos[0]->s[i]);
		return R_CONT;
	default:
		return fail(r, n, "%s is not a command", n->id);
	}
}

static int exec_list(struct run *r, struct scope *sc, const struct sv_node *cmds, size_t n)
{
	int cond_done = 0;
	for (size_t i = 0; i < n; i++) {
		if (cmds[i].op == OP_IF)
			cond_done = 0;
		int rc = exec(r, sc, &cmds[i], &cond_done);
		if (rc != R_CONT)
			return rc;
	}
	return R_CONT;
}

static int run_script(struct run *r, const struct sieve_script *s, const char *name)
{
	struct scope sc;
	memset(&sc, 0, sizeof(sc));
	sc.ext = s->ext;
	int rc = exec_list(r, &sc, s->cmds, s->ncmds);
	scope_free(&sc);
	if (rc == R_ERR && name != NULL && r->res->err.script[0] == '\0')
		snprintf(r->res->err.script, sizeof(r->res->err.script), "%s", name);
	return rc;
}

int sieve_execute(struct sieve_script *const *scripts, size_t nscripts, const struct sieve_msg *msg,
		  const struct sieve_env *env, struct sieve_result *res)
{
	struct run r;
	struct sieve_msg m = *msg;
	int rc = R_CONT;

	memset(res, 0, sizeof(*res));
	res->implicit_keep = 1;
	if (m.now == 0)
		m.now = (int64_t)time(NULL);
	memset(&r, 0, sizeof(r));
	r.msg = &m;
	r.env = env;
	r.res = res;
	r.budget = SIEVE_REGEX_BUDGET;
	r.mail = sv_mail_open(m.data, m.len);
	/* Each script runs in turn with its own variables; `stop` ends the one
	 * it is in, so a global script never switches off the user's rules (and
	 * the user's script never skips a global after-script). */
	for (size_t i = 0; i < nscripts && rc != R_ERR; i++) {
		rc = run_script(&r, scripts[i], NULL);
		sv_matchvars_clear(&r.mv);
	}
	if (res->implicit_keep && r.flags)
		res->keep_flags = xstrdup(r.flags);
	res->steps = r.steps;
	res->regex_steps = SIEVE_REGEX_BUDGET - r.budget;
	sv_mail_free(&r.mail);
	sv_matchvars_clear(&r.mv);
	scope_free(&r.globals);
	free(r.flags);
	for (size_t i = 0; i < r.nincluded; i++)
		free(r.included[i]);
	free(r.included);
	for (size_t i = 0; i < r.ncompiled; i++)
		sieve_script_free(&r.compiled[i]);
	free(r.compiled);
	return rc == R_ERR ? -1 : 0;
}

void sieve_result_free(struct sieve_result *res)
{
	for (size_t i = 0; i < res->n; i++) {
		struct sieve_action *a = &res->actions[i];
		free(a->mailbox);
		free(a->flags);
		free(a->address);
		free(a->reason);
		free(a->subject);
		free(a->from);
		free(a->handle);
		for (size_t k = 0; k < a->naddresses; k++)
			free(a->addresses[k]);
		free(a->addresses);
	}
	free(res->actions);
	free(res->keep_flags);
	memset(res, 0, sizeof(*res));
}
