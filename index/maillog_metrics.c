/* maillog_metrics — the services count what they log (see maillog.h): one
 * parser decides what a rejection by greylisting is, for the counters of the
 * Prometheus endpoint and for the reports read from the log files. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "index/maillog.h"
#include "lib/metrics.h"

static void count(const char *series, const char *help)
{
	metrics_count(series, help, 1);
}

static void count_label(const char *family, const char *label, const char *value, const char *help)
{
	char series[METRICS_NAME_MAX], v[48];
	size_t i = 0;

	/* a label value from a fixed list, lower-cased, spaces and dashes as '_' */
	for (; value[i] != '\0' && i < sizeof(v) - 1; i++)
		v[i] = (value[i] == ' ' || value[i] == '-')
			   ? '_'
			   : (char)tolower((unsigned char)value[i]);
	v[i] = '\0';
	snprintf(series, sizeof(series), "%s{%s=\"%s\"}", family, label, v);
	metrics_count(series, help, 1);
}

void maillog_metrics_hook(int priority, const char *ident, const char *text)
{
	struct maillog_event ev;
	const char *slash = strrchr(ident, '/');
	const char *svc = slash != NULL ? slash + 1 : ident;

	metrics_log_hook(priority, ident, text);
	if (metrics_default() == NULL)
		return;
	if (priority <= 4 /* LOG_WARNING */)
		count_label("mailkeep_log_warnings_total", "service", svc,
			    "warnings (and worse) logged, by service");
	switch (maillog_parse_text(svc, text, &ev)) {
	case MLOG_CONNECT:
		count("mailkeep_smtp_connections_total", "SMTP and LMTP connections accepted");
		break;
	case MLOG_REJECT:
		count_label("mailkeep_smtp_rejections_total", "reason", maillog_class_name(ev.cls),
			    "SMTP commands rejected, by the class of the reason");
		break;
	case MLOG_POSTSCREEN:
		count_label("mailkeep_postscreen_failures_total", "test", ev.detail,
			    "postscreen tests failed, by test");
		break;
	case MLOG_PASS_NEW:
		count_label("mailkeep_postscreen_passes_total", "kind", "new",
			    "clients that passed postscreen (new) or were known to (old)");
		break;
	case MLOG_PASS_OLD:
		count_label("mailkeep_postscreen_passes_total", "kind", "old",
			    "clients that passed postscreen (new) or were known to (old)");
		break;
	case MLOG_DROPPED:
		count("mailkeep_postscreen_dropped_total", "clients postscreen hung up on");
		break;
	case MLOG_DELIVERED:
		count_label("mailkeep_deliveries_total", "mailbox", ev.junk ? "junk" : "inbox",
			    "messages stored for a recipient, by mailbox");
		count_label("mailkeep_spam_verdicts_total", "verdict",
			    ev.junk ? "spam" : "innocent", "spam filter verdicts at delivery");
		break;
	case MLOG_DEFERRED:
		count("mailkeep_deliveries_deferred_total",
		      "deliveries answered 4xx (the sender retries)");
		break;
	case MLOG_SASL_OK:
		count_label("mailkeep_smtp_auth_total", "result", "ok", "SMTP AUTH attempts");
		break;
	case MLOG_SASL_FAIL:
		count_label("mailkeep_smtp_auth_total", "result", "failed", "SMTP AUTH attempts");
		break;
	case MLOG_IMAP_CONNECT:
		count("mailkeep_imap_connections_total", "IMAP connections accepted");
		break;
	case MLOG_IMAP_LOGIN:
		count("mailkeep_imap_sessions_total", "IMAP sessions logged in");
		break;
	case MLOG_IMAP_AUTH_FAIL:
		count("mailkeep_imap_auth_failures_total", "IMAP logins refused");
		break;
	case MLOG_RETRAIN:
		count_label("mailkeep_spam_retrains_total", "class", ev.junk ? "spam" : "innocent",
			    "messages moved into (spam: missed) or out of (innocent) Junk");
		break;
	default:
		break;
	}
}
