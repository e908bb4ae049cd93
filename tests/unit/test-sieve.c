/* Unit tests of the Sieve interpreter (index/sieve*.c): the RFCs' own
 * examples, every extension mailkeep offers, the parser's errors with line
 * and column, and the bounds (nesting, size, regex cost). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "index/sieve.h"
#include "index/sieve_priv.h"

static const char MSG[] = "Return-Path: <alice@example.com>\r\n"
			  "Date: Tue, 1 Apr 1997 09:06:31 -0800 (PST)\r\n"
			  "From: Alice Smith <alice@example.com>\r\n"
			  "To: Bob <bob+lists@example.org>, carol@example.net\r\n"
			  "Cc: \"Team, all\" <team@example.org>\r\n"
			  "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= from the MEETING\r\n"
			  "List-Id: Linux kernel <linux-kernel.vger.kernel.org>\r\n"
			  "X-Priority: 2\r\n"
			  "Received: from a by b; Tue, 1 Apr 1997 09:06:31 -0800\r\n"
			  "Received: from c by d; Tue, 1 Apr 1997 09:06:30 -0800\r\n"
			  "MIME-Version: 1.0\r\n"
			  "Content-Type: multipart/mixed; boundary=\"xx\"\r\n"
			  "\r\n"
			  "--xx\r\n"
			  "Content-Type: text/plain; charset=iso-8859-1\r\n"
			  "Content-Transfer-Encoding: quoted-printable\r\n"
			  "\r\n"
			  "Hello, the agenda is attached. Gr=FC=DFe\r\n"
			  "--xx\r\n"
			  "Content-Type: application/pdf\r\n"
			  "Content-Transfer-Encoding: base64\r\n"
			  "\r\n"
			  "c2VjcmV0IGJsdWVwcmludA==\r\n"
			  "--xx--\r\n";

/* mailboxes that exist, for mailboxexists and fileinto */
static int exists_cb(void *ctx, const char *name)
{
	(void)ctx;
	return strcmp(name, "INBOX") == 0 || strcmp(name, "Junk") == 0;
}

static const char *inc_text;
static int load_cb(void *ctx, int global, const char *name, const char **text_r, size_t *len_r)
{
	(void)ctx;
	if (inc_text == NULL || strcmp(name, global ? "spam" : "lists") != 0)
		return -1;
	*text_r = inc_text;
	*len_r = strlen(inc_text);
	return 0;
}

/* Runs script on msg; returns the actions as text ("fileinto:X keep ...",
 * "implicit" for the implicit keep, "ERR:message" on a failure). */
static char out[4096];
static const char *run_full(const char *script, const char *msg, const char *from, const char *to,
			    int spam, struct sieve_result *keep_res)
{
	struct sieve_script *s;
	struct sieve_error err;
	struct sieve_result res;
	struct sieve_msg m = {.data = msg,
			      .len = strlen(msg),
			      .env_from = from,
			      .env_to = to,
			      .user = "bob",
			      .spam_percent = spam,
			      .now = 1700000000};
	struct sieve_env env = {.mailbox_exists = exists_cb, .load = load_cb};

	if (sieve_compile(script, strlen(script), 0, &s, &err) < 0) {
		char e[300];
		sieve_error_format(&err, e, sizeof(e));
		snprintf(out, sizeof(out), "COMPILE:%s", e);
		return out;
	}
	int rc = sieve_execute(&s, 1, &m, &env, &res);
	size_t o = 0;
	out[0] = '\0';
	if (rc < 0)
		o += (size_t)snprintf(out + o, sizeof(out) - o, "ERR:%s ", res.err.msg);
	for (size_t i = 0; i < res.n; i++) {
		const struct sieve_action *a = &res.actions[i];
		static const char *const names[] = {"keep",   "fileinto", "discard", "redirect",
						    "reject", "ereject",  "vacation"};
		o += (size_t)snprintf(out + o, sizeof(out) - o, "%s", names[a->kind]);
		if (a->mailbox)
			o += (size_t)snprintf(out + o, sizeof(out) - o, ":%s", a->mailbox);
		if (a->address)
			o += (size_t)snprintf(out + o, sizeof(out) - o, ":%s", a->address);
		if (a->reason && a->kind != SIEVE_VACATION)
			o += (size_t)snprintf(out + o, sizeof(out) - o, ":%s", a->reason);
		if (a->flags)
			o += (size_t)snprintf(out + o, sizeof(out) - o, "[%s]", a->flags);
		o += (size_t)snprintf(out + o, sizeof(out) - o, " ");
	}
	if (res.implicit_keep)
		o += (size_t)snprintf(
		    out + o, sizeof(out) - o, "implicit%s%s%s ", res.keep_flags ? "[" : "",
		    res.keep_flags ? res.keep_flags : "", res.keep_flags ? "]" : "");
	if (o > 0 && out[o - 1] == ' ')
		out[o - 1] = '\0';
	if (keep_res)
		*keep_res = res;
	else
		sieve_result_free(&res);
	sieve_script_free(&s);
	return out;
}

