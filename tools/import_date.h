/* import_date — the arrival date of a message file that has no mbox "From "
 * line: its Date header field (RFC 5322, obsolete forms too, through
 * libetpan's parser), else the caller keeps the file's mtime. */
#ifndef MK_TOOLS_IMPORT_DATE_H
#define MK_TOOLS_IMPORT_DATE_H

#include <stddef.h>
#include <stdint.h>

/* The Date: field of the header of msg (len bytes; the header ends at the
 * first empty line) as seconds since the epoch, in *t_r. Returns 0, or -1 if
 * there is no Date field, it does not parse, or it lies before 1970 or more
 * than a day after now (a broken clock: the mtime is the better guess). */
int import_header_date(const char *msg, size_t len, int64_t now, int64_t *t_r);

#endif
