/* watch — keeps the kernel's caches in step with the store.
 *
 * The mount answers with long entry and attribute timeouts, so a change made
 * elsewhere (smtpin delivering, an IMAP client setting \Seen, another mount)
 * must be pushed to the kernel. One thread waits on the store's inotify fd
 * (store_watch_open) and at least once a second compares the store's change
 * sequence with the last one seen. When it moved, for every mailbox the
 * kernel has seen:
 *   - gone or renamed: the old ".Folder" entry is invalidated;
 *   - HIGHESTMODSEQ moved: messages with a newer modseq whose name changed
 *     (flags, new/ -> cur/) get their old name invalidated, new ones get any
 *     cached negative entry dropped, expunged ones (store_expunged_since) their
 *     name invalidated; cur/ and new/ get a new mtime (mutt and mblaze look at
 *     it) and their cached listing dropped.
 * The thread also runs the invalidations handlers asked for (a rename into
 * another folder leaves the kernel's entry pointing at the old inode): the
 * kernel holds directory locks during rename, so a handler must not do them
 * itself.
 */
#define _GNU_SOURCE /* pipe2, RENAME_* */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/fs.h"
#include "fs/search.h"
#include "lib/log.h"
#include "lib/util.h"

struct inval {
	struct inval *next;
	fuse_ino_t parent; /* 0: invalidate the inode ino instead */
	fuse_ino_t ino;
	char name[];
};

static struct {
	struct fs *fs;
	pthread_t thread;
	int running;
	int store_fd;
	int pipe[2];
	pthread_mutex_t lock;
	struct inval *queue;
} W = {.store_fd = -1, .pipe = {-1, -1}, .lock = PTHREAD_MUTEX_INITIALIZER};

static void queue_push(struct inval **q, fuse_ino_t parent, fuse_ino_t ino, const char *name)
{
	size_t len = name ? strlen(name) : 0;
	struct inval *iv = malloc(sizeof(*iv) + len + 1);
	if (!iv)
		log_fatal("out of memory");
	iv->parent = parent;
	iv->ino = ino;
	if (name)
		memcpy(iv->name, name, len);
	iv->name[len] = '\0';
	iv->next = *q;
	*q = iv;
}

void fs_inval_later(struct fs *fs, fuse_ino_t parent, const char *name)
{
	char c = 1;
	(void)fs;
	if (!W.running)
		return; /* no watcher: nothing would ever take them */
	pthread_mutex_lock(&W.lock);
	queue_push(&W.queue, parent, 0, name);
	pthread_mutex_unlock(&W.lock);
	if (W.pipe[1] >= 0 && write(W.pipe[1], &c, 1) < 0 && errno != EAGAIN)
		log_warn("fs: cannot wake the watcher: %m");
}

/* Sends the invalidations of q to the kernel, in the order they were
 * queued (stale names before the listings that no longer show them), and
 * frees q. */
static void queue_run(struct fs *fs, struct inval *q)
{
	struct inval *rev = NULL;
	while (q) {
		struct inval *next = q->next;
		q->next = rev;
		rev = q;
		q = next;
	}
	q = rev;
	while (q) {
		struct inval *next = q->next;
		int rc;
		if (q->parent)
			rc = fuse_lowlevel_notify_inval_entry(fs->se, q->parent, q->name,
							      strlen(q->name));
		else
			rc = fuse_lowlevel_notify_inval_inode(fs->se, q->ino, 0, 0);
		log_debug("fs: invalidate %llx %s%s: %d",
			  (unsigned long long)(q->parent ? q->parent : q->ino),
			  q->parent ? "entry " : "inode", q->name, rc);
		free(q);
		q = next;
	}
}

/* Queues the name a message had in the kernel's eyes. */
static void push_name(struct inval **q, uint32_t mbid, const char *base, uint64_t size,
		      uint8_t state)
{
	char name[MDNAME_MAX + 1];
	if (fs_state_name(base, size, state, name) < 0)
		return;
	queue_push(q, fsi_sub(mbid, (state & FS_STATE_NEW) ? FSI_NEW : FSI_CUR), 0, name);
}

static struct fs_known *known_find(struct fs_mb *m, uint32_t uid)
{
	size_t i;
	if (!m->cap)
		return NULL;
	i = (uid * 2654435761U) & (m->cap - 1);
	while (m->known[i] && m->known[i]->uid != uid)
		i = (i + 1) & (m->cap - 1);
	return m->known[i];
}

