/* cmd_report — `mailkeep report`: one self-contained HTML page about the
 * last days of mail, in the spirit of pflogsumm and the postscreen maps:
 * mail received and rejected per day by reason (postscreen, DNS block lists,
 * greylisting, unknown users, relay attempts), spam caught and missed (what
 * users moved into Junk: retrained), top senders and rejected clients, the
 * store's growth.
 *
 * The numbers come from the services' log lines, read by the one parser that
 * `mailkeep stats --smtp` and the counters use (index/maillog.h), so the page
 * and stats agree; the store's growth from the samples `mailkeep run` keeps
 * (tools/store_history.h). The charts are drawn by Chart.js, read from
 * Debian's libjs-chart.js when the page is made and put into it whole: the
 * page needs no network to be viewed, and works as a mail attachment. Every
 * number is also in a table (the page reads without JavaScript). Text from
 * the log (addresses, host names) is untrusted: HTML-escaped in tables,
 * JSON-escaped with <, > and & as \u escapes in the data. */
#include <stddef.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "index/maillog.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "tools/cli.h"
#include "tools/store_history.h"

#ifndef MAILKEEP_CHART_JS
#define MAILKEEP_CHART_JS "/usr/share/javascript/chart.js/chart.min.js"
#endif
#define DAYS_MAX 366
#define TOP_KEYS 4096
#define LIB_MAX (4 << 20)

struct top_item {
	char key[MLOG_DETAIL_MAX];
	unsigned long n;
};

struct top {
	struct top_item v[TOP_KEYS];
	size_t n;
	unsigned long other;
};

struct day {
	unsigned long connections, inbox, junk, deferred, rejected[MLOG_CLASSES], postscreen,
	    retrain_spam, retrain_innocent, imap_logins;
};

struct report {
	int days;
	int64_t first_day; /* local midnight of the first day, seconds */
	struct day d[DAYS_MAX];
	struct top senders, clients, tests;
	unsigned long lines, outside, undated;
};

static void top_add(struct top *t, const char *key)
{
	for (size_t i = 0; i < t->n; i++) {
		if (strcmp(t->v[i].key, key) == 0) {
			t->v[i].n++;
			return;
		}
	}
	if (t->n == TOP_KEYS) {
		t->other++;
		return;
	}
	mk_strlcpy(t->v[t->n].key, key, sizeof(t->v[t->n].key));
	t->v[t->n++].n = 1;
}

static int by_count(const void *a, const void *b)
{
	const struct top_item *x = a, *y = b;
	return x->n < y->n ? 1 : x->n > y->n ? -1 : strcmp(x->key, y->key);
}

/* Local midnight of the day holding t. */
static int64_t day_start(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	localtime_r(&tt, &tm);
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_isdst = -1;
	return (int64_t)mktime(&tm);
}

/* The index of the day holding t, or -1 outside the report. */
static int day_index(const struct report *r, int64_t t)
{
	int64_t start = r->first_day;
	for (int i = 0; i < r->days; i++) {
		/* days are not all 86400 s long (DST): step by local midnights */
		int64_t next = day_start(start + 86400 + 7200);
		if (t >= start && t < next)
			return i;
		start = next;
	}
	return -1;
}

static void scan_line(struct report *r, const char *line, int64_t now)
{
	struct maillog_event ev;
	int64_t t;

	if (maillog_parse_line(line, &ev) == MLOG_NONE)
		return;
	r->lines++;
	if (maillog_time(line, now, &t) < 0) {
		r->undated++;
		return;
	}
	int i = day_index(r, t);
	if (i < 0) {
		r->outside++;
		return;
	}
	struct day *d = &r->d[i];
	switch (ev.kind) {
	case MLOG_CONNECT:
		d->connections++;
		break;
	case MLOG_REJECT:
		d->rejected[ev.cls]++;
		top_add(&r->clients, ev.client);
		break;
	case MLOG_POSTSCREEN:
		d->postscreen++;
		top_add(&r->tests, ev.detail);
		break;
	case MLOG_QUEUED:
		top_add(&r->senders, ev.detail[0] != '\0' ? ev.detail : "<> (bounces)");
		break;
	case MLOG_DELIVERED:
		if (ev.junk)
			d->junk++;
		else
			d->inbox++;
		break;
	case MLOG_DEFERRED:
		d->deferred++;
		break;
	case MLOG_RETRAIN:
		if (ev.junk)
			d->retrain_spam++;
		else
			d->retrain_innocent++;
		break;
	case MLOG_IMAP_LOGIN:
		d->imap_logins++;
		break;
	default:
		break;
	}
}

