/* plain — the files on the mount that are not mail.
 *
 * Programs that work on a Maildir keep files of their own in it: notmuch its
 * Xapian database in .notmuch/, mbsync .mbsyncstate and .uidvalidity in each
 * folder, Courier's maildirmake a "maildirfolder" file, mutt a header cache.
 * None of it is mail, so none of it goes into the store or shows over IMAP:
 * it is kept as plain files in a per-user area beside the store,
 *
 *   <data_directory>/files/<user>/              the user's Maildir root (INBOX)
 *   <data_directory>/files/<user>/.<Folder>/    plain files of a folder
 *   <data_directory>/files/<user>/<any path>    directories the user makes
 *
 * and the mount shows them where they were written, beside cur/ new/ tmp/ and
 * the .Folders of the store. A directory is a mailbox only once it is a
 * Maildir: `mkdir .Lists` makes a plain directory, `mkdir .Lists/cur` (what
 * maildirmake, Python's mailbox and every MUA do next) makes the mailbox
 * "Lists"; the plain directory then holds that folder's plain files.
 *
 * Inodes: FSI_PLAIN | the backing file's inode number. Each inode the kernel
 * knows holds one descriptor of its backing file (directories O_RDONLY, files
 * O_RDWR), counted by lookups and closed by forget, as libfuse's
 * passthrough_ll does: renames, links and unlinks need no path bookkeeping.
 * open() answers ENOSYS on this mount (ops.c), so reads and writes come
 * without a file handle and use the inode's descriptor.
 *
 * Owners and modes follow the mail's rules: the user's uid/gid; a mode change
 * that keeps group and others out (within 0700) is applied, one that would
 * let them in fails with EPERM, as does a chown to another owner.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/fs.h"
#include "lib/log.h"
#include "lib/util.h"

#define PLAIN_ATTR_TIMEOUT 1.0

struct plain_node {
	struct plain_node *next; /* hash chain */
	uint64_t ino;		 /* our inode number */
	uint64_t nlookup;
	int fd;
	int is_dir;
	uint32_t user_id;
	int sieve; /* /<user>/.sieve (sieve_file.c) */
	int dirty; /* ... written since it was last saved or refreshed */
	/* a directory right under the user's root named ".Folder": it is the
	 * folder's directory once the mailbox exists ("" otherwise) */
	char folder[STORE_NAME_MAX + 1];
};

#define NBUCKETS 4096

static struct {
	pthread_mutex_t lock;
	struct plain_node *buckets[NBUCKETS];
	int root_fd; /* <data_directory>/files */
	/* mailboxes made by mkdir .F/cur in this session: which of cur new tmp
	 * were made yet (so that maildirmake's mkdir of each one succeeds) */
	struct made {
		uint32_t mbid;
		unsigned mask;
	} made[64];
	size_t nmade;
} P = {.lock = PTHREAD_MUTEX_INITIALIZER, .root_fd = -1};