struct sync_ctx {
	struct fs *fs;
	uint32_t mbid;
	uint64_t since;
	struct inval **q;
	int changed;
};

static int sync_msg_cb(const struct store_msg *msg, void *vctx)
{
	struct sync_ctx *c = vctx;
	struct fs *fs = c->fs;
	struct fs_known *k;
	uint8_t state = fs_msg_state(msg);
	char name[MDNAME_MAX + 1];

	if (msg->modseq <= c->since)
		return 0;
	c->changed = 1;
	pthread_mutex_lock(&fs->lock);
	k = c->mbid < fs->nmbs && fs->mbs[c->mbid].used ? known_find(&fs->mbs[c->mbid], msg->uid)
							: NULL;
	if (k && k->state != state) {
		push_name(c->q, c->mbid, k->base, k->size, k->state);
		k->state = state;
	}
	pthread_mutex_unlock(&fs->lock);
	if (!k && fs_msg_name(msg, name) == 0)
		queue_push(c->q, fsi_sub(c->mbid, fs_msg_sub(msg)), 0, name); /* a negative entry */
	return 0;
}

static int sync_expunged_cb(uint32_t uid, uint64_t modseq, void *vctx)
{
	struct sync_ctx *c = vctx;
	struct fs *fs = c->fs;
	struct fs_known *k;
	(void)modseq;

	c->changed = 1;
	pthread_mutex_lock(&fs->lock);
	k = c->mbid < fs->nmbs && fs->mbs[c->mbid].used ? known_find(&fs->mbs[c->mbid], uid) : NULL;
	if (k)
		push_name(c->q, c->mbid, k->base, k->size, k->state);
	pthread_mutex_unlock(&fs->lock);
	if (k)
		fs_known_del(fs, c->mbid, uid);
	return 0;
}

/* Brings the kernel in step with the store. */
static void sync_store(struct fs *fs)
{
	struct store_txn *txn = NULL;
	struct inval *q = NULL;
	uint64_t seq = 0;
	uint32_t *mbids = NULL;
	size_t n = 0;

	if (store_read_begin(fs->store, &txn) < 0)
		return;
	if (store_change_seq(txn, &seq) < 0 || seq == fs->change_seq)
		goto out;
	fs->change_seq = seq;
	fs_users_forget(fs);

	pthread_mutex_lock(&fs->lock);
	clock_gettime(CLOCK_REALTIME, &fs->root_mtime);
	mbids = calloc(fs->nmbs ? fs->nmbs : 1, sizeof(*mbids));
	if (!mbids)
		log_fatal("out of memory");
	for (size_t i = 0; i < fs->nmbs; i++)
		if (fs->mbs[i].used)
			mbids[n++] = (uint32_t)i;
	for (size_t i = 0; i < fs->nusers; i++)
		if (fs->users[i].mtime.tv_sec)
			queue_push(&q, 0, fsi_user((uint32_t)i), NULL);
	pthread_mutex_unlock(&fs->lock);
	queue_push(&q, 0, FSI_ROOT_INO, NULL);

	for (size_t i = 0; i < n; i++) {
		struct store_mailbox mb;
		struct fs_mb *m;
		char oldname[STORE_NAME_MAX + 2];
		uint32_t user_id, uidnext;
		uint64_t since;
		int rc = store_mailbox_get_by_id(txn, mbids[i], &mb);

		pthread_mutex_lock(&fs->lock);
		m = &fs->mbs[mbids[i]];
		user_id = m->user_id;
		since = m->modseq;
		uidnext = m->uidnext;
		oldname[0] = '.';
		mk_strlcpy(oldname + 1, m->name, sizeof(oldname) - 1);
		if (rc == STORE_ENOTFOUND || (rc == 0 && strcmp(mb.name, m->name) != 0)) {
			if (rc == 0)
				mk_strlcpy(m->name, mb.name, sizeof(m->name));
		}
		pthread_mutex_unlock(&fs->lock);
		if (rc == STORE_ENOTFOUND || (rc == 0 && strcmp(oldname + 1, mb.name) != 0))
			queue_push(&q, fsi_user(user_id), 0, oldname);
		if (rc < 0 || mb.highestmodseq == since)
			continue;

		struct sync_ctx c = {.fs = fs, .mbid = mbids[i], .since = since, .q = &q};
		if (mb.uidnext >= uidnext && mb.highestmodseq - since == mb.uidnext - uidnext) {
			/* every modseq went to a new message (each add takes one UID
			 * and one modseq): only look at the new UIDs, not the whole
			 * mailbox, which matters while mail streams into a big INBOX */
			struct store_cursor *cur = NULL;
			struct store_msg msg;
			if (store_msg_cursor_open(txn, mbids[i], uidnext, &cur) == 0) {
				while (store_msg_cursor_next(cur, &msg) == 0)
					sync_msg_cb(&msg, &c);
				store_msg_cursor_close(&cur);
			}
		} else {
			store_msg_foreach(txn, mbids[i], sync_msg_cb, &c);
			store_expunged_since(txn, mbids[i], since, sync_expunged_cb, &c);
		}
		pthread_mutex_lock(&fs->lock);
		m = &fs->mbs[mbids[i]];
		m->modseq = mb.highestmodseq;
		m->uidnext = mb.uidnext;
		clock_gettime(CLOCK_REALTIME, &m->mtime);
		pthread_mutex_unlock(&fs->lock);
		for (int s = FSI_CUR; s <= FSI_TMP; s++)
			queue_push(&q, 0, fsi_sub(mbids[i], (enum fsi_sub)s), NULL);
	}
	/* search results may have changed with anything (search.c) */
	uint32_t qs[64];
	for (size_t i = 0, nq = fs_search_live(qs, 64); i < nq; i++)
		queue_push(&q, 0, fsi_qsub(qs[i], FSI_CUR), NULL);
out:
	store_read_end(&txn);
	free(mbids);
	queue_run(fs, q);
}

