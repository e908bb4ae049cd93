/* fuzz-fts-text — a message's searchable text (index/fts_text.c) from
 * arbitrary bytes: MIME walking, RFC 2047 and 2231, quoted-printable, base64,
 * charsets, HTML; and the property the words index rests on: every word of
 * the text, and any piece of it, is found by the exact check. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "index/fts.h"

struct check {
	const struct fts_text *t;
	size_t n;
};

static void word(const char *w, size_t len, void *ctx)
{
	struct check *c = ctx;
	if (len == 0 || len > FTS_WORD_MAX || !fts_text_contains(c->t, FTS_TEXT, w, len))
		__builtin_trap();
	c->n++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fts_text t;

	fts_text_extract(data, size, &t);
	if (strlen(t.hdr) != t.hdrlen || strlen(t.body) != t.bodylen ||
	    strlen(t.names) != t.nameslen || t.bodylen > FTS_TEXT_MAX)
		__builtin_trap();
	struct check c = {&t, 0};
	fts_text_words(&t, word, &c);
	/* folding is idempotent: the text folded again is the same */
	size_t fl;
	char *f = fts_fold(t.body, t.bodylen, &fl);
	if (fl != t.bodylen || memcmp(f, t.body, fl) != 0)
		__builtin_trap();
	free(f);
	fts_text_free(&t);
	return 0;
}
