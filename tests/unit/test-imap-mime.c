/* Unit tests of imapd/mime.c: part ranges, sections, BODYSTRUCTURE and
 * ENVELOPE text, search fields. (The module is included: unit binaries link
 * libindex/libmk only.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "imapd/mime.c"
#include "imapd/wire.c"

static const char msg[] = "From: \"Doe, John\" <john@example.org>\r\n"
			  "To: a@example.org, Friends: b@x.org;\r\n"
			  "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
			  "Date: Tue, 3 Feb 2004 10:00:00 +0100\r\n"
			  "Message-ID: <id@example.org>\r\n"
			  "Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
			  "\r\n"
			  "preamble\r\n"
			  "--XX\r\n"
			  "Content-Type: text/plain; charset=utf-8\r\n"
			  "\r\n"
			  "line one\r\nline two\r\n"
			  "--XX\r\n"
			  "Content-Type: message/rfc822\r\n"
			  "\r\n"
			  "Subject: inner\r\n"
			  "\r\n"
			  "inner text\r\n"
			  "--XX--\r\n"
			  "epilogue\r\n";

static void section(const char *spec, const char *want)
{
	size_t start, len;
	struct buf out;
	buf_init(&out, 1 << 16);
	assert_int_equal(mime_section(msg, sizeof(msg) - 1, spec, &start, &len, &out), 0);
	if (start == SIZE_MAX) {
		assert_int_equal(out.len, strlen(want));
		assert_memory_equal(out.data, want, out.len);
	} else {
		assert_int_equal(len, strlen(want));
		assert_memory_equal(msg + start, want, len);
	}
	buf_free(&out);
}

static void test_sections(void **state)
{
	(void)state;
	section("1", "line one\r\nline two");
	section("1.MIME", "Content-Type: text/plain; charset=utf-8\r\n\r\n");
	section("2", "Subject: inner\r\n\r\ninner text");
	section("2.HEADER", "Subject: inner\r\n\r\n");
	section("2.TEXT", "inner text");
	section("2.1", "inner text");
	section("HEADER.FIELDS (subject message-id)",
		"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nMessage-ID: <id@example.org>\r\n\r\n");
	section("3", "");   /* no such part: empty */
	section("1.1", ""); /* a text part has no sub-parts */
	size_t s, l;
	struct buf out;
	buf_init(&out, 1024);
	assert_int_equal(mime_section(msg, sizeof(msg) - 1, "BOGUS", &s, &l, &out), -1);
	assert_int_equal(mime_section(msg, sizeof(msg) - 1, "MIME", &s, &l, &out), -1);
	assert_int_equal(mime_section(msg, sizeof(msg) - 1, "0", &s, &l, &out), -1);
	buf_free(&out);
}

static void test_describe(void **state)
{
	struct buf env, body, bs;
	(void)state;
	buf_init(&env, 1 << 16);
	buf_init(&body, 1 << 16);
	buf_init(&bs, 1 << 16);
	assert_int_equal(mime_describe(msg, sizeof(msg) - 1, &env, &body, &bs), 0);
	assert_string_equal(
	    env.data,
	    "(\"Tue, 3 Feb 2004 10:00:00 +0100\" \"=?utf-8?q?Gr=C3=BC=C3=9Fe?=\" "
	    "((\"Doe, John\" NIL \"john\" \"example.org\")) ((\"Doe, John\" NIL \"john\" "
	    "\"example.org\")) "
	    "((\"Doe, John\" NIL \"john\" \"example.org\")) ((NIL NIL \"a\" \"example.org\")"
	    "(NIL NIL \"Friends\" NIL)(NIL NIL \"b\" \"x.org\")(NIL NIL NIL NIL)) NIL NIL NIL "
	    "\"<id@example.org>\")");
	assert_string_equal(
	    body.data,
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 18 1)"
	    "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 28 (NIL \"inner\" NIL NIL NIL NIL NIL "
	    "NIL NIL NIL) "
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 10 0) 2) \"MIXED\")");
	assert_non_null(strstr(bs.data, "\"MIXED\" (\"BOUNDARY\" \"XX\") NIL NIL NIL)"));
	buf_free(&env);
	buf_free(&body);
	buf_free(&bs);
}

