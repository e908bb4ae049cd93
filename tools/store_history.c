/* store_history — the store's size day by day (see store_history.h). */
#include "tools/store_history.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/array.h"
#include "lib/util.h"

#define HISTORY_MAX_LINES 200000 /* ~20 years of samples every hour */

int store_size_now(const char *store_dir, uint64_t *bytes_r)
{
	char path[4200];
	struct stat st;

	*bytes_r = 0;
	snprintf(path, sizeof(path), "%s/data.mdb", store_dir);
	if (stat(path, &st) < 0)
		return -1;
	*bytes_r = (uint64_t)st.st_size;
	return 0;
}

int store_history_add(const char *data_dir, const char *store_dir, int64_t now)
{
	char path[4200], line[64];
	uint64_t bytes;

	if (store_size_now(store_dir, &bytes) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/stats", data_dir);
	if (mk_mkdirs(path, 0755) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/stats/store-size", data_dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -1;
	int n =
	    snprintf(line, sizeof(line), "%lld %llu\n", (long long)now, (unsigned long long)bytes);
	int rc = mk_write_all(fd, line, (size_t)n);
	close(fd);
	return rc < 0 ? -1 : 0;
}

size_t store_history_read(const char *data_dir, int64_t since, struct store_sample **out_r)
{
	char path[4200], line[128];
	struct store_sample *v = NULL;
	size_t n = 0, cap = 0, lines = 0;

	*out_r = NULL;
	snprintf(path, sizeof(path), "%s/stats/store-size", data_dir);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL && lines++ < HISTORY_MAX_LINES) {
		uint64_t t, b;
		char *sp = strchr(line, ' '), *nl = strchr(line, '\n');
		if (sp == NULL || nl == NULL)
			continue;
		*sp = '\0';
		*nl = '\0';
		if (mk_parse_u64(line, 0, UINT64_MAX / 2, &t) < 0 ||
		    mk_parse_u64(sp + 1, 0, UINT64_MAX / 2, &b) < 0 || (int64_t)t < since)
			continue;
		*ARRAY_PUSH(v, n, cap) = (struct store_sample){(int64_t)t, b};
	}
	fclose(f);
	*out_r = v;
	return n;
}

int store_history_at(const struct store_sample *s, size_t n, int64_t t, uint64_t *bytes_r)
{
	int found = 0;

	for (size_t i = 0; i < n && s[i].time <= t; i++) {
		*bytes_r = s[i].bytes;
		found = 1;
	}
	return found;
}
