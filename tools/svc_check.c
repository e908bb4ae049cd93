/* svc_check — is a service up and answering (see svc_check.h). */
#include "tools/svc_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "index/params.h"
#include "lib/net.h"
#include "lib/util.h"

size_t svc_listeners(struct config *cfg, const char *bin, struct svc_listener *out, size_t max)
{
	char tag[80];
	size_t n = 0;

	snprintf(tag, sizeof(tag), "(%s)", bin);
	for (const struct params_area *a = params_registry; a->title != NULL; a++) {
		if (strstr(a->title, tag) == NULL)
			continue;
		for (const struct config_param *p = a->params; p->name != NULL; p++) {
			size_t len = strlen(p->name);
			if (p->type != CONFIG_LIST || len < 8 ||
			    strcmp(p->name + len - 7, "_listen") != 0)
				continue;
			char **items = NULL;
			size_t k = 0;
			if (config_get_list(cfg, p->name, &items, &k) < 0)
				continue;
			for (size_t i = 0; i < k; i++) {
				if (n < max) {
					mk_strlcpy(out[n].setting, p->name, sizeof(out[n].setting));
					mk_strlcpy(out[n].spec, items[i], sizeof(out[n].spec));
				}
				n++;
			}
			free(items); /* one block */
		}
	}
	return n;
}

int svc_answers(const char *spec, double timeout)
{
	char target[300], err[256];
	const char *colon = strrchr(spec, ':');

	if (strncmp(spec, "unix:", 5) == 0 || colon == NULL) {
		mk_strlcpy(target, spec, sizeof(target));
	} else if (colon == spec || strncmp(spec, "0.0.0.0:", 8) == 0 || spec[0] == '*') {
		snprintf(target, sizeof(target), "127.0.0.1%s", colon);
	} else if (strncmp(spec, "[::]:", 5) == 0) {
		snprintf(target, sizeof(target), "[::1]%s", colon);
	} else {
		mk_strlcpy(target, spec, sizeof(target));
	}
	int fd = net_connect(target, timeout, err, sizeof(err));
	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

int svc_all_answer(struct config *cfg, const char *bin, double timeout)
{
	struct svc_listener l[16];
	size_t n = svc_listeners(cfg, bin, l, 16);

	for (size_t i = 0; i < n && i < 16; i++)
		if (!svc_answers(l[i].spec, timeout))
			return 0;
	return 1;
}

static int tcp_listens(const char *file, unsigned port)
{
	char line[512];
	FILE *f = fopen(file, "re");
	int found = 0;

	if (f == NULL)
		return 0;
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		/* "  0: 0100007F:09C5 00000000:0000 0A ..." : local address, port, state */
		char *colon = strchr(line, ':');
		if (colon == NULL || (colon = strchr(colon + 1, ':')) == NULL)
			continue;
		unsigned p = 0, st = 0;
		if (sscanf(colon + 1, "%x %*s %x", &p, &st) == 2 && p == port && st == 0x0A)
			found = 1;
	}
	fclose(f);
	return found;
}

int svc_listening(const char *spec)
{
	struct stat st;
	uint64_t port;

	if (strncmp(spec, "unix:", 5) == 0)
		return stat(spec + 5, &st) == 0 && S_ISSOCK(st.st_mode);
	const char *colon = strrchr(spec, ':');
	if (colon == NULL || mk_parse_u64(colon + 1, 1, 65535, &port) < 0)
		return 0;
	return tcp_listens("/proc/net/tcp", (unsigned)port) ||
	       tcp_listens("/proc/net/tcp6", (unsigned)port);
}
