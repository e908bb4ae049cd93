/* maillog — what a log line of mailkeep's services says (see maillog.h).
 * The reason key of a rejection drops what varies per message (addresses in
 * brackets, "(N seconds left)"), so that equal reasons add up. */
#define _GNU_SOURCE 1
#include "index/maillog.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void copy(char *dst, size_t size, const char *src, size_t n)
{
	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* "554 5.7.1 <x>: Recipient address rejected: Greylisted ..." -> "450 Greylisted, ..." */
static void reason_of(const char *reply, char *out, size_t outsize)
{
	char code[4] = "";
	const char *p = reply, *r;

	if (strlen(p) >= 3 && isdigit((unsigned char)p[0]))
		memcpy(code, p, 3), code[3] = 0;
	if ((r = strstr(reply, "rejected: ")) != NULL)
		p = r + 10;
	else if ((r = strstr(reply, "Service unavailable; ")) != NULL)
		p = r + 21;
	else if ((r = strstr(reply, ">: ")) != NULL)
		p = r + 3;
	else if (strlen(reply) > 10)
		p = reply + 10;
	char buf[MLOG_DETAIL_MAX - 8];
	size_t o = 0;
	for (; *p && *p != ';' && o < sizeof(buf) - 1; p++) {
		if (*p == '[') {
			const char *e = strchr(p, ']');
			if (e) {
				p = e;
				buf[o++] = '*';
				continue;
			}
		}
		if (*p == '(')
			break;
		buf[o++] = *p;
	}
	while (o > 0 && buf[o - 1] == ' ')
		o--;
	buf[o] = 0;
	snprintf(out, outsize, "%s %s", code, buf);
}

static enum maillog_class class_of(const char *reply)
{
	if (strstr(reply, "blocked using ") != NULL)
		return MLOG_CLASS_DNSBL;
	if (strstr(reply, "Greylisted") != NULL || strstr(reply, "greylisted") != NULL)
		return MLOG_CLASS_GREYLIST;
	if (strstr(reply, "User unknown") != NULL)
		return MLOG_CLASS_UNKNOWN_USER;
	if (strstr(reply, "Relay access denied") != NULL)
		return MLOG_CLASS_RELAY;
	/* postscreen's enforce replies (smtpin/postscreen.c) */
	if (strstr(reply, "Service currently unavailable") != NULL ||
	    strstr(reply, "Protocol error") != NULL)
		return MLOG_CLASS_POSTSCREEN;
	return MLOG_CLASS_OTHER;
}

const char *maillog_class_name(enum maillog_class c)
{
	static const char *const names[MLOG_CLASSES] = {
	    [MLOG_CLASS_OTHER] = "other",
	    [MLOG_CLASS_POSTSCREEN] = "postscreen",
	    [MLOG_CLASS_DNSBL] = "dnsbl",
	    [MLOG_CLASS_GREYLIST] = "greylist",
	    [MLOG_CLASS_UNKNOWN_USER] = "unknown_user",
	    [MLOG_CLASS_RELAY] = "relay",
	};
	return (unsigned)c < MLOG_CLASSES && names[c] != NULL ? names[c] : "other";
}

static int starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static enum maillog_kind postscreen(const char *m, struct maillog_event *ev)
{
	static const char *const tests[] = {"PREGREET ",	   "DNSBL rank ",
					    "BARE NEWLINE ",	   "NON-SMTP COMMAND ",
					    "COMMAND PIPELINING ", "DENYLISTED "};

	if (starts(m, "PASS NEW "))
		return ev->kind = MLOG_PASS_NEW;
	if (starts(m, "PASS OLD "))
		return ev->kind = MLOG_PASS_OLD;
	if (starts(m, "ALLOWLISTED "))
		return ev->kind = MLOG_ALLOWLISTED;
	if (starts(m, "DISCONNECT "))
		return ev->kind = MLOG_DROPPED;
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (starts(m, tests[i])) {
			size_t n = strlen(tests[i]) - 1;
			if (strcmp(tests[i], "DNSBL rank ") == 0)
				n = 5;
			copy(ev->detail, sizeof(ev->detail), tests[i], n);
			return ev->kind = MLOG_POSTSCREEN;
		}
	}
	return MLOG_NONE;
}

