/* config_def — included at the top of every settings .def file (see
 * lib/config.h, "Typed settings"): the X-macros its reader did not define
 * expand to nothing, and PARAM_NAME(name) is the name as written. No include
 * guard: it is included once per .def, and lib/config_undef.h undoes it. */
#ifndef PARAMS_AREA
#define PARAMS_AREA(title)
#endif
#ifndef PARAM
#define PARAM(name, TYPE, def, min, max, doc)
#endif
#ifndef PARAM_ENUM
#define PARAM_ENUM(name, words, aliases, flags)
#endif
#ifndef PARAM_NAME
#define PARAM_NAME(name) #name
#endif
