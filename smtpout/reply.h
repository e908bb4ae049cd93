/* reply — the SMTP reply parser of the client (pure: bytes in, a reply out;
 * fuzzed by tests/fuzz/fuzz-smtp-reply.c).
 *
 * A reply is one or more lines "ddd-text" ending with "ddd text" (or "ddd"),
 * each ending in CRLF (a bare LF is taken too, as Postfix does). Every line
 * must have the same three-digit code. Lines longer than REPLY_LINE_MAX and
 * replies longer than REPLY_TEXT_MAX are errors, not reallocations.
 */
#ifndef SMTPOUT_REPLY_H
#define SMTPOUT_REPLY_H

#include <stddef.h>

#define REPLY_LINE_MAX 2048
#define REPLY_TEXT_MAX 8192

struct smtp_reply {
	int code;		   /* 220, 250, ... */
	char dsn[16];		   /* "5.1.1" from the first line, or made from the code */
	char text[REPLY_TEXT_MAX]; /* the lines, joined by '\n', without CRLF, printable */
	size_t nlines;
};

/* Parses one reply from the start of buf. Returns 1 with *r filled and
 * *used_r = bytes taken, 0 if more bytes are needed, -1 if the bytes are not
 * an SMTP reply (then *r->text says why). */
int smtp_reply_parse(const char *buf, size_t len, struct smtp_reply *r, size_t *used_r);

/* 1 if the EHLO reply r names the extension (case-insensitive), and its
 * parameters (the rest of the line) in params_r when not NULL. */
int smtp_reply_has(const struct smtp_reply *r, const char *ext, char *params_r, size_t size);

/* The first line of r as one printable line: "550 5.1.1 <x>: unknown". */
void smtp_reply_line(const struct smtp_reply *r, char *out, size_t size);

#endif