static enum maillog_kind smtpd(const char *m, struct maillog_event *ev)
{
	const char *r;

	if (starts(m, "connect from ")) {
		copy(ev->client, sizeof(ev->client), m + 13, strcspn(m + 13, " \n"));
		return ev->kind = MLOG_CONNECT;
	}
	if (strstr(m, ": client=") != NULL && strstr(m, "sasl_username=") != NULL)
		return ev->kind = MLOG_SASL_OK;
	if (strstr(m, "SASL ") != NULL && strstr(m, "authentication failed") != NULL) {
		const char *c = starts(m, "warning: ") ? m + 9 : m;
		const char *e = strstr(c, ": SASL");
		copy(ev->detail, sizeof(ev->detail), c, e != NULL ? (size_t)(e - c) : strlen(c));
		return ev->kind = MLOG_SASL_FAIL;
	}
	if ((r = strstr(m, ": reject: ")) == NULL)
		return MLOG_NONE;
	const char *from = strstr(r, " from ");
	const char *colon = from ? strstr(from + 6, ": ") : NULL;
	if (from == NULL || colon == NULL)
		return MLOG_NONE;
	copy(ev->client, sizeof(ev->client), from + 6, (size_t)(colon - from - 6));
	reason_of(colon + 2, ev->detail, sizeof(ev->detail));
	ev->cls = class_of(colon + 2);
	return ev->kind = MLOG_REJECT;
}

enum maillog_kind maillog_parse_text(const char *svc, const char *m, struct maillog_event *ev)
{
	const char *p;

	memset(ev, 0, sizeof(*ev));
	if (strcmp(svc, "postscreen") == 0)
		return postscreen(m, ev);
	if (strcmp(svc, "smtpd") == 0)
		return smtpd(m, ev);
	if (strcmp(svc, "qmgr") == 0) {
		if ((p = strstr(m, ": from=<")) == NULL || strstr(m, "(queue active)") == NULL)
			return MLOG_NONE;
		p += 8;
		/* a quoted local part may hold '>': the address ends at ">, size=" */
		const char *e = strstr(p, ">, size=");
		copy(ev->detail, sizeof(ev->detail), p,
		     e != NULL ? (size_t)(e - p) : strcspn(p, ">"));
		return ev->kind = MLOG_QUEUED;
	}
	if (strcmp(svc, "local") == 0) {
		if (strstr(m, ", status=sent ") != NULL) {
			ev->junk = strstr(m, "(delivered to Junk mailbox of ") != NULL;
			return ev->kind = MLOG_DELIVERED;
		}
		if (strstr(m, ", status=deferred ") != NULL)
			return ev->kind = MLOG_DEFERRED;
		return MLOG_NONE;
	}
	if (strcmp(svc, "imapd") == 0) {
		if (strstr(m, ": login: user=<") != NULL)
			return ev->kind = MLOG_IMAP_LOGIN;
		if (strstr(m, "IMAP authentication failed") != NULL)
			return ev->kind = MLOG_IMAP_AUTH_FAIL;
		if ((p = strstr(m, ": connect from [")) != NULL) {
			p += 15;
			copy(ev->client, sizeof(ev->client), p, strcspn(p, " \n"));
			return ev->kind = MLOG_IMAP_CONNECT;
		}
		return MLOG_NONE;
	}
	if ((p = strstr(m, "retrain: user=<")) != NULL) {
		p += 15;
		copy(ev->detail, sizeof(ev->detail), p, strcspn(p, ">"));
		ev->junk = strstr(m, ", class=spam") != NULL;
		return ev->kind = MLOG_RETRAIN;
	}
	return MLOG_NONE;
}