static int scan_file(struct report *r, const char *path, int64_t now)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;

	if (f == NULL) {
		cli_error("report: cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	while (getline(&line, &cap, f) > 0)
		scan_line(r, line, now);
	free(line);
	if (f != stdin)
		fclose(f);
	return 0;
}

/* --- writing ----------------------------------------------------------------- */

/* A JSON string that is also safe inside <script>: <, >, & and every
 * control or non-ASCII byte as \u escapes (the log's text is made printable
 * ASCII by the services, but the page must not trust that). */
static void json_str(FILE *o, const char *s)
{
	fputc('"', o);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(o, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f || *p == '<' || *p == '>' || *p == '&')
			fprintf(o, "\\u%04x", *p);
		else
			fputc(*p, o);
	}
	fputc('"', o);
}

static void html_str(FILE *o, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '<':
			fputs("&lt;", o);
			break;
		case '>':
			fputs("&gt;", o);
			break;
		case '&':
			fputs("&amp;", o);
			break;
		case '"':
			fputs("&quot;", o);
			break;
		default:
			fputc(*p < 0x20 || *p >= 0x7f ? '?' : *p, o);
		}
	}
}

static const enum maillog_class shown[] = {MLOG_CLASS_POSTSCREEN, MLOG_CLASS_DNSBL,
					   MLOG_CLASS_GREYLIST,	  MLOG_CLASS_UNKNOWN_USER,
					   MLOG_CLASS_RELAY,	  MLOG_CLASS_OTHER};
#define NSHOWN (sizeof(shown) / sizeof(shown[0]))

static void day_label(const struct report *r, int i, char *out, size_t size)
{
	int64_t t = r->first_day;
	for (int k = 0; k < i; k++)
		t = day_start(t + 86400 + 7200);
	time_t tt = (time_t)t;
	struct tm tm;
	localtime_r(&tt, &tm);
	strftime(out, size, "%Y-%m-%d", &tm);
}

static void json_series(FILE *o, const char *name, const struct report *r, size_t off)
{
	fprintf(o, "\"%s\":[", name);
	for (int i = 0; i < r->days; i++)
		fprintf(o, "%s%lu", i ? "," : "",
			*(const unsigned long *)((const char *)&r->d[i] + off));
	fputs("]", o);
}

static void json_top(FILE *o, const char *name, struct top *t, size_t max)
{
	qsort(t->v, t->n, sizeof(t->v[0]), by_count);
	fprintf(o, "\"%s\":[", name);
	for (size_t i = 0; i < t->n && i < max; i++) {
		fputs(i ? ",[" : "[", o);
		json_str(o, t->v[i].key);
		fprintf(o, ",%lu]", t->v[i].n);
	}
	fputs("]", o);
}

static unsigned long total(const struct report *r, size_t off)
{
	unsigned long n = 0;
	for (int i = 0; i < r->days; i++)
		n += *(const unsigned long *)((const char *)&r->d[i] + off);
	return n;
}

#define OFF(field) offsetof(struct day, field)

