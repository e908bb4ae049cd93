/* parse — SMTP/LMTP command lines and envelope paths, as pure functions.
 * Nothing here reads a socket or allocates: bytes in, a struct out. */
#include "smtpin/parse.h"

#include <string.h>
#include <strings.h>

#include "lib/util.h"

static const struct {
	const char *name;
	enum smtp_verb verb;
} verbs[] = {
    {"HELO", SMTP_HELO}, {"EHLO", SMTP_EHLO},	      {"LHLO", SMTP_LHLO}, {"MAIL", SMTP_MAIL},
    {"RCPT", SMTP_RCPT}, {"DATA", SMTP_DATA},	      {"BDAT", SMTP_BDAT}, {"RSET", SMTP_RSET},
    {"NOOP", SMTP_NOOP}, {"QUIT", SMTP_QUIT},	      {"HELP", SMTP_HELP}, {"VRFY", SMTP_VRFY},
    {"EXPN", SMTP_EXPN}, {"STARTTLS", SMTP_STARTTLS}, {"AUTH", SMTP_AUTH}, {"ETRN", SMTP_ETRN},
};

const char *smtp_verb_name(enum smtp_verb verb)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (verbs[i].verb == verb)
			return verbs[i].name;
	return "UNKNOWN";
}

static int is_space(char c)
{
	return c == ' ' || c == '\t';
}

static char upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

void smtp_lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

int smtp_parse_command(const char *line, size_t len, struct smtp_command *cmd_r)
{
	size_t i = 0, vlen;

	memset(cmd_r, 0, sizeof(*cmd_r));
	cmd_r->verb = SMTP_UNKNOWN;
	cmd_r->arg = "";
	for (size_t k = 0; k < len; k++) {
		unsigned char c = (unsigned char)line[k];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return -1;
	}
	while (i < len && is_space(line[i]))
		i++;
	size_t vstart = i;
	while (i < len && !is_space(line[i]))
		i++;
	vlen = i - vstart;
	for (size_t k = 0; k < vlen && k < sizeof(cmd_r->name) - 1; k++) {
		unsigned char c = (unsigned char)line[vstart + k];
		cmd_r->name[k] = c >= 0x80 ? '?' : upper((char)c);
	}
	for (size_t v = 0; v < sizeof(verbs) / sizeof(verbs[0]); v++) {
		if (strlen(verbs[v].name) == vlen &&
		    strncasecmp(verbs[v].name, line + vstart, vlen) == 0) {
			cmd_r->verb = verbs[v].verb;
			break;
		}
	}
	while (i < len && is_space(line[i]))
		i++;
	/* trailing white space is not part of the argument */
	size_t end = len;
	while (end > i && is_space(line[end - 1]))
		end--;
	cmd_r->arg = line + i;
	cmd_r->arg_len = end - i;
	return 0;
}

static int is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80)
		return 1;
	return strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL && c != 0;
}

static int is_ldh(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c >= 0x80;
}

/* Domain or [literal] of exactly len bytes. Trailing dot tolerated here (it
 * is a routing trick, judged later). */
static int domain_ok(const char *d, size_t len, int *literal_r)
{
	*literal_r = 0;
	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return 0;
	if (d[0] == '[') {
		if (len < 3 || d[len - 1] != ']')
			return 0;
		for (size_t i = 1; i < len - 1; i++) {
			unsigned char c = (unsigned char)d[i];
			if (c <= 0x20 || c == '[' || c == ']' || c == '\\' || c >= 0x7f)
				return 0;
		}
		*literal_r = 1;
		return 1;
	}
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];
		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (is_ldh(c)) {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return 1;
}

/* A quoted local part ("..." with \-pairs) from s[*i], into p->local. */
static int parse_quoted_local(const char *s, size_t len, size_t *i, struct smtp_path *p, size_t *lo,
			      const char **why_r)
{
	p->quoted = 1;
	(*i)++;
	for (;;) {
		if (*i >= len) {
			*why_r = "unterminated quoted string";
			return -1;
		}
		unsigned char c = (unsigned char)s[*i];
		if (c == '"') {
			(*i)++;
			return 0;
		}
		if (c == '\\') {
			if (++*i >= len) {
				*why_r = "bad quoted pair";
				return -1;
			}
			c = (unsigned char)s[*i];
		}
		if (c < 0x20 || c == 0x7f) {
			*why_r = "control character in address";
			return -1;
		}
		if (*lo >= SMTP_LOCAL_MAX) {
			*why_r = "local part too long";
			return -1;
		}
		p->local[(*lo)++] = (char)c;
		(*i)++;
	}
}

