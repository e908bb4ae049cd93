/* imapc_parse — the IMAP client's response parser: pure, no I/O.
 *
 * A server's response is one line, or several when it carries literals
 * ("{1234}\r\n" then 1234 bytes, and the line goes on after them). The
 * connection (imapc.c) reads bytes into its buffer and asks
 * imapc_response_end() whether a whole response is there; then
 * imapc_parse() turns it into a tree of tokens that point into that buffer.
 *
 *   "* 12 FETCH (UID 40 FLAGS (\Seen) BODY[] {5}\r\nhello)\r\n"
 *     -> untagged; tokens: 12  FETCH  (UID 40 FLAGS (\Seen) BODY[] "hello")
 *   "a3 NO [THROTTLED] Slow down\r\n"
 *     -> tagged "a3", status NO, code (THROTTLED), text "Slow down"
 *
 * Limits are explicit: a line (literals excluded) longer than
 * IMAPC_LINE_MAX, a literal over the caller's maximum, or more than
 * IMAPC_NODES_MAX tokens is an error, never a realloc storm. Quoted strings
 * are unescaped in place (the buffer must be writable), so a token is always
 * the exact bytes: a message literal is the message as the server holds it.
 */
#ifndef MK_TOOLS_IMAPC_PARSE_H
#define MK_TOOLS_IMAPC_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define IMAPC_LINE_MAX (1u << 20)  /* bytes of one line of a response, literals excluded */
#define IMAPC_NODES_MAX (1u << 20) /* tokens in one response */
#define IMAPC_DEPTH_MAX 32	   /* nested lists */

enum imapc_node_type {
	IMAPC_ATOM,   /* atom or number: 12, FETCH, \Seen, BODY[] */
	IMAPC_STRING, /* quoted string or literal (literal = 1) */
	IMAPC_NIL,
	IMAPC_LIST, /* ( ... ), or the [CODE ...] of a status response */
};

struct imapc_node {
	uint8_t type;	 /* enum imapc_node_type */
	uint8_t literal; /* a STRING that came as a literal */
	const char *s;	 /* ATOM, STRING: the bytes (not NUL-terminated) */
	size_t len;
	int32_t first; /* LIST: first child, or -1 */
	int32_t next;  /* next sibling, or -1 */
};

enum imapc_kind { IMAPC_UNTAGGED, IMAPC_TAGGED, IMAPC_CONTINUE };
enum imapc_status { IMAPC_DATA, IMAPC_OK, IMAPC_NO, IMAPC_BAD, IMAPC_BYE, IMAPC_PREAUTH };

struct imapc_resp {
	enum imapc_kind kind;
	const char *tag; /* TAGGED: the tag */
	size_t taglen;
	enum imapc_status status; /* DATA for "* 3 EXISTS", "* LIST ...", ... */
	int32_t code;		  /* status: the [CODE args] as a LIST node, or -1 */
	const char *text;	  /* status and CONTINUE: the human text after the code */
	size_t textlen;
	int32_t first; /* DATA: the first token after "* ", or -1 */
	struct imapc_node *nodes;
	size_t nnodes, capnodes; /* owned: reused from one response to the next */
};

/* Length of the first whole response in buf (CRLF of its last line included),
 * 0 if more bytes are needed, -1 if it cannot be one: a line over
 * IMAPC_LINE_MAX, a literal over max_literal, a bad literal count. */
ssize_t imapc_response_end(const char *buf, size_t len, uint64_t max_literal);

/* Parses the len bytes of a whole response (as imapc_response_end measured
 * it) into r; r->nodes is reused (free with imapc_resp_free). Returns 0, or
 * -1 if the response is malformed. */
int imapc_parse(char *buf, size_t len, struct imapc_resp *r);
void imapc_resp_free(struct imapc_resp *r);

/* Helpers over a parsed response. n < 0 is "none" everywhere. */
static inline const struct imapc_node *imapc_node(const struct imapc_resp *r, int32_t n)
{
	return n >= 0 && (size_t)n < r->nnodes ? &r->nodes[n] : NULL;
}
/* 1 if node n is an atom equal to word (ASCII case-insensitive). */
int imapc_is_atom(const struct imapc_resp *r, int32_t n, const char *word);
/* node n (ATOM or STRING) as a number; -1 if it is not one (or over 2^63). */
int64_t imapc_number(const struct imapc_resp *r, int32_t n);
/* In a LIST of name/value pairs (a FETCH's items), the value after the atom
 * name, or -1. */
int32_t imapc_list_get(const struct imapc_resp *r, int32_t list, const char *name);
/* Copies node n (ATOM/STRING) into out as a C string; -1 if it does not fit
 * or holds a NUL. NIL gives -1. */
int imapc_copy(const struct imapc_resp *r, int32_t n, char *out, size_t outsize);
/* INTERNALDATE "17-Jul-1996 02:44:25 -0700" as seconds since the epoch; -1 if malformed. */
int imapc_parse_date(const char *s, size_t len, int64_t *t_r);

#endif