static void write_data(FILE *o, struct report *r, const char *conf, struct cli *cli)
{
	char label[16];
	time_t now = time(NULL);
	char made[64];

	strftime(made, sizeof(made), "%Y-%m-%d %H:%M", localtime(&now));
	fputs("{\"days\":[", o);
	for (int i = 0; i < r->days; i++) {
		day_label(r, i, label, sizeof(label));
		fprintf(o, "%s\"%s\"", i ? "," : "", label);
	}
	fputs("],", o);
	json_series(o, "connections", r, OFF(connections));
	fputs(",", o);
	json_series(o, "inbox", r, OFF(inbox));
	fputs(",", o);
	json_series(o, "junk", r, OFF(junk));
	fputs(",", o);
	json_series(o, "deferred", r, OFF(deferred));
	fputs(",", o);
	json_series(o, "postscreen_tests", r, OFF(postscreen));
	fputs(",", o);
	json_series(o, "retrained_spam", r, OFF(retrain_spam));
	fputs(",", o);
	json_series(o, "retrained_innocent", r, OFF(retrain_innocent));
	fputs(",", o);
	json_series(o, "imap_logins", r, OFF(imap_logins));
	fputs(",\"rejected\":{", o);
	for (size_t c = 0; c < NSHOWN; c++) {
		fprintf(o, "%s\"%s\":[", c ? "," : "", maillog_class_name(shown[c]));
		for (int i = 0; i < r->days; i++)
			fprintf(o, "%s%lu", i ? "," : "", r->d[i].rejected[shown[c]]);
		fputs("]", o);
	}
	fputs("},", o);
	json_top(o, "top_senders", &r->senders, 15);
	fputs(",", o);
	json_top(o, "top_rejected_clients", &r->clients, 15);
	fputs(",", o);
	json_top(o, "postscreen_by_test", &r->tests, 10);
	/* the store's size at the end of each day (the last sample before) */
	struct store_sample *v = NULL;
	size_t n = store_history_read(cli->common.data_directory, r->first_day - 40 * 86400, &v);
	fputs(",\"store_bytes\":[", o);
	int64_t t = r->first_day;
	for (int i = 0; i < r->days; i++) {
		uint64_t b;
		t = day_start(t + 86400 + 7200);
		if (store_history_at(v, n, t - 1, &b))
			fprintf(o, "%s%llu", i ? "," : "", (unsigned long long)b);
		else
			fprintf(o, "%snull", i ? "," : "");
	}
	free(v);
	fputs("],", o);
	uint64_t now_bytes = 0;
	(void)store_size_now(cli->common.store_directory, &now_bytes);
	fprintf(o, "\"store_bytes_now\":%llu,\"made\":", (unsigned long long)now_bytes);
	json_str(o, made);
	fputs(",\"config\":", o);
	json_str(o, conf);
	fprintf(o, ",\"log_lines\":%lu,\"outside\":%lu,\"undated\":%lu}", r->lines, r->outside,
		r->undated);
}

static void html_table_top(FILE *o, const char *id, const char *title, const char *what,
			   struct top *t, size_t max)
{
	fprintf(o, "<h3>%s</h3>\n<table id=%s><tr><th>%s</th><th>count</th></tr>\n", title, id,
		what);
	for (size_t i = 0; i < t->n && i < max; i++) {
		fputs("<tr><td>", o);
		html_str(o, t->v[i].key);
		fprintf(o, "</td><td class=n>%lu</td></tr>\n", t->v[i].n);
	}
	if (t->n == 0)
		fputs("<tr><td colspan=2>(none)</td></tr>\n", o);
	fputs("</table>\n", o);
}

