/* util — small helpers with no mail knowledge (see util.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"
#include "lib/xmalloc.h"

size_t mk_strlcpy(char *dst, const char *src, size_t dstsize)
{
	size_t len = strlen(src);

	if (dstsize > 0) {
		size_t n = len < dstsize - 1 ? len : dstsize - 1;
		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}

int mk_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *value_r)
{
	uint64_t v = 0;

	if (s == NULL || *s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		unsigned d;

		if (*s < '0' || *s > '9')
			return -1;
		d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (v < min || v > max)
		return -1;
	*value_r = v;
	return 0;
}

void mk_hex(const uint8_t *data, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[data[i] >> 4];
		out[2 * i + 1] = digits[data[i] & 0xf];
	}
	out[2 * len] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int mk_unhex(const char *hex, uint8_t *out, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		int hi, lo;

		if (hex[2 * i] == '\0' || hex[2 * i + 1] == '\0')
			return -1;
		hi = hexval(hex[2 * i]);
		lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

double mk_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double mk_monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Time in microseconds, pid and a per-process counter: unique within one host
 * as long as the clock does not step back within a process run. */
void mk_queue_id(char *buf, size_t size)
{
	static atomic_uint counter;
	struct timespec ts;
	unsigned n = atomic_fetch_add(&counter, 1);

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(buf, size, "%05lX%05lX%04X%04X", (unsigned long)ts.tv_sec & 0xfffff,
		 (unsigned long)(ts.tv_nsec / 1000) & 0xfffff, (unsigned)getpid() & 0xffff, n & 0xffff);
}

int mk_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int mk_read_file(const char *path, size_t max, char **data_r, size_t *len_r)
{
	char *data = NULL;
	size_t len = 0, cap = 0;
	int fd, saved;

	size_t limit = max > SIZE_MAX / 2 ? SIZE_MAX / 2 : max + 4096 + 1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	for (;;) {
		ssize_t n;

		if (cap - len < 4096 + 1) {
			size_t ncap = cap == 0 ? 8192 : cap * 2;
			if (ncap > limit)
				ncap = limit;
			if (ncap <= cap) {
				errno = EFBIG;
				goto fail;
			}
			data = xreallocarray(data, ncap, 1);
			cap = ncap;
		}
		n = read(fd, data + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			errno = EFBIG;
			goto fail;
		}
	}
	close(fd);
	data[len] = '\0';
	*data_r = data;
	if (len_r != NULL)
		*len_r = len;
	return 0;
fail:
	saved = errno;
	free(data);
	close(fd);
	errno = saved;
	return -1;
}

int mk_mkdirs(const char *path, mode_t mode)
{
	char tmp[4096];
	size_t len = mk_strlcpy(tmp, path, sizeof(tmp));
	char *p;
	struct stat st;

	if (len >= sizeof(tmp) || len == 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	while (len > 1 && tmp[len - 1] == '/')
		tmp[--len] = '\0';
	for (p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0) {
		if (errno != EEXIST)
			return -1;
		if (stat(tmp, &st) < 0)
			return -1;
		if (!S_ISDIR(st.st_mode)) {
			errno = ENOTDIR;
			return -1;
		}
	}
	return 0;
}
