/* test-ldap-escape — RFC 4515 escaping and Postfix-style %s/%u/%d filter
 * expansion of index/dir_ldap.c (pure functions, no server). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/buf.h"
#include "index/dir_ldap.h"

static void escape_is(const char *in, size_t len, const char *want)
{
	struct buf b;

	buf_init(&b, 1024);
	assert_int_equal(dir_ldap_escape(in, len, &b), 0);
	assert_string_equal(b.data != NULL ? b.data : "", want);
	buf_free(&b);
}

static void test_escape_specials(void **state)
{
	(void)state;
	escape_is("*", 1, "\\2a");
	escape_is("(", 1, "\\28");
	escape_is(")", 1, "\\29");
	escape_is("\\", 1, "\\5c");
	escape_is("a\0b", 3, "a\\00b");
	escape_is("*)(uid=*", 8, "\\2a\\29\\28uid=\\2a");
	escape_is("\\2a", 3, "\\5c2a");
}

static void test_escape_plain_passes(void **state)
{
	(void)state;
	escape_is("bob@example.org", 15, "bob@example.org");
	escape_is("", 0, "");
	/* UTF-8 is allowed as is in RFC 4515 assertion values */
	escape_is("j\xc3\xbcrgen@example.org", 19, "j\xc3\xbcrgen@example.org");
	escape_is("a=b&c|d!e~f", 11, "a=b&c|d!e~f");
}

static void test_escape_bounded(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 4);
	assert_int_equal(dir_ldap_escape("ab", 2, &b), 0);
	/* "\2a" is 3 more bytes: over the limit of 4 */
	assert_int_equal(dir_ldap_escape("*", 1, &b), -1);
	buf_free(&b);
}

static int expand(const char *tmpl, const char *key, char *out, size_t outsize)
{
	struct buf b;
	int rc;

	buf_init(&b, 1024);
	rc = dir_ldap_expand(tmpl, key, &b);
	snprintf(out, outsize, "%s", b.data != NULL ? b.data : "");
	buf_free(&b);
	return rc;
}

static void test_expand_postfix_sequences(void **state)
{
	char out[1024];

	(void)state;
	assert_int_equal(expand("(mail=%s)", "bob@example.org", out, sizeof out), 0);
	assert_string_equal(out, "(mail=bob@example.org)");
	assert_int_equal(expand("(&(uid=%u)(domain=%d))", "bob@example.org", out, sizeof out), 0);
	assert_string_equal(out, "(&(uid=bob)(domain=example.org))");
	assert_int_equal(expand("(uid=%U)(d=%D)(s=%S)", "bob@example.org", out, sizeof out), 0);
	assert_string_equal(out, "(uid=bob)(d=example.org)(s=bob@example.org)");
	assert_int_equal(expand("(x=100%%)", "k", out, sizeof out), 0);
	assert_string_equal(out, "(x=100%)");
	/* %u of a key without '@' is the whole key */
	assert_int_equal(expand("(uid=%u)", "bob", out, sizeof out), 0);
	assert_string_equal(out, "(uid=bob)");
	/* the domain is after the last '@' */
	assert_int_equal(expand("(%u|%d)", "a@b@c", out, sizeof out), 0);
	assert_string_equal(out, "(a@b|c)");
}

static void test_expand_escapes_what_it_inserts(void **state)
{
	char out[1024];

	(void)state;
	assert_int_equal(expand("(mail=%s)", "*)(uid=*", out, sizeof out), 0);
	assert_string_equal(out, "(mail=\\2a\\29\\28uid=\\2a)");
	assert_int_equal(expand("(&(uid=%u)(dc=%d))", "b*b@ex)ample", out, sizeof out), 0);
	assert_string_equal(out, "(&(uid=b\\2ab)(dc=ex\\29ample))");
	assert_int_equal(expand("(mail=%s)", "back\\slash", out, sizeof out), 0);
	assert_string_equal(out, "(mail=back\\5cslash)");
	/* the template's own specials stay as written */
	assert_int_equal(expand("(|(mail=%s)(cn=*))", "x", out, sizeof out), 0);
	assert_string_equal(out, "(|(mail=x)(cn=*))");
}

static void test_expand_domain_needed(void **state)
{
	char out[1024];

	(void)state;
	/* as Postfix: %d of a key without a domain suppresses the query */
	assert_int_equal(expand("(&(uid=%u)(dc=%d))", "bob", out, sizeof out), 1);
}

static void test_expand_errors(void **state)
{
	char out[1024];
	struct buf b;

	(void)state;
	assert_int_equal(expand("(mail=%x)", "bob", out, sizeof out), -1);
	assert_int_equal(expand("(mail=%1)", "bob", out, sizeof out), -1);
	assert_int_equal(expand("(mail=bob)%", "bob", out, sizeof out), -1);
	buf_init(&b, 10);
	assert_int_equal(dir_ldap_expand("(mail=%s)", "bob@example.org", &b), -1);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_specials),
		cmocka_unit_test(test_escape_plain_passes),
		cmocka_unit_test(test_escape_bounded),
		cmocka_unit_test(test_expand_postfix_sequences),
		cmocka_unit_test(test_expand_escapes_what_it_inserts),
		cmocka_unit_test(test_expand_domain_needed),
		cmocka_unit_test(test_expand_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
