/* net — listening and connecting sockets, peer addresses, CIDR matching and
 * dropping root (see net.h). No protocol knowledge. */
#define _GNU_SOURCE /* setresuid, setresgid */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/net.h"
#include "lib/util.h"

/* Splits "host:port", "[v6]:port" or ":port" into host (empty = any) and port. */
static int split_hostport(const char *spec, char *host, size_t hostsize, char *port,
			  size_t portsize)
{
	const char *colon, *h = spec, *he;

	if (spec[0] == '[') {
		he = strchr(spec, ']');
		if (he == NULL || he[1] != ':')
			return -1;
		h = spec + 1;
		colon = he + 1;
	} else {
		colon = strrchr(spec, ':');
		if (colon == NULL || memchr(spec, ':', (size_t)(colon - spec)) != NULL)
			return -1; /* a bare IPv6 address needs brackets */
		he = colon;
	}
	if ((size_t)(he - h) >= hostsize || strlen(colon + 1) >= portsize || colon[1] == '\0')
		return -1;
	memcpy(host, h, (size_t)(he - h));
	host[he - h] = '\0';
	mk_strlcpy(port, colon + 1, portsize);
	return 0;
}

static int unix_addr(const char *path, struct sockaddr_un *sun, char *err, size_t errsize)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (*path == '\0' ||
	    mk_strlcpy(sun->sun_path, path, sizeof(sun->sun_path)) >= sizeof(sun->sun_path)) {
		snprintf(err, errsize, "unix:%s: bad or too long socket path", path);
		return -1;
	}
	return 0;
}

static int listen_unix(const char *path, int backlog, char *err, size_t errsize)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd;

	if (unix_addr(path, &sun, err, errsize) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errsize, "unix:%s: socket: %s", path, strerror(errno));
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int probe;

		if (errno != EADDRINUSE)
			goto fail;
		/* Stale if nobody answers on it. */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			close(probe);
			close(fd);
			snprintf(err, errsize, "unix:%s: in use by a running process", path);
			return -1;
		}
		if (probe >= 0)
			close(probe);
		if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode)) {
			errno = EEXIST;
			goto fail;
		}
		if (unlink(path) < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
			goto fail;
	}
	if (chmod(path, 0666) < 0 || listen(fd, backlog) < 0)
		goto fail;
	return fd;
fail:
	snprintf(err, errsize, "unix:%s: %s", path, strerror(errno));
	close(fd);
	return -1;
}

/* Binds and listens on the first address of host:port (host NULL: any) in
 * family that works. Returns the fd, or -1 with err. */
static int listen_inet(const char *spec, const char *host, const char *port, int family,
		       int backlog, char *err, size_t errsize)
{
	struct addrinfo hints, *res = NULL, *ai;
	int fd = -1, rc, on = 1, saved = EADDRNOTAVAIL;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	hints.ai_family = family;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errsize, "%s: %s", spec, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
		if (ai->ai_family == AF_INET6) {
			/* "[::1]:25" is v6 only; ":25" takes v4 too. */
			int v6only = host != NULL;

			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
		}
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, backlog) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(err, errsize, "%s: %s", spec, strerror(saved));
	return fd;
}

int net_listen(const char *spec, int backlog, char *err, size_t errsize)
{
	char host[256], port[32];
	int fd;

	if (strncmp(spec, "unix:", 5) == 0)
		return listen_unix(spec + 5, backlog, err, errsize);
	if (split_hostport(spec, host, sizeof(host), port, sizeof(port)) < 0) {
		snprintf(err, errsize, "%s: expected host:port, [v6]:port, :port or unix:/path",
			 spec);
		return -1;
	}
	if (host[0] != '\0')
		return listen_inet(spec, host, port, AF_UNSPEC, backlog, err, errsize);
	/* ":port": one dual-stack IPv6 socket, or IPv4 alone where IPv6 is off. */
	fd = listen_inet(spec, NULL, port, AF_INET6, backlog, err, errsize);
	if (fd < 0 && strstr(err, strerror(EADDRINUSE)) == NULL)
		fd = listen_inet(spec, NULL, port, AF_INET, backlog, err, errsize);
	return fd;
}

