/* pending — files being written on the mount, kept in memory.
 *
 * A Maildir writer creates a file in tmp/, writes it, and renames (or links)
 * it into new/ or cur/: only then does it enter the store (write.c). Until
 * then its bytes live here, bounded per file (fs_tmp_max_size) and in total
 * (fs_tmp_max_total), so a writer that dies half-way leaves nothing in the
 * store and nothing in new/ or cur/. Files created directly in new/ or cur/
 * (rsync's ".name.XXXXXX") live here too until renamed. The list is short:
 * a linear scan is enough.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/fs.h"
#include "lib/log.h"
#include "lib/util.h"

#define PENDING_MIN 4096

static struct fs_pending *find_serial(struct fs *fs, uint64_t serial)
{
	for (struct fs_pending *p = fs->pending; p; p = p->next)
		if (p->serial == serial)
			return p;
	return NULL;
}

static struct fs_pending *find_name(struct fs *fs, uint32_t mbid, enum fsi_sub sub,
				    const char *name)
{
	for (struct fs_pending *p = fs->pending; p; p = p->next)
		if (!p->stored && p->mbid == mbid && p->sub == sub && strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

static void fill_stat(const struct fs_pending *p, const struct fs_owner *owner, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = fsi_pending(p->serial);
	st->st_mode = S_IFREG | (p->mode & 0600);
	st->st_nlink = 1;
	st->st_uid = owner ? owner->uid : 0;
	st->st_gid = owner ? owner->gid : 0;
	st->st_size = (off_t)p->data.len;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((p->data.len + 511) / 512);
	st->st_mtim = p->mtime;
	st->st_atim = p->mtime;
	st->st_ctim = p->mtime;
}

int fs_pending_create(struct fs *fs, uint32_t mbid, enum fsi_sub sub, const char *name, mode_t mode,
		      uint64_t *ino_r, struct stat *st_r, const struct fs_owner *owner)
{
	struct fs_pending *p;
	int rc = 0;

	if (strlen(name) > MDNAME_MAX)
		return ENAMETOOLONG;
	pthread_mutex_lock(&fs->lock);
	if (find_name(fs, mbid, sub, name)) {
		rc = EEXIST;
		goto out;
	}
	/* each file counts as at least a page, so empty files are bounded too */
	if ((fs->pending_count + 1) * PENDING_MIN + fs->pending_bytes > fs->tmp_max_total) {
		rc = ENOSPC;
		goto out;
	}
	fs->pending_count++;
	p = calloc(1, sizeof(*p));
	if (!p)
		log_fatal("out of memory");
	p->serial = ++fs->pending_serial;
	p->mbid = mbid;
	p->sub = sub;
	mk_strlcpy(p->name, name, sizeof(p->name));
	buf_init(&p->data, fs->tmp_max_size);
	p->mode = (mode & 0600) | 0600;
	clock_gettime(CLOCK_REALTIME, &p->mtime);
	p->next = fs->pending;
	fs->pending = p;
	*ino_r = fsi_pending(p->serial);
	fill_stat(p, owner, st_r);
out:
	pthread_mutex_unlock(&fs->lock);
	return rc;
}

int fs_pending_lookup(struct fs *fs, uint32_t mbid, enum fsi_sub sub, const char *name,
		      uint64_t *ino_r)
{
	struct fs_pending *p;
	int rc = ENOENT;
	pthread_mutex_lock(&fs->lock);
	if ((p = find_name(fs, mbid, sub, name))) {
		*ino_r = fsi_pending(p->serial);
		rc = 0;
	}
	pthread_mutex_unlock(&fs->lock);
	return rc;
}

int fs_pending_stat(struct fs *fs, uint64_t serial, const struct fs_owner *owner, struct stat *st,
		    uint32_t *mbid_r)
{
	struct fs_pending *p;
	int rc = ENOENT;
	pthread_mutex_lock(&fs->lock);
	if ((p = find_serial(fs, serial))) {
		fill_stat(p, owner, st);
		if (mbid_r)
			*mbid_r = p->mbid;
		rc = 0;
	}
	pthread_mutex_unlock(&fs->lock);
	return rc;
}

int fs_pending_mbid(struct fs *fs, uint64_t serial, uint32_t *mbid_r)
{
	struct fs_pending *p;
	int rc = ENOENT;
	pthread_mutex_lock(&fs->lock);
	if ((p = find_serial(fs, serial))) {
		*mbid_r = p->mbid;
		rc = 0;
	}
	pthread_mutex_unlock(&fs->lock);
	return rc;
}

