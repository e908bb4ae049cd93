/* ops — the fuse_lowlevel_ops table and the read side: lookup, getattr,
 * readdir(plus), read, statfs.
 *
 * Every handler opens a short read transaction, answers with exactly one
 * fuse_reply_*, and ends the transaction after the reply (the reply copies
 * the bytes, which point into the LMDB map). open/opendir answer ENOSYS: the
 * kernel then stops sending OPEN/RELEASE and keeps file content in its page
 * cache across opens (content of a stored message never changes); closes of
 * written files come from fanotify instead (close.c). Lookups and listings
 * of user, folder and plain directories also show the plain files (plain.c). Entries and
 * attributes are cached for fs_entry_timeout / fs_attr_timeout; watch.c
 * invalidates them when the store changes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/statvfs.h>

#include "fs/fs.h"
#include "index/quota.h"
#include "lib/log.h"
#include "lib/util.h"

int fs_errno(int err)
{
	switch (err) {
	case 0:
		return 0;
	case STORE_ENOTFOUND:
		return ENOENT;
	case STORE_EEXIST:
		return EEXIST;
	case STORE_EFULL:
		return ENOSPC;
	case STORE_EINVAL:
		return EINVAL;
	case STORE_EMODIFIED:
		return EAGAIN;
	case STORE_ENOTEMPTY:
		return ENOTEMPTY;
	case STORE_ETOOBIG:
		return EFBIG;
	case STORE_EQUOTA:
		return EDQUOT;
	default:
		return EIO;
	}
}

void fs_msg_stat(const struct fs *fs, const struct store_msg *msg, const struct fs_owner *owner,
		 struct stat *st)
{
	(void)fs;
	memset(st, 0, sizeof(*st));
	st->st_ino = fsi_msg(msg->mbid, msg->uid);
	st->st_mode = S_IFREG | 0600;
	st->st_nlink = 1;
	st->st_uid = owner->uid;
	st->st_gid = owner->gid;
	st->st_size = (off_t)msg->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((msg->size + 511) / 512);
	st->st_mtim.tv_sec = msg->internaldate;
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
}

static void dir_stat(uint64_t ino, const struct fs_owner *owner, mode_t mode, nlink_t nlink,
		     struct timespec mtime, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = S_IFDIR | mode;
	st->st_nlink = nlink;
	st->st_uid = owner ? owner->uid : 0;
	st->st_gid = owner ? owner->gid : 0;
	st->st_size = 4096;
	st->st_blksize = 4096;
	st->st_blocks = 8;
	st->st_mtim = mtime;
	st->st_atim = mtime;
	st->st_ctim = mtime;
}

static struct timespec mb_mtime(struct fs *fs, uint32_t mbid)
{
	struct timespec t = fs->start;
	pthread_mutex_lock(&fs->lock);
	if (mbid < fs->nmbs && fs->mbs[mbid].used)
		t = fs->mbs[mbid].mtime;
	pthread_mutex_unlock(&fs->lock);
	return t;
}

static struct timespec user_mtime(struct fs *fs, uint32_t user_id)
{
	struct timespec t = fs->start;
	pthread_mutex_lock(&fs->lock);
	if (user_id < fs->nusers && fs->users[user_id].mtime.tv_sec)
		t = fs->users[user_id].mtime;
	pthread_mutex_unlock(&fs->lock);
	return t;
}

static int count_cb(const void *x, void *ctx)
{
	(void)x;
	(*(size_t *)ctx)++;
	return 0;
}

static int count_users_cb(const struct store_user *u, void *ctx)
{
	return count_cb(u, ctx);
}

static int count_mbs_cb(const struct store_mailbox *mb, void *ctx)
{
	return count_cb(mb, ctx);
}

/* The attributes of any inode. Returns 0 or an errno. */
static int attr_of(struct fs *fs, struct store_txn *txn, fuse_ino_t ino, struct stat *st)
{
	struct fsi f = fsi_decode(ino);
	struct fs_owner owner;
	struct store_msg msg;
	struct timespec t;
	size_t n = 0;
	int rc;

	switch (f.kind) {
	case FSI_ROOT:
		store_user_foreach(txn, count_users_cb, &n);
		pthread_mutex_lock(&fs->lock);
		t = fs->root_mtime;
		pthread_mutex_unlock(&fs->lock);
		dir_stat(ino, NULL, 0755, 2 + n, t, st);
		return 0;
	case FSI_USER:
		if ((rc = fs_user_owner(fs, txn, f.id, &owner)) < 0)
			return fs_errno(rc);
		store_mailbox_foreach(txn, f.id, count_mbs_cb, &n);
		/* . .. cur new tmp, and one ".Folder" per mailbox but INBOX */
		dir_stat(ino, &owner, 0700, 2 + 3 + (n ? n - 1 : 0), user_mtime(fs, f.id), st);
		return 0;
	case FSI_MBOX:
		if ((rc = fs_mb_owner(fs, txn, f.id, &owner)) < 0)
			return fs_errno(rc);
		if (owner.inbox == f.id)
			return ENOENT;
		dir_stat(ino, &owner, 0700, 5, mb_mtime(fs, f.id), st);
		return 0;
	case FSI_SUB:
		if ((rc = fs_mb_owner(fs, txn, f.id, &owner)) < 0)
			return fs_errno(rc);
		dir_stat(ino, &owner, 0700, 2, mb_mtime(fs, f.id), st);
		return 0;
	case FSI_MSG:
		if ((rc = store_msg_get(txn, f.id, f.uid, &msg)) < 0)
			return fs_errno(rc);
		if ((rc = fs_mb_owner(fs, txn, f.id, &owner)) < 0)
			return fs_errno(rc);
		fs_msg_stat(fs, &msg, &owner, st);
		return 0;
	case FSI_PLAIN:
		return fs_plain_stat(fs, ino, st);
	case FSI_PENDING: {
		uint32_t mbid;
		if (fs_pending_mbid(fs, f.serial, &mbid) != 0)
			return ENOENT;
		if ((rc = fs_mb_owner(fs, txn, mbid, &owner)) < 0)
			return fs_errno(rc);
		return fs_pending_stat(fs, f.serial, &owner, st, NULL);
	}
	default:
		return ENOENT;
	}
}

