/* notify — the store's change notice, watched once, fanned out to IDLE sessions. */
#include "imapd/notify.h"

#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/array.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int *fds;
static size_t nfds, capfds;
static int watch_fd = -1;

static void *watcher(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd p = {.fd = watch_fd, .events = POLLIN};
		if (poll(&p, 1, -1) <= 0)
			continue;
		store_watch_drain(watch_fd);
		pthread_mutex_lock(&lock);
		for (size_t i = 0; i < nfds; i++)
			(void)!eventfd_write(fds[i], 1);
		pthread_mutex_unlock(&lock);
	}
	return NULL;
}

int notify_start(struct store *store)
{
	pthread_t th;
	watch_fd = store_watch_open(store);
	if (watch_fd < 0)
		return -1;
	if (pthread_create(&th, NULL, watcher, NULL) != 0) {
		close(watch_fd);
		watch_fd = -1;
		return -1;
	}
	pthread_detach(th);
	return 0;
}

int notify_subscribe(void)
{
	if (watch_fd < 0)
		return -1;
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fd < 0)
		return -1;
	pthread_mutex_lock(&lock);
	*ARRAY_PUSH(fds, nfds, capfds) = fd;
	pthread_mutex_unlock(&lock);
	return fd;
}

void notify_drain(int fd)
{
	eventfd_t v;
	(void)!eventfd_read(fd, &v);
}

void notify_unsubscribe(int fd)
{
	if (fd < 0)
		return;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nfds; i++)
		if (fds[i] == fd) {
			fds[i] = fds[--nfds];
			break;
		}
	pthread_mutex_unlock(&lock);
	close(fd);
}
