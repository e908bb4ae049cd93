/* fs — shared state of mailkeep-fs, the FUSE Maildir view of the store.
 *
 * One struct fs per mount. The store is the truth; what the process keeps in
 * memory is only:
 *   - per user: the owner (uid/gid) and the INBOX mbid (state.c);
 *   - per mailbox the kernel has seen: its name, the HIGHESTMODSEQ it was last
 *     synchronised at, and for each message the kernel knows a name of, that
 *     name's parts, so the watcher can invalidate exactly the names that went
 *     stale (state.c, watch.c);
 *   - files being written (tmp/, or rsync's temporary files), in memory and
 *     bounded (pending.c).
 * All of it is under fs->lock, held only for memory work, never across a
 * store call that may wait (store_write).
 */
#ifndef MK_FS_FS_H
#define MK_FS_FS_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "fs/inodes.h"
#include "fs/names.h"
#include "index/store.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "index/dir.h"

/* What a message looks like on the mount: its directory and flag letters. */
#define FS_STATE_NEW 0x80 /* shown in new/ (\Recent in the store) */

struct fs_known {
	uint32_t uid;
	uint8_t state; /* MDNAME_FLAGS_MASK bits | FS_STATE_NEW */
	uint64_t size;
	char base[]; /* NUL-terminated */
};

struct fs_mb {
	int used;
	uint32_t mbid, user_id;
	char name[STORE_NAME_MAX + 1];
	uint64_t modseq;       /* HIGHESTMODSEQ the known names are in step with */
	uint32_t uidnext;      /* UIDNEXT at that point */
	struct timespec mtime; /* of cur/ new/ tmp/: the last change seen */
	/* open addressing, key uid (0 = empty) */
	struct fs_known **known;
	size_t nknown, cap;
};

struct fs_user {
	int used;
	uint32_t id;
	uid_t uid;
	gid_t gid;
	uint32_t inbox;	       /* INBOX's mbid */
	struct timespec mtime; /* of /<user>: the last folder change seen */
};

struct fs_pending {
	struct fs_pending *next;
	uint64_t serial;
	uint32_t mbid;
	enum fsi_sub sub;
	char name[MDNAME_MAX + 1];
	struct buf data;
	mode_t mode;
	struct timespec mtime;
	int linked; /* link()ed into the store at least once */
	int stored; /* stored by fsync, still open: found by inode only */
	int busy;   /* being stored (fs_pending_claim) */
};

struct fs {
	struct store *store;
	struct config *cfg;
	struct fuse_session *se;
	double entry_timeout, attr_timeout, negative_timeout;
	uid_t default_uid;
	gid_t default_gid;
	uint64_t tmp_max_size;	/* one file being written */
	uint64_t tmp_max_total; /* all of them */
	struct timespec start;
	/* LDAP users: uidNumber/gidNumber when the store has none (NULL: embedded) */
	struct directory *dir;

	pthread_mutex_t lock;
	struct fs_mb *mbs; /* indexed by mbid */
	size_t nmbs;
	struct fs_user *users; /* indexed by user id */
	size_t nusers;
	struct timespec root_mtime;
	uint64_t change_seq; /* the store's change sequence we are in step with */

	int close_events;	/* close.c tells when written files are closed */
	volatile int real_open; /* open() answered for real: RELEASE tells instead */

	struct fs_pending *pending;
	uint64_t pending_serial, pending_bytes, pending_count;
};

extern const struct fuse_lowlevel_ops fs_ops;

/* --- state.c --------------------------------------------------------------- */

struct fs_owner {
	uint32_t user_id;
	uid_t uid;
	gid_t gid;
	uint32_t inbox;
};

/* The owner of a user's files (store uid/gid, else the mount's default) and
 * the user's INBOX; cached. Returns 0 or a STORE_E* code. */
