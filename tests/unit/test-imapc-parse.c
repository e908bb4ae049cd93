/* Unit tests of the IMAP client's response parser (tools/imapc_parse.c,
 * compiled in here: unit tests link index/ and lib/ only). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tools/imapc_parse.c"

static void parse_str(const char *text, struct imapc_resp *r, char **buf_r)
{
	size_t len = strlen(text);
	char *buf = malloc(len + 1);
	memcpy(buf, text, len + 1);
	assert_int_equal(imapc_response_end(buf, len, 1 << 20), (ssize_t)len);
	assert_int_equal(imapc_parse(buf, len, r), 0);
	*buf_r = buf;
}

static void test_fetch_with_literal(void **state)
{
	(void)state;
	struct imapc_resp r = {0};
	char *buf;
	const char *t = "* 12 FETCH (UID 40 FLAGS (\\Seen $Forwarded) INTERNALDATE "
			"\"17-Jul-1996 02:44:25 -0700\" BODY[] {7}\r\nhe\r\nllo X-GM-LABELS "
			"(\"\\\\Important\" Work))\r\n";

	/* a response cut anywhere is incomplete, never an error */
	for (size_t i = 0; i < strlen(t); i++)
		assert_int_equal(imapc_response_end(t, i, 1 << 20), 0);
	parse_str(t, &r, &buf);
	assert_int_equal(r.kind, IMAPC_UNTAGGED);
	assert_int_equal(r.status, IMAPC_DATA);
	assert_int_equal(imapc_number(&r, r.first), 12);
	int32_t items = r.nodes[r.nodes[r.first].next].next;
	assert_int_equal(imapc_number(&r, imapc_list_get(&r, items, "UID")), 40);
	const struct imapc_node *b = imapc_node(&r, imapc_list_get(&r, items, "BODY[]"));
	assert_non_null(b);
	assert_int_equal(b->literal, 1);
	assert_int_equal(b->len, 7);
	assert_memory_equal(b->s, "he\r\nllo", 7);
	const struct imapc_node *fl = imapc_node(&r, imapc_list_get(&r, items, "FLAGS"));
	assert_int_equal(fl->type, IMAPC_LIST);
	assert_true(imapc_is_atom(&r, fl->first, "\\SEEN"));
	int32_t labels = imapc_list_get(&r, items, "X-GM-LABELS");
	char out[32];
	assert_int_equal(imapc_copy(&r, r.nodes[labels].first, out, sizeof(out)), 0);
	assert_string_equal(out, "\\Important"); /* unescaped */
	const struct imapc_node *d = imapc_node(&r, imapc_list_get(&r, items, "INTERNALDATE"));
	int64_t when;
	assert_int_equal(imapc_parse_date(d->s, d->len, &when), 0);
	assert_int_equal(when, 837596665); /* 1996-07-17 09:44:25 UTC */
	imapc_resp_free(&r);
	free(buf);
}

static void test_status_and_codes(void **state)
{
	(void)state;
	struct imapc_resp r = {0};
	char *buf, code[32];

	parse_str("m3 NO [THROTTLED] Slow down {5}\r\n", &r, &buf); /* text: never a literal */
	assert_int_equal(r.kind, IMAPC_TAGGED);
	assert_int_equal(r.taglen, 2);
	assert_int_equal(r.status, IMAPC_NO);
	assert_int_equal(imapc_copy(&r, r.nodes[r.code].first, code, sizeof(code)), 0);
	assert_string_equal(code, "THROTTLED");
	assert_int_equal(r.textlen, strlen("Slow down {5}"));
	free(buf);
	parse_str("* OK [PERMANENTFLAGS (\\Seen \\*)] Flags\r\n", &r, &buf);
	assert_int_equal(r.status, IMAPC_OK);
	assert_true(imapc_is_atom(&r, r.nodes[r.code].first, "PERMANENTFLAGS"));
	free(buf);
	parse_str("* LIST (\\HasNoChildren \\Sent) \"/\" {10}\r\nSent Items\r\n", &r, &buf);
	int32_t name = r.nodes[r.nodes[r.nodes[r.first].next].next].next;
	assert_int_equal(imapc_copy(&r, name, code, sizeof(code)), 0);
	assert_string_equal(code, "Sent Items");
	free(buf);
	parse_str("+ \r\n", &r, &buf);
	assert_int_equal(r.kind, IMAPC_CONTINUE);
	free(buf);
	imapc_resp_free(&r);
}

static void test_limits(void **state)
{
	(void)state;
	struct imapc_resp r = {0};
	char buf[64];

	/* a literal over the caller's maximum is refused before it is read */
	assert_int_equal(imapc_response_end("* 1 FETCH (BODY[] {99999}\r\n", 27, 1000), -1);
	/* malformed: unbalanced, a tagged data line, a bad literal */
	snprintf(buf, sizeof(buf), "%s", "* 1 FETCH (UID 1\r\n");
	assert_int_equal(imapc_parse(buf, strlen(buf), &r), -1);
	snprintf(buf, sizeof(buf), "%s", "a1 FETCH x\r\n");
	assert_int_equal(imapc_parse(buf, strlen(buf), &r), -1);
	snprintf(buf, sizeof(buf), "%s", "* 1 FETCH (BODY[] {9}\r\nab)\r\n");
	assert_int_equal(imapc_parse(buf, strlen(buf), &r), -1);
	/* deep nesting */
	char deep[200];
	size_t o = 0;
	o += (size_t)snprintf(deep, sizeof(deep), "* X ");
	for (int i = 0; i < 40; i++)
		deep[o++] = '(';
	for (int i = 0; i < 40; i++)
		deep[o++] = ')';
	deep[o++] = '\r';
	deep[o++] = '\n';
	assert_int_equal(imapc_parse(deep, o, &r), -1);
	int64_t t;
	assert_int_equal(imapc_parse_date(" 7-Jul-1996 02:44:25 +0000", 26, &t), 0);
	assert_int_equal(imapc_parse_date("17-Foo-1996 02:44:25 +0000", 26, &t), -1);
	imapc_resp_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fetch_with_literal),
	    cmocka_unit_test(test_status_and_codes),
	    cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
