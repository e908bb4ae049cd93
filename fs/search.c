/* search — /<user>/.search/<query>/cur/: the user's messages that match a
 * query of `mailkeep search` (index/fts.h), listed as a read-only Maildir,
 * so that grep, mutt and mblaze read search results as a folder.
 *
 *   .search                  not listed in the user's folder (Maildir++ clients
 *                            would take it for a folder "search"), but there
 *   .search/<query>          any name is a query: words, "phrases", from:x ...
 *   .search/<query>/cur/     the matches, named "<mbid>_<Maildir name>" (names of
 *                            two folders may meet); new/ and tmp/ are empty
 *
 * A file there is the message's own inode: reading it reads the message.
 * Nothing can be written, renamed or deleted there (EPERM). A query is run
 * when its cur/ is listed from the start, and when a name is looked up in a
 * query that has not run yet; its results stay until the next listing. The
 * kernel keeps a listing (opendir is not implemented, so it caches as for
 * any folder) until the watcher sees a change in the store and invalidates
 * every query's cur/ with the mailboxes (watch.c). The last QUERY_SLOTS queries are kept (inodes
 * are serials of this mount's life); an older one's inode answers ENOENT.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs.h"
#include "fs/search.h"
#include "index/fts.h"
#include "lib/array.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#define QUERY_SLOTS 64
#define RESULTS_MAX 20000

struct hit {
	uint32_t mbid, uid;
};

struct query {
	uint32_t serial; /* 0: free */
	uint32_t user_id;
	char *text;
	struct hit *hits;
	size_t nhits, cap;
	int ran;
};

static struct {
	pthread_mutex_t lock;
	struct query q[QUERY_SLOTS];
	uint32_t next_serial;
	size_t next_slot;
} tab = {.lock = PTHREAD_MUTEX_INITIALIZER, .next_serial = 1};

static struct query *find_serial(uint32_t serial)
{
	for (size_t i = 0; i < QUERY_SLOTS; i++)
		if (tab.q[i].serial == serial && serial != 0)
			return &tab.q[i];
	return NULL;
}

/* The query's serial (a new one for a new text). Locked. */
static uint32_t query_for(uint32_t user_id, const char *text)
{
	for (size_t i = 0; i < QUERY_SLOTS; i++)
		if (tab.q[i].serial && tab.q[i].user_id == user_id &&
		    strcmp(tab.q[i].text, text) == 0)
			return tab.q[i].serial;
	struct query *q = &tab.q[tab.next_slot];
	tab.next_slot = (tab.next_slot + 1) % QUERY_SLOTS;
	free(q->text);
	free(q->hits);
	memset(q, 0, sizeof(*q));
	q->serial = tab.next_serial++;
	if (tab.next_serial == 0)
		tab.next_serial = 1;
	q->user_id = user_id;
	q->text = xstrdup(text);
	return q->serial;
}

struct collect {
	struct query *q;
};

static int collect_hit(const struct store_msg *m, void *ctx)
{
	struct query *q = ctx;
	struct hit *h = ARRAY_PUSH(q->hits, q->nhits, q->cap);
	h->mbid = m->mbid;
	h->uid = m->uid;
	return q->nhits >= RESULTS_MAX;
}

/* Runs the query into its slot. Locked. */
static int run_query(struct store_txn *txn, struct query *q)
{
	struct fts_query fq;
	q->nhits = 0;
	q->ran = 1;
	if (fts_query_parse(q->text, &fq) != 0)
		return 0; /* no terms: nothing matches */
	int rc = fts_search(txn, q->user_id, 0, &fq, collect_hit, q, NULL);
	fts_query_free(&fq);
	if (rc != 0)
		log_warn("fs: search %s: %s", q->text, store_strerror(rc));
	return rc;
}

static void dir_attr(struct fs *fs, struct store_txn *txn, uint32_t user_id, uint64_t ino,
		     nlink_t nlink, struct stat *st)
{
	struct fs_owner owner;
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = S_IFDIR | 0500;
	st->st_nlink = nlink;
	if (fs_user_owner(fs, txn, user_id, &owner) == 0) {
		st->st_uid = owner.uid;
		st->st_gid = owner.gid;
	}
}

size_t fs_search_live(uint32_t *serials, size_t max)
{
	size_t n = 0;
	pthread_mutex_lock(&tab.lock);
	for (size_t i = 0; i < QUERY_SLOTS && n < max; i++)
		if (tab.q[i].serial)
			serials[n++] = tab.q[i].serial;
	pthread_mutex_unlock(&tab.lock);
	return n;
}

int fs_search_attr(struct fs *fs, struct store_txn *txn, uint64_t ino, struct stat *st)
{
	struct fsi f = fsi_decode(ino);
	uint32_t user_id;

	if (f.kind == FSI_SEARCH) {
		dir_attr(fs, txn, f.id, ino, 2, st);
		return 0;
	}
	pthread_mutex_lock(&tab.lock);
	struct query *q = find_serial((uint32_t)f.serial);
	user_id = q ? q->user_id : 0;
	pthread_mutex_unlock(&tab.lock);
	if (q == NULL)
		return ENOENT;
	dir_attr(fs, txn, user_id, ino, f.kind == FSI_QUERY ? 5 : 2, st);
	return 0;
}