/* connect() with a deadline; fd is non-blocking. Returns 0 or -1 with errno. */
static int connect_timeout(int fd, const struct sockaddr *sa, socklen_t len, double timeout)
{
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};
	int soerr = 0, rc;
	socklen_t sl = sizeof(soerr);

	if (connect(fd, sa, len) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EAGAIN)
		return -1;
	do
		rc = poll(&pfd, 1, timeout <= 0 ? -1 : (int)(timeout * 1000));
	while (rc < 0 && errno == EINTR);
	if (rc == 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		return -1;
	if (soerr != 0) {
		errno = soerr;
		return -1;
	}
	return 0;
}

/* Puts fd back in blocking mode: net_connect's callers get a blocking socket. */
static int set_blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

int net_connect(const char *spec, double timeout, char *err, size_t errsize)
{
	char host[256], port[32];
	struct addrinfo hints, *res = NULL, *ai;
	int fd = -1, rc, saved = 0;

	if (strncmp(spec, "unix:", 5) == 0) {
		struct sockaddr_un sun;

		if (unix_addr(spec + 5, &sun, err, errsize) < 0)
			return -1;
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0 ||
		    connect_timeout(fd, (struct sockaddr *)&sun, sizeof(sun), timeout) < 0 ||
		    set_blocking(fd) < 0) {
			snprintf(err, errsize, "%s: %s", spec, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		return fd;
	}
	if (split_hostport(spec, host, sizeof(host), port, sizeof(port)) < 0 || host[0] == '\0') {
		snprintf(err, errsize, "%s: expected host:port, [v6]:port or unix:/path", spec);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_family = AF_UNSPEC;
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errsize, "%s: %s", spec, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		if (connect_timeout(fd, ai->ai_addr, ai->ai_addrlen, timeout) == 0 &&
		    set_blocking(fd) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(err, errsize, "%s: %s", spec, strerror(saved != 0 ? saved : ECONNREFUSED));
	return fd;
}

void net_addr_str(const struct sockaddr *sa, socklen_t len, char *out, size_t outsize)
{
	if (outsize == 0)
		return;
	if (sa == NULL || len < (socklen_t)sizeof(sa->sa_family)) {
		mk_strlcpy(out, "unknown", outsize);
		return;
	}
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		if (inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out,
			      (socklen_t)outsize) == NULL)
			mk_strlcpy(out, "unknown", outsize);
	} else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		/* A v4 client on a dual-stack socket is shown as v4, as Postfix does. */
		if (IN6_IS_ADDR_V4MAPPED(a)) {
			if (inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)outsize) == NULL)
				mk_strlcpy(out, "unknown", outsize);
		} else if (inet_ntop(AF_INET6, a, out, (socklen_t)outsize) == NULL) {
			mk_strlcpy(out, "unknown", outsize);
		}
	} else if (sa->sa_family == AF_UNIX) {
		mk_strlcpy(out, "unix", outsize);
	} else {
		mk_strlcpy(out, "unknown", outsize);
	}
}

