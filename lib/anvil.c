/* anvil — the shared table of client counts and penalties (see lib/anvil.h).
 *
 * Layout of the file: a header (magic, version, boot id, the robust
 * process-shared mutex, one pid and event counters per column), then
 * ANVIL_NETS network entries and ANVIL_USERS user entries, each an open
 * hash table with linear probing over a bounded window. When a window is full,
 * the entry seen longest ago that holds no connection and no attempt in
 * flight is reused (a known network last): the tables cannot be grown by an
 * attacker, only churned.
 */
#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/anvil.h"
#include "lib/util.h"
#include "lib/xmalloc.h"

#define ANVIL_MAGIC "MKANVIL"
#define ANVIL_VERSION 1
#define ANVIL_NETS 16384
#define ANVIL_USERS 4096
#define PROBE 32
#define CHECK_MAX 60.0	    /* an attempt in flight longer than this is taken as dead */
#define FAILURE_MEMORY 3600 /* failures older than this are forgotten (as imapd did) */

struct penalty {
	uint32_t failures;
	int32_t busy_pid; /* the process checking it */
	double last_failure;
	double next_turn;  /* no check before this */
	double busy_until; /* an attempt is being checked until at most this */
};

struct net_entry {
	uint8_t used, family, prefix, pad;
	uint8_t addr[16];
	uint32_t conns[ANVIL_COLUMNS];
	uint32_t rate_count, rate_prev;
	double rate_start;
	double known_until;
	double last_seen;
	struct penalty pen;
};

struct user_entry {
	uint8_t used, pad[7];
	uint64_t hash;
	char name[ANVIL_USER_MAX];
	double last_seen;
	struct penalty pen;
	double win_start;
	uint32_t win_count, pad2;
	double locked_until;
};

struct header {
	char magic[8];
	uint32_t version, nnets, nusers, pad;
	char boot_id[48];
	pthread_mutex_t lock;
	int32_t column_pid[ANVIL_COLUMNS];
	uint64_t events[ANVIL_COLUMNS][ANVIL_EV_COUNT];
};

struct anvil {
	struct anvil_settings s;
	int column;
	int fd;
	size_t size;
	struct header *h;
	struct net_entry *nets;
	struct user_entry *users;
};

/* ---- keys ---- */

int anvil_key_parse(const char *addr, const struct anvil_settings *s, struct anvil_key *k_r)
{
	struct anvil_key k;
	char buf[INET6_ADDRSTRLEN + 2];
	size_t len = strlen(addr);

	memset(&k, 0, sizeof(k));
	if (len >= 2 && addr[0] == '[' && addr[len - 1] == ']') {
		addr++;
		len -= 2;
	}
	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, addr, len);
	buf[len] = 0;
	if (inet_pton(AF_INET, buf, k.addr) == 1) {
		k.family = 4;
		k.prefix = (uint8_t)s->ipv4_prefix;
	} else if (inet_pton(AF_INET6, buf, k.addr) == 1) {
		static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		if (memcmp(k.addr, v4mapped, 12) == 0) {
			memmove(k.addr, k.addr + 12, 4);
			memset(k.addr + 4, 0, 12);
			k.family = 4;
			k.prefix = (uint8_t)s->ipv4_prefix;
		} else {
			k.family = 6;
			k.prefix = (uint8_t)s->ipv6_prefix;
		}
	} else {
		return -1;
	}
	int bits = k.family == 4 ? 32 : 128;
	if (k.prefix > bits)
		k.prefix = (uint8_t)bits;
	for (int i = k.prefix; i < 128; i++)
		k.addr[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
	*k_r = k;
	return 0;
}

void anvil_key_str(const struct anvil_key *k, char *out, size_t size)
{
	char a[INET6_ADDRSTRLEN];
	int full = k->family == 4 ? 32 : 128;

	if (inet_ntop(k->family == 4 ? AF_INET : AF_INET6, k->addr, a, sizeof(a)) == NULL)
		mk_strlcpy(a, "?", sizeof(a));
	if (k->prefix == full)
		snprintf(out, size, "%s", a);
	else
		snprintf(out, size, "%s/%u", a, k->prefix);
}

