/* wire — how stored bytes look on the IMAP wire. Pure, no I/O.
 *
 * Strings: the one IMAP quoter (quoted if short and plain, a literal
 * otherwise, NIL for NULL), used by the replies (io.c) and by the
 * ENVELOPE/BODYSTRUCTURE text (mime.c).
 *
 * CRLF form: IMAP sends lines ending in CRLF (RFC 3501 2.2, RFC 9051 2.2).
 * A message imported from a file may end its lines with a bare LF; the store
 * and the mount keep those bytes as they came, and IMAP shows the message
 * with each bare LF (an LF not preceded by CR) as CRLF, as Dovecot does. Every
 * size and offset IMAP gives (RFC822.SIZE, BODYSTRUCTURE sizes, partial
 * FETCH) is one of that form. Ranges are given in stored bytes; whether an LF
 * is bare is decided by the byte before it in the whole message.
 */
#ifndef MK_IMAP_WIRE_H
#define MK_IMAP_WIRE_H

#include <stddef.h>
#include <stdint.h>

/* Receives the pieces of an encoded string, in order. */
typedef void wire_emit_fn(void *ctx, const void *data, size_t len);

/* Writes s[0..len) as an IMAP string: "quoted" when under 1024 bytes with no
 * CR, LF, NUL or 8-bit byte, else a {len} literal; NIL when s is NULL. */
void wire_string(const char *s, size_t len, wire_emit_fn *emit, void *ctx);

/* Bytes the range msg[start..start+len) takes in CRLF form. */
uint64_t wire_crlf_len(const char *msg, size_t start, size_t len);

/* Reads a range of a message in CRLF form, resumably: the message's bytes
 * may be given again (at another address) between calls, as after a
 * transaction was ended and begun again. */
struct wire_crlf {
	size_t pos, end; /* stored bytes still to read: [pos, end) */
	int cr_sent;	 /* the CR put before the bare LF at pos is already out */
	uint64_t left;	 /* CRLF-form bytes still to give */
};
/* Positions r on the range [start, start+len) of msg, skip bytes of its
 * CRLF form in, giving at most count bytes. */
void wire_crlf_open(struct wire_crlf *r, const char *msg, size_t start, size_t len, uint64_t skip,
		    uint64_t count);
/* Copies up to room bytes of CRLF form into out; returns how many (0 once
 * r->left is 0 or the range is done). */
size_t wire_crlf_read(struct wire_crlf *r, const char *msg, char *out, size_t room);
/* 1 if nothing is left to read. */
int wire_crlf_done(const struct wire_crlf *r);

#endif
