/* dir_open — picks the directory backend named by user_directory (index/dir.h). */
#include <stdio.h>
#include <string.h>

#include "index/dir.h"
#include "index/dir.h"
#include "index/params.h"

int directory_open(struct config *cfg, struct store *store, struct directory **dir_r, char *err,
		   size_t errsize)
{
	struct common_params common = {0};
	const char *which;

	common_params_bind(cfg, &common);
	which = common.user_directory;
	common_params_unbind(&common);
	*dir_r = NULL;
	if (which == NULL || which[0] == '\0' || strcmp(which, "embedded") == 0) {
		*dir_r = dir_embedded_open(store, cfg);
		return 0;
	}
	if (dir_ldap_spec(which)) {
		if (dir_ldap_open_config(cfg, which, dir_r, err, errsize) < 0)
			return -1;
		if (store != NULL) /* keep the store's uid/gid of LDAP users as LDAP says */
			*dir_r = dir_sync_wrap(*dir_r, store);
		return 0;
	}
	snprintf(err, errsize,
		 "user_directory = %s: unknown directory (use embedded, or ldap:/path/to/file.cf)",
		 which);
	return -1;
}