enum maillog_kind maillog_parse_line(const char *line, struct maillog_event *ev)
{
	static const char *const svcs[] = {"smtpd", "postscreen", "qmgr", "local",
					   "imapd", "spam",	  "fs"};
	char want[24];

	memset(ev, 0, sizeof(*ev));
	for (size_t i = 0; i < sizeof(svcs) / sizeof(svcs[0]); i++) {
		snprintf(want, sizeof(want), "/%s[", svcs[i]);
		const char *m = strstr(line, want);
		if (m == NULL || (m = strstr(m, "]: ")) == NULL)
			continue;
		char text[4096];
		copy(text, sizeof(text), m + 3, strcspn(m + 3, "\r\n"));
		if (maillog_parse_text(svcs[i], text, ev) != MLOG_NONE)
			return ev->kind;
		memset(ev, 0, sizeof(*ev));
		return MLOG_NONE;
	}
	return MLOG_NONE;
}

static int digits(const char *p, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)p[i]))
			return -1;
		*v = *v * 10 + (p[i] - '0');
	}
	return 0;
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

int maillog_time(const char *line, int64_t now, int64_t *t_r)
{
	int y, mo, d, h, mi, s;
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

	if (digits(line, 4, &y) == 0 && line[4] == '-' && digits(line + 5, 2, &mo) == 0 &&
	    line[7] == '-' && digits(line + 8, 2, &d) == 0 && line[10] == 'T' &&
	    digits(line + 11, 2, &h) == 0 && line[13] == ':' && digits(line + 14, 2, &mi) == 0 &&
	    line[16] == ':' && digits(line + 17, 2, &s) == 0) {
		if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
			return -1;
		const char *z = line + 19;
		if (*z == '.' || *z == ',')
			for (z++; isdigit((unsigned char)*z); z++)
				;
		int64_t off = 0;
		if (*z == '+' || *z == '-') {
			int zh, zm;
			const char *q = z + 1;
			if (digits(q, 2, &zh) < 0)
				return -1;
			q += 2;
			if (*q == ':')
				q++;
			if (digits(q, 2, &zm) < 0)
				return -1;
			off = (zh * 3600 + zm * 60) * (*z == '-' ? -1 : 1);
		} else if (*z != 'Z') {
			return -1;
		}
		*t_r = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - off;
		return 0;
	}
	/* "Dec  3 08:19:29": local time, no year */
	const char *m = strstr(months, (char[4]){line[0], line[1], line[2], 0});
	if (line[0] == '\0' || line[1] == '\0' || line[2] == '\0' || m == NULL ||
	    (m - months) % 3 != 0 || line[3] != ' ')
		return -1;
	const char *p = line + 4;
	if (*p == ' ')
		p++;
	if (!isdigit((unsigned char)p[0]))
		return -1;
	d = p[0] - '0';
	p++;
	if (isdigit((unsigned char)*p))
		d = d * 10 + (*p++ - '0');
	if (*p++ != ' ' || digits(p, 2, &h) < 0 || p[2] != ':' || digits(p + 3, 2, &mi) < 0 ||
	    p[5] != ':' || digits(p + 6, 2, &s) < 0)
		return -1;
	time_t tnow = (time_t)now;
	struct tm tm, cur;
	localtime_r(&tnow, &cur);
	for (int back = 0; back < 2; back++) {
		memset(&tm, 0, sizeof(tm));
		tm.tm_year = cur.tm_year - back;
		tm.tm_mon = (int)((m - months) / 3);
		tm.tm_mday = d;
		tm.tm_hour = h;
		tm.tm_min = mi;
		tm.tm_sec = s;
		tm.tm_isdst = -1;
		time_t t = mktime(&tm);
		if (t != (time_t)-1 && (int64_t)t <= now + 86400) {
			*t_r = (int64_t)t;
			return 0;
		}
	}
	return -1;
}