int net_drop_privileges(const char *user, char *err, size_t errsize)
{
	struct passwd pw, *pwp = NULL;
	char pwbuf[4096];
	int rc;

	if (user == NULL || *user == '\0' || geteuid() != 0)
		return 0;
	rc = getpwnam_r(user, &pw, pwbuf, sizeof(pwbuf), &pwp);
	if (pwp == NULL) {
		snprintf(err, errsize, "user \"%s\": %s", user,
			 rc != 0 ? strerror(rc) : "no such user");
		return -1;
	}
	if (pw.pw_uid == 0) {
		snprintf(err, errsize, "user \"%s\" has uid 0: refusing to run as root", user);
		return -1;
	}
	/* The kernel forgets a parent-death signal when the credentials change:
	 * a service started by `mailkeep run` (which sets one so that it ends
	 * with its supervisor) arms it again below. */
	int pdeath = 0;
	pid_t parent = getppid();
	prctl(PR_GET_PDEATHSIG, &pdeath);
	/* initgroups keeps the user's supplementary groups (/etc/group): a TLS key
	 * of group ssl-cert, mode 0640, stays readable for reloads on SIGHUP */
	if (initgroups(pw.pw_name, pw.pw_gid) < 0 ||
	    setresgid(pw.pw_gid, pw.pw_gid, pw.pw_gid) < 0 ||
	    setresuid(pw.pw_uid, pw.pw_uid, pw.pw_uid) < 0) {
		snprintf(err, errsize, "cannot switch to user \"%s\": %s", user, strerror(errno));
		return -1;
	}
	/* Root must be gone for good. */
	if (setuid(0) == 0 || seteuid(0) == 0 || getuid() != pw.pw_uid || geteuid() != pw.pw_uid ||
	    getgid() != pw.pw_gid || getegid() != pw.pw_gid) {
		snprintf(err, errsize, "dropping privileges to \"%s\" did not stick", user);
		return -1;
	}
	if (pdeath != 0) {
		prctl(PR_SET_PDEATHSIG, pdeath);
		if (getppid() != parent) /* it died meanwhile */
			raise(pdeath);
	}
	return 0;
}

/* Parses a bare address (v4, v6, or [v6]) into family and 16 bytes. */
static int parse_addr(const char *text, size_t len, int *family_r, unsigned char *addr)
{
	char buf[INET6_ADDRSTRLEN + 2];

	if (len >= 2 && text[0] == '[' && text[len - 1] == ']') {
		text++;
		len -= 2;
	}
	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, text, len);
	buf[len] = '\0';
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, buf, addr) == 1) {
		*family_r = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, addr) == 1) {
		/* A v4-mapped v6 address is matched as v4. */
		if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)addr)) {
			memmove(addr, addr + 12, 4);
			memset(addr + 4, 0, 12);
			*family_r = AF_INET;
			return 0;
		}
		*family_r = AF_INET6;
		return 0;
	}
	return -1;
}

int net_cidr_parse(const char *text, struct net_cidr *cidr_r)
{
	const char *slash = strrchr(text, '/');
	size_t alen = slash != NULL ? (size_t)(slash - text) : strlen(text);
	struct net_cidr c;
	int maxbits, i;

	if (parse_addr(text, alen, &c.family, c.addr) < 0)
		return -1;
	maxbits = c.family == AF_INET ? 32 : 128;
	if (slash != NULL) {
		uint64_t p;

		if (mk_parse_u64(slash + 1, 0, (uint64_t)maxbits, &p) < 0)
			return -1;
		c.prefix = (int)p;
	} else {
		c.prefix = maxbits;
	}
	/* Clear host bits, as Postfix's cidr tables require them clear; we
	 * are lenient and just mask them. */
	for (i = c.prefix; i < 128; i++)
		c.addr[i / 8] &= (unsigned char)~(0x80u >> (i % 8));
	*cidr_r = c;
	return 0;
}

int net_cidr_match(const struct net_cidr *cidr, const char *addr)
{
	unsigned char a[16];
	int family, full, rest;

	if (addr == NULL || parse_addr(addr, strlen(addr), &family, a) < 0 ||
	    family != cidr->family)
		return 0;
	full = cidr->prefix / 8;
	rest = cidr->prefix % 8;
	if (memcmp(a, cidr->addr, (size_t)full) != 0)
		return 0;
	if (rest != 0) {
		unsigned char mask = (unsigned char)(0xff00u >> rest);

		if ((a[full] & mask) != (cidr->addr[full] & mask))
			return 0;
	}
	return 1;
}

int net_cidr_match_list(const char *addr, const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct net_cidr c;

		if (net_cidr_parse(list[i], &c) == 0 && net_cidr_match(&c, addr))
			return 1;
	}
	return 0;
}
