/* Unit tests of fs/names.c (Maildir names) and fs/inodes.c (inode numbers).
 * fs/ is a program, not a library: its pure files are compiled in here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fs/inodes.c"
#include "fs/names.c"

static void parse_ok(const char *s, struct mdname *mn)
{
	assert_int_equal(mdname_parse(s, strlen(s), mn), 0);
}

static void parse_bad(const char *s)
{
	struct mdname mn;
	assert_int_equal(mdname_parse(s, strlen(s), &mn), -1);
}

static void test_parse_full(void **state)
{
	struct mdname mn;
	(void)state;
	parse_ok("1700000000.M4711.mailkeep,S=5123:2,RS", &mn);
	assert_string_equal(mn.base, "1700000000.M4711.mailkeep");
	assert_true(mn.has_size);
	assert_int_equal(mn.size, 5123);
	assert_true(mn.has_info);
	assert_int_equal(mn.flags, STORE_F_ANSWERED | STORE_F_SEEN);
}

static void test_parse_variants(void **state)
{
	struct mdname mn;
	(void)state;
	/* mutt's names: no size, maybe no info */
	parse_ok("1700000000.R123.host", &mn);
	assert_string_equal(mn.base, "1700000000.R123.host");
	assert_false(mn.has_size);
	assert_false(mn.has_info);
	assert_int_equal(mn.flags, 0);
	parse_ok("1700000000.R123.host:2,S", &mn);
	assert_int_equal(mn.flags, STORE_F_SEEN);
	/* Dovecot: ,S= and ,W=, keywords as lower-case letters */
	parse_ok("123.M1P2.h,S=10,W=12:2,DFPRSTab", &mn);
	assert_string_equal(mn.base, "123.M1P2.h");
	assert_int_equal(mn.size, 10);
	assert_int_equal(mn.flags, STORE_F_DRAFT | STORE_F_FLAGGED | STORE_F_ANSWERED |
				       STORE_F_SEEN | STORE_F_DELETED);
	/* any order */
	parse_ok("x:2,TS", &mn);
	assert_int_equal(mn.flags, STORE_F_SEEN | STORE_F_DELETED);
	parse_ok("x:2,", &mn);
	assert_true(mn.has_info);
	assert_int_equal(mn.flags, 0);
}

static void test_parse_bad(void **state)
{
	char longname[300];
	(void)state;
	parse_bad("");
	parse_bad(".");
	parse_bad("..");
	parse_bad(",S=1");
	parse_bad(":2,S");
	parse_bad("a/b");
	parse_bad("a\nb");
	parse_bad("x,S=abc:2,S");
	parse_bad("x,S=:2,S");
	parse_bad("x,S=1,S=2");
	parse_bad("x:1,S");
	parse_bad("x:2");
	parse_bad("x:2,S1");
	parse_bad("x:2,S:");
	parse_bad("x,S=99999999999999999999");
	parse_bad("x,S=18446744073709551616");
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	parse_bad(longname);
	longname[STORE_BASE_MAX] = '\0'; /* a base of STORE_BASE_MAX bytes */
	parse_bad(longname);
}

static void test_format(void **state)
{
	char out[MDNAME_MAX + 1], small[20];
	(void)state;
	assert_int_equal(mdname_format(out, sizeof(out), "1.M2.mk", 5123,
				       STORE_F_SEEN | STORE_F_ANSWERED | STORE_F_RECENT),
			 (int)strlen("1.M2.mk,S=5123:2,RS"));
	assert_string_equal(out, "1.M2.mk,S=5123:2,RS");
	mdname_format(out, sizeof(out), "b", 0, STORE_F_DELETED | STORE_F_DRAFT | STORE_F_FLAGGED);
	assert_string_equal(out, "b,S=0:2,DFT");
	assert_int_equal(mdname_format(small, sizeof(small), "a-rather-long-base", 1, 0), -1);
	assert_int_equal(mdname_format(out, sizeof(out), "bad:base", 1, 0), -1);
	assert_int_equal(mdname_format(out, sizeof(out), "", 1, 0), -1);
}

static void test_roundtrip(void **state)
{
	char out[MDNAME_MAX + 1];
	struct mdname mn;
	(void)state;
	for (uint32_t f = 0; f < 64; f++) {
		assert_true(mdname_format(out, sizeof(out), "1700000000.M1.x",
					  18446744073709551615ULL, f) > 0);
		parse_ok(out, &mn);
		assert_int_equal(mn.flags, f & MDNAME_FLAGS_MASK);
		assert_int_equal(mn.size, 18446744073709551615ULL);
		assert_true(mdname_matches(&mn, "1700000000.M1.x", 18446744073709551615ULL, f));
		assert_false(mdname_matches(&mn, "1700000000.M1.x", 1, f));
		assert_false(mdname_matches(&mn, "1700000000.M1.y", 18446744073709551615ULL, f));
	}
}

