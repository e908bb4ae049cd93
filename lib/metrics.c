/* metrics — shared counters and the last warnings (see metrics.h). */
#define _GNU_SOURCE 1
#include "lib/metrics.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"
#include "lib/xmalloc.h"

#define METRICS_MAGIC "mkmetric"
#define METRICS_VERSION 1

struct slot {
	uint32_t used; /* 1 once name and help are written (release/acquire) */
	uint32_t pad;
	uint64_t value;
	char name[METRICS_NAME_MAX];
	char help[METRICS_HELP_MAX];
};

struct note_slot {
	uint64_t seq; /* odd while being written */
	struct metrics_note note;
};

struct header {
	char magic[8];
	uint32_t version, nslots, nnotes, pad;
	uint64_t notes_next; /* notes written so far */
};

struct table {
	struct header h;
	struct slot slots[METRICS_SLOTS];
	struct note_slot notes[METRICS_NOTES];
};

struct metrics {
	pthread_mutex_t lock; /* flock is per open file: threads of one process need this too */
	int fd;
	int read_only;
	struct table *t;
};

static struct metrics *default_table;

int metrics_open(const char *path, const char *owner, int read_only, struct metrics **m_r,
		 char *err, size_t errsize)
{
	struct stat st;
	void *map = MAP_FAILED;
	int fd;

	*m_r = NULL;
	fd = open(path, (read_only ? O_RDONLY : O_RDWR | O_CREAT) | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!read_only && owner != NULL && *owner != 0 && geteuid() == 0) {
		/* root's, writable by mail_owner's group (as lib/anvil.c's table) */
		struct passwd pw, *pwp = NULL;
		char pwbuf[4096];
		if (getpwnam_r(owner, &pw, pwbuf, sizeof(pwbuf), &pwp) == 0 && pwp != NULL) {
			(void)!fchown(fd, 0, pw.pw_gid);
			(void)!fchmod(fd, 0664);
		}
	}
	/* one process at a time decides whether the file is started afresh */
	if (flock(fd, read_only ? LOCK_SH : LOCK_EX) < 0 || fstat(fd, &st) < 0) {
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if ((size_t)st.st_size != sizeof(struct table)) {
		if (read_only) {
			snprintf(err, errsize, "%s: not a table of this version", path);
			goto fail;
		}
		if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)sizeof(struct table)) < 0) {
			snprintf(err, errsize, "%s: %s", path, strerror(errno));
			goto fail;
		}
	}
	map = mmap(NULL, sizeof(struct table), read_only ? PROT_READ : PROT_READ | PROT_WRITE,
		   MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		snprintf(err, errsize, "%s: mmap: %s", path, strerror(errno));
		goto fail;
	}
	struct table *t = map;
	if (memcmp(t->h.magic, METRICS_MAGIC, 8) != 0 || t->h.version != METRICS_VERSION ||
	    t->h.nslots != METRICS_SLOTS || t->h.nnotes != METRICS_NOTES) {
		if (read_only) {
			snprintf(err, errsize, "%s: not a table of this version", path);
			goto fail;
		}
		memset(t, 0, sizeof(*t));
		memcpy(t->h.magic, METRICS_MAGIC, 8);
		t->h.version = METRICS_VERSION;
		t->h.nslots = METRICS_SLOTS;
		t->h.nnotes = METRICS_NOTES;
	}
	flock(fd, LOCK_UN);
	struct metrics *m = xcalloc(1, sizeof(*m));
	pthread_mutex_init(&m->lock, NULL);
	m->fd = fd;
	m->read_only = read_only;
	m->t = t;
	*m_r = m;
	return 0;
fail:
	if (map != MAP_FAILED)
		munmap(map, sizeof(struct table));
	close(fd);
	return -1;
}

void metrics_close(struct metrics **m)
{
	if (*m == NULL)
		return;
	if (default_table == *m)
		default_table = NULL;
	munmap((*m)->t, sizeof(struct table));
	pthread_mutex_destroy(&(*m)->lock);
	close((*m)->fd);
	free(*m);
	*m = NULL;
}

void metrics_set_default(struct metrics *m)
{
	default_table = m;
}

struct metrics *metrics_default(void)
{
	return default_table;
}

/* A series name as Prometheus reads it: [a-zA-Z_:][a-zA-Z0-9_:]*, then
 * optionally {label="value",...} with no '"', '\\' or newline in a value. */
static int series_valid(const char *s)
{
	const char *p = s;

	if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || *p == ':'))
		return 0;
	while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
	       *p == '_' || *p == ':')
		p++;
	if (*p == '\0')
		return 1;
	if (*p++ != '{')
		return 0;
	for (;;) {
		const char *k = p;
		while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		       (*p >= '0' && *p <= '9') || *p == '_')
			p++;
		if (p == k || *p++ != '=' || *p++ != '"')
			return 0;
		while (*p != '"' && *p != '\0' && *p != '\\' && *p != '\n')
			p++;
		if (*p++ != '"')
			return 0;
		if (*p == ',') {
			p++;
			continue;
		}
		return p[0] == '}' && p[1] == '\0';
	}
}

static struct slot *find(struct table *t, const char *series, size_t *free_r)
{
	*free_r = METRICS_SLOTS;
	for (size_t i = 0; i < METRICS_SLOTS; i++) {
		struct slot *s = &t->slots[i];
		if (!__atomic_load_n(&s->used, __ATOMIC_ACQUIRE)) {
			*free_r = i; /* slots are taken in order: none is used after a free one */
			return NULL;
		}
		if (strcmp(s->name, series) == 0)
			return s;
	}
	return NULL;
}