/* Resizes p's data to len bytes (zero-filling), counting the total. */
static int resize(struct fs *fs, struct fs_pending *p, size_t len)
{
	if (len > p->data.len) {
		size_t grow = len - p->data.len;
		if (len > fs->tmp_max_size)
			return EFBIG;
		if (fs->pending_bytes + fs->pending_count * PENDING_MIN + grow > fs->tmp_max_total)
			return ENOSPC;
		while (p->data.len < len) {
			static const char zeros[4096];
			size_t n = len - p->data.len;
			if (buf_append(&p->data, zeros, n < sizeof(zeros) ? n : sizeof(zeros)) < 0)
				return EFBIG;
		}
		fs->pending_bytes += grow;
	} else {
		fs->pending_bytes -= p->data.len - len;
		p->data.len = len;
		if (p->data.data)
			p->data.data[len] = '\0';
	}
	return 0;
}

int fs_pending_write(struct fs *fs, uint64_t serial, const char *data, size_t len, off_t off)
{
	struct fs_pending *p;
	int rc = 0;

	if (off < 0)
		return EINVAL;
	pthread_mutex_lock(&fs->lock);
	if (!(p = find_serial(fs, serial))) {
		rc = ENOENT;
		goto out;
	}
	if (p->stored) {
		rc = EPERM; /* in the store now: a stored message never changes */
		goto out;
	}
	if ((uint64_t)off > fs->tmp_max_size || len > fs->tmp_max_size - (uint64_t)off) {
		rc = EFBIG;
		goto out;
	}
	if ((size_t)off + len > p->data.len && (rc = resize(fs, p, (size_t)off + len)) != 0)
		goto out;
	if (len)
		memcpy(p->data.data + off, data, len);
	clock_gettime(CLOCK_REALTIME, &p->mtime);
out:
	pthread_mutex_unlock(&fs->lock);
	return rc;
}

int fs_pending_read(struct fs *fs, uint64_t serial, char *out, size_t size, off_t off,
		    size_t *len_r)
{
	struct fs_pending *p;
	int rc = 0;

	*len_r = 0;
	pthread_mutex_lock(&fs->lock);
	if (!(p = find_serial(fs, serial)))
		rc = ENOENT;
	else if (off >= 0 && (size_t)off < p->data.len) {
		size_t n = p->data.len - (size_t)off;
		*len_r = n < size ? n : size;
		memcpy(out, p->data.data + off, *len_r);
	}
	pthread_mutex_unlock(&fs->lock);
	return rc;
}

int fs_pending_truncate(struct fs *fs, uint64_t serial, uint64_t size)
{
	struct fs_pending *p;
	int rc;

	pthread_mutex_lock(&fs->lock);
	if (!(p = find_serial(fs, serial)))
		rc = ENOENT;
	else if (p->stored)
		rc = size == p->data.len ? 0 : EPERM;
	else if (size > fs->tmp_max_size)
		rc = EFBIG;
	else if ((rc = resize(fs, p, (size_t)size)) == 0)
		clock_gettime(CLOCK_REALTIME, &p->mtime);
	pthread_mutex_unlock(&fs->lock);
	return rc;
}

int fs_pending_set_times(struct fs *fs, uint64_t serial, const struct timespec *mtime)
{
	struct fs_pending *p;
	int rc = ENOENT;
	pthread_mutex_lock(&fs->lock);
	if ((p = find_serial(fs, serial))) {
		p->mtime = *mtime;
		rc = 0;
	}
	pthread_mutex_unlock(&fs->lock);
	return rc;
}

int fs_pending_set_mode(struct fs *fs, uint64_t serial, mode_t mode)
{
	struct fs_pending *p;
	int rc = ENOENT;
	pthread_mutex_lock(&fs->lock);
	if ((p = find_serial(fs, serial))) {
		p->mode = mode & 07777;
		rc = 0;
	}
	pthread_mutex_unlock(&fs->lock);
	return rc;
}

