/* notify — one watcher of the store's change notice for the whole process,
 * fanned out to the sessions in IDLE through an eventfd each. (An inotify
 * instance per IDLE session would hit fs.inotify.max_user_instances, 128 by
 * default, long before the connection limit.) */
#ifndef MK_IMAP_NOTIFY_H
#define MK_IMAP_NOTIFY_H

#include "index/store.h"

/* Starts the watcher thread. Returns 0, or -1 if the store cannot be watched
 * (sessions then look for changes once a second). */
int notify_start(struct store *store);
/* An eventfd that becomes readable after each change; -1 if there is no
 * watcher or no fd is left. Drain it with notify_drain. */
int notify_subscribe(void);
void notify_drain(int fd);
/* Stops delivering to fd and closes it. */
void notify_unsubscribe(int fd);

#endif
