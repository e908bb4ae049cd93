/* array — a growable array of any element type, as the ~20 hand-grown
 * "if (n == cap) { cap *= 2; v = realloc(...) }" loops had it, written once.
 *
 * An array is three variables or fields the caller owns: a pointer to the
 * elements (NULL when empty), a count and a capacity (both 0 when empty):
 *
 *     struct rcpt *rcpts = NULL;
 *     size_t n = 0, cap = 0;
 *     struct rcpt *r = ARRAY_PUSH(rcpts, n, cap);   // room for one more
 *     ...
 *     free(rcpts);
 *
 * The capacity doubles (at least 8 elements), so n pushes cost O(n). Out of
 * memory is fatal (lib/xmalloc.h). The macros evaluate their arguments more
 * than once: pass plain variables or fields.
 */
#ifndef MK_ARRAY_H
#define MK_ARRAY_H

#include <stddef.h>

/* Returns v, grown (realloc'ed) so that *cap >= want elements of elem bytes. */
void *array_reserve(void *v, size_t *cap, size_t want, size_t elem);

/* Makes room for at least want elements in v (a typed pointer). */
#define ARRAY_RESERVE(v, cap, want) ((v) = array_reserve((v), &(cap), (want), sizeof(*(v))))
/* Appends one element and returns a pointer to it (not initialised);
 * n is incremented. */
#define ARRAY_PUSH(v, n, cap) (ARRAY_RESERVE(v, cap, (n) + 1), &(v)[(n)++])

#endif
