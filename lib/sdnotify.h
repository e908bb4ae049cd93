/* sdnotify — tells systemd how the service is doing (sd_notify(3)'s
 * protocol: one datagram of "KEY=value" lines to the Unix socket named by
 * $NOTIFY_SOCKET), for `Type=notify` units: "READY=1" once the services
 * answer, "RELOADING=1" / "READY=1" around a SIGHUP, "STOPPING=1",
 * "STATUS=..." for `systemctl status`.
 *
 * Why not libsystemd's sd_notify: the protocol is documented and kept
 * stable by systemd (sd_notify(3), "Notes"), it is twenty lines, and mailkeep
 * also runs where there is no systemd (a container, a BSD-style init, a
 * user's shell): no library to link for that.
 */
#ifndef MK_SDNOTIFY_H
#define MK_SDNOTIFY_H

/* Sends state. Returns 1 if sent, 0 when not started by systemd (no
 * $NOTIFY_SOCKET), -1 if the socket refused it (errno set). */
int sdnotify(const char *state);

#endif
