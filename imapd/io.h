/* io — one client connection: plain, TLS (STARTTLS or implicit) and
 * COMPRESS=DEFLATE stacked on a blocking socket, used by one thread.
 *
 * Input is appended to a struct buf the session owns (bounded by its max);
 * output is buffered here and sent by io_flush (or when 64 KB are pending).
 * Every read waits at most timeout_ms; io_wait also watches another fd (the
 * store's change notification during IDLE).
 */
#ifndef MK_IMAP_IO_H
#define MK_IMAP_IO_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <zlib.h>

#include "lib/buf.h"

struct io {
	int fd;
	SSL *ssl;
	int compress;
	z_stream zin, zout;
	unsigned char raw[16384];  /* compressed input not yet inflated */
	char *out;                 /* pending output */
	size_t outlen, outcap;
	int timeout_ms;
	int failed;                /* a write failed: the peer is gone */
	struct buf *capture;       /* when set, io_write appends here instead (see below) */
};

void io_init(struct io *io, int fd, int timeout_ms);
/* Closes the socket and frees TLS and zlib state. */
void io_close(struct io *io);
/* Starts TLS as the server (after "OK Begin TLS" was flushed). Any input
 * received before the handshake must have been discarded by the caller.
 * Returns 0 or -1 (handshake failed; message in err). */
int io_starttls(struct io *io, SSL_CTX *ctx, char *err, size_t errsize);
/* Turns on DEFLATE both ways (RFC 4978), after the OK was flushed. */
int io_compress(struct io *io);
/* 1 if bytes can be read without waiting (TLS or zlib hold some). */
int io_pending(struct io *io);
/* Reads what is available (waiting up to timeout_ms) and appends it to in.
 * Returns bytes added (>0), 0 at end of stream, -1 on error or timeout,
 * -2 if in is full (its max reached). */
long io_read(struct io *io, struct buf *in);
/* Waits until the client sent something (returns 1), extra_fd is readable
 * (returns 2; extra_fd may be -1), or timeout_ms passed (returns 0). -1 on error. */
int io_wait(struct io *io, int extra_fd, int timeout_ms);

/* Writes go to io->capture while it is set: a command builds an answer that
 * points into a store read transaction in memory, ends the transaction, and
 * only then sends it, so a slow client never holds a transaction (and with
 * it the store's map lock, which map growth, and so every delivery, waits for). */
void io_write(struct io *io, const void *data, size_t len);
void io_puts(struct io *io, const char *s);
void io_printf(struct io *io, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes an IMAP string: quoted if short and plain, else a literal; NIL for NULL. */
void io_string(struct io *io, const char *s, size_t len);
void io_nstring(struct io *io, const char *s);
/* Sends everything pending. Returns 0 or -1. */
int io_flush(struct io *io);

#endif
