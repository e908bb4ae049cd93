/* write — what MUAs do to a Maildir, turned into store changes.
 *
 *   create/write in tmp/ (or new/, cur/)  bytes kept in memory (pending.c)
 *   rename/link into new/ or cur/         store_blob_put + store_msg_add, one durable write
 *   rename a message in its mailbox       a flags change (the letters after ":2,"); new/ <-> cur/
 *                                         clears or sets \Recent
 *   rename into another folder            store_msg_move (no copy of the bytes)
 *   link into another folder              store_msg_copy
 *   unlink                                store_msg_expunge
 *   mkdir/rmdir/rename of .Folder         mailbox create/delete/rename
 *
 * What makes no sense for stored mail fails with an errno and changes nothing:
 * writing into or truncating a stored message (EPERM), symlinks (EPERM),
 * chown to another owner or chmod to another mode (EPERM), moving between
 * users (EXDEV), a stored message into tmp/ (EPERM).
 *
 * Every store change runs inside store_write and is answered only after it is
 * durable. Names the kernel has cached and that a change made stale are
 * invalidated by the watcher thread (watch.c), never from inside a handler
 * that holds a directory lock in the kernel.
 */
#define _GNU_SOURCE /* pipe2, RENAME_* */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fs/fs.h"
#include "index/quota.h"
#include "lib/log.h"
#include "lib/util.h"

#define E_ERRNO (-1000) /* a write function's failure: see ctx->err */

struct place {
	enum fsi_kind kind;
	uint32_t mbid; /* SUB, MBOX */
	enum fsi_sub sub;
	uint32_t user_id; /* USER, SUB, MBOX */
	struct fs_owner owner;
};

/* Where a directory inode is. 0 or an errno. */
static int place_of(struct fs *fs, fuse_ino_t ino, struct place *pl)
{
	struct fsi f = fsi_decode(ino);
	struct store_txn *txn = NULL;
	int rc = 0;

	memset(pl, 0, sizeof(*pl));
	pl->kind = f.kind;
	if (f.kind == FSI_ROOT)
		return 0;
	if (f.kind == FSI_NONE)
		return ENOENT;
	if ((rc = store_read_begin(fs->store, &txn)) < 0)
		return fs_errno(rc);
	switch (f.kind) {
	case FSI_USER:
		rc = fs_user_owner(fs, txn, f.id, &pl->owner);
		pl->user_id = f.id;
		pl->mbid = pl->owner.inbox;
		break;
	case FSI_MBOX:
	case FSI_SUB:
		rc = fs_mb_owner(fs, txn, f.id, &pl->owner);
		pl->mbid = f.id;
		pl->sub = f.sub;
		pl->user_id = pl->owner.user_id;
		break;
	case FSI_MSG:
		rc = fs_mb_owner(fs, txn, f.id, &pl->owner);
		pl->mbid = f.id;
		pl->user_id = pl->owner.user_id;
		break;
	case FSI_PLAIN:
		if (fs_plain_user(ino, &pl->user_id) != 0) {
			store_read_end(&txn);
			return ENOENT;
		}
		rc = fs_user_owner(fs, txn, pl->user_id, &pl->owner);
		break;
	case FSI_PENDING:
		if (fs_pending_mbid(fs, f.serial, &pl->mbid) != 0) {
			store_read_end(&txn);
			return ENOENT;
		}
		rc = fs_mb_owner(fs, txn, pl->mbid, &pl->owner);
		pl->user_id = pl->owner.user_id;
		break;
	default:
		break;
	}
	store_read_end(&txn);
	return rc < 0 ? fs_errno(rc) : 0;
}

/* The message shown as name in (mbid, sub). STORE_ENOTFOUND if none. */
static int find_msg(struct store_txn *txn, uint32_t mbid, enum fsi_sub sub, const char *name,
		    struct store_msg *msg)
{
	struct mdname mn;
	int rc;

	if (sub == FSI_TMP || name[0] == '.' || mdname_parse(name, strlen(name), &mn) < 0)
		return STORE_ENOTFOUND;
	{
		const char *cand[3];
		int nc = mdname_candidates(&mn, cand);
		rc = STORE_ENOTFOUND;
		for (int k = 0; k < nc && rc == STORE_ENOTFOUND; k++)
			rc = store_msg_get_by_base(txn, mbid, cand[k], msg);
	}
	if (rc < 0)
		return rc == STORE_EINVAL ? STORE_ENOTFOUND : rc;
	if (fs_msg_sub(msg) != sub || !mdname_matches(&mn, msg->base, msg->size, msg->flags))
		return STORE_ENOTFOUND;
	return 0;
}

/* The flags a name in new/ or cur/ asks for (\Recent for new/). */
static uint32_t wanted_flags(const struct mdname *mn, enum fsi_sub sub)
{
	return (mn->flags & MDNAME_FLAGS_MASK) | (sub == FSI_NEW ? STORE_F_RECENT : 0);
}

/* Brings msg's flags to want (only the bits a name carries, and \Recent),
 * keeping keywords. */
static int set_name_flags(struct store_txn *txn, struct store_msg *msg, uint32_t want)
{
	const uint32_t mask = MDNAME_FLAGS_MASK | STORE_F_RECENT;
	uint32_t add = want & ~msg->flags & mask, del = msg->flags & ~want & mask;
	int rc;

	if (del && (rc = store_msg_set_flags(txn, msg->mbid, msg->uid, STORE_FLAGS_REMOVE, del,
					     NULL, 0, msg)) < 0)
		return rc;
	if (add && (rc = store_msg_set_flags(txn, msg->mbid, msg->uid, STORE_FLAGS_ADD, add, NULL,
					     0, msg)) < 0)
		return rc;
	return 0;
}

/* A name a Maildir program would take for a message: a valid Maildir name not
 * starting with '.' (dot files are temporary: rsync's, editors'). */
static int message_name(const char *name, struct mdname *mn)
{
	return name[0] != '.' && mdname_parse(name, strlen(name), mn) == 0;
}

