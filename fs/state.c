/* state — what mailkeep-fs remembers between requests: owners of users,
 * mailbox -> user, and the names the kernel knows (see fs.h). */
#include <stdlib.h>
#include <string.h>

#include "fs/fs.h"
#include "lib/log.h"
#include "lib/util.h"

/* new/ holds mail that is \Recent and not \Seen (Dovecot's rule): mail read
 * anywhere (IMAP too) leaves new/, and a MUA's rename into cur/ clears
 * \Recent. */
static int in_new(uint32_t flags)
{
	return (flags & STORE_F_RECENT) && !(flags & STORE_F_SEEN);
}

uint8_t fs_msg_state(const struct store_msg *msg)
{
	uint8_t s = (uint8_t)(msg->flags & MDNAME_FLAGS_MASK);
	if (in_new(msg->flags))
		s |= FS_STATE_NEW;
	return s;
}

enum fsi_sub fs_msg_sub(const struct store_msg *msg)
{
	return in_new(msg->flags) ? FSI_NEW : FSI_CUR;
}

int fs_state_name(const char *base, uint64_t size, uint8_t state, char *out)
{
	int len = mdname_format(out, MDNAME_MAX + 1, base, size, state & MDNAME_FLAGS_MASK);
	if (len < 0)
		return -1;
	/* new/ holds mail no program has looked at: no ":2," info (Maildir's rule) */
	if ((state & FS_STATE_NEW) && !(state & MDNAME_FLAGS_MASK))
		out[len - 3] = '\0';
	return 0;
}

int fs_msg_name(const struct store_msg *msg, char *out)
{
	return fs_state_name(msg->base, msg->size, fs_msg_state(msg), out);
}

static void *grow(void *arr, size_t *n, size_t want, size_t elem)
{
	size_t nn = *n ? *n : 16;
	while (nn <= want)
		nn *= 2;
	arr = realloc(arr, nn * elem);
	if (!arr)
		log_fatal("out of memory");
	memset((char *)arr + *n * elem, 0, (nn - *n) * elem);
	*n = nn;
	return arr;
}

static int owner_of(struct fs *fs, struct store_txn *txn, uint32_t user_id, struct fs_owner *o)
{
	struct store_user u;
	struct store_mailbox inbox;
	int rc;

	pthread_mutex_lock(&fs->lock);
	if (user_id < fs->nusers && fs->users[user_id].used) {
		o->user_id = user_id;
		o->uid = fs->users[user_id].uid;
		o->gid = fs->users[user_id].gid;
		o->inbox = fs->users[user_id].inbox;
		pthread_mutex_unlock(&fs->lock);
		return 0;
	}
	pthread_mutex_unlock(&fs->lock);

	if ((rc = store_user_get_by_id(txn, user_id, &u)) < 0)
		return rc;
	if ((rc = store_mailbox_get(txn, user_id, "INBOX", &inbox)) < 0)
		return rc;
	if ((!u.uid || !u.gid) && fs->dir) {
		/* an LDAP user: uidNumber and gidNumber come from the directory */
		struct dir_user du;
		if (dir_get_user(fs->dir, u.name, &du) == DIR_OK) {
			if (!u.uid)
				u.uid = (uint32_t)du.uid;
			if (!u.gid)
				u.gid = (uint32_t)du.gid;
		}
	}
	o->user_id = user_id;
	o->uid = u.uid ? (uid_t)u.uid : fs->default_uid;
	o->gid = u.gid ? (gid_t)u.gid : fs->default_gid;
	o->inbox = inbox.id;

	pthread_mutex_lock(&fs->lock);
	if (user_id >= fs->nusers)
		fs->users = grow(fs->users, &fs->nusers, user_id, sizeof(*fs->users));
	if (!fs->users[user_id].mtime.tv_sec)
		fs->users[user_id].mtime = fs->start;
	fs->users[user_id].used = 1;
	fs->users[user_id].id = user_id;
	fs->users[user_id].uid = o->uid;
	fs->users[user_id].gid = o->gid;
	fs->users[user_id].inbox = o->inbox;
	pthread_mutex_unlock(&fs->lock);
	return 0;
}

int fs_user_owner(struct fs *fs, struct store_txn *txn, uint32_t user_id, struct fs_owner *owner_r)
{
	return owner_of(fs, txn, user_id, owner_r);
}

int fs_mb_owner(struct fs *fs, struct store_txn *txn, uint32_t mbid, struct fs_owner *owner_r)
{
	struct store_mailbox mb;
	uint32_t user_id = 0;
	int rc;

	pthread_mutex_lock(&fs->lock);
	if (mbid < fs->nmbs && fs->mbs[mbid].used)
		user_id = fs->mbs[mbid].user_id;
	pthread_mutex_unlock(&fs->lock);
	if (user_id)
		return owner_of(fs, txn, user_id, owner_r);

	if ((rc = store_mailbox_get_by_id(txn, mbid, &mb)) < 0)
		return rc;
	pthread_mutex_lock(&fs->lock);
	if (mbid >= fs->nmbs)
		fs->mbs = grow(fs->mbs, &fs->nmbs, mbid, sizeof(*fs->mbs));
	if (!fs->mbs[mbid].used) {
		struct fs_mb *m = &fs->mbs[mbid];
		m->used = 1;
		m->mbid = mbid;
		m->user_id = mb.user_id;
		mk_strlcpy(m->name, mb.name, sizeof(m->name));
		m->modseq = mb.highestmodseq;
		m->uidnext = mb.uidnext;
		m->mtime = fs->start;
	}
	pthread_mutex_unlock(&fs->lock);
	return owner_of(fs, txn, mb.user_id, owner_r);
}

