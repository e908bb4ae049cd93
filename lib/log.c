/* log — Postfix-shaped logging to syslog (LOG_MAIL) or stderr (see log.h).
 *
 * To stderr each line gets a prefix as Postfix's postlog writes it:
 *   Nov 23 19:05:12 mailkeep/smtpin[123]: warning: ...
 * Messages are formatted into one bounded buffer and written with a single
 * write(2), so lines from several threads or processes do not interleave. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

#define LOG_LINE_MAX 4096

static const char *log_ident = "mailkeep";
static enum log_target log_target_now = LOG_TO_STDERR;
static int log_verbose;

void log_open(const char *ident, enum log_target target)
{
	if (ident != NULL)
		log_ident = ident;
	log_target_now = target;
	if (target == LOG_TO_SYSLOG)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void log_set_verbose(int verbose)
{
	log_verbose = verbose;
}

/* prefix is "" for info, "warning: ", "fatal: ", "panic: " as Postfix writes them. */
static void log_vwrite(int priority, const char *prefix, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t off = 0;
	int n, saved = errno;

	if (log_target_now == LOG_TO_STDERR) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		off = strftime(line, sizeof(line), "%b %e %H:%M:%S ", &tm);
		n = snprintf(line + off, sizeof(line) - off, "%s[%ld]: ", log_ident, (long)getpid());
		if (n > 0)
			off += (size_t)n < sizeof(line) - off ? (size_t)n : sizeof(line) - off - 1;
	}
	n = snprintf(line + off, sizeof(line) - off, "%s", prefix);
	if (n > 0)
		off += (size_t)n < sizeof(line) - off ? (size_t)n : sizeof(line) - off - 1;
	errno = saved; /* so that %m works */
	n = vsnprintf(line + off, sizeof(line) - off, fmt, ap);
	if (n > 0)
		off += (size_t)n < sizeof(line) - off ? (size_t)n : sizeof(line) - off - 1;

	if (log_target_now == LOG_TO_SYSLOG) {
		syslog(priority, "%s", line);
	} else {
		ssize_t w;

		line[off++] = '\n';
		if (off > sizeof(line) - 1) {
			off = sizeof(line);
			line[off - 1] = '\n';
		}
		do
			w = write(STDERR_FILENO, line, off);
		while (w < 0 && errno == EINTR);
	}
	errno = saved;
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_INFO, "", fmt, ap);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_WARNING, "warning: ", fmt, ap);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_verbose)
		return;
	va_start(ap, fmt);
	log_vwrite(LOG_DEBUG, "", fmt, ap);
	va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_CRIT, "fatal: ", fmt, ap);
	va_end(ap);
	exit(1);
}

void log_panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_CRIT, "panic: ", fmt, ap);
	va_end(ap);
	abort();
}

char *log_printable(char *dst, size_t dstsize, const char *src, size_t len)
{
	size_t i, o = 0;

	if (dstsize == 0)
		return dst;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];

		if (o + 1 >= dstsize) {
			/* Full: end with "..." if there is room for it. */
			if (dstsize >= 4) {
				o = dstsize - 4;
				memcpy(dst + o, "...", 3);
				o += 3;
			}
			break;
		}
		dst[o++] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	dst[o] = '\0';
	return dst;
}