static const char *run(const char *script)
{
	return run_full(script, MSG, "alice@example.com", "bob+lists@example.org", -1, NULL);
}

static void test_rfc5228_examples(void **state)
{
	(void)state;
	/* RFC 5228 section 9 (the example script, cut to the parts that apply) */
	const char *ex = "# Example Sieve Filter\r\n"
			 "# Declare any optional features or extension used by the script\r\n"
			 "require [\"fileinto\"];\r\n"
			 "if header :is \"Sender\" \"owner-ietf-mta-filters@imc.org\"\r\n"
			 "        { fileinto \"filter\"; }\r\n"
			 "elsif address :DOMAIN :is [\"From\", \"To\"] \"example.com\"\r\n"
			 "        { keep; }\r\n"
			 "elsif anyof (NOT address :all :contains\r\n"
			 "               [\"To\", \"Cc\", \"Bcc\"] \"me@example.com\",\r\n"
			 "             header :matches \"subject\"\r\n"
			 "               [\"*make*money*fast*\", \"*university*dipl*mas*\"])\r\n"
			 "        { fileinto \"spam\"; }\r\n"
			 "else { fileinto \"personal\"; }\r\n";
	assert_string_equal(run(ex), "keep");
	/* section 2.10.2: implicit keep */
	assert_string_equal(run("if size :over 500K { discard; }"), "implicit");
	assert_string_equal(run("if size :under 1M { discard; }"), "discard");
	/* section 4.2: redirect */
	assert_string_equal(run("redirect \"bart@example.com\";"), "redirect:bart@example.com");
	/* section 5.2: address with the CC that has a comma in its quoted name */
	assert_string_equal(run("if address :is \"cc\" \"team@example.org\" { discard; }"),
			    "discard");
	/* section 5.5: exists */
	assert_string_equal(run("if exists [\"From\",\"Date\"] { discard; }"), "discard");
	assert_string_equal(run("if exists [\"From\",\"X-Nope\"] { discard; }"), "implicit");
	/* comparator: i;octet is case-sensitive, the default is not */
	assert_string_equal(
	    run("if header :is :comparator \"i;octet\" \"x-priority\" \"2\" { discard; }"),
	    "discard");
	assert_string_equal(
	    run("if header :contains :comparator \"i;octet\" \"subject\" \"meeting\" { discard; }"),
	    "implicit");
	assert_string_equal(run("if header :contains \"subject\" \"meeting\" { discard; }"),
			    "discard");
	/* RFC 2047 decoded */
	assert_string_equal(run("if header :contains \"subject\" \"Grüße\" { discard; }"),
			    "discard");
	/* stop */
	assert_string_equal(run("require \"fileinto\"; fileinto \"a\"; stop; fileinto \"b\";"),
			    "fileinto:a");
	/* a duplicated message goes once into a mailbox, but two actions are listed */
	assert_string_equal(run("require [\"fileinto\", \"copy\"]; fileinto :copy \"x\";"),
			    "fileinto:x implicit");
}

