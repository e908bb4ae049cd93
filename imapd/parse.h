/* parse — the IMAP command parser: pure, fed bytes, never reads a socket.
 *
 * Two steps, both without I/O (Dovecot's lib-imap idea):
 *
 *  1. imap_frame() finds where a command ends in the bytes received so far,
 *     stepping over literals ({n}, and LITERAL+'s {n+}). It answers
 *     IMAP_PARSE_DONE (the command is the first *len_r bytes), IMAP_PARSE_MORE
 *     (feed more bytes; if f->need_continuation is set, a synchronising literal
 *     was announced and the caller sends "+ ..." first), or IMAP_PARSE_ERROR
 *     (f->error says why; the connection cannot stay in step: BAD/BYE).
 *     Limits: a line (literals excluded) over max_line bytes, a literal over
 *     max_literal bytes or with an overflowing size, too many literals.
 *
 *  2. imap_parse_command() splits one framed command into tag, name and an
 *     argument tree (atoms, quoted strings, literals, NIL, parenthesised lists),
 *     with a nesting depth and an argument count limit. Literal and atom values
 *     point into the command buffer; quoted strings are unescaped into the
 *     arena. Everything lives until imap_arena_free().
 *
 * Atoms follow Dovecot's lenient reading: "BODY[HEADER.FIELDS (A B)]<0.10>"
 * is one atom (brackets may hold spaces and parentheses).
 */
#ifndef MK_IMAP_PARSE_H
#define MK_IMAP_PARSE_H

#include <stddef.h>
#include <stdint.h>

enum imap_parse_result {
	IMAP_PARSE_DONE = 0,
	IMAP_PARSE_ERROR = -1,
	IMAP_PARSE_MORE = -2,
};

#define IMAP_MAX_DEPTH 16     /* list nesting */
#define IMAP_MAX_ARGS 100000  /* arguments in one command, all levels */
#define IMAP_MAX_LITERALS 1000

struct imap_framer {
	/* settings */
	size_t max_line;      /* bytes of one line, literals excluded */
	uint64_t max_literal; /* bytes of one literal */
	/* state, zeroed by imap_frame_reset */
	size_t pos;           /* bytes already scanned */
	size_t line_start;    /* where the current line began */
	uint64_t literal_left;
	unsigned literals;
	/* outputs */
	int need_continuation; /* set on MORE after "{n}": send "+ ..." then clear it */
	uint64_t literal_size; /* size of the last literal announced */
	int literal_too_big;   /* on ERROR: the reason was a literal over max_literal */
	int literal_sync;      /* on ERROR with literal_too_big: it was synchronising (no bytes follow) */
	const char *error;     /* on ERROR: a sentence */
};

void imap_frame_init(struct imap_framer *f, size_t max_line, uint64_t max_literal);
/* Forgets the state (call after each command). Keeps the limits. */
void imap_frame_reset(struct imap_framer *f);
/* Scans buf[0..len) (the same bytes as before plus more). */
int imap_frame(struct imap_framer *f, const char *buf, size_t len, size_t *len_r);

enum imap_arg_type {
	IMAP_ARG_ATOM,
	IMAP_ARG_QUOTED,
	IMAP_ARG_LITERAL,
	IMAP_ARG_NIL,
	IMAP_ARG_LIST,
};

struct imap_arg {
	enum imap_arg_type type;
	const char *str;        /* ATOM, QUOTED, LITERAL: the bytes (NUL-terminated except LITERAL) */
	size_t len;             /* its length; for LIST the number of items */
	struct imap_arg *list;  /* LIST: the items */
};

struct imap_arena;

struct imap_command {
	const char *tag;
	const char *name;       /* as sent; compare case-insensitively */
	struct imap_arg *args;
	size_t nargs;
	int uid;                /* "UID FETCH": name is "FETCH", uid = 1 */
};

struct imap_arena *imap_arena_new(void);
/* Frees everything allocated from it and sets *a to NULL. */
void imap_arena_free(struct imap_arena **a);
void *imap_arena_alloc(struct imap_arena *a, size_t size);
char *imap_arena_strndup(struct imap_arena *a, const char *s, size_t len);

/* Parses one framed command (as imap_frame delimited it, CRLF included).
 * Returns 0, or -1 with *error_r; if the tag could be read, cmd->tag is set so
 * the caller can answer "tag BAD ...". */
int imap_parse_command(struct imap_arena *a, const char *buf, size_t len, struct imap_command *cmd,
		       const char **error_r);
/* Parses a run of arguments (no tag) such as the text after a continuation. */
int imap_parse_args(struct imap_arena *a, const char *buf, size_t len, struct imap_arg **args_r,
		    size_t *n_r, const char **error_r);

/* 1 if arg is an atom equal (case-insensitively) to s. */
int imap_arg_is_atom(const struct imap_arg *arg, const char *s);
/* astring / string / nstring: the value as NUL-terminated text copied into the
 * arena; NULL if the type does not fit. A string holding a NUL is refused. */
const char *imap_arg_astring(struct imap_arena *a, const struct imap_arg *arg);
const char *imap_arg_string(struct imap_arena *a, const struct imap_arg *arg);

/* Sequence sets: "1:3,5,7:*". '*' stands for star (the highest number in
 * use). Ranges are normalised (low <= high). */
struct imap_seqset {
	struct imap_range { uint32_t lo, hi; } *r;
	size_t n;
};
/* Returns 0 or -1 (syntax, too many ranges). star may be 0 (empty mailbox). */
int imap_seqset_parse(struct imap_arena *a, const char *s, uint32_t star, struct imap_seqset *set_r);
int imap_seqset_contains(const struct imap_seqset *set, uint32_t n);

#endif
