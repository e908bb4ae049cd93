/* managesieve_parse — one ManageSieve command from bytes (RFC 5804 4):
 *
 *   command  = atom *(SP argument) CRLF
 *   argument = quoted / literal / atom (a number or a word)
 *   quoted   = DQUOTE *(any char but CR LF, with \" and \\) DQUOTE
 *   literal  = "{" number ["+"] "}" CRLF *OCTET
 *
 * Pure and bounded: the command line (without literals) at most
 * MS_MAX_LINE bytes, MS_MAX_ARGS arguments, a literal at most max_literal
 * (a bigger one is MS_TOOBIG with its length, so the session can skip it and
 * stay in step). A command is parsed again from its start each time more
 * bytes come; a literal is jumped over, never scanned, so that is cheap.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imapd/managesieve.h"
#include "lib/xmalloc.h"

void ms_cmd_free(struct ms_cmd *cmd)
{
	for (size_t i = 0; i < cmd->nargs; i++)
		free(cmd->args[i].s);
	cmd->nargs = 0;
}

/* Not complete yet: nothing is kept (the next call parses from the start). */
static int more(struct ms_cmd *cmd)
{
	ms_cmd_free(cmd);
	return MS_MORE;
}

static int parse_fail(struct ms_cmd *cmd, const char *buf, size_t len, size_t pos, const char *why)
{
	/* skip to the end of the line, so the next command starts clean */
	const char *nl = memchr(buf + pos, '\n', len - pos);
	ms_cmd_free(cmd);
	snprintf(cmd->err, sizeof(cmd->err), "%s", why);
	if (nl == NULL) {
		if (len - pos < MS_MAX_LINE)
			return more(cmd);
		cmd->consumed = len;
		return MS_ERROR;
	}
	cmd->consumed = (size_t)(nl - buf) + 1;
	return MS_ERROR;
}

static int parse_args(const char *buf, size_t len, size_t max_literal, struct ms_cmd *cmd, size_t p,
		      int first);

int ms_parse(const char *buf, size_t len, size_t max_literal, struct ms_cmd *cmd)
{
	size_t p = 0;

	memset(cmd, 0, sizeof(*cmd));
	/* the command name */
	size_t n = 0;
	while (p < len && isalpha((unsigned char)buf[p]) && n < sizeof(cmd->name) - 1)
		cmd->name[n++] = (char)toupper((unsigned char)buf[p++]);
	cmd->name[n] = '\0';
	if (p >= len)
		return len < MS_MAX_LINE ? more(cmd)
					 : parse_fail(cmd, buf, len, 0, "line too long");
	if (n == 0)
		return parse_fail(cmd, buf, len, 0, "a command name was expected");
	return parse_args(buf, len, max_literal, cmd, p, 0);
}

int ms_parse_response(const char *buf, size_t len, size_t max_literal, struct ms_cmd *cmd)
{
	memset(cmd, 0, sizeof(*cmd));
	return parse_args(buf, len, max_literal, cmd, 0, 1);
}

/* Arguments from p to the end of the line; first: the first one has no
 * space before it (a SASL response line). */
static int parse_args(const char *buf, size_t len, size_t max_literal, struct ms_cmd *cmd, size_t p,
		      int first)
{
	size_t line = 0;
	for (;;) {
		if (p >= len)
			return more(cmd);
		if (++line > MS_MAX_LINE)
			return parse_fail(cmd, buf, len, p, "line too long");
		char c = buf[p];
		if (c == '\r' && p + 1 < len && buf[p + 1] == '\n') {
			cmd->consumed = p + 2;
			return MS_DONE;
		}
		if (c == '\r' && p + 1 >= len)
			return more(cmd);
		if (c == '\n') { /* a bare LF ends a line too (some clients) */
			cmd->consumed = p + 1;
			return MS_DONE;
		}
		if (first)
			first = 0;
		else if (c != ' ')
			return parse_fail(cmd, buf, len, p,
					  "a space or the end of the line was expected");
		else
			p++;
		if (p >= len)
			return more(cmd);
		if (cmd->nargs >= MS_MAX_ARGS)
			return parse_fail(cmd, buf, len, p, "too many arguments");
		struct ms_arg *a = &cmd->args[cmd->nargs];
		c = buf[p];
		if (c == '"') {
			char *s = xmalloc(MS_MAX_LINE + 1);
			size_t o = 0;
			p++;
			for (;;) {
				if (p >= len) {
					free(s);
					return len < MS_MAX_LINE * 2
						   ? more(cmd)
						   : parse_fail(cmd, buf, len, len,
								"line too long");
				}
				char q = buf[p];
				if (q == '"')
					break;
				if (q == '\r' || q == '\n' || q == '\0' || o >= MS_MAX_LINE) {
					free(s);
					return parse_fail(cmd, buf, len, p, "bad quoted string");
				}
				if (q == '\\') {
					if (p + 1 >= len) {
						free(s);
						return more(cmd);
					}
					q = buf[++p];
					if (q != '"' && q != '\\') {
						free(s);
						return parse_fail(cmd, buf, len, p,
								  "bad quoted string");
					}
				}
				s[o++] = q;
				p++;
			}
			p++;
			s[o] = '\0';
			a->s = s;
			a->len = o;
			cmd->nargs++;
		} else if (c == '{') {
			size_t q = p + 1;
			unsigned long long v = 0;
			int digits = 0;
			while (q < len && isdigit((unsigned char)buf[q]) && digits < 20) {
				v = v * 10 + (unsigned)(buf[q] - '0');
				q++;
				digits++;
			}
			if (q >= len)
				return more(cmd);
			if (digits == 0 || digits >= 20)
				return parse_fail(cmd, buf, len, q, "bad literal length");
			if (buf[q] == '+')
				q++;
			if (q + 1 >= len)
				return more(cmd);
			if (buf[q] != '}')
				return parse_fail(cmd, buf, len, q, "bad literal");
			q++;
			if (q + 1 >= len && !(q < len && buf[q] == '\n'))
				return more(cmd);
			if (buf[q] == '\r' && buf[q + 1] == '\n')
				q += 2;
			else if (buf[q] == '\n')
				q++;
			else
				return parse_fail(
				    cmd, buf, len, q,
				    "a literal's length is followed by the end of the line");
			if (v > max_literal) {
				ms_cmd_free(cmd);
				snprintf(cmd->err, sizeof(cmd->err),
					 "the script is %llu bytes, over the limit of %zu", v,
					 max_literal);
				cmd->consumed = q;
				cmd->skip = (size_t)v;
				return MS_TOOBIG;
			}
			if (len - q < v)
				return more(cmd);
			a->s = xmalloc((size_t)v + 1);
			memcpy(a->s, buf + q, (size_t)v);
			a->s[v] = '\0';
			a->len = (size_t)v;
			a->literal = 1;
			cmd->nargs++;
			p = q + (size_t)v;
			line = 0;
		} else {
			size_t s = p;
			while (
			    p < len &&
			    (isalnum((unsigned char)buf[p]) || strchr("-_.+/=*", buf[p]) != NULL) &&
			    buf[p])
				p++;
			if (p == s)
				return parse_fail(cmd, buf, len, p, "an argument was expected");
			if (p >= len)
				return more(cmd);
			a->s = xmalloc(p - s + 1);
			memcpy(a->s, buf + s, p - s);
			a->s[p - s] = '\0';
			a->len = p - s;
			cmd->nargs++;
		}
	}
}
