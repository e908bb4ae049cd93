/* fuzz-spam-token — the spam tokenizer on arbitrary messages: MIME walking,
 * RFC 2047, quoted-printable, base64, charset conversion, HTML stripping and
 * the SBPH/OSB windows must never read out of bounds or crash. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "index/spam_token.h"

static void sink(uint64_t hash, const char *text, size_t len, void *ctx)
{
	size_t *n = ctx;
	if (strlen(text) != len || spam_token_hash(text, len) != hash)
		__builtin_trap();
	(*n)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = 0;
	struct spam_tokens set;

	spam_tokenize_message(data, size, size & 1 ? SPAM_TOK_OSB : SPAM_TOK_SBPH, sink, &n);
	spam_tokens_collect(&set, data, size, SPAM_TOK_SBPH, 1);
	for (size_t i = 0; i < set.n; i++)
		if (set.text[i] == NULL || spam_tokens_find(&set, set.hash[i]) != (long)i)
			__builtin_trap();
	spam_tokens_free(&set);
	return 0;
}