static size_t slot_of(const struct fs_mb *m, uint32_t uid)
{
	size_t i = (uid * 2654435761U) & (m->cap - 1);
	while (m->known[i] && m->known[i]->uid != uid)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static void known_grow(struct fs_mb *m)
{
	struct fs_known **old = m->known;
	size_t oldcap = m->cap;

	m->cap = oldcap ? oldcap * 2 : 64;
	m->known = calloc(m->cap, sizeof(*m->known));
	if (!m->known)
		log_fatal("out of memory");
	for (size_t i = 0; i < oldcap; i++)
		if (old[i])
			m->known[slot_of(m, old[i]->uid)] = old[i];
	free(old);
}

void fs_known_add(struct fs *fs, const struct store_msg *msg)
{
	struct fs_mb *m;
	struct fs_known *k;
	size_t i, blen = strlen(msg->base);
	uint8_t state = fs_msg_state(msg);
	char stale[MDNAME_MAX + 1];
	uint64_t stale_parent = 0;

	pthread_mutex_lock(&fs->lock);
	if (msg->mbid >= fs->nmbs || !fs->mbs[msg->mbid].used)
		goto out; /* fs_mb_owner registers the mailbox first */
	m = &fs->mbs[msg->mbid];
	if ((m->nknown + 1) * 4 >= m->cap * 3)
		known_grow(m);
	i = slot_of(m, msg->uid);
	k = m->known[i];
	if (k && k->state == state)
		goto out;
	if (k && fs_state_name(k->base, k->size, k->state, stale) == 0) {
		/* the kernel learns the new name (a listing, a lookup) before the
		 * watcher saw the change: the old name must go all the same */
		stale_parent = fsi_sub(msg->mbid, (k->state & FS_STATE_NEW) ? FSI_NEW : FSI_CUR);
	}
	if (!k) {
		k = malloc(sizeof(*k) + blen + 1);
		if (!k)
			log_fatal("out of memory");
		k->uid = msg->uid;
		k->size = msg->size;
		memcpy(k->base, msg->base, blen + 1);
		m->known[i] = k;
		m->nknown++;
	}
	k->state = state;
out:
	pthread_mutex_unlock(&fs->lock);
	if (stale_parent)
		fs_inval_later(fs, stale_parent, stale);
}

/* Removes slot i, re-inserting the cluster after it (linear probing). */
static void known_remove_slot(struct fs_mb *m, size_t i)
{
	free(m->known[i]);
	m->known[i] = NULL;
	m->nknown--;
	for (size_t j = (i + 1) & (m->cap - 1); m->known[j]; j = (j + 1) & (m->cap - 1)) {
		struct fs_known *k = m->known[j];
		m->known[j] = NULL;
		m->known[slot_of(m, k->uid)] = k;
	}
}

void fs_known_del(struct fs *fs, uint32_t mbid, uint32_t uid)
{
	pthread_mutex_lock(&fs->lock);
	if (mbid < fs->nmbs && fs->mbs[mbid].used && fs->mbs[mbid].cap) {
		struct fs_mb *m = &fs->mbs[mbid];
		size_t i = slot_of(m, uid);
		if (m->known[i])
			known_remove_slot(m, i);
	}
	pthread_mutex_unlock(&fs->lock);
}

void fs_mb_touch(struct fs *fs, uint32_t mbid)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	pthread_mutex_lock(&fs->lock);
	if (mbid < fs->nmbs && fs->mbs[mbid].used)
		fs->mbs[mbid].mtime = now;
	pthread_mutex_unlock(&fs->lock);
}

void fs_user_touch(struct fs *fs, uint32_t user_id)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	pthread_mutex_lock(&fs->lock);
	if (user_id < fs->nusers)
		fs->users[user_id].mtime = now;
	pthread_mutex_unlock(&fs->lock);
}

void fs_users_forget(struct fs *fs)
{
	pthread_mutex_lock(&fs->lock);
	for (size_t i = 0; i < fs->nusers; i++) {
		/* keep the mtime: it must never go back */
		struct timespec t = fs->users[i].mtime;
		memset(&fs->users[i], 0, sizeof(fs->users[i]));
		fs->users[i].mtime = t;
	}
	pthread_mutex_unlock(&fs->lock);
}

void fs_state_free(struct fs *fs)
{
	for (size_t i = 0; i < fs->nmbs; i++) {
		struct fs_mb *m = &fs->mbs[i];
		for (size_t j = 0; j < m->cap; j++)
			free(m->known[j]);
		free(m->known);
	}
	free(fs->mbs);
	free(fs->users);
	fs->mbs = NULL;
	fs->users = NULL;
	fs->nmbs = fs->nusers = 0;
}
