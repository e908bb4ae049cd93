/* mkbench — the store benchmark's helpers (built by tests/bench/store/run.sh):
 *
 *   mkbench gen-mbox OUT COUNT SEED      a synthetic archive as mboxrd: COUNT distinct
 *                                        messages, 2-20 KB log-uniform, one in 2000 with
 *                                        a 1-4 MB base64 attachment; deterministic
 *   mkbench maildir-import MBOX DIR [LIMIT]  the peer of `mailkeep import`: each
 *                                        message of MBOX written to DIR/tmp, fsync'ed,
 *                                        renamed into DIR/new (the Maildir way); timed
 *                                        for at most LIMIT seconds (the rest is written
 *                                        unsynced, to measure the whole Maildir's size)
 *   mkbench deliver-store DIR WRITERS N  N durable deliveries of distinct 8 KB messages
 *                                        through store_deliver from WRITERS threads
 *   mkbench deliver-maildir DIR WRITERS N  the same as fsync-per-message Maildir delivery
 *   mkbench deliver-maildir-dirsync ...  the same, also fsync'ing new/ after each rename
 *                                        (the name is then as durable as the bytes)
 *
 * Each prints one line "seconds=S messages=N bytes=B".
 */
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "index/mbox.h"
#include "index/store.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rng_state;
static uint64_t rnd(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static const char *const words[] = {
    "the",    "store",	  "message", "mail",   "keep",	  "archive",  "server",	 "list",
    "thanks", "regards",  "patch",   "kernel", "meeting", "tomorrow", "invoice", "please",
    "find",   "attached", "report",  "about",  "release", "version",  "problem", "works",
    "again",  "question", "answer",  "would",  "could",	  "should",   "think",	 "because",
    "people", "project",  "update",  "status", "review",  "change",   "file",	 "system",
    "build",  "test",	  "result",  "before", "after",	  "today",    "week",	 "month",
    "year",   "photo",	  "holiday", "family"};

static void put_text(FILE *f, size_t want)
{
	size_t col = 0, n = 0;
	while (n < want) {
		const char *w = words[rnd() % (sizeof(words) / sizeof(words[0]))];
		size_t l = strlen(w);
		if (col + l + 1 > 72) {
			fputc('\n', f);
			n++;
			col = 0;
		} else if (col > 0) {
			fputc(' ', f);
			n++;
			col++;
		}
		fputs(w, f);
		n += l;
		col += l;
	}
	fputc('\n', f);
}

static int gen_mbox(const char *out, long count, uint64_t seed)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	FILE *f = fopen(out, "w");
	if (f == NULL) {
		perror(out);
		return 1;
	}
	rng_state = seed * 2654435761u + 1;
	for (long i = 0; i < count; i++) {
		/* log-uniform 2..20 KB */
		double u = (double)(rnd() % 1000000) / 1e6;
		size_t size = (size_t)(2048.0 * pow(10.0, u));
		time_t t = 1000000000 + i * 600;
		struct tm tm;
		char date[64];
		gmtime_r(&t, &tm);
		strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm);
		fprintf(f, "From sender%ld@example.com %s\n", i % 977, date);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
		fprintf(
		    f,
		    "Return-Path: <sender%ld@example.com>\n"
		    "Received: from mx%ld.example.com (mx%ld.example.com [192.0.2.%ld])\n"
		    "\tby mail.example.org with ESMTP id %08lX%04lX\n\tfor <user@example.org>; %s\n"
		    "From: Sender %ld <sender%ld@example.com>\n"
		    "To: user@example.org\n"
		    "Subject: message %ld about the %s\n"
		    "Date: %s\n"
		    "Message-ID: <%ld.%lu@example.com>\n"
		    "MIME-Version: 1.0\n",
		    i % 977, i % 13, i % 13, i % 250 + 1, (unsigned long)i,
		    (unsigned long)(rnd() & 0xffff), date, i % 977, i % 977, i,
		    words[i % (sizeof(words) / sizeof(words[0]))], date, i, (unsigned long)rnd());
		if (i % 2000 == 1999) {
			size_t att = (size_t)(1 << 20) + (size_t)(rnd() % (3u << 20));
			fprintf(f,
				"Content-Type: multipart/mixed; boundary=\"b%ld\"\n\n--b%ld\n"
				"Content-Type: text/plain\n\n",
				i, i);
			put_text(f, 1500);
			fprintf(f,
				"--b%ld\nContent-Type: application/octet-stream; "
				"name=\"photo%ld.jpg\"\n"
				"Content-Transfer-Encoding: base64\n\n",
				i, i);
			for (size_t n = 0; n < att; n += 77) {
				char line[78];
				for (int k = 0; k < 76; k++)
					line[k] = b64[rnd() & 63];
				line[76] = '\n';
				fwrite(line, 1, 77, f);
			}
			fprintf(f, "--b%ld--\n", i);
		} else {
			fputs("Content-Type: text/plain; charset=us-ascii\n\n", f);
			put_text(f, size > 700 ? size - 700 : 100);
		}
		fputc('\n', f);
	}
	if (fclose(f) != 0) {
		perror(out);
		return 1;
	}
	return 0;
}