static void test_errors(void **state)
{
	(void)state;
	assert_string_equal(
	    run("require \"comparator-i;ascii-numeric\"; if header :contains :comparator "
		"\"i;ascii-numeric\" \"x\" \"1\" { keep; }"),
	    "COMPILE:line 1, column 42: comparator i;ascii-numeric cannot be used with :contains, "
	    ":matches or :regex");
	assert_string_equal(run("fileinto \"x\";"),
			    "COMPILE:line 1, column 1: fileinto needs require \"fileinto\"");
	assert_string_equal(run("require \"fileinto\";\nif true {\n  fileint \"x\";\n}"),
			    "COMPILE:line 3, column 3: unknown command 'fileint'");
	assert_string_equal(run("if header :is \"a\" \"b\" { keep; "),
			    "COMPILE:line 1, column 23: this block is not closed ('}' missing)");
	assert_string_equal(run("keep"),
			    "COMPILE:line 1, column 5: ';' or a block was expected after keep");
	assert_string_equal(run("require \"nope\";"),
			    "COMPILE:line 1, column 1: unsupported extension \"nope\"");
	assert_string_equal(
	    run("if header :is \"a\" \"b\" { keep; }\nrequire \"fileinto\";"),
	    "COMPILE:line 2, column 1: require must come before every other command, at the top");
	assert_string_equal(run("else { keep; }"),
			    "COMPILE:line 1, column 1: else without an if before it");
	assert_string_equal(run("if size 10 { keep; }"),
			    "COMPILE:line 1, column 4: size needs :over or :under");
	assert_string_equal(run("keep;\n\"unterminated"),
			    "COMPILE:line 2, column 1: string not closed (\" missing)");
	assert_string_equal(
	    run("require \"regex\"; if header :regex \"subject\" \"a(b\" { keep; }"),
	    "COMPILE:line 1, column 21: regular expression \"a(b\": ( without )");
	assert_string_equal(run("/* never closed"),
			    "COMPILE:line 1, column 1: comment not closed (*/ missing)");
	assert_string_equal(run("keep;\n  \x01"),
			    "COMPILE:line 2, column 3: unexpected character '?'");
}

static void test_bounds(void **state)
{
	(void)state;
	/* 10,000 nested ifs: refused at the 33rd level, quickly, without deep recursion */
	size_t n = 10000, cap = n * 20 + 16, o = 0;
	char *deep = malloc(cap);
	for (size_t i = 0; i < n; i++)
		o += (size_t)snprintf(deep + o, cap - o, "if true {");
	for (size_t i = 0; i < n; i++)
		deep[o++] = '}';
	deep[o] = '\0';
	const char *r = run(deep);
	assert_non_null(strstr(r, "nested too deeply"));
	assert_non_null(strstr(r, "line 1, column 292"));
	/* deep test nesting: not(not(not(...))) */
	o = 0;
	o += (size_t)snprintf(deep + o, cap - o, "if ");
	for (size_t i = 0; i < n; i++)
		o += (size_t)snprintf(deep + o, cap - o, "not ");
	o += (size_t)snprintf(deep + o, cap - o, "true { keep; }");
	assert_non_null(strstr(run(deep), "nested too deeply"));
	free(deep);
	/* a 1 MB script: refused before parsing, with its size */
	size_t big = 1024 * 1024;
	char *s = malloc(big + 1);
	memset(s, ' ', big);
	memcpy(s, "keep;", 5);
	s[big] = '\0';
	struct sieve_script *sc;
	struct sieve_error err;
	assert_int_equal(sieve_compile(s, big, 0, &sc, &err), -1);
	assert_string_equal(err.msg, "the script is 1048576 bytes, over the limit of 524288");
	free(s);
	/* a string over 64 KB */
	s = malloc(70000 + 32);
	o = (size_t)snprintf(s, 32, "reject \"");
	memset(s + o, 'a', 70000);
	memcpy(s + o + 70000, "\";", 3);
	assert_int_equal(sieve_compile(s, strlen(s), 0, &sc, &err), -1);
	assert_string_equal(err.msg, "string too long (at most 64 KB)");
	free(s);
	/* numbers */
	assert_non_null(
	    strstr(run("if size :over 99999999999999999999 { keep; }"), "number too large"));
	assert_non_null(strstr(run("if size :over 9999999999999G { keep; }"), "number too large"));
}

/* The classic catastrophic pattern: (a+)+$ against "aaaa...!" is exponential
 * for a backtracking engine; here it is bounded by program x input. */
