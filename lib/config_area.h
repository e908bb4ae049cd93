/* config_area — the typed struct of an area's settings and its binding,
 * made from the area's .def file (lib/config.h, "Typed settings"), so that
 * each area does not write them out again. No include guard: include it once
 * per area, with two macros defined (it undefines them):
 *
 *   PARAMS_NAME  the area's name, e.g. smtpin
 *   PARAMS_DEF   its .def file, e.g. "smtpin/params.def"
 *
 * In the area's header it declares
 *
 *   struct smtpin_params { ... one typed field per PARAM line ... };
 *   void smtpin_params_bind(struct config *cfg, struct smtpin_params *p);
 *       fills p from cfg (config_bind; cfg must outlive p's strings)
 *   void smtpin_params_unbind(struct smtpin_params *p);
 *       frees the lists (config_unbind)
 *
 * and in one .c file, with PARAMS_DEFINE also defined and after including
 * that header, it defines the binding table and the two functions.
 */
#include "lib/config.h"

#define CONFIG_AREA_CAT_(a, b) a##b
#define CONFIG_AREA_CAT(a, b) CONFIG_AREA_CAT_(a, b)
#define CONFIG_AREA_STRUCT struct CONFIG_AREA_CAT(PARAMS_NAME, _params)
#define CONFIG_AREA_BIND CONFIG_AREA_CAT(PARAMS_NAME, _params_bind)
#define CONFIG_AREA_UNBIND CONFIG_AREA_CAT(PARAMS_NAME, _params_unbind)
#define CONFIG_AREA_TABLE CONFIG_AREA_CAT(PARAMS_NAME, _params_binds)

#ifndef PARAMS_DEFINE
CONFIG_AREA_STRUCT{
#define PARAM(name, TYPE, def, min, max, doc) CONFIG_FIELD(name, TYPE)
#include PARAMS_DEF
};
void CONFIG_AREA_BIND(struct config *cfg, CONFIG_AREA_STRUCT *p);
void CONFIG_AREA_UNBIND(CONFIG_AREA_STRUCT *p);
#else
static const struct config_bind CONFIG_AREA_TABLE[] = {
#define PARAM(name, TYPE, def, min, max, doc) CONFIG_BIND(CONFIG_AREA_STRUCT, name, TYPE),
#include PARAMS_DEF
    CONFIG_BIND_END,
};

void CONFIG_AREA_BIND(struct config *cfg, CONFIG_AREA_STRUCT *p)
{
	config_bind(cfg, CONFIG_AREA_TABLE, p);
}

void CONFIG_AREA_UNBIND(CONFIG_AREA_STRUCT *p)
{
	config_unbind(CONFIG_AREA_TABLE, p);
}
#endif

#undef CONFIG_AREA_STRUCT
#undef CONFIG_AREA_BIND
#undef CONFIG_AREA_UNBIND
#undef CONFIG_AREA_TABLE
#undef PARAMS_NAME
#undef PARAMS_DEF
#undef PARAMS_DEFINE
