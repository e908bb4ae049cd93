/* mime — the MIME structure of a stored message for FETCH and SEARCH:
 * ENVELOPE, BODY and BODYSTRUCTURE text, body[section] byte ranges, header
 * field lookup. Parts are found by scanning boundaries over the exact bytes
 * (so every range is an offset into the stored message); header fields
 * (Content-Type, Content-Disposition, addresses) are parsed with libetpan.
 * All pure: fed bytes, never I/O. Limits: MIME_MAX_DEPTH nesting,
 * MIME_MAX_PARTS parts (beyond them, the rest is one opaque part). */
#ifndef MK_IMAP_MIME_H
#define MK_IMAP_MIME_H

#include <stddef.h>

#include "lib/buf.h"

#define MIME_MAX_DEPTH 20
#define MIME_MAX_PARTS 2000

struct mime_part {
	size_t hdr_start, hdr_len; /* header block, including the empty line */
	size_t body_start, body_len;
	int multipart; /* children are the parts */
	int rfc822;    /* message/rfc822: msg is the embedded message */
	struct mime_part *children;
	size_t nchildren;
	struct mime_part *msg;
};

/* Parses the structure. Returns the root (the message) or NULL (out of memory
 * is fatal, so never in practice). Free with mime_free. */
struct mime_part *mime_parse(const char *msg, size_t len);
void mime_free(struct mime_part **root);

/* Builds ENVELOPE, BODY (non-extensible) and BODYSTRUCTURE, each as the IMAP
 * text to send, into the given buffers (any may be NULL). Returns 0 or -1 (a
 * buffer reached its max). */
int mime_describe(const char *msg, size_t len, struct buf *envelope, struct buf *body,
		  struct buf *bodystructure);

/* The header fields SEARCH matches, as one record: for each of Subject, From,
 * To, Cc, Bcc the unfolded raw value, '\t', the value with RFC 2047 words
 * decoded to UTF-8 (for the address fields, '\t' and the addresses as
 * "name <mailbox@host>, ..."), repeated after a '\t' for each further field
 * of that name (nothing if there is none); '\0'; then the Date header's day number (days since the
 * epoch) in decimal, or "-" without a valid Date, '\0'. Returns 0 or -1. */
int mime_search_fields(const char *msg, size_t len, struct buf *out);
/* What SORT and THREAD compare, as one record of ten pieces, each followed
 * by '\0': 0 the base subject (RFC 5256 2.1, RFC 2047 words decoded), 1 "R"
 * if it was a reply or forward, 2 the sent date in seconds since the epoch
 * (UTC; empty without a valid Date), 3/4/5 the local part of the first From,
 * To, Cc mailbox, 6/7 the first From/To as displayed (RFC 5957: the name,
 * else the address), 8 the Message-ID, 9 the References ids (or else
 * In-Reply-To's first), space-separated. Returns 0 or -1. */
int mime_sort_fields(const char *msg, size_t len, struct buf *out);
/* RFC 5256 2.1's base subject of a (decoded) subject into out; returns 1
 * if a reply or forward marker was taken off. */
int mime_base_subject(const char *subject, char *out, size_t outsize);
/* Field index in that record: 0 Subject .. 4 Bcc; -1 for other names. */
int mime_search_field_index(const char *name);
/* Days since 1970-01-01 of a civil date. */
long long mime_days_from_civil(long long y, unsigned m, unsigned d);

/* Resolves a section spec ("", "1.2", "HEADER", "1.TEXT", "2.MIME",
 * "HEADER.FIELDS (A B)", "1.HEADER.FIELDS.NOT (C)") to a byte range. For
 * HEADER.FIELDS the selected lines are copied into out (the caller sends
 * out's bytes) and *start_r is set to SIZE_MAX. Returns 0, or -1 if the
 * section is malformed (BAD); a part that does not exist gives an empty
 * range (RFC 3501 lets a server answer with an empty string). */
int mime_section(const char *msg, size_t len, const char *section, size_t *start_r, size_t *len_r,
		 struct buf *out);

/* Iterates over the header fields named name: from *pos (0 at first), the
 * next one's unfolded value into out; *pos moves past it. 1 if found, 0 at
 * the end. */
int mime_header_next(const char *hdr, size_t len, size_t *pos, const char *name, char *out,
		     size_t outsize);
/* BINARY[section] (RFC 3516): the part's content with its Content-Transfer-
 * Encoding (base64, quoted-printable) undone, into out; 7bit and 8bit parts
 * in CRLF form, binary ones as stored. section is "" (the whole message) or
 * a part number ("1.2"). Returns 0 or one of: */
#define MIME_BINARY_BAD -1	   /* not a part number: BAD */
#define MIME_BINARY_UNKNOWN_CTE -2 /* an encoding it cannot undo: NO [UNKNOWN-CTE] */
#define MIME_BINARY_TOOBIG -3	   /* out reached its max */
int mime_binary(const char *msg, size_t len, const char *section, struct buf *out);
/* A message APPENDed as binary (a literal8 holding NUL bytes): each part
 * whose content holds a NUL is rewritten with Content-Transfer-Encoding
 * base64, so that BODY[] stays valid IMAP (RFC 3516 4.3); BINARY[] gives the
 * bytes back. Writes the new message into out and returns 1; returns 0 if
 * there is no NUL (out untouched), -1 if out reached its max, -2 if a NUL
 * is outside every part's content (in a header, a preamble). */
int mime_binary_to_base64(const char *msg, size_t len, struct buf *out);
/* The unfolded value of the first header field named name in hdr[0..len),
 * copied into out (size outsize; truncated). Returns 1 if found, 0 if not. */
int mime_header_get(const char *hdr, size_t len, const char *name, char *out, size_t outsize);
/* Length of the header block (through the empty line) of msg. */
size_t mime_header_len(const char *msg, size_t len);

#endif