static void test_regex_bounded(void **state)
{
	(void)state;
	char err[200] = "";
	uint64_t budget = 50000000ULL;
	char input[200];
	memset(input, 'a', 150);
	input[150] = '!';
	struct sv_regex *re = sv_regex_compile("(a+)+$", 6, 0, err, sizeof(err));
	assert_non_null(re);
	clock_t t0 = clock();
	assert_int_equal(sv_regex_exec(re, input, 151, NULL, &budget), 0);
	double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
	assert_true(50000000ULL - budget < 20000); /* steps, not time, decide */
	(void)secs;
	sv_regex_free(&re);
	/* nested bounded repetitions that would blow up a backtracker's or glibc's memory */
	assert_null(sv_regex_compile("(a{1,255}){1,255}", 17, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "too complex"));
	assert_null(sv_regex_compile("(a)\\1", 5, 0, err, sizeof(err)));
	assert_string_equal(err, "back-references are not supported");
	/* a budget that runs out: -1, never a hang */
	re = sv_regex_compile("(x|x|x|x|x|x|x|x)*y", 19, 0, err, sizeof(err));
	char *big = malloc(SIEVE_REGEX_MAX_INPUT);
	memset(big, 'x', SIEVE_REGEX_MAX_INPUT);
	budget = 1000000;
	assert_int_equal(sv_regex_exec(re, big, SIEVE_REGEX_MAX_INPUT, NULL, &budget), -1);
	free(big);
	sv_regex_free(&re);
	/* the run: a script with such a regex on a big body fails (INBOX), does not hang */
	const char *r =
	    run("require [\"regex\", \"body\"]; if body :raw :regex \"(a|aa|aaa|aaaa)*(b|bb)*c$\" "
		"{ discard; }");
	assert_string_equal(r, "implicit");
	/* captures */
	long caps[20];
	budget = 1000000;
	re = sv_regex_compile("^([a-z]+)-([0-9]{2,3})$", 23, 0, err, sizeof(err));
	assert_int_equal(sv_regex_exec(re, "abc-123", 7, caps, &budget), 1);
	assert_int_equal(caps[2], 0);
	assert_int_equal(caps[3], 3);
	assert_int_equal(caps[4], 4);
	assert_int_equal(caps[5], 7);
	assert_int_equal(sv_regex_exec(re, "abc-1234", 8, caps, &budget), 0);
	sv_regex_free(&re);
	re = sv_regex_compile("[[:digit:]]+\\s[^x]", 18, 1, err, sizeof(err));
	assert_non_null(re);
	assert_int_equal(sv_regex_exec(re, "ab 12 Y", 7, caps, &budget), 1);
	sv_regex_free(&re);
	assert_string_equal(run("require [\"regex\", \"variables\", \"fileinto\"];\n"
				"if header :regex \"list-id\" \"<([a-z-]+)\\\\.vger\" { fileinto "
				"\"Lists.${1}\"; }"),
			    "fileinto:Lists.linux-kernel");
}

static void test_matches_and_variables(void **state)
{
	(void)state;
	/* RFC 5229 3.2's example */
	assert_string_equal(run("require [\"variables\", \"fileinto\"];\n"
				"if header :matches \"List-ID\" \"*<*@*\" {\n"
				"  fileinto \"INBOX.lists.${2}\"; stop; }"),
			    "implicit");
	assert_string_equal(
	    run("require [\"variables\", \"fileinto\"];\n"
		"if header :matches \"List-ID\" \"*<*.vger*\" { fileinto \"Lists.${2}\"; }"),
	    "fileinto:Lists.linux-kernel");
	assert_string_equal(
	    run("require \"variables\"; set \"a\" \"Hello\"; set :upper \"b\" \"${a}\";"
		"set :length \"l\" \"${b}\"; if string :is \"${b}-${l}\" \"HELLO-5\" { discard; }"),
	    "discard");
	assert_string_equal(run("require \"variables\"; set :quotewildcard \"q\" \"a*b?\";"
				"if string :is \"${q}\" \"a\\\\*b\\\\?\" { discard; }"),
			    "discard");
	/* ? is one character, * the shortest, \\ quotes */
	assert_string_equal(run("if header :matches \"x-priority\" \"?\" { discard; }"), "discard");
	assert_string_equal(run("if header :matches \"subject\" \"*MEETING\" { discard; }"),
			    "discard");
	assert_string_equal(run("if header :matches \"subject\" \"*meet\" { discard; }"),
			    "implicit");
	/* unknown variables are empty */
	assert_string_equal(
	    run("require \"variables\"; if string :is \"${nope}\" \"\" { discard; }"), "discard");
	/* a pathological :matches is bounded too (one backtracking point) */
	assert_string_equal(
	    run("require \"body\"; if body :raw :matches \"*a*a*a*a*a*a*a*a*a*a*z\" { discard; }"),
	    "implicit");
}

