/* test-smtp-parse — smtpin/parse.c: command lines, paths, parameters,
 * routing tricks, HELO names (base64, which SMTP AUTH uses, is lib/base64.c:
 * tests/unit/test-base64.c). The parser is compiled in (it lives
 * in a program folder, not in a library). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "smtpin/parse.c"

static void test_command(void **state)
{
	struct smtp_command c;
	(void)state;
	assert_int_equal(smtp_parse_command("mail FROM:<a@b.c>", 17, &c), 0);
	assert_int_equal(c.verb, SMTP_MAIL);
	assert_int_equal(c.arg_len, 12);
	assert_memory_equal(c.arg, "FROM:<a@b.c>", 12);
	assert_string_equal(c.name, "MAIL");
	assert_int_equal(smtp_parse_command("  QUIT  ", 8, &c), 0);
	assert_int_equal(c.verb, SMTP_QUIT);
	assert_int_equal(c.arg_len, 0);
	assert_int_equal(smtp_parse_command("STARTTLS", 8, &c), 0);
	assert_int_equal(c.verb, SMTP_STARTTLS);
	assert_int_equal(smtp_parse_command("GET / HTTP/1.0", 14, &c), 0);
	assert_int_equal(c.verb, SMTP_UNKNOWN);
	assert_string_equal(c.name, "GET");
	assert_int_equal(smtp_parse_command("NOOP\0x", 6, &c), -1);
	assert_int_equal(smtp_parse_command("NOOP\rx", 6, &c), -1);
	assert_int_equal(smtp_parse_command("", 0, &c), 0);
	assert_int_equal(c.verb, SMTP_UNKNOWN);
	assert_int_equal(smtp_parse_command("MAILX", 5, &c), 0);
	assert_int_equal(c.verb, SMTP_UNKNOWN);
}

static int path(const char *arg, int mail, int strict, struct smtp_path *p)
{
	const char *why;
	return smtp_parse_path(arg, strlen(arg), mail, strict, p, &why);
}

static void test_paths(void **state)
{
	struct smtp_path p;
	(void)state;
	assert_int_equal(path("FROM:<bob@example.org>", 1, 1, &p), 0);
	assert_string_equal(p.addr, "bob@example.org");
	assert_string_equal(p.local, "bob");
	assert_string_equal(p.domain, "example.org");
	assert_int_equal(path("FROM:<>", 1, 1, &p), 0);
	assert_true(p.null_path);
	assert_int_equal(path("TO:<>", 0, 1, &p), -1);
	assert_int_equal(path("TO:<postmaster>", 0, 1, &p), 0);
	assert_string_equal(p.addr, "postmaster");
	assert_int_equal(path("TO:<bob>", 0, 1, &p), -1);
	assert_int_equal(path("FROM: <a@b.example>", 1, 1, &p), -1);
	assert_int_equal(path("FROM: <a@b.example>", 1, 0, &p), 0);
	assert_int_equal(path("FROM:a@b.example", 1, 1, &p), -1);
	assert_int_equal(path("FROM:a@b.example", 1, 0, &p), 0);
	assert_string_equal(p.addr, "a@b.example");
	assert_int_equal(path("FROM:<a@b.example> SIZE=1000 BODY=8BITMIME SMTPUTF8", 1, 1, &p), 0);
	assert_true(p.has_size);
	assert_int_equal(p.size, 1000);
	assert_int_equal(p.body, SMTP_BODY_8BITMIME);
	assert_true(p.smtputf8);
	assert_int_equal(path("FROM:<a@b.example> SIZE=x", 1, 1, &p), -1);
	assert_int_equal(path("FROM:<a@b.example> NOTIFY=NEVER", 1, 1, &p), -1);
	assert_int_equal(path("TO:<a@b.example> NOTIFY=NEVER", 0, 1, &p), -1);
	assert_int_equal(path("TO:<a@b.example", 0, 1, &p), -1);
	assert_int_equal(path("TO:<a@b.example>x", 0, 1, &p), -1);
	assert_int_equal(path("TO:<a..b@b.example>", 0, 1, &p), -1);
	assert_int_equal(path("TO:<a b@b.example>", 0, 1, &p), -1);
	assert_int_equal(path("TO:<a@b..example>", 0, 1, &p), -1);
	assert_int_equal(path("TO:<\"a b\"@b.example>", 0, 1, &p), 0);
	assert_string_equal(p.local, "a b");
	assert_true(p.quoted);
	assert_int_equal(path("TO:<\"a\\\"b>\"@b.example>", 0, 1, &p), 0);
	assert_string_equal(p.local, "a\"b>");
}

static void test_routing_tricks(void **state)
{
	static const char *bad[] = {
	    "TO:<bob%evil.example@example.org>",
	    "TO:<evil.example!bob@example.org>",
	    "TO:<@example.org:bob@evil.example>",
	    "TO:<@a.example,@b.example:bob@evil.example>",
	    "TO:<\"bob@evil.example\"@example.org>",
	    "TO:<\"bob%evil.example\"@example.org>",
	    "TO:<bob@[127.0.0.1]>",
	    "TO:<bob@example.org.>",
	};
	struct smtp_path p;
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(path(bad[i], 0, 1, &p), 0);
		assert_true(smtp_addr_routing_trick(&p));
	}
	assert_int_equal(path("TO:<bob@example.org>", 0, 1, &p), 0);
	assert_false(smtp_addr_routing_trick(&p));
	assert_int_equal(path("TO:<bob+tag@example.org>", 0, 1, &p), 0);
	assert_false(smtp_addr_routing_trick(&p));
}

static void test_names(void **state)
{
	(void)state;
	assert_true(smtp_domain_is_fqdn("mx.example.org"));
	assert_false(smtp_domain_is_fqdn("localhost"));
	assert_false(smtp_domain_is_fqdn("example.123"));
	assert_false(smtp_domain_is_fqdn("-a.example.org"));
	assert_false(smtp_domain_is_fqdn("example.org."));
	assert_false(smtp_domain_is_fqdn("[1.2.3.4]"));
	assert_true(smtp_helo_valid("localhost"));
	assert_true(smtp_helo_valid("[192.0.2.1]"));
	assert_false(smtp_helo_valid("bad_host"));
	assert_false(smtp_helo_valid("a..b"));
	assert_false(smtp_helo_valid(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_command),
	    cmocka_unit_test(test_paths),
	    cmocka_unit_test(test_routing_tricks),
	    cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
