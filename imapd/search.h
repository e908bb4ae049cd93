/* search — what SEARCH, SORT and THREAD share (cmd_search.c): running search
 * keys over the selected mailbox, the RETURN options of ESEARCH (RFC 4731)
 * and ESORT/PARTIAL (RFC 5267), and the ESEARCH answer. */
#ifndef MK_IMAP_SEARCH_H
#define MK_IMAP_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "imapd/fetch.h"
#include "imapd/session.h"

struct search_hit {
	uint32_t seq, uid;
	uint64_t modseq;
	void *data; /* the visitor's, per hit */
};

/* Called for each message that matched, inside the read transaction (m and
 * what it points to live until the transaction ends): may set hit->data. */
typedef void search_visit_fn(struct store_txn *txn, const struct store_msg *m,
			     struct fetch_cache *pending, struct search_hit *hit, void *ctx);

/* Parses "[CHARSET x] keys..." from args[0..n) and runs the keys over the
 * view in sequence order. *hits_r is malloc'ed (free it, and any data).
 * Returns 0; -1 after answering BAD or NO (a bad key or charset); or a
 * STORE_E* code (unanswered). */
int search_run(struct session *s, const struct imap_arg *args, size_t n, const char *what,
	       struct search_hit **hits_r, size_t *n_r, int *modseq_used_r, search_visit_fn *visit,
	       void *ctx);

/* RETURN (...) options. */
struct search_return {
	int esearch; /* RETURN was given */
	int min, max, count, all;
	int partial; /* PARTIAL lo:hi (1-based positions, lo <= hi) */
	uint32_t plo, phi;
	int update; /* UPDATE (CONTEXT=SEARCH): keep the result current */
	int save;   /* SAVE (SEARCHRES): the result becomes "$" */
};
/* SORT's "(criteria) charset keys..." from args: runs the keys and orders
 * the hits (each with its compared fields as data: free with
 * sort_hits_free). Returns as search_run. */
int sort_run(struct session *s, const struct imap_arg *args, size_t nargs,
	     struct search_hit **hits_r, size_t *n_r, int *modseq_used_r);
void sort_hits_free(struct search_hit *hits, size_t n);
/* RETURN (UPDATE): keeps the command (its arguments from args[first]) and
 * its result (in sort order when sorted) current. 0, or -1 after answering
 * NO [NOUPDATE]. */
int search_update_keep(struct session *s, struct imap_command *cmd, size_t first,
		       const struct search_hit *hits, size_t n, int sorted);
/* RETURN (SAVE): keeps the UIDs as "$" (only MIN's and MAX's when those are
 * all that was asked, RFC 5182 2.1). */
void search_save(struct session *s, const struct search_return *r, const struct search_hit *hits,
		 size_t n, int sorted);
/* Parses the list after RETURN. Returns 0, or -1 after answering BAD. */
int search_parse_return(struct session *s, const struct imap_arg *list, int sort,
			struct search_return *r);
/* Writes "* ESEARCH (TAG ..) [UID] ..." for hits in the order given (SORT's
 * order, or ascending); modseq_used adds MODSEQ (RFC 7162 3.1.5). */
void search_write_esearch(struct session *s, const struct search_return *r,
			  const struct search_hit *hits, size_t n, int uid, int modseq_used,
			  int sorted);
/* The answer: ESEARCH when RETURN was given (search_write_esearch), else
 * "* SEARCH n n ..." or "* SORT n n ..." (name) with CONDSTORE's MODSEQ. */
void search_write_result(struct session *s, const char *name, const struct search_return *r,
			 const struct search_hit *hits, size_t n, int uid, int modseq_used,
			 int sorted);

#endif