static void test_extensions(void **state)
{
	(void)state;
	/* subaddress (RFC 5233) */
	assert_string_equal(
	    run("require [\"envelope\", \"subaddress\", \"fileinto\", \"variables\"];\n"
		"if envelope :detail :matches \"to\" \"*\" { fileinto \"${1}\"; }"),
	    "fileinto:lists");
	assert_string_equal(
	    run("require [\"subaddress\"]; if address :user \"to\" \"bob\" { discard; }"),
	    "discard");
	assert_string_equal(run_full("require [\"envelope\", \"subaddress\"]; if envelope :detail "
				     ":matches \"to\" \"*\" { discard; }",
				     MSG, "a@b", "bob@example.org", -1, NULL),
			    "implicit");
	/* envelope of the null sender */
	assert_string_equal(
	    run_full("require \"envelope\"; if envelope :is \"from\" \"\" { discard; }", MSG, "",
		     "bob@example.org", -1, NULL),
	    "discard");
	/* relational (RFC 5231 section 6) */
	assert_string_equal(
	    run("require [\"relational\", \"comparator-i;ascii-numeric\"];\n"
		"if header :value \"lt\" :comparator \"i;ascii-numeric\" [\"x-priority\"] [\"3\"] "
		"{ discard; }"),
	    "discard");
	assert_string_equal(
	    run("require [\"relational\", \"comparator-i;ascii-numeric\"];\n"
		"if address :count \"ge\" :comparator \"i;ascii-numeric\" [\"to\", \"cc\"] [\"3\"] "
		"{ discard; }"),
	    "discard");
	assert_string_equal(
	    run("require \"relational\"; if header :count \"eq\" \"received\" \"2\" { discard; }"),
	    "discard");
	/* imap4flags (RFC 5232) */
	assert_string_equal(
	    run("require [\"imap4flags\", \"fileinto\"];\n"
		"addflag \"\\\\Flagged\"; addflag [\"$Work\", \"\\\\flagged\"];"
		"removeflag \"$Work\"; fileinto :flags \"\\\\Seen $x\" \"A\"; keep;"),
	    "fileinto:A[\\Seen $x] keep[\\Flagged]");
	assert_string_equal(run("require \"imap4flags\"; setflag \"\\\\Seen\";"),
			    "implicit[\\Seen]");
	assert_string_equal(run("require [\"imap4flags\", \"variables\"]; setflag \"v\" \"a b\"; "
				"addflag \"v\" \"c\";"
				"if hasflag :contains \"v\" \"b\" { discard; }"),
			    "discard");
	/* copy, mailbox :create, mailboxexists */
	assert_string_equal(
	    run("require [\"fileinto\", \"copy\", \"mailbox\"];\n"
		"if mailboxexists \"Junk\" { fileinto :copy :create \"New.Folder\"; }"),
	    "fileinto:New.Folder implicit");
	assert_string_equal(
	    run("require \"mailbox\"; if mailboxexists [\"Junk\", \"Nope\"] { discard; }"),
	    "implicit");
	/* body (RFC 5173): text parts decoded, not the PDF unless asked */
	assert_string_equal(run("require \"body\"; if body :contains \"agenda\" { discard; }"),
			    "discard");
	assert_string_equal(run("require \"body\"; if body :contains \"Grüße\" { discard; }"),
			    "discard");
	assert_string_equal(run("require \"body\"; if body :contains \"blueprint\" { discard; }"),
			    "implicit");
	assert_string_equal(
	    run("require \"body\"; if body :content \"application\" :contains \"blueprint\" "
		"{ discard; }"),
	    "discard");
	assert_string_equal(
	    run("require \"body\"; if body :raw :contains \"c2VjcmV0\" { discard; }"), "discard");
	/* date and index (RFC 5260) */
	assert_string_equal(
	    run("require \"date\"; if date :zone \"-0800\" :is \"date\" \"date\" \"1997-04-01\" "
		"{ discard; }"),
	    "discard");
	assert_string_equal(run("require \"date\"; if date :originalzone :is \"date\" \"hour\" "
				"\"09\" { discard; }"),
			    "discard");
	assert_string_equal(
	    run("require \"date\"; if date :zone \"+0000\" :is \"date\" \"weekday\" \"2\" "
		"{ discard; }"),
	    "discard");
	assert_string_equal(
	    run("require [\"date\", \"index\"]; if date :index 2 :zone \"+0000\" :is \"received\" "
		"\"second\" \"30\" { discard; }"),
	    "discard");
	assert_string_equal(
	    run("require [\"date\", \"index\"]; if header :index 1 :last :contains \"received\" "
		"\"from c\" { discard; }"),
	    "discard");
	assert_string_equal(
	    run("require [\"date\", \"relational\"]; if currentdate :zone \"+0000\" :value \"ge\" "
		"\"date\" \"2023-11-14\" { discard; }"),
	    "discard");
	assert_non_null(
	    strstr(run("require \"date\"; if currentdate :is \"fortnight\" \"1\" { keep; }"),
		   "unknown date part"));
	/* spamtest (RFC 5235) fed by the filter's probability */
	const char *st = "require [\"spamtest\", \"relational\", \"comparator-i;ascii-numeric\", "
			 "\"fileinto\"];\n"
			 "if spamtest :value \"ge\" :comparator \"i;ascii-numeric\" \"8\" { "
			 "fileinto \"Junk\"; }";
	assert_string_equal(run_full(st, MSG, "a@b", "bob@x", 97, NULL), "fileinto:Junk");
	assert_string_equal(run_full(st, MSG, "a@b", "bob@x", 10, NULL), "implicit");
	assert_string_equal(run_full(st, MSG, "a@b", "bob@x", -1, NULL), "implicit");
	assert_string_equal(
	    run_full("require [\"spamtestplus\", \"relational\", \"comparator-i;ascii-numeric\"];"
		     "if spamtest :percent :value \"gt\" :comparator \"i;ascii-numeric\" \"90\" "
		     "{ discard; }",
		     MSG, "a@b", "bob@x", 97, NULL),
	    "discard");
	assert_string_equal(run("require \"virustest\"; if virustest :is \"0\" { discard; }"),
			    "discard");
	/* reject / ereject (RFC 5429) */
	assert_string_equal(run("require \"reject\"; reject \"not here\";"), "reject:not here");
	assert_string_equal(run("require \"ereject\"; ereject \"no\";"), "ereject:no");
	assert_non_null(
	    strstr(run("require [\"reject\", \"fileinto\"]; fileinto \"x\"; reject \"no\";"),
		   "ERR:reject cannot be used together with"));
	/* vacation (RFC 5230) */
	struct sieve_result res;
	run_full("require \"vacation\"; vacation :days 3 :subject \"Away\" :addresses "
		 "[\"bob@example.org\"] "
		 "\"I am away.\";",
		 MSG, "a@b", "bob@x", -1, &res);
	assert_int_equal(res.n, 1);
	assert_int_equal(res.actions[0].kind, SIEVE_VACATION);
	assert_int_equal(res.actions[0].period, 3 * 86400);
	assert_string_equal(res.actions[0].subject, "Away");
	assert_string_equal(res.actions[0].reason, "I am away.");
	assert_int_equal(res.actions[0].naddresses, 1);
	assert_true(res.implicit_keep);
	sieve_result_free(&res);
	assert_non_null(strstr(run("require \"vacation\"; vacation \"a\"; vacation \"b\";"),
			       "once per message"));
	/* multi-line strings with dot-stuffing */
	run_full("require \"vacation\"; vacation text:\r\nline one\r\n..dot\r\n.\r\n;", MSG, "a@b",
		 "bob@x", -1, &res);
	assert_string_equal(res.actions[0].reason, "line one\r\n.dot\r\n");
	sieve_result_free(&res);
}

