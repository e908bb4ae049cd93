/* sieve_file — /mail/<user>/.sieve, the user's active Sieve script as a
 * file an editor can change (plain.c keeps its backing file in the plain
 * area and calls these).
 *
 * The store is the truth (index/sieve.h: ManageSieve and `mailkeep sieve`
 * change it too): the backing file is rewritten from the active script when
 * the file is looked up, listed or stat'ed and nobody is writing it. A save
 * is checked with the interpreter's parser before it is stored: fsync and a
 * rename onto .sieve fail with EINVAL when the script does not compile (the
 * error, with line and column, is logged), and the active script stays
 * what it was. Saving a script that compiles replaces the active script's
 * text (or makes a script named "mount" and activates it); removing .sieve
 * deactivates the script, which stays in the store.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/fs.h"
#include "index/sieve.h"
#include "index/sieve_deliver.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#define SIEVE_FILE_SCRIPT "mount" /* the script's name when none was active */

int fs_sieve_load(struct fs *fs, uint32_t user_id, char **text_r, size_t *len_r)
{
	struct store_txn *txn = NULL;
	char active[SIEVE_NAME_MAX + 1];
	const char *t;
	int rc = store_read_begin(fs->store, &txn);
	*text_r = NULL;
	if (rc == 0 && (rc = sieve_script_active(txn, user_id, active)) == 0 &&
	    (rc = sieve_script_get(txn, user_id, active, &t, len_r)) == 0)
		*text_r = xmemdup(t, *len_r ? *len_r : 1);
	store_read_end(&txn);
	return rc == 0 ? 0 : rc == STORE_ENOTFOUND ? ENOENT : EIO;
}

struct save_ctx {
	uint32_t user_id;
	const char *text;
	size_t len;
	int deactivate;
};

static int save_fn(struct store_txn *txn, void *arg)
{
	struct save_ctx *c = arg;
	char name[SIEVE_NAME_MAX + 1];
	int rc;
	if (c->deactivate)
		return sieve_script_activate(txn, c->user_id, NULL);
	if (sieve_script_active(txn, c->user_id, name) != 0)
		snprintf(name, sizeof(name), "%s", SIEVE_FILE_SCRIPT);
	if ((rc = sieve_script_put(txn, c->user_id, name, c->text, c->len)) != 0)
		return rc;
	return sieve_script_activate(txn, c->user_id, name);
}

int fs_sieve_save(struct fs *fs, uint32_t user_id, int fd)
{
	size_t max = sieve_max_script_size(), len = 0;
	char *text = xmalloc(max + 2);
	ssize_t n;
	int rc = 0;

	while (len <= max && (n = pread(fd, text + len, max + 1 - len, (off_t)len)) > 0)
		len += (size_t)n;
	if (n < 0 && len == 0) {
		rc = errno;
		goto out;
	}
	struct sieve_script *s;
	struct sieve_error err;
	if (sieve_compile(text, len, max, &s, &err) < 0) {
		char e[400];
		sieve_error_format(&err, e, sizeof(e));
		log_warn("fs: user %u: .sieve not saved (the active script stays): %s", user_id, e);
		rc = EINVAL;
		goto out;
	}
	sieve_script_free(&s);
	struct save_ctx c = {.user_id = user_id, .text = text, .len = len};
	if ((rc = store_write(fs->store, save_fn, &c)) != 0) {
		log_warn("fs: user %u: .sieve not saved: %s", user_id, store_strerror(rc));
		rc = fs_errno(rc);
		goto out;
	}
	log_info("fs: user %u: .sieve saved (%zu bytes) and active", user_id, len);
out:
	free(text);
	return rc;
}

int fs_sieve_deactivate(struct fs *fs, uint32_t user_id)
{
	struct save_ctx c = {.user_id = user_id, .deactivate = 1};
	int rc = store_write(fs->store, save_fn, &c);
	if (rc == 0)
		log_info("fs: user %u: .sieve removed: no script is active", user_id);
	return fs_errno(rc);
}

int fs_sieve_refresh_fd(struct fs *fs, uint32_t user_id, int fd)
{
	char *text, *cur = NULL;
	size_t len, have = 0;
	int rc = fs_sieve_load(fs, user_id, &text, &len);
	if (rc != 0)
		return rc;
	cur = xmalloc(len + 2);
	ssize_t n;
	while (have <= len && (n = pread(fd, cur + have, len + 1 - have, (off_t)have)) > 0)
		have += (size_t)n;
	if (have != len || memcmp(cur, text, len) != 0) {
		if (ftruncate(fd, 0) < 0 || (len > 0 && pwrite(fd, text, len, 0) != (ssize_t)len))
			rc = errno;
	}
	free(cur);
	free(text);
	return rc;
}
