/* base64 — RFC 4648 base64, the one copy (SMTP AUTH, IMAP AUTHENTICATE,
 * {SSHA} password hashes; MIME bodies with the lenient decoder).
 *
 * The strict decoder is for protocol tokens: the standard alphabet, a length
 * that is a multiple of 4, '=' padding only at the end, no white space.
 * The MIME decoder is RFC 2045's: characters outside the alphabet (line
 * breaks) are skipped and the first '=' ends the data.
 */
#ifndef MK_BASE64_H
#define MK_BASE64_H

#include <stddef.h>

/* The buffer base64_encode needs for len bytes (with the NUL). */
#define BASE64_ENCODED_SIZE(len) (((len) + 2) / 3 * 4 + 1)
/* The most base64 of len characters decodes to. */
#define BASE64_DECODED_MAX(len) ((len) / 4 * 3 + 3)

/* Decodes strict base64 (see above) of len characters into out. Returns the
 * decoded length, or -1 if in is not strict base64 or out is too small. */
long base64_decode(const char *in, size_t len, unsigned char *out, size_t outsize);
/* Decodes MIME base64 (see above) into out. Returns the decoded length, or
 * -1 if out is too small (BASE64_DECODED_MAX(len) always suffices). */
long base64_decode_mime(const char *in, size_t len, unsigned char *out, size_t outsize);
/* Encodes len bytes into out, NUL-terminated, without line breaks. Returns 0,
 * or -1 if outsize < BASE64_ENCODED_SIZE(len). */
int base64_encode(const unsigned char *in, size_t len, char *out, size_t outsize);

#endif
