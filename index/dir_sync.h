/* dir_sync — keeps the store's record of a directory user in step with the
 * directory (LDAP).
 *
 * The store knows a user from LDAP from their first message on (store_deliver
 * creates the record); the mount takes a user's file owner from that record.
 * So that the owner is what LDAP says (uidNumber/gidNumber), every successful
 * lookup, get_user or authenticate through a directory wrapped by
 * dir_sync_wrap() makes sure the store has the user with the same uid and gid
 * (a short read transaction when nothing changed; a write only for a new user
 * or a changed number). directory_open() wraps the LDAP backend this way
 * whenever it is given a store, so smtpin (at RCPT) and imapd (at login) keep
 * the store right without knowing about it.
 */
#ifndef MK_DIR_SYNC_H
#define MK_DIR_SYNC_H

#include "index/store.h"
#include "lib/directory.h"

/* Creates the store user u->name if absent and sets its uid and gid to u's.
 * Returns 0 or a store error code (store_strerror). */
int dir_sync_store_user(struct store *store, const struct dir_user *u);

/* A directory that answers as inner does and syncs each user it returns into
 * store (a failure to sync is logged, the answer stays). Takes ownership of
 * inner (closed with the wrapper); store must outlive the wrapper. */
struct directory *dir_sync_wrap(struct directory *inner, struct store *store);

#endif