/* EEXIST if name in the user, folder or plain directory parent is one of the
 * mount's own (cur new tmp, a mailbox's ".Folder"), else 0. */
static int virtual_name(struct fs *fs, fuse_ino_t parent, const struct place *pl, const char *name)
{
	struct store_txn *txn = NULL;
	struct store_mailbox mb;
	const char *folder;
	int rc = 0;

	if (fsi_sub_parse(name) >= 0) {
		if (pl->kind != FSI_PLAIN)
			return EEXIST;
		struct fs_plain_dir pd;
		if (fs_plain_dir(fs, parent, 0, &pd) == 0) {
			rc = pd.mbid ? EEXIST : 0;
			fs_plain_dir_close(&pd);
		}
		return rc;
	}
	if (pl->kind == FSI_USER && (folder = fs_folder_name(name))) {
		if (store_read_begin(fs->store, &txn) < 0)
			return EIO;
		if (store_mailbox_get(txn, pl->user_id, folder, &mb) == 0)
			rc = EEXIST;
		store_read_end(&txn);
	}
	return rc;
}

/* --- files being written --------------------------------------------------- */

static int create_common(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			 struct fuse_entry_param *e)
{
	struct fs *fs = fs_of(req);
	struct place pl;
	struct store_txn *txn = NULL;
	struct store_msg msg;
	uint64_t ino;
	int rc;

	if (!S_ISREG(mode))
		return EPERM;
	if ((rc = place_of(fs, parent, &pl)) != 0)
		return rc;
	if (pl.kind == FSI_USER || pl.kind == FSI_MBOX || pl.kind == FSI_PLAIN) {
		/* a file beside cur/ new/ tmp/ is never mail: a plain file */
		if ((rc = virtual_name(fs, parent, &pl, name)) != 0)
			return rc;
		return fs_plain_create(fs, parent, name, mode, 0, e);
	}
	if (pl.kind != FSI_SUB)
		return EPERM;
	if (strlen(name) > MDNAME_MAX)
		return ENAMETOOLONG;
	if (pl.sub != FSI_TMP) {
		if ((rc = store_read_begin(fs->store, &txn)) < 0)
			return fs_errno(rc);
		rc = find_msg(txn, pl.mbid, pl.sub, name, &msg);
		store_read_end(&txn);
		if (rc == 0)
			return EEXIST;
	}
	/* a user at a quota's limit cannot start a message (EDQUOT, as a disk
	 * quota says it); the store checks again when the message is stored */
	if (fs_errno(quota_check_mailbox(fs->store, pl.mbid, 0)) == EDQUOT)
		return EDQUOT;
	memset(e, 0, sizeof(*e));
	if ((rc = fs_pending_create(fs, pl.mbid, pl.sub, name, mode, &ino, &e->attr, &pl.owner)) !=
	    0)
		return rc;
	e->ino = ino;
	return 0;
}

void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		  struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	int rc = create_common(req, parent, name, mode, &e);
	if (rc)
		fuse_reply_err(req, rc);
	else
		fuse_reply_create(req, &e, fi);
}

void fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct fuse_entry_param e;
	int rc;
	(void)rdev;
	rc = create_common(req, parent, name, mode, &e);
	if (rc)
		fuse_reply_err(req, rc);
	else
		fuse_reply_entry(req, &e);
}

void fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		 struct fuse_file_info *fi)
{
	struct fsi f = fsi_decode(ino);
	int rc;
	(void)fi;

	if (f.kind == FSI_PLAIN) {
		size_t n = 0;
		if ((rc = fs_plain_write(ino, buf, size, off, &n)) != 0)
			fuse_reply_err(req, rc);
		else
			fuse_reply_write(req, n);
		return;
	}
	if (f.kind != FSI_PENDING) {
		/* a stored message never changes */
		fuse_reply_err(req, f.kind == FSI_MSG ? EPERM : EISDIR);
		return;
	}
	/* past the user's quota: EDQUOT now, not a lost file at close */
	uint32_t mbid;
	enum fsi_sub sub;
	char pname[MDNAME_MAX + 1];
	int pstate;
	size_t plen;
	if (fs_pending_info(fs_of(req), f.serial, &mbid, &sub, pname, &pstate, &plen) == 0 &&
	    quota_check_mailbox(fs_of(req)->store, mbid, (uint64_t)off + size) == STORE_EQUOTA) {
		fuse_reply_err(req, EDQUOT);
		return;
	}
	if ((rc = fs_pending_write(fs_of(req), f.serial, buf, size, off)) != 0)
		fuse_reply_err(req, rc);
	else
		fuse_reply_write(req, size);
}

void fs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	(void)link;
	(void)parent;
	(void)name;
	fuse_reply_err(req, EPERM);
}

/* --- attributes -------------------------------------------------------------- */

static int owner_ok(const struct stat *attr, int to_set, const struct fs_owner *owner)
{
	if ((to_set & FUSE_SET_ATTR_UID) && attr->st_uid != owner->uid)
		return 0;
	if ((to_set & FUSE_SET_ATTR_GID) && attr->st_gid != owner->gid)
		return 0;
	return 1;
}

/* A mode that keeps group and others out (within 0700): accepted, the mount
 * shows 0600 and 0700 whatever is asked; setuid and the like are refused. */
static int mode_ok(const struct stat *attr, int to_set)
{
	return !(to_set & FUSE_SET_ATTR_MODE) || (attr->st_mode & 07077) == 0;
}

struct w_date {
	uint32_t mbid, uid;
	int64_t date;
	struct store_msg msg;
};

static int w_date(struct store_txn *txn, void *vctx)
{
	struct w_date *c = vctx;
	return store_msg_set_internaldate(txn, c->mbid, c->uid, c->date, &c->msg);
}

