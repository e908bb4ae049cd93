/* inodes — stable inode numbers for the mount, derived from store ids.
 *
 * No table maps inodes to objects: the number itself says what it is, so the
 * same message has the same inode in every mount, forget() has nothing to
 * free, and no file descriptor is held per inode.
 *
 *   1                                       the root (FUSE_ROOT_ID)
 *   1<<63 | mbid<<32 | uid                  a message (mbid < 2^31)
 *   FSI_USER<<56 | user_id                  /<user> (also INBOX's folder)
 *   FSI_MBOX<<56 | mbid                     /<user>/.<Folder>
 *   FSI_SUB<<56 | sub<<32 | mbid            cur/, new/, tmp/ of a mailbox
 *   FSI_PENDING<<56 | serial                a file being written (tmp/), in memory
 *   FSI_PLAIN<<56 | backing inode           a file that is not mail (plain.c)
 *
 * A message keeps its inode across flag changes and new/ -> cur/ (the same
 * mbid and uid); a move to another folder gives it a new uid, so a new inode.
 */
#ifndef MK_FS_INODES_H
#define MK_FS_INODES_H

#include <stdint.h>

enum fsi_kind {
	FSI_NONE = 0,
	FSI_ROOT = 1,
	FSI_USER = 2,
	FSI_MBOX = 3,
	FSI_SUB = 4,
	FSI_PENDING = 5,
	FSI_MSG = 6,
	FSI_PLAIN = 7,
};

enum fsi_sub { FSI_CUR = 0, FSI_NEW = 1, FSI_TMP = 2 };

struct fsi {
	enum fsi_kind kind;
	uint32_t id;  /* user_id (USER), mbid (MBOX, SUB, MSG) */
	uint32_t uid; /* message UID (MSG) */
	enum fsi_sub sub;
	uint64_t serial; /* PENDING; PLAIN: the backing file's inode number */
};

#define FSI_ROOT_INO 1ULL

uint64_t fsi_user(uint32_t user_id);
uint64_t fsi_mbox(uint32_t mbid);
uint64_t fsi_sub(uint32_t mbid, enum fsi_sub sub);
/* 0 if mbid does not fit in 31 bits. */
uint64_t fsi_msg(uint32_t mbid, uint32_t uid);
uint64_t fsi_pending(uint64_t serial);
uint64_t fsi_plain(uint64_t backing_ino);
/* Decodes; kind FSI_NONE for a number no encoder makes. */
struct fsi fsi_decode(uint64_t ino);

/* "cur", "new", "tmp" */
const char *fsi_sub_name(enum fsi_sub sub);
/* Parses "cur", "new", "tmp"; -1 for anything else. */
int fsi_sub_parse(const char *name);

#endif