/* ".Folder" -> "Folder"; NULL if name is no folder name. */
static const char *folder_of(const char *name)
{
	if (name[0] != '.' || name[1] == '\0' || strcmp(name, "..") == 0)
		return NULL;
	if (strcasecmp(name + 1, "INBOX") == 0)
		return NULL;
	return name + 1;
}

/* A plain file's entry (ino 0: none). */
static int plain_lookup(struct fs *fs, uint64_t parent, const char *name,
			struct fuse_entry_param *e)
{
	int rc = fs_plain_lookup(fs, parent, name, e);
	if (rc == ENOENT || rc == ENOTDIR) {
		memset(e, 0, sizeof(*e));
		e->attr_timeout = fs->attr_timeout;
		e->entry_timeout = fs->entry_timeout;
		return 0;
	}
	return rc;
}

/* Finds name in parent; fills e (ino 0 = no such entry). Returns 0 or an errno. */
static int lookup_in(struct fs *fs, struct store_txn *txn, fuse_ino_t parent, const char *name,
		     struct fuse_entry_param *e)
{
	struct fsi p = fsi_decode(parent);
	struct fs_owner owner;
	struct store_user user;
	struct store_mailbox mb;
	struct store_msg msg;
	struct mdname mn;
	uint64_t ino;
	const char *folder;
	int sub, rc;