void fs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		   struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fsi f = fsi_decode(ino);
	struct store_txn *txn = NULL;
	struct store_msg msg;
	struct place pl;
	struct stat st;
	int rc;
	(void)fi;

	if (f.kind == FSI_PLAIN) {
		if ((rc = fs_plain_setattr(fs, ino, attr, to_set, &st)) != 0)
			goto fail;
		fuse_reply_attr(req, &st, 1.0);
		return;
	}
	if ((rc = place_of(fs, ino, &pl)) != 0)
		goto fail;
	if (f.kind == FSI_PENDING) {
		/* the mode of a file being written is taken as its creation mode
		 * is: stored as 0600 (plain rsync and cp -p set the source's) */
		if (!owner_ok(attr, to_set, &pl.owner)) {
			rc = EPERM;
			goto fail;
		}
		if ((to_set & FUSE_SET_ATTR_SIZE) &&
		    (rc = fs_pending_truncate(fs, f.serial, (uint64_t)attr->st_size)) != 0)
			goto fail;
		if (to_set & FUSE_SET_ATTR_MODE)
			fs_pending_set_mode(fs, f.serial, attr->st_mode);
		if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
			struct timespec now;
			clock_gettime(CLOCK_REALTIME, &now);
			fs_pending_set_times(fs, f.serial, &now);
		} else if (to_set & FUSE_SET_ATTR_MTIME) {
			fs_pending_set_times(fs, f.serial, &attr->st_mtim);
		}
		if ((rc = fs_pending_stat(fs, f.serial, &pl.owner, &st, NULL)) != 0)
			goto fail;
		fuse_reply_attr(req, &st, 0);
		return;
	}
	if (f.kind == FSI_MSG) {
		if ((rc = store_read_begin(fs->store, &txn)) < 0 ||
		    (rc = store_msg_get(txn, f.id, f.uid, &msg)) < 0) {
			store_read_end(&txn);
			rc = fs_errno(rc);
			goto fail;
		}
		store_read_end(&txn);
		fs_msg_stat(fs, &msg, &pl.owner, &st);
		/* what cannot change a stored message is accepted as it is (rsync -a,
		 * cp -p set owner, mode and times); what would let others in, or
		 * change the bytes, is refused */
		if (!owner_ok(attr, to_set, &pl.owner) || !mode_ok(attr, to_set) ||
		    ((to_set & FUSE_SET_ATTR_SIZE) && attr->st_size != st.st_size)) {
			rc = EPERM;
			goto fail;
		}
		if (to_set & FUSE_SET_ATTR_MTIME) {
			/* the mtime is the internal date: touch -d sets it */
			struct w_date c = {.mbid = f.id, .uid = f.uid};
			struct timespec now;
			clock_gettime(CLOCK_REALTIME, &now);
			c.date =
			    (to_set & FUSE_SET_ATTR_MTIME_NOW) ? now.tv_sec : attr->st_mtim.tv_sec;
			if (c.date != msg.internaldate) {
				if (c.date <= 0) {
					rc = EINVAL;
					goto fail;
				}
				if ((rc = store_write(fs->store, w_date, &c)) < 0) {
					rc = fs_errno(rc);
					goto fail;
				}
				fs_known_add(fs, &c.msg);
				fs_msg_stat(fs, &c.msg, &pl.owner, &st);
			}
		}
		fuse_reply_attr(req, &st, fs->attr_timeout);
		return;
	}
	/* directories: same owner and mode only; their times are ours */
	if (to_set & FUSE_SET_ATTR_SIZE) {
		rc = EISDIR;
		goto fail;
	}
	if (pl.kind == FSI_ROOT) {
		rc = EPERM;
		goto fail;
	}
	if (!owner_ok(attr, to_set, &pl.owner) || !mode_ok(attr, to_set)) {
		rc = EPERM;
		goto fail;
	}
	memset(&st, 0, sizeof(st));
	st.st_ino = ino;
	st.st_mode = S_IFDIR | 0700;
	st.st_nlink = 2;
	st.st_uid = pl.owner.uid;
	st.st_gid = pl.owner.gid;
	st.st_mtim = fs->start;
	/* a zero attr timeout: the next stat asks getattr for the real values */
	fuse_reply_attr(req, &st, 0);
	return;
fail:
	fuse_reply_err(req, rc);
}

/* --- unlink ------------------------------------------------------------------ */

struct w_unlink {
	uint32_t mbid;
	enum fsi_sub sub;
	const char *name;
	uint32_t uid;
};

static int w_unlink(struct store_txn *txn, void *vctx)
{
	struct w_unlink *c = vctx;
	struct store_msg msg;
	int rc;
	if ((rc = find_msg(txn, c->mbid, c->sub, c->name, &msg)) < 0)
		return rc;
	c->uid = msg.uid;
	return store_msg_expunge(txn, c->mbid, msg.uid);
}

void fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	struct place pl;
	struct w_unlink c;
	int rc;

	if ((rc = place_of(fs, parent, &pl)) != 0)
		goto fail;
	if (pl.kind == FSI_USER || pl.kind == FSI_MBOX || pl.kind == FSI_PLAIN) {
		if ((rc = virtual_name(fs, parent, &pl, name)) != 0) {
			rc = EISDIR; /* cur/ new/ tmp/, a mailbox's folder */
			goto fail;
		}
		rc = fs_plain_unlink(fs, parent, name, 0);
		goto done;
	}
	if (pl.kind != FSI_SUB) {
		rc = pl.kind == FSI_ROOT ? EPERM : ENOTDIR;
		goto fail;
	}
	fs_pending_wait(fs, pl.mbid, pl.sub, name);
	if (fs_pending_unlink(fs, pl.mbid, pl.sub, name) == 0) {
		fuse_reply_err(req, 0);
		return;
	}
	c = (struct w_unlink){.mbid = pl.mbid, .sub = pl.sub, .name = name};
	if ((rc = store_write(fs->store, w_unlink, &c)) < 0) {
		rc = fs_errno(rc);
		goto fail;
	}
	fs_known_del(fs, pl.mbid, c.uid);
	fs_mb_touch(fs, pl.mbid);
	fuse_reply_err(req, 0);
	return;
