/* reports — collects the messages a config check reports (config_check's
 * callback), for the unit tests that look at them. */
#ifndef MK_TEST_REPORTS_H
#define MK_TEST_REPORTS_H

#include <stdio.h>

struct reports {
	char msgs[16][300];
	int n;
};

static inline void collect(const char *msg, void *ctx)
{
	struct reports *r = ctx;

	if (r->n < 16)
		snprintf(r->msgs[r->n], sizeof(r->msgs[0]), "%s", msg);
	r->n++;
}

#endif