/* The page script: charts from the data, a flag for tests when drawn. */
static const char page_script[] =
    "(function(){\n"
    "var d=JSON.parse(document.getElementById('data').textContent);\n"
    "var colors={inbox:'#2e7d32',junk:'#c62828',postscreen:'#6a1b9a',dnsbl:'#ad1457',"
    "greylist:'#ef6c00',unknown_user:'#1565c0',relay:'#4e342e',other:'#757575'};\n"
    "function bar(id,labels,sets,stacked,horizontal){\n"
    " return new "
    "Chart(document.getElementById(id),{type:'bar',data:{labels:labels,datasets:sets},\n"
    "  options:{animation:false,responsive:true,indexAxis:horizontal?'y':'x',\n"
    "   scales:{x:{stacked:stacked},y:{stacked:stacked,beginAtZero:true}}}});}\n"
    "var charts=[];\n"
    "var sets=[{label:'delivered (INBOX)',data:d.inbox,backgroundColor:colors.inbox,stack:'in'},\n"
    " {label:'delivered (Junk)',data:d.junk,backgroundColor:colors.junk,stack:'in'}];\n"
    "Object.keys(d.rejected).forEach(function(k){sets.push({label:'rejected: '+k.replace('_',' "
    "'),\n"
    " data:d.rejected[k],backgroundColor:colors[k],stack:'rejected'});});\n"
    "charts.push(bar('mail',d.days,sets,true,false));\n"
    "charts.push(bar('spam',d.days,[{label:'spam caught (into Junk)',data:d.junk,"
    "backgroundColor:colors.junk},\n"
    " {label:'spam missed (moved into Junk: retrained)',data:d.retrained_spam,"
    "backgroundColor:'#f9a825'},\n"
    " {label:'not spam (moved out of Junk: retrained)',data:d.retrained_innocent,"
    "backgroundColor:colors.inbox}],false,false));\n"
    "function top(id,rows,label,color){charts.push(bar(id,rows.map(function(r){return r[0];}),\n"
    " [{label:label,data:rows.map(function(r){return "
    "r[1];}),backgroundColor:color}],false,true));}\n"
    "top('senders',d.top_senders,'messages','#2e7d32');\n"
    "top('clients',d.top_rejected_clients,'rejections','#c62828');\n"
    "top('tests',d.postscreen_by_test,'postscreen tests failed','#6a1b9a');\n"
    "charts.push(new Chart(document.getElementById('store'),{type:'line',data:{labels:d.days,\n"
    " datasets:[{label:'store size (MiB)',data:d.store_bytes.map(function(b){return b===null?null:"
    "b/1048576;}),\n"
    " borderColor:'#1565c0',spanGaps:true}]},options:{animation:false,responsive:true,"
    "scales:{y:{beginAtZero:true}}}}));\n"
    "window.mailkeepReport={data:d,charts:charts.length,ready:true};\n"
    "})();\n";

static const char page_style[] =
    "body{font-family:sans-serif;max-width:1100px;margin:1em auto;padding:0 1em;color:#222}"
    "h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}h3{font-size:1em}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;"
    "text-align:left}td.n{text-align:right}canvas{max-height:360px}.small{color:#666;"
    "font-size:.9em}.grid{display:grid;grid-template-columns:1fr 1fr;gap:1em}";

