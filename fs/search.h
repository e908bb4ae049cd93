/* search — the mount's read-only .search/<query>/cur/ folders (search.c). */
#ifndef MK_FS_SEARCH_H
#define MK_FS_SEARCH_H

#include <sys/stat.h>

#include "fs/fs.h"
#include "fs/inodes.h"
#include "index/store.h"

/* Attributes of a FSI_SEARCH, FSI_QUERY or FSI_QSUB inode: 0 or ENOENT. */
int fs_search_attr(struct fs *fs, struct store_txn *txn, uint64_t ino, struct stat *st);
/* Looks name up in such a directory: 0 with e->ino (0: no such entry) and its
 * attributes, or an errno. */
int fs_search_lookup(struct fs *fs, struct store_txn *txn, uint64_t parent, const char *name,
		     struct fuse_entry_param *e);
/* Lists such a directory from offset off (the offsets of ops.c: 1 ".", 2
 * "..", then from 3); add returns non-zero when the reply is full. */
int fs_search_list(struct fs *fs, struct store_txn *txn, uint64_t ino, off_t off,
		   int (*add)(const char *name, const struct fuse_entry_param *e, off_t next,
			      void *ctx),
		   void *ctx);

/* The serials of the queries this mount knows (at most max), for the
 * watcher to invalidate their cur/ after a change. */
size_t fs_search_live(uint32_t *serials, size_t max);

#endif