static int dir_sync; /* also fsync new/ after the rename, so the name is durable too */
static int write_durable_opt(const char *dir, const char *name, const void *data, size_t len,
			     int sync);
static int write_durable(const char *dir, const char *name, const void *data, size_t len)
{
	return write_durable_opt(dir, name, data, len, 1);
}

static int write_durable_opt(const char *dir, const char *name, const void *data, size_t len,
			     int sync)
{
	char tmp[4200], dst[4200];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s/tmp/%s", dir, name);
	snprintf(dst, sizeof(dst), "%s/new/%s", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return -1;
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	if ((sync && fsync(fd) != 0) || close(fd) != 0)
		return -1;
	if (rename(tmp, dst) != 0)
		return -1;
	if (sync && dir_sync) {
		char nd[4200];
		snprintf(nd, sizeof(nd), "%s/new", dir);
		int dfd = open(nd, O_RDONLY | O_DIRECTORY);
		if (dfd < 0 || fsync(dfd) != 0)
			return -1;
		close(dfd);
	}
	return 0;
}

static void make_maildir(const char *dir)
{
	char p[4200];
	mkdir(dir, 0700);
	snprintf(p, sizeof(p), "%s/tmp", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/new", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/cur", dir);
	mkdir(p, 0700);
}

/* Times fsync-per-file delivery for at most limit seconds (0 = no limit); the
 * rest of the messages are then written without fsync, only so that the
 * bytes on disk of the whole Maildir can be measured. */
static int maildir_import(const char *mbox, const char *dir, double limit)
{
	int fd = open(mbox, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(mbox);
		return 1;
	}
	char *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	make_maildir(dir);
	struct mbox_reader r;
	struct mbox_msg m;
	char *buf = NULL;
	size_t cap = 0;
	long n = 0, timed_n = 0;
	uint64_t bytes = 0, timed_bytes = 0;
	double t0 = now(), timed = -1;
	mbox_reader_init(&r, map, (size_t)st.st_size);
	while (mbox_next(&r, &m) == 1) {
		char name[128];
		if (m.raw_len + 1 > cap) {
			cap = m.raw_len + 1;
			buf = realloc(buf, cap);
		}
		size_t len = mbox_unquote(MBOX_RD, m.raw, m.raw_len, buf);
		snprintf(name, sizeof(name), "%ld.M%ldP%d.bench", (long)time(NULL), n,
			 (int)getpid());
		if (write_durable_opt(dir, name, buf, len, timed < 0) != 0) {
			perror(name);
			return 1;
		}
		n++;
		bytes += len;
		if (timed < 0 && limit > 0 && now() - t0 > limit) {
			timed = now() - t0;
			timed_n = n;
			timed_bytes = bytes;
		}
	}
	if (timed < 0) {
		timed = now() - t0;
		timed_n = n;
		timed_bytes = bytes;
	}
	sync();
	printf("seconds=%.3f messages=%ld bytes=%llu total_messages=%ld total_bytes=%llu\n", timed,
	       timed_n, (unsigned long long)timed_bytes, n, (unsigned long long)bytes);
	return 0;
}

struct deliver_job {
	struct store *store;
	const char *dir;
	int writer;
	long count;
	int failed;
};

static void make_message(char *buf, size_t len, int writer, long i)
{
	int h = snprintf(
	    buf, len,
	    "From: bench@example.com\r\nTo: user@example.org\r\nSubject: delivery %d.%ld\r\n"
	    "Message-ID: <%d.%ld.%d@bench>\r\n\r\n",
	    writer, i, writer, i, (int)getpid());
	for (size_t k = (size_t)h; k < len; k++)
		buf[k] = (k % 73 == 72) ? '\n' : (char)('a' + (k * 7 + (size_t)i) % 26);
}

static void *deliver_store_thread(void *arg)
{
	struct deliver_job *j = arg;
	char msg[8192];
	uint8_t hash[STORE_HASH_LEN];
	for (long i = 0; i < j->count; i++) {
		struct store_rcpt rcpt = {.user = "bench", .mailbox = "INBOX"};
		make_message(msg, sizeof(msg), j->writer, i);
		if (store_deliver(j->store, msg, sizeof(msg), 0, &rcpt, 1, hash) != 0 ||
		    rcpt.result != 0) {
			j->failed = 1;
			break;
		}
	}
	return NULL;
}

static void *deliver_maildir_thread(void *arg)
{
	struct deliver_job *j = arg;
	char msg[8192], name[128];
	for (long i = 0; i < j->count; i++) {
		make_message(msg, sizeof(msg), j->writer, i);
		snprintf(name, sizeof(name), "%ld.M%dW%ldP%d.bench", (long)time(NULL), j->writer, i,
			 (int)getpid());
		if (write_durable(j->dir, name, msg, sizeof(msg)) != 0) {
			j->failed = 1;
			break;
		}
	}
	return NULL;
}

static int ensure_user(struct store_txn *txn, void *ctx)
{
	struct store_user u;
	(void)ctx;
	return store_user_ensure(txn, "bench", &u);
}

static int deliver(int to_store, const char *dir, int writers, long total)
{
	struct store *store = NULL;
	char err[256];
	pthread_t th[256];
	struct deliver_job jobs[256];

	if (writers < 1 || writers > 256)
		return 1;
	if (to_store) {
		mkdir(dir, 0700);
		struct store_options opt = {0};
		if (store_open(dir, &opt, &store, err, sizeof(err)) != 0) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		if (store_write(store, ensure_user, NULL) != 0)
			return 1;
	} else {
		make_maildir(dir);
	}
	double t0 = now();
	for (int w = 0; w < writers; w++) {
		jobs[w] = (struct deliver_job){store, dir, w, total / writers, 0};
		pthread_create(&th[w], NULL,
			       to_store ? deliver_store_thread : deliver_maildir_thread, &jobs[w]);
	}
	int failed = 0;
	for (int w = 0; w < writers; w++) {
		pthread_join(th[w], NULL);
		failed |= jobs[w].failed;
	}
	double secs = now() - t0;
	if (store != NULL)
		store_close(&store);
	if (failed) {
		fprintf(stderr, "a delivery failed\n");
		return 1;
	}
	long n = (total / writers) * writers;
	printf("seconds=%.3f messages=%ld bytes=%llu\n", secs, n, (unsigned long long)n * 8192);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "gen-mbox") == 0)
		return gen_mbox(argv[2], strtol(argv[3], NULL, 10), strtoull(argv[4], NULL, 10));
	if ((argc == 4 || argc == 5) && strcmp(argv[1], "maildir-import") == 0)
		return maildir_import(argv[2], argv[3], argc == 5 ? strtod(argv[4], NULL) : 0);
	if (argc == 5 && strcmp(argv[1], "deliver-store") == 0)
		return deliver(1, argv[2], (int)strtol(argv[3], NULL, 10),
			       strtol(argv[4], NULL, 10));
	if (argc == 5 && strcmp(argv[1], "deliver-maildir") == 0)
		return deliver(0, argv[2], (int)strtol(argv[3], NULL, 10),
			       strtol(argv[4], NULL, 10));
	if (argc == 5 && strcmp(argv[1], "deliver-maildir-dirsync") == 0) {
		dir_sync = 1;
		return deliver(0, argv[2], (int)strtol(argv[3], NULL, 10),
			       strtol(argv[4], NULL, 10));
	}
	fprintf(stderr, "usage: see the top of tests/bench/store/mkbench.c\n");
	return 2;
}
