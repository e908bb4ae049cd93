/* imapc — a small IMAP client (see imapc.h). */
#include "tools/imapc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "lib/net.h"
#include "lib/tls.h"
#include "lib/util.h"
#include "lib/xmalloc.h"

#define READ_CHUNK (256 * 1024)

static int fail(struct imapc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct imapc *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	c->broken = 1;
	return -1;
}

static int raw_write(struct imapc *c, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n;
		if (c->ssl != NULL) {
			int w = SSL_write(c->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
			n = w > 0 ? w : -1;
			if (w <= 0)
				return fail(c, "cannot send to the server: %s",
					    errno == EAGAIN ? "timed out" : tls_last_error());
		} else {
			n = write(c->fd, p, len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return fail(c, "cannot send to the server: %s",
					    errno == EAGAIN ? "timed out" : strerror(errno));
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads more bytes into the buffer (at least one). */
static int fill(struct imapc *c)
{
	ssize_t n;

	if (c->cap - c->len < READ_CHUNK) {
		size_t cap = c->cap ? c->cap : READ_CHUNK * 2;
		while (cap - c->len < READ_CHUNK)
			cap *= 2;
		c->buf = xreallocarray(c->buf, cap, 1);
		c->cap = cap;
	}
	for (;;) {
		errno = 0;
		if (c->ssl != NULL) {
			int r = SSL_read(c->ssl, c->buf + c->len, (int)(c->cap - c->len - 1));
			if (r > 0) {
				n = r;
				break;
			}
			int e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0))
				return fail(c, "the server closed the connection");
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return fail(c, "the server sent nothing for %.0f s (timeout)",
					    c->timeout);
			if (errno == EINTR)
				continue;
			return fail(c, "connection lost: %s",
				    e == SSL_ERROR_SYSCALL ? strerror(errno) : tls_last_error());
		}
		n = read(c->fd, c->buf + c->len, c->cap - c->len - 1);
		if (n > 0)
			break;
		if (n == 0)
			return fail(c, "the server closed the connection");
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return fail(c, "the server sent nothing for %.0f s (timeout)", c->timeout);
		return fail(c, "connection lost: %s", strerror(errno));
	}
	c->len += (size_t)n;
	c->bytes_in += (uint64_t)n;
	return 0;
}

int imapc_read(struct imapc *c)
{
	ssize_t end;

	if (c->broken)
		return -1;
	if (c->consumed > 0) {
		memmove(c->buf, c->buf + c->consumed, c->len - c->consumed);
		c->len -= c->consumed;
		c->consumed = 0;
	}
	while ((end = imapc_response_end(c->buf, c->len, c->max_literal)) == 0)
		if (fill(c) < 0)
			return -1;
	if (end < 0)
		return fail(c,
			    "the server sent a response this client cannot take (a line over "
			    "%u bytes or a literal over %llu bytes)",
			    IMAPC_LINE_MAX, (unsigned long long)c->max_literal);
	c->consumed = (size_t)end;
	if (imapc_parse(c->buf, (size_t)end, &c->resp) < 0) {
		char shown[120];
		size_t i;
		for (i = 0; i + 1 < sizeof(shown) && i < (size_t)end && c->buf[i] != '\r' &&
			    c->buf[i] != '\n';
		     i++)
			shown[i] = isprint((unsigned char)c->buf[i]) ? c->buf[i] : '?';
		shown[i] = '\0';
		return fail(c, "malformed response from the server: %s", shown);
	}
	return 0;
}

/* Remembers the capabilities of a CAPABILITY response or [CAPABILITY ...] code
 * starting at node first. */
static void set_caps(struct imapc *c, int32_t first)
{
	size_t off = 0;

	c->caps[off++] = ' ';
	for (int32_t n = first; n >= 0; n = c->resp.nodes[n].next) {
		const struct imapc_node *x = &c->resp.nodes[n];
		if (x->type != IMAPC_ATOM || off + x->len + 2 >= sizeof(c->caps))
			continue;
		for (size_t i = 0; i < x->len; i++)
			c->caps[off++] = (char)toupper((unsigned char)x->s[i]);
		c->caps[off++] = ' ';
	}
	c->caps[off] = '\0';
}

/* Untagged CAPABILITY or a [CAPABILITY] code: remembered. */
static void note_caps(struct imapc *c)
{
	const struct imapc_resp *r = &c->resp;

	if (r->kind == IMAPC_UNTAGGED && r->status == IMAPC_DATA &&
	    imapc_is_atom(r, r->first, "CAPABILITY"))
		set_caps(c, r->nodes[r->first].next);
	else if (r->code >= 0 && imapc_is_atom(r, r->nodes[r->code].first, "CAPABILITY"))
		set_caps(c, r->nodes[r->nodes[r->code].first].next);
}

int imapc_has_cap(const struct imapc *c, const char *cap)
{
	char want[128];
	size_t n = strlen(cap);

	if (n + 3 > sizeof(want))
		return 0;
	want[0] = ' ';
	for (size_t i = 0; i < n; i++)
		want[i + 1] = (char)toupper((unsigned char)cap[i]);
	want[n + 1] = ' ';
	want[n + 2] = '\0';
	return strstr(c->caps, want) != NULL;
}

int imapc_send(struct imapc *c, char tag_r[16], const char *fmt, ...)
{
	char line[8192];
	va_list ap;
	int n, m;

	if (c->broken)
		return -1;
	snprintf(tag_r, 16, "m%u", ++c->tagn);
	n = snprintf(line, sizeof(line), "%s ", tag_r);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 2, fmt, ap);
	va_end(ap);
	if (m < 0 || (size_t)(n + m) >= sizeof(line) - 2)
		return fail(c, "command too long");
	memcpy(line + n + m, "\r\n", 2);
	return raw_write(c, line, (size_t)(n + m + 2));
}

void imapc_code(const struct imapc *c, char *out, size_t outsize)
{
	out[0] = '\0';
	if (c->resp.code >= 0)
		(void)imapc_copy(&c->resp, c->resp.nodes[c->resp.code].first, out, outsize);
}

/* The server's words of a NO/BAD/BYE, printable, into c->err. */
static void server_said(struct imapc *c, const char *what)
{
	char code[64], text[300];
	size_t i;

	imapc_code(c, code, sizeof(code));
	for (i = 0; i < c->resp.textlen && i + 1 < sizeof(text); i++)
		text[i] = isprint((unsigned char)c->resp.text[i]) ? c->resp.text[i] : '?';
	text[i] = '\0';
	snprintf(c->err, sizeof(c->err), "%s: %s%s%s%s", what, code[0] ? "[" : "", code,
		 code[0] ? "] " : "", text);
}

int imapc_tagged_status(struct imapc *c)
{
	if (c->resp.status == IMAPC_OK)
		return 0;
	server_said(c, "the server said");
	return 1;
}

int imapc_check_bye(struct imapc *c)
{
	if (c->resp.kind != IMAPC_UNTAGGED || c->resp.status != IMAPC_BYE)
		return 0;
	server_said(c, "the server closed the connection");
	c->broken = 1;
	return -1;
}

int imapc_wait(struct imapc *c, const char *tag, int (*cb)(struct imapc *c, void *ctx), void *ctx)
{
	for (;;) {
		if (imapc_read(c) < 0)
			return -1;
		struct imapc_resp *r = &c->resp;
		note_caps(c);
		if (r->kind == IMAPC_TAGGED) {
			if (r->taglen != strlen(tag) || memcmp(r->tag, tag, r->taglen) != 0)
				continue; /* a reply to an earlier command nobody waits for */
			if (r->status == IMAPC_OK)
				return 0;
			server_said(c, "the server said");
			return 1;
		}
		if (r->kind == IMAPC_UNTAGGED && r->status == IMAPC_BYE) {
			server_said(c, "the server closed the connection");
			c->broken = 1;
			return -1;
		}
		if (cb != NULL) {
			int rc = cb(c, ctx);
			if (rc != 0)
				return rc;
		}
	}
}

int imapc_cmd(struct imapc *c, int (*cb)(struct imapc *c, void *ctx), void *ctx, const char *fmt,
	      ...)
{
	char line[8192], tag[16];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return fail(c, "command too long");
	if (imapc_send(c, tag, "%s", line) < 0)
		return -1;
	return imapc_wait(c, tag, cb, ctx);
}

int imapc_quote(const char *s, char *out, size_t outsize)
{
	size_t o = 0;

	if (outsize < 3)
		return -1;
	out[o++] = '"';
	for (; *s != '\0'; s++) {
		if (*s == '\r' || *s == '\n')
			return -1;
		if (o + 4 >= outsize)
			return -1;
		if (*s == '"' || *s == '\\')
			out[o++] = '\\';
		out[o++] = *s;
	}
	out[o++] = '"';
	out[o] = '\0';
	return 0;
}

static int start_tls(struct imapc *c, const struct imapc_opts *o)
{
	char err[512];
	unsigned char ip[16];
	long vr;

	c->ctx = tls_client_ctx_new(o->ca_file, err, sizeof(err));
	if (c->ctx == NULL)
		return fail(c, "TLS: %s", err);
	if (o->ca_file == NULL || o->ca_file[0] == '\0') {
		SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
		if (SSL_CTX_set_default_verify_paths(c->ctx) != 1)
			return fail(c, "TLS: cannot load the system's CA certificates: %s",
				    tls_last_error());
	}
	if ((c->ssl = SSL_new(c->ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
		return fail(c, "TLS: %s", tls_last_error());
	if (inet_pton(AF_INET, o->host, ip) == 1 || inet_pton(AF_INET6, o->host, ip) == 1) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), o->host) != 1)
			return fail(c, "TLS: %s", tls_last_error());
	} else if (SSL_set1_host(c->ssl, o->host) != 1 ||
		   SSL_set_tlsext_host_name(c->ssl, o->host) != 1) {
		return fail(c, "TLS: %s", tls_last_error());
	}
	if (SSL_connect(c->ssl) != 1) {
		vr = SSL_get_verify_result(c->ssl);
		if (vr != X509_V_OK)
			return fail(c,
				    "TLS: the certificate of %s is not trusted: %s (for a server "
				    "with its own CA, give that CA with --ca-file)",
				    o->host, X509_verify_cert_error_string(vr));
		return fail(c, "TLS handshake with %s failed: %s", o->host,
			    errno == EAGAIN ? "timed out" : tls_last_error());
	}
	return 0;
}

