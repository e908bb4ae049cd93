/* ldap-probe — drives mailkeep's LDAP directory backend for the integration
 * tests, opened exactly as the daemons open it (index/dir_ldap.h).
 *
 *   ldap-probe [-c mailkeep.conf] USER_DIRECTORY      e.g. ldap:/tmp/x/ldap-users.cf
 *
 * Reads one command per line (words separated by tabs) and answers one line:
 *   lookup ADDRESS | user NAME | auth LOGIN PASSWORD
 *       -> "OK name=.. mail=.. uid=.. gid=.. dn=.." | "NOTFOUND" | "BADPASS" | "TEMPFAIL <error>"
 *   list                -> "LIST name,name,..." (sorted as the server sends them)
 *   stats               -> "STATS searches=.. binds=.. cache_hits=.. connects=.. failures=.."
 *   sleep SECONDS       -> "SLEPT"
 *   repeat N ADDRESS    -> N lookups of ADDRESS: "REPEAT ok=.. other=.. seconds=.."
 *   threads N M         -> N threads, M rounds each of lookups and logins with known
 *                          answers: "THREADS ok=.. wrong=.. tempfail=.."
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "index/dir.h"
#include "index/dir_ldap.h"
#include "index/params.h"

static struct directory *dir;

static void print_result(enum dir_result r, const struct dir_user *u)
{
	switch (r) {
	case DIR_OK:
		printf("OK name=%s mail=%s uid=%u gid=%u dn=%s\n", u->name, u->mail, (unsigned)u->uid,
		       (unsigned)u->gid, u->dn);
		break;
	case DIR_NOTFOUND:
		printf("NOTFOUND\n");
		break;
	case DIR_BADPASS:
		printf("BADPASS\n");
		break;
	case DIR_TEMPFAIL:
		printf("TEMPFAIL %s\n", dir_error());
		break;
	default:
		printf("ERROR %d %s\n", (int)r, dir_error());
		break;
	}
}

static char list_out[65536];

static int list_cb(const struct dir_user *u, void *ctx)
{
	size_t len = strlen(list_out);

	(void)ctx;
	snprintf(list_out + len, sizeof list_out - len, "%s%s", len > 0 ? "," : "", u->name);
	return 0;
}

struct round_stats {
	int rounds, ok, wrong, tempfail;
};

static void check(struct round_stats *st, enum dir_result got, enum dir_result want, const struct dir_user *u,
		  const char *name)
{
	if (got == DIR_TEMPFAIL)
		st->tempfail++;
	else if (got == want && (want != DIR_OK || strcmp(u->name, name) == 0))
		st->ok++;
	else
		st->wrong++;
}

static void *worker(void *arg)
{
	struct round_stats *st = arg;
	struct dir_user u;

	for (int i = 0; i < st->rounds; i++) {
		memset(&u, 0, sizeof u);
		check(st, dir_lookup_address(dir, "bob@example.org", &u), DIR_OK, &u, "bob");
		check(st, dir_lookup_address(dir, "robert@example.org", &u), DIR_OK, &u, "bob");
		check(st, dir_lookup_address(dir, "nobody@example.org", &u), DIR_NOTFOUND, &u, "");
		check(st, dir_get_user(dir, "alice", &u), DIR_OK, &u, "alice");
		check(st, dir_authenticate(dir, "bob", "bobs-secret", &u), DIR_OK, &u, "bob");
		check(st, dir_authenticate(dir, "dave@example.org", "wrong", &u), DIR_BADPASS, &u, "");
		check(st, dir_authenticate(dir, "alice", "wonder land!", &u), DIR_OK, &u, "alice");
	}
	return NULL;
}

static void run_threads(int n, int m)
{
	pthread_t th[64];
	struct round_stats st[64];
	int ok = 0, wrong = 0, tempfail = 0;

	if (n < 1 || n > 64 || m < 1 || m > 100000) {
		printf("ERROR bad thread counts\n");
		return;
	}
	for (int i = 0; i < n; i++) {
		memset(&st[i], 0, sizeof st[i]);
		st[i].rounds = m;
		pthread_create(&th[i], NULL, worker, &st[i]);
	}
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		ok += st[i].ok;
		wrong += st[i].wrong;
		tempfail += st[i].tempfail;
	}
	printf("THREADS ok=%d wrong=%d tempfail=%d\n", ok, wrong, tempfail);
}

int main(int argc, char **argv)
{
	const char *conf = NULL;
	struct config *cfg;
	char err[512], line[8192];
	int opt;

	signal(SIGPIPE, SIG_IGN);
	while ((opt = getopt(argc, argv, "c:")) != -1) {
		if (opt == 'c')
			conf = optarg;
		else
			return 2;
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "usage: ldap-probe [-c mailkeep.conf] ldap[:/path/file.cf]\n");
		return 2;
	}
	cfg = params_load(conf, err, sizeof err);
	if (cfg == NULL) {
		fprintf(stderr, "ldap-probe: %s\n", err);
		return 1;
	}
	if (dir_ldap_open_config(cfg, argv[optind], &dir, err, sizeof err) < 0) {
		printf("OPENFAIL %s\n", err);
		config_free(&cfg);
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof line, stdin) != NULL) {
		char *words[3] = {NULL, NULL, NULL};
		char *w;
		struct dir_user u;
		int n = 0;

		line[strcspn(line, "\n")] = '\0';
		/* tabs separate words; empty words count (an empty password) */
		for (w = line; n < 3; n++) {
			words[n] = w;
			w = strchr(w, '\t');
			if (w == NULL) {
				n++;
				break;
			}
			*w++ = '\0';
		}
		memset(&u, 0, sizeof u);
		if (strcmp(words[0], "lookup") == 0 && n == 2) {
			print_result(dir_lookup_address(dir, words[1], &u), &u);
		} else if (strcmp(words[0], "user") == 0 && n == 2) {
			print_result(dir_get_user(dir, words[1], &u), &u);
		} else if (strcmp(words[0], "auth") == 0 && n == 3) {
			print_result(dir_authenticate(dir, words[1], words[2], &u), &u);
		} else if (strcmp(words[0], "list") == 0) {
			enum dir_result r;

			list_out[0] = '\0';
			r = dir_list(dir, list_cb, NULL);
			if (r == DIR_OK)
				printf("LIST %s\n", list_out);
			else
				print_result(r, &u);
		} else if (strcmp(words[0], "stats") == 0) {
			struct dir_ldap_stats st;

			dir_ldap_get_stats(dir, &st);
			printf("STATS searches=%lu binds=%lu cache_hits=%lu connects=%lu failures=%lu\n", st.searches,
			       st.binds, st.cache_hits, st.connects, st.failures);
		} else if (strcmp(words[0], "sleep") == 0 && n == 2) {
			usleep((useconds_t)(strtod(words[1], NULL) * 1e6));
			printf("SLEPT\n");
		} else if (strcmp(words[0], "repeat") == 0 && n == 3) {
			long count = strtol(words[1], NULL, 10), ok = 0;
			struct timespec t0, t1;

			clock_gettime(CLOCK_MONOTONIC, &t0);
			for (long i = 0; i < count; i++)
				ok += dir_lookup_address(dir, words[2], &u) == DIR_OK;
			clock_gettime(CLOCK_MONOTONIC, &t1);
			printf("REPEAT ok=%ld other=%ld seconds=%.6f\n", ok, count - ok,
			       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
		} else if (strcmp(words[0], "threads") == 0 && n == 3) {
			run_threads((int)strtol(words[1], NULL, 10), (int)strtol(words[2], NULL, 10));
		} else {
			printf("ERROR unknown command\n");
		}
	}
	dir_close(&dir);
	config_free(&cfg);
	return 0;
}
