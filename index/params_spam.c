/* params_spam — settings of the spam filter (see doc/spam.md, doc/mailkeep.conf.5). */
#include "index/params.h"

const struct config_param params_spam[] = {
    {"spam_filter", CONFIG_BOOL, "yes", 0, 0,
     "Classify every delivery per recipient; spam goes to the recipient's Junk mailbox"},
    {"spam_algorithm", CONFIG_STR, "chi-square", 0, 0,
     "How token evidence is combined: chi-square (Robinson-Fisher) or graham"},
    {"spam_training_mode", CONFIG_STR, "toe", 0, 0,
     "toe (train on error), teft (train everything delivered) or tum (train until mature)"},
    {"spam_tokenizer", CONFIG_STR, "osb4", 0, 0,
     "osb4 (words, orthogonal sparse bigrams, byte 4-grams, URL hosts, MIME shape), osb (bigrams "
     "only) "
     "or sbph (sparse binary polynomial hashing, window 5)"},
    {"spam_threshold", CONFIG_INT, "50", 1, 100,
     "Spam probability, in percent, at or above which a message is spam (50: the cut-off chosen by "
     "cross-validation)"},
    {"spam_token_limit", CONFIG_INT, "2000000", 0, 1000000000,
     "Tokens kept per user; above it the least useful go first, down to 90% of it (0: no cap)"},
    {"spam_purge_hapax", CONFIG_INT, "15", 0, 100000,
     "Days after which a token seen in one learned message only is purged (0: never)"},
    {"spam_purge_rare", CONFIG_INT, "60", 0, 100000,
     "Days after which a token with 2 x innocent + spam sightings below 5 is purged (0: never)"},
    {"spam_purge_stale", CONFIG_INT, "180", 0, 100000,
     "Days after which a token no learned message has brought is purged (0: never)"},
    {"spam_purge_interval", CONFIG_INT, "1", 0, 100000,
     "Training purges a user's tokens when the last purge is this many days old (0: only mailkeep "
     "spam purge)"},
    {"spam_min_user_training", CONFIG_INT, "50", 0, 1000000,
     "Messages a user must have trained before the user's own tokens are used without the global "
     "set"},
    {"spam_tum_limit", CONFIG_INT, "2500", 0, 100000000,
     "In tum mode, every delivery is learned until the user has learned this many messages"},
    {NULL, 0, NULL, 0, 0, NULL},
};

/* The words of the enumerated settings above, as index/spam.c reads them
 * (case ignored; chi2 and robinson are other names of chi-square). */
const struct config_enum params_spam_enums[] = {
    {"spam_algorithm", "chi-square graham", "chi2 robinson", CONFIG_ENUM_NOCASE},
    {"spam_training_mode", "toe teft tum", NULL, CONFIG_ENUM_NOCASE},
    {"spam_tokenizer", "osb4 osb sbph", NULL, CONFIG_ENUM_NOCASE},
    {NULL, NULL, NULL, 0},
};