done:
fail:
	fuse_reply_err(req, rc);
}

/* --- rename and link ------------------------------------------------------------ */

/* Adds a pending file's bytes as a message. */
struct w_commit {
	const char *data;
	size_t len;
	int64_t internaldate;
	uint32_t mbid;
	uint32_t flags;
	const char *base;
	int replace; /* rename replaces a message with the same base; link does not;
			-1: a taken base gets a new one (a file stored at close) */
	struct store_msg msg;
	uint32_t replaced_uid;
};

static int w_commit(struct store_txn *txn, void *vctx)
{
	struct w_commit *c = vctx;
	struct store_msg old;
	struct store_msg_new m;
	int rc;

	c->replaced_uid = 0;
	const char *base = c->base;

	if ((rc = store_msg_get_by_base(txn, c->mbid, c->base, &old)) == 0) {
		if (c->replace < 0) {
			base = NULL; /* the store makes one up: nothing is lost */
			goto add;
		}
		if (!c->replace)
			return STORE_EEXIST;
		if ((rc = store_msg_expunge(txn, c->mbid, old.uid)) < 0)
			return rc;
		c->replaced_uid = old.uid;
	} else if (rc != STORE_ENOTFOUND) {
		return rc;
	}
add:
	memset(&m, 0, sizeof(m));
	if ((rc = store_blob_put(txn, c->data, c->len, m.hash)) < 0)
		return rc;
	m.flags = c->flags;
	m.internaldate = c->internaldate;
	m.base = base;
	return store_msg_add(txn, c->mbid, &m, &c->msg);
}

/* Commits pending file serial as name into dst. 0 or an errno. */
static int commit_pending(struct fs *fs, uint64_t serial, const struct place *dst, const char *name,
			  int replace, struct store_msg *msg_r)
{
	struct w_commit c;
	struct mdname mn;
	struct timespec mtime;
	char *data = NULL;
	int rc;

	if (!message_name(name, &mn))
		return EINVAL;
	memset(&c, 0, sizeof(c));
	if (fs_pending_copy(fs, serial, &data, &c.len, &mtime) != 0)
		return ENOENT;
	c.data = data;
	c.internaldate = mtime.tv_sec > 0 ? mtime.tv_sec : 1;
	c.mbid = dst->mbid;
	c.flags = wanted_flags(&mn, dst->sub);
	if (!(c.base = mdname_new_base(&mn))) {
		free(data);
		return ENAMETOOLONG;
	}
	c.replace = replace;
	rc = store_write(fs->store, w_commit, &c);
	free(data);
	if (rc < 0)
		return fs_errno(rc);
	if (c.replaced_uid)
		fs_known_del(fs, dst->mbid, c.replaced_uid);
	fs_known_add(fs, &c.msg);
	fs_mb_touch(fs, dst->mbid);
	log_info("fs: new message mbid=%u uid=%u size=%llu", c.msg.mbid, c.msg.uid,
		 (unsigned long long)c.msg.size);
	*msg_r = c.msg;
	return 0;
}

/* Renames or moves a stored message, or copies it (link). */
struct w_move {
	uint32_t mbid;
	enum fsi_sub sub;
	const char *name;
	uint32_t dst_mbid;
	uint32_t want;
	int copy;
	int same_base_needed;
	const struct mdname *new_name;
	struct store_msg old, msg;
	int err;
};

static int w_move(struct store_txn *txn, void *vctx)
{
	struct w_move *c = vctx;
	int rc;

	if ((rc = find_msg(txn, c->mbid, c->sub, c->name, &c->old)) < 0)
		return rc;
	c->msg = c->old;
	if (c->dst_mbid == c->mbid) {
		if (c->copy) {
			c->err = EEXIST;
			return E_ERRNO;
		}
		if (!mdname_matches(c->new_name, c->old.base, c->old.size, c->new_name->flags)) {
			/* a base name is the message's identity in its folder */
			c->err = EPERM;
			return E_ERRNO;
		}
	} else if (c->copy) {
		if ((rc = store_msg_copy(txn, c->mbid, c->old.uid, c->dst_mbid, &c->msg)) < 0)
			return rc;
	} else {
		if ((rc = store_msg_move(txn, c->mbid, c->old.uid, c->dst_mbid, &c->msg)) < 0)
			return rc;
	}
	return set_name_flags(txn, &c->msg, c->want);
}

static int rename_folder(struct fs *fs, const struct place *src, const char *name,
			 const struct place *dst, const char *newname, unsigned int flags);

/* Directories that hold plain files beside the mail. */
#define PLAIN_PLACE(k) ((k) == FSI_USER || (k) == FSI_MBOX || (k) == FSI_PLAIN)

