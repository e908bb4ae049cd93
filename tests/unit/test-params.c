/* Unit tests of index/params*.c: the settings tables and the words of their
 * enumerated settings agree, and `mailkeep check` (config_check) refuses a
 * word the programs would refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "index/params.h"
#include "index/params_ldap.h"
#include "index/spam.h"
#include "tests/unit/reports.h"

static const struct {
	const struct config_param *params;
	const struct config_enum *enums;
} areas[] = {
    {params_store, params_store_enums}, {params_smtpin, params_smtpin_enums},
    {params_ldap, params_ldap_enums},	{params_ldap_cf, params_ldap_cf_enums},
    {params_spam, params_spam_enums},
};

static const struct config_param *find_param(const struct config_param *t, const char *name)
{
	for (; t->name != NULL; t++)
		if (strcmp(t->name, name) == 0)
			return t;
	return NULL;
}

/* Every enumerated setting is a CONFIG_STR of its area, and its default is one of its words. */
static void test_enums_match_tables(void **state)
{
	(void)state;
	for (size_t a = 0; a < sizeof(areas) / sizeof(areas[0]); a++) {
		for (const struct config_enum *e = areas[a].enums; e->name != NULL; e++) {
			const struct config_param *p = find_param(areas[a].params, e->name);
			if (p == NULL)
				fail_msg("enumerated setting %s is in no settings table", e->name);
			assert_int_equal(p->type, CONFIG_STR);
			if (!config_enum_match(e, p->def != NULL ? p->def : ""))
				fail_msg("%s: the default \"%s\" is not one of \"%s\"", e->name,
					 p->def, e->values);
		}
	}
}

/* What check says about a one-line mailkeep.conf "name = value" (NULL: nothing). */
static const char *check_one(const char *name, const char *value, struct reports *r)
{
	char text[256], err[256];
	struct config *cfg = NULL;

	snprintf(text, sizeof(text), "%s = %s\n", name, value);
	if (config_parse(text, strlen(text), "mailkeep.conf", &cfg, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	params_add_all(cfg);
	r->n = 0;
	config_check(cfg, collect, r);
	config_free(&cfg);
	return r->n == 0 ? NULL : r->msgs[0];
}

static void test_check_refuses_what_programs_refuse(void **state)
{
	struct reports r;
	struct spam_settings s;
	struct config *cfg;
	char err[256];

	(void)state;
	assert_string_equal(
	    check_one("spam_algorithm", "bayes", &r),
	    "mailkeep.conf:1: spam_algorithm = bayes: expected chi-square or graham");
	assert_null(check_one("spam_algorithm", "Graham", &r));
	assert_null(check_one("spam_algorithm", "robinson", &r));
	assert_non_null(check_one("spam_training_mode", "always", &r));
	assert_non_null(check_one("spam_tokenizer", "words", &r));
	assert_non_null(check_one("smtpd_tls_security_level", "MAY", &r)); /* smtpin: strcmp */
	assert_null(check_one("smtpd_tls_security_level", "encrypt", &r));
	assert_non_null(check_one("postscreen_greet_action", "reject", &r));
	assert_null(check_one("postscreen_greet_action", "Enforce", &r)); /* smtpin: strcasecmp */
	assert_non_null(check_one("log_target", "stdout", &r));
	assert_non_null(check_one("ldap_scope", "subtree", &r));
	assert_non_null(check_one("user_directory", "nis", &r));
	assert_null(check_one("user_directory", "ldap:/etc/mailkeep/ldap-users.cf", &r));
	assert_null(check_one("user_directory", "ldap", &r));

	/* the reader of the spam settings agrees with check, both ways */
	static const char *const algs[] = {"chi-square", "CHI2", "robinson", "graham", "bayes", ""};
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		char text[128];
		snprintf(text, sizeof(text), "spam_algorithm = %s\n", algs[i]);
		cfg = NULL;
		assert_int_equal(config_parse(text, strlen(text), "c", &cfg, err, sizeof(err)), 0);
		params_add_all(cfg);
		r.n = 0;
		int check_ok = config_check(cfg, collect, &r) == 0;
		int read_ok = spam_settings_load(cfg, &s, err, sizeof(err)) == 0;
		if (check_ok != read_ok)
			fail_msg("spam_algorithm = %s: check %s, the filter %s", algs[i],
				 check_ok ? "accepts" : "refuses", read_ok ? "accepts" : "refuses");
		config_free(&cfg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_enums_match_tables),
	    cmocka_unit_test(test_check_refuses_what_programs_refuse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
