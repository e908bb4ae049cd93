/* data — the DATA and BDAT readers: fed bytes, they answer "done" or "need
 * more", never read a socket (fuzzed by tests/fuzz/fuzz-smtp-data.c).
 *
 * DATA: only CRLF "." CRLF ends the message (RFC 5321 4.1.1.4); the dot-
 * stuffing is undone; a bare CR or LF anywhere is noted (the caller refuses
 * the message: SMTP smuggling), and no other byte sequence ends the data. The
 * message goes into a struct buf up to its max; once over, the rest is still
 * scanned for the end but dropped (too_big is set), so memory stays bounded.
 * BDAT: chunks of exact sizes, checked for bare CR/LF across chunk edges.
 */
#ifndef SMTPIN_DATA_H
#define SMTPIN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

struct smtp_data {
	struct buf *out; /* where the message goes (not owned) */
	int state;	 /* position relative to CRLF "." CRLF */
	int prev_cr;	 /* BDAT: the last byte of the previous chunk was CR */
	uint64_t limit;	 /* message_size_limit: more is refused (and not kept) */
	uint64_t size;	 /* message bytes seen (after unstuffing), kept or not */
	int too_big;	 /* out->max was passed: the message is refused */
	int bare_cr;	 /* a CR not followed by LF was seen */
	int bare_lf;	 /* an LF not preceded by CR was seen */
	int nul;	 /* a NUL byte was seen (noted, not refused) */
};

#define SMTP_DATA_MORE (-2) /* all input consumed, the end not seen yet */

/* Starts reading a message, appended to out (what out holds already, our
 * Received: header, stays and does not count against the size). */
void smtp_data_init(struct smtp_data *d, struct buf *out, uint64_t limit);
/* DATA: consumes input up to and including CRLF.CRLF. Returns 0 when the end
 * was seen (*used_r = bytes consumed; the rest belongs to the next command),
 * or SMTP_DATA_MORE (*used_r = len). The final CRLF before the dot is part of
 * the message; the ".\r\n" is not. */
int smtp_data_feed(struct smtp_data *d, const char *in, size_t len, size_t *used_r);
/* BDAT: appends one chunk's bytes (all of them), checking for bare CR/LF. */
void smtp_bdat_feed(struct smtp_data *d, const char *in, size_t len);
/* BDAT LAST: a CR left at the very end is bare. */
void smtp_bdat_last(struct smtp_data *d);

#endif
