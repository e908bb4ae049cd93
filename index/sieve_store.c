/* sieve_store — a user's Sieve scripts and the interpreter's memories, in
 * the store's table DB_SIEVE, so that they are backed up, copied and
 * deleted with the user's mail (mailkeep backup, user del) and written in
 * the same durable transactions.
 *
 * Key layout (user id big-endian first, so a user's rows are one range):
 *   user u32 'S' name        -> the script's text, as uploaded
 *   user u32 'A'             -> the active script's name
 *   user u32 'V' sha256[32]  -> until u64: a vacation reply was sent (sender, handle)
 *   user u32 'E' sha256[32]  -> until u64: the user was told of this error
 *   user u32 'R' sha256[32]  -> until u64: a message was redirected to an address
 */
#include <stdlib.h>
#include <string.h>

#include "index/sieve.h"
#include "index/store_internal.h"

static size_t key_of(uint8_t *key, uint32_t user_id, char kind, const void *rest, size_t restlen)
{
	store_put_be32(key, user_id);
	key[4] = (uint8_t)kind;
	if (restlen > 0)
		memcpy(key + 5, rest, restlen);
	return 5 + restlen;
}

int sieve_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > SIEVE_NAME_MAX)
		return 0;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == '/')
			return 0;
	return strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

static MDB_dbi dbi(struct store_txn *txn)
{
	return store_txn_dbi(txn, DB_SIEVE);
}

int sieve_script_put(struct store_txn *txn, uint32_t user_id, const char *name, const char *text,
		     size_t len)
{
	uint8_t key[5 + SIEVE_NAME_MAX];
	if (!sieve_name_valid(name))
		return STORE_EINVAL;
	MDB_val k = {key_of(key, user_id, 'S', name, strlen(name)), key}, v = {len, (void *)text};
	int rc = mdb_put(store_txn_mdb(txn), dbi(txn), &k, &v, 0);
	if (rc == 0)
		store_txn_touch(txn);
	return store_mdb_error(rc);
}

int sieve_script_get(struct store_txn *txn, uint32_t user_id, const char *name, const char **text_r,
		     size_t *len_r)
{
	uint8_t key[5 + SIEVE_NAME_MAX];
	if (!sieve_name_valid(name))
		return STORE_ENOTFOUND;
	MDB_val k = {key_of(key, user_id, 'S', name, strlen(name)), key}, v;
	int rc = mdb_get(store_txn_mdb(txn), dbi(txn), &k, &v);
	if (rc != 0)
		return store_mdb_error(rc);
	*text_r = v.mv_data;
	*len_r = v.mv_size;
	return 0;
}

int sieve_script_active(struct store_txn *txn, uint32_t user_id, char *name_r)
{
	uint8_t key[5];
	MDB_val k = {key_of(key, user_id, 'A', NULL, 0), key}, v;
	int rc = mdb_get(store_txn_mdb(txn), dbi(txn), &k, &v);
	if (rc != 0)
		return store_mdb_error(rc);
	if (v.mv_size == 0 || v.mv_size > SIEVE_NAME_MAX)
		return STORE_ECORRUPT;
	memcpy(name_r, v.mv_data, v.mv_size);
	name_r[v.mv_size] = '\0';
	return 0;
}

int sieve_script_activate(struct store_txn *txn, uint32_t user_id, const char *name)
{
	uint8_t key[5];
	MDB_val k = {key_of(key, user_id, 'A', NULL, 0), key};
	int rc;
	if (name == NULL || name[0] == '\0') {
		rc = mdb_del(store_txn_mdb(txn), dbi(txn), &k, NULL);
		if (rc == MDB_NOTFOUND)
			return 0;
	} else {
		const char *text;
		size_t len;
		if ((rc = sieve_script_get(txn, user_id, name, &text, &len)) != 0)
			return rc;
		MDB_val v = {strlen(name), (void *)name};
		rc = mdb_put(store_txn_mdb(txn), dbi(txn), &k, &v, 0);
	}
	if (rc == 0)
		store_txn_touch(txn);
	return store_mdb_error(rc);
}

int sieve_script_delete(struct store_txn *txn, uint32_t user_id, const char *name)
{
	uint8_t key[5 + SIEVE_NAME_MAX];
	char active[SIEVE_NAME_MAX + 1];
	if (!sieve_name_valid(name))
		return STORE_ENOTFOUND;
	if (sieve_script_active(txn, user_id, active) == 0 && strcmp(active, name) == 0)
		return STORE_EEXIST;
	MDB_val k = {key_of(key, user_id, 'S', name, strlen(name)), key};
	int rc = mdb_del(store_txn_mdb(txn), dbi(txn), &k, NULL);
	if (rc == 0)
		store_txn_touch(txn);
	return store_mdb_error(rc);
}

