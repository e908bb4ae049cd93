/* xattr — extended attributes of messages on the mount.
 *
 * Attributes come from a table of providers, each owning a name prefix:
 *   user.mail.*   sha256, uid, modseq, internaldate, size, flags  (this file)
 *   user.spam.*   the spam filter's verdict and evidence: read from the
 *                 message's per-recipient metadata ("spam.<name>=<value>"
 *                 lines, written by the spam hook at delivery); writing
 *                 user.spam.class is the spam engineer's provider's job
 * A provider lists its names for a message and answers get (and maybe set).
 * Directories and files being written have no attributes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "fs/fs.h"
#include "lib/util.h"

#define XATTR_VALUE_MAX 65536

struct xattr_msg {
	struct store_txn *txn;
	const struct store_msg *msg;
};

struct xattr_provider {
	const char *prefix;
	/* Appends each name (NUL-terminated) to out. 0 or an errno. */
	int (*list)(const struct xattr_msg *m, struct buf *out);
	/* Appends the value of name to out: 0, ENODATA if absent, or an errno. */
	int (*get)(const struct xattr_msg *m, const char *name, struct buf *out);
	/* Sets name (NULL: read-only, EPERM). Runs outside any transaction. */
	int (*set)(struct fs *fs, const struct store_msg *msg, const char *name, const char *value,
		   size_t size);
};

/* --- user.mail.* ---------------------------------------------------------- */

static const char *const mail_names[] = {
	"user.mail.sha256", "user.mail.uid", "user.mail.modseq", "user.mail.internaldate", NULL,
};

static int mail_list(const struct xattr_msg *m, struct buf *out)
{
	(void)m;
	for (size_t i = 0; mail_names[i]; i++)
		if (buf_append(out, mail_names[i], strlen(mail_names[i]) + 1) < 0)
			return E2BIG;
	return 0;
}

static int mail_get(const struct xattr_msg *m, const char *name, struct buf *out)
{
	const struct store_msg *msg = m->msg;
	char hex[2 * STORE_HASH_LEN + 1];
	int rc = 0;

	if (strcmp(name, "user.mail.sha256") == 0) {
		mk_hex(msg->hash, STORE_HASH_LEN, hex);
		rc = buf_append_str(out, hex);
	} else if (strcmp(name, "user.mail.uid") == 0) {
		rc = buf_printf(out, "%" PRIu32, msg->uid);
	} else if (strcmp(name, "user.mail.modseq") == 0) {
		rc = buf_printf(out, "%" PRIu64, msg->modseq);
	} else if (strcmp(name, "user.mail.internaldate") == 0) {
		rc = buf_printf(out, "%" PRId64, msg->internaldate);
	} else {
		return ENODATA;
	}
	return rc < 0 ? E2BIG : 0;
}

/* --- user.spam.*: "spam.<name>=<value>" lines of the message's metadata ---- */

static int meta_of(const struct xattr_msg *m, char *meta)
{
	meta[0] = '\0';
	return store_msg_meta(m->txn, m->msg->mbid, m->msg->uid, meta) < 0 ? -1 : 0;
}

static int spam_list(const struct xattr_msg *m, struct buf *out)
{
	char meta[STORE_META_MAX];
	const char *p, *nl, *eq;

	if (meta_of(m, meta) < 0)
		return 0;
	for (p = meta; *p; p = nl ? nl + 1 : p + strlen(p)) {
		nl = strchr(p, '\n');
		eq = strchr(p, '=');
		if (strncmp(p, "spam.", 5) != 0 || !eq || (nl && eq > nl))
			continue;
		if (buf_append_str(out, "user.") < 0 || buf_append(out, p, (size_t)(eq - p)) < 0 ||
		    buf_append(out, "", 1) < 0)
			return E2BIG;
	}
	return 0;
}

