/* base64 — RFC 4648 encoding and decoding (see base64.h). */
#include "lib/base64.h"

#include <stdint.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The 6-bit value of c, or -1 if c is not in the alphabet. */
static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Adds the 6 bits of v to acc; a whole byte goes to out[*o]. Returns 0, or -1
 * if out is full. */
static int push6(uint32_t *acc, int *bits, int v, unsigned char *out, size_t *o, size_t outsize)
{
	*acc = *acc << 6 | (uint32_t)v;
	*bits += 6;
	if (*bits >= 8) {
		*bits -= 8;
		if (*o >= outsize)
			return -1;
		out[(*o)++] = (unsigned char)(*acc >> *bits & 0xff);
	}
	return 0;
}

long base64_decode(const char *in, size_t len, unsigned char *out, size_t outsize)
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0, pad = 0;

	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '=') {
			if (i < len - 2)
				return -1;
			pad++;
			continue;
		}
		if (pad)
			return -1; /* data after padding */
		int v = b64val(c);
		if (v < 0 || push6(&acc, &bits, v, out, &o, outsize) < 0)
			return -1;
	}
	return (long)o;
}

long base64_decode_mime(const char *in, size_t len, unsigned char *out, size_t outsize)
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < len && in[i] != '='; i++) {
		int v = b64val((unsigned char)in[i]);
		if (v >= 0 && push6(&acc, &bits, v, out, &o, outsize) < 0)
			return -1;
	}
	return (long)o;
}

int base64_encode(const unsigned char *in, size_t len, char *out, size_t outsize)
{
	size_t o = 0;

	if (outsize < BASE64_ENCODED_SIZE(len))
		return -1;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		out[o++] = i + 1 < len ? alphabet[v >> 6 & 63] : '=';
		out[o++] = i + 2 < len ? alphabet[v & 63] : '=';
	}
	out[o] = 0;
	return 0;
}