void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		  const char *newname, unsigned int flags)
{
	struct fs *fs = fs_of(req);
	struct place src, dst;
	struct mdname mn;
	struct w_move c;
	struct store_msg msg;
	uint64_t ino;
	int rc;

	if ((rc = place_of(fs, parent, &src)) != 0 || (rc = place_of(fs, newparent, &dst)) != 0)
		goto fail;
	if (PLAIN_PLACE(src.kind)) {
		if (src.kind == FSI_USER && fs_folder_name(name) &&
		    virtual_name(fs, parent, &src, name) == EEXIST) {
			rc = rename_folder(fs, &src, name, &dst, newname, flags);
			goto done;
		}
		if (virtual_name(fs, parent, &src, name) != 0) {
			rc = EPERM; /* cur/ new/ tmp/ stay where they are */
			goto fail;
		}
		/* a plain file or directory */
		if (!PLAIN_PLACE(dst.kind))
			rc = dst.kind == FSI_SUB ? EXDEV : EPERM;
		else if (virtual_name(fs, newparent, &dst, newname) != 0)
			rc = EEXIST;
		else
			rc = fs_plain_rename(fs, parent, name, newparent, newname, flags);
		goto done;
	}
	if (flags & RENAME_EXCHANGE) {
		rc = EINVAL;
		goto fail;
	}
	if (src.kind != FSI_SUB || dst.kind != FSI_SUB) {
		/* a message out of the mail: cp and unlink (mv does) */
		rc = src.kind == FSI_SUB && PLAIN_PLACE(dst.kind) ? EXDEV
		     : dst.kind == FSI_SUB			  ? ENOTDIR
								  : EPERM;
		goto fail;
	}
	if (src.user_id != dst.user_id) {
		rc = EXDEV;
		goto fail;
	}
	if (strlen(newname) > MDNAME_MAX) {
		rc = ENAMETOOLONG;
		goto fail;
	}

	/* a file being written (if the close thread stores it right now, the
	 * rename is one of the stored message) */
	int tries = 0;
retry_pending:
	fs_pending_wait(fs, src.mbid, src.sub, name);
	if (fs_pending_lookup(fs, src.mbid, src.sub, name, &ino) == 0) {
		struct fsi f = fsi_decode(ino);
		if (dst.sub == FSI_TMP || newname[0] == '.') {
			rc = fs_pending_rename(fs, f.serial, dst.mbid, dst.sub, newname);
			goto done;
		}
		if (!message_name(newname, &mn)) {
			rc = EINVAL;
			goto fail;
		}
		if ((rc = fs_pending_claim(fs, f.serial)) != 0) {
			if (rc == EBUSY && tries++ < 100)
				goto retry_pending; /* the close thread took it first */
			goto fail;
		}
		if ((rc = commit_pending(fs, f.serial, &dst, newname, !(flags & RENAME_NOREPLACE),
					 &msg)) != 0) {
			fs_pending_unclaim(fs, f.serial);
			goto fail;
		}
		fs_pending_remove(fs, f.serial);
		/* the kernel's entry for newname points at the pending inode */
		fs_inval_later(fs, newparent, newname);
		goto done;
	}

	/* a stored message */
	if (dst.sub == FSI_TMP) {
		rc = EPERM;
		goto fail;
	}
	if (!message_name(newname, &mn)) {
		rc = EINVAL;
		goto fail;
	}
	memset(&c, 0, sizeof(c));
	c.mbid = src.mbid;
	c.sub = src.sub;
	c.name = name;
	c.dst_mbid = dst.mbid;
	c.want = wanted_flags(&mn, dst.sub);
	c.new_name = &mn;
	if ((rc = store_write(fs->store, w_move, &c)) < 0) {
		rc = rc == E_ERRNO ? c.err : fs_errno(rc);
		goto fail;
	}
	if (c.mbid != c.dst_mbid) {
		fs_known_del(fs, c.mbid, c.old.uid);
		fs_inval_later(fs, newparent, newname);
	} else if (fs_msg_sub(&c.msg) != dst.sub) {
		/* a seen message renamed into new/ stays in cur/ */
		fs_inval_later(fs, newparent, newname);
	}
	fs_known_add(fs, &c.msg);
	fs_mb_touch(fs, src.mbid);
	fs_mb_touch(fs, dst.mbid);
	rc = 0;
done:
	fuse_reply_err(req, rc);
	return;
fail:
	fuse_reply_err(req, rc);
}

void fs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct fs *fs = fs_of(req);
	struct fsi f = fsi_decode(ino);
	struct place src, dst;
	struct fuse_entry_param e;
	struct store_msg msg;
	struct mdname mn;
	int rc;

	if ((rc = place_of(fs, ino, &src)) != 0 || (rc = place_of(fs, newparent, &dst)) != 0)
		goto fail;
	if (dst.kind != FSI_SUB || (f.kind != FSI_PENDING && f.kind != FSI_MSG)) {
		rc = EPERM;
		goto fail;
	}
	if (src.user_id != dst.user_id) {
		rc = EXDEV;
		goto fail;
	}
	if (dst.sub == FSI_TMP || !message_name(newname, &mn)) {
		/* only into new/ or cur/, under a Maildir name */
		rc = EPERM;
		goto fail;
	}
	if (f.kind == FSI_PENDING) {
		if ((rc = fs_pending_claim(fs, f.serial)) != 0) {
			rc = rc == EBUSY ? EAGAIN : rc;
			goto fail;
		}
		rc = commit_pending(fs, f.serial, &dst, newname, 0, &msg);
		if (rc == 0)
			fs_pending_set_linked(fs, f.serial);
		fs_pending_unclaim(fs, f.serial);
		if (rc != 0)
			goto fail;
	} else {
		struct store_txn *txn = NULL;
		struct w_move c;
		char name[MDNAME_MAX + 1];

		/* the source's current name, for find_msg */
		if ((rc = store_read_begin(fs->store, &txn)) < 0 ||
		    (rc = store_msg_get(txn, f.id, f.uid, &msg)) < 0) {
			store_read_end(&txn);
			rc = fs_errno(rc);
			goto fail;
		}
		store_read_end(&txn);
		if (fs_msg_name(&msg, name) < 0) {
			rc = EIO;
			goto fail;
		}
		memset(&c, 0, sizeof(c));
		c.mbid = f.id;
		c.sub = fs_msg_sub(&msg);
		c.name = name;
		c.dst_mbid = dst.mbid;
		c.want = wanted_flags(&mn, dst.sub);
		c.new_name = &mn;
		c.copy = 1;
		if ((rc = store_write(fs->store, w_move, &c)) < 0) {
			rc = rc == E_ERRNO ? c.err : fs_errno(rc);
			goto fail;
		}
		msg = c.msg;
		fs_known_add(fs, &msg);
		fs_mb_touch(fs, dst.mbid);
	}
	memset(&e, 0, sizeof(e));
	e.ino = fsi_msg(msg.mbid, msg.uid);
	e.attr_timeout = fs->attr_timeout;
	e.entry_timeout = fs->entry_timeout;
	fs_msg_stat(fs, &msg, &dst.owner, &e.attr);
	fuse_reply_entry(req, &e);
	return;
