/* maildir_name — "<base>:2,<flags>" <-> base + store flags (see maildir_name.h). */
#include <string.h>

#include "index/maildir_name.h"
#include "index/store.h"

static const struct {
	char letter;
	uint32_t flag;
} letters[] = {
    /* in ASCII order, as the Maildir spec wants them written */
    {'D', STORE_F_DRAFT},    {'F', STORE_F_FLAGGED}, {'P', 0},
    {'R', STORE_F_ANSWERED}, {'S', STORE_F_SEEN},    {'T', STORE_F_DELETED},
};

static int has_keyword(const char *keywords, const char *kw)
{
	size_t n = strlen(kw);
	const char *p = keywords;

	while (p != NULL && *p != '\0') {
		while (*p == ' ')
			p++;
		const char *end = strchr(p, ' ');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (len == n && strncasecmp(p, kw, n) == 0)
			return 1;
		p = end;
	}
	return 0;
}

int maildir_name_parse(const char *name, char *base_r, size_t basesize, uint32_t *flags_r,
		       int *forwarded_r)
{
	const char *info;
	size_t baselen;
	uint32_t flags = 0;
	int forwarded = 0;

	if (name[0] == '\0' || name[0] == '.')
		return -1;
	for (const char *p = name; *p != '\0'; p++)
		if (*p == '/' || (unsigned char)*p < 0x20 || *p == 0x7f)
			return -1;
	info = strrchr(name, ':');
	baselen = info != NULL ? (size_t)(info - name) : strlen(name);
	if (baselen == 0 || baselen >= basesize)
		return -1;
	if (info != NULL && strncmp(info, ":2,", 3) == 0) {
		for (const char *p = info + 3; *p != '\0'; p++) {
			for (size_t i = 0; i < sizeof(letters) / sizeof(letters[0]); i++) {
				if (letters[i].letter != *p)
					continue;
				flags |= letters[i].flag;
				if (*p == 'P')
					forwarded = 1;
			}
		}
	}
	memcpy(base_r, name, baselen);
	base_r[baselen] = '\0';
	*flags_r = flags;
	if (forwarded_r != NULL)
		*forwarded_r = forwarded;
	return 0;
}

int maildir_name_format(const char *base, uint32_t flags, const char *keywords, char *out,
			size_t outsize)
{
	size_t len = strlen(base);
	size_t pos;

	if (len + 3 + 6 + 1 > outsize)
		return -1;
	memcpy(out, base, len);
	memcpy(out + len, ":2,", 3);
	pos = len + 3;
	for (size_t i = 0; i < sizeof(letters) / sizeof(letters[0]); i++) {
		int on = letters[i].letter == 'P'
			     ? keywords != NULL && has_keyword(keywords, MAILDIR_KW_FORWARDED)
			     : (flags & letters[i].flag) != 0;
		if (on)
			out[pos++] = letters[i].letter;
	}
	out[pos] = '\0';
	return 0;
}

int maildir_base_valid(const char *base)
{
	size_t len = strlen(base);

	if (len == 0 || len >= STORE_BASE_MAX || base[0] == '.')
		return 0;
	for (const char *p = base; *p != '\0'; p++)
		if (*p == '/' || *p == ':' || (unsigned char)*p <= 0x20 ||
		    (unsigned char)*p == 0x7f)
			return 0;
	return 1;
}
