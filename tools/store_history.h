/* store_history — the store's size day by day, for `mailkeep status` (growth)
 * and `mailkeep report` (the chart): `mailkeep run` adds a sample when it
 * starts and every few hours to $data_directory/stats/store-size, one line
 * "EPOCH BYTES" each (BYTES: the size of the store's data.mdb). A plain text
 * file, so that it can be read, trimmed or plotted with anything. */
#ifndef MK_TOOLS_STORE_HISTORY_H
#define MK_TOOLS_STORE_HISTORY_H

#include <stddef.h>
#include <stdint.h>

struct store_sample {
	int64_t time;
	uint64_t bytes;
};

/* The store's size now (data.mdb in store_dir); 0 and -1 if it cannot be read. */
int store_size_now(const char *store_dir, uint64_t *bytes_r);
/* Appends a sample (time, the store's size) to the history of data_dir. Returns 0 or -1. */
int store_history_add(const char *data_dir, const char *store_dir, int64_t now);
/* The samples since `since`, oldest first, into a malloc'ed array (the caller
 * frees it). Returns how many (0: none yet). */
size_t store_history_read(const char *data_dir, int64_t since, struct store_sample **out_r);
/* The size at or before time t from samples (the last one not after t); 0 if none. */
int store_history_at(const struct store_sample *s, size_t n, int64_t t, uint64_t *bytes_r);

#endif