fail:
	fuse_reply_err(req, rc);
}

/* Stores a file written straight into new/ or cur/ under a Maildir name
 * (`cp msg /mail/bob/new/`, `cat >`, mv from another file system), at its
 * last close or at fsync. Files in tmp/, dot files (rsync's) and files
 * link()ed or stored already wait for their rename. keep: the file stays open
 * (fsync): it is kept, found by inode only, until closed. Returns 0 or an
 * errno; *stored_r says whether a message was added. */
static int store_written(struct fs *fs, uint64_t serial, int keep, int *stored_r)
{
	char name[MDNAME_MAX + 1], pname[MDNAME_MAX + 1];
	struct mdname mn;
	struct place dst;
	struct store_msg msg;
	enum fsi_sub sub;
	uint32_t mbid;
	size_t len;
	int state, rc;

	*stored_r = 0;
	if (fs_pending_info(fs, serial, &mbid, &sub, name, &state, &len) != 0 || sub == FSI_TMP ||
	    state || !message_name(name, &mn))
		return 0;
	if (len == 0)
		return 0; /* nothing written yet (a shell's redirect before the command writes) */
	if (fs_pending_claim(fs, serial) != 0)
		return 0; /* being stored by another thread */
	memset(&dst, 0, sizeof(dst));
	dst.kind = FSI_SUB;
	dst.mbid = mbid;
	dst.sub = sub;
	rc = commit_pending(fs, serial, &dst, name, -1, &msg);
	if (rc != 0) {
		fs_pending_unclaim(fs, serial);
		log_warn("fs: cannot store %s written into %s/ (mailbox %u): %s",
			 log_printable(pname, sizeof(pname), name, strlen(name)), fsi_sub_name(sub),
			 mbid, strerror(rc));
		return rc;
	}
	*stored_r = 1;
	if (keep)
		fs_pending_set_stored(fs, serial);
	else
		fs_pending_remove(fs, serial);
	/* the kernel's entry for the name points at the file being written */
	fs_inval_later(fs, fsi_sub(mbid, sub), name);
	return 0;
}

/* Files closed in new/ or cur/, stored together: one durable commit for a
 * burst of them (cp -r of many files), as smtpin's group commit does. */
#define BATCH_BYTES (16u << 20)

struct closed_file {
	uint64_t serial;
	uint32_t mbid;
	enum fsi_sub sub;
	char name[MDNAME_MAX + 1];
	struct mdname mn;
	char *data;
	struct w_commit c;
	int done;
};

struct w_batch {
	struct closed_file *f;
	size_t n;
};

static int w_batch(struct store_txn *txn, void *vctx)
{
	struct w_batch *b = vctx;
	int rc;
	for (size_t i = 0; i < b->n; i++)
		if ((rc = w_commit(txn, &b->f[i].c)) < 0)
			return rc;
	return 0;
}

/* Stores the files of b (each one alone if together fails) and lets them go. */
static void store_batch(struct fs *fs, struct w_batch *b)
{
	char pname[MDNAME_MAX + 1];
	int rc = b->n ? store_write(fs->store, w_batch, b) : 0;

	for (size_t i = 0; i < b->n; i++) {
		struct closed_file *f = &b->f[i];
		if (rc < 0) {
			struct w_batch one = {f, 1};
			int rc1 = store_write(fs->store, w_batch, &one);
			if (rc1 < 0)
				log_warn(
				    "fs: cannot store %s written into %s/ (mailbox %u): %s",
				    log_printable(pname, sizeof(pname), f->name, strlen(f->name)),
				    fsi_sub_name(f->sub), f->mbid, strerror(fs_errno(rc1)));
			else
				f->done = 1;
		} else {
			f->done = 1;
		}
		if (f->done) {
			fs_known_add(fs, &f->c.msg);
			fs_mb_touch(fs, f->mbid);
			log_info("fs: new message mbid=%u uid=%u size=%llu", f->c.msg.mbid,
				 f->c.msg.uid, (unsigned long long)f->c.msg.size);
		}
		/* stored, or logged: never left listed as if it were mail */
		fs_pending_remove(fs, f->serial);
		fs_inval_later(fs, fsi_sub(f->mbid, f->sub), f->name);
		free(f->data);
		f->data = NULL;
	}
	b->n = 0;
}

