/* mkstore — a test-only helper that writes into a store the way smtpin, imapd
 * or `mailkeep import` would, from another process than the mount:
 *
 *   mkstore STORE user NAME UID GID              create a user (with the default mailboxes)
 *   mkstore STORE deliver USER MAILBOX FLAGS     one message from stdin; FLAGS letters
 *                                                  D F R S T, N = \Recent, - = none
 *   mkstore STORE bulk USER MAILBOX DIR [N]      every file of DIR as a message, N per write
 *                                                  (\Recent unset, internal date = file mtime)
 *   mkstore STORE flags USER MAILBOX UID +X|-X   add or remove flag letters
 *   mkstore STORE list USER MAILBOX              "uid flags size sha256 base" per message
 *   mkstore STORE refs SHA256                    the blob's reference count
 *   mkstore STORE mkbox USER MAILBOX             create a mailbox
 * Prints the new UID for deliver. Exit 0 on success.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "index/store.h"
#include "lib/array.h"
#include "lib/util.h"
#include "lib/xmalloc.h"

static uint32_t letters(const char *s)
{
	uint32_t f = 0;
	for (; *s; s++) {
		switch (*s) {
		case 'D':
			f |= STORE_F_DRAFT;
			break;
		case 'F':
			f |= STORE_F_FLAGGED;
			break;
		case 'R':
			f |= STORE_F_ANSWERED;
			break;
		case 'S':
			f |= STORE_F_SEEN;
			break;
		case 'T':
			f |= STORE_F_DELETED;
			break;
		case 'N':
			f |= STORE_F_RECENT;
			break;
		default:
			break;
		}
	}
	return f;
}

static void flagstr(uint32_t f, char *out)
{
	char *p = out;
	if (f & STORE_F_DRAFT)
		*p++ = 'D';
	if (f & STORE_F_FLAGGED)
		*p++ = 'F';
	if (f & STORE_F_ANSWERED)
		*p++ = 'R';
	if (f & STORE_F_SEEN)
		*p++ = 'S';
	if (f & STORE_F_DELETED)
		*p++ = 'T';
	if (f & STORE_F_RECENT)
		*p++ = 'N';
	if (p == out)
		*p++ = '-';
	*p = '\0';
}

struct ctx {
	const char *user, *mailbox;
	uint32_t uid, gid, flags;
	int op; /* +1 add, -1 remove */
	char **files;
	size_t nfiles, from, to;
	char *data;
	size_t len;
	struct store_msg msg;
};

static int mbid_of(struct store_txn *txn, const char *user, const char *mailbox, uint32_t *mbid)
{
	struct store_user u;
	struct store_mailbox mb;
	int rc;
	if ((rc = store_user_get(txn, user, &u)) < 0 ||
	    (rc = store_mailbox_get(txn, u.id, mailbox, &mb)) < 0)
		return rc;
	*mbid = mb.id;
	return 0;
}

static int w_user(struct store_txn *txn, void *vctx)
{
	struct ctx *c = vctx;
	struct store_user u;
	uint32_t id;
	memset(&u, 0, sizeof(u));
	mk_strlcpy(u.name, c->user, sizeof(u.name));
	u.uid = c->uid;
	u.gid = c->gid;
	return store_user_add(txn, &u, &id);
}

static int w_mkbox(struct store_txn *txn, void *vctx)
{
	struct ctx *c = vctx;
	struct store_user u;
	int rc;
	if ((rc = store_user_get(txn, c->user, &u)) < 0)
		return rc;
	return store_mailbox_create(txn, u.id, c->mailbox, 0, NULL);
}

static int w_deliver(struct store_txn *txn, void *vctx)
{
	struct ctx *c = vctx;
	struct store_msg_new m;
	uint32_t mbid;
	int rc;
	memset(&m, 0, sizeof(m));
	if ((rc = mbid_of(txn, c->user, c->mailbox, &mbid)) < 0 ||
	    (rc = store_blob_put(txn, c->data, c->len, m.hash)) < 0)
		return rc;
	m.flags = c->flags;
	return store_msg_add(txn, mbid, &m, &c->msg);
}

static int w_bulk(struct store_txn *txn, void *vctx)
{
	struct ctx *c = vctx;
	uint32_t mbid;
	int rc;
	if ((rc = mbid_of(txn, c->user, c->mailbox, &mbid)) < 0)
		return rc;
	for (size_t i = c->from; i < c->to; i++) {
		struct store_msg_new m;
		struct stat st;
		char *data;
		size_t len;
		if (mk_read_file(c->files[i], (size_t)1 << 30, &data, &len) < 0 ||
		    stat(c->files[i], &st) < 0) {
			fprintf(stderr, "mkstore: %s: cannot read\n", c->files[i]);
			return STORE_EIO;
		}
		memset(&m, 0, sizeof(m));
		rc = store_blob_put(txn, data, len, m.hash);
		free(data);
		if (rc < 0)
			return rc;
		m.internaldate = st.st_mtime;
		if ((rc = store_msg_add(txn, mbid, &m, NULL)) < 0)
			return rc;
	}
	return 0;
}

static int w_flags(struct store_txn *txn, void *vctx)
{
	struct ctx *c = vctx;
	uint32_t mbid;
	int rc;
	if ((rc = mbid_of(txn, c->user, c->mailbox, &mbid)) < 0)
		return rc;
	return store_msg_set_flags(txn, mbid, c->uid,
				   c->op > 0 ? STORE_FLAGS_ADD : STORE_FLAGS_REMOVE, c->flags, NULL,
				   0, &c->msg);
}

