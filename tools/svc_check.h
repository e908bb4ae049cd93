/* svc_check — is a service of this instance up and answering? Used by
 * `mailkeep status` (one line per service), `mailkeep status --wait` (the
 * demo waits for it) and `mailkeep run` (it tells systemd it is ready once
 * every service answers). A service's listeners are the *_listen settings of
 * its area in the settings registry ("... (mailkeep-smtpin)"), so a listener
 * added to a program's params.def is checked without a list here. */
#ifndef MK_TOOLS_SVC_CHECK_H
#define MK_TOOLS_SVC_CHECK_H

#include <stddef.h>

#include "lib/config.h"

struct svc_listener {
	char setting[64]; /* "smtpd_listen" */
	char spec[256];	  /* "127.0.0.1:2525", ":25", "unix:/run/mailkeep/lmtp" */
};

/* The listeners of the service binary bin ("mailkeep-smtpin") in cfg, at most
 * max into out; returns how many there are. */
size_t svc_listeners(struct config *cfg, const char *bin, struct svc_listener *out, size_t max);
/* 1 if something accepts a connection on spec within timeout seconds (a
 * listener on every address, ":25" or "0.0.0.0:25" or "[::]:25", is tried
 * on the loopback address). */
int svc_answers(const char *spec, double timeout);
/* 1 if a TCP socket listens on spec's port (/proc/net/tcp and tcp6), without
 * connecting: what the metrics endpoint asks at every scrape, so that a probe
 * every 15 s does not add "connect from" lines to the mail log. unix:
 * listeners: 1 if the socket file exists. */
int svc_listening(const char *spec);
/* 1 if every listener of bin answers (a service with none: 1). */
int svc_all_answer(struct config *cfg, const char *bin, double timeout);

#endif
