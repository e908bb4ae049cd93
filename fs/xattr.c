/* xattr — extended attributes of messages on the mount.
 *
 * Attributes come from a table of providers, each owning a name prefix:
 *   user.mail.*   sha256, uid, modseq, internaldate, size, flags  (this file)
 *   user.spam.*   the spam filter's verdict and evidence (result, probability,
 *                 confidence, factors, tokens, class); writing user.spam.class
 *                 = spam | innocent retrains (index/spam.h)
 *   user.auth.*   spf, dkim, dmarc: smtpin's checks of inbound mail (the
 *                 per-recipient metadata's auth.* lines; doc/smtpin.md)
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
#include "index/spam.h"
#include "lib/util.h"
#include "lib/xmalloc.h"

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

/* --- user.spam.*: the spam filter's verdict and evidence (index/spam.h) ---- */

static uint32_t user_of(struct store_txn *txn, const struct store_msg *msg)
{
	struct store_mailbox mb;
	return store_mailbox_get_by_id(txn, msg->mbid, &mb) == 0 ? mb.user_id : SPAM_GLOBAL_USER;
}

/* The verdict's names (tokens among them) only when there is a verdict;
 * class always. */
static int spam_list(const struct xattr_msg *m, struct buf *out)
{
	for (size_t i = 0; spam_xattr_names[i]; i++) {
		const char *n = spam_xattr_names[i];
		if (strcmp(n, "user.spam.class") != 0 &&
		    spam_xattr_get(m->txn, SPAM_GLOBAL_USER, m->msg, n, NULL, 0) < 0)
			continue;
		if (buf_append(out, n, strlen(n) + 1) < 0)
			return E2BIG;
	}
	return 0;
}

static int spam_get(const struct xattr_msg *m, const char *name, struct buf *out)
{
	char *v = xmalloc(XATTR_VALUE_MAX);
	ssize_t n;
	int rc;

	if (v == NULL)
		return ENOMEM;
	n = spam_xattr_get(m->txn, user_of(m->txn, m->msg), m->msg, name, v, XATTR_VALUE_MAX);
	rc = n < 0 ? (int)-n : buf_append(out, v, (size_t)n) < 0 ? E2BIG : 0;
	free(v);
	return rc;
}

/* user.spam.class = spam | innocent: retrains the filter for the owner. */
static int spam_set(struct fs *fs, const struct store_msg *msg, const char *name, const char *value,
		    size_t size)
{
	struct store_txn *txn = NULL;
	uint32_t user_id;

	if (strcmp(name, "user.spam.class") != 0)
		return EPERM;
	if (store_read_begin(fs->store, &txn) < 0)
		return EIO;
	user_id = user_of(txn, msg);
	store_read_end(&txn);
	return -spam_xattr_set(fs->store, user_id, msg->mbid, msg->uid, name, value, size);
}

/* --- user.auth.*: SPF, DKIM and DMARC results (smtpin/authres.c) ----------- */

static const char *const auth_names[] = {"spf", "dkim", "dmarc", NULL};

/* The value of "auth.NAME=" in the message's metadata into v; -1 if none. */
static int auth_value(const struct xattr_msg *m, const char *name, char *v, size_t size)
{
	char meta[STORE_META_MAX], key[32];

	if (store_msg_meta(m->txn, m->msg->mbid, m->msg->uid, meta) != 0)
		return -1;
	snprintf(key, sizeof(key), "auth.%s=", name);
	for (char *line = meta; line && *line;) {
		char *nl = strchr(line, '\n');
		if (strncmp(line, key, strlen(key)) == 0) {
			size_t l = nl ? (size_t)(nl - line) - strlen(key) : strlen(line + strlen(key));
			if (l >= size)
				l = size - 1;
			memcpy(v, line + strlen(key), l);
			v[l] = 0;
			return 0;
		}
		line = nl ? nl + 1 : NULL;
	}
	return -1;
}

static int auth_list(const struct xattr_msg *m, struct buf *out)
{
	char v[64], n[64];

	for (size_t i = 0; auth_names[i]; i++) {
		if (auth_value(m, auth_names[i], v, sizeof(v)) < 0)
			continue;
		snprintf(n, sizeof(n), "user.auth.%s", auth_names[i]);
		if (buf_append(out, n, strlen(n) + 1) < 0)
			return E2BIG;
	}
	return 0;
}

static int auth_get(const struct xattr_msg *m, const char *name, struct buf *out)
{
	char v[64];

	if (auth_value(m, name + strlen("user.auth."), v, sizeof(v)) < 0)
		return ENODATA;
	return buf_append_str(out, v) < 0 ? E2BIG : 0;
}

static const struct xattr_provider providers[] = {
    {"user.mail.", mail_list, mail_get, NULL},
    {"user.spam.", spam_list, spam_get, spam_set},
    {"user.auth.", auth_list, auth_get, NULL},
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