/* A dot-atom local part from s[*i] up to '@' or the end, into p->local. */
static int parse_atom_local(const char *s, size_t len, size_t *i, struct smtp_path *p, size_t *lo,
			    const char **why_r)
{
	size_t start = *i;

	while (*i < len && s[*i] != '@') {
		unsigned char c = (unsigned char)s[*i];
		if (c == '.') {
			if (*i == start || s[*i - 1] == '.') {
				*why_r = "bad local part";
				return -1;
			}
		} else if (!is_atext(c)) {
			*why_r = "bad character in local part";
			return -1;
		}
		if (*lo >= SMTP_LOCAL_MAX) {
			*why_r = "local part too long";
			return -1;
		}
		p->local[(*lo)++] = (char)c;
		(*i)++;
	}
	if (*lo == 0 || s[*i - 1] == '.') {
		*why_r = "bad local part";
		return -1;
	}
	return 0;
}

/* The domain after the '@' (s of len bytes), and p->addr = local@domain. */
static int parse_domain(const char *s, size_t len, struct smtp_path *p, size_t lo,
			const char **why_r)
{
	if (!domain_ok(s, len, &p->ip_literal)) {
		*why_r = "bad domain";
		return -1;
	}
	memcpy(p->domain, s, len);
	p->domain[len] = 0;
	for (size_t k = 0; p->domain[k]; k++)
		if ((unsigned char)p->domain[k] >= 0x80)
			p->utf8 = 1;
	if (lo + 1 + len > SMTP_ADDR_MAX) {
		*why_r = "address too long";
		return -1;
	}
	memcpy(p->addr, p->local, lo);
	p->addr[lo] = '@';
	memcpy(p->addr + lo + 1, p->domain, len + 1);
	return 0;
}

/* Parses the mailbox inside the brackets (or the bare token). */
static int parse_mailbox(const char *s, size_t len, int mail, struct smtp_path *p,
			 const char **why_r)
{
	size_t i = 0, lo = 0;

	if (len == 0) {
		if (!mail) {
			*why_r = "empty recipient";
			return -1;
		}
		p->null_path = 1;
		return 0;
	}
	if (s[0] == '@') {
		/* source route: @a,@b:mailbox */
		const char *colon = memchr(s, ':', len);
		if (colon == NULL) {
			*why_r = "bad source route";
			return -1;
		}
		p->source_route = 1;
		i = (size_t)(colon - s) + 1;
	}
	if (i < len && s[i] == '"' ? parse_quoted_local(s, len, &i, p, &lo, why_r) < 0
				   : parse_atom_local(s, len, &i, p, &lo, why_r) < 0)
		return -1;
	p->local[lo] = 0;
	for (size_t k = 0; k < lo; k++)
		if ((unsigned char)p->local[k] >= 0x80)
			p->utf8 = 1;
	if (i == len) {
		/* no domain: only RCPT TO:<postmaster> */
		if (mail || strcasecmp(p->local, "postmaster") != 0 || p->quoted ||
		    p->source_route) {
			*why_r = "domain missing";
			return -1;
		}
		mk_strlcpy(p->addr, p->local, sizeof(p->addr));
		return 0;
	}
	if (s[i] != '@') {
		*why_r = "bad address";
		return -1;
	}
	return parse_domain(s + i + 1, len - i - 1, p, lo, why_r);
}

