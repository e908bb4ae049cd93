/* maillog — what one log line of mailkeep's services says, for the numbers:
 * `mailkeep stats --smtp` and `mailkeep report` read the log files (days of
 * history), and the services count the same events as they log them (the
 * shared counters of lib/metrics.h, scraped by Prometheus), so that a
 * rejection by DNSBL is one definition everywhere.
 *
 * The lines are Postfix-shaped (lib/log.h): smtpin logs as
 * <syslog_name>/smtpd (sessions), /postscreen, /qmgr and /local (deliveries),
 * imapd as /imapd. A pure parser: no I/O, no allocation.
 *
 *   connect from unknown[192.0.2.7]                              MLOG_CONNECT
 *   NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 450 4.2.0 <bob@example.org>:
 *     Recipient address rejected: Greylisted ...; from=<a@b> to=<...>   MLOG_REJECT, class greylist
 *   PREGREET 11 after 0.20 from [192.0.2.7]:4711: EHLO x         MLOG_POSTSCREEN (test PREGREET)
 *   4F1A: from=<a@b.example>, size=812, nrcpt=1 (queue active)   MLOG_QUEUED (sender)
 *   4F1A: to=<bob@...>, ..., status=sent (delivered to Junk mailbox of bob)   MLOG_DELIVERED, junk
 *   S12: login: user=<bob>, method=PLAIN, rip=...                 MLOG_IMAP_LOGIN
 *   spam: retrain: user=<bob>, class=spam, ...                    MLOG_RETRAIN
 */
#ifndef MK_MAILLOG_H
#define MK_MAILLOG_H

#include <stddef.h>
#include <stdint.h>

enum maillog_kind {
	MLOG_NONE = 0,	     /* a line of no interest */
	MLOG_CONNECT,	     /* smtpd: connect from CLIENT */
	MLOG_REJECT,	     /* smtpd: reject: ...: detail = the reason key, client, cls */
	MLOG_POSTSCREEN,     /* postscreen: a test failed (detail = the test) */
	MLOG_PASS_NEW,	     /* postscreen: PASS NEW */
	MLOG_PASS_OLD,	     /* postscreen: PASS OLD */
	MLOG_ALLOWLISTED,    /* postscreen: ALLOWLISTED */
	MLOG_DROPPED,	     /* postscreen: DISCONNECT (the client was dropped) */
	MLOG_QUEUED,	     /* qmgr: from=<SENDER> (sender in detail) */
	MLOG_DELIVERED,	     /* local: status=sent (junk: into the Junk mailbox) */
	MLOG_DEFERRED,	     /* local: status=deferred */
	MLOG_SASL_OK,	     /* smtpd: client=..., sasl_username=... */
	MLOG_SASL_FAIL,	     /* smtpd: SASL ... authentication failed (client in detail) */
	MLOG_IMAP_CONNECT,   /* imapd: connect from [ADDR] */
	MLOG_IMAP_LOGIN,     /* imapd: login: user=<...> */
	MLOG_IMAP_AUTH_FAIL, /* imapd: IMAP authentication failed */
	MLOG_RETRAIN,	     /* a message moved into or out of Junk: retrained (junk: as spam) */
	MLOG_KINDS
};

/* The class of a rejection, for charts and counters. */
enum maillog_class {
	MLOG_CLASS_OTHER = 0,  /* HELO, sender, client access, size, syntax: the rest */
	MLOG_CLASS_POSTSCREEN, /* enforced after a postscreen test failed */
	MLOG_CLASS_DNSBL,      /* "blocked using" a DNS block list */
	MLOG_CLASS_GREYLIST,
	MLOG_CLASS_UNKNOWN_USER,
	MLOG_CLASS_RELAY, /* relay access denied */
	MLOG_CLASSES
};

#define MLOG_DETAIL_MAX 160

struct maillog_event {
	enum maillog_kind kind;
	enum maillog_class cls;	      /* MLOG_REJECT */
	int junk;		      /* MLOG_DELIVERED: into Junk; MLOG_RETRAIN: as spam */
	char detail[MLOG_DETAIL_MAX]; /* see enum maillog_kind */
	char client[MLOG_DETAIL_MAX]; /* MLOG_REJECT, MLOG_CONNECT: "host[addr]" */
};

/* The text of a line (after "ident[pid]: "), logged by service svc (the
 * ident's last part: "smtpd", "postscreen", "qmgr", "local", "imapd",
 * "spam"). Returns ev->kind. */
enum maillog_kind maillog_parse_text(const char *svc, const char *text, struct maillog_event *ev);
/* A whole line as a log file or journalctl holds it ("Dec  3 08:19:29 host
 * mailkeep/smtpd[123]: ..."): finds the ident of a mailkeep service, then
 * parses the text. Returns ev->kind; MLOG_NONE for other programs' lines. */
enum maillog_kind maillog_parse_line(const char *line, struct maillog_event *ev);
/* The time at the start of a line, as seconds since the epoch: RFC 3339
 * ("2026-12-03T08:19:29.123+01:00", rsyslog's and journalctl -o short-iso's),
 * or the traditional syslog form ("Dec  3 08:19:29", local time, taken in
 * the year that puts it at most a day after now). Returns 0 or -1. */
int maillog_time(const char *line, int64_t now, int64_t *t_r);
/* A log hook (lib/log.h's log_set_hook) for the services: keeps warnings as
 * metrics_log_hook does, and counts each event of the line in the default
 * table of shared counters (lib/metrics.h): mailkeep_smtp_connections_total,
 * mailkeep_smtp_rejections_total{reason="<class>"},
 * mailkeep_postscreen_failures_total{test="pregreet"}, mailkeep_deliveries_total
 * {mailbox="inbox|junk"}, mailkeep_spam_verdicts_total{verdict="spam|innocent"},
 * mailkeep_spam_retrains_total{class="spam|innocent"},
 * mailkeep_imap_sessions_total, ... (doc/ops.md lists them all). So the
 * counters and the reports of the logs agree by construction. */
void maillog_metrics_hook(int priority, const char *ident, const char *text);
/* "postscreen", "dnsbl", "greylist", "unknown_user", "relay", "policy", "other" */
const char *maillog_class_name(enum maillog_class c);

#endif