void fs_pending_closed(struct fs *fs, const uint64_t *serials, const int *killed, size_t n)
{
	struct closed_file *files = calloc(n ? n : 1, sizeof(*files));
	struct w_batch b = {files, 0};
	size_t bytes = 0;

	if (!files)
		log_fatal("out of memory");
	for (size_t i = 0; i < n; i++) {
		char name[MDNAME_MAX + 1], pname[MDNAME_MAX + 1];
		struct closed_file *f = &files[b.n];
		struct timespec mtime;
		enum fsi_sub sub;
		uint32_t mbid;
		size_t len;
		int state;

		if (fs_pending_info(fs, serials[i], &mbid, &sub, name, &state, &len) != 0)
			continue;
		if (state & FS_PENDING_STORED) {
			fs_pending_remove(fs, serials[i]); /* stored by fsync, now closed */
			continue;
		}
		if (fs_pending_claim(fs, serials[i]) != 0)
			continue; /* a rename or link stores it right now */
		if (killed[i]) {
			if (state & FS_PENDING_LINKED) {
				fs_pending_unclaim(fs, serials[i]);
				continue; /* in the store already; tmp/ keeps it until unlinked */
			}
			/* a writer that died half-way: nothing of it is stored or listed */
			log_info("fs: %s/%s (mailbox %u, %zu bytes) dropped: its writer was killed",
				 fsi_sub_name(sub),
				 log_printable(pname, sizeof(pname), name, strlen(name)), mbid,
				 len);
			fs_pending_remove(fs, serials[i]);
			fs_inval_later(fs, fsi_sub(mbid, sub), name);
			continue;
		}
		if (sub == FSI_TMP || state || !message_name(name, &f->mn)) {
			fs_pending_unclaim(fs, serials[i]);
			continue; /* waits for its rename */
		}
		if (len == 0) {
			/* an empty file is no message: it goes, so that nothing is
			 * listed the store does not hold */
			log_info("fs: empty %s/%s (mailbox %u) not stored", fsi_sub_name(sub),
				 log_printable(pname, sizeof(pname), name, strlen(name)), mbid);
			fs_pending_remove(fs, serials[i]);
			fs_inval_later(fs, fsi_sub(mbid, sub), name);
			continue;
		}
		if (bytes + len > BATCH_BYTES && b.n > 0) {
			store_batch(fs, &b);
			bytes = 0;
			f = &files[0];
			if (!message_name(name, &f->mn))
				continue;
		}
		memset(&f->c, 0, sizeof(f->c));
		f->serial = serials[i];
		f->mbid = mbid;
		f->sub = sub;
		f->done = 0;
		mk_strlcpy(f->name, name, sizeof(f->name));
		if (fs_pending_copy(fs, serials[i], &f->data, &f->c.len, &mtime) != 0) {
			fs_pending_unclaim(fs, serials[i]);
			continue;
		}
		f->c.data = f->data;
		f->c.internaldate = mtime.tv_sec > 0 ? mtime.tv_sec : 1;
		f->c.mbid = mbid;
		f->c.flags = wanted_flags(&f->mn, sub);
		f->c.base = mdname_new_base(&f->mn);
		f->c.replace = -1; /* a base taken meanwhile: a new one, nothing lost */
		bytes += f->c.len;
		b.n++;
	}
	store_batch(fs, &b);
	free(files);
}

/* The kernel sends RELEASE only while open() is answered for real
 * (fs->real_open, when close.c cannot follow closes); then the last close
 * stores the file here. */
void fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fsi f = fsi_decode(ino);
	(void)fi;

	if (f.kind == FSI_PENDING && !fs->close_events) {
		int killed = 0;
		fs_pending_closed(fs, &f.serial, &killed, 1);
	} else if (f.kind == FSI_PLAIN && !fs->close_events) {
		fs_plain_closed(fs, ino); /* .sieve: save it */
	}
	fuse_reply_err(req, 0);
}

/* fsync of a file written straight into new/ or cur/ stores it, durably,
 * before fsync returns (Python's write+fsync+close, rsync --fsync's temporary
 * files wait for their rename). Its errors are fsync's. */
void fs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct fsi f = fsi_decode(ino);
	int stored;
	(void)fi;

	if (f.kind == FSI_PLAIN) {
		fuse_reply_err(req, fs_plain_fsync(fs_of(req), ino, datasync));
		return;
	}
	if (f.kind != FSI_PENDING) {
		fuse_reply_err(req, 0); /* stored messages are durable */
		return;
	}
	fuse_reply_err(req, store_written(fs_of(req), f.serial, 1, &stored));
}

/* --- folders ----------------------------------------------------------------- */

static const char *folder_name(const char *name)
{
	if (name[0] != '.' || name[1] == '\0' || strcmp(name, "..") == 0 ||
	    strcasecmp(name + 1, "INBOX") == 0 || strlen(name + 1) > STORE_NAME_MAX)
		return NULL;
	return name + 1;
}

struct w_folder {
	uint32_t user_id;
	const char *name, *newname;
	struct store_mailbox mb;
	int err;
};

static int w_mkdir(struct store_txn *txn, void *vctx)
{
	struct w_folder *c = vctx;
	return store_mailbox_create(txn, c->user_id, c->name, 0, &c->mb);
}

static int w_rmdir(struct store_txn *txn, void *vctx)
{
	struct w_folder *c = vctx;
	int rc;
	if ((rc = store_mailbox_get(txn, c->user_id, c->name, &c->mb)) < 0)
		return rc;
	if (c->mb.messages > 0)
		return STORE_ENOTEMPTY;
	return store_mailbox_delete(txn, c->user_id, c->name);
}

static int w_mbrename(struct store_txn *txn, void *vctx)
{
	struct w_folder *c = vctx;
	return store_mailbox_rename(txn, c->user_id, c->name, c->newname);
}

/* mkdir beside cur/ new/ tmp/ makes a plain directory; mkdir of cur, new or
 * tmp in a plain ".Folder" directory makes the mailbox Folder (maildirmake,
 * Python's mailbox and MUAs make a folder so: mkdir .F, then .F/cur .F/new
 * .F/tmp, each of which must succeed once). */
