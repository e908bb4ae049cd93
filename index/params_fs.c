/* params_fs — settings of mailkeep-fs, the FUSE Maildir view (see doc/fs.md,
 * doc/man/mailkeep-fs.8). mount_point is in params_store.c. */
#include "index/params.h"

const struct config_param params_fs[] = {
    {"fs_entry_timeout", CONFIG_TIME, "1h", 0, 86400 * 365,
     "how long the kernel may cache a name on the mount (changes are pushed to it)"},
    {"fs_attr_timeout", CONFIG_TIME, "1h", 0, 86400 * 365,
     "how long the kernel may cache attributes (changes are pushed to it)"},
    {"fs_negative_timeout", CONFIG_TIME, "1s", 0, 3600,
     "how long the kernel may remember that a name does not exist"},
    {"fs_default_uid", CONFIG_INT, "-1", -1, 4294967294LL,
     "owner of the files of users without a uid (-1: the user running mailkeep-fs)"},
    {"fs_default_gid", CONFIG_INT, "-1", -1, 4294967294LL,
     "group of the files of users without a gid (-1: the group running mailkeep-fs)"},
    {"fs_allow_other", CONFIG_BOOL, "yes", 0, 0,
     "let every user see the mount (allow_other; only when mounted by root)"},
    {"fs_tmp_max_size", CONFIG_SIZE, "64m", 4096, 1LL << 34,
     "largest file that can be written on the mount (a message being delivered)"},
    {"fs_tmp_max_total", CONFIG_SIZE, "512m", 4096, 1LL << 36,
     "bytes of all files being written at once (each counts at least 4k), kept in memory until "
     "stored"},
    {"fs_threads", CONFIG_INT, "16", 1, 256, "most threads answering the kernel at once"},
    {NULL, 0, NULL, 0, 0, NULL},
};
