/* cmd_idle — IDLE (RFC 2177). The session thread waits on the client socket
 * and the store's change notification (notify.c: one inotify watch for the
 * process, woken by any commit of any process — smtpin, the mount, another
 * IMAP session — passed on through an eventfd), and tells the client at once.
 * Without a notification it looks once a second. */
#include <strings.h>
#include <unistd.h>

#include "imapd/notify.h"
#include "imapd/session.h"
#include "lib/util.h"

void cmd_idle(struct session *s, struct imap_command *cmd)
{
	(void)cmd;
	size_t cmdlen = sess_current_cmdlen();
	int watch = notify_subscribe();
	double start = mk_monotonic(), last_ok = start;
	io_puts(&s->io, "+ idling\r\n");
	sess_sync(s, 1);
	if (io_flush(&s->io) < 0)
		goto out;
	for (;;) {
		int r = io_wait(&s->io, watch, 1000);
		double now = mk_monotonic();
		if (r < 0)
			break;
		if (r == 2) {
			notify_drain(watch);
			sess_sync(s, 1);
			sess_notify_check(s, 0); /* NOTIFY: the other mailboxes */
		} else if (r == 0) {
			if (watch < 0)
				sess_sync(s, 1);
			if (now - last_ok >= s->d->idle_interval) {
				sess_untagged(s, "OK Still here");
				last_ok = now;
			}
			if (now - start > s->d->timeout) {
				sess_untagged(s, "BYE Autologout; idle for too long");
				s->state = S_LOGOUT;
				break;
			}
		} else {
			char *line;
			if (sess_read_line(s, cmdlen, &line) < 0) {
				s->state = S_LOGOUT;
				break;
			}
			if (strcasecmp(line, "DONE") == 0) {
				sess_tagged(s, "OK", "Idle completed.");
				break;
			}
			sess_tagged(s, "BAD", "Expected DONE");
			break;
		}
		if (s->state == S_LOGOUT || io_flush(&s->io) < 0)
			break;
	}
out:
	notify_unsubscribe(watch);
}
