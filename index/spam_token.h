/* spam_token — the spam filter's tokenizer, as DSPAM's: pure, no I/O.
 *
 * A message is split into its MIME parts. Every part's header fields are
 * tokenized with their field name as prefix ("Subject*Free"); RFC 2047
 * encoded words are decoded first. Text parts (text/ types, or no Content-Type)
 * are decoded (quoted-printable, base64) and converted to UTF-8 with iconv
 * when their charset is another one; HTML loses its comments and short tags,
 * and the words inside its other tags give "Html*word" tokens, each alone.
 * Other parts (images, archives, ...) are skipped: only their headers count.
 * URLs give "Url*" tokens for each of their pieces.
 *
 * Words are runs of bytes that are not delimiters (white space and most ASCII
 * punctuation; '$', '!', '\'', '%' and '_' stay inside words, as do all bytes
 * of UTF-8 sequences), 1 to SPAM_WORD_MAX bytes long; longer runs are dropped.
 * Words are then combined over a sliding window of SPAM_WINDOW words:
 *
 *   SBPH (sparse binary polynomial hashing): for each word, every combination
 *   of the 4 words before it that keeps the oldest chosen one, gaps written
 *   "#": "mit", "ich+mit", "war+#+mit", "war+ich+mit", "Abend+#+#+mit", ...
 *   (up to 16 tokens per word; the same set DSPAM produces).
 *   OSB (orthogonal sparse bigrams): the pairs only: "ich+mit", "war+#+mit",
 *   "Abend+#+#+mit", "Heute+#+#+#+mit" (up to 4 per word).
 *
 *   OSB4 (the default): the words alone and the OSB pairs, and besides the
 *   windows: the byte 4-grams of the message's first SPAM_GRAM_BYTES bytes
 *   ("G*" + 4 bytes), each URL's host and registered domain ("UrlHost*",
 *   "UrlDom*"), the MIME tree's shape ("Mime*0multipart/alternative,1text/
 *   plain,1text/html") and the number of Received hops ("Hops*3").
 *
 * Each token's text is hashed to 64 bits with DSPAM's CRC-64
 * (spam_token_hash; osb4 mixes it further: spam_token_hash_kind). The window
 * restarts at every header field and part.
 *
 * Bounds, whatever the input: at most SPAM_HEADER_MAX bytes of header field
 * text and SPAM_TEXT_MAX bytes of decoded body text are tokenized, encoded
 * input is decoded only as far as that budget needs, MIME nesting is
 * followed SPAM_DEPTH_MAX deep, an HTML tag is looked for SPAM_TAG_MAX bytes
 * far: time is linear in the message's size and memory a few times
 * SPAM_TEXT_MAX plus the token set (at most about 6 tokens per word read).
 */
#ifndef MK_SPAM_TOKEN_H
#define MK_SPAM_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define SPAM_WINDOW 5
#define SPAM_WORD_MAX 24	     /* bytes of one word; longer ones are dropped */
#define SPAM_TOKEN_TEXT_MAX 192	     /* bytes of one token's text (heading*w1+...+w5) */
#define SPAM_HEADING_MAX 64	     /* header field names are cut to this length */
#define SPAM_TEXT_MAX (512 * 1024)   /* decoded text tokenized per message; the rest is ignored */
#define SPAM_DEPTH_MAX 8	     /* MIME nesting followed */
#define SPAM_HEADER_MAX (256 * 1024) /* header field text tokenized per message */
#define SPAM_GRAM_BYTES 3000	     /* osb4: byte 4-grams of this much of the message's start */
#define SPAM_HOST_MAX 128	     /* osb4: URL host names longer than this are not tokens */
#define SPAM_TAG_MAX 4096	     /* an HTML tag longer than this is text */

enum spam_tokenizer {
	SPAM_TOK_SBPH = 0,
	SPAM_TOK_OSB = 1,
	SPAM_TOK_OSB4 = 2, /* the default: words, OSB pairs, byte 4-grams, URL hosts, MIME shape */
};

