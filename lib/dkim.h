/* dkim — DomainKeys Identified Mail signatures (RFC 6376), relaxed/relaxed:
 * rsa-sha256 through libopendkim, ed25519-sha256 (RFC 8463) with OpenSSL's
 * EdDSA here (Debian 12's libopendkim 2.11 signs Ed25519 too, but leaks the
 * key it loads for each signature; see lib/dkim.c).
 *
 * Keys live in a directory, one file per domain and selector:
 *
 *     KEYDIR/example.org/2026a.key     PEM private key (RSA or Ed25519), mode 0600
 *
 * A message is signed once per key of its From: domain (an RSA and an
 * Ed25519 key side by side is RFC 8463's advice: verifiers that know only
 * RSA check that one). This module knows bytes and keys, not the store.
 * Thread-safe.
 */
#ifndef MK_DKIM_H
#define MK_DKIM_H

#include <stddef.h>

/* The domain of the first From: header of msg (lower case) into out.
 * Returns 0, or -1 if there is none. */
int dkim_from_domain(const void *msg, size_t len, char *out, size_t outsize);

/* Signs msg (a whole message, CRLF line ends) with every key of domain in
 * keydir. *hdrs_r gets the "DKIM-Signature: ...\r\n" fields to put in front
 * of the message (malloc'd; NULL with *len_r 0 when domain has no key).
 * Returns 0, or -1 with err (a key that cannot be read or used). */
int dkim_sign_message(const char *keydir, const char *domain, const void *msg, size_t len,
		      char **hdrs_r, size_t *len_r, char *err, size_t errsize);

/* Makes KEYDIR/DOMAIN/SELECTOR.key (RSA of bits, or Ed25519), mode 0600,
 * owned by owner if not NULL/"" (the daemons read it after dropping root),
 * and writes the DNS record to publish into txt:
 *   SELECTOR._domainkey.DOMAIN. IN TXT ( "v=DKIM1; k=rsa; " "p=MIIB..." )
 * Refuses to replace an existing key. Returns 0 or -1 with err. */
int dkim_keygen(const char *keydir, const char *domain, const char *selector, int ed25519, int bits,
		const char *owner, char *txt, size_t txtsize, char *err, size_t errsize);

/* The TXT record of an existing key file, as dkim_keygen writes it. */
int dkim_txt_record(const char *keyfile, const char *domain, const char *selector, char *txt,
		    size_t txtsize, char *err, size_t errsize);

#endif
