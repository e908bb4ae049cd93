/* io — blocking socket I/O for one IMAP connection, with TLS and DEFLATE. */
#include "imapd/io.h"
#include "imapd/wire.h"
#include "lib/xmalloc.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#define IO_OUT_FLUSH 65536

void io_init(struct io *io, int fd, int timeout_ms)
{
	memset(io, 0, sizeof(*io));
	io->fd = fd;
	io->timeout_ms = timeout_ms;
	struct timeval tv = {.tv_sec = timeout_ms / 1000 + 1};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	/* Replies are written whole by io_flush: Nagle would only add a delayed-ACK
	 * wait (40 ms) to untagged IDLE updates. */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void io_close(struct io *io)
{
	if (io->ssl != NULL) {
		SSL_shutdown(io->ssl);
		SSL_free(io->ssl);
		io->ssl = NULL;
	}
	if (io->compress) {
		inflateEnd(&io->zin);
		deflateEnd(&io->zout);
		io->compress = 0;
	}
	if (io->fd >= 0)
		close(io->fd);
	io->fd = -1;
	free(io->out);
	io->out = NULL;
	io->outlen = io->outcap = 0;
}

int io_starttls(struct io *io, SSL_CTX *ctx, char *err, size_t errsize)
{
	io->ssl = SSL_new(ctx);
	if (io->ssl == NULL || SSL_set_fd(io->ssl, io->fd) != 1)
		goto fail;
	ERR_clear_error();
	if (SSL_accept(io->ssl) != 1)
		goto fail;
	return 0;
fail:;
	unsigned long e = ERR_get_error();
	snprintf(err, errsize, "TLS handshake failed: %s",
		 e ? ERR_reason_error_string(e) : "connection closed");
	if (io->ssl != NULL) {
		SSL_free(io->ssl);
		io->ssl = NULL;
	}
	return -1;
}

int io_compress(struct io *io)
{
	memset(&io->zin, 0, sizeof(io->zin));
	memset(&io->zout, 0, sizeof(io->zout));
	if (inflateInit2(&io->zin, -15) != Z_OK)
		return -1;
	if (deflateInit2(&io->zout, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		inflateEnd(&io->zin);
		return -1;
	}
	io->compress = 1;
	return 0;
}

int io_pending(struct io *io)
{
	if (io->compress && io->zin.avail_in > 0)
		return 1;
	return io->ssl != NULL && SSL_pending(io->ssl) > 0;
}

/* Reads raw (possibly TLS) bytes; waits up to timeout_ms. */
static long raw_read(struct io *io, void *data, size_t size)
{
	if (!(io->ssl != NULL && SSL_pending(io->ssl) > 0)) {
		struct pollfd pfd = {.fd = io->fd, .events = POLLIN};
		int r;
		do
			r = poll(&pfd, 1, io->timeout_ms);
		while (r < 0 && errno == EINTR);
		if (r <= 0)
			return -1;
	}
	if (io->ssl != NULL) {
		int n = SSL_read(io->ssl, data, size > INT32_MAX ? INT32_MAX : (int)size);
		if (n > 0)
			return n;
		int e = SSL_get_error(io->ssl, n);
		return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
	}
	ssize_t n;
	do
		n = read(io->fd, data, size);
	while (n < 0 && errno == EINTR);
	return n;
}

long io_read(struct io *io, struct buf *in)
{
	char tmp[16384];
	size_t room = in->max - in->len;
	if (room == 0)
		return -2;
	size_t want = room < sizeof(tmp) ? room : sizeof(tmp);
	if (!io->compress) {
		long n = raw_read(io, tmp, want);
		if (n > 0 && buf_append(in, tmp, (size_t)n) < 0)
			return -2;
		return n;
	}
	for (;;) {
		if (io->zin.avail_in == 0) {
			long n = raw_read(io, io->raw, sizeof(io->raw));
			if (n <= 0)
				return n;
			io->zin.next_in = io->raw;
			io->zin.avail_in = (unsigned)n;
		}
		io->zin.next_out = (unsigned char *)tmp;
		io->zin.avail_out = (unsigned)want;
		int r = inflate(&io->zin, Z_SYNC_FLUSH);
		if (r != Z_OK && r != Z_BUF_ERROR && r != Z_STREAM_END)
			return -1;
		size_t got = want - io->zin.avail_out;
		if (got > 0) {
			if (buf_append(in, tmp, got) < 0)
				return -2;
			return (long)got;
		}
		if (r == Z_STREAM_END)
			return 0;
	}
}

int io_wait(struct io *io, int extra_fd, int timeout_ms)
{
	if (io_pending(io))
		return 1;
	struct pollfd pfd[2] = {{.fd = io->fd, .events = POLLIN},
				{.fd = extra_fd, .events = POLLIN}};
	int r;
	do
		r = poll(pfd, extra_fd >= 0 ? 2 : 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -1;
	if (r == 0)
		return 0;
	if (pfd[0].revents)
		return 1;
	return 2;
}

static int raw_write(struct io *io, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		if (io->ssl != NULL) {
			int n = SSL_write(io->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
			if (n <= 0)
				return -1;
			p += n;
			len -= (size_t)n;
		} else {
			ssize_t n = send(io->fd, p, len, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return -1;
			p += n;
			len -= (size_t)n;
		}
	}
	return 0;
}

int io_flush(struct io *io)
{
	if (io->failed)
		goto fail;
	if (io->outlen == 0)
		return 0;
	if (!io->compress) {
		if (raw_write(io, io->out, io->outlen) < 0)
			goto fail;
	} else {
		unsigned char z[16384];
		io->zout.next_in = (unsigned char *)io->out;
		io->zout.avail_in = (unsigned)io->outlen;
		do {
			io->zout.next_out = z;
			io->zout.avail_out = sizeof(z);
			if (deflate(&io->zout, Z_SYNC_FLUSH) == Z_STREAM_ERROR)
				goto fail;
			if (raw_write(io, z, sizeof(z) - io->zout.avail_out) < 0)
				goto fail;
		} while (io->zout.avail_out == 0 || io->zout.avail_in > 0);
	}
	io->outlen = 0;
	return 0;
fail:
	io->failed = 1;
	io->outlen = 0;
	return -1;
}

void io_write(struct io *io, const void *data, size_t len)
{
	const char *p = data;
	if (io->capture != NULL) {
		if (buf_append(io->capture, data, len) < 0)
			io->failed = 1; /* cannot happen below the capture's max; end the session */
		return;
	}
	while (len > 0) {
		if (io->failed)
			return;
		if (io->outcap == 0) {
			io->outcap = IO_OUT_FLUSH;
			io->out = xmalloc(io->outcap);
		}
		size_t room = io->outcap - io->outlen;
		size_t n = len < room ? len : room;
		memcpy(io->out + io->outlen, p, n);
		io->outlen += n;
		p += n;
		len -= n;
		if (io->outlen == io->outcap)
			io_flush(io);
	}
}

void io_puts(struct io *io, const char *s)
{
	io_write(io, s, strlen(s));
}

void io_printf(struct io *io, const char *fmt, ...)
{
	char tmp[2048];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(tmp)) {
		io_write(io, tmp, (size_t)n);
		return;
	}
	char *big = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	io_write(io, big, (size_t)n);
	free(big);
}

static void io_emit(void *ctx, const void *data, size_t len)
{
	io_write(ctx, data, len);
}

void io_string(struct io *io, const char *s, size_t len)
{
	wire_string(s, len, io_emit, io);
}

void io_nstring(struct io *io, const char *s)
{
	io_string(io, s, s ? strlen(s) : 0);
}
