/* utf7 — IMAP's modified UTF-7 mailbox names (RFC 3501 5.1.3) <-> UTF-8.
 * The store keeps names in UTF-8; IMAP's wire carries modified UTF-7, and so
 * do the folder names of Dovecot's and Courier's Maildir++ trees
 * (".Entw&APw-rfe"): imapd, `mailkeep import` and `mailkeep export` share this.
 * Pure functions: no I/O, no allocation. */
#ifndef MK_UTF7_H
#define MK_UTF7_H

#include <stddef.h>

/* Decodes in (modified UTF-7) into out (size outsize, NUL-terminated).
 * Returns 0, or -1 if in is not valid, canonical modified UTF-7 (bad base64,
 * an encoded printable ASCII character, a lone surrogate, an encoded NUL, an
 * unterminated "&...", 8-bit bytes) or out is too small. */
int utf7_to_utf8(const char *in, char *out, size_t outsize);
/* Encodes UTF-8 in into modified UTF-7. Returns 0, or -1 on invalid UTF-8 or
 * if out is too small. */
int utf8_to_utf7(const char *in, char *out, size_t outsize);

#endif