static int parse_params(const char *s, size_t len, int mail, struct smtp_path *p,
			const char **why_r)
{
	size_t i = 0;

	while (i < len) {
		while (i < len && is_space(s[i]))
			i++;
		if (i == len)
			break;
		size_t start = i;
		while (i < len && !is_space(s[i]))
			i++;
		const char *kw = s + start;
		size_t kwlen = i - start;
		const char *eq = memchr(kw, '=', kwlen);
		size_t klen = eq ? (size_t)(eq - kw) : kwlen;
		const char *val = eq ? eq + 1 : "";
		size_t vlen = eq ? kwlen - klen - 1 : 0;
		char v[32];

		if (!mail) {
			*why_r = "unsupported parameter";
			return -1;
		}
		if (klen == 4 && strncasecmp(kw, "SIZE", 4) == 0) {
			if (vlen == 0 || vlen >= sizeof(v)) {
				*why_r = "bad SIZE";
				return -1;
			}
			memcpy(v, val, vlen);
			v[vlen] = 0;
			if (mk_parse_u64(v, 0, UINT64_MAX / 2, &p->size) < 0) {
				*why_r = "bad SIZE";
				return -1;
			}
			p->has_size = 1;
		} else if (klen == 4 && strncasecmp(kw, "BODY", 4) == 0) {
			if (vlen == 4 && strncasecmp(val, "7BIT", 4) == 0)
				p->body = SMTP_BODY_7BIT;
			else if (vlen == 8 && strncasecmp(val, "8BITMIME", 8) == 0)
				p->body = SMTP_BODY_8BITMIME;
			else if (vlen == 10 && strncasecmp(val, "BINARYMIME", 10) == 0)
				p->body = SMTP_BODY_BINARYMIME;
			else {
				*why_r = "bad BODY";
				return -1;
			}
		} else if (klen == 8 && strncasecmp(kw, "SMTPUTF8", 8) == 0 && !eq) {
			p->smtputf8 = 1;
		} else if (klen == 4 && strncasecmp(kw, "AUTH", 4) == 0) {
			/* RFC 4954 AUTH=<mailbox>: accepted and ignored (we never relay) */
		} else {
			*why_r = "unsupported parameter";
			return -1;
		}
	}
	return 0;
}

int smtp_parse_path(const char *arg, size_t len, int mail, int strict, struct smtp_path *p,
		    const char **why_r)
{
	const char *kw = mail ? "FROM:" : "TO:";
	size_t kwlen = strlen(kw), i;

	memset(p, 0, sizeof(*p));
	*why_r = "syntax error";
	if (len < kwlen || strncasecmp(arg, kw, kwlen) != 0) {
		*why_r = mail ? "expected FROM:<address>" : "expected TO:<address>";
		return -1;
	}
	i = kwlen;
	if (!strict)
		while (i < len && is_space(arg[i]))
			i++;
	if (i < len && arg[i] == '<') {
		size_t start = ++i;
		int inq = 0;
		while (i < len) {
			if (inq && arg[i] == '\\' && i + 1 < len) {
				i += 2;
				continue;
			}
			if (arg[i] == '"')
				inq = !inq;
			else if (!inq && arg[i] == '>')
				break;
			i++;
		}
		if (i >= len) {
			*why_r = "missing '>'";
			return -1;
		}
		if (parse_mailbox(arg + start, i - start, mail, p, why_r) < 0)
			return -1;
		i++;
		if (i < len && !is_space(arg[i])) {
			*why_r = "garbage after address";
			return -1;
		}
	} else {
		if (strict) {
			*why_r = "address must be in <>";
			return -1;
		}
		size_t start = i;
		while (i < len && !is_space(arg[i]))
			i++;
		if (parse_mailbox(arg + start, i - start, mail, p, why_r) < 0)
			return -1;
	}
	return parse_params(arg + i, len - i, mail, p, why_r);
}

int smtp_addr_routing_trick(const struct smtp_path *p)
{
	if (p->source_route || p->ip_literal || p->domain[0] == 0)
		return 1;
	if (strpbrk(p->local, "%!@") != NULL)
		return 1;
	size_t dl = strlen(p->domain);
	if (dl > 0 && p->domain[dl - 1] == '.')
		return 1;
	return 0;
}

int smtp_domain_is_fqdn(const char *domain)
{
	int literal;
	size_t len = strlen(domain);

	if (!domain_ok(domain, len, &literal) || literal || domain[len - 1] == '.')
		return 0;
	const char *dot = strrchr(domain, '.');
	if (dot == NULL)
		return 0;
	/* labels may not start or end with a hyphen; the top label is not all digits */
	int alldigit = 1;
	for (const char *c = dot + 1; *c; c++)
		if (*c < '0' || *c > '9')
			alldigit = 0;
	if (alldigit)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (domain[i] == '-' &&
		    (i == 0 || domain[i - 1] == '.' || i + 1 == len || domain[i + 1] == '.'))
			return 0;
	return 1;
}

int smtp_helo_valid(const char *helo)
{
	int literal;
	size_t len = strlen(helo);

	if (len == 0)
		return 0;
	if (!domain_ok(helo, len, &literal))
		return 0;
	if (literal)
		return 1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)helo[i];
		if (c >= 0x80)
			return 0;
		if (c == '-' &&
		    (i == 0 || helo[i - 1] == '.' || i + 1 == len || helo[i + 1] == '.'))
			return 0;
	}
	return 1;
}