int fs_plain_init(const char *dir)
{
	if (mk_mkdirs(dir, 0700) < 0) {
		log_warn("fs: cannot create %s: %m", dir);
		return -1;
	}
	if ((P.root_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		log_warn("fs: cannot open %s: %m", dir);
		return -1;
	}
	return 0;
}

void fs_plain_free(void)
{
	for (size_t i = 0; i < NBUCKETS; i++)
		while (P.buckets[i]) {
			struct plain_node *n = P.buckets[i];
			P.buckets[i] = n->next;
			close(n->fd);
			free(n);
		}
	if (P.root_fd >= 0)
		close(P.root_fd);
	P.root_fd = -1;
}

/* A name that may be a path component of the area. */
static int name_ok(const char *name)
{
	return name[0] && strcmp(name, ".") != 0 && strcmp(name, "..") != 0 && !strchr(name, '/') &&
	       strlen(name) <= 255;
}

/* ".Folder" -> "Folder" when name may be a mailbox's folder, else NULL. */
const char *fs_folder_name(const char *name)
{
	if (name[0] != '.' || name[1] == '\0' || strcmp(name, "..") == 0 ||
	    strcasecmp(name + 1, "INBOX") == 0 || strlen(name + 1) > STORE_NAME_MAX)
		return NULL;
	return name + 1;
}

static struct plain_node **slot(uint64_t ino)
{
	struct plain_node **pp = &P.buckets[(ino * 11400714819323198485ULL) >> 52];
	while (*pp && (*pp)->ino != ino)
		pp = &(*pp)->next;
	return pp;
}

/* Takes the node of ino with one more reference (for an fd just opened on the
 * backing file: it is kept or closed). */
static void node_ref(uint64_t ino, int fd, int is_dir, uint32_t user_id, const char *folder)
{
	struct plain_node **pp, *n;
	pthread_mutex_lock(&P.lock);
	pp = slot(ino);
	if ((n = *pp)) {
		n->nlookup++;
		if (folder)
			mk_strlcpy(n->folder, folder, sizeof(n->folder));
		pthread_mutex_unlock(&P.lock);
		close(fd);
		return;
	}
	if (!(n = calloc(1, sizeof(*n))))
		log_fatal("out of memory");
	n->ino = ino;
	n->nlookup = 1;
	n->fd = fd;
	n->is_dir = is_dir;
	n->user_id = user_id;
	if (folder)
		mk_strlcpy(n->folder, folder, sizeof(n->folder));
	*pp = n;
	pthread_mutex_unlock(&P.lock);
}

void fs_plain_forget(uint64_t ino, uint64_t nlookup)
{
	struct plain_node **pp, *n;
	pthread_mutex_lock(&P.lock);
	pp = slot(ino);
	if ((n = *pp)) {
		n->nlookup = nlookup >= n->nlookup ? 0 : n->nlookup - nlookup;
		if (n->nlookup == 0) {
			*pp = n->next;
			close(n->fd);
			free(n);
		}
	}
	pthread_mutex_unlock(&P.lock);
}

/* A new descriptor of ino's backing file (dup), with its user and folder. */
static int node_fd(uint64_t ino, uint32_t *user_id_r, char *folder_r)
{
	struct plain_node *n;
	int fd = -1;
	pthread_mutex_lock(&P.lock);
	if ((n = *slot(ino))) {
		fd = fcntl(n->fd, F_DUPFD_CLOEXEC, 0);
		if (user_id_r)
			*user_id_r = n->user_id;
		if (folder_r)
			mk_strlcpy(folder_r, n->folder, STORE_NAME_MAX + 1);
	}
	pthread_mutex_unlock(&P.lock);
	return fd;
}

/* --- /<user>/.sieve (sieve_file.c) ---------------------------------------------- */

static int is_sieve_name(uint64_t parent, const char *name)
{
	return fsi_decode(parent).kind == FSI_USER && strcmp(name, ".sieve") == 0;
}

/* The node's sieve and dirty marks: set (>= 0) and/or read. */
static int node_marks(uint64_t ino, int sieve, int dirty, int *dirty_r)
{
	struct plain_node *n;
	int is = 0;
	pthread_mutex_lock(&P.lock);
	if ((n = *slot(ino))) {
		if (sieve >= 0)
			n->sieve = sieve;
		if (dirty >= 0)
			n->dirty = dirty;
		is = n->sieve;
		if (dirty_r)
			*dirty_r = n->dirty;
	}
	pthread_mutex_unlock(&P.lock);
	return is;
}

/* Makes the backing file of /<user>/.sieve in dirfd say what the store's
 * active script says (unless it is being written), or removes it when no
 * script is active. */
static void sieve_sync_out(struct fs *fs, int dirfd, uint32_t user_id)
{
	struct stat b;
	int dirty = 0, fd;
	if (fstatat(dirfd, ".sieve", &b, AT_SYMLINK_NOFOLLOW) == 0) {
		node_marks(fsi_plain(b.st_ino), -1, -1, &dirty);
		if (dirty || !S_ISREG(b.st_mode))
			return;
	}
	fd = openat(dirfd, ".sieve", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (fs_sieve_refresh_fd(fs, user_id, fd) == ENOENT)
		unlinkat(dirfd, ".sieve", 0);
	close(fd);
}

/* The file was written and is complete (fsync, close): saves it into the
 * store, or, when it does not compile, puts the active script back. */
static int sieve_commit(struct fs *fs, uint64_t ino)
{
	uint32_t user_id;
	int dirty = 0, rc = 0;
	if (!node_marks(ino, -1, -1, &dirty) || !dirty)
		return 0;
	int fd = node_fd(ino, &user_id, NULL);
	if (fd < 0)
		return ENOENT;
	rc = fs_sieve_save(fs, user_id, fd);
	node_marks(ino, -1, 0, NULL);
	if (rc != 0 && fs_sieve_refresh_fd(fs, user_id, fd) == ENOENT && ftruncate(fd, 0) < 0)
		log_warn("fs: .sieve of user %u: cannot empty it: %m", user_id);
	close(fd);
	return rc;
}

void fs_plain_closed(struct fs *fs, uint64_t ino)
{
	sieve_commit(fs, ino);
}

int fs_plain_user(uint64_t ino, uint32_t *user_id_r)
{
	int fd = node_fd(ino, user_id_r, NULL);
	if (fd < 0)
		return ENOENT;
	close(fd);
	return 0;
}

/* --- where a directory's plain files are ------------------------------------ */

static int names_of(struct fs *fs, uint32_t user_id, uint32_t mbid, char *user, char *folder)
{
	struct store_txn *txn = NULL;
	struct store_user u;
	struct store_mailbox mb;
	int rc;

	if ((rc = store_read_begin(fs->store, &txn)) < 0)
		return fs_errno(rc);
	rc = store_user_get_by_id(txn, user_id, &u);
	if (rc == 0 && mbid)
		rc = store_mailbox_get_by_id(txn, mbid, &mb);
	store_read_end(&txn);
	if (rc < 0)
		return fs_errno(rc);
	mk_strlcpy(user, u.name, STORE_NAME_MAX + 1);
	folder[0] = '\0';
	if (mbid) {
		folder[0] = '.';
		mk_strlcpy(folder + 1, mb.name, STORE_NAME_MAX + 1);
	}
	if (!name_ok(user) || (folder[0] && !name_ok(folder)))
		return EPERM; /* a name that cannot be a path: no plain files there */
	return 0;
}

/* Opens the directory of plain files that belongs with directory inode dir
 * (a user's root, a folder, or a plain directory). create: make it when
 * missing. Fills pd; 0, ENOENT (none yet) or an errno. */
int fs_plain_dir(struct fs *fs, uint64_t dir, int create, struct fs_plain_dir *pd)
{
	struct fsi f = fsi_decode(dir);
	char user[STORE_NAME_MAX + 1], folder[STORE_NAME_MAX + 2];
	struct store_txn *txn = NULL;
	struct store_mailbox mb;
	int ufd, rc;

	memset(pd, 0, sizeof(*pd));
	pd->fd = -1;
	if (P.root_fd < 0)
		return EPERM;
	switch (f.kind) {
	case FSI_PLAIN:
		if ((pd->fd = node_fd(dir, &pd->user_id, pd->folder)) < 0)
			return ENOENT;
		if (pd->folder[0]) {
			/* a ".Folder" directory is that folder's once the mailbox exists */
			if (store_read_begin(fs->store, &txn) == 0) {
				if (store_mailbox_get(txn, pd->user_id, pd->folder, &mb) == 0)
					pd->mbid = mb.id;
				store_read_end(&txn);
			}
		}
		return 0;
	case FSI_USER:
		pd->user_id = f.id;
		if ((rc = names_of(fs, f.id, 0, user, folder)) != 0)
			return rc;
		break;
	case FSI_MBOX: {
		struct fs_owner o;
		if (store_read_begin(fs->store, &txn) < 0)
			return EIO;
		rc = fs_mb_owner(fs, txn, f.id, &o);
		store_read_end(&txn);
		if (rc < 0)
			return fs_errno(rc);
		pd->user_id = o.user_id;
		pd->mbid = f.id;
		if ((rc = names_of(fs, o.user_id, f.id, user, folder)) != 0)
			return rc;
		mk_strlcpy(pd->folder, folder + 1, sizeof(pd->folder));
		break;
	}
	default:
		return EPERM;
	}
	if (create && mkdirat(P.root_fd, user, 0700) < 0 && errno != EEXIST)
		return errno;
	if ((ufd = openat(P.root_fd, user, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return errno == ENOENT ? ENOENT : errno;
	if (!folder[0]) {
		pd->fd = ufd;
		return 0;
	}
	if (create && mkdirat(ufd, folder, 0700) < 0 && errno != EEXIST) {
		rc = errno;
		close(ufd);
		return rc;
	}
	pd->fd = openat(ufd, folder, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	rc = pd->fd < 0 ? errno : 0;
	close(ufd);
	return rc;
}

void fs_plain_dir_close(struct fs_plain_dir *pd)
{
	if (pd->fd >= 0)
		close(pd->fd);
	pd->fd = -1;
}

/* --- attributes ----------------------------------------------------------------- */

static void fill_stat(const struct stat *b, uint64_t ino, const struct fs_owner *o, struct stat *st)
{
	*st = *b;
	st->st_ino = ino;
	st->st_mode = (b->st_mode & S_IFMT) | (b->st_mode & 0700);
	st->st_uid = o->uid;
	st->st_gid = o->gid;
	st->st_dev = 0;
}

static int owner_of_user(struct fs *fs, uint32_t user_id, struct fs_owner *o)
{
	struct store_txn *txn = NULL;
	int rc;
	if ((rc = store_read_begin(fs->store, &txn)) < 0)
		return fs_errno(rc);
	rc = fs_user_owner(fs, txn, user_id, o);
	store_read_end(&txn);
	return rc < 0 ? fs_errno(rc) : 0;
}

int fs_plain_stat(struct fs *fs, uint64_t ino, struct stat *st)
{
	struct fs_owner o;
	struct stat b;
	uint32_t user_id;
	int fd = node_fd(ino, &user_id, NULL), rc;

	if (fd < 0)
		return ENOENT;
	int dirty = 0;
	if (node_marks(ino, -1, -1, &dirty) && !dirty)
		fs_sieve_refresh_fd(fs, user_id, fd); /* ManageSieve may have changed it */
	rc = fstat(fd, &b) < 0 ? errno : owner_of_user(fs, user_id, &o);
	close(fd);
	if (rc == 0)
		fill_stat(&b, ino, &o, st);
	return rc;
}

/* Fills e for name in the directory dirfd (a new reference on its node). */
static int entry_of(struct fs *fs, int dirfd, const char *name, uint32_t user_id,
		    const char *folder, struct fuse_entry_param *e)
{
	struct fs_owner o;
	struct stat b;
	int fd, rc;

	if (fstatat(dirfd, name, &b, AT_SYMLINK_NOFOLLOW) < 0)
		return errno;
	if (!S_ISREG(b.st_mode) && !S_ISDIR(b.st_mode))
		return ENOENT; /* only files and directories live here */
	if ((rc = owner_of_user(fs, user_id, &o)) != 0)
		return rc;
	fd =
	    openat(dirfd, name,
		   (S_ISDIR(b.st_mode) ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == EACCES && S_ISREG(b.st_mode))
		fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno;
	if (fstat(fd, &b) < 0) {
		rc = errno;
		close(fd);
		return rc;
	}
	memset(e, 0, sizeof(*e));
	e->ino = fsi_plain(b.st_ino);
	e->attr_timeout = PLAIN_ATTR_TIMEOUT;
	e->entry_timeout = fs->entry_timeout;
	fill_stat(&b, e->ino, &o, &e->attr);
	node_ref(e->ino, fd, S_ISDIR(b.st_mode), user_id,
		 S_ISDIR(b.st_mode) && folder ? folder : NULL);
	return 0;
}

/* The folder name a plain directory at (parent, name) would stand for. */
static const char *junction_name(uint64_t parent, const char *name)
{
	return fsi_decode(parent).kind == FSI_USER ? fs_folder_name(name) : NULL;
}

int fs_plain_lookup(struct fs *fs, uint64_t parent, const char *name, struct fuse_entry_param *e)
{
	struct fs_plain_dir pd;
	int rc;

	if (!name_ok(name))
		return ENOENT;
	int sieve = is_sieve_name(parent, name);
	if ((rc = fs_plain_dir(fs, parent, sieve, &pd)) != 0)
		return rc == EPERM ? ENOENT : rc;
	if (sieve)
		sieve_sync_out(fs, pd.fd, pd.user_id);
	rc = entry_of(fs, pd.fd, name, pd.user_id, junction_name(parent, name), e);
	if (rc == 0 && sieve)
		node_marks(e->ino, 1, -1, NULL);
	fs_plain_dir_close(&pd);
	return rc;
}

/* --- maildirmake: mkdir .F, then .F/cur .F/new .F/tmp ------------------------------ */

int fs_plain_made(uint32_t mbid, enum fsi_sub sub, int set)
{
	int shown = 1;
	pthread_mutex_lock(&P.lock);
	for (size_t i = 0; i < P.nmade; i++)
		if (P.made[i].mbid == mbid) {
			if (set)
				P.made[i].mask |= 1U << sub;
			shown = (P.made[i].mask >> sub) & 1;
			if (P.made[i].mask == 7) /* all three: nothing to remember */
				P.made[i] = P.made[--P.nmade];
			goto out;
		}
	if (set == 2) {
		/* a mailbox just made by mkdir of its first subdirectory */
		if (P.nmade == sizeof(P.made) / sizeof(P.made[0]))
			memmove(P.made, P.made + 1, --P.nmade * sizeof(P.made[0]));
		P.made[P.nmade].mbid = mbid;
		P.made[P.nmade++].mask = 1U << sub;
	}
out:
	pthread_mutex_unlock(&P.lock);
	return shown;
}

/* --- changes -------------------------------------------------------------------- */

int fs_plain_create(struct fs *fs, uint64_t parent, const char *name, mode_t mode, int is_dir,
		    struct fuse_entry_param *e)
{
	struct fs_plain_dir pd;
	int rc, fd;

	if (!name_ok(name))
		return EINVAL;
	if ((rc = fs_plain_dir(fs, parent, 1, &pd)) != 0)
		return rc;
	if (is_dir) {
		rc = mkdirat(pd.fd, name, (mode & 0700) | 0700) < 0 ? errno : 0;
	} else {
		fd = openat(pd.fd, name, O_CREAT | O_EXCL | O_RDWR | O_NOFOLLOW | O_CLOEXEC,
			    (mode & 0700) | 0600);
		rc = fd < 0 ? errno : 0;
		if (fd >= 0)
			close(fd);
	}
	if (rc == 0)
		rc = entry_of(fs, pd.fd, name, pd.user_id,
			      is_dir ? junction_name(parent, name) : NULL, e);
	if (rc == 0 && !is_dir && is_sieve_name(parent, name))
		node_marks(e->ino, 1, 1, NULL); /* a new .sieve: saved when complete */
	fs_plain_dir_close(&pd);
	return rc;
}

int fs_plain_unlink(struct fs *fs, uint64_t parent, const char *name, int is_dir)
{
	struct fs_plain_dir pd;
	int rc;

	if (!name_ok(name))
		return ENOENT;
	if ((rc = fs_plain_dir(fs, parent, 0, &pd)) != 0)
		return rc == EPERM ? ENOENT : rc;
	rc = unlinkat(pd.fd, name, is_dir ? AT_REMOVEDIR : 0) < 0 ? errno : 0;
	if (rc == 0 && !is_dir && is_sieve_name(parent, name))
		rc = fs_sieve_deactivate(fs, pd.user_id);
	fs_plain_dir_close(&pd);
	return rc;
}

static void node_set_folder(int dirfd, const char *name, const char *folder);

int fs_plain_rename(struct fs *fs, uint64_t parent, const char *name, uint64_t newparent,
		    const char *newname, unsigned int flags)
{
	struct fs_plain_dir src, dst;
	int rc;

	if (!name_ok(name) || !name_ok(newname))
		return EINVAL;
	if ((rc = fs_plain_dir(fs, parent, 0, &src)) != 0)
		return rc == EPERM ? ENOENT : rc;
	if ((rc = fs_plain_dir(fs, newparent, 1, &dst)) != 0) {
		fs_plain_dir_close(&src);
		return rc;
	}
	int to_sieve = is_sieve_name(newparent, newname), from_sieve = is_sieve_name(parent, name);
	struct stat sb;
	if (src.user_id != dst.user_id) {
		rc = EXDEV;
	} else if (to_sieve) {
		/* an editor's save (write a copy, rename it over): checked first */
		int fd = openat(src.fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			rc = errno;
		else if ((rc = fs_sieve_save(fs, src.user_id, fd)) == 0 && renameat2(src.fd, name, dst.fd, newname, flags) < 0)
			rc = errno;
		if (fd >= 0)
			close(fd);
		if (rc == 0 && fstatat(dst.fd, newname, &sb, AT_SYMLINK_NOFOLLOW) == 0)
			node_marks(fsi_plain(sb.st_ino), 1, 0, NULL);
	} else if (renameat2(src.fd, name, dst.fd, newname, flags) < 0) {
		rc = errno;
	} else if (from_sieve && fstatat(dst.fd, newname, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
		node_marks(fsi_plain(sb.st_ino), 0, 0, NULL); /* a backup copy now, not the script */
	}
	if (rc == 0) {
		/* a directory that moved under the user's root as ".Folder" is that
		 * folder's (or stops being one) */
		const char *j = junction_name(newparent, newname);
		node_set_folder(dst.fd, newname, j ? j : "");
	}
	fs_plain_dir_close(&src);
	fs_plain_dir_close(&dst);
	return rc;
}

/* Points the node of the directory name in dirfd at folder (a rename). */
static void node_set_folder(int dirfd, const char *name, const char *folder)
{
	struct plain_node *n;
	struct stat b;
	if (fstatat(dirfd, name, &b, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(b.st_mode))
		return;
	pthread_mutex_lock(&P.lock);
	if ((n = *slot(fsi_plain(b.st_ino))))
		mk_strlcpy(n->folder, folder, sizeof(n->folder));
	pthread_mutex_unlock(&P.lock);
}

/* Renames the plain directories of a folder and its children with the
 * mailboxes (.A -> .B, .A.x -> .B.x), as store_mailbox_rename does. */
int fs_plain_rename_folder(struct fs *fs, uint32_t user_id, const char *from, const char *to)
{
	char user[STORE_NAME_MAX + 1], folder[STORE_NAME_MAX + 2], a[512], b[512];
	size_t flen = strlen(from);
	struct dirent *de;
	DIR *d;
	int ufd, rc = 0;

	if (names_of(fs, user_id, 0, user, folder) != 0 || P.root_fd < 0)
		return 0;
	if ((ufd = openat(P.root_fd, user, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return 0;
	if (!(d = fdopendir(ufd))) {
		close(ufd);
		return 0;
	}
	/* collect first: a new name may match too (A -> A.x) */
	char **names = NULL;
	size_t nn = 0;
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		if (n[0] != '.' || strncmp(n + 1, from, flen) != 0 ||
		    (n[1 + flen] != '\0' && n[1 + flen] != STORE_MAILBOX_SEP))
			continue;
		if (!(names = realloc(names, (nn + 1) * sizeof(*names))) ||
		    !(names[nn++] = strdup(n)))
			log_fatal("out of memory");
	}
	for (size_t i = 0; i < nn; i++) {
		const char *n = names[i];
		if ((size_t)snprintf(a, sizeof(a), "%s", n) < sizeof(a) &&
		    (size_t)snprintf(b, sizeof(b), ".%s%s", to, n + 1 + flen) < sizeof(b) &&
		    name_ok(b)) {
			if (renameat2(dirfd(d), a, dirfd(d), b, RENAME_NOREPLACE) < 0)
				rc = errno;
			else
				node_set_folder(dirfd(d), b, b + 1);
		}
		free(names[i]);
	}
	free(names);
	closedir(d);
	return rc;
}

int fs_plain_setattr(struct fs *fs, uint64_t ino, const struct stat *attr, int to_set,
		     struct stat *st_r)
{
	struct fs_owner o;
	uint32_t user_id;
	int fd = node_fd(ino, &user_id, NULL), rc;

	if (fd < 0)
		return ENOENT;
	/* a truncation (open with O_TRUNC) starts a new .sieve: not refreshed until saved */
	if ((to_set & FUSE_SET_ATTR_SIZE) && node_marks(ino, -1, 1, NULL) == 0)
		node_marks(ino, -1, 0, NULL);
	if ((rc = owner_of_user(fs, user_id, &o)) != 0)
		goto out;
	if (((to_set & FUSE_SET_ATTR_UID) && attr->st_uid != o.uid) ||
	    ((to_set & FUSE_SET_ATTR_GID) && attr->st_gid != o.gid) ||
	    ((to_set & FUSE_SET_ATTR_MODE) && (attr->st_mode & 07077))) {
		rc = EPERM; /* another owner, or access for group or others */
		goto out;
	}
	if ((to_set & FUSE_SET_ATTR_MODE) && fchmod(fd, attr->st_mode & 0700) < 0)
		goto err;
	if ((to_set & FUSE_SET_ATTR_SIZE) && ftruncate(fd, attr->st_size) < 0)
		goto err;
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_OMIT}};
		if (to_set & FUSE_SET_ATTR_ATIME_NOW)
			ts[0].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_ATIME)
			ts[0] = attr->st_atim;
		if (to_set & FUSE_SET_ATTR_MTIME_NOW)
			ts[1].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_MTIME)
			ts[1] = attr->st_mtim;
		if (futimens(fd, ts) < 0)
			goto err;
	}
	{
		struct stat b;
		if (fstat(fd, &b) < 0)
			goto err;
		fill_stat(&b, ino, &o, st_r);
	}
	goto out;
err:
	rc = errno;
out:
	close(fd);
	return rc;
}

int fs_plain_read(uint64_t ino, char *buf, size_t size, off_t off, size_t *len_r)
{
	int fd = node_fd(ino, NULL, NULL), rc = 0;
	ssize_t n;
	if (fd < 0)
		return ENOENT;
	n = pread(fd, buf, size, off);
	if (n < 0)
		rc = errno;
	else
		*len_r = (size_t)n;
	close(fd);
	return rc;
}

int fs_plain_write(uint64_t ino, const char *buf, size_t size, off_t off, size_t *len_r)
{
	int fd = node_fd(ino, NULL, NULL), rc = 0;
	if (node_marks(ino, -1, 1, NULL) == 0)
		node_marks(ino, -1, 0, NULL); /* only .sieve is ever dirty */
	ssize_t n;
	if (fd < 0)
		return ENOENT;
	n = pwrite(fd, buf, size, off);
	if (n < 0)
		rc = errno == EBADF ? EACCES : errno;
	else
		*len_r = (size_t)n;
	close(fd);
	return rc;
}

int fs_plain_fsync(struct fs *fs, uint64_t ino, int datasync)
{
	int fd = node_fd(ino, NULL, NULL), rc = 0;
	if (fd < 0)
		return ENOENT;
	/* .sieve: a script that does not compile is refused here (EINVAL) */
	if ((rc = sieve_commit(fs, ino)) != 0) {
		close(fd);
		return rc;
	}
	if ((datasync ? fdatasync(fd) : fsync(fd)) < 0)
		rc = errno;
	close(fd);
	return rc;
}

/* --- listing ------------------------------------------------------------------- */

size_t fs_plain_list(struct fs *fs, uint64_t dir, size_t skip,
		     int (*cb)(const char *name, const struct stat *st, size_t idx, void *ctx),
		     void *ctx)
{
	struct fs_plain_dir pd;
	struct fs_owner o;
	struct dirent *de;
	size_t i = 0, n = 0;
	DIR *d;

	int fd;

	int user_root = fsi_decode(dir).kind == FSI_USER;
	if (fs_plain_dir(fs, dir, user_root, &pd) != 0)
		return 0;
	if (user_root && skip == 0)
		sieve_sync_out(fs, pd.fd, pd.user_id); /* .sieve shows the active script */
	/* a descriptor of its own: a dup would share the position */
	fd = owner_of_user(fs, pd.user_id, &o) == 0
		 ? openat(pd.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
		 : -1;
	fs_plain_dir_close(&pd);
	if (fd < 0)
		return 0;
	if (!(d = fdopendir(fd))) {
		close(fd);
		return 0;
	}
	while ((de = readdir(d))) {
		struct stat b, st;
		if (!name_ok(de->d_name))
			continue;
		if (fstatat(dirfd(d), de->d_name, &b, AT_SYMLINK_NOFOLLOW) < 0 ||
		    (!S_ISREG(b.st_mode) && !S_ISDIR(b.st_mode)))
			continue;
		if (i++ < skip)
			continue;
		fill_stat(&b, fsi_plain(b.st_ino), &o, &st);
		n++;
		if (cb(de->d_name, &st, i - 1, ctx))
			break;
	}
	closedir(d);
	return n;
}