static uint64_t fnv(const void *data, size_t len, uint64_t h)
{
	const uint8_t *p = data;
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

/* ---- the file ---- */

static void read_boot_id(char *out, size_t size)
{
	char *text = NULL;
	size_t len = 0;

	out[0] = 0;
	if (mk_read_file("/proc/sys/kernel/random/boot_id", 128, &text, &len) == 0) {
		while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
			text[--len] = 0;
		mk_strlcpy(out, text, size);
	}
	free(text);
}

static int init_lock(pthread_mutex_t *m)
{
	pthread_mutexattr_t at;

	if (pthread_mutexattr_init(&at) != 0)
		return -1;
	pthread_mutexattr_setpshared(&at, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST);
	int rc = pthread_mutex_init(m, &at);
	pthread_mutexattr_destroy(&at);
	return rc == 0 ? 0 : -1;
}

static void lock(struct anvil *a)
{
	int rc = pthread_mutex_lock(&a->h->lock);
	/* a process died holding it: the counters may be one step off, no more */
	if (rc == EOWNERDEAD)
		pthread_mutex_consistent(&a->h->lock);
}

static void unlock(struct anvil *a)
{
	pthread_mutex_unlock(&a->h->lock);
}

int anvil_open(const char *path, const struct anvil_settings *s, int column, const char *owner,
	       struct anvil **a_r, char *err, size_t errsize)
{
	size_t size = sizeof(struct header) + ANVIL_NETS * sizeof(struct net_entry) +
		      ANVIL_USERS * sizeof(struct user_entry);
	char boot[48];
	struct stat st;
	int fd = -1;
	void *map = MAP_FAILED;

	*a_r = NULL;
	read_boot_id(boot, sizeof(boot));
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (owner != NULL && *owner != 0 && geteuid() == 0) {
		struct passwd pw, *pwp = NULL;
		char pwbuf[4096];
		if (getpwnam_r(owner, &pw, pwbuf, sizeof(pwbuf), &pwp) == 0 && pwp != NULL)
			(void)!fchown(fd, pw.pw_uid, pw.pw_gid);
	}
	/* one process at a time decides whether the file must be started afresh */
	if (flock(fd, LOCK_EX) < 0 || fstat(fd, &st) < 0) {
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		goto fail;
	}
	int fresh = (size_t)st.st_size != size;
	if (fresh && ftruncate(fd, 0) == 0 && ftruncate(fd, (off_t)size) < 0) {
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		goto fail;
	}
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		snprintf(err, errsize, "%s: mmap: %s", path, strerror(errno));
		goto fail;
	}
	struct header *h = map;
	if (fresh || memcmp(h->magic, ANVIL_MAGIC, sizeof(ANVIL_MAGIC)) != 0 ||
	    h->version != ANVIL_VERSION || h->nnets != ANVIL_NETS || h->nusers != ANVIL_USERS ||
	    strcmp(h->boot_id, boot) != 0) {
		/* new, another layout, or written before this boot (its monotonic
		 * times mean nothing now) */
		memset(map, 0, size);
		memcpy(h->magic, ANVIL_MAGIC, sizeof(ANVIL_MAGIC));
		h->version = ANVIL_VERSION;
		h->nnets = ANVIL_NETS;
		h->nusers = ANVIL_USERS;
		mk_strlcpy(h->boot_id, boot, sizeof(h->boot_id));
		if (init_lock(&h->lock) < 0) {
			snprintf(err, errsize, "%s: cannot set up the shared lock", path);
			goto fail;
		}
	}
	flock(fd, LOCK_UN);

	struct anvil *a = xcalloc(1, sizeof(*a));
	a->s = *s;
	a->column = column;
	a->fd = fd;
	a->size = size;
	a->h = h;
	a->nets = (struct net_entry *)(h + 1);
	a->users = (struct user_entry *)(a->nets + ANVIL_NETS);
	if (column >= 0 && column < ANVIL_COLUMNS) {
		/* our earlier incarnation's connections are gone */
		lock(a);
		for (size_t i = 0; i < ANVIL_NETS; i++)
			a->nets[i].conns[column] = 0;
		h->column_pid[column] = (int32_t)getpid();
		unlock(a);
	} else {
		a->column = -1;
	}
	*a_r = a;
	return 0;
fail:
	if (map != MAP_FAILED)
		munmap(map, size);
	close(fd);
	return -1;
}

void anvil_close(struct anvil **ap)
{
	struct anvil *a = *ap;

	if (a == NULL)
		return;
	if (a->column >= 0) {
		lock(a);
		for (size_t i = 0; i < ANVIL_NETS; i++)
			a->nets[i].conns[a->column] = 0;
		if (a->h->column_pid[a->column] == (int32_t)getpid())
			a->h->column_pid[a->column] = 0;
		unlock(a);
	}
	munmap(a->h, a->size);
	close(a->fd);
	free(a);
	*ap = NULL;
}