static int write_page(FILE *o, struct report *r, struct cli *cli, const char *lib, size_t liblen)
{
	unsigned long tot_rej[MLOG_CLASSES] = {0}, rej = 0;
	char first[16], last[16];

	day_label(r, 0, first, sizeof(first));
	day_label(r, r->days - 1, last, sizeof(last));
	for (int i = 0; i < r->days; i++)
		for (int c = 0; c < MLOG_CLASSES; c++) {
			tot_rej[c] += r->d[i].rejected[c];
			rej += r->d[i].rejected[c];
		}
	fputs("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>\n"
	      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
	      "script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:\">\n",
	      o);
	fprintf(o, "<title>mailkeep report %s to %s</title>\n<style>%s</style></head><body>\n",
		first, last, page_style);
	fprintf(o, "<h1>mailkeep: the last %d days (%s to %s)</h1>\n", r->days, first, last);
	fputs("<p class=small>", o);
	html_str(o, cli->conf_path);
	fprintf(o, "; %lu log lines of the services read (%lu before these days).</p>\n", r->lines,
		r->outside);
	fputs("<h2>In numbers</h2>\n<table id=totals>\n", o);
	fprintf(o,
		"<tr><td>connections (SMTP, LMTP)</td><td class=n id=t-connections>%lu</td></tr>\n",
		total(r, OFF(connections)));
	fprintf(o, "<tr><td>delivered</td><td class=n id=t-delivered>%lu</td></tr>\n",
		total(r, OFF(inbox)) + total(r, OFF(junk)));
	fprintf(o,
		"<tr><td>&nbsp; of which into Junk (spam caught)</td><td class=n "
		"id=t-junk>%lu</td></tr>\n",
		total(r, OFF(junk)));
	fprintf(o,
		"<tr><td>deferred (4xx: the sender retries)</td><td class=n "
		"id=t-deferred>%lu</td></tr>\n",
		total(r, OFF(deferred)));
	fprintf(o, "<tr><td>rejected</td><td class=n id=t-rejected>%lu</td></tr>\n", rej);
	for (size_t c = 0; c < NSHOWN; c++)
		fprintf(o, "<tr><td>&nbsp; %s</td><td class=n id=t-rejected-%s>%lu</td></tr>\n",
			maillog_class_name(shown[c]), maillog_class_name(shown[c]),
			tot_rej[shown[c]]);
	fprintf(o,
		"<tr><td>postscreen tests failed</td><td class=n id=t-postscreen>%lu</td></tr>\n",
		total(r, OFF(postscreen)));
	fprintf(o,
		"<tr><td>spam missed (moved into Junk)</td><td class=n "
		"id=t-retrained-spam>%lu</td></tr>\n",
		total(r, OFF(retrain_spam)));
	fprintf(o,
		"<tr><td>not spam after all (moved out of Junk)</td><td class=n "
		"id=t-retrained-innocent>%lu</td></tr>\n",
		total(r, OFF(retrain_innocent)));
	fprintf(o, "<tr><td>IMAP logins</td><td class=n id=t-imap>%lu</td></tr>\n</table>\n",
		total(r, OFF(imap_logins)));
	fputs("<h2>Mail received and rejected, per day</h2><canvas id=mail></canvas>\n"
	      "<h2>Spam</h2><canvas id=spam></canvas>\n"
	      "<h2>Who</h2><div class=grid><div><canvas id=senders></canvas></div>"
	      "<div><canvas id=clients></canvas></div></div>\n"
	      "<h2>Postscreen</h2><canvas id=tests></canvas>\n"
	      "<h2>The store</h2><canvas id=store></canvas>\n",
	      o);
	fputs("<h2>Tables</h2><div class=grid><div>\n", o);
	/* json_top sorted them already (the data is written first) */
	html_table_top(o, "senders-table", "Top senders (messages delivered)", "sender",
		       &r->senders, 15);
	fputs("</div><div>\n", o);
	html_table_top(o, "clients-table", "Top rejected clients", "client", &r->clients, 15);
	fputs("</div></div>\n", o);
	fputs("<table id=days><tr><th>day</th><th>delivered</th><th>Junk</th><th>rejected</th>"
	      "<th>postscreen</th><th>retrained spam</th></tr>\n",
	      o);
	for (int i = 0; i < r->days; i++) {
		char label[16];
		unsigned long dr = 0;
		for (int c = 0; c < MLOG_CLASSES; c++)
			dr += r->d[i].rejected[c];
		day_label(r, i, label, sizeof(label));
		fprintf(o,
			"<tr><td>%s</td><td class=n>%lu</td><td class=n>%lu</td><td "
			"class=n>%lu</td><td class=n>%lu</td><td class=n>%lu</td></tr>\n",
			label, r->d[i].inbox + r->d[i].junk, r->d[i].junk, dr, r->d[i].postscreen,
			r->d[i].retrain_spam);
	}
	fputs("</table>\n", o);
	fputs("<p class=small>Made by <code>mailkeep report</code>; charts by Chart.js (MIT), "
	      "included in this page.</p>\n",
	      o);
	fputs("<script>\n", o);
	fwrite(lib, 1, liblen, o);
	fputs("\n</script>\n", o);
	return 0;
}

static const char report_help[] =
    "Writes one HTML page about the last days (30 by default): mail received and\n"
    "rejected per day by reason (postscreen, DNSBL, greylisting, unknown user,\n"
    "relay, other), spam caught and missed (moved into Junk), top senders and\n"
    "rejected clients, postscreen's tests, the store's size. It reads the services'\n"
    "log (files, \"-\" for standard input; default /var/log/mail.log), counts as\n"
    "`mailkeep stats --smtp` does, and takes the store's size from the samples\n"
    "`mailkeep run` keeps. The page holds its charting library (Chart.js, from\n"
    "Debian's libjs-chart.js): it needs no network to be viewed.\n"
    "  -o, --output FILE   the page (default mailkeep-report.html)\n"
    "  --days N            how many days, today included (1 to 366; default 30)\n"
    "  --chart-js FILE     the library (default " MAILKEEP_CHART_JS ")\n\n"
    "examples:\n"
    "  mailkeep report -o /var/www/mail/report.html /var/log/mail.log /var/log/mail.log.1\n"
    "  journalctl -u mailkeep --since -30d -o short-iso | mailkeep report -o report.html -\n";