void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct fs *fs = fs_of(req);
	struct place pl;
	struct w_folder c;
	struct fuse_entry_param e;
	struct fs_plain_dir pd;
	int rc, sub;

	if ((rc = place_of(fs, parent, &pl)) != 0)
		goto fail;
	if (pl.kind == FSI_PLAIN && (sub = fsi_sub_parse(name)) >= 0 &&
	    fs_plain_dir(fs, parent, 0, &pd) == 0) {
		memset(&c, 0, sizeof(c));
		c.user_id = pd.user_id;
		c.name = pd.folder;
		c.mb.id = pd.mbid;
		rc = 0;
		if (!pd.folder[0]) {
			c.mb.id = 0; /* not a folder's directory: a plain one */
		} else if (!pd.mbid) {
			if ((rc = store_write(fs->store, w_mkdir, &c)) < 0)
				rc = fs_errno(rc);
			else
				fs_plain_made(c.mb.id, (enum fsi_sub)sub, 2);
			fs_user_touch(fs, pd.user_id);
		} else if (fs_plain_made(pd.mbid, (enum fsi_sub)sub, 0)) {
			rc = EEXIST;
		} else {
			fs_plain_made(pd.mbid, (enum fsi_sub)sub, 1);
		}
		fs_plain_dir_close(&pd);
		if (rc)
			goto fail;
		if (c.mb.id) {
			struct store_txn *txn = NULL;
			struct fs_owner o;
			if (store_read_begin(fs->store, &txn) == 0) {
				fs_mb_owner(fs, txn, c.mb.id, &o);
				store_read_end(&txn);
			}
			memset(&e, 0, sizeof(e));
			e.ino = fsi_sub(c.mb.id, (enum fsi_sub)sub);
			e.attr_timeout = fs->attr_timeout;
			e.entry_timeout = fs->entry_timeout;
			e.attr.st_ino = e.ino;
			e.attr.st_mode = S_IFDIR | 0700;
			e.attr.st_nlink = 2;
			e.attr.st_uid = pl.owner.uid;
			e.attr.st_gid = pl.owner.gid;
			e.attr.st_size = 4096;
			e.attr.st_mtim = e.attr.st_atim = e.attr.st_ctim = fs->start;
			fuse_reply_entry(req, &e);
			return;
		}
	}
	if (pl.kind != FSI_USER && pl.kind != FSI_MBOX && pl.kind != FSI_PLAIN) {
		rc = EPERM;
		goto fail;
	}
	if ((rc = virtual_name(fs, parent, &pl, name)) != 0)
		goto fail;
	if ((rc = fs_plain_create(fs, parent, name, mode, 1, &e)) != 0)
		goto fail;
	fs_user_touch(fs, pl.user_id);
	fuse_reply_entry(req, &e);
	return;
fail:
	fuse_reply_err(req, rc);
}

struct empty_ctx {
	enum fsi_sub sub;
	int found;
};

static int empty_cb(const struct store_msg *msg, void *vctx)
{
	struct empty_ctx *c = vctx;
	if (fs_msg_sub(msg) == c->sub) {
		c->found = 1;
		return 1;
	}
	return 0;
}

static int count_pending_cb(const char *name, uint64_t ino, void *ctx)
{
	(void)name;
	(void)ino;
	(void)ctx;
	return 1;
}

void fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	struct place pl;
	struct w_folder c;
	const char *folder;
	int rc, sub;

	if ((rc = place_of(fs, parent, &pl)) != 0)
		goto fail;
	if (pl.kind == FSI_PLAIN && fsi_sub_parse(name) >= 0) {
		/* cur/ of a ".Folder" directory whose mailbox exists */
		struct fs_plain_dir pd;
		if (fs_plain_dir(fs, parent, 0, &pd) == 0) {
			pl.mbid = pd.mbid;
			fs_plain_dir_close(&pd);
		}
		if (pl.mbid)
			pl.kind = FSI_MBOX;
	}
	if ((pl.kind == FSI_USER || pl.kind == FSI_MBOX) && (sub = fsi_sub_parse(name)) >= 0) {
		/* cur/ new/ tmp/ are part of every folder: removing an empty one
		 * is allowed (rm -r), and it stays */
		struct empty_ctx ec = {.sub = (enum fsi_sub)sub};
		struct store_txn *txn = NULL;
		if (sub != FSI_TMP) {
			if ((rc = store_read_begin(fs->store, &txn)) < 0) {
				rc = fs_errno(rc);
				goto fail;
			}
			store_msg_foreach(txn, pl.mbid, empty_cb, &ec);
			store_read_end(&txn);
		}
		if (ec.found ||
		    fs_pending_list(fs, pl.mbid, (enum fsi_sub)sub, 0, count_pending_cb, NULL)) {
			rc = ENOTEMPTY;
			goto fail;
		}
		fuse_reply_err(req, 0);
		return;
	}
	if (pl.kind != FSI_USER && pl.kind != FSI_MBOX && pl.kind != FSI_PLAIN) {
		rc = pl.kind == FSI_SUB ? ENOTDIR : EPERM;
		goto fail;
	}
	if (pl.kind != FSI_USER || !(folder = folder_name(name)) ||
	    virtual_name(fs, parent, &pl, name) == 0) {
		/* a plain directory */
		rc = fs_plain_unlink(fs, parent, name, 1);
		goto fail;
	}
	/* a mailbox's folder: its plain files' directory first (empty, as rm -r
	 * leaves it), then the mailbox, if empty */
	rc = fs_plain_unlink(fs, parent, name, 1);
	if (rc != 0 && rc != ENOENT)
		goto fail;
	memset(&c, 0, sizeof(c));
	c.user_id = pl.user_id;
	c.name = folder;
	if ((rc = store_write(fs->store, w_rmdir, &c)) < 0) {
		rc = fs_errno(rc);
		goto fail;
	}
	fs_user_touch(fs, pl.user_id);
	fuse_reply_err(req, 0);
	return;
fail:
	fuse_reply_err(req, rc);
}

static int rename_folder(struct fs *fs, const struct place *src, const char *name,
			 const struct place *dst, const char *newname, unsigned int flags)
{
	struct w_folder c;
	const char *from, *to;
	int rc;
	(void)flags;

	if (src->kind != FSI_USER || fsi_sub_parse(name) >= 0 || fsi_sub_parse(newname) >= 0)
		return EPERM;
	if (dst->kind != FSI_USER)
		return EPERM;
	if (src->user_id != dst->user_id)
		return EXDEV;
	if (!(from = folder_name(name)) || !(to = folder_name(newname)))
		return EPERM;
	memset(&c, 0, sizeof(c));
	c.user_id = src->user_id;
	c.name = from;
	c.newname = to;
	if (flags & RENAME_EXCHANGE)
		return EINVAL;
	if ((rc = store_write(fs->store, w_mbrename, &c)) < 0)
		return fs_errno(rc);
	/* the folder's plain files go with it */
	if ((rc = fs_plain_rename_folder(fs, src->user_id, from, to)) != 0)
		log_warn("fs: the plain files of .%s stay there: %s", from, strerror(rc));
	fs_user_touch(fs, src->user_id);
	return 0;
}