static void test_include(void **state)
{
	(void)state;
	inc_text = "require [\"fileinto\", \"include\"]; if header :contains \"list-id\" \"vger\" "
		   "{ fileinto \"Lists\"; return; } "
		   "discard;";
	assert_string_equal(run("require \"include\"; include :personal \"lists\"; keep;"),
			    "fileinto:Lists keep");
	assert_non_null(strstr(run("require \"include\"; include \"missing\";"), "does not exist"));
	assert_string_equal(run("require \"include\"; include :optional \"missing\";"), "implicit");
	/* an include of itself stops at the depth bound */
	inc_text = "require \"include\"; include \"lists\";";
	assert_non_null(
	    strstr(run("require \"include\"; include \"lists\";"), "nested too deeply"));
	/* :once */
	inc_text = "require \"fileinto\"; fileinto \"L\";";
	assert_string_equal(
	    run("require \"include\"; include :once \"lists\"; include :once \"lists\";"),
	    "fileinto:L");
	/* global variables */
	inc_text = "require [\"include\", \"variables\", \"fileinto\"]; global \"box\"; fileinto "
		   "\"${box}\";";
	assert_string_equal(run("require [\"include\", \"variables\"]; global \"box\"; set \"box\" "
				"\"Shared\"; include \"lists\";"),
			    "fileinto:Shared");
	inc_text = "require \"fileinto\"; fileinto \"x\"; broken";
	assert_non_null(strstr(run("require \"include\"; include \"lists\";"),
			       "ERR:included script \"lists\""));
	inc_text = NULL;
}