int sieve_script_rename(struct store_txn *txn, uint32_t user_id, const char *oldname,
			const char *newname)
{
	const char *text;
	size_t len;
	char active[SIEVE_NAME_MAX + 1];
	int rc, was_active;
	if (!sieve_name_valid(newname))
		return STORE_EINVAL;
	if ((rc = sieve_script_get(txn, user_id, oldname, &text, &len)) != 0)
		return rc;
	if (strcmp(oldname, newname) == 0)
		return 0;
	const char *t2;
	size_t l2;
	if (sieve_script_get(txn, user_id, newname, &t2, &l2) == 0)
		return STORE_EEXIST;
	was_active = sieve_script_active(txn, user_id, active) == 0 && strcmp(active, oldname) == 0;
	/* text points into the map: copy it before the put may move pages */
	char *copy = len ? malloc(len) : NULL;
	if (len && copy == NULL)
		return STORE_EIO;
	if (len)
		memcpy(copy, text, len);
	rc = sieve_script_put(txn, user_id, newname, copy ? copy : "", len);
	free(copy);
	if (rc == 0 && was_active)
		rc = sieve_script_activate(txn, user_id, newname);
	if (rc == 0) {
		uint8_t key[5 + SIEVE_NAME_MAX];
		MDB_val k = {key_of(key, user_id, 'S', oldname, strlen(oldname)), key};
		rc = store_mdb_error(mdb_del(store_txn_mdb(txn), dbi(txn), &k, NULL));
	}
	return rc;
}

int sieve_script_foreach(struct store_txn *txn, uint32_t user_id,
			 int (*cb)(const char *name, size_t len, int active, void *ctx), void *ctx)
{
	uint8_t key[5];
	char active[SIEVE_NAME_MAX + 1] = "";
	MDB_cursor *cur;
	MDB_val k = {key_of(key, user_id, 'S', NULL, 0), key}, v;
	int rc;

	if (sieve_script_active(txn, user_id, active) != 0)
		active[0] = '\0';
	if ((rc = mdb_cursor_open(store_txn_mdb(txn), dbi(txn), &cur)) != 0)
		return store_mdb_error(rc);
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size > 5 && memcmp(k.mv_data, key, 5) == 0) {
		char name[SIEVE_NAME_MAX + 1];
		size_t nl = k.mv_size - 5;
		if (nl > SIEVE_NAME_MAX)
			nl = SIEVE_NAME_MAX;
		memcpy(name, (const char *)k.mv_data + 5, nl);
		name[nl] = '\0';
		int r = cb(name, v.mv_size, strcmp(name, active) == 0, ctx);
		if (r != 0) {
			mdb_cursor_close(cur);
			return r;
		}
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_mdb_error(rc);
}

int sieve_memory_check(struct store_txn *txn, uint32_t user_id, enum sieve_memory kind,
		       const uint8_t hash[STORE_HASH_LEN], int64_t now)
{
	uint8_t key[5 + STORE_HASH_LEN];
	MDB_val k = {key_of(key, user_id, (char)kind, hash, STORE_HASH_LEN), key}, v;
	if (mdb_get(store_txn_mdb(txn), dbi(txn), &k, &v) != 0 || v.mv_size != 8)
		return 0;
	return (int64_t)store_get_be64(v.mv_data) > now;
}

int sieve_memory_put(struct store_txn *txn, uint32_t user_id, enum sieve_memory kind,
		     const uint8_t hash[STORE_HASH_LEN], int64_t until)
{
	uint8_t key[5 + STORE_HASH_LEN], val[8];
	store_put_be64(val, (uint64_t)until);
	MDB_val k = {key_of(key, user_id, (char)kind, hash, STORE_HASH_LEN), key}, v = {8, val};
	int rc = mdb_put(store_txn_mdb(txn), dbi(txn), &k, &v, 0);
	if (rc == 0)
		store_txn_touch(txn);
	return store_mdb_error(rc);
}

int sieve_memory_expire(struct store_txn *txn, uint32_t user_id, enum sieve_memory kind,
			int64_t now)
{
	uint8_t key[5];
	MDB_cursor *cur;
	MDB_val k = {key_of(key, user_id, (char)kind, NULL, 0), key}, v;
	int rc, changed = 0;

	if ((rc = mdb_cursor_open(store_txn_mdb(txn), dbi(txn), &cur)) != 0)
		return store_mdb_error(rc);
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size == 5 + STORE_HASH_LEN && memcmp(k.mv_data, key, 5) == 0) {
		if (v.mv_size == 8 && (int64_t)store_get_be64(v.mv_data) <= now) {
			if ((rc = mdb_cursor_del(cur, 0)) != 0)
				break;
			changed = 1;
			/* after a delete the cursor is on the next row */
			rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
			continue;
		}
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (changed)
		store_txn_touch(txn);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_mdb_error(rc);
}
