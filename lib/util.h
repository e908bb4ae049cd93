/* util — small helpers with no mail knowledge. */
#ifndef MK_UTIL_H
#define MK_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Copies src into dst (size dstsize), always NUL-terminating. Returns strlen(src);
 * a result >= dstsize means it was truncated (as strlcpy). */
size_t mk_strlcpy(char *dst, const char *src, size_t dstsize);
/* Parses a whole decimal unsigned number in [min, max]. Returns 0 or -1. */
int mk_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *value_r);
/* Lower-case hex of len bytes into out (size >= 2*len+1). */
void mk_hex(const uint8_t *data, size_t len, char *out);
/* Parses 2*len hex digits. Returns 0 or -1. */
int mk_unhex(const char *hex, uint8_t *out, size_t len);
/* Seconds since the epoch, with fractions, from CLOCK_REALTIME / CLOCK_MONOTONIC. */
double mk_now(void);
double mk_monotonic(void);
/* A Postfix-like queue id: 10+ upper-case hex characters, unique per process run.
 * buf must hold at least 24 bytes. */
void mk_queue_id(char *buf, size_t size);
/* Writes all of len bytes, retrying on EINTR and short writes. Returns 0 or -1 (errno). */
int mk_write_all(int fd, const void *data, size_t len);
/* Reads a whole file of at most max bytes into *data_r (malloc'ed, NUL-terminated).
 * Returns 0, or -1 with errno (EFBIG when over max). */
int mk_read_file(const char *path, size_t max, char **data_r, size_t *len_r);
/* mkdir -p with mode. Returns 0 or -1 (errno). */
int mk_mkdirs(const char *path, mode_t mode);

#endif
