/* password — hashing and verifying user passwords.
 *
 * New passwords are hashed with yescrypt ("{CRYPT}$y$..."), libxcrypt's modern
 * salted default. Verification also accepts what imported or LDAP users bring:
 * {SSHA}, {SSHA256}, {SSHA512}, {CRYPT} with $5$, $6$ or $y$ (any crypt(3)
 * method libxcrypt knows), and a bare crypt string. {PLAIN} and {CLEARTEXT}
 * are accepted only for verification of imported data. An empty password never
 * verifies.
 */
#ifndef MK_PASSWORD_H
#define MK_PASSWORD_H

#include <stddef.h>

/* Hashes password into out (size outsize, >= 160). Returns 0 or -1. */
int password_hash(const char *password, char *out, size_t outsize);
/* Returns 1 if password matches stored, 0 if not (or stored is malformed / of
 * an unknown scheme), comparing in constant time where the scheme allows. */
int password_verify(const char *password, const char *stored);
/* Returns 1 if stored names a scheme password_verify understands. */
int password_scheme_known(const char *stored);

#endif