static int list_cb(const struct store_msg *m, void *ctx)
{
	char f[8], hex[2 * STORE_HASH_LEN + 1];
	(void)ctx;
	flagstr(m->flags, f);
	mk_hex(m->hash, STORE_HASH_LEN, hex);
	printf("%u %s %llu %s %s\n", m->uid, f, (unsigned long long)m->size, hex, m->base);
	return 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmd_user(struct store *s, char **argv, struct ctx *c)
{
	c->user = argv[3];
	c->uid = (uint32_t)strtoul(argv[4], NULL, 10);
	c->gid = (uint32_t)strtoul(argv[5], NULL, 10);
	return store_write(s, w_user, c);
}

static int cmd_mkbox(struct store *s, char **argv, struct ctx *c)
{
	c->user = argv[3];
	c->mailbox = argv[4];
	return store_write(s, w_mkbox, c);
}

static int cmd_deliver(struct store *s, char **argv, struct ctx *c)
{
	size_t cap = 1 << 16, n;
	int rc;

	c->user = argv[3];
	c->mailbox = argv[4];
	c->flags = letters(argv[5]);
	c->data = xmalloc(cap);
	while ((n = fread(c->data + c->len, 1, cap - c->len, stdin)) > 0) {
		c->len += n;
		if (c->len == cap)
			c->data = xreallocarray(c->data, cap *= 2, 1);
	}
	rc = store_write(s, w_deliver, c);
	if (rc == 0)
		printf("%u\n", c->msg.uid);
	free(c->data);
	return rc;
}

static int cmd_bulk(struct store *s, char **argv, struct ctx *c)
{
	size_t per = argv[6] != NULL ? strtoul(argv[6], NULL, 10) : 256, cap = 0;
	DIR *d = opendir(argv[5]);
	struct dirent *de;
	int rc = 0;

	c->user = argv[3];
	c->mailbox = argv[4];
	while (d && (de = readdir(d))) {
		char path[4096];
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", argv[5], de->d_name);
		*ARRAY_PUSH(c->files, c->nfiles, cap) = xstrdup(path);
	}
	if (d)
		closedir(d);
	qsort(c->files, c->nfiles, sizeof(*c->files), cmp);
	for (c->from = 0; c->from < c->nfiles && rc == 0; c->from = c->to) {
		c->to = c->from + per < c->nfiles ? c->from + per : c->nfiles;
		rc = store_write(s, w_bulk, c);
	}
	for (size_t i = 0; i < c->nfiles; i++)
		free(c->files[i]);
	free(c->files);
	return rc;
}

static int cmd_flags(struct store *s, char **argv, struct ctx *c)
{
	c->user = argv[3];
	c->mailbox = argv[4];
	c->uid = (uint32_t)strtoul(argv[5], NULL, 10);
	c->op = argv[6][0] == '-' ? -1 : 1;
	c->flags = letters(argv[6] + 1);
	return store_write(s, w_flags, c);
}

static int cmd_list(struct store *s, char **argv, struct ctx *c)
{
	struct store_txn *txn = NULL;
	uint32_t mbid;
	int rc;

	(void)c;
	if ((rc = store_read_begin(s, &txn)) == 0 &&
	    (rc = mbid_of(txn, argv[3], argv[4], &mbid)) == 0)
		rc = store_msg_foreach(txn, mbid, list_cb, NULL);
	store_read_end(&txn);
	return rc;
}

static int cmd_refs(struct store *s, char **argv, struct ctx *c)
{
	struct store_txn *txn = NULL;
	uint8_t h[STORE_HASH_LEN];
	struct store_blob_info bi;
	int rc;

	(void)c;
	if (mk_unhex(argv[3], h, sizeof(h)) < 0)
		return STORE_EINVAL;
	if ((rc = store_read_begin(s, &txn)) == 0) {
		rc = store_blob_info(txn, h, &bi);
		if (rc == 0)
			printf("%u\n", bi.refs);
		else if (rc == STORE_ENOTFOUND) {
			printf("0\n");
			rc = 0;
		}
	}
	store_read_end(&txn);
	return rc;
}

/* The commands, with the argc each takes (bulk: 6 or 7). */
static const struct {
	const char *name;
	int argc, argc_max;
	int (*run)(struct store *s, char **argv, struct ctx *c);
} commands[] = {
    {"user", 6, 6, cmd_user}, {"mkbox", 5, 5, cmd_mkbox}, {"deliver", 6, 6, cmd_deliver},
    {"bulk", 6, 7, cmd_bulk}, {"flags", 7, 7, cmd_flags}, {"list", 5, 5, cmd_list},
    {"refs", 4, 4, cmd_refs},
};

int main(int argc, char **argv)
{
	struct store *s = NULL;
	struct store_options opt;
	struct ctx c;
	char err[256];
	int rc = STORE_EINVAL;
	size_t i;

	if (argc < 3) {
		fprintf(stderr, "usage: see tests/helpers/mkstore.c\n");
		return 2;
	}
	memset(&opt, 0, sizeof(opt));
	memset(&c, 0, sizeof(c));
	if (store_open(argv[1], &opt, &s, err, sizeof(err)) < 0) {
		fprintf(stderr, "mkstore: %s\n", err);
		return 1;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[2], commands[i].name) == 0 && argc >= commands[i].argc &&
		    argc <= commands[i].argc_max)
			break;
	if (i < sizeof(commands) / sizeof(commands[0]))
		rc = commands[i].run(s, argv, &c);
	else
		fprintf(stderr, "mkstore: bad command\n");
	if (rc < 0)
		fprintf(stderr, "mkstore: %s\n", store_strerror(rc));
	store_close(&s);
	return rc < 0 ? 1 : 0;
}
