/* imapc — a small IMAP client for `mailkeep import imaps://...`: one
 * connection, TLS verified, commands pipelined, responses read one at a time
 * with a deadline on every read.
 *
 * Why our own and not libetpan's mailimap: see doc/tools.md ("The IMAP
 * client"). In short: mailimap sends one command and waits for its tagged
 * reply (no pipelining), keeps its timeout in a process-wide variable, does
 * not verify the server's certificate or name, knows neither BINARY nor
 * literal8, and parses a whole FETCH reply into a tree before handing any of
 * it over. Here the parser is imapc_parse.c (pure, fuzzed), TLS is OpenSSL
 * with the system's CAs (or a CA file) and the host name checked.
 *
 * Usage:
 *   imapc_connect(&c, &opts)           greeting, STARTTLS for imap://, CAPABILITY
 *   imapc_login / imapc_oauth2         authenticate (only ever inside TLS)
 *   imapc_send(&c, tag, "UID FETCH ...") as many as wanted, then
 *   imapc_read(&c, &resp) until the tagged replies came
 * Errors: functions return 0, or -1 with a sentence in c->err; after a
 * network error (c->broken) the connection is useless and is closed by
 * imapc_close.
 */
#ifndef MK_TOOLS_IMAPC_H
#define MK_TOOLS_IMAPC_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

#include "tools/imapc_parse.h"

#define IMAPC_CAPS_MAX 4096

struct imapc_opts {
	const char *host;     /* name (checked against the certificate) or address */
	unsigned port;	      /* 993 for imaps, 143 for imap */
	int implicit_tls;     /* 1: TLS at once (imaps://); 0: STARTTLS, required */
	const char *ca_file;  /* NULL: the system's CA certificates */
	double timeout;	      /* seconds for connect and for each read; 0 = 120 */
	uint64_t max_literal; /* the largest literal accepted (a message); 0 = 2 GiB */
};

struct imapc {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	char *buf; /* received bytes; buf[0..len) */
	size_t len, cap, consumed;
	struct imapc_resp resp; /* the last response read; points into buf */
	unsigned tagn;
	char caps[IMAPC_CAPS_MAX]; /* " IMAP4REV1 AUTH=PLAIN ... " (upper case, spaces around) */
	double timeout;
	uint64_t max_literal;
	uint64_t bytes_in;
	int broken; /* the connection failed: close it */
	char err[512];
};

int imapc_connect(struct imapc *c, const struct imapc_opts *o);
void imapc_close(struct imapc *c);

/* 1 if the server announced capability cap ("IDLE", "AUTH=PLAIN"). */
int imapc_has_cap(const struct imapc *c, const char *cap);

/* Sends "<tag> <command>\r\n"; tag_r (16 bytes) gets the tag. The command
 * must be one line; quote strings with imapc_quote. */
int imapc_send(struct imapc *c, char tag_r[16], const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Reads the next response into c->resp (valid until the next read). Returns
 * 0, or -1 (timeout, connection closed, malformed response: c->broken). */
int imapc_read(struct imapc *c);
/* Reads until the tagged reply to tag, calling cb (may be NULL) for each
 * untagged response; the tagged reply is then in c->resp. Returns 0 if it
 * is OK, 1 if NO or BAD (c->err says what the server said), -1 on a network
 * error, or what cb returned if it was not 0 (reading stops). */
int imapc_wait(struct imapc *c, const char *tag, int (*cb)(struct imapc *c, void *ctx), void *ctx);
/* For a tagged reply in c->resp: 0 if OK, else 1 with the server's words in
 * c->err. */
int imapc_tagged_status(struct imapc *c);
/* For an untagged BYE in c->resp: marks the connection broken, says why in
 * c->err and returns -1; else 0. */
int imapc_check_bye(struct imapc *c);
/* Sends a command and waits for its reply (imapc_send + imapc_wait). */
int imapc_cmd(struct imapc *c, int (*cb)(struct imapc *c, void *ctx), void *ctx, const char *fmt,
	      ...) __attribute__((format(printf, 4, 5)));

/* s as an IMAP quoted string into out; -1 if it does not fit or holds CR, LF or NUL. */
int imapc_quote(const char *s, char *out, size_t outsize);
/* The response code's first atom ("THROTTLED", "AUTHENTICATIONFAILED") of
 * c->resp into out, or "" */
void imapc_code(const struct imapc *c, char *out, size_t outsize);

/* Logs in with user and password: AUTHENTICATE PLAIN (with SASL-IR when
 * offered), else LOGIN. Returns 0, 1 if the server refused (c->err holds
 * its words), -1 on a network error. */
int imapc_login(struct imapc *c, const char *user, const char *password);
/* Logs in with an OAuth2 access token: mech "XOAUTH2" or "OAUTHBEARER"
 * (RFC 7628), or NULL: XOAUTH2 (Gmail, Microsoft) if offered, else
 * OAUTHBEARER. Returns as imapc_login. */
int imapc_oauth2(struct imapc *c, const char *user, const char *token, const char *mech);

#endif