/* Reads untagged responses until the tagged reply, noting capabilities. */
static int greeting(struct imapc *c)
{
	if (imapc_read(c) < 0)
		return -1;
	note_caps(c);
	if (c->resp.kind != IMAPC_UNTAGGED ||
	    (c->resp.status != IMAPC_OK && c->resp.status != IMAPC_PREAUTH)) {
		server_said(c, "the server refused the connection");
		c->broken = 1;
		return -1;
	}
	return 0;
}

int imapc_connect(struct imapc *c, const struct imapc_opts *o)
{
	char spec[300], err[512];
	struct timeval tv;
	int rc;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->resp.code = c->resp.first = -1;
	c->timeout = o->timeout > 0 ? o->timeout : 120;
	c->max_literal = o->max_literal ? o->max_literal : (uint64_t)2 << 30;
	snprintf(spec, sizeof(spec), strchr(o->host, ':') != NULL ? "[%s]:%u" : "%s:%u", o->host,
		 o->port);
	c->fd = net_connect(spec, c->timeout, err, sizeof(err));
	if (c->fd < 0)
		return fail(c, "cannot connect: %s", err);
	tv.tv_sec = (time_t)c->timeout;
	tv.tv_usec = 0;
	(void)setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (o->implicit_tls && start_tls(c, o) < 0)
		return -1;
	if (greeting(c) < 0)
		return -1;
	if (!o->implicit_tls) {
		if (c->caps[0] == '\0' && imapc_cmd(c, NULL, NULL, "CAPABILITY") != 0)
			return fail(c, "CAPABILITY failed: %s", c->err);
		if (!imapc_has_cap(c, "STARTTLS"))
			return fail(c, "the server does not offer STARTTLS: mailkeep never sends a "
				       "password without TLS (use imaps:// if it has port 993)");
		if ((rc = imapc_cmd(c, NULL, NULL, "STARTTLS")) != 0)
			return rc < 0 ? -1 : fail(c, "STARTTLS refused: %s", c->err);
		if (c->len > c->consumed)
			return fail(c, "the server sent data after STARTTLS in plaintext: refused");
		c->len = c->consumed = 0;
		c->caps[0] = '\0'; /* what was said before TLS no longer counts */
		if (start_tls(c, o) < 0)
			return -1;
	}
	if (c->caps[0] == '\0' && imapc_cmd(c, NULL, NULL, "CAPABILITY") != 0)
		return fail(c, "CAPABILITY failed: %s", c->err);
	return 0;
}

