/* test-fts-text — a message's searchable text (index/fts_text.c): decoding,
 * charsets, HTML, names, folding, and the words the index is built from. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "index/fts.h"

static int has(const char *msg, enum fts_field f, const char *needle)
{
	return fts_match(msg, strlen(msg), f, needle);
}

static void test_transfer_encodings_and_charsets(void **state)
{
	(void)state;
	const char *qp = "Subject: x\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
			 "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
			 "Sch=F6ne Gr=FC=DFe, Lin=\r\nux.\r\n";
	assert_true(has(qp, FTS_BODY, "schöne grüße"));
	assert_true(has(qp, FTS_BODY, "LINUX")); /* across a soft line break, any case */
	assert_false(has(qp, FTS_BODY, "=F6"));	 /* the encoded form is not text */
	const char *b64 =
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n0J/RgNC40LLQtdGC\r\n"; /* Привет */
	assert_true(has(b64, FTS_BODY, "привет"));
	assert_true(has(b64, FTS_BODY, "ПРИВЕТ"));
	const char *h = "Subject: =?iso-8859-1?q?Caf=E9?= =?utf-8?b?w6AgUGFyaXM=?=\r\n\r\nbody\r\n";
	assert_true(has(h, FTS_TEXT, "caféà paris")); /* white space between encoded words goes */
	assert_true(has(h, FTS_TEXT, "=?iso-8859-1?q?caf=e9?=")); /* and the field as received */
	assert_false(has(h, FTS_BODY, "café"));
}

static void test_html_and_parts(void **state)
{
	(void)state;
	const char *m = "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\npreamble\r\n--b\r\n"
			"Content-Type: text/html; charset=utf-8\r\n\r\n"
			"<p>Caf&eacute; <b>sp</b>ecial &amp; <img alt=\"a kiwi\" "
			"src=x.png><script>var zz='hidden';</script>"
			"<!-- comment words --></p>\r\n--b\r\n"
			"Content-Type: application/pdf; name=\"Rechnung 2026.pdf\"\r\n"
			"Content-Transfer-Encoding: base64\r\n\r\nSGVsbG8gc2VjcmV0\r\n--b\r\n"
			"Content-Type: application/pgp-signature\r\n\r\nVersion: GnuPG v1.0.6 "
			"(GNU/Linux)\r\n--b--\r\n";
	assert_true(has(m, FTS_BODY, "café special & a kiwi"));
	assert_false(has(m, FTS_TEXT, "hidden"));	 /* script */
	assert_false(has(m, FTS_TEXT, "comment words")); /* comments */
	assert_true(has(m, FTS_TEXT, "rechnung 2026"));	 /* an attachment's name */
	assert_false(has(m, FTS_BODY, "rechnung"));	 /* is not body */
	assert_false(has(m, FTS_TEXT, "hello secret"));	 /* nor its contents */
	assert_false(has(m, FTS_BODY, "gnu/linux"));	 /* a signature is no text */
}

struct words {
	char w[64][FTS_WORD_MAX + 1];
	size_t n;
};

static void collect(const char *w, size_t len, void *ctx)
{
	struct words *ws = ctx;
	if (ws->n < 64) {
		memcpy(ws->w[ws->n], w, len);
		ws->w[ws->n++][len] = '\0';
	}
}

static int word_in(const struct words *ws, const char *w)
{
	for (size_t i = 0; i < ws->n; i++)
		if (strcmp(ws->w[i], w) == 0)
			return 1;
	return 0;
}

static void test_words_and_long_runs(void **state)
{
	(void)state;
	const char *m = "\r\nHello, World! abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ end\r\n";
	struct fts_text t;
	struct words ws = {0};
	fts_text_extract(m, strlen(m), &t);
	fts_text_words(&t, collect, &ws);
	assert_true(word_in(&ws, "hello") && word_in(&ws, "world") && word_in(&ws, "end"));
	/* a 46-byte run: windows of 32 every 16 bytes, and one ending where it ends */
	assert_true(word_in(&ws, "abcdefghijklmnopqrstuvwxyz012345"));
	assert_true(word_in(&ws, "qrstuvwxyz0123456789abcdefghij") == 0); /* not a window start */
	assert_true(word_in(&ws, "opqrstuvwxyz0123456789abcdefghij"));	  /* the last window */
	fts_text_free(&t);
	size_t l;
	char *f = fts_fold("ÄÖÜ ĀĂ ΣΩ ЖЯ Ÿ", strlen("ÄÖÜ ĀĂ ΣΩ ЖЯ Ÿ"), &l);
	assert_string_equal(f, "äöü āă σω жя ÿ");
	free(f);
}

static void test_query_parse(void **state)
{
	(void)state;
	struct fts_query q;
	assert_int_equal(fts_query_parse("Invoice from:ACME \"next week\" body:x", &q), 0);
	assert_int_equal(q.n, 4);
	assert_string_equal(q.t[0].s, "invoice");
	assert_int_equal(q.t[1].field, FTS_HEADERS);
	assert_string_equal(q.t[1].header, "from");
	assert_string_equal(q.t[1].s, "acme");
	assert_string_equal(q.t[2].s, "next week");
	assert_int_equal(q.t[3].field, FTS_BODY);
	fts_query_free(&q);
	assert_int_equal(fts_query_parse("   ", &q), STORE_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_transfer_encodings_and_charsets),
	    cmocka_unit_test(test_html_and_parts),
	    cmocka_unit_test(test_words_and_long_runs),
	    cmocka_unit_test(test_query_parse),
	};
	return cmocka_run_group_tests_name("fts-text", tests, NULL, NULL);
}
