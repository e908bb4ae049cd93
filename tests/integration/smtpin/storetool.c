/* storetool — a tiny test helper for the smtpin tests: adds users and
 * aliases, lists and prints stored messages, runs store_fsck. Built by
 * conftest.py against build/index/libindex.a and build/lib/libmk.a, so the
 * tests do not depend on the `mailkeep` command's progress.
 *
 *   storetool STOREDIR useradd NAME PASSWORD
 *   storetool STOREDIR alias ADDRESS TARGET
 *   storetool STOREDIR list USER [MAILBOX]    one line per message: uid size sha256 meta(escaped)
 *   storetool STOREDIR cat USER UID [MAILBOX] the stored bytes
 *   storetool STOREDIR fsck                   problems, exit 1 if any
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "index/store.h"
#include "lib/password.h"
#include "lib/util.h"

struct args {
	int argc;
	char **argv;
};

static int add_user(struct store_txn *txn, void *ctx)
{
	struct args *a = ctx;
	struct store_user u;
	memset(&u, 0, sizeof(u));
	mk_strlcpy(u.name, a->argv[3], sizeof(u.name));
	if (password_hash(a->argv[4], u.password, sizeof(u.password)) < 0)
		return STORE_EINVAL;
	return store_user_add(txn, &u, NULL);
}

static int add_alias(struct store_txn *txn, void *ctx)
{
	struct args *a = ctx;
	return store_alias_add(txn, a->argv[3], a->argv[4]);
}

static int print_msg(const struct store_msg *m, void *ctx)
{
	struct store_txn *txn = ctx;
	char hex[65], meta[STORE_META_MAX];
	mk_hex(m->hash, STORE_HASH_LEN, hex);
	if (store_msg_meta(txn, m->mbid, m->uid, meta) != 0)
		meta[0] = 0;
	printf("%u %llu %s ", m->uid, (unsigned long long)m->size, hex);
	for (char *c = meta; *c; c++)
		if (*c == '\n')
			fputs("\\n", stdout);
		else
			putchar(*c);
	putchar('\n');
	return 0;
}

static void report(const char *problem, void *ctx)
{
	(void)ctx;
	printf("%s\n", problem);
}

int main(int argc, char **argv)
{
	struct store *st = NULL;
	struct store_options o = {0};
	char err[256];
	struct args a = {argc, argv};
	int rc = 1;

	if (argc < 3)
		return 2;
	if (store_open(argv[1], &o, &st, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	const char *cmd = argv[2];
	if (strcmp(cmd, "useradd") == 0 && argc == 5) {
		rc = store_write(st, add_user, &a) == 0 ? 0 : 1;
	} else if (strcmp(cmd, "alias") == 0 && argc == 5) {
		rc = store_write(st, add_alias, &a) == 0 ? 0 : 1;
	} else if ((strcmp(cmd, "list") == 0 && argc >= 4) ||
		   (strcmp(cmd, "cat") == 0 && argc >= 5)) {
		struct store_txn *txn;
		struct store_user u;
		struct store_mailbox mb;
		int cat = strcmp(cmd, "cat") == 0;
		const char *mbname = argc > (cat ? 5 : 4) ? argv[cat ? 5 : 4] : "INBOX";
		store_read_begin(st, &txn);
		if (store_user_get(txn, argv[3], &u) == 0 &&
		    store_mailbox_get(txn, u.id, mbname, &mb) == 0) {
			if (!cat) {
				store_msg_foreach(txn, mb.id, print_msg, txn);
				rc = 0;
			} else {
				struct store_msg m;
				const void *data;
				size_t len;
				if (store_msg_get(txn, mb.id, (uint32_t)strtoul(argv[4], NULL, 10),
						  &m) == 0 &&
				    store_blob_get(txn, m.hash, &data, &len) == 0) {
					fwrite(data, 1, len, stdout);
					rc = 0;
				}
			}
		} else if (!cat) {
			rc = 0; /* no such user yet: no messages */
		}
		store_read_end(&txn);
	} else if (strcmp(cmd, "fsck") == 0) {
		int n = store_fsck(st, report, NULL, NULL);
		rc = n == 0 ? 0 : 1;
	} else {
		fprintf(stderr, "bad command\n");
		rc = 2;
	}
	store_close(&st);
	return rc;
}
