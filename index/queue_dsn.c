/* queue_dsn — delivery status notifications (RFC 3464 in an RFC 6522
 * multipart/report), the shape Postfix's bounce daemon writes: a text part a
 * person reads, the machine-readable message/delivery-status part, and the
 * original message (whole up to bounce_size_limit, else its header only, as
 * text/rfc822-headers; a delay warning always carries the header only).
 * Never for the null sender: a notification about a notification would loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "index/queue.h"
#include "lib/buf.h"
#include "lib/util.h"

#define DSN_MAX_TEXT (1u << 20)

static void rfc5322_date(int64_t t, char *out, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	localtime_r(&tt, &tm);
	strftime(out, size, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* Bytes of the original's header: up to the first empty line (CRLF CRLF). */
static size_t header_len(const char *data, size_t len)
{
	for (size_t i = 0; i + 3 < len; i++)
		if (data[i] == '\r' && data[i + 1] == '\n' && data[i + 2] == '\r' &&
		    data[i + 3] == '\n')
			return i + 2;
	return len;
}

/* The Diagnostic-Code's text on one line: printable ASCII only. */
static void one_line(char *dst, size_t size, const char *src)
{
	size_t i = 0;

	for (; src && *src && i + 1 < size; src++) {
		unsigned char c = (unsigned char)*src;
		dst[i++] = (c < 0x20 || c >= 0x7f) ? ' ' : (char)c;
	}
	dst[i] = 0;
}

/* "smtp; 550 ..." when the text is a remote reply, else "X-mailkeep; ...". */
static int is_smtp_reply(const char *why)
{
	return why && strlen(why) >= 4 && why[0] >= '2' && why[0] <= '5' && why[1] >= '0' &&
	       why[1] <= '9' && why[2] >= '0' && why[2] <= '9' && (why[3] == ' ' || why[3] == '-');
}