static void test_matches_alias(void **state)
{
	struct mdname mn;
	(void)state;
	parse_ok("base:2,S", &mn); /* no size: matches any */
	assert_true(mdname_matches(&mn, "base", 77, STORE_F_SEEN));
	assert_true(mdname_matches(&mn, "base", 77, STORE_F_SEEN | STORE_F_RECENT));
	assert_false(mdname_matches(&mn, "base", 77, 0));
	parse_ok("base", &mn);
	assert_true(mdname_matches(&mn, "base", 77, 0));
	assert_false(mdname_matches(&mn, "base", 77, STORE_F_SEEN));
	parse_ok("base,S=77:2,PS", &mn); /* P is not kept */
	assert_true(mdname_matches(&mn, "base", 77, STORE_F_SEEN));
}

static void test_dovecot_bases(void **state)
{
	char out[MDNAME_MAX + 1];
	struct mdname mn;
	(void)state;
	/* an imported Dovecot file keeps ",S=..,W=.." in its store base */
	assert_true(mdname_format(out, sizeof(out), "1.M2P3.h,S=123,W=130", 123, STORE_F_SEEN) > 0);
	assert_string_equal(out, "1.M2P3.h,S=123,W=130:2,S");
	parse_ok(out, &mn);
	assert_string_equal(mn.base, "1.M2P3.h");
	assert_string_equal(mn.stem, "1.M2P3.h,S=123,W=130");
	assert_int_equal(mn.nfields, 2);
	assert_true(mdname_matches(&mn, "1.M2P3.h,S=123,W=130", 123, STORE_F_SEEN));
	assert_false(mdname_matches(&mn, "1.M2P3.h,S=123,W=130", 123, 0));
	assert_string_equal(mdname_new_base(&mn), "1.M2P3.h,S=123,W=130");
	/* the mount's own names and mutt's keep the short base */
	parse_ok("1.M2U3.mailkeep,S=5:2,S", &mn);
	assert_string_equal(mdname_new_base(&mn), "1.M2U3.mailkeep");
	parse_ok("1.R4.host:2,S", &mn);
	assert_string_equal(mdname_new_base(&mn), "1.R4.host");
	parse_ok("1.R4.host", &mn);
	assert_string_equal(mdname_new_base(&mn), "1.R4.host");
	/* a store base with a comma but no size gets one */
	assert_true(mdname_format(out, sizeof(out), "a,b", 7, 0) > 0);
	assert_string_equal(out, "a,b,S=7:2,");
	parse_ok(out, &mn);
	assert_string_equal(mn.stem2, "a,b");
	assert_true(mdname_matches(&mn, "a,b", 7, 0));
	assert_false(mdname_matches(&mn, "a,b", 8, 0));
	{
		const char *cand[3];
		assert_int_equal(mdname_candidates(&mn, cand), 3);
		assert_string_equal(cand[0], "a");
		assert_string_equal(cand[1], "a,b,S=7");
		assert_string_equal(cand[2], "a,b");
	}
}

static void test_inodes(void **state)
{
	struct fsi f;
	(void)state;
	f = fsi_decode(FSI_ROOT_INO);
	assert_int_equal(f.kind, FSI_ROOT);
	f = fsi_decode(fsi_user(42));
	assert_int_equal(f.kind, FSI_USER);
	assert_int_equal(f.id, 42);
	f = fsi_decode(fsi_mbox(0xffffffffU));
	assert_int_equal(f.kind, FSI_MBOX);
	assert_int_equal(f.id, 0xffffffffU);
	for (int s = FSI_CUR; s <= FSI_TMP; s++) {
		f = fsi_decode(fsi_sub(7, (enum fsi_sub)s));
		assert_int_equal(f.kind, FSI_SUB);
		assert_int_equal(f.sub, s);
		assert_int_equal(f.id, 7);
	}
	f = fsi_decode(fsi_msg(0x7fffffffU, 0xffffffffU));
	assert_int_equal(f.kind, FSI_MSG);
	assert_int_equal(f.id, 0x7fffffffU);
	assert_int_equal(f.uid, 0xffffffffU);
	assert_int_equal(fsi_msg(0x80000000U, 1), 0);
	f = fsi_decode(fsi_pending(99));
	assert_int_equal(f.kind, FSI_PENDING);
	assert_int_equal(f.serial, 99);
	/* distinct numbers for distinct things */
	assert_true(fsi_msg(1, 1) != fsi_msg(1, 2));
	assert_true(fsi_msg(1, 2) != fsi_msg(2, 1));
	assert_true(fsi_sub(1, FSI_CUR) != fsi_mbox(1));
	assert_true(fsi_user(1) != fsi_mbox(1));
	assert_int_equal(fsi_decode(0).kind, FSI_NONE);
	assert_int_equal(fsi_decode((uint64_t)FSI_SUB << 56 | (uint64_t)9 << 32).kind, FSI_NONE);
	assert_int_equal(fsi_sub_parse("new"), FSI_NEW);
	assert_int_equal(fsi_sub_parse("News"), -1);
	assert_string_equal(fsi_sub_name(FSI_TMP), "tmp");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_full),	  cmocka_unit_test(test_parse_variants),
	    cmocka_unit_test(test_parse_bad),	  cmocka_unit_test(test_format),
	    cmocka_unit_test(test_roundtrip),	  cmocka_unit_test(test_matches_alias),
	    cmocka_unit_test(test_dovecot_bases), cmocka_unit_test(test_inodes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
