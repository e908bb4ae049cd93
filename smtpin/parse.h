/* parse — the SMTP/LMTP command parser: pure functions over bytes, no I/O.
 *
 * smtp_parse_command splits a command line (without its CRLF) into a verb and
 * its argument; smtp_parse_path reads MAIL FROM / RCPT TO arguments into an
 * address and ESMTP parameters; smtp_addr_* judge addresses (routing tricks,
 * FQDN, HELO names). Every function is safe on any input (fuzzed by
 * tests/fuzz/fuzz-smtp-command.c) and never allocates.
 */
#ifndef SMTPIN_PARSE_H
#define SMTPIN_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define SMTP_ADDR_MAX 512 /* longest accepted address (RFC 5321: 256 for the path) */
#define SMTP_LOCAL_MAX 256
#define SMTP_DOMAIN_MAX 255

enum smtp_verb {
	SMTP_UNKNOWN = 0,
	SMTP_HELO,
	SMTP_EHLO,
	SMTP_LHLO,
	SMTP_MAIL,
	SMTP_RCPT,
	SMTP_DATA,
	SMTP_BDAT,
	SMTP_RSET,
	SMTP_NOOP,
	SMTP_QUIT,
	SMTP_HELP,
	SMTP_VRFY,
	SMTP_EXPN,
	SMTP_STARTTLS,
	SMTP_AUTH,
	SMTP_ETRN,
	SMTP_VERB_COUNT
};

struct smtp_command {
	enum smtp_verb verb;
	const char *arg; /* into the line: after the verb and its white space; "" if none */
	size_t arg_len;
	char name[16]; /* the verb as sent, upper-cased and truncated, for logs */
};

/* Parses one command line (no CR/LF). Returns 0, or -1 if the line holds a
 * NUL or another control character except TAB (the command is refused). An
 * unknown verb is not an error: verb = SMTP_UNKNOWN. */
int smtp_parse_command(const char *line, size_t len, struct smtp_command *cmd_r);
/* The verb's name ("MAIL"); "UNKNOWN" for SMTP_UNKNOWN. */
const char *smtp_verb_name(enum smtp_verb verb);

enum smtp_body { SMTP_BODY_7BIT = 0, SMTP_BODY_8BITMIME, SMTP_BODY_BINARYMIME };

struct smtp_path {
	char addr[SMTP_ADDR_MAX + 1];	  /* local@domain, quotes removed; "" for <> */
	char local[SMTP_LOCAL_MAX + 1];	  /* the local part, unquoted */
	char domain[SMTP_DOMAIN_MAX + 1]; /* "" if none */
	int null_path;			  /* <> */
	int quoted;			  /* the local part was a quoted string */
	int source_route;		  /* <@a,@b:user@c> */
	int ip_literal;			  /* domain is [1.2.3.4] */
	int utf8;			  /* holds bytes >= 0x80 */
	/* ESMTP parameters */
	uint64_t size; /* SIZE=, 0 if absent */
	int has_size;
	enum smtp_body body;
	int smtputf8;
};

/* Reasons smtp_parse_path fails: a short English text for the 501 reply. */
/* Parses "FROM:<addr> PARAMS" (mail = 1) or "TO:<addr> PARAMS" (mail = 0).
 * strict: RFC 5321 exactly (no space after the colon, angle brackets needed).
 * Returns 0, or -1 with *why_r set to a static text. Unknown parameters fail
 * (555 5.5.4 by the caller). */
int smtp_parse_path(const char *arg, size_t len, int mail, int strict, struct smtp_path *path_r,
		    const char **why_r);

/* 1 if the path uses a routing trick an unauthenticated client outside
 * mynetworks must never get through: % or ! in the local part, @ in a quoted
 * local part, a source route, an IP literal, a domain with a trailing dot or
 * no domain at all. */
int smtp_addr_routing_trick(const struct smtp_path *path);
/* 1 if domain is a syntactically valid fully qualified domain name (two or
 * more labels, letters/digits/hyphens, a non-numeric top label). */
int smtp_domain_is_fqdn(const char *domain);
/* 1 if a HELO argument is a valid host name or address literal. */
int smtp_helo_valid(const char *helo);
/* Lower-cases ASCII in place. */
void smtp_lower(char *s);

#endif