int queue_dsn_make(const struct queue_dsn *d, char **data_r, size_t *len_r)
{
	struct buf b;
	char date[64], arrival[64], boundary[80], until[64];
	int64_t now = d->now ? d->now : (int64_t)time(NULL);
	size_t hlen = header_len(d->orig, d->orig_len);
	int whole = !d->delayed && d->orig_len <= d->return_limit;

	*data_r = NULL;
	*len_r = 0;
	if (d->sender == NULL || d->sender[0] == 0)
		return STORE_EINVAL;
	rfc5322_date(now, date, sizeof(date));
	rfc5322_date(d->arrival, arrival, sizeof(arrival));
	rfc5322_date(d->retry_until, until, sizeof(until));
	snprintf(boundary, sizeof(boundary), "%s.%lld/%s", d->qid, (long long)now,
		 d->reporting_mta);
	buf_init(&b, DSN_MAX_TEXT + d->orig_len);
	buf_printf(&b,
		   "Date: %s\r\n"
		   "From: MAILER-DAEMON@%s (Mail Delivery System)\r\n"
		   "Subject: %s\r\n"
		   "To: %s\r\n"
		   "Message-Id: <%s.%lld.dsn@%s>\r\n"
		   "Auto-Submitted: auto-replied\r\n"
		   "MIME-Version: 1.0\r\n"
		   "Content-Type: multipart/report; report-type=delivery-status;\r\n"
		   "\tboundary=\"%s\"\r\n"
		   "Content-Transfer-Encoding: 8bit\r\n"
		   "\r\n"
		   "This is a MIME-encapsulated message.\r\n"
		   "\r\n"
		   "--%s\r\n"
		   "Content-Description: Notification\r\n"
		   "Content-Type: text/plain; charset=us-ascii\r\n"
		   "\r\n"
		   "This is the mail system at host %s.\r\n"
		   "\r\n",
		   date, d->reporting_mta,
		   d->delayed ? "Delayed Mail (still being retried)"
			      : "Undelivered Mail Returned to Sender",
		   d->sender, d->qid, (long long)now, d->reporting_mta, boundary, boundary,
		   d->reporting_mta);
	if (d->delayed)
		buf_printf(
		    &b,
		    "####################################################################\r\n"
		    "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\r\n"
		    "####################################################################\r\n"
		    "\r\n"
		    "Your message could not be delivered for some time.\r\n"
		    "It will be retried until %s.\r\n"
		    "\r\n",
		    until);
	else
		buf_printf(&b, "I'm sorry to have to inform you that your message could not\r\n"
			       "be delivered to one or more recipients. It's attached below.\r\n"
			       "\r\n"
			       "For further assistance, please send mail to postmaster.\r\n"
			       "\r\n");
	for (size_t i = 0; i < d->nrcpts; i++) {
		char why[QUEUE_WHY_MAX];
		one_line(why, sizeof(why), d->rcpts[i].why);
		buf_printf(&b, "<%s>: %s\r\n\r\n", d->rcpts[i].addr, why);
	}
	buf_printf(&b,
		   "--%s\r\n"
		   "Content-Description: Delivery report\r\n"
		   "Content-Type: message/delivery-status\r\n"
		   "\r\n"
		   "Reporting-MTA: dns; %s\r\n"
		   "X-Mailkeep-Queue-ID: %s\r\n"
		   "Arrival-Date: %s\r\n",
		   boundary, d->reporting_mta, d->qid, arrival);
	for (size_t i = 0; i < d->nrcpts; i++) {
		const struct queue_dsn_rcpt *r = &d->rcpts[i];
		char why[QUEUE_WHY_MAX], relay[QUEUE_WHY_MAX];
		one_line(why, sizeof(why), r->why);
		one_line(relay, sizeof(relay), r->relay ? r->relay : "");
		/* "host[addr]:port" -> "host" for Remote-MTA */
		char *br = strchr(relay, '[');
		if (br != NULL)
			*br = 0;
		buf_printf(&b,
			   "\r\n"
			   "Final-Recipient: rfc822; %s\r\n"
			   "Original-Recipient: rfc822;%s\r\n"
			   "Action: %s\r\n"
			   "Status: %s\r\n",
			   r->addr, r->addr, d->delayed ? "delayed" : "failed",
			   r->dsn && r->dsn[0] ? r->dsn : (d->delayed ? "4.0.0" : "5.0.0"));
		if (relay[0])
			buf_printf(&b, "Remote-MTA: dns; %s\r\n", relay);
		/* "host X said: 550 ... (in reply to RCPT TO command)": the reply alone */
		char *said = strstr(why, " said: ");
		if (said != NULL && is_smtp_reply(said + 7)) {
			memmove(why, said + 7, strlen(said + 7) + 1);
			char *inreply = strstr(why, " (in reply to ");
			if (inreply != NULL)
				*inreply = 0;
		}
		if (why[0])
			buf_printf(&b, "Diagnostic-Code: %s; %s\r\n",
				   is_smtp_reply(why) ? "smtp" : "X-mailkeep", why);
		if (d->delayed)
			buf_printf(&b, "Will-Retry-Until: %s\r\n", until);
	}
	buf_printf(&b,
		   "\r\n--%s\r\n"
		   "Content-Description: %s\r\n"
		   "Content-Type: %s\r\n"
		   "\r\n",
		   boundary, whole ? "Undelivered Message" : "Message Headers",
		   whole ? "message/rfc822" : "text/rfc822-headers");
	if (buf_append(&b, d->orig, whole ? d->orig_len : hlen) < 0) {
		buf_free(&b);
		return STORE_ETOOBIG;
	}
	if (b.len >= 2 && memcmp(b.data + b.len - 2, "\r\n", 2) != 0)
		buf_append(&b, "\r\n", 2);
	if (buf_printf(&b, "\r\n--%s--\r\n", boundary) < 0) {
		buf_free(&b);
		return STORE_ETOOBIG;
	}
	*data_r = b.data;
	*len_r = b.len;
	return 0;
}
