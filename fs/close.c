/* close — learns when a file written on the mount is closed, and whether its
 * writer died of a signal.
 *
 * Why: open() answers ENOSYS (FUSE_CAP_NO_OPEN_SUPPORT) so that the kernel
 * keeps stored messages in its page cache across opens. Once it got that
 * answer, the kernel sends no RELEASE for any file any more, also not for files
 * made by create() (fs/fuse/file.c: fuse_file_put drops FUSE_RELEASE when
 * fc->no_open), and FLUSH would cost a round trip on every close of every file
 * read (measured: warm grep -r at 0.25-0.8x native instead of ~0.95x). A file
 * written straight into new/ (cp, cat >, mv from another file system) would
 * then never learn that it is complete.
 *
 * So the close comes from the kernel's fsnotify instead: a fanotify mark on the
 * whole mount for FAN_CLOSE_WRITE (one mark, no cost for reads: only closes of
 * files opened for writing make events). Each event carries a descriptor of
 * the file (fstat gives our inode number, so renames do not matter) and the pid
 * of the process whose close it was. A writer killed half-way is closed by the
 * kernel while the process exits: /proc/<pid>/stat then shows PF_EXITING and
 * PF_SIGNALED, or, when the process has already been reaped, the kernel's
 * process connector (netlink, PROC_EVENT_EXIT) told us its wait status before
 * it could be reaped. Such a file is dropped, never stored half-written.
 *
 * Both need CAP_SYS_ADMIN / CAP_NET_ADMIN (mailkeep-fs runs as root to mount
 * with allow_other). Without them fs_close_start fails and the mount answers
 * open() for real instead (fs->real_open): the kernel then sends RELEASE, at
 * the price of a round trip per file read.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/fs.h"
#include "lib/log.h"
#include "lib/util.h"

#define PF_EXITING 0x00000004  /* include/linux/sched.h */
#define PF_SIGNALED 0x00000400 /* killed by a signal */
#define EXITS_MAX 4096	       /* recent exits remembered (a ring) */

struct exit_rec {
	pid_t pid;
	int status; /* wait status */
};

static struct {
	struct fs *fs;
	char *mountpoint;
	int fan, cn;
	int pipe[2];
	pthread_t thread;
	int running;
	struct exit_rec exits[EXITS_MAX];
	size_t next_exit;
	/* closed files for the store thread: who closed them is judged at once,
	 * storing them (slow: a durable commit) happens there, in batches */
	pthread_t store_thread;
	pthread_mutex_t qlock;
	pthread_cond_t qcond;
	uint64_t *qserial;
	int *qkilled;
	size_t qlen, qcap;
	int store_stop; /* set once the close thread is gone */
} C = {.fan = -1,
       .cn = -1,
       .pipe = {-1, -1},
       .qlock = PTHREAD_MUTEX_INITIALIZER,
       .qcond = PTHREAD_COND_INITIALIZER};

#define BATCH_MAX 256

static void queue_closed(uint64_t serial, int killed)
{
	pthread_mutex_lock(&C.qlock);
	if (C.qlen == C.qcap) {
		C.qcap = C.qcap ? 2 * C.qcap : 256;
		if (!(C.qserial = realloc(C.qserial, C.qcap * sizeof(*C.qserial))) ||
		    !(C.qkilled = realloc(C.qkilled, C.qcap * sizeof(*C.qkilled))))
			log_fatal("out of memory");
	}
	C.qserial[C.qlen] = serial;
	C.qkilled[C.qlen++] = killed;
	pthread_cond_signal(&C.qcond);
	pthread_mutex_unlock(&C.qlock);
}

static void *store_main(void *arg)
{
	uint64_t serial[BATCH_MAX];
	int killed[BATCH_MAX];
	(void)arg;

	for (;;) {
		size_t n;
		pthread_mutex_lock(&C.qlock);
		while (C.qlen == 0 && !C.store_stop)
			pthread_cond_wait(&C.qcond, &C.qlock);
		if (C.qlen == 0) {
			pthread_mutex_unlock(&C.qlock);
			break;
		}
		n = C.qlen < BATCH_MAX ? C.qlen : BATCH_MAX;
		memcpy(serial, C.qserial, n * sizeof(*serial));
		memcpy(killed, C.qkilled, n * sizeof(*killed));
		memmove(C.qserial, C.qserial + n, (C.qlen - n) * sizeof(*C.qserial));
		memmove(C.qkilled, C.qkilled + n, (C.qlen - n) * sizeof(*C.qkilled));
		C.qlen -= n;
		pthread_mutex_unlock(&C.qlock);
		fs_pending_closed(C.fs, serial, killed, n);
	}
	return NULL;
}