/* Called once per token occurrence (a token seen twice is reported twice).
 * text is NUL-terminated and valid only during the call. */
typedef void spam_token_fn(uint64_t hash, const char *text, size_t len, void *ctx);

/* DSPAM's CRC-64 (ISO 3309 polynomial, reflected) of len bytes. */
uint64_t spam_token_hash(const void *data, size_t len);

/* A token's hash as a tokenizer kind makes it: osb4 finishes the CRC-64
 * with splitmix64's mixer (so that its top bits, which pick a bucket in the
 * store, are even); sbph and osb use the CRC-64 alone. */
uint64_t spam_token_hash_kind(enum spam_tokenizer kind, const void *data, size_t len);

/* "sbph" / "osb" / "osb4" <-> enum. parse returns 0 or -1. */
int spam_tokenizer_parse(const char *name, enum spam_tokenizer *kind_r);
const char *spam_tokenizer_name(enum spam_tokenizer kind);

/* Tokenizes plain text: heading is NULL for body text, or a header field name
 * (tokens then read "heading*..."). received = 1 keeps '.' inside words, as
 * for Received fields (host names, addresses). */
void spam_tokenize_text(const char *text, size_t len, const char *heading, int received,
			enum spam_tokenizer kind, spam_token_fn *fn, void *ctx);

/* Tokenizes a whole RFC 5322 message (header and body, all MIME parts).
 * Never fails: malformed input gives fewer tokens. */
void spam_tokenize_message(const void *data, size_t len, enum spam_tokenizer kind,
			   spam_token_fn *fn, void *ctx);

/* The distinct tokens of a message, sorted by hash. texts[i] is the text of
 * hash[i] (when collected with texts), owned by the set.
 *
 * Collected with SPAM_COLLECT_WINDOWS (SBPH only), the set also says how its
 * tokens nest: win[p * SPAM_WINDOW_MASKS + mask] is the index of the token
 * that the p-th word gives with that window mask (UINT32_MAX where the window
 * was shorter), and level[i] is the number of earlier words in token i (0 for
 * the word alone and for URL pieces). Every SBPH token of a window implies
 * its sub-window tokens (same word, fewer earlier words) in the same message,
 * which spam_db_counts uses to skip lookups of tokens that cannot be known. */
#define SPAM_WINDOW_MASKS (1u << (SPAM_WINDOW - 1))
#define SPAM_COLLECT_TEXT 1
#define SPAM_COLLECT_WINDOWS 2
/* The hashes as they come, neither sorted nor made distinct (n counts every
 * occurrence): for bulk learning (spam_db_deferring), which counts a token
 * once per list by itself. Not with the other flags; spam_tokens_find does
 * not work on such a set. */
#define SPAM_COLLECT_UNSORTED 4

struct spam_tokens {
	uint64_t *hash;
	char **text; /* NULL unless collected with SPAM_COLLECT_TEXT */
	size_t n;
	uint32_t *win; /* NULL unless collected with SPAM_COLLECT_WINDOWS */
	size_t nwin;
	uint8_t *level;
	/* private */
	char *arena;
	size_t arena_len, arena_cap;
	size_t cap;
};

/* Collects the distinct tokens of a message; flags: SPAM_COLLECT_* (1 is
 * SPAM_COLLECT_TEXT). Out of memory is fatal. */
void spam_tokens_collect(struct spam_tokens *set, const void *data, size_t len,
			 enum spam_tokenizer kind, int flags);
/* Builds a set from a list of hashes (a stored signature): sorts, removes duplicates. */
void spam_tokens_from_hashes(struct spam_tokens *set, const uint64_t *hash, size_t n);
/* Index of hash in the set, or -1. */
long spam_tokens_find(const struct spam_tokens *set, uint64_t hash);
void spam_tokens_free(struct spam_tokens *set);

#endif
