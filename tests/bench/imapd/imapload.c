/* imapload — an IMAP load generator for the imapd benchmark (tests/bench/imapd/run.sh).
 *
 *   imapload load PORT USER PASS MAILBOX < file-list    APPEND each file (LITERAL+)
 *   imapload run PORT USER PASS MIX CLIENTS SECONDS       run a mix, print one result line
 *
 * Mixes: select, fetch, store, search, append, idle (time from an APPEND in one
 * session to the EXISTS it causes in another session's IDLE), resync (a phone:
 * connect, LOGIN, ENABLE QRESYNC, SELECT (QRESYNC ...), UID FETCH CHANGEDSINCE
 * VANISHED, LOGOUT, while a second session changes flags), mixed (select,
 * fetch, store, search, append at random). Prints
 *   ops=N secs=S ops_per_s=X p50_ms=A p90_ms=B p99_ms=C errors=E
 * Plain TCP to 127.0.0.1 (both servers allow plaintext LOGIN from there). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int port;
static const char *user, *pass;

struct conn {
	int fd;
	char buf[1 << 16];
	size_t len, pos;
	unsigned tag;
	char *resp;  /* the whole response of the last command */
	size_t rlen, rcap;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *m)
{
	fprintf(stderr, "imapload: %s\n", m);
	exit(1);
}

static int fill(struct conn *c)
{
	if (c->pos > 0) {
		memmove(c->buf, c->buf + c->pos, c->len - c->pos);
		c->len -= c->pos;
		c->pos = 0;
	}
	if (c->len == sizeof(c->buf))
		return 0;
	ssize_t n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
	if (n <= 0)
		return -1;
	c->len += (size_t)n;
	return 0;
}

static void rappend(struct conn *c, const char *p, size_t n)
{
	if (c->rlen + n + 1 > c->rcap) {
		c->rcap = (c->rlen + n + 1) * 2;
		c->resp = realloc(c->resp, c->rcap);
		if (!c->resp)
			die("oom");
	}
	memcpy(c->resp + c->rlen, p, n);
	c->rlen += n;
	c->resp[c->rlen] = 0;
}

/* Reads one line (and literals it announces) into resp; returns a pointer to the line start in resp. */
static long read_line(struct conn *c)
{
	long start = (long)c->rlen;
	for (;;) {
		char *nl = memchr(c->buf + c->pos, '\n', c->len - c->pos);
		if (!nl) {
			if (c->len - c->pos >= sizeof(c->buf) - 1) { /* long line: take what we have */
				rappend(c, c->buf + c->pos, c->len - c->pos);
				c->pos = c->len;
			}
			if (fill(c) < 0)
				return -1;
			continue;
		}
		size_t l = (size_t)(nl - (c->buf + c->pos)) + 1;
		rappend(c, c->buf + c->pos, l);
		c->pos += l;
		/* literal? */
		size_t e = c->rlen;
		if (e >= 4 && c->resp[e - 3] == '}') {
			size_t k = e - 4;
			while (k > 0 && c->resp[k] >= '0' && c->resp[k] <= '9')
				k--;
			if (c->resp[k] == '{') {
				size_t n = strtoul(c->resp + k + 1, NULL, 10);
				while (n > 0) {
					if (c->pos == c->len && fill(c) < 0)
						return -1;
					size_t take = c->len - c->pos < n ? c->len - c->pos : n;
					rappend(c, c->buf + c->pos, take);
					c->pos += take;
					n -= take;
				}
				continue;
			}
		}
		return start;
	}
}

static void sendall(struct conn *c, const void *p, size_t n)
{
	const char *q = p;
	while (n > 0) {
		ssize_t w = write(c->fd, q, n);
		if (w <= 0)
			die("write failed");
		q += w;
		n -= (size_t)w;
	}
}

/* Sends a command and reads to the tagged answer; returns 0 if OK. */
static int cmdv(struct conn *c, const void *extra, size_t extralen, const char *fmt, va_list ap)
{
	char line[8192], tag[16];
	snprintf(tag, sizeof(tag), "x%u", ++c->tag);
	int n = snprintf(line, sizeof(line), "%s ", tag);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	c->rlen = 0;
	if (extra) {
		sendall(c, line, (size_t)n);
		sendall(c, extra, extralen);
		sendall(c, "\r\n", 2);
	} else {
		line[n++] = '\r';
		line[n++] = '\n';
		sendall(c, line, (size_t)n);
	}
	size_t tl = strlen(tag);
	for (;;) {
		long s = read_line(c);
		if (s < 0)
			return -1;
		if (strncmp(c->resp + s, tag, tl) == 0 && c->resp[s + (long)tl] == ' ')
			return strncmp(c->resp + s + tl + 1, "OK", 2) == 0 ? 0 : -1;
	}
}