static void test_search_fields(void **state)
{
	struct buf b;
	(void)state;
	buf_init(&b, 1 << 16);
	assert_int_equal(mime_search_fields(msg, sizeof(msg) - 1, &b), 0);
	/* Subject: raw, TAB, decoded */
	assert_string_equal(b.data, "=?utf-8?q?Gr=C3=BC=C3=9Fe?=\tGrüße");
	const char *p = b.data;
	for (int i = 0; i < 5; i++)
		p += strlen(p) + 1;
	char want[32];
	snprintf(want, sizeof(want), "%lld", mime_days_from_civil(2004, 2, 3));
	assert_string_equal(p, want);
	assert_int_equal(mime_days_from_civil(1970, 1, 1), 0);
	assert_int_equal(mime_days_from_civil(2000, 3, 1), 11017);
	buf_free(&b);
}

static void test_degenerate(void **state)
{
	struct buf env, bs;
	(void)state;
	buf_init(&env, 1 << 16);
	buf_init(&bs, 1 << 16);
	/* no header/body separator, a multipart without its boundary, deep nesting */
	const char *weird[] = {
	    "Subject: x", "", "\r\n", "Content-Type: multipart/mixed\r\n\r\nbody\r\n",
	    "Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n--a\r\n--a--"};
	for (size_t i = 0; i < sizeof(weird) / sizeof(weird[0]); i++) {
		buf_reset(&env);
		buf_reset(&bs);
		assert_int_equal(mime_describe(weird[i], strlen(weird[i]), &env, NULL, &bs), 0);
		assert_true(bs.len > 0 && bs.data[0] == '(');
	}
	char deep[4096];
	size_t o = 0;
	for (int i = 0; i < 60; i++)
		o += (size_t)snprintf(deep + o, sizeof(deep) - o,
				      "Content-Type: message/rfc822\r\n\r\n");
	assert_int_equal(mime_describe(deep, o, &env, NULL, &bs), 0);
	buf_free(&env);
	buf_free(&bs);
}

/* ENVELOPE addresses: names from comments, groups, routes (imaptest's cases) */
static void envelope_of(const char *hdr, const char *want)
{
	struct buf env;
	buf_init(&env, 1 << 16);
	assert_int_equal(mime_describe(hdr, strlen(hdr), &env, NULL, NULL), 0);
	if (strstr(env.data, want) == NULL)
		fail_msg("ENVELOPE %s\n  lacks %s", env.data, want);
	buf_free(&env);
}

static void test_addresses(void **state)
{
	(void)state;
	envelope_of("From: user@domain (Real Name)\r\n\r\n",
		    "((\"Real Name\" NIL \"user\" \"domain\"))");
	envelope_of("From: \"Doe, John\" <john@x.org>\r\n\r\n",
		    "((\"Doe, John\" NIL \"john\" \"x.org\"))");
	envelope_of("To: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\r\n\r\n",
		    "((NIL NIL \"group\" NIL)(NIL NIL \"g1\" \"d1.org\")(NIL NIL \"g2\" "
		    "\"d2.org\")(NIL NIL NIL NIL)"
		    "(NIL NIL \"group2\" NIL)(NIL NIL \"g3\" \"d3.org\")(NIL NIL NIL NIL))");
	envelope_of(
	    "Cc: group:;, group2: (foo) ;\r\n\r\n",
	    "((NIL NIL \"group\" NIL)(NIL NIL NIL NIL)(NIL NIL \"group2\" NIL)(NIL NIL NIL NIL))");
	envelope_of("From: <@route:user@domain>\r\n\r\n", "((NIL \"@route\" \"user\" \"domain\"))");
	envelope_of("From: <user-from (comment)@ (comment) domain.org>\r\n\r\n",
		    "((NIL NIL \"user-from\" \"domain.org\"))");
	envelope_of("From: a@b, , junk <<, c@d\r\n\r\n", "(NIL NIL \"c\" \"d\")");
	/* SEARCH sees normalised addresses; the group's name is not an address */
	struct buf b;
	buf_init(&b, 1 << 16);
	const char *m =
	    "From: <user-from (comment)@ (comment) domain.org>\r\nTo: x: a@b.c;\r\n\r\n";
	assert_int_equal(mime_search_fields(m, strlen(m), &b), 0);
	const char *from = b.data + strlen(b.data) + 1;
	assert_non_null(strstr(from, "<user-from@domain.org>"));
	const char *to = from + strlen(from) + 1;
	assert_non_null(strstr(to, "\t<a@b.c>"));
	buf_free(&b);
}

