/* config_undef — included at the end of every settings .def file: forgets
 * the X-macros, so that the next reader of a .def defines its own. */
#undef PARAMS_AREA
#undef PARAM
#undef PARAM_ENUM
#undef PARAM_NAME