static int cmd(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int cmd(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = cmdv(c, NULL, 0, fmt, ap);
	va_end(ap);
	return r;
}

static int cmd_lit(struct conn *c, const void *d, size_t n, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int cmd_lit(struct conn *c, const void *d, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = cmdv(c, d, n, fmt, ap);
	va_end(ap);
	return r;
}

static struct conn *connect_login(void)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect failed");
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->rlen = 0;
	if (read_line(c) < 0)
		die("no greeting");
	if (cmd(c, "LOGIN %s %s", user, pass) != 0)
		die("login failed");
	return c;
}

static void conn_close(struct conn *c)
{
	cmd(c, "LOGOUT");
	close(c->fd);
	free(c->resp);
	free(c);
}

/* The number before " EXISTS" in the last response. */
static unsigned resp_exists(struct conn *c)
{
	const char *p = strstr(c->resp ? c->resp : "", " EXISTS");
	if (!p)
		return 0;
	while (p > c->resp && p[-1] >= '0' && p[-1] <= '9')
		p--;
	return (unsigned)strtoul(p, NULL, 10);
}

static unsigned long long resp_num(struct conn *c, const char *key)
{
	const char *p = strstr(c->resp ? c->resp : "", key);
	return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

/* --- the run ------------------------------------------------------------------ */

static const char *mix;
static double deadline;
static const char *words[] = {"money", "free", "meeting", "linux", "the", "offer", "re:", "update", "list", "new"};
static char append_msg[4096];
static size_t append_len;

struct worker {
	pthread_t th;
	unsigned seed;
	double *lat;
	size_t n, cap;
	unsigned errors;
	int id;
};

static void record(struct worker *w, double t)
{
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 4096;
		w->lat = realloc(w->lat, w->cap * sizeof(double));
	}
	w->lat[w->n++] = t;
}

static int one_op(struct worker *w, struct conn *c, const char *op, unsigned exists, int *flag)
{
	unsigned k = exists ? rand_r(&w->seed) % exists + 1 : 1;
	if (strcmp(op, "select") == 0)
		return cmd(c, "SELECT INBOX");
	if (strcmp(op, "fetch") == 0) {
		if (rand_r(&w->seed) % 2) {
			unsigned a = k > 20 ? k - 19 : 1;
			return cmd(c, "FETCH %u:%u (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODY.PEEK[HEADER.FIELDS (DATE FROM SUBJECT)])", a, k);
		}
		return cmd(c, "FETCH %u (BODYSTRUCTURE BODY.PEEK[])", k);
	}
	if (strcmp(op, "store") == 0) {
		*flag = !*flag;
		return cmd(c, "STORE %u %cFLAGS (\\Flagged)", k, *flag ? '+' : '-');
	}
	if (strcmp(op, "search") == 0) {
		if (rand_r(&w->seed) % 2)
			return cmd(c, "SEARCH SUBJECT \"%s\"", words[rand_r(&w->seed) % 10]);
		return cmd(c, "SEARCH UNSEEN FLAGGED");
	}
	if (strcmp(op, "append") == 0)
		return cmd_lit(c, append_msg, append_len, "APPEND Bench (\\Seen) {%zu+}\r\n", append_len);
	return -1;
}

static void *worker_main(void *p)
{
	struct worker *w = p;
	int flag = 0;
	if (strcmp(mix, "idle") == 0) {
		struct conn *a = connect_login(), *b = connect_login();
		char box[32];
		snprintf(box, sizeof(box), "Idle%d", w->id);
		cmd(b, "CREATE %s", box);
		if (cmd(a, "SELECT %s", box) != 0)
			die("select idle box");
		while (now() < deadline) {
			char tag[] = "idle";
			dprintf(a->fd, "%s IDLE\r\n", tag);
			a->rlen = 0;
			if (read_line(a) < 0 || a->resp[0] != '+')
				die("no idle continuation");
			double t0 = now();
			if (cmd_lit(b, append_msg, append_len, "APPEND %s {%zu+}\r\n", box, append_len) != 0)
				w->errors++;
			for (;;) { /* wait for EXISTS */
				a->rlen = 0;
				long s = read_line(a);
				if (s < 0)
					die("idle connection lost");
				if (strstr(a->resp, "EXISTS"))
					break;
			}
			record(w, now() - t0);
			dprintf(a->fd, "DONE\r\n");
			for (;;) {
				a->rlen = 0;
				if (read_line(a) < 0)
					die("idle done lost");
				if (strncmp(a->resp, "idle ", 5) == 0)
					break;
			}
		}
		conn_close(a);
		conn_close(b);
		return NULL;
	}
	if (strcmp(mix, "resync") == 0) {
		struct conn *changer = connect_login();
		cmd(changer, "ENABLE CONDSTORE");
		cmd(changer, "SELECT INBOX");
		unsigned exists = resp_exists(changer);
		if (exists == 0)
			die("empty INBOX");
		unsigned long long uv = resp_num(changer, "UIDVALIDITY "), ms = resp_num(changer, "HIGHESTMODSEQ ");
		while (now() < deadline) {
			for (int i = 0; i < 3; i++) {
				flag = !flag;
				cmd(changer, "STORE %u %cFLAGS (\\Seen)", rand_r(&w->seed) % exists + 1, flag ? '+' : '-');
			}
			double t0 = now();
			struct conn *c = connect_login();
			int bad = cmd(c, "ENABLE QRESYNC") != 0;
			bad |= cmd(c, "SELECT INBOX (QRESYNC (%llu %llu))", uv, ms) != 0;
			unsigned long long nms = resp_num(c, "HIGHESTMODSEQ ");
			bad |= cmd(c, "UID FETCH 1:* (FLAGS) (CHANGEDSINCE %llu VANISHED)", ms) != 0;
			conn_close(c);
			record(w, now() - t0);
			if (bad)
				w->errors++;
			if (nms)
				ms = nms;
		}
		conn_close(changer);
		return NULL;
	}
	struct conn *c = connect_login();
	if (cmd(c, "SELECT INBOX") != 0)
		die("select");
	unsigned exists = resp_exists(c);
	static const char *ops[] = {"select", "fetch", "fetch", "fetch", "store", "search", "append"};
	while (now() < deadline) {
		const char *op = strcmp(mix, "mixed") == 0 ? ops[rand_r(&w->seed) % 7] : mix;
		double t0 = now();
		if (one_op(w, c, op, exists, &flag) != 0)
			w->errors++;
		record(w, now() - t0);
	}
	conn_close(c);
	return NULL;
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 5)
		die("usage: imapload load|run PORT USER PASS ...");
	port = atoi(argv[2]);
	user = argv[3];
	pass = argv[4];
	size_t o = 0;
	o += (size_t)snprintf(append_msg, sizeof(append_msg),
			      "From: Bench <bench@example.org>\r\nTo: alice@example.org\r\nSubject: bench append\r\n"
			      "Message-ID: <bench@example.org>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\n");
	while (o + 80 < 3000)
		o += (size_t)snprintf(append_msg + o, sizeof(append_msg) - o, "%076zu\r\n", o);
	append_len = o;
	if (strcmp(argv[1], "load") == 0) {
		struct conn *c = connect_login();
		char path[4096];
		cmd(c, "CREATE %s", argv[5]);
		cmd(c, "CREATE Bench");
		unsigned n = 0;
		while (fgets(path, sizeof(path), stdin)) {
			path[strcspn(path, "\n")] = 0;
			FILE *f = fopen(path, "rb");
			if (!f)
				continue;
			static char data[16 << 20];
			size_t len = fread(data, 1, sizeof(data), f);
			fclose(f);
			if (len == 0)
				continue;
			if (cmd_lit(c, data, len, "APPEND %s {%zu+}\r\n", argv[5], len) != 0)
				die("append failed");
			n++;
		}
		/* warm both servers' caches the same way */
		cmd(c, "SELECT %s", argv[5]);
		cmd(c, "FETCH 1:* (UID FLAGS ENVELOPE BODYSTRUCTURE)");
		conn_close(c);
		printf("loaded=%u\n", n);
		return 0;
	}
	if (argc != 8)
		die("usage: imapload run PORT USER PASS MIX CLIENTS SECONDS");
	mix = argv[5];
	int clients = atoi(argv[6]);
	double secs = atof(argv[7]);
	struct worker *w = calloc((size_t)clients, sizeof(*w));
	double start = now();
	deadline = start + secs;
	for (int i = 0; i < clients; i++) {
		w[i].seed = (unsigned)(i * 7919 + 17);
		w[i].id = i;
		pthread_create(&w[i].th, NULL, worker_main, &w[i]);
	}
	size_t total = 0;
	unsigned errors = 0;
	for (int i = 0; i < clients; i++) {
		pthread_join(w[i].th, NULL);
		total += w[i].n;
		errors += w[i].errors;
	}
	double elapsed = now() - start;
	double *all = malloc((total + 1) * sizeof(double));
	size_t k = 0;
	for (int i = 0; i < clients; i++)
		for (size_t j = 0; j < w[i].n; j++)
			all[k++] = w[i].lat[j];
	qsort(all, total, sizeof(double), cmpd);
#define PCT(p) (total ? all[(size_t)((double)(total - 1) * (p))] * 1000 : 0)
	printf("ops=%zu secs=%.2f ops_per_s=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f errors=%u\n", total, elapsed,
	       total / elapsed, PCT(0.50), PCT(0.90), PCT(0.99), errors);
	return 0;
}