/* ---- entries ---- */

static int net_busy(const struct net_entry *e, double now)
{
	for (int c = 0; c < ANVIL_COLUMNS; c++)
		if (e->conns[c] != 0)
			return 1;
	return e->pen.busy_until > now;
}

/* The entry of k (made if create), or NULL. Under the lock. */
static struct net_entry *net_find(struct anvil *a, const struct anvil_key *k, int create)
{
	uint64_t hv = fnv(k->addr, 16, fnv(&k->family, 2, 0xcbf29ce484222325ULL));
	size_t start = (size_t)(hv % ANVIL_NETS);
	struct net_entry *empty = NULL, *victim = NULL;
	double now = mk_monotonic();

	for (size_t i = 0; i < PROBE; i++) {
		struct net_entry *e = &a->nets[(start + i) % ANVIL_NETS];
		if (!e->used) {
			if (empty == NULL)
				empty = e;
			continue;
		}
		if (e->family == k->family && e->prefix == k->prefix &&
		    memcmp(e->addr, k->addr, 16) == 0)
			return e;
		if (net_busy(e, now))
			continue;
		/* prefer to forget a network that is not known, then the oldest */
		int e_known = e->known_until > now;
		if (victim == NULL || (victim->known_until > now && !e_known) ||
		    ((victim->known_until > now) == e_known && e->last_seen < victim->last_seen))
			victim = e;
	}
	if (!create)
		return NULL;
	struct net_entry *e = empty ? empty : victim;
	if (e == NULL)
		return NULL; /* all PROBE entries busy: not counted (never refused for it) */
	memset(e, 0, sizeof(*e));
	e->used = 1;
	e->family = k->family;
	e->prefix = k->prefix;
	memcpy(e->addr, k->addr, 16);
	e->last_seen = now;
	return e;
}