int fs_user_owner(struct fs *fs, struct store_txn *txn, uint32_t user_id, struct fs_owner *owner_r);
/* The user a mailbox belongs to and that user's owner; cached (a mailbox never
 * changes users). Also registers the mailbox for the watcher. */
int fs_mb_owner(struct fs *fs, struct store_txn *txn, uint32_t mbid, struct fs_owner *owner_r);
/* Remembers that the kernel now knows msg under its current name. */
void fs_known_add(struct fs *fs, const struct store_msg *msg);
/* Forgets a message's name (unlinked or moved by us). */
void fs_known_del(struct fs *fs, uint32_t mbid, uint32_t uid);
/* Marks a mailbox's directories as changed now (mtime). */
void fs_mb_touch(struct fs *fs, uint32_t mbid);
void fs_user_touch(struct fs *fs, uint32_t user_id);
/* Drops the cached owners (the watcher calls it when users may have changed). */
void fs_users_forget(struct fs *fs);
void fs_state_free(struct fs *fs);

/* The state byte of a message (flag letters and new/). */
uint8_t fs_msg_state(const struct store_msg *msg);
/* Which directory a message is shown in. */
enum fsi_sub fs_msg_sub(const struct store_msg *msg);
/* The file name of a message into out (MDNAME_MAX + 1 bytes). 0 or -1. */
int fs_msg_name(const struct store_msg *msg, char *out);
/* The same from the parts the watcher remembers. */
int fs_state_name(const char *base, uint64_t size, uint8_t state, char *out);

/* --- attributes (ops.c) ---------------------------------------------------- */

/* Fills st for a message owned by owner. */
void fs_msg_stat(const struct fs *fs, const struct store_msg *msg, const struct fs_owner *owner,
		 struct stat *st);
/* Converts a STORE_E* code into an errno. */
int fs_errno(int store_err);

/* --- pending.c: files being written ---------------------------------------- */

/* Creates an empty pending file in (mbid, sub) named name. Returns 0 with its
 * inode, or an errno (EEXIST, ENOSPC when too many bytes are pending). */
int fs_pending_create(struct fs *fs, uint32_t mbid, enum fsi_sub sub, const char *name, mode_t mode,
		      uint64_t *ino_r, struct stat *st_r, const struct fs_owner *owner);
/* Finds a pending file by place and name: 0 and its inode, or ENOENT. */
int fs_pending_lookup(struct fs *fs, uint32_t mbid, enum fsi_sub sub, const char *name,
		      uint64_t *ino_r);
/* stat of a pending file: 0 or ENOENT. mbid_r (may be NULL) gets its mailbox. */
int fs_pending_stat(struct fs *fs, uint64_t serial, const struct fs_owner *owner, struct stat *st,
		    uint32_t *mbid_r);
int fs_pending_mbid(struct fs *fs, uint64_t serial, uint32_t *mbid_r);
/* Writes; 0 and *written_r, or an errno (EFBIG past tmp_max_size, ENOSPC). */
int fs_pending_write(struct fs *fs, uint64_t serial, const char *data, size_t len, off_t off);
/* Reads into buf (size bytes at most): 0 and *len_r, or ENOENT. */
int fs_pending_read(struct fs *fs, uint64_t serial, char *buf, size_t size, off_t off,
		    size_t *len_r);
/* Truncates or extends to size: 0 or an errno. */
int fs_pending_truncate(struct fs *fs, uint64_t serial, uint64_t size);
int fs_pending_set_times(struct fs *fs, uint64_t serial, const struct timespec *mtime);
int fs_pending_set_mode(struct fs *fs, uint64_t serial, mode_t mode);
/* Renames inside the pending area (tmp/ to tmp/, ...). 0 or an errno. */
int fs_pending_rename(struct fs *fs, uint64_t serial, uint32_t mbid, enum fsi_sub sub,
		      const char *name);