static void unlink_node(struct fs *fs, struct fs_pending *p)
{
	for (struct fs_pending **pp = &fs->pending; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	fs->pending_bytes -= p->data.len;
	fs->pending_count--;
	buf_free(&p->data);
	free(p);
}

int fs_pending_rename(struct fs *fs, uint64_t serial, uint32_t mbid, enum fsi_sub sub,
		      const char *name)
{
	struct fs_pending *p, *old;
	int rc = 0;

	if (strlen(name) > MDNAME_MAX)
		return ENAMETOOLONG;
	pthread_mutex_lock(&fs->lock);
	if (!(p = find_serial(fs, serial))) {
		rc = ENOENT;
		goto out;
	}
	/* rename replaces the target, as rename(2) does */
	if ((old = find_name(fs, mbid, sub, name)) && old != p)
		unlink_node(fs, old);
	p->mbid = mbid;
	p->sub = sub;
	mk_strlcpy(p->name, name, sizeof(p->name));
out:
	pthread_mutex_unlock(&fs->lock);
	return rc;
}

int fs_pending_unlink(struct fs *fs, uint32_t mbid, enum fsi_sub sub, const char *name)
{
	struct fs_pending *p;
	int rc = ENOENT;
	pthread_mutex_lock(&fs->lock);
	if ((p = find_name(fs, mbid, sub, name))) {
		unlink_node(fs, p);
		rc = 0;
	}
	pthread_mutex_unlock(&fs->lock);
	return rc;
}

int fs_pending_copy(struct fs *fs, uint64_t serial, char **data_r, size_t *len_r,
		    struct timespec *mtime_r)
{
	struct fs_pending *p;
	int rc = ENOENT;

	pthread_mutex_lock(&fs->lock);
	if ((p = find_serial(fs, serial))) {
		*len_r = p->data.len;
		*data_r = malloc(p->data.len ? p->data.len : 1);
		if (!*data_r)
			log_fatal("out of memory");
		if (p->data.len)
			memcpy(*data_r, p->data.data, p->data.len);
		*mtime_r = p->mtime;
		rc = 0;
	}
	pthread_mutex_unlock(&fs->lock);
	return rc;
}

int fs_pending_info(struct fs *fs, uint64_t serial, uint32_t *mbid_r, enum fsi_sub *sub_r,
		    char *name_r, int *state_r, size_t *len_r)
{
	struct fs_pending *p;
	int rc = ENOENT;
	pthread_mutex_lock(&fs->lock);
	if ((p = find_serial(fs, serial))) {
		*mbid_r = p->mbid;
		*sub_r = p->sub;
		mk_strlcpy(name_r, p->name, MDNAME_MAX + 1);
		*state_r =
		    (p->linked ? FS_PENDING_LINKED : 0) | (p->stored ? FS_PENDING_STORED : 0);
		*len_r = p->data.len;
		rc = 0;
	}
	pthread_mutex_unlock(&fs->lock);
	return rc;
}

void fs_pending_set_linked(struct fs *fs, uint64_t serial)
{
	struct fs_pending *p;
	pthread_mutex_lock(&fs->lock);
	if ((p = find_serial(fs, serial)))
		p->linked = 1;
	pthread_mutex_unlock(&fs->lock);
}

int fs_pending_claim(struct fs *fs, uint64_t serial)
{
	struct fs_pending *p;
	int rc = ENOENT;
	pthread_mutex_lock(&fs->lock);
	if ((p = find_serial(fs, serial))) {
		rc = p->busy ? EBUSY : 0;
		p->busy = 1;
	}
	pthread_mutex_unlock(&fs->lock);
	return rc;
}

void fs_pending_unclaim(struct fs *fs, uint64_t serial)
{
	struct fs_pending *p;
	pthread_mutex_lock(&fs->lock);
	if ((p = find_serial(fs, serial)))
		p->busy = 0;
	pthread_mutex_unlock(&fs->lock);
}

void fs_pending_wait(struct fs *fs, uint32_t mbid, enum fsi_sub sub, const char *name)
{
	for (int i = 0; i < 30000; i++) {
		struct fs_pending *p;
		int busy;
		pthread_mutex_lock(&fs->lock);
		busy = (p = find_name(fs, mbid, sub, name)) && p->busy;
		pthread_mutex_unlock(&fs->lock);
		if (!busy)
			return;
		usleep(1000);
	}
	log_warn("fs: a file stays busy for 30 s");
}

void fs_pending_set_stored(struct fs *fs, uint64_t serial)
{
	struct fs_pending *p;
	pthread_mutex_lock(&fs->lock);
	if ((p = find_serial(fs, serial))) {
		p->stored = 1;
		p->busy = 0;
	}
	pthread_mutex_unlock(&fs->lock);
}

void fs_pending_remove(struct fs *fs, uint64_t serial)
{
	struct fs_pending *p;
	pthread_mutex_lock(&fs->lock);
	if ((p = find_serial(fs, serial)))
		unlink_node(fs, p);
	pthread_mutex_unlock(&fs->lock);
}

size_t fs_pending_list(struct fs *fs, uint32_t mbid, enum fsi_sub sub, size_t skip,
		       int (*cb)(const char *name, uint64_t ino, void *ctx), void *ctx)
{
	size_t i = 0, n = 0;
	pthread_mutex_lock(&fs->lock);
	/* oldest first, so offsets stay put while new files come */
	size_t count = 0;
	for (struct fs_pending *p = fs->pending; p; p = p->next)
		count++;
	struct fs_pending **arr = calloc(count ? count : 1, sizeof(*arr));
	if (!arr)
		log_fatal("out of memory");
	for (struct fs_pending *p = fs->pending; p; p = p->next)
		arr[count - 1 - i++] = p;
	i = 0;
	for (size_t k = 0; k < count; k++) {
		struct fs_pending *p = arr[k];
		if (p->stored || p->mbid != mbid || p->sub != sub)
			continue;
		if (i++ < skip)
			continue;
		n++;
		if (cb(p->name, fsi_pending(p->serial), ctx))
			break;
	}
	free(arr);
	pthread_mutex_unlock(&fs->lock);
	return n;
}

void fs_pending_free(struct fs *fs)
{
	while (fs->pending)
		unlink_node(fs, fs->pending);
}
