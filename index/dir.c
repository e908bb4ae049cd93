/* dir — the backend-independent part of the user directory (see dir.h):
 * result names, errors and closing. The backends live in
 * index/dir_embedded.c and index/dir_ldap.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "index/dir.h"

static _Thread_local char last_error[DIR_ERROR_MAX];

const char *dir_error(void)
{
	return last_error;
}

void dir_clear_error(void)
{
	last_error[0] = '\0';
}

void dir_set_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof last_error, fmt, ap);
	va_end(ap);
}

const char *dir_result_str(enum dir_result r)
{
	switch (r) {
	case DIR_OK:
		return "ok";
	case DIR_NOTFOUND:
		return "not found";
	case DIR_BADPASS:
		return "bad password";
	case DIR_TEMPFAIL:
		return "temporary failure";
	case DIR_READONLY:
		return "read-only directory";
	case DIR_ERROR:
		return "error";
	}
	return "unknown result";
}

void dir_close(struct directory **dirp)
{
	struct directory *dir;

	if (dirp == NULL || (dir = *dirp) == NULL)
		return;
	*dirp = NULL;
	if (dir->ops != NULL && dir->ops->close != NULL)
		dir->ops->close(dir);
	free(dir);
}
