/* retrykey — the key that recognises a retried delivery (index/retry.h).
 *
 * A sender that saw no 250 after its "." retries the same message: same
 * envelope sender, same recipient, the same bytes (our Received: header is
 * not part of them). The key is the SHA-256 of those three, made only for a
 * message with a Message-ID field: RFC 5322 makes that id name one message,
 * so an identical message with the same id, from the same sender to the same
 * recipient within smtpd_retry_dedup_window is that message again, never a
 * new one. (Identical messages without an id, e.g. a monitoring alert sent
 * twice, are both stored.) doc/smtpin.md, "Duplicates after a crash", says
 * when this can matter.
 */
#include <openssl/evp.h>
#include <string.h>
#include <strings.h>

#include "smtpin/smtpin.h"

/* 1 if the header section of msg (up to the first empty line) has a
 * Message-ID field with something in it. */
static int has_message_id(const char *msg, size_t len)
{
	size_t i = 0;

	while (i < len) {
		const char *eol = memchr(msg + i, '\n', len - i);
		size_t n = eol ? (size_t)(eol - (msg + i)) : len - i;
		if (n == 0 || (n == 1 && msg[i] == '\r'))
			return 0; /* the end of the header */
		if (n > 11 && strncasecmp(msg + i, "Message-ID:", 11) == 0) {
			for (size_t j = i + 11; j < i + n; j++)
				if (msg[j] != ' ' && msg[j] != '\t' && msg[j] != '\r')
					return 1;
		}
		i += n + 1;
	}
	return 0;
}

int smtpin_retry_key(const struct session *s, const char *rcpt_addr, const char *user,
		     uint8_t key[STORE_HASH_LEN])
{
	const char *body = s->msg.data + s->hdr_len;
	size_t blen = s->msg.len - s->hdr_len;
	unsigned int n = 0;

	if (s->msg.data == NULL || !has_message_id(body, blen))
		return -1;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return -1;
	int ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
		 EVP_DigestUpdate(ctx, "mailkeep retry 1", 17) == 1 &&
		 EVP_DigestUpdate(ctx, s->from.addr, strlen(s->from.addr) + 1) == 1 &&
		 EVP_DigestUpdate(ctx, rcpt_addr, strlen(rcpt_addr) + 1) == 1 &&
		 EVP_DigestUpdate(ctx, user, strlen(user) + 1) == 1 &&
		 EVP_DigestUpdate(ctx, body, blen) == 1 && EVP_DigestFinal_ex(ctx, key, &n) == 1 &&
		 n == STORE_HASH_LEN;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}
