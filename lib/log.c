/* log — Postfix-shaped logging to syslog (LOG_MAIL) or stderr (see log.h).
 *
 * To stderr each line gets the prefix a syslog daemon (and Postfix's
 * maillog_file) writes, host name included, so that pflogsumm and fail2ban
 * read a captured stderr as they read /var/log/mail.log:
 *   Nov 23 19:05:12 mx mailkeep/smtpin[123]: warning: ...
 * Messages are formatted into one bounded buffer and written with a single
 * write(2), so lines from several threads or processes do not interleave. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

#define LOG_LINE_MAX 4096

static const char *log_ident = "mailkeep";
static enum log_target log_target_now = LOG_TO_STDERR;
static int log_verbose;
static void (*log_hook)(int priority, const char *ident, const char *text);
static pthread_once_t host_once = PTHREAD_ONCE_INIT;
static char log_host[64] = "localhost";

/* The host name as syslog writes it: the first label only. */
static void host_init(void)
{
	char h[256];

	if (gethostname(h, sizeof(h)) != 0)
		return;
	h[sizeof(h) - 1] = '\0';
	h[strcspn(h, ". \t\r\n")] = '\0';
	if (h[0] != '\0' && strlen(h) < sizeof(log_host))
		memcpy(log_host, h, strlen(h) + 1);
}

void log_open(const char *ident, enum log_target target)
{
	if (ident != NULL)
		log_ident = ident;
	log_target_now = target;
	if (target == LOG_TO_SYSLOG)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void log_set_hook(void (*hook)(int priority, const char *ident, const char *text))
{
	log_hook = hook;
}

void log_set_verbose(int verbose)
{
	log_verbose = verbose;
}

/* Lines of another service than the process's own ident ("mailkeep/smtpd"
 * from "mailkeep/smtpin") go to syslog through a socket of our own, since
 * syslog(3) takes one ident per process; -1 if /dev/log cannot be used
 * (those lines then go through syslog(3) with the process's ident). */
static pthread_once_t devlog_once = PTHREAD_ONCE_INIT;
static int devlog_fd = -1;

static void devlog_init(void)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return;
	memcpy(sun.sun_path, "/dev/log", sizeof("/dev/log"));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		close(fd);
		return;
	}
	devlog_fd = fd;
}

/* ident of svc: the process's ident with its last component replaced. */
static void svc_ident(char *out, size_t outsize, const char *svc)
{
	const char *slash = strrchr(log_ident, '/');
	int base = slash ? (int)(slash - log_ident) + 1 : 0;

	if (svc == NULL)
		snprintf(out, outsize, "%s", log_ident);
	else
		snprintf(out, outsize, "%.*s%s", base, log_ident, svc);
}

/* prefix is "" for info, "warning: ", "fatal: ", "panic: " as Postfix writes
 * them; svc is NULL for the process's own ident, or the service to log as. */
static void log_vwrite(int priority, const char *svc, const char *prefix, const char *fmt,
		       va_list ap)
{
	char line[LOG_LINE_MAX], ident[128];
	size_t off = 0, head = 0;
	int n, saved = errno;
	int own_socket = svc != NULL && log_target_now == LOG_TO_SYSLOG;

	svc_ident(ident, sizeof(ident), svc);
	if (own_socket)
		pthread_once(&devlog_once, devlog_init);
	if (log_target_now == LOG_TO_STDERR || (own_socket && devlog_fd >= 0)) {
		struct timespec ts;
		struct tm tm;

		pthread_once(&host_once, host_init);
		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		if (log_target_now == LOG_TO_SYSLOG) /* as syslog(3) sends it: no host name */
			off = (size_t)snprintf(line, sizeof(line), "<%d>", LOG_MAIL | priority);
		off += strftime(line + off, sizeof(line) - off, "%b %e %H:%M:%S ", &tm);
		if (log_target_now == LOG_TO_SYSLOG)
			n = snprintf(line + off, sizeof(line) - off, "%s[%ld]: ", ident,
				     (long)getpid());
		else
			n = snprintf(line + off, sizeof(line) - off, "%s %s[%ld]: ", log_host,
				     ident, (long)getpid());
		if (n > 0)
			off += (size_t)n < sizeof(line) - off ? (size_t)n : sizeof(line) - off - 1;
		head = off;
	}
	n = snprintf(line + off, sizeof(line) - off, "%s", prefix);
	if (n > 0)
		off += (size_t)n < sizeof(line) - off ? (size_t)n : sizeof(line) - off - 1;
	errno = saved; /* so that %m works */
	n = vsnprintf(line + off, sizeof(line) - off, fmt, ap);
	if (n > 0)
		off += (size_t)n < sizeof(line) - off ? (size_t)n : sizeof(line) - off - 1;
	line[off] = '\0';
	if (log_hook != NULL && priority <= LOG_INFO)
		log_hook(priority, ident, line + head);

	if (log_target_now == LOG_TO_SYSLOG && head > 0) {
		if (send(devlog_fd, line, off, MSG_NOSIGNAL) < 0)
			syslog(priority, "%s", line + head);
	} else if (log_target_now == LOG_TO_SYSLOG) {
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
	log_vwrite(LOG_INFO, NULL, "", fmt, ap);
	va_end(ap);
}

void log_info_as(const char *svc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_INFO, svc, "", fmt, ap);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_WARNING, NULL, "warning: ", fmt, ap);
	va_end(ap);
}

void log_warn_as(const char *svc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_WARNING, svc, "warning: ", fmt, ap);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_verbose)
		return;
	va_start(ap, fmt);
	log_vwrite(LOG_DEBUG, NULL, "", fmt, ap);
	va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_CRIT, NULL, "fatal: ", fmt, ap);
	va_end(ap);
	exit(1);
}

void log_panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_CRIT, NULL, "panic: ", fmt, ap);
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
