/* mkuser — test fixture: adds a user with a password to a store, used by the
 * imapd tests only when the real `mailkeep user add` is not built yet.
 *   mkuser STORE_DIR NAME PASSWORD
 * A PASSWORD starting with '{' is taken as already hashed ({SSHA512}...). */
#include <stdio.h>
#include <string.h>

#include "index/store.h"
#include "lib/password.h"
#include "lib/util.h"

static struct store_user u;

static int add_fn(struct store_txn *txn, void *ctx)
{
	(void)ctx;
	return store_user_add(txn, &u, NULL);
}

int main(int argc, char **argv)
{
	char err[256];
	struct store *st = NULL;
	if (argc != 4)
		return 2;
	if (store_open(argv[1], NULL, &st, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	mk_strlcpy(u.name, argv[2], sizeof(u.name));
	if (argv[3][0] == '{')
		mk_strlcpy(u.password, argv[3], sizeof(u.password));
	else if (password_hash(argv[3], u.password, sizeof(u.password)) < 0)
		return 1;
	int r = store_write(st, add_fn, NULL);
	store_close(&st);
	if (r != 0) {
		fprintf(stderr, "%s\n", store_strerror(r));
		return 1;
	}
	return 0;
}
