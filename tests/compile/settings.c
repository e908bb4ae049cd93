/* Compile-only test of the typed settings (lib/config.h): built once as is
 * (it must compile), then with -DMISSPELT and -DWRONG_TYPE (each must not).
 * tests/compile/run.sh drives it from `make test`. */
#include "smtpin/params.h"

#define PARAM_NAME(name) #name

#if defined(MISSPELT)
/* a binding of a setting whose name is misspelt: no such field */
static const struct config_bind binds[] = {
    CONFIG_BIND(struct smtpin_params, smtpd_banerr, STR),
    CONFIG_BIND_END,
};
#elif defined(MISSPELT_USE)
/* code reading a misspelt setting */
static const struct config_bind binds[] = {CONFIG_BIND_END};
long long misspelt_use(const struct smtpin_params *p);
long long misspelt_use(const struct smtpin_params *p)
{
	return p->smtpd_recipient_limt;
}
#elif defined(WRONG_TYPE)
/* a text setting bound as a number */
static const struct config_bind binds[] = {
    CONFIG_BIND(struct smtpin_params, smtpd_banner, INT),
    CONFIG_BIND_END,
};
#else
static const struct config_bind binds[] = {
    CONFIG_BIND(struct smtpin_params, smtpd_banner, STR),
    CONFIG_BIND(struct smtpin_params, smtpd_recipient_limit, INT),
    CONFIG_BIND_END,
};
#endif

const struct config_bind *settings_test_binds(void);
const struct config_bind *settings_test_binds(void)
{
	return binds;
}