int fs_pending_unlink(struct fs *fs, uint32_t mbid, enum fsi_sub sub, const char *name);
/* Takes a copy of the bytes and mtime (the caller frees *data_r). 0 or ENOENT. */
int fs_pending_copy(struct fs *fs, uint64_t serial, char **data_r, size_t *len_r,
		    struct timespec *mtime_r);
/* Where a pending file is and its state (FS_PENDING_* bits); name_r holds
 * MDNAME_MAX + 1 bytes. 0 or ENOENT. */
#define FS_PENDING_LINKED 1 /* link()ed into the store at least once */
#define FS_PENDING_STORED 2 /* stored by fsync while open */
int fs_pending_info(struct fs *fs, uint64_t serial, uint32_t *mbid_r, enum fsi_sub *sub_r,
		    char *name_r, int *state_r, size_t *len_r);
void fs_pending_set_linked(struct fs *fs, uint64_t serial);
/* Claims a file for storing it: 0, EBUSY (another thread stores it) or
 * ENOENT. A claimed file is removed, stored, or unclaimed. */
int fs_pending_claim(struct fs *fs, uint64_t serial);
void fs_pending_unclaim(struct fs *fs, uint64_t serial);
/* Waits (bounded) while the file named so is being stored by another thread,
 * so that a rename or unlink then finds the stored message. */
void fs_pending_wait(struct fs *fs, uint32_t mbid, enum fsi_sub sub, const char *name);
/* Marks a file stored while still open: no longer found by name or listed,
 * writes fail with EPERM; removed when closed. */
void fs_pending_set_stored(struct fs *fs, uint64_t serial);
/* Removes by inode serial (after a rename into the store). */
void fs_pending_remove(struct fs *fs, uint64_t serial);
/* Calls cb for each pending file in (mbid, sub), with lock held: cb must not
 * call back into fs. Returns how many were passed. */
size_t fs_pending_list(struct fs *fs, uint32_t mbid, enum fsi_sub sub, size_t skip,
		       int (*cb)(const char *name, uint64_t ino, void *ctx), void *ctx);
void fs_pending_free(struct fs *fs);

/* --- xattr.c ---------------------------------------------------------------- */

void fs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void fs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		    size_t size, int flags);
void fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

/* --- write.c ------------------------------------------------------------------ */

void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		  struct fuse_file_info *fi);
void fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		 struct fuse_file_info *fi);
void fs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		   struct fuse_file_info *fi);
void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		  const char *newname, unsigned int flags);
void fs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
/* Pending files were closed for the last time (close.c, or RELEASE);
 * killed[i]: the writer died of a signal with it open. Stores the files
 * written straight into new/ or cur/ (together, in one durable commit, when
 * several come at once), drops those a killed writer left. */
void fs_pending_closed(struct fs *fs, const uint64_t *serials, const int *killed, size_t n);

/* --- plain.c: files that are not mail --------------------------------------- */

/* Opens <dir>, the area of plain files (<data_directory>/files). 0 or -1. */
int fs_plain_init(const char *dir);
void fs_plain_free(void);
/* ".Folder" -> "Folder" when name may be a mailbox's folder, else NULL. */
const char *fs_folder_name(const char *name);

/* The directory of plain files that goes with a directory inode. */
struct fs_plain_dir {
	int fd;
	uint32_t user_id;
	uint32_t mbid;			 /* the folder's mailbox, if it has one (0: none) */
	char folder[STORE_NAME_MAX + 1]; /* a ".Folder" directory's name, else "" */
};
/* Opens it (create: make it if missing). 0, ENOENT (none yet), or an errno
 * (EPERM: this directory has no plain files). */
int fs_plain_dir(struct fs *fs, uint64_t dir, int create, struct fs_plain_dir *pd);
void fs_plain_dir_close(struct fs_plain_dir *pd);
/* The user an FSI_PLAIN inode belongs to: 0 or ENOENT. */
int fs_plain_user(uint64_t ino, uint32_t *user_id_r);
/* Lookups and creations fill e and take a reference the kernel forgets. */
int fs_plain_lookup(struct fs *fs, uint64_t parent, const char *name, struct fuse_entry_param *e);
int fs_plain_create(struct fs *fs, uint64_t parent, const char *name, mode_t mode, int is_dir,
		    struct fuse_entry_param *e);