/* Subscribes to the kernel's process events. 0 or -1. */
static int cn_open(void)
{
	struct sockaddr_nl a = {.nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC};
	struct __attribute__((packed)) {
		struct nlmsghdr h;
		struct cn_msg m;
		enum proc_cn_mcast_op op;
	} req;
	int rcvbuf = 4 << 20;

	C.cn = socket(PF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_CONNECTOR);
	if (C.cn < 0)
		return -1;
	setsockopt(C.cn, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
	a.nl_pid = 0;
	if (bind(C.cn, (struct sockaddr *)&a, sizeof(a)) < 0)
		goto fail;
	memset(&req, 0, sizeof(req));
	req.h.nlmsg_len = sizeof(req);
	req.h.nlmsg_type = NLMSG_DONE;
	req.h.nlmsg_pid = (uint32_t)getpid();
	req.m.id.idx = CN_IDX_PROC;
	req.m.id.val = CN_VAL_PROC;
	req.m.len = sizeof(enum proc_cn_mcast_op);
	req.op = PROC_CN_MCAST_LISTEN;
	if (send(C.cn, &req, sizeof(req), 0) < 0)
		goto fail;
	return 0;
fail:
	close(C.cn);
	C.cn = -1;
	return -1;
}

/* Reads every queued process event, remembering exits. */
static void cn_drain(void)
{
	char buf[8192] __attribute__((aligned(8)));
	ssize_t n;

	while (C.cn >= 0 && (n = recv(C.cn, buf, sizeof(buf), 0)) != 0) {
		if (n < 0) {
			if (errno == ENOBUFS) {
				log_warn("fs: process events overflowed: a killed writer may go "
					 "unnoticed");
				continue;
			}
			break;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			struct cn_msg *m = NLMSG_DATA(h);
			struct proc_event *e = (struct proc_event *)m->data;
			if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m) + sizeof(*e)) ||
			    e->what != PROC_EVENT_EXIT)
				continue;
			C.exits[C.next_exit].pid = e->event_data.exit.process_pid;
			C.exits[C.next_exit].status = (int)e->event_data.exit.exit_code;
			C.next_exit = (C.next_exit + 1) % EXITS_MAX;
		}
	}
}

/* 1 if the process that closed a file died of a signal while it had it open;
 * 0 if it closed it while alive or exited normally. */
static int died_of_signal(pid_t pid)
{
	char path[64], buf[1024];
	ssize_t n;
	int fd;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			/* "pid (comm) state ppid ... flags" : flags is field 9; comm
			 * may hold spaces and parentheses, so count from the last ')' */
			char *p;
			unsigned long flags = 0;
			buf[n] = '\0';
			if ((p = strrchr(buf, ')'))) {
				int field = 2;
				for (; *p && field < 9; p++)
					if (*p == ' ')
						field++;
				flags = strtoul(p, NULL, 10);
			}
			if (!(flags & PF_EXITING))
				return 0; /* a close by a live process */
			return (flags & PF_SIGNALED) != 0;
		}
	}
	/* reaped already: its exit was queued before it could be */
	cn_drain();
	for (size_t i = 0; i < EXITS_MAX; i++) {
		size_t k = (C.next_exit + EXITS_MAX - 1 - i) % EXITS_MAX;
		if (C.exits[k].pid == pid)
			return (C.exits[k].status & 0x7f) != 0;
		if (C.exits[k].pid == 0)
			break;
	}
	return 0;
}