/* The message behind hit h, with its name on the mount. */
static int hit_msg(struct store_txn *txn, const struct hit *h, struct store_msg *m, char *name,
		   size_t size)
{
	char base[MDNAME_MAX + 1];
	if (store_msg_get(txn, h->mbid, h->uid, m) != 0 || fs_msg_name(m, base) != 0)
		return -1;
	/* a message of new/ has no ":2," part; in cur/ every name has one */
	return snprintf(name, size, "%u_%s%s", h->mbid, base, strchr(base, ':') ? "" : ":2,") <
		       (int)size
		   ? 0
		   : -1;
}

int fs_search_lookup(struct fs *fs, struct store_txn *txn, uint64_t parent, const char *name,
		     struct fuse_entry_param *e)
{
	struct fsi p = fsi_decode(parent);
	int sub, rc = 0;

	e->entry_timeout = 0; /* results change */
	e->attr_timeout = 0;
	if (p.kind == FSI_SEARCH) {
		if (strlen(name) > 1000)
			return ENAMETOOLONG;
		pthread_mutex_lock(&tab.lock);
		e->ino = fsi_query(query_for(p.id, name));
		pthread_mutex_unlock(&tab.lock);
		return fs_search_attr(fs, txn, e->ino, &e->attr);
	}
	if (p.kind == FSI_QUERY) {
		if ((sub = fsi_sub_parse(name)) < 0)
			return 0;
		e->ino = fsi_qsub((uint32_t)p.serial, (enum fsi_sub)sub);
		return fs_search_attr(fs, txn, e->ino, &e->attr);
	}
	if (p.kind != FSI_QSUB)
		return ENOENT;
	if (p.sub != FSI_CUR)
		return 0;
	pthread_mutex_lock(&tab.lock);
	struct query *q = find_serial((uint32_t)p.serial);
	if (q == NULL) {
		pthread_mutex_unlock(&tab.lock);
		return ENOENT;
	}
	if (!q->ran)
		rc = run_query(txn, q);
	for (size_t i = 0; i < q->nhits && rc == 0; i++) {
		struct store_msg m;
		char n[2 * MDNAME_MAX];
		if (hit_msg(txn, &q->hits[i], &m, n, sizeof(n)) == 0 && strcmp(n, name) == 0) {
			struct fs_owner owner;
			if (fs_mb_owner(fs, txn, m.mbid, &owner) == 0) {
				fs_msg_stat(fs, &m, &owner, &e->attr);
				e->ino = fsi_msg(m.mbid, m.uid);
			}
			break;
		}
	}
	pthread_mutex_unlock(&tab.lock);
	return rc ? fs_errno(rc) : 0;
}

int fs_search_list(struct fs *fs, struct store_txn *txn, uint64_t ino, off_t off,
		   int (*add)(const char *name, const struct fuse_entry_param *e, off_t next,
			      void *ctx),
		   void *ctx)
{
	struct fsi f = fsi_decode(ino);
	struct fuse_entry_param e;
	int rc = 0;

	if (f.kind == FSI_SEARCH)
		return 0; /* queries are not listed: any name is one */
	if (f.kind == FSI_QUERY) {
		for (int s = FSI_CUR; s <= FSI_TMP; s++) {
			if (off >= 3 + s)
				continue;
			memset(&e, 0, sizeof(e));
			e.ino = fsi_qsub((uint32_t)f.serial, (enum fsi_sub)s);
			if (fs_search_attr(fs, txn, e.ino, &e.attr) != 0)
				return ENOENT;
			if (add(fsi_sub_name((enum fsi_sub)s), &e, 3 + s, ctx))
				break;
		}
		return 0;
	}
	if (f.kind != FSI_QSUB || f.sub != FSI_CUR)
		return 0;
	pthread_mutex_lock(&tab.lock);
	struct query *q = find_serial((uint32_t)f.serial);
	if (q == NULL) {
		pthread_mutex_unlock(&tab.lock);
		return ENOENT;
	}
	if (off < 3 || !q->ran)
		rc = run_query(txn, q);
	for (size_t i = off >= 3 ? (size_t)(off - 3) + 1 : 0; i < q->nhits && rc == 0; i++) {
		struct store_msg m;
		struct fs_owner owner;
		char name[2 * MDNAME_MAX];
		if (hit_msg(txn, &q->hits[i], &m, name, sizeof(name)) != 0 ||
		    fs_mb_owner(fs, txn, m.mbid, &owner) != 0)
			continue;
		memset(&e, 0, sizeof(e));
		e.ino = fsi_msg(m.mbid, m.uid);
		fs_msg_stat(fs, &m, &owner, &e.attr);
		if (add(name, &e, 3 + (off_t)i, ctx))
			break;
	}
	pthread_mutex_unlock(&tab.lock);
	return rc ? fs_errno(rc) : 0;
}
