/* mbox — reading and writing mbox files (mboxrd and mboxo), and the leading
 * "From " line of one-message files.
 *
 * An mbox is messages each preceded by a "From sender date" line and followed
 * by an empty line. A line in a message that would look like a separator is
 * quoted with '>':
 *   mboxrd  every line matching ^>*From  gets one more '>' when written, and
 *           loses one when read: reversible, what `mailkeep export` writes;
 *   mboxo   only ^From  is quoted (to ">From "); reading turns ^>From  back
 *           into "From ", so a message that really had ">From " at the start
 *           of a line comes back as "From " (mboxo cannot tell them apart).
 * A new message starts at a "From " line that follows an empty line (or starts
 * the file) and carries a date (mbox_parse_date): body lines that merely start
 * with "From " are not taken for separators even in a sloppily written file.
 *
 * The "From " line is the envelope (sender and delivery date), not part of the
 * message: it is handed back apart so callers can keep it as metadata and write
 * it back on export. Pure functions over memory (callers mmap the file).
 */
#ifndef MK_MBOX_H
#define MK_MBOX_H

#include <stddef.h>
#include <stdint.h>

enum mbox_variant {
	MBOX_RD = 0,
	MBOX_O = 1,
};

struct mbox_msg {
	const char *from; /* the From line after "From ", without its line end; NULL if none */
	size_t from_len;
	int from_crlf;	 /* the From line ended in CRLF */
	const char *raw; /* the message as it is in the file (still quoted, for an mbox) */
	size_t raw_len;
	size_t offset; /* where the message's From line starts in the file */
	int truncated; /* the last message does not end with a newline: the file may be cut short */
};

struct mbox_reader {
	const char *data;
	size_t len, pos;
};

void mbox_reader_init(struct mbox_reader *r, const void *data, size_t len);
/* The next message: 1 with *m_r filled, 0 at the end, -1 if the data does not
 * begin with a "From " line (not an mbox). Pointers point into the data. */
int mbox_next(struct mbox_reader *r, struct mbox_msg *m_r);
/* A single message held in one file: if it begins with a "From " line, that
 * line goes to m_r->from and the rest to m_r->raw; otherwise from is NULL and
 * raw is everything. No splitting, no unquoting. */
void mbox_split_from_line(const void *data, size_t len, struct mbox_msg *m_r);
/* 1 if line (len bytes, without its line end) is a separator: "From " then a
 * date mbox_parse_date understands. */
int mbox_is_separator(const char *line, size_t len);

/* Undoes the quoting of variant v. out must hold len bytes (the result is never
 * longer). Returns the new length. */
size_t mbox_unquote(enum mbox_variant v, const char *raw, size_t len, char *out);
/* Length of msg once quoted as mboxrd. */
size_t mbox_quoted_len(const char *msg, size_t len);
/* Quotes msg as mboxrd into out (mbox_quoted_len bytes). Returns the length written. */
size_t mbox_quote(const char *msg, size_t len, char *out);

/* Finds a date in the text of a From line ("sender Thu Aug 22 12:36:23 2002",
 * optionally with a numeric zone): month name, day, hh:mm[:ss], 4-digit year.
 * Returns 0 with seconds since the epoch, or -1. */
int mbox_parse_date(const char *text, size_t len, int64_t *t_r);
/* asctime-style UTC date without newline ("Thu Aug 22 12:36:23 2002") into out[32]. */
void mbox_format_date(int64_t t, char out[32]);
/* Store flags from the Status: (R = \Seen) and X-Status: (A = \Answered,
 * F = \Flagged, D = \Deleted, T = \Draft) header fields, as mutt and other
 * mbox writers keep them. The bytes are not changed. */
uint32_t mbox_status_flags(const char *msg, size_t len);

#endif
