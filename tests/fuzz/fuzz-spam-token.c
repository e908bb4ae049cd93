/* fuzz-spam-token — the spam tokenizer on arbitrary messages: MIME walking,
 * RFC 2047, quoted-printable, base64, charset conversion, HTML stripping and
 * the SBPH/OSB windows, osb4's grams, URL hosts and MIME shape must never
 * read out of bounds or crash, and every token's hash is its text's. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "index/spam_token.h"

struct sink_ctx {
	enum spam_tokenizer kind;
	size_t n;
};

static void sink(uint64_t hash, const char *text, size_t len, void *ctx)
{
	struct sink_ctx *c = ctx;
	if (strlen(text) != len || spam_token_hash_kind(c->kind, text, len) != hash)
		__builtin_trap();
	c->n++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum spam_tokenizer kinds[3] = {SPAM_TOK_SBPH, SPAM_TOK_OSB, SPAM_TOK_OSB4};
	struct sink_ctx c = {kinds[size % 3], 0};
	struct spam_tokens set;

	spam_tokenize_message(data, size, c.kind, sink, &c);
	spam_tokens_collect(&set, data, size, size & 1 ? SPAM_TOK_OSB4 : SPAM_TOK_SBPH, 1);
	for (size_t i = 0; i < set.n; i++)
		if (set.text[i] == NULL || spam_tokens_find(&set, set.hash[i]) != (long)i)
			__builtin_trap();
	spam_tokens_free(&set);
	return 0;
}
