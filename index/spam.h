/* spam — the DSPAM-style filter (issue 7). Programs call spam_attach once
 * after store_open: it installs the store hooks (classify at delivery, retrain
 * on moves into and out of Junk) according to mailkeep.conf. */
#ifndef MK_SPAM_H
#define MK_SPAM_H

#include "index/store.h"
#include "lib/config.h"

/* Returns 0, or -1 if the configuration is unusable (logged). With the filter
 * disabled it installs nothing and returns 0. */
int spam_attach(struct store *store, struct config *cfg);

#endif
