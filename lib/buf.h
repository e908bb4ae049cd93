/* buf — a byte buffer with a hard maximum.
 *
 * Every buffer that holds untrusted input is a struct buf with a max: going past
 * it is an error the caller turns into a protocol reply (500, BAD), never a
 * realloc storm. The data is always NUL-terminated (the NUL is not counted in
 * len), so text can be handed to string functions after a length check.
 */
#ifndef MK_BUF_H
#define MK_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;  /* owned; NUL-terminated; NULL until first use */
	size_t len;  /* bytes used, not counting the NUL */
	size_t cap;  /* bytes allocated */
	size_t max;  /* hard limit on len */
};

/* Sets up an empty buffer that may hold up to max bytes. Allocates lazily. */
void buf_init(struct buf *b, size_t max);
/* Frees the data; the buffer may be reused after buf_init. */
void buf_free(struct buf *b);
/* Empties the buffer, keeping its allocation. */
void buf_reset(struct buf *b);
/* Appends len bytes. Returns 0, or -1 (nothing appended) if len would pass max. */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_append_str(struct buf *b, const char *s);
/* Appends formatted text. Returns 0, or -1 (buffer unchanged) if it would pass max. */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Removes the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);

#endif