void fs_plain_forget(uint64_t ino, uint64_t nlookup);
int fs_plain_stat(struct fs *fs, uint64_t ino, struct stat *st);
int fs_plain_unlink(struct fs *fs, uint64_t parent, const char *name, int is_dir);
int fs_plain_rename(struct fs *fs, uint64_t parent, const char *name, uint64_t newparent,
		    const char *newname, unsigned int flags);
int fs_plain_rename_folder(struct fs *fs, uint32_t user_id, const char *from, const char *to);
int fs_plain_setattr(struct fs *fs, uint64_t ino, const struct stat *attr, int to_set,
		     struct stat *st_r);
int fs_plain_read(uint64_t ino, char *buf, size_t size, off_t off, size_t *len_r);
int fs_plain_write(uint64_t ino, const char *buf, size_t size, off_t off, size_t *len_r);
/* fsync; for /<user>/.sieve it saves the script, EINVAL if it does not compile. */
int fs_plain_fsync(struct fs *fs, uint64_t ino, int datasync);
/* A plain file opened for writing was closed (close.c, or RELEASE). */
void fs_plain_closed(struct fs *fs, uint64_t ino);

/* --- /<user>/.sieve: the active Sieve script (sieve_file.c) ------------------- */
/* The active script's text (malloc'd): 0, ENOENT (none is active), EIO. */
int fs_sieve_load(struct fs *fs, uint32_t user_id, char **text_r, size_t *len_r);
/* Compiles what fd holds and stores it as the active script: 0, EINVAL (it
 * does not compile: logged with line and column; nothing changes), errno. */
int fs_sieve_save(struct fs *fs, uint32_t user_id, int fd);
/* No script is active any more (.sieve removed). 0 or an errno. */
int fs_sieve_deactivate(struct fs *fs, uint32_t user_id);
/* Rewrites fd (the backing file) with the active script if it differs: 0,
 * ENOENT when no script is active, an errno. */
int fs_sieve_refresh_fd(struct fs *fs, uint32_t user_id, int fd);
/* Calls cb for the plain entries of directory dir from index skip on (cb
 * returns 1 to stop). Returns how many were passed. */
size_t fs_plain_list(struct fs *fs, uint64_t dir, size_t skip,
		     int (*cb)(const char *name, const struct stat *st, size_t idx, void *ctx),
		     void *ctx);
/* mkdir .F/cur in a plain ".F" made the mailbox F: which of cur new tmp were
 * made yet. set 2: a mailbox made now (sub made); 1: sub made; 0: ask.
 * Returns 1 if sub is shown. */
int fs_plain_made(uint32_t mbid, enum fsi_sub sub, int set);

/* --- close.c ------------------------------------------------------------------ */

/* Starts following closes of files written on the mount (fanotify) and the
 * exits of processes. 0, or -1 when the kernel does not let us (not root): the
 * caller then answers open() for real so that RELEASE comes instead. */
int fs_close_start(struct fs *fs, const char *mountpoint);
void fs_close_stop(void);

/* --- watch.c ------------------------------------------------------------------ */

/* Starts the thread that follows the store's changes and invalidates the
 * kernel's caches. 0 or -1. */
int fs_watch_start(struct fs *fs);
void fs_watch_stop(struct fs *fs);
/* Asks the watcher to drop (parent, name) from the kernel's cache once the
 * current operation has returned (a handler must not do it itself: the kernel
 * may hold the directory's lock until the handler replies). */
void fs_inval_later(struct fs *fs, fuse_ino_t parent, const char *name);

/* The struct fs of a request. */
static inline struct fs *fs_of(fuse_req_t req)
{
	return (struct fs *)fuse_req_userdata(req);
}

#endif