void imapc_close(struct imapc *c)
{
	if (c->ssl != NULL) {
		if (!c->broken)
			(void)SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	if (c->ctx != NULL)
		SSL_CTX_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	imapc_resp_free(&c->resp);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* base64 of len bytes into out (4 * ceil(len / 3) + 1 bytes). */
static int b64(const void *in, size_t len, char *out, size_t outsize)
{
	if ((len + 2) / 3 * 4 + 1 > outsize)
		return -1;
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return 0;
}

/* AUTHENTICATE mech with the initial response resp (len bytes). */
static int authenticate(struct imapc *c, const char *mech, const char *resp, size_t len)
{
	char enc[16384], tag[16];
	int rc;

	if (b64(resp, len, enc, sizeof(enc)) < 0)
		return fail(c, "credentials too long");
	if (imapc_has_cap(c, "SASL-IR")) {
		if (imapc_send(c, tag, "AUTHENTICATE %s %s", mech, enc) < 0)
			return -1;
	} else {
		if (imapc_send(c, tag, "AUTHENTICATE %s", mech) < 0 || imapc_read(c) < 0)
			return -1;
		if (c->resp.kind != IMAPC_CONTINUE) {
			server_said(c, "the server refused the login");
			return 1;
		}
		if (raw_write(c, enc, strlen(enc)) < 0 || raw_write(c, "\r\n", 2) < 0)
			return -1;
	}
	for (;;) {
		if (imapc_read(c) < 0)
			return -1;
		note_caps(c);
		if (c->resp.kind == IMAPC_CONTINUE) {
			/* an error challenge (XOAUTH2 sends JSON): answer empty, then the NO comes
			 */
			if (raw_write(c, "\r\n", 2) < 0)
				return -1;
			continue;
		}
		if (c->resp.kind != IMAPC_TAGGED || c->resp.taglen != strlen(tag) ||
		    memcmp(c->resp.tag, tag, c->resp.taglen) != 0)
			continue;
		if (c->resp.status == IMAPC_OK)
			break;
		server_said(c, "the server refused the login");
		return 1;
	}
	/* the capabilities may change after login; ask if the reply did not say */
	if (c->resp.code < 0 ||
	    !imapc_is_atom(&c->resp, c->resp.nodes[c->resp.code].first, "CAPABILITY")) {
		c->caps[0] = '\0';
		if ((rc = imapc_cmd(c, NULL, NULL, "CAPABILITY")) != 0)
			return rc < 0 ? -1 : 0;
	}
	return 0;
}

int imapc_login(struct imapc *c, const char *user, const char *password)
{
	char buf[2048], qu[1100], qp[1100];
	size_t ul = strlen(user), pl = strlen(password);
	int rc;

	if (imapc_has_cap(c, "AUTH=PLAIN")) {
		if (ul + pl + 2 > sizeof(buf))
			return fail(c, "user name or password too long");
		buf[0] = '\0';
		memcpy(buf + 1, user, ul);
		buf[1 + ul] = '\0';
		memcpy(buf + 2 + ul, password, pl);
		rc = authenticate(c, "PLAIN", buf, ul + pl + 2);
		OPENSSL_cleanse(buf, sizeof(buf));
		return rc;
	}
	if (imapc_has_cap(c, "LOGINDISABLED"))
		return fail(c, "the server offers neither AUTH=PLAIN nor LOGIN (LOGINDISABLED); "
			       "try --oauth2-token-file");
	if (imapc_quote(user, qu, sizeof(qu)) < 0 || imapc_quote(password, qp, sizeof(qp)) < 0)
		return fail(c, "user name or password too long, or holds a line break");
	rc = imapc_cmd(c, NULL, NULL, "LOGIN %s %s", qu, qp);
	OPENSSL_cleanse(qp, sizeof(qp));
	if (rc == 1)
		server_said(c, "the server refused the login");
	if (rc == 0) {
		c->caps[0] = '\0';
		if ((rc = imapc_cmd(c, NULL, NULL, "CAPABILITY")) != 0)
			return rc < 0 ? -1 : 0;
	}
	return rc;
}

int imapc_oauth2(struct imapc *c, const char *user, const char *token, const char *mech)
{
	char buf[12288];
	int n, rc;
	int x = mech != NULL ? strcasecmp(mech, "XOAUTH2") == 0 : imapc_has_cap(c, "AUTH=XOAUTH2");
	int b = mech != NULL ? strcasecmp(mech, "OAUTHBEARER") == 0
			     : imapc_has_cap(c, "AUTH=OAUTHBEARER");

	if (x) {
		/* "user=" user ^A "auth=Bearer " token ^A ^A */
		n = snprintf(buf, sizeof(buf), "user=%s\001auth=Bearer %s\001\001", user, token);
		if (n < 0 || (size_t)n >= sizeof(buf))
			return fail(c, "access token too long");
		rc = authenticate(c, "XOAUTH2", buf, (size_t)n);
	} else if (b) {
		/* RFC 7628: gs2 header "n,a=user," ^A "auth=Bearer " token ^A ^A */
		n = snprintf(buf, sizeof(buf), "n,a=%s,\001auth=Bearer %s\001\001", user, token);
		if (n < 0 || (size_t)n >= sizeof(buf))
			return fail(c, "access token too long");
		rc = authenticate(c, "OAUTHBEARER", buf, (size_t)n);
	} else {
		return fail(c,
			    "the server offers neither AUTH=XOAUTH2 nor AUTH=OAUTHBEARER: log in "
			    "with a password (--password-file)");
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}