	memset(e, 0, sizeof(*e));
	e->attr_timeout = fs->attr_timeout;
	e->entry_timeout = fs->entry_timeout;
	switch (p.kind) {
	case FSI_ROOT:
		if (strlen(name) > STORE_NAME_MAX)
			return ENAMETOOLONG;
		if ((rc = store_user_get(txn, name, &user)) < 0)
			return rc == STORE_ENOTFOUND || rc == STORE_EINVAL ? 0 : fs_errno(rc);
		e->ino = fsi_user(user.id);
		break;
	case FSI_USER:
		if ((sub = fsi_sub_parse(name)) >= 0) {
			if ((rc = fs_user_owner(fs, txn, p.id, &owner)) < 0)
				return fs_errno(rc);
			fs_mb_owner(fs, txn, owner.inbox, &owner);
			e->ino = fsi_sub(owner.inbox, (enum fsi_sub)sub);
			break;
		}
		if ((folder = folder_of(name)) && strlen(folder) <= STORE_NAME_MAX &&
		    (rc = store_mailbox_get(txn, p.id, folder, &mb)) == 0) {
			e->ino = fsi_mbox(mb.id);
			break;
		}
		return plain_lookup(fs, parent, name, e);
	case FSI_MBOX:
		if ((sub = fsi_sub_parse(name)) < 0)
			return plain_lookup(fs, parent, name, e);
		e->ino = fsi_sub(p.id, (enum fsi_sub)sub);
		break;
	case FSI_PLAIN: {
		/* a plain ".Folder" directory whose mailbox exists is the folder's */
		struct fs_plain_dir pd;
		uint32_t mbid = 0;
		if ((sub = fsi_sub_parse(name)) >= 0 && fs_plain_dir(fs, parent, 0, &pd) == 0) {
			mbid = pd.mbid;
			fs_plain_dir_close(&pd);
		}
		if (!mbid)
			return plain_lookup(fs, parent, name, e);
		if (!fs_plain_made(mbid, (enum fsi_sub)sub, 0))
			return 0; /* maildirmake has not made it yet */
		if ((rc = fs_mb_owner(fs, txn, mbid, &owner)) < 0)
			return fs_errno(rc);
		e->ino = fsi_sub(mbid, (enum fsi_sub)sub);
		break;
	}
	case FSI_SUB:
		if (fs_pending_lookup(fs, p.id, p.sub, name, &ino) == 0) {
			e->ino = ino;
			e->entry_timeout = 0; /* names of files being written change */
			e->attr_timeout = 0;
			break;
		}
		if (p.sub == FSI_TMP || mdname_parse(name, strlen(name), &mn) < 0)
			return 0;
		{
			const char *cand[3];
			int nc = mdname_candidates(&mn, cand);
			rc = STORE_ENOTFOUND;
			for (int k = 0; k < nc && rc == STORE_ENOTFOUND; k++)
				rc = store_msg_get_by_base(txn, p.id, cand[k], &msg);
		}
		if (rc < 0)
			return rc == STORE_ENOTFOUND || rc == STORE_EINVAL ? 0 : fs_errno(rc);
		if (fs_msg_sub(&msg) != p.sub ||
		    !mdname_matches(&mn, msg.base, msg.size, msg.flags))
			return 0;
		if ((rc = fs_mb_owner(fs, txn, p.id, &owner)) < 0)
			return fs_errno(rc);
		fs_msg_stat(fs, &msg, &owner, &e->attr);
		fs_known_add(fs, &msg);
		e->ino = fsi_msg(msg.mbid, msg.uid);
		return 0;
	case FSI_MSG:
	case FSI_PENDING:
		return ENOTDIR;
	default:
		return ENOENT;
	}
	return attr_of(fs, txn, e->ino, &e->attr);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	/* always readdirplus: grep -r and find then need no LOOKUP per file */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* With atomic O_TRUNC the kernel leaves the truncation to OPEN, which
	 * this mount answers with ENOSYS: `> file` on a plain file (.sieve,
	 * .mbsyncstate) kept its old bytes. Without it, O_TRUNC is a SETATTR. */
	conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	struct fuse_entry_param e;
	struct store_txn *txn = NULL;
	int rc;