static void base_subject(const char *in, const char *want, int reply)
{
	char out[256];
	assert_int_equal(mime_base_subject(in, out, sizeof(out)), reply);
	assert_string_equal(out, want);
}

static void test_base_subject(void **state)
{
	(void)state;
	base_subject("a", "a", 0);
	base_subject("[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)", "b", 1);
	base_subject("Re: [FWD: c]", "c", 1);
	base_subject("[xyz]", "[xyz]", 0); /* a blob that would leave nothing stays */
	base_subject("re: [fwd: [fwd: re: [fwd: babylon]]]", "babylon", 1);
	base_subject("Ad: Re: Ad: Re: Ad: x", "Ad: Re: Ad: Re: Ad: x", 0);
	base_subject("  Re:\t  spaced   out  ", "spaced out", 1);
	base_subject("", "", 0);
}

static void test_sort_fields(void **state)
{
	(void)state;
	const char *m = "Subject: Re: =?utf-8?q?b?=\r\nDate: Thu, 1 Jan 1970 01:00:10 +0100\r\n"
			"From: \"Real\" <rf@x.org>\r\nTo: g: t@x.org;\r\nMessage-ID: <id@x>\r\n"
			"In-Reply-To: <p@x> (comment) <q@x>\r\n\r\nbody\r\n";
	struct buf b;
	buf_init(&b, 1 << 16);
	assert_int_equal(mime_sort_fields(m, strlen(m), &b), 0);
	const char *want[10] = {"b", "R", "10", "rf", "g", "", "Real", "g", "<id@x>", "<p@x>"};
	const char *p = b.data;
	for (int i = 0; i < 10; i++) {
		assert_string_equal(p, want[i]);
		p += strlen(p) + 1;
	}
	assert_int_equal((size_t)(p - b.data), b.len);
	buf_free(&b);
}

static void test_binary(void **state)
{
	(void)state;
	const char *m = "Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
			"Content-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29y\r\nbGQ=\r\n--B\r\n"
			"Content-Transfer-Encoding: quoted-printable\r\n\r\nhello  "
			"\r\nbar=\r\n\r\nfoo=3Dx =\r\n=62\r\n--B\r\n"
			"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n--B--\r\n";
	struct buf b;
	buf_init(&b, 1 << 16);
	assert_int_equal(mime_binary(m, strlen(m), "1", &b), 0);
	assert_int_equal(b.len, 11);
	assert_memory_equal(b.data, "hello world", 11);
	buf_reset(&b);
	assert_int_equal(mime_binary(m, strlen(m), "2", &b), 0);
	assert_string_equal(b.data, "hello\r\nbar\r\nfoo=x b");
	buf_reset(&b);
	assert_int_equal(mime_binary(m, strlen(m), "3", &b), MIME_BINARY_UNKNOWN_CTE);
	assert_int_equal(mime_binary(m, strlen(m), "HEADER", &b), MIME_BINARY_BAD);
	buf_free(&b);
	/* a part holding NUL becomes base64, and BINARY gives the bytes back */
	const char raw[] = "From: a@b\r\nContent-Transfer-Encoding: binary\r\n\r\n\0-\xe4\n\r\n";
	struct buf out, dec;
	buf_init(&out, 1 << 16);
	buf_init(&dec, 1 << 16);
	assert_int_equal(mime_binary_to_base64(raw, sizeof(raw) - 1, &out), 1);
	assert_null(memchr(out.data, '\0', out.len));
	assert_non_null(strstr(out.data, "Content-Transfer-Encoding: base64\r\n\r\n"));
	assert_null(strstr(out.data, "binary"));
	assert_int_equal(mime_binary(out.data, out.len, "1", &dec), 0);
	assert_int_equal(dec.len, 6);
	assert_memory_equal(dec.data, "\0-\xe4\n\r\n", 6);
	buf_reset(&out);
	assert_int_equal(mime_binary_to_base64("a: b\r\n\r\nplain\r\n", 15, &out), 0);
	buf_free(&out);
	buf_free(&dec);
}

