/* utf7 — modified UTF-7 (RFC 3501 5.1.3): '&' starts base64 of UTF-16BE with
 * ',' for '/', '-' ends it, "&-" is '&'; printable ASCII stands for itself. */
#include "lib/utf7.h"

#include <stdint.h>
#include <string.h>

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64val(char c)
{
	const char *p = c ? strchr(b64, c) : NULL;
	return p ? (int)(p - b64) : -1;
}

static int put_utf8(uint32_t cp, char *out, size_t outsize, size_t *o)
{
	unsigned char tmp[4];
	size_t n;
	if (cp < 0x80) {
		tmp[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		tmp[0] = (unsigned char)(0xc0 | cp >> 6);
		tmp[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		tmp[0] = (unsigned char)(0xe0 | cp >> 12);
		tmp[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		tmp[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		tmp[0] = (unsigned char)(0xf0 | cp >> 18);
		tmp[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		tmp[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		tmp[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	if (*o + n >= outsize)
		return -1;
	memcpy(out + *o, tmp, n);
	*o += n;
	return 0;
}

int utf7_to_utf8(const char *in, char *out, size_t outsize)
{
	size_t o = 0;
	const unsigned char *p = (const unsigned char *)in;
	if (outsize == 0)
		return -1;
	while (*p) {
		if (*p < 0x20 || *p > 0x7e)
			return -1;
		if (*p != '&') {
			if (o + 1 >= outsize)
				return -1;
			out[o++] = (char)*p++;
			continue;
		}
		p++;
		if (*p == '-') {
			if (o + 1 >= outsize)
				return -1;
			out[o++] = '&';
			p++;
			continue;
		}
		uint32_t bits = 0;
		int nbits = 0;
		uint32_t high = 0; /* pending high surrogate */
		int units = 0;
		while (*p != '-') {
			int v = b64val((char)*p);
			if (v < 0)
				return -1;
			p++;
			bits = bits << 6 | (uint32_t)v;
			nbits += 6;
			if (nbits >= 16) {
				nbits -= 16;
				uint32_t u = (bits >> nbits) & 0xffff;
				units++;
				if (high) {
					if (u < 0xdc00 || u > 0xdfff)
						return -1;
					uint32_t cp =
					    0x10000 + ((high - 0xd800) << 10) + (u - 0xdc00);
					high = 0;
					if (put_utf8(cp, out, outsize, &o) < 0)
						return -1;
				} else if (u >= 0xd800 && u <= 0xdbff) {
					high = u;
				} else if (u >= 0xdc00 && u <= 0xdfff) {
					return -1;
				} else {
					if (u >= 0x20 && u <= 0x7e)
						return -1; /* must not be encoded */
					if (u == 0)
						return -1;
					if (put_utf8(u, out, outsize, &o) < 0)
						return -1;
				}
			}
		}
		p++; /* '-' */
		/* leftover bits must be zero padding, fewer than 6 */
		if (units == 0 || high || nbits >= 6 || (bits & ((1u << nbits) - 1)) != 0)
			return -1;
	}
	out[o] = '\0';
	return 0;
}

/* Reads one UTF-8 sequence; returns its code point or -1. */
static int32_t get_utf8(const unsigned char **pp)
{
	const unsigned char *p = *pp;
	uint32_t cp;
	int n;
	if (p[0] < 0x80) {
		*pp = p + 1;
		return p[0];
	} else if ((p[0] & 0xe0) == 0xc0) {
		cp = p[0] & 0x1f;
		n = 1;
	} else if ((p[0] & 0xf0) == 0xe0) {
		cp = p[0] & 0x0f;
		n = 2;
	} else if ((p[0] & 0xf8) == 0xf0) {
		cp = p[0] & 0x07;
		n = 3;
	} else {
		return -1;
	}
	for (int i = 1; i <= n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return -1;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
	if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*pp = p + n + 1;
	return (int32_t)cp;
}

int utf8_to_utf7(const char *in, char *out, size_t outsize)
{
	size_t o = 0;
	const unsigned char *p = (const unsigned char *)in;
#define PUT(c)                                                                                     \
	do {                                                                                       \
		if (o + 1 >= outsize)                                                              \
			return -1;                                                                 \
		out[o++] = (c);                                                                    \
	} while (0)
	if (outsize == 0)
		return -1;
	while (*p) {
		if (*p >= 0x20 && *p <= 0x7e) {
			PUT((char)*p);
			if (*p == '&')
				PUT('-');
			p++;
			continue;
		}
		PUT('&');
		uint32_t bits = 0;
		int nbits = 0;
		while (*p && !(*p >= 0x20 && *p <= 0x7e)) {
			int32_t cp = get_utf8(&p);
			if (cp <= 0)
				return -1;
			uint16_t units[2];
			int nu = 1;
			if (cp >= 0x10000) {
				units[0] = (uint16_t)(0xd800 + ((cp - 0x10000) >> 10));
				units[1] = (uint16_t)(0xdc00 + ((cp - 0x10000) & 0x3ff));
				nu = 2;
			} else {
				units[0] = (uint16_t)cp;
			}
			for (int i = 0; i < nu; i++) {
				bits = bits << 16 | units[i];
				nbits += 16;
				while (nbits >= 6) {
					nbits -= 6;
					PUT(b64[(bits >> nbits) & 0x3f]);
				}
			}
		}
		if (nbits > 0)
			PUT(b64[(bits << (6 - nbits)) & 0x3f]);
		PUT('-');
	}
	out[o] = '\0';
#undef PUT
	return 0;
}
