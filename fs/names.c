/* names — Maildir file names: parse and format (see names.h). */
#include "fs/names.h"

#include <string.h>

static const struct {
	char letter;
	uint32_t flag;
} flag_letters[] = {
    /* ASCII order, as the Maildir spec wants */
    {'D', STORE_F_DRAFT},    {'F', STORE_F_FLAGGED}, {'P', 0},
    {'R', STORE_F_ANSWERED}, {'S', STORE_F_SEEN},    {'T', STORE_F_DELETED},
};

int mdname_base_valid(const char *base, size_t len)
{
	if (len == 0 || len >= STORE_BASE_MAX)
		return 0;
	if ((len == 1 && base[0] == '.') || (len == 2 && base[0] == '.' && base[1] == '.'))
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)base[i];
		if (c < 0x20 || c == 0x7f || c == '/' || c == ',' || c == ':')
			return 0;
	}
	return 1;
}

static int parse_u64(const char *s, size_t len, uint64_t *v_r)
{
	uint64_t v = 0;
	if (len == 0 || len > 20)
		return -1;
	for (size_t i = 0; i < len; i++) {
		uint64_t d = (uint64_t)(s[i] - '0');
		if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*v_r = v;
	return 0;
}

int mdname_parse(const char *name, size_t len, struct mdname *r)
{
	size_t i = 0, blen;

	memset(r, 0, sizeof(*r));
	if (len == 0 || len > MDNAME_MAX)
		return -1;
	for (size_t k = 0; k < len; k++) {
		unsigned char c = (unsigned char)name[k];
		if (c < 0x20 || c == 0x7f || c == '/')
			return -1;
	}
	while (i < len && name[i] != ',' && name[i] != ':')
		i++;
	blen = i;
	if (!mdname_base_valid(name, blen))
		return -1;
	memcpy(r->base, name, blen);
	r->base[blen] = '\0';

	/* ",X=value" fields up to ':' */
	while (i < len && name[i] == ',') {
		size_t start = ++i;
		r->nfields++;
		while (i < len && name[i] != ',' && name[i] != ':')
			i++;
		if (i - start >= 2 && name[start] == 'S' && name[start + 1] == '=') {
			if (r->has_size || parse_u64(name + start + 2, i - start - 2, &r->size) < 0)
				return -1;
			r->has_size = 1;
		}
	}
	{
		size_t k = i;
		memcpy(r->stem, name, i);
		r->stem[i] = '\0';
		/* a trailing ",S=<digits>" the mount adds to bases holding ',' */
		while (k > blen && name[k - 1] >= '0' && name[k - 1] <= '9')
			k--;
		if (k < i && k >= blen + 3 && memcmp(name + k - 3, ",S=", 3) == 0 && k - 3 > blen) {
			memcpy(r->stem2, name, k - 3);
			r->stem2[k - 3] = '\0';
		}
	}
	if (i == len)
		return 0;
	/* name[i] == ':' */
	if (len - i < 3 || name[i + 1] != '2' || name[i + 2] != ',')
		return -1;
	r->has_info = 1;
	for (i += 3; i < len; i++) {
		char c = name[i];
		if (c >= 'a' && c <= 'z')
			continue; /* a keyword letter: not kept */
		if (c < 'A' || c > 'Z')
			return -1;
		for (size_t k = 0; k < sizeof(flag_letters) / sizeof(flag_letters[0]); k++)
			if (flag_letters[k].letter == c)
				r->flags |= flag_letters[k].flag;
	}
	return 0;
}

size_t mdname_flags(uint32_t flags, char *out)
{
	size_t n = 0;
	for (size_t k = 0; k < sizeof(flag_letters) / sizeof(flag_letters[0]); k++)
		if (flag_letters[k].flag && (flags & flag_letters[k].flag))
			out[n++] = flag_letters[k].letter;
	out[n] = '\0';
	return n;
}

/* A store base the mount can show: no '/', ':' or control bytes. */
static int store_base_ok(const char *base, size_t len)
{
	if (len == 0 || len >= STORE_BASE_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)base[i];
		if (c < 0x20 || c == 0x7f || c == '/' || c == ':')
			return 0;
	}
	return 1;
}

int mdname_format(char *out, size_t outsize, const char *base, uint64_t size, uint32_t flags)
{
	char letters[8], num[24];
	size_t blen = strlen(base), nlen = 0, flen, total, pos;
	uint64_t v = size;
	int with_size = strstr(base, ",S=") == NULL;

	if (!store_base_ok(base, blen) || !mdname_base_valid(base, strcspn(base, ",")))
		return -1;
	do {
		num[sizeof(num) - 1 - nlen++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	flen = mdname_flags(flags, letters);
	total = blen + (with_size ? 3 + nlen : 0) + 3 + flen;
	if (total >= outsize || total > MDNAME_MAX)
		return -1;
	memcpy(out, base, blen);
	pos = blen;
	if (with_size) {
		memcpy(out + pos, ",S=", 3);
		memcpy(out + pos + 3, num + sizeof(num) - nlen, nlen);
		pos += 3 + nlen;
	}
	memcpy(out + pos, ":2,", 3);
	memcpy(out + pos + 3, letters, flen);
	out[total] = '\0';
	return (int)total;
}

int mdname_matches(const struct mdname *name, const char *base, uint64_t size, uint32_t flags)
{
	if (strcmp(name->base, base) == 0) {
		if (name->has_size && name->size != size)
			return 0;
	} else if (name->stem[0] != '\0' && strcmp(name->stem, base) == 0) {
		/* a base with its own fields ("X,S=1,W=2"): the name is the base */
	} else if (name->stem2[0] != '\0' && strcmp(name->stem2, base) == 0) {
		if (name->size != size)
			return 0;
	} else {
		return 0;
	}
	return (name->flags & MDNAME_FLAGS_MASK) == (flags & MDNAME_FLAGS_MASK);
}

int mdname_candidates(const struct mdname *name, const char *bases_r[3])
{
	int n = 0;
	bases_r[n++] = name->base;
	if (name->stem[0] && strcmp(name->stem, name->base) != 0)
		bases_r[n++] = name->stem;
	if (name->stem2[0] && strcmp(name->stem2, name->base) != 0)
		bases_r[n++] = name->stem2;
	return n;
}

const char *mdname_new_base(const struct mdname *name)
{
	if (name->nfields == 0 || (name->nfields == 1 && name->has_size))
		return name->base;
	return strlen(name->stem) < STORE_BASE_MAX ? name->stem : NULL;
}
