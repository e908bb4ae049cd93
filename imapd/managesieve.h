/* managesieve — ManageSieve (RFC 5804) on managesieve_listen (port 4190), a
 * listener of mailkeep-imapd: the same users, TLS certificate, plaintext
 * rule and login penalty as IMAP. Mail programs (Roundcube, Thunderbird's
 * sieve add-on, K-9/FairEmail, sieve-connect) edit users' filters with it;
 * the scripts live in the store (index/sieve.h) and run at delivery.
 *
 *   managesieve_parse.c  the command parser (pure: bytes in, a command or
 *                        "need more" or an error out; fuzzed)
 *   managesieve.c        the session: one thread per connection, as IMAP
 */
#ifndef MK_IMAP_MANAGESIEVE_H
#define MK_IMAP_MANAGESIEVE_H

#include <stddef.h>

#define MS_MAX_LINE 8192 /* a command without its literal */
#define MS_MAX_ARGS 4

enum ms_parse_result {
	MS_MORE = 0,	/* the command is not complete yet: read more */
	MS_DONE = 1,	/* cmd holds a command of cmd->consumed bytes */
	MS_ERROR = -1,	/* a syntax error: skip cmd->consumed bytes (to the line's end), say NO */
	MS_TOOBIG = -2, /* a literal over max_literal: skip cmd->consumed bytes, then
			   cmd->skip more (the literal) and its line, and say NO (QUOTA/MAXSIZE) */
};

struct ms_arg {
	char *s; /* NUL-terminated copy (a literal may hold NULs: use len) */
	size_t len;
	int literal;
};

struct ms_cmd {
	char name[32]; /* upper case */
	struct ms_arg args[MS_MAX_ARGS];
	size_t nargs;
	size_t consumed;
	size_t skip;
	char err[128];
};

/* Parses one command at the start of buf: an atom, then quoted strings,
 * literals ({n+} or {n}, with CRLF) or atoms/numbers, then CRLF. Returns an
 * enum ms_parse_result; with MS_DONE the caller frees cmd with ms_cmd_free. */
int ms_parse(const char *buf, size_t len, size_t max_literal, struct ms_cmd *cmd);
void ms_cmd_free(struct ms_cmd *cmd);
/* A line of arguments alone (a SASL response: a string, or "*"), no name. */
int ms_parse_response(const char *buf, size_t len, size_t max_literal, struct ms_cmd *cmd);

struct imapd;
/* The session thread's entry point; takes ownership of fd. */
void managesieve_run(struct imapd *d, int fd);

#endif