	if ((rc = store_read_begin(fs->store, &txn)) < 0) {
		fuse_reply_err(req, fs_errno(rc));
		return;
	}
	rc = lookup_in(fs, txn, parent, name, &e);
	if (rc == 0 && e.ino == 0) {
		/* a negative entry, cached for a short while */
		e.entry_timeout = fs->negative_timeout;
		if (e.entry_timeout > 0)
			fuse_reply_entry(req, &e);
		else
			fuse_reply_err(req, ENOENT);
	} else if (rc == 0) {
		fuse_reply_entry(req, &e);
	} else {
		fuse_reply_err(req, rc);
	}
	store_read_end(&txn);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	/* inodes are numbers, not objects: nothing to free, but for plain files */
	if (fsi_decode(ino).kind == FSI_PLAIN)
		fs_plain_forget(ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		if (fsi_decode(forgets[i].ino).kind == FSI_PLAIN)
			fs_plain_forget(forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct store_txn *txn = NULL;
	struct stat st;
	int rc;
	(void)fi;

	if ((rc = store_read_begin(fs->store, &txn)) < 0) {
		fuse_reply_err(req, fs_errno(rc));
		return;
	}
	rc = attr_of(fs, txn, ino, &st);
	if (rc == 0)
		fuse_reply_attr(req, &st,
				fsi_decode(ino).kind == FSI_PENDING ? 0
				: fsi_decode(ino).kind == FSI_PLAIN ? 1.0
								    : fs->attr_timeout);
	else
		fuse_reply_err(req, rc);
	store_read_end(&txn);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fsi f = fsi_decode(ino);

	if (!fs_of(req)->real_open) {
		/* no OPEN/RELEASE round trips: the kernel keeps content cached */
		fuse_reply_err(req, ENOSYS);
		return;
	}
	/* without close.c: a real open, so that RELEASE comes */
	if (f.kind == FSI_MSG && (fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EPERM); /* a stored message never changes */
		return;
	}
	fi->keep_cache = f.kind == FSI_MSG;
	fi->direct_io = f.kind == FSI_PENDING;
	fi->noflush = 1;
	fuse_reply_open(req, fi);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, ENOSYS);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fsi f = fsi_decode(ino);
	struct store_txn *txn = NULL;
	struct store_msg msg;
	const void *data;
	size_t len;
	int rc;
	(void)fi;

	if (f.kind == FSI_PENDING) {
		char *buf = malloc(size ? size : 1);
		if (!buf)
			log_fatal("out of memory");
		rc = fs_pending_read(fs, f.serial, buf, size, off, &len);
		if (rc)
			fuse_reply_err(req, rc);
		else
			fuse_reply_buf(req, buf, len);
		free(buf);
		return;
	}
	if (f.kind == FSI_PLAIN) {
		char *buf = malloc(size ? size : 1);
		if (!buf)
			log_fatal("out of memory");
		len = 0;
		rc = fs_plain_read(ino, buf, size, off, &len);
		if (rc)
			fuse_reply_err(req, rc);
		else
			fuse_reply_buf(req, buf, len);
		free(buf);
		return;
	}
	if (f.kind != FSI_MSG) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((rc = store_read_begin(fs->store, &txn)) < 0) {
		fuse_reply_err(req, fs_errno(rc));
		return;
	}
	if ((rc = store_msg_get(txn, f.id, f.uid, &msg)) < 0 ||
	    (rc = store_blob_get(txn, msg.hash, &data, &len)) < 0) {
		fuse_reply_err(req, fs_errno(rc));
	} else if (off < 0 || (uint64_t)off >= len) {
		fuse_reply_buf(req, NULL, 0);
	} else {
		size_t n = len - (size_t)off;
		fuse_reply_buf(req, (const char *)data + off, n < size ? n : size);
	}
	store_read_end(&txn);
}

/* --- readdir --------------------------------------------------------------- */

/* Offsets: 1 after ".", 2 after "..", then per directory kind:
 *   message dirs: uid + 2 after the message with that UID (stable while
 *   messages come and go: no duplicates, no missing entries), then pending
 *   files from PENDING_OFF;
 *   other dirs: 3 + index. */
#define PENDING_OFF ((off_t)1 << 33)
/* user, folder and plain directories: plain files from PLAIN_OFF (plain.c) */
#define PLAIN_OFF ((off_t)1 << 40)

struct dirbuf {
	fuse_req_t req;
	struct fs *fs;
	int plus;
	char *buf;
	size_t size, len;
	int full;
};

/* Adds one entry; 0, or 1 when the buffer is full. */
static int dirbuf_add(struct dirbuf *d, const char *name, const struct fuse_entry_param *e,
		      off_t next)
{
	size_t n;
	if (d->plus)
		n = fuse_add_direntry_plus(d->req, d->buf + d->len, d->size - d->len, name, e,
					   next);
	else
		n = fuse_add_direntry(d->req, d->buf + d->len, d->size - d->len, name, &e->attr,
				      next);
	if (n > d->size - d->len) {
		d->full = 1;
		return 1;
	}
	d->len += n;
	return 0;
}

static void dot_entry(struct fuse_entry_param *e, fuse_ino_t ino)
{
	memset(e, 0, sizeof(*e));
	e->attr.st_ino = ino;
	e->attr.st_mode = S_IFDIR;
	/* ino 0 in readdirplus: no lookup count, the kernel asks if it needs it */
}

struct list_ctx {
	struct dirbuf *d;
	struct store_txn *txn;
	off_t index, off;
	uint32_t user_id;
	enum fsi_sub sub;
	struct fs_owner owner;
};

static void entry_for(struct fs *fs, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->attr_timeout = fs->attr_timeout;
	e->entry_timeout = fs->entry_timeout;
}

static int list_user_cb(const struct store_user *u, void *vctx)
{
	struct list_ctx *c = vctx;
	struct fuse_entry_param e;
	off_t idx = c->index++;

	if (c->off >= idx + 3)
		return 0;
	entry_for(c->d->fs, &e);
	e.ino = fsi_user(u->id);
	if (attr_of(c->d->fs, c->txn, e.ino, &e.attr) != 0)
		return 0;
	return dirbuf_add(c->d, u->name, &e, idx + 3);
}

static int list_mb_cb(const struct store_mailbox *mb, void *vctx)
{
	struct list_ctx *c = vctx;
	struct fuse_entry_param e;
	char name[STORE_NAME_MAX + 2];
	off_t idx;

	if (strcasecmp(mb->name, "INBOX") == 0)
		return 0;
	idx = c->index++;
	if (c->off >= idx + 6)
		return 0;
	entry_for(c->d->fs, &e);
	e.ino = fsi_mbox(mb->id);
	name[0] = '.';
	mk_strlcpy(name + 1, mb->name, sizeof(name) - 1);
	fs_mb_owner(c->d->fs, c->txn, mb->id, &c->owner);
	dir_stat(e.ino, &c->owner, 0700, 5, mb_mtime(c->d->fs, mb->id), &e.attr);
	return dirbuf_add(c->d, name, &e, idx + 6);
}

static int list_pending_cb(const char *name, uint64_t ino, void *vctx)
{
	struct list_ctx *c = vctx;
	struct fuse_entry_param e;
	off_t idx = c->index++;

	memset(&e, 0, sizeof(e));
	e.attr.st_ino = ino;
	e.attr.st_mode = S_IFREG;
	/* ino 0: the kernel will LOOKUP it (its attributes change while written) */
	return dirbuf_add(c->d, name, &e, PENDING_OFF + idx + 1);
}

struct plain_ctx {
	struct list_ctx *c;
	int user;     /* a user's root: ".Folder" of a mailbox is the mailbox's */
	int junction; /* cur new tmp are the mailbox's */
};

static int list_plain_cb(const char *name, const struct stat *st, size_t idx, void *vctx)
{
	struct plain_ctx *pc = vctx;
	struct list_ctx *c = pc->c;
	struct fuse_entry_param e;
	struct store_mailbox mb;
	const char *folder;

	if ((pc->junction || pc->user) && fsi_sub_parse(name) >= 0)
		return 0;
	if (pc->user && (folder = fs_folder_name(name)) &&
	    store_mailbox_get(c->txn, c->user_id, folder, &mb) == 0)
		return 0; /* listed as the mailbox */
	memset(&e, 0, sizeof(e));
	e.attr.st_ino = st->st_ino;
	e.attr.st_mode = st->st_mode & S_IFMT;
	/* ino 0: the kernel will LOOKUP it (and so hold a reference) */
	return dirbuf_add(c->d, name, &e, PLAIN_OFF + (off_t)idx + 1);
}

static void list_plain(struct list_ctx *c, uint64_t dir, int user, int junction)
{
	struct plain_ctx pc = {.c = c, .user = user, .junction = junction};
	size_t skip = c->off >= PLAIN_OFF ? (size_t)(c->off - PLAIN_OFF) : 0;
	if (!c->d->full)
		fs_plain_list(c->d->fs, dir, skip, list_plain_cb, &pc);
}

static void list_messages(struct list_ctx *c, uint32_t mbid)
{
	struct store_cursor *cur = NULL;
	struct store_msg msg;
	struct fuse_entry_param e;
	char name[MDNAME_MAX + 1];
	uint32_t from = c->off >= 3 ? (uint32_t)(c->off - 1) : 1;

	if (c->off >= PENDING_OFF)
		return;
	if (store_msg_cursor_open(c->txn, mbid, from, &cur) < 0)
		return;
	while (store_msg_cursor_next(cur, &msg) == 0) {
		if (fs_msg_sub(&msg) != c->sub || fs_msg_name(&msg, name) < 0)
			continue;
		entry_for(c->d->fs, &e);
		e.ino = fsi_msg(msg.mbid, msg.uid);
		fs_msg_stat(c->d->fs, &msg, &c->owner, &e.attr);
		if (dirbuf_add(c->d, name, &e, (off_t)msg.uid + 2))
			break;
		if (c->d->plus)
			fs_known_add(c->d->fs, &msg);
	}
	store_msg_cursor_close(&cur);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, int plus)
{
	struct fs *fs = fs_of(req);
	struct fsi f = fsi_decode(ino);
	struct store_txn *txn = NULL;
	struct fuse_entry_param e;
	struct dirbuf d = {.req = req, .fs = fs, .plus = plus, .size = size};
	struct list_ctx c = {.d = &d, .off = off};
	int rc;

	if (f.kind == FSI_MSG || f.kind == FSI_PENDING || f.kind == FSI_NONE) {
		fuse_reply_err(req, f.kind == FSI_NONE ? ENOENT : ENOTDIR);
		return;
	}
	if ((rc = store_read_begin(fs->store, &txn)) < 0) {
		fuse_reply_err(req, fs_errno(rc));
		return;
	}
	c.txn = txn;
	d.buf = malloc(size ? size : 1);
	if (!d.buf)
		log_fatal("out of memory");

	if (off < 1) {
		dot_entry(&e, ino);
		if (dirbuf_add(&d, ".", &e, 1))
			goto done;
	}
	if (off < 2) {
		dot_entry(&e, FSI_ROOT_INO);
		if (dirbuf_add(&d, "..", &e, 2))
			goto done;
	}
	switch (f.kind) {
	case FSI_ROOT:
		store_user_foreach(txn, list_user_cb, &c);
		break;
	case FSI_USER:
	case FSI_MBOX: {
		uint32_t mbid = f.id;
		if (f.kind == FSI_USER) {
			if ((rc = fs_user_owner(fs, txn, f.id, &c.owner)) < 0)
				goto fail;
			mbid = c.owner.inbox;
			fs_mb_owner(fs, txn, mbid, &c.owner);
		} else if ((rc = fs_mb_owner(fs, txn, f.id, &c.owner)) < 0) {
			goto fail;
		}
		for (int s = FSI_CUR; s <= FSI_TMP; s++) {
			if (off >= 3 + s)
				continue;
			entry_for(fs, &e);
			e.ino = fsi_sub(mbid, (enum fsi_sub)s);
			dir_stat(e.ino, &c.owner, 0700, 2, mb_mtime(fs, mbid), &e.attr);
			if (dirbuf_add(&d, fsi_sub_name((enum fsi_sub)s), &e, 3 + s))
				goto done;
		}
		if (f.kind == FSI_USER) {
			c.user_id = f.id;
			store_mailbox_foreach(txn, f.id, list_mb_cb, &c);
		}
		list_plain(&c, ino, f.kind == FSI_USER, 1);
		break;
	}
	case FSI_PLAIN: {
		struct fs_plain_dir pd;
		uint32_t mbid = 0;
		if (fs_plain_dir(fs, ino, 0, &pd) == 0) {
			mbid = pd.mbid;
			c.user_id = pd.user_id;
			fs_plain_dir_close(&pd);
		}
		if (mbid && fs_mb_owner(fs, txn, mbid, &c.owner) == 0) {
			for (int s = FSI_CUR; s <= FSI_TMP; s++) {
				if (off >= 3 + s || !fs_plain_made(mbid, (enum fsi_sub)s, 0))
					continue;
				entry_for(fs, &e);
				e.ino = fsi_sub(mbid, (enum fsi_sub)s);
				dir_stat(e.ino, &c.owner, 0700, 2, mb_mtime(fs, mbid), &e.attr);
				if (dirbuf_add(&d, fsi_sub_name((enum fsi_sub)s), &e, 3 + s))
					goto done;
			}
		}
		list_plain(&c, ino, 0, mbid != 0);
		break;
	}
	case FSI_SUB:
		if ((rc = fs_mb_owner(fs, txn, f.id, &c.owner)) < 0)
			goto fail;
		c.sub = f.sub;
		if (f.sub != FSI_TMP)
			list_messages(&c, f.id);
		/* files being written are listed in tmp/ only: new/ and cur/ list
		 * what the store holds */
		if (!d.full && f.sub == FSI_TMP) {
			size_t skip = off >= PENDING_OFF ? (size_t)(off - PENDING_OFF) : 0;
			c.index = (off_t)skip;
			fs_pending_list(fs, f.id, f.sub, skip, list_pending_cb, &c);
		}
		break;
	default:
		break;
	}
done:
	fuse_reply_buf(req, d.buf, d.len);
	free(d.buf);
	store_read_end(&txn);
	return;
fail:
	fuse_reply_err(req, fs_errno(rc));
	free(d.buf);
	store_read_end(&txn);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, 1);
}