static void str_emit(void *ctx, const void *data, size_t len)
{
	buf_append(ctx, data, len);
}

/* wire.c: the one IMAP string quoter */
static void test_wire_string(void **state)
{
	struct buf b;
	(void)state;
	buf_init(&b, 1 << 16);
	wire_string("plain", 5, str_emit, &b);
	buf_append(&b, " ", 1);
	wire_string("q\"b\\s", 5, str_emit, &b);
	buf_append(&b, " ", 1);
	wire_string(NULL, 0, str_emit, &b);
	buf_append(&b, " ", 1);
	wire_string("a\r\nb", 4, str_emit, &b);
	buf_append(&b, " ", 1);
	wire_string("\xc3\xbc", 2, str_emit, &b);
	assert_string_equal(b.data, "\"plain\" \"q\\\"b\\\\s\" NIL {4}\r\na\r\nb {2}\r\n\xc3\xbc");
	buf_reset(&b);
	char big[1100];
	memset(big, 'x', sizeof(big));
	wire_string(big, sizeof(big), str_emit, &b); /* long: a literal */
	assert_memory_equal(b.data, "{1100}\r\n", 8);
	assert_int_equal(b.len, 8 + 1100);
	buf_free(&b);
}

/* wire.c: the CRLF form, read in pieces from any offset */
static void test_crlf(void **state)
{
	(void)state;
	const char *m = "a\nbb\r\ncc\n\n";
	const char *want = "a\r\nbb\r\ncc\r\n\r\n";
	size_t wl = strlen(want);
	assert_int_equal(wire_crlf_len(m, 0, strlen(m)), wl);
	assert_int_equal(wire_crlf_len(m, 2, 4), 4); /* "bb\r\n": nothing added */
	assert_int_equal(wire_crlf_len(m, 0, 2), 3); /* "a\n" */
	for (size_t off = 0; off <= wl + 1; off++)
		for (size_t cnt = 0; cnt <= wl + 1; cnt++)
			for (size_t piece = 1; piece <= 3; piece++) {
				struct wire_crlf r;
				char out[64];
				size_t o = 0, n;
				wire_crlf_open(&r, m, 0, strlen(m), off, cnt);
				while ((n = wire_crlf_read(&r, m, out + o, piece)) > 0)
					o += n;
				size_t exp = off >= wl ? 0 : (wl - off < cnt ? wl - off : cnt);
				assert_int_equal(o, exp);
				assert_memory_equal(out, want + (off < wl ? off : wl), exp);
			}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sections),	  cmocka_unit_test(test_describe),
	    cmocka_unit_test(test_search_fields), cmocka_unit_test(test_degenerate),
	    cmocka_unit_test(test_addresses),	  cmocka_unit_test(test_base_subject),
	    cmocka_unit_test(test_sort_fields),	  cmocka_unit_test(test_binary),
	    cmocka_unit_test(test_crlf),	  cmocka_unit_test(test_wire_string),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