static void *watch_main(void *arg)
{
	struct fs *fs = arg;
	char tmp[64];

	while (W.running) {
		struct pollfd pfd[2] = {{.fd = W.store_fd, .events = POLLIN},
					{.fd = W.pipe[0], .events = POLLIN}};
		struct inval *q;
		int n = poll(pfd, 2, 1000);

		if (n < 0 && errno != EINTR) {
			log_warn("fs: poll: %m");
			sleep(1);
		}
		if (!W.running)
			break;
		if (n > 0 && (pfd[0].revents & POLLIN))
			usleep(50 * 1000); /* let a burst of commits land: one sync for all */
		if (W.store_fd >= 0 && (pfd[0].revents & POLLIN))
			store_watch_drain(W.store_fd);
		if (pfd[1].revents & POLLIN)
			while (read(W.pipe[0], tmp, sizeof(tmp)) > 0)
				;
		pthread_mutex_lock(&W.lock);
		q = W.queue;
		W.queue = NULL;
		pthread_mutex_unlock(&W.lock);
		queue_run(fs, q);
		sync_store(fs);
	}
	return NULL;
}

int fs_watch_start(struct fs *fs)
{
	struct store_txn *txn = NULL;

	W.fs = fs;
	if (pipe2(W.pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		log_warn("fs: pipe: %m");
		return -1;
	}
	W.store_fd = store_watch_open(fs->store);
	if (W.store_fd < 0)
		log_warn("fs: cannot watch the store; polling once a second");
	if (store_read_begin(fs->store, &txn) == 0) {
		store_change_seq(txn, &fs->change_seq);
		store_read_end(&txn);
	}
	W.running = 1;
	if (pthread_create(&W.thread, NULL, watch_main, fs) != 0) {
		W.running = 0;
		log_warn("fs: cannot start the watcher thread");
		return -1;
	}
	return 0;
}

void fs_watch_stop(struct fs *fs)
{
	char c = 0;
	(void)fs;
	if (W.running) {
		W.running = 0;
		if (write(W.pipe[1], &c, 1) < 0)
			log_warn("fs: cannot wake the watcher: %m");
		pthread_join(W.thread, NULL);
	}
	if (W.store_fd >= 0)
		close(W.store_fd);
	for (int i = 0; i < 2; i++)
		if (W.pipe[i] >= 0)
			close(W.pipe[i]);
	pthread_mutex_lock(&W.lock);
	while (W.queue) {
		struct inval *next = W.queue->next;
		free(W.queue);
		W.queue = next;
	}
	pthread_mutex_unlock(&W.lock);
	W.store_fd = W.pipe[0] = W.pipe[1] = -1;
}