/* The user key: lower-cased, at most ANVIL_USER_MAX - 1 bytes kept, hashed whole. */
static void user_norm(const char *user, char *out, uint64_t *hash_r)
{
	size_t n = strlen(user), i;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (i = 0; i < n; i++) {
		char c = user[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		h = (h ^ (uint8_t)c) * 0x100000001b3ULL;
		if (i < ANVIL_USER_MAX - 1)
			out[i] = c;
	}
	out[i < ANVIL_USER_MAX - 1 ? i : ANVIL_USER_MAX - 1] = 0;
	*hash_r = h;
}

static struct user_entry *user_find(struct anvil *a, const char *user, int create)
{
	char name[ANVIL_USER_MAX];
	uint64_t hv;
	struct user_entry *empty = NULL, *victim = NULL;
	double now = mk_monotonic();

	user_norm(user, name, &hv);
	size_t start = (size_t)(hv % ANVIL_USERS);
	for (size_t i = 0; i < PROBE; i++) {
		struct user_entry *e = &a->users[(start + i) % ANVIL_USERS];
		if (!e->used) {
			if (empty == NULL)
				empty = e;
			continue;
		}
		if (e->hash == hv && strcmp(e->name, name) == 0)
			return e;
		if (e->pen.busy_until > now)
			continue;
		if (victim == NULL || e->last_seen < victim->last_seen)
			victim = e;
	}
	if (!create)
		return NULL;
	struct user_entry *e = empty ? empty : victim;
	if (e == NULL)
		return NULL;
	memset(e, 0, sizeof(*e));
	e->used = 1;
	e->hash = hv;
	memcpy(e->name, name, sizeof(e->name));
	e->last_seen = now;
	return e;
}

/* ---- connections ---- */

static double rate_now(struct net_entry *e, double unit, double now)
{
	double age = now - e->rate_start;

	if (age >= unit) {
		/* a new window: the last one's count fades out over this one */
		e->rate_prev = age < 2 * unit ? e->rate_count : 0;
		e->rate_count = 0;
		e->rate_start = now;
		age = 0;
	}
	return e->rate_count + e->rate_prev * (1.0 - age / unit);
}

void anvil_connect(struct anvil *a, const struct anvil_key *k, struct anvil_client *c_r)
{
	double now = mk_monotonic();

	memset(c_r, 0, sizeof(*c_r));
	lock(a);
	struct net_entry *e = net_find(a, k, 1);
	if (e != NULL) {
		e->last_seen = now;
		rate_now(e, a->s.rate_unit, now);
		e->rate_count++;
		c_r->rate = rate_now(e, a->s.rate_unit, now);
		if (a->column >= 0)
			e->conns[a->column]++;
		for (int c = 0; c < ANVIL_COLUMNS; c++)
			c_r->conns += e->conns[c];
		c_r->known = e->known_until > now;
	}
	unlock(a);
}

void anvil_disconnect(struct anvil *a, const struct anvil_key *k)
{
	if (a->column < 0)
		return;
	lock(a);
	struct net_entry *e = net_find(a, k, 0);
	if (e != NULL && e->conns[a->column] > 0)
		e->conns[a->column]--;
	unlock(a);
}

int anvil_known(struct anvil *a, const struct anvil_key *k)
{
	int known = 0;

	lock(a);
	struct net_entry *e = net_find(a, k, 0);
	if (e != NULL)
		known = e->known_until > mk_monotonic();
	unlock(a);
	return known;
}

void anvil_event(struct anvil *a, enum anvil_event ev)
{
	if (a->column < 0 || ev >= ANVIL_EV_COUNT)
		return;
	lock(a);
	a->h->events[a->column][ev]++;
	unlock(a);
}

/* ---- the penalty ---- */

double anvil_penalty(const struct anvil_settings *s, unsigned n)
{
	double d = s->penalty;

	if (n == 0 || d <= 0)
		return 0;
	for (unsigned i = 1; i < n && d < s->penalty_max; i++)
		d *= 2;
	return d > s->penalty_max ? s->penalty_max : d;
}

static void penalty_age(struct penalty *p, double now)
{
	if (p->failures != 0 && now - p->last_failure > FAILURE_MEMORY)
		p->failures = 0;
	/* a checker that died, or hangs */
	if (p->busy_until != 0 && (p->busy_until <= now ||
				   (p->busy_pid > 0 && kill(p->busy_pid, 0) < 0 && errno == ESRCH)))
		p->busy_until = 0;
}

/* Seconds until the penalty of p's last failure has passed (0: now). */
static double penalty_wait(const struct penalty *p, double now)
{
	return p->next_turn > now ? p->next_turn - now : 0;
}

enum anvil_turn anvil_auth_begin(struct anvil *a, const struct anvil_key *k, const char *user,
				 double waited, struct anvil_auth *r)
{
	double now = mk_monotonic();
	enum anvil_turn turn;

	memset(r, 0, sizeof(*r));
	lock(a);
	struct net_entry *n = k ? net_find(a, k, 1) : NULL;
	struct user_entry *u = user && *user ? user_find(a, user, 1) : NULL;
	int known = n != NULL && n->known_until > now;
	if (n != NULL) {
		penalty_age(&n->pen, now);
		n->last_seen = now;
		r->net_failures = n->pen.failures;
	}
	if (u != NULL) {
		penalty_age(&u->pen, now);
		u->last_seen = now;
		r->user_failures = u->pen.failures;
	}
	if (u != NULL && !known && u->locked_until > now) {
		r->locked_for = u->locked_until - now;
		turn = ANVIL_LOCKED;
		goto out;
	}
	double w = n != NULL ? penalty_wait(&n->pen, now) : 0;
	int busy = n != NULL && n->pen.busy_until > now;
	if (u != NULL && !known) {
		double wu = penalty_wait(&u->pen, now);
		if (wu > w)
			w = wu;
		busy |= u->pen.busy_until > now;
	}
	/* at most two penalties of waiting: past that, a client is queueing
	 * attempts faster than they can be checked. Only a network or user with
	 * failures is refused: attempts that merely queue behind each other's
	 * checks (many connections logging in at once with a right password)
	 * wait their turn, however long the queue. */
	double limit = 2 * a->s.penalty_max + 1;
	unsigned failures = r->net_failures;
	if (u != NULL && !known && r->user_failures > failures)
		failures = r->user_failures;
	if (busy || w > 0) {
		if (failures > 0 && (waited + w > limit || (busy && waited > limit))) {
			turn = ANVIL_BUSY;
			goto out;
		}
		/* an attempt in flight: look again soon after it ends */
		r->wait = busy ? 0.1 : w;
		turn = ANVIL_WAIT;
		goto out;
	}
	if (n != NULL) {
		n->pen.busy_until = now + CHECK_MAX;
		n->pen.busy_pid = (int32_t)getpid();
	}
	if (u != NULL && !known) {
		u->pen.busy_until = now + CHECK_MAX;
		u->pen.busy_pid = (int32_t)getpid();
	}
	turn = ANVIL_GO;
out:
	unlock(a);
	return turn;
}

void anvil_auth_end(struct anvil *a, const struct anvil_key *k, const char *user, int ok,
		    int tempfail, struct anvil_auth *r)
{
	double now = mk_monotonic();

	memset(r, 0, sizeof(*r));
	lock(a);
	struct net_entry *n = k ? net_find(a, k, 1) : NULL;
	struct user_entry *u = user && *user ? user_find(a, user, 1) : NULL;
	int known = n != NULL && n->known_until > now;
	if (n != NULL) {
		n->pen.busy_until = 0;
		if (ok) {
			memset(&n->pen, 0, sizeof(n->pen));
			n->known_until = now + a->s.known_time;
		} else if (!tempfail) {
			n->pen.failures++;
			n->pen.last_failure = now;
			n->pen.next_turn = now + anvil_penalty(&a->s, n->pen.failures);
		}
		r->net_failures = n->pen.failures;
	}
	if (u != NULL) {
		if (!known || ok)
			u->pen.busy_until = 0;
		if (ok) {
			memset(&u->pen, 0, sizeof(u->pen));
			u->win_count = 0;
			u->locked_until = 0;
		} else if (!tempfail) {
			u->pen.failures++;
			u->pen.last_failure = now;
			if (!known)
				u->pen.next_turn = now + anvil_penalty(&a->s, u->pen.failures);
			if (now - u->win_start > a->s.lockout_window) {
				u->win_start = now;
				u->win_count = 0;
			}
			u->win_count++;
			if (a->s.lockout_failures > 0 && u->win_count >= a->s.lockout_failures &&
			    !known) {
				u->locked_until = now + a->s.lockout_window;
				r->locked_for = a->s.lockout_window;
			}
		}
		r->user_failures = u->pen.failures;
	}
	unlock(a);
}

/* ---- status ---- */

int anvil_snapshot(struct anvil *a, struct anvil_net_info *nets, size_t max_nets, size_t *nnets_r,
		   struct anvil_user_info *users, size_t max_users, size_t *nusers_r,
		   struct anvil_column_info cols[ANVIL_COLUMNS])
{
	double now = mk_monotonic();
	size_t nn = 0, nu = 0;

	lock(a);
	for (size_t i = 0; i < ANVIL_NETS && nn < max_nets; i++) {
		struct net_entry *e = &a->nets[i];
		if (!e->used)
			continue;
		penalty_age(&e->pen, now);
		struct anvil_net_info *o = &nets[nn];
		memset(o, 0, sizeof(*o));
		o->key.family = e->family;
		o->key.prefix = e->prefix;
		memcpy(o->key.addr, e->addr, 16);
		unsigned total = 0;
		for (int c = 0; c < ANVIL_COLUMNS; c++)
			total += o->conns[c] = e->conns[c];
		double age = now - e->rate_start;
		o->rate = age >= 2 * a->s.rate_unit ? 0
			  : age >= a->s.rate_unit
			      ? e->rate_count * (1.0 - (age - a->s.rate_unit) / a->s.rate_unit)
			      : e->rate_count + e->rate_prev * (1.0 - age / a->s.rate_unit);
		o->failures = e->pen.failures;
		o->penalty_left = penalty_wait(&e->pen, now);
		o->known_left = e->known_until > now ? e->known_until - now : 0;
		if (total > 0 || o->failures > 0 || o->penalty_left > 0 || o->rate >= 1)
			nn++;
	}
	for (size_t i = 0; i < ANVIL_USERS && nu < max_users; i++) {
		struct user_entry *e = &a->users[i];
		if (!e->used)
			continue;
		penalty_age(&e->pen, now);
		struct anvil_user_info *o = &users[nu];
		memset(o, 0, sizeof(*o));
		memcpy(o->name, e->name, sizeof(o->name));
		o->failures = e->pen.failures;
		o->penalty_left = penalty_wait(&e->pen, now);
		o->locked_left = e->locked_until > now ? e->locked_until - now : 0;
		if (o->failures > 0 || o->penalty_left > 0 || o->locked_left > 0)
			nu++;
	}
	for (int c = 0; c < ANVIL_COLUMNS; c++) {
		cols[c].pid = a->h->column_pid[c];
		for (int ev = 0; ev < ANVIL_EV_COUNT; ev++)
			cols[c].events[ev] = (unsigned long)a->h->events[c][ev];
	}
	unlock(a);
	*nnets_r = nn;
	*nusers_r = nu;
	return 0;
}
