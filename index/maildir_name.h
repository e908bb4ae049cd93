/* maildir_name — Maildir file names and the flags they carry.
 *
 * A Maildir file name is "<base>:2,<flags>", the flags being letters in ASCII
 * order (cr.yp.to/proto/maildir.html): D draft, F flagged, P passed
 * (forwarded), R replied, S seen, T trashed. The importer, the exporter and the
 * mount all go through here so that one message has one name everywhere.
 * Store flags map as D=\Draft, F=\Flagged, R=\Answered, S=\Seen, T=\Deleted;
 * P is the IMAP keyword "$Forwarded". Lower-case letters (Dovecot's keyword
 * letters) are ignored on parse. Pure functions: no I/O.
 */
#ifndef MK_MAILDIR_NAME_H
#define MK_MAILDIR_NAME_H

#include <stddef.h>
#include <stdint.h>

#define MAILDIR_KW_FORWARDED "$Forwarded"

/* Splits a Maildir file name into its base and flags. base_r (size basesize)
 * gets the part before ":2," (before the last ':' for other info kinds, or the
 * whole name); flags_r gets store flags (enum store_flag bits); forwarded_r
 * (may be NULL) is set to 1 if the P flag is there. Returns 0, or -1 if name
 * is empty, starts with '.', holds a '/' or a control byte, or base does not fit. */
int maildir_name_parse(const char *name, char *base_r, size_t basesize, uint32_t *flags_r,
		       int *forwarded_r);
/* Writes "<base>:2,<flags>" into out (size outsize). keywords (may be NULL) is
 * a space-separated keyword list; "$Forwarded" in it gives P. Returns 0, or -1
 * if it does not fit. */
int maildir_name_format(const char *base, uint32_t flags, const char *keywords, char *out,
			size_t outsize);
/* 1 if base is usable as a Maildir base name (and a store base name): 1..127
 * bytes without white space, control bytes, '/', ':' or a leading '.' (UTF-8 is fine,
 * as in the store's base names). */
int maildir_base_valid(const char *base);

#endif
