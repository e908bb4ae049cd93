/* params_spam — settings of the spam filter (see doc/spam.md, doc/mailkeep.conf.5). */
#include "index/params.h"

const struct config_param params_spam[] = {
	{"spam_filter", CONFIG_BOOL, "yes", 0, 0,
	 "Classify every delivery per recipient; spam goes to the recipient's Junk mailbox"},
	{"spam_algorithm", CONFIG_STR, "chi-square", 0, 0,
	 "How token evidence is combined: chi-square (Robinson-Fisher) or graham"},
	{"spam_training_mode", CONFIG_STR, "toe", 0, 0,
	 "toe (train on error), teft (train everything delivered) or tum (train until mature)"},
	{"spam_tokenizer", CONFIG_STR, "sbph", 0, 0,
	 "sbph (sparse binary polynomial hashing, window 5) or osb (orthogonal sparse bigrams)"},
	{"spam_threshold", CONFIG_INT, "90", 1, 100,
	 "Spam probability, in percent, at or above which a message is spam"},
	{"spam_min_user_training", CONFIG_INT, "50", 0, 1000000,
	 "Messages a user must have trained before the user's own tokens are used without the global set"},
	{"spam_tum_limit", CONFIG_INT, "2500", 0, 100000000,
	 "In tum mode, every delivery is learned until the user has learned this many messages"},
	{NULL, 0, NULL, 0, 0, NULL},
};

/* The words of the enumerated settings above, as index/spam.c reads them
 * (case ignored; chi2 and robinson are other names of chi-square). */
const struct config_enum params_spam_enums[] = {
	{"spam_algorithm", "chi-square graham", "chi2 robinson", CONFIG_ENUM_NOCASE},
	{"spam_training_mode", "toe teft tum", NULL, CONFIG_ENUM_NOCASE},
	{"spam_tokenizer", "sbph osb", NULL, CONFIG_ENUM_NOCASE},
	{NULL, NULL, NULL, 0},
};
