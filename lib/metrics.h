/* metrics — counters shared by every process of an instance, for `mailkeep
 * status` and the Prometheus endpoint of `mailkeep run`, and the last
 * warnings each process logged.
 *
 * Why shared memory and not the logs: the logs are what the day-by-day report
 * reads (`mailkeep report`, `mailkeep stats --smtp`: 30 days of history, and
 * pflogsumm reads the same lines), but a scrape every 15 seconds must not
 * parse a log; and why not a server process: an increment is one atomic add
 * in a mapped page, cheaper than any message (the same reasoning as
 * lib/anvil.h). The table is a file ($run_directory/metrics, ~200 KB),
 * mapped MAP_SHARED by every process; counters are found by their series name
 * ("mailkeep_smtp_connections_total", or with labels
 * "mailkeep_smtp_rejections_total{reason=\"greylist\"}"), made on first use.
 * Making one takes the file's flock for a moment; counting takes no lock.
 * Counters only grow (Prometheus's rate() expects that): they survive a
 * restart of a service, and start from 0 with a new file (a reboot, when
 * $run_directory is on a tmpfs).
 *
 * lib/ knows nothing of mail: the names are the programs'.
 * Every function is safe from any thread of any process that opened the table.
 */
#ifndef MK_METRICS_H
#define MK_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define METRICS_FILE "metrics" /* in $run_directory */
#define METRICS_NAME_MAX 128   /* bytes of a series name with its labels, NUL included */
#define METRICS_HELP_MAX 120
#define METRICS_SLOTS 768
#define METRICS_NOTES 32 /* the last warnings kept */
#define METRICS_NOTE_MAX 256

struct metrics;

struct metrics_value {
	char name[METRICS_NAME_MAX];
	char help[METRICS_HELP_MAX];
	uint64_t value;
};

struct metrics_note {
	int64_t time; /* seconds since the epoch */
	char who[48]; /* the log ident: "mailkeep/smtpd" */
	char text[METRICS_NOTE_MAX];
};

/* Opens (creating it if missing, starting afresh if its layout is another)
 * the table at path. owner: when running as root, the file stays root's and
 * is given to this user's group (mail_owner's), so that services write it
 * after dropping privileges; NULL or "" leaves it. read_only: for `mailkeep status` run by a
 * user who may not write (a missing file is then an error). Returns 0, or -1
 * with err. */
int metrics_open(const char *path, const char *owner, int read_only, struct metrics **m_r,
		 char *err, size_t errsize);
void metrics_close(struct metrics **m);

/* The process's table for metrics_count and the log hook (metrics_log_hook);
 * NULL: counting does nothing (a tool, a test). Not owned: close it yourself. */
void metrics_set_default(struct metrics *m);
struct metrics *metrics_default(void);

/* Adds n to the counter named series (made, with help, on first use). A name
 * over METRICS_NAME_MAX - 1 bytes or a full table: nothing is counted (and
 * "mailkeep_metrics_dropped_total" counts that). Uses the default table. */
void metrics_count(const char *series, const char *help, uint64_t n);
/* The same on a given table. */
void metrics_add(struct metrics *m, const char *series, const char *help, uint64_t n);
/* Keeps a warning (newest first in metrics_notes). */
void metrics_note(struct metrics *m, const char *who, const char *text);
/* For log_set_hook (lib/log.h): keeps warnings and worse in the default table. */
void metrics_log_hook(int priority, const char *ident, const char *text);

/* Copies every counter into out (at most max); returns how many there are. */
size_t metrics_snapshot(struct metrics *m, struct metrics_value *out, size_t max);
/* The value of one counter (0 if it was never counted). */
uint64_t metrics_get(struct metrics *m, const char *series);
/* The last warnings, newest first, at most max; returns how many. */
size_t metrics_notes(struct metrics *m, struct metrics_note *out, size_t max);
/* Writes counters in Prometheus's text format (version 0.0.4): # HELP and
 * # TYPE once per family, then one line per series. */
void metrics_write_text(const struct metrics_value *v, size_t n, FILE *out);

#endif