static int run(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"output", required_argument, NULL, 'o'},
	    {"days", required_argument, NULL, 'd'},
	    {"chart-js", required_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0},
	};
	const char *out = "mailkeep-report.html", *libpath = MAILKEEP_CHART_JS;
	uint64_t days = 30;
	char *lib = NULL;
	size_t liblen = 0;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 'd':
			if (mk_parse_u64(optarg, 1, DAYS_MAX, &days) < 0) {
				cli_error("report: --days wants 1 to %d, not '%s'", DAYS_MAX,
					  optarg);
				return EXIT_USAGE;
			}
			break;
		case 'j':
			libpath = optarg;
			break;
		default:
			return cli_usage(&cmd_report);
		}
	}
	if (cli_config(cli) == NULL)
		return 1;
	if (mk_read_file(libpath, LIB_MAX, &lib, &liblen) < 0) {
		cli_error("report: cannot read the charting library %s: %s (apt install "
			  "libjs-chart.js, or give --chart-js FILE)",
			  libpath, strerror(errno));
		return 1;
	}
	if (strstr(lib, "</script") != NULL || strstr(lib, "</SCRIPT") != NULL ||
	    strstr(lib, "<!--") != NULL) {
		cli_error("report: %s holds \"</script\" or \"<!--\": it cannot be put into a page "
			  "as it is",
			  libpath);
		free(lib);
		return 1;
	}
	struct report *r = xcalloc(1, sizeof(*r));
	int64_t now = (int64_t)time(NULL);
	r->days = (int)days;
	r->first_day = day_start(now);
	for (int i = 1; i < r->days; i++) /* back by local midnights */
		r->first_day = day_start(r->first_day - 7200);
	if (optind == argc) {
		if (access("/var/log/mail.log", R_OK) < 0) {
			cli_error(
			    "report: no log given and /var/log/mail.log cannot be read; with the "
			    "journal: journalctl -u mailkeep --since -%dd -o short-iso | mailkeep "
			    "report -",
			    r->days);
			free(r);
			free(lib);
			return 1;
		}
		rc |= scan_file(r, "/var/log/mail.log", now);
	}
	for (int i = optind; i < argc; i++)
		rc |= scan_file(r, argv[i], now);
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp", out);
	FILE *o = fopen(tmp, "we");
	if (o == NULL) {
		cli_error("report: cannot write %s: %s", tmp, strerror(errno));
		free(r);
		free(lib);
		return 1;
	}
	/* the data first (it sorts the top lists), then the page around it */
	char *data = NULL;
	size_t dlen = 0;
	FILE *dm = open_memstream(&data, &dlen);
	if (dm == NULL)
		log_fatal("out of memory (open_memstream)");
	write_data(dm, r, cli->conf_path, cli);
	fclose(dm);
	write_page(o, r, cli, lib, liblen);
	fputs("<script type=\"application/json\" id=data>", o);
	fwrite(data, 1, dlen, o);
	fputs("</script>\n<script>\n", o);
	fputs(page_script, o);
	fputs("</script>\n</body></html>\n", o);
	free(data);
	if (fflush(o) != 0 || fsync(fileno(o)) != 0 || fclose(o) != 0 || rename(tmp, out) < 0) {
		cli_error("report: cannot write %s: %s", out, strerror(errno));
		unlink(tmp);
		rc = 1;
	} else {
		printf("report: %s (%d days, %lu log lines read)\n", out, r->days, r->lines);
	}
	free(r);
	free(lib);
	return rc != 0 ? 1 : 0;
}

const struct command cmd_report = {
    "report",
    "[-o FILE] [--days N] [LOGFILE... | -]",
    "an HTML page of the last 30 days: received, rejected by reason, spam, top senders, store",
    report_help,
    run,
};
