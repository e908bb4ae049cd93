/* xmalloc — allocation with one out-of-memory policy: log and exit.
 *
 * As OpenSMTPD's xmalloc.c: a daemon that cannot get a few hundred bytes is
 * in an environment that is broken (the kernel will not give memory back in
 * time to finish the request properly), so each of these logs "fatal: out of
 * memory (...)" with log_fatal and exits 1; no caller checks for NULL, and
 * no caller invents another policy (abort(), a local xrealloc, a silent
 * NULL). Sizes are checked for overflow (n * size), which is fatal too:
 * such a size is a bug or hostile input that a bound should have stopped.
 * Code that must survive a large allocation sized by input (a FUSE write, a
 * 64 MB literal) bounds the size first (lib/buf.h), then uses these.
 */
#ifndef MK_XMALLOC_H
#define MK_XMALLOC_H

#include <stddef.h>

/* malloc(size), never NULL (size 0 gives a unique pointer). */
void *xmalloc(size_t size);
/* calloc(n, size), zeroed, never NULL. */
void *xcalloc(size_t n, size_t size);
/* realloc(p, n * size) with overflow check, never NULL; p may be NULL. */
void *xreallocarray(void *p, size_t n, size_t size);
/* strdup / strndup, never NULL. */
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* A copy of len bytes, never NULL. */
void *xmemdup(const void *data, size_t len);

#endif
