/* log — Postfix-shaped logging to syslog (LOG_MAIL) or stderr.
 *
 * Lines look like Postfix's so pflogsumm and fail2ban read them:
 *   mailkeep/local[123]: 4F1A2B3C: to=<bob@example.org>, relay=local, delay=0.2, dsn=2.0.0,
 * status=sent log_info/log_warn report; log_fatal is for a broken environment (exits 1); log_panic
 * for a broken invariant of ours (aborts). Untrusted text must go through log_printable before it
 * is logged.
 */
#ifndef MK_LOG_H
#define MK_LOG_H

#include <stddef.h>

enum log_target { LOG_TO_STDERR, LOG_TO_SYSLOG };

/* ident is e.g. "mailkeep/smtpin"; the string must outlive logging. */
void log_open(const char *ident, enum log_target target);
void log_set_verbose(int verbose);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* As log_info/log_warn, in the name of another service of the same program:
 * the ident's last component replaced by svc ("mailkeep/smtpin" logs its
 * sessions as "mailkeep/smtpd", its queue lines as "mailkeep/qmgr"), so
 * pflogsumm and fail2ban find the lines where Postfix's would be. */
void log_info_as(const char *svc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_warn_as(const char *svc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void log_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Called with every line but debug ones after it is written: its syslog
 * priority, the ident it was logged as ("mailkeep/smtpd"), and the text after
 * the ident ("warning: ..." for a warning). The services count what they log
 * with it (index/maillog.h) and keep the last warnings (lib/metrics.h). It
 * must not log. NULL: none. */
void log_set_hook(void (*hook)(int priority, const char *ident, const char *text));

/* Copies at most len bytes of untrusted src into dst (size dstsize, always
 * NUL-terminated), replacing control and non-ASCII bytes by '?', and stopping
 * (with "...") when dst is full. Returns dst, so it can be used inline. */
char *log_printable(char *dst, size_t dstsize, const char *src, size_t len);

#endif