static int spam_get(const struct xattr_msg *m, const char *name, struct buf *out)
{
	char meta[STORE_META_MAX];
	const char *key = name + strlen("user."); /* "spam.xxx" */
	size_t klen = strlen(key);
	const char *p, *nl;

	if (meta_of(m, meta) < 0)
		return ENODATA;
	for (p = meta; *p; p = nl ? nl + 1 : p + strlen(p)) {
		nl = strchr(p, '\n');
		if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
			const char *v = p + klen + 1;
			size_t vlen = nl ? (size_t)(nl - v) : strlen(v);
			return buf_append(out, v, vlen) < 0 ? E2BIG : 0;
		}
	}
	return ENODATA;
}

static const struct xattr_provider providers[] = {
	{"user.mail.", mail_list, mail_get, NULL},
	{"user.spam.", spam_list, spam_get, NULL},
};
#define NPROVIDERS (sizeof(providers) / sizeof(providers[0]))

static const struct xattr_provider *provider_of(const char *name)
{
	for (size_t i = 0; i < NPROVIDERS; i++)
		if (strncmp(name, providers[i].prefix, strlen(providers[i].prefix)) == 0)
			return &providers[i];
	return NULL;
}

/* Replies to a getxattr/listxattr with the size or the bytes. */
static void reply_value(fuse_req_t req, const struct buf *b, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, b->len);
	else if (b->len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, b->data ? b->data : "", b->len);
}

void fs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs *fs = fs_of(req);
	struct fsi f = fsi_decode(ino);
	const struct xattr_provider *p = provider_of(name);
	struct store_txn *txn = NULL;
	struct store_msg msg;
	struct buf b;
	int rc;

	if (f.kind != FSI_MSG || !p) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	buf_init(&b, XATTR_VALUE_MAX);
	if ((rc = store_read_begin(fs->store, &txn)) < 0 ||
	    (rc = store_msg_get(txn, f.id, f.uid, &msg)) < 0) {
		rc = fs_errno(rc);
	} else {
		struct xattr_msg m = {txn, &msg};
		rc = p->get(&m, name, &b);
	}
	store_read_end(&txn);
	if (rc)
		fuse_reply_err(req, rc);
	else
		reply_value(req, &b, size);
	buf_free(&b);
}

void fs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs *fs = fs_of(req);
	struct fsi f = fsi_decode(ino);
	struct store_txn *txn = NULL;
	struct store_msg msg;
	struct buf b;
	int rc = 0;

	buf_init(&b, XATTR_VALUE_MAX);
	if (f.kind == FSI_MSG) {
		if ((rc = store_read_begin(fs->store, &txn)) < 0 ||
		    (rc = store_msg_get(txn, f.id, f.uid, &msg)) < 0) {
			rc = fs_errno(rc);
		} else {
			struct xattr_msg m = {txn, &msg};
			for (size_t i = 0; i < NPROVIDERS && rc == 0; i++)
				rc = providers[i].list(&m, &b);
		}
		store_read_end(&txn);
	}
	if (rc)
		fuse_reply_err(req, rc);
	else
		reply_value(req, &b, size);
	buf_free(&b);
}

void fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		    size_t size, int flags)
{
	struct fs *fs = fs_of(req);
	struct fsi f = fsi_decode(ino);
	const struct xattr_provider *p = provider_of(name);
	struct store_txn *txn = NULL;
	struct store_msg msg;
	int rc;
	(void)flags;

	if (f.kind != FSI_MSG || !p || !p->set) {
		/* the mail attributes are facts about the stored message */
		fuse_reply_err(req, f.kind == FSI_MSG && p ? EPERM : ENOTSUP);
		return;
	}
	if ((rc = store_read_begin(fs->store, &txn)) < 0 ||
	    (rc = store_msg_get(txn, f.id, f.uid, &msg)) < 0) {
		store_read_end(&txn);
		fuse_reply_err(req, fs_errno(rc));
		return;
	}
	store_read_end(&txn);
	fuse_reply_err(req, p->set(fs, &msg, name, value, size));
}

void fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct fsi f = fsi_decode(ino);
	fuse_reply_err(req, f.kind == FSI_MSG && provider_of(name) ? EPERM : ENOTSUP);
}
