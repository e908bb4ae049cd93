/* directory — the backend-independent part of the users interface (see
 * directory.h): result names and closing. The backends live in
 * index/dir_embedded.c and lib/directory_ldap.c. */
#include <stddef.h>
#include <stdlib.h>

#include "lib/directory.h"

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
