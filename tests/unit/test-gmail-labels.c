/* Unit tests of index/gmail_labels.c: Takeout's X-Gmail-Labels -> mailboxes and flags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "index/gmail_labels.h"

#define S(x) x, sizeof(x) - 1

static int has(const struct gmail_labels *g, const char *name)
{
	for (size_t i = 0; i < g->n; i++)
		if (strcmp(g->mailbox[i], name) == 0)
			return 1;
	return 0;
}

static void test_system_and_user_labels(void **state)
{
	(void)state;
	struct gmail_labels g;

	assert_int_equal(
	    gmail_labels_parse(
		S("Subject: a\r\nX-Gmail-Labels: Inbox,Important,Starred,"
		  "Work/Project,\"Family, close\",v1.2,Spam,Opened,\r\n"
		  " =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=,Category Updates,Inbox\r\n\r\nbody\r\n"),
		&g),
	    1);
	assert_int_equal(g.n, 6);
	assert_true(has(&g, "INBOX"));
	assert_true(has(&g, "Work.Project"));
	assert_true(has(&g, "Family, close"));
	assert_true(has(&g, "v1\xe2\x80\xa4"
			    "2"));
	assert_true(has(&g, "Junk"));
	assert_true(has(&g, "Grüße"));
	assert_int_equal(g.flags, STORE_F_SEEN | STORE_F_FLAGGED);
	assert_int_equal(g.important, 1);
	assert_int_equal(g.dropped, 0);
}

static void test_archived_unread_and_none(void **state)
{
	(void)state;
	struct gmail_labels g;

	assert_int_equal(gmail_labels_parse(S("X-Gmail-Labels: Unread,Archived\n\n"), &g), 1);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.mailbox[0], "Archive");
	assert_int_equal(g.flags, 0);
	/* no header (or one in the body only): Archive, seen */
	assert_int_equal(gmail_labels_parse(S("Subject: x\n\nX-Gmail-Labels: Inbox\n"), &g), 0);
	assert_string_equal(g.mailbox[0], "Archive");
	assert_int_equal(g.flags, STORE_F_SEEN);
	assert_false(gmail_labels_present(S("Subject: x\n\nX-Gmail-Labels: Inbox\n")));
	/* bad names are dropped, never a '/' or an empty level */
	assert_int_equal(gmail_labels_parse(S("X-Gmail-Labels: /a,a//b,b/,ok\n\n"), &g), 1);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.mailbox[0], "ok");
	assert_int_equal(g.dropped, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_system_and_user_labels),
	    cmocka_unit_test(test_archived_unread_and_none),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
