/* xmalloc — allocation that logs and exits when memory runs out (see xmalloc.h). */
#include "lib/xmalloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"

void *xmalloc(size_t size)
{
	void *p = malloc(size != 0 ? size : 1);

	if (p == NULL)
		log_fatal("out of memory (%zu bytes)", size);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p;

	if (size != 0 && n > SIZE_MAX / size)
		log_fatal("out of memory (%zu x %zu bytes overflows)", n, size);
	p = calloc(n != 0 ? n : 1, size != 0 ? size : 1);
	if (p == NULL)
		log_fatal("out of memory (%zu x %zu bytes)", n, size);
	return p;
}

void *xreallocarray(void *p, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		log_fatal("out of memory (%zu x %zu bytes overflows)", n, size);
	p = realloc(p, n * size != 0 ? n * size : 1);
	if (p == NULL)
		log_fatal("out of memory (%zu x %zu bytes)", n, size);
	return p;
}

char *xstrdup(const char *s)
{
	return xmemdup(s, strlen(s) + 1);
}

char *xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = xmalloc(len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void *xmemdup(const void *data, size_t len)
{
	void *p = xmalloc(len);

	if (len > 0)
		memcpy(p, data, len);
	return p;
}