static void add(struct metrics *m, const char *series, const char *help, uint64_t n, int nested)
{
	size_t free_i;

	if (m == NULL || m->read_only)
		return;
	struct slot *s = find(m->t, series, &free_i);
	if (s == NULL) {
		if (strlen(series) >= METRICS_NAME_MAX || !series_valid(series)) {
			if (!nested)
				add(m, "mailkeep_metrics_dropped_total",
				    "counts not kept (a bad name or a full table)", 1, 1);
			return;
		}
		pthread_mutex_lock(&m->lock);
		flock(m->fd, LOCK_EX);
		s = find(m->t, series, &free_i); /* made by another meanwhile? */
		if (s == NULL && free_i < METRICS_SLOTS) {
			s = &m->t->slots[free_i];
			mk_strlcpy(s->name, series, sizeof(s->name));
			mk_strlcpy(s->help, help != NULL ? help : "", sizeof(s->help));
			__atomic_store_n(&s->used, 1, __ATOMIC_RELEASE);
		}
		flock(m->fd, LOCK_UN);
		pthread_mutex_unlock(&m->lock);
		if (s == NULL) {
			if (!nested)
				add(m, "mailkeep_metrics_dropped_total",
				    "counts not kept (a bad name or a full table)", 1, 1);
			return;
		}
	}
	__atomic_fetch_add(&s->value, n, __ATOMIC_RELAXED);
}

void metrics_add(struct metrics *m, const char *series, const char *help, uint64_t n)
{
	add(m, series, help, n, 0);
}

void metrics_count(const char *series, const char *help, uint64_t n)
{
	add(default_table, series, help, n, 0);
}

void metrics_note(struct metrics *m, const char *who, const char *text)
{
	if (m == NULL || m->read_only)
		return;
	uint64_t k = __atomic_fetch_add(&m->t->h.notes_next, 1, __ATOMIC_RELAXED);
	struct note_slot *ns = &m->t->notes[k % METRICS_NOTES];
	__atomic_store_n(&ns->seq, 2 * k + 1, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	ns->note.time = (int64_t)time(NULL);
	mk_strlcpy(ns->note.who, who, sizeof(ns->note.who));
	mk_strlcpy(ns->note.text, text, sizeof(ns->note.text));
	__atomic_store_n(&ns->seq, 2 * k + 2, __ATOMIC_RELEASE);
}

void metrics_log_hook(int priority, const char *ident, const char *text)
{
	if (priority <= LOG_WARNING)
		metrics_note(default_table, ident, text);
}

size_t metrics_snapshot(struct metrics *m, struct metrics_value *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < METRICS_SLOTS; i++) {
		struct slot *s = &m->t->slots[i];
		if (!__atomic_load_n(&s->used, __ATOMIC_ACQUIRE))
			break;
		if (n < max) {
			mk_strlcpy(out[n].name, s->name, sizeof(out[n].name));
			mk_strlcpy(out[n].help, s->help, sizeof(out[n].help));
			out[n].value = __atomic_load_n(&s->value, __ATOMIC_RELAXED);
		}
		n++;
	}
	return n;
}

uint64_t metrics_get(struct metrics *m, const char *series)
{
	size_t free_i;
	struct slot *s = m != NULL ? find(m->t, series, &free_i) : NULL;
	return s != NULL ? __atomic_load_n(&s->value, __ATOMIC_RELAXED) : 0;
}

size_t metrics_notes(struct metrics *m, struct metrics_note *out, size_t max)
{
	uint64_t next = __atomic_load_n(&m->t->h.notes_next, __ATOMIC_ACQUIRE);
	size_t n = 0;

	for (uint64_t k = next; k > 0 && n < max && next - k < METRICS_NOTES; k--) {
		struct note_slot *ns = &m->t->notes[(k - 1) % METRICS_NOTES];
		uint64_t seq = __atomic_load_n(&ns->seq, __ATOMIC_ACQUIRE);
		if (seq != 2 * (k - 1) + 2)
			continue; /* being written, or overwritten meanwhile */
		out[n] = ns->note;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (__atomic_load_n(&ns->seq, __ATOMIC_ACQUIRE) != seq)
			continue;
		out[n].who[sizeof(out[n].who) - 1] = '\0';
		out[n].text[sizeof(out[n].text) - 1] = '\0';
		n++;
	}
	return n;
}

/* The family of a series: its name before '{'. */
static size_t family_len(const char *name)
{
	const char *b = strchr(name, '{');
	return b != NULL ? (size_t)(b - name) : strlen(name);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct metrics_value *)a)->name,
		      ((const struct metrics_value *)b)->name);
}

void metrics_write_text(const struct metrics_value *v, size_t n, FILE *out)
{
	struct metrics_value *s = xcalloc(n > 0 ? n : 1, sizeof(*s));

	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), by_name);
	for (size_t i = 0; i < n; i++) {
		size_t fl = family_len(s[i].name);
		if (i == 0 || family_len(s[i - 1].name) != fl ||
		    strncmp(s[i - 1].name, s[i].name, fl) != 0) {
			fprintf(out, "# HELP %.*s ", (int)fl, s[i].name);
			for (const char *h = s[i].help; *h; h++) /* escape as the format asks */
				if (*h == '\\')
					fputs("\\\\", out);
				else if (*h == '\n')
					fputs("\\n", out);
				else
					fputc(*h, out);
			fprintf(out, "\n# TYPE %.*s counter\n", (int)fl, s[i].name);
		}
		fprintf(out, "%s %llu\n", s[i].name, (unsigned long long)s[i].value);
	}
	free(s);
}
