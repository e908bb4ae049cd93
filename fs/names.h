/* names — Maildir file names as the mount shows them, parsed and formatted.
 *
 *   <base>,S=<size>:2,<flags>        e.g. 1700000000.M4711.mailkeep,S=5123:2,RS
 *
 * base is the store's stable Maildir base name (store_msg.base): everything
 * before the first ',' or ':'. ",S=<size>" (Maildir++) gives the exact size;
 * other ",X=..." fields (Dovecot's ,W=) are accepted and ignored. ":2," is
 * followed by the flag letters in ASCII order: D (draft), F (flagged),
 * P (passed; accepted, not stored), R (replied), S (seen), T (trashed =
 * \Deleted). Lower-case letters (Dovecot keywords) and unknown upper-case ones
 * are accepted and ignored.
 *
 * Pure functions: no I/O, no allocation; fuzzed by tests/fuzz/fuzz-maildir-name.c.
 */
#ifndef MK_FS_NAMES_H
#define MK_FS_NAMES_H

#include <stddef.h>
#include <stdint.h>

#include "index/store.h"

#define MDNAME_MAX 255 /* a file name on the mount (NAME_MAX) */

struct mdname {
	char base[STORE_BASE_MAX];  /* up to the first ',' or ':' (NUL-terminated) */
	char stem[MDNAME_MAX + 1];  /* up to ':': an imported
				       Dovecot name keeps ",S=..,W=.." in its store base */
	char stem2[MDNAME_MAX + 1]; /* stem without a last ",S=<digits>" field the mount
				       added to a base with ',' ("" if none) */
	int nfields;		    /* ",X=..." fields between base and ':' */
	int has_size;		    /* ",S=" was present */
	uint64_t size;
	int has_info;	/* ":2," was present */
	uint32_t flags; /* STORE_F_* bits of the letters D F R S T */
};

/* Parses a file name of len bytes (no NUL needed). Returns 0, or -1 if it is
 * not a Maildir message name: empty, too long, a '/' or NUL or control byte,
 * "." or "..", an empty base, a base of STORE_BASE_MAX bytes or more, a bad
 * ",S=" number, or an info part other than ":2,<letters>". */
int mdname_parse(const char *name, size_t len, struct mdname *name_r);

/* Writes the flag letters of flags (STORE_F_*; \Recent is ignored) in ASCII
 * order into out (at least 6 bytes), NUL-terminated. Returns the length. */
size_t mdname_flags(uint32_t flags, char *out);

/* The STORE_F_* bits a name can carry (D F R S T). */
#define MDNAME_FLAGS_MASK                                                                          \
	(STORE_F_DRAFT | STORE_F_FLAGGED | STORE_F_ANSWERED | STORE_F_SEEN | STORE_F_DELETED)

/* Formats "<base>,S=<size>:2,<flags>" into out (size outsize); a store base
 * that already holds a ",S=" field (an imported Dovecot name) gets no second
 * one. Returns the length, or -1 if it does not fit or base holds '/', ':' or
 * control bytes. */
int mdname_format(char *out, size_t outsize, const char *base, uint64_t size, uint32_t flags);

/* 1 if base can be a base name: 1..STORE_BASE_MAX-1 bytes, no '/', ',', ':',
 * no control bytes, not "." or "..". */
int mdname_base_valid(const char *base, size_t len);

/* 1 if name is the name the mount shows for a message with this store base,
 * size and flags, or an alias a Maildir program may use for it: the same base
 * (or the same stem, for store bases with ',' fields), no ",S=" or the right
 * one, and the same flag letters (missing ":2," counts as no flags). */
int mdname_matches(const struct mdname *name, const char *base, uint64_t size, uint32_t flags);

/* The store bases name may refer to, most likely first: base, stem, stem2
 * (without repeats or empty ones). Returns how many went to bases_r. */
int mdname_candidates(const struct mdname *name, const char *bases_r[3]);

/* The store base a new message named so gets: the base when the name has no
 * field but ",S=" (the mount's own names, mutt's), else the whole stem
 * (Dovecot's "X,S=1,W=2" stays as it is, so its name survives a round trip).
 * NULL if the stem does not fit. */
const char *mdname_new_base(const struct mdname *name);

#endif