/* The user a directory or file of the mount belongs to; 0 for the root
 * and what cannot be told (plain files, files being written). */
static uint32_t user_of(struct fs *fs, fuse_ino_t ino)
{
	struct fsi f = fsi_decode(ino);
	struct store_txn *txn = NULL;
	struct store_mailbox mb;
	uint32_t user = 0;
	if (f.kind == FSI_USER)
		return f.id;
	if ((f.kind == FSI_MBOX || f.kind == FSI_SUB || f.kind == FSI_MSG) && store_read_begin(fs->store, &txn) == 0) {
		if (store_mailbox_get_by_id(txn, f.id, &mb) == 0)
			user = mb.user_id;
		store_read_end(&txn);
	}
	return user;
}

/* df: the store's file system, or, inside a user's directory with a quota,
 * the quota: size = the storage limit, used = what the user's messages
 * take, free = what is left (never more than the disk has); files = the
 * message limit. */
static void quota_statfs(struct fs *fs, uint32_t user_id, struct statvfs *sv)
{
	struct store_txn *txn = NULL;
	struct quota_limits lim;
	struct quota_usage use;
	if (store_read_begin(fs->store, &txn) != 0)
		return;
	int rc = quota_limits(txn, user_id, &lim);
	if (rc == 0)
		rc = quota_usage(txn, user_id, &use);
	store_read_end(&txn);
	if (rc != 0 || sv->f_frsize == 0)
		return;
	if (lim.storage) {
		uint64_t bs = sv->f_frsize, disk_free = (uint64_t)sv->f_bavail * bs;
		uint64_t left = use.bytes >= lim.storage ? 0 : lim.storage - use.bytes;
		if (left > disk_free)
			left = disk_free;
		sv->f_blocks = (lim.storage + bs - 1) / bs;
		sv->f_bfree = sv->f_bavail = left / bs;
	}
	if (lim.messages) {
		sv->f_files = lim.messages;
		sv->f_ffree = sv->f_favail = use.messages >= lim.messages ? 0 : lim.messages - use.messages;
	}
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fs_of(req);
	struct statvfs sv;

	if (statvfs(store_dir(fs->store), &sv) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	uint32_t user = user_of(fs, ino);
	if (user != 0)
		quota_statfs(fs, user, &sv);
	sv.f_namemax = MDNAME_MAX;
	fuse_reply_statfs(req, &sv);
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	/* default_permissions: the kernel checks; this only answers for mounts
	 * without it */
	(void)ino;
	(void)mask;
	fuse_reply_err(req, 0);
}

const struct fuse_lowlevel_ops fs_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = fs_op_setattr,
    .open = op_open,
    .opendir = op_opendir,
    .read = op_read,
    .write = fs_op_write,
    .release = fs_op_release,
    .fsync = fs_op_fsync,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .statfs = op_statfs,
    .access = op_access,
    .create = fs_op_create,
    .mknod = fs_op_mknod,
    .mkdir = fs_op_mkdir,
    .rmdir = fs_op_rmdir,
    .unlink = fs_op_unlink,
    .rename = fs_op_rename,
    .link = fs_op_link,
    .symlink = fs_op_symlink,
    .getxattr = fs_op_getxattr,
    .listxattr = fs_op_listxattr,
    .setxattr = fs_op_setxattr,
    .removexattr = fs_op_removexattr,
};
