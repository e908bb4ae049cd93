/* array — growing the growable arrays of lib/array.h. */
#include "lib/array.h"

#include "lib/xmalloc.h"

void *array_reserve(void *v, size_t *cap, size_t want, size_t elem)
{
	size_t ncap = *cap;

	if (want <= ncap)
		return v;
	if (ncap < 8)
		ncap = 8;
	while (ncap < want)
		ncap = ncap > ((size_t)-1) / 2 ? want : ncap * 2;
	v = xreallocarray(v, ncap, elem);
	*cap = ncap;
	return v;
}