static void handle(struct fanotify_event_metadata *m)
{
	struct stat st;

	if (m->fd < 0)
		return;
	if (fstat(m->fd, &st) == 0) {
		struct fsi f = fsi_decode((uint64_t)st.st_ino);
		if (f.kind == FSI_PENDING)
			queue_closed(f.serial, died_of_signal(m->pid));
		else if (f.kind == FSI_PLAIN)
			fs_plain_closed(C.fs, (uint64_t)st.st_ino); /* .sieve: save it */
	}
	close(m->fd);
}

static void *close_main(void *arg)
{
	char buf[8192] __attribute__((aligned(8)));
	(void)arg;

	/* marking walks to the mount's root, which asks the daemon for its
	 * attributes: done here, once the session loop answers */
	if (fanotify_mark(C.fan, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_CLOSE_WRITE, AT_FDCWD,
			  C.mountpoint) < 0) {
		log_warn("fs: fanotify_mark %s: %m; open() is answered for real from now on, "
			 "so that the kernel tells when a written file is closed",
			 C.mountpoint);
		C.fs->close_events = 0;
		C.fs->real_open = 1;
		return NULL;
	}
	for (int last = 0; !last;) {
		struct pollfd pfd[3] = {{.fd = C.fan, .events = POLLIN},
					{.fd = C.pipe[0], .events = POLLIN},
					{.fd = C.cn, .events = POLLIN}};
		ssize_t n;

		if (poll(pfd, 3, -1) < 0 && errno != EINTR)
			break;
		last = !C.running; /* one more round: what is queued still counts */
		if (pfd[2].revents & POLLIN)
			cn_drain();
		while ((n = read(C.fan, buf, sizeof(buf))) > 0) {
			struct fanotify_event_metadata *m = (struct fanotify_event_metadata *)buf;
			for (; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
				if (m->vers != FANOTIFY_METADATA_VERSION)
					continue;
				handle(m);
			}
		}
	}
	return NULL;
}

int fs_close_start(struct fs *fs, const char *mountpoint)
{
	C.fs = fs;
	C.fan = fanotify_init(FAN_CLOEXEC | FAN_NONBLOCK | FAN_CLASS_NOTIF | FAN_UNLIMITED_QUEUE,
			      O_RDONLY | O_LARGEFILE | O_CLOEXEC);
	if (C.fan < 0) {
		log_info("fs: no fanotify (%m): open() is answered for real, so that the "
			 "kernel tells when a written file is closed (reads are slower)");
		return -1;
	}
	if (cn_open() < 0)
		log_warn("fs: no process events (%m): a writer killed in new/ or cur/ may leave "
			 "what it wrote as a message");
	if (!(C.mountpoint = strdup(mountpoint)) || pipe2(C.pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		log_fatal("out of memory or descriptors");
	C.running = 1;
	if (pthread_create(&C.store_thread, NULL, store_main, NULL) != 0)
		log_fatal("cannot start a thread");
	if (pthread_create(&C.thread, NULL, close_main, NULL) != 0) {
		log_warn("fs: cannot start the close thread");
		pthread_mutex_lock(&C.qlock);
		C.running = 0;
		C.store_stop = 1;
		pthread_cond_signal(&C.qcond);
		pthread_mutex_unlock(&C.qlock);
		pthread_join(C.store_thread, NULL);
		return -1;
	}
	return 0;
}

void fs_close_stop(void)
{
	char c = 0;
	if (C.running) {
		C.running = 0;
		if (write(C.pipe[1], &c, 1) < 0)
			log_warn("fs: cannot wake the close thread: %m");
		pthread_join(C.thread, NULL);
		/* what was closed before the unmount is stored before we go */
		pthread_mutex_lock(&C.qlock);
		C.store_stop = 1;
		pthread_cond_signal(&C.qcond);
		pthread_mutex_unlock(&C.qlock);
		pthread_join(C.store_thread, NULL);
	}
	free(C.qserial);
	free(C.qkilled);
	C.qserial = NULL;
	C.qkilled = NULL;
	C.qlen = C.qcap = 0;
	if (C.fan >= 0)
		close(C.fan);
	if (C.cn >= 0)
		close(C.cn);
	for (int i = 0; i < 2; i++)
		if (C.pipe[i] >= 0)
			close(C.pipe[i]);
	free(C.mountpoint);
	C.fan = C.cn = C.pipe[0] = C.pipe[1] = -1;
	C.mountpoint = NULL;
}