static void test_addresses(void **state)
{
	(void)state;
	assert_string_equal(run("if address :all :is \"to\" \"carol@example.net\" { discard; }"),
			    "discard");
	assert_string_equal(run("if address :localpart :is \"from\" \"alice\" { discard; }"),
			    "discard");
	assert_string_equal(run("if address :domain :is \"from\" \"EXAMPLE.com\" { discard; }"),
			    "discard");
	const char *grp = "To: undisclosed-recipients:;\r\nFrom: (comment) x@y.z (c2)\r\n\r\nb\r\n";
	assert_string_equal(
	    run_full("if address :is \"from\" \"x@y.z\" { discard; }", grp, "", "b@c", -1, NULL),
	    "discard");
	assert_string_equal(
	    run_full("require \"relational\"; if address :count \"eq\" \"to\" \"0\" { discard; }",
		     grp, "", "b@c", -1, NULL),
	    "discard");
	/* lists that are not valid are one address, the raw value, seen by :all
	 * only (RFC 5228 2.7.4), as Pigeonhole takes them */
	const char *bad = "To: \r\nCc: <a@b.c>junk.com, <d@e.f>\r\nFrom: Just A Name\r\n\r\nb\r\n";
	assert_string_equal(
	    run_full("if address :all :is \"to\" \"\" { discard; }", bad, "", "b@c", -1, NULL),
	    "discard");
	assert_string_equal(
	    run_full("require \"relational\"; if address :count \"eq\" [\"to\", \"cc\"] \"2\" "
		     "{ discard; }",
		     bad, "", "b@c", -1, NULL),
	    "discard");
	assert_string_equal(
	    run_full("if address :all :contains \"cc\" \"junk.com, <d@\" { discard; }", bad, "",
		     "b@c", -1, NULL),
	    "discard");
	assert_string_equal(run_full("if address :localpart :contains \"cc\" \"a\" { discard; }",
				     bad, "", "b@c", -1, NULL),
			    "implicit");
	assert_string_equal(run_full("if address :all :is \"from\" \"Just A Name\" { discard; }",
				     bad, "", "b@c", -1, NULL),
			    "discard");
	/* raw 8-bit bytes: a stray lead byte never swallows the ']' after it,
	 * and a folder name made of them is made valid UTF-8 */
	const char *raw8 = "Subject: [\xb1\xa4\xb0\xed]\xb8 x\r\n\r\nb\r\n";
	assert_string_equal(
	    run_full("require [\"fileinto\", \"variables\"]; if header :matches \"subject\" "
		     "\"*[*]*\" { fileinto \"Tag.${2}\"; }",
		     raw8, "", "b@c", -1, NULL),
	    "fileinto:Tag.\xef\xbf\xbd");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc5228_examples),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_regex_bounded),
	    cmocka_unit_test(test_matches_and_variables),
	    cmocka_unit_test(test_extensions),
	    cmocka_unit_test(test_include),
	    cmocka_unit_test(test_addresses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
