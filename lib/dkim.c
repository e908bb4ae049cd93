/* dkim — DKIM signing and keys (lib/dkim.h). libopendkim does the signing
 * (canonicalisation, hashing, the header's syntax); OpenSSL makes the keys. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <opendkim/dkim.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/dkim.h"
#include "lib/util.h"
#include "lib/xmalloc.h"

#define KEY_FILE_MAX 16384
#define SIG_MAX 65536

static DKIM_LIB *lib;
static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void lib_init(void)
{
	lib = dkim_init(NULL, NULL);
	if (lib != NULL) {
		/* input with CRLF line ends; no signature over Received: (hops add them) */
		unsigned int flags = DKIM_LIBFLAGS_FIXCRLF;
		dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof(flags));
	}
}

int dkim_from_domain(const void *msg, size_t len, char *out, size_t outsize)
{
	const char *p = msg, *end = p + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		size_t ll = (size_t)(le - p);
		if (ll == 0 || (ll == 1 && p[0] == '\r'))
			break; /* end of the header */
		if (ll > 5 && strncasecmp(p, "From:", 5) == 0) {
			/* the value with its continuation lines */
			const char *v = p + 5, *ve = le;
			while (ve < end && ve + 1 < end && (ve[1] == ' ' || ve[1] == '\t')) {
				const char *n2 = memchr(ve + 1, '\n', (size_t)(end - ve - 1));
				ve = n2 ? n2 : end;
			}
			const char *lt = memchr(v, '<', (size_t)(ve - v));
			const char *a = lt ? lt + 1 : v;
			const char *ae = lt ? memchr(a, '>', (size_t)(ve - a)) : ve;
			if (ae == NULL)
				ae = ve;
			const char *at = NULL;
			for (const char *q = a; q < ae; q++)
				if (*q == '@')
					at = q;
			if (at == NULL)
				return -1;
			size_t o = 0;
			for (const char *q = at + 1; q < ae && o + 1 < outsize; q++) {
				unsigned char c = (unsigned char)*q;
				if (c == '>' || c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
				    c == ',' || c == ';' || c == ')')
					break;
				out[o++] = (char)tolower(c);
			}
			out[o] = 0;
			return o > 0 ? 0 : -1;
		}
		p = le + 1;
	}
	return -1;
}

static int name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max || s[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '_' || s[i] == '.'))
			return 0;
	return strstr(s, "..") == NULL;
}

/* libopendkim's header folds with bare LF: make every line end CRLF. */
static void append_crlf(struct buf *b, const unsigned char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			buf_append(b, "\r\n", 2);
		else
			buf_append(b, &s[i], 1);
	}
}

/* --- Ed25519 (RFC 8463) with OpenSSL --------------------------------------------
 * Debian 12's libopendkim signs Ed25519 but never frees the key it loads for
 * each signature (~470 bytes per message, found by LeakSanitizer), which a
 * daemon signing for years cannot afford; so this signature is made here, as
 * RFC 6376 and RFC 8463 say: relaxed/relaxed canonical forms, SHA-256 of them,
 * and PureEdDSA over that hash. dkimpy verifies it in the tests. */

static const char *const sign_fields[] = {
    "from",	  "to",		  "cc",		  "subject",
    "date",	  "message-id",	  "reply-to",	  "in-reply-to",
    "references", "mime-version", "content-type", "content-transfer-encoding",
    NULL,
};

struct hfield {
	const char *p; /* the whole field, with its folded lines and final CRLF */
	size_t len;
	size_t name_len;
	int used;
};

/* Relaxed header canonical form (RFC 6376 3.4.2) of one field, with CRLF. */
static void relax_header(struct buf *out, const struct hfield *f)
{
	int sp = 0;

	for (size_t i = 0; i < f->name_len; i++) {
		char c = (char)tolower((unsigned char)f->p[i]);
		buf_append(out, &c, 1);
	}
	buf_append(out, ":", 1);
	/* the value: unfolded, runs of WSP made one SP, none at either end */
	size_t i = f->name_len + 1, end = f->len;
	while (end > i && (f->p[end - 1] == '\r' || f->p[end - 1] == '\n'))
		end--;
	while (i < end && (f->p[i] == ' ' || f->p[i] == '\t' || f->p[i] == '\r' || f->p[i] == '\n'))
		i++;
	for (; i < end; i++) {
		char c = f->p[i];
		if (c == '\r' || c == '\n')
			continue;
		if (c == ' ' || c == '\t') {
			sp = 1;
			continue;
		}
		if (sp)
			buf_append(out, " ", 1);
		sp = 0;
		buf_append(out, &c, 1);
	}
	buf_append(out, "\r\n", 2);
}

/* Relaxed body canonical form (RFC 6376 3.4.4), hashed with SHA-256. */
static void relax_body_hash(const char *b, size_t len, unsigned char hash[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t empty = 0; /* empty lines held back: trailing ones are dropped */
	unsigned int hl = 32;
	struct buf line;

	buf_init(&line, len + 3);
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	for (size_t i = 0; i < len;) {
		const char *nl = memchr(b + i, '\n', len - i);
		size_t e = nl ? (size_t)(nl - b) : len;
		size_t ll = e - i;
		if (ll > 0 && b[i + ll - 1] == '\r')
			ll--;
		buf_reset(&line);
		int sp = 0;
		for (size_t k = 0; k < ll; k++) {
			char c = b[i + k];
			if (c == ' ' || c == '\t') {
				sp = 1;
				continue;
			}
			if (sp)
				buf_append(&line, " ", 1);
			sp = 0;
			buf_append(&line, &c, 1);
		}
		if (line.len == 0) {
			empty++;
		} else {
			for (; empty > 0; empty--)
				EVP_DigestUpdate(ctx, "\r\n", 2);
			EVP_DigestUpdate(ctx, line.data, line.len);
			EVP_DigestUpdate(ctx, "\r\n", 2);
		}
		i = nl ? e + 1 : len;
	}
	EVP_DigestFinal_ex(ctx, hash, &hl);
	EVP_MD_CTX_free(ctx);
	buf_free(&line);
}

static int sign_ed25519(const char *keytext, const char *selector, const char *domain,
			const void *msg, size_t len, struct buf *out, char *err, size_t errsize)
{
	const char *m = msg;
	struct hfield *f = NULL;
	size_t nf = 0, capf = 0, body = len, i = 0;
	unsigned char bh[32], hash[32], sig[64];
	char bh64[64], sig64[128];
	struct buf h, val, data;
	int rc = -1;

	/* the header fields, and where the body starts */
	while (i < len) {
		if (m[i] == '\n' || (m[i] == '\r' && i + 1 < len && m[i + 1] == '\n')) {
			body = i + (m[i] == '\r' ? 2 : 1);
			break;
		}
		size_t st = i;
		do {
			const char *nl = memchr(m + i, '\n', len - i);
			i = nl ? (size_t)(nl - m) + 1 : len;
		} while (i < len && (m[i] == ' ' || m[i] == '\t'));
		const char *colon = memchr(m + st, ':', i - st);
		if (colon == NULL)
			continue;
		if (nf == capf) {
			capf = capf ? capf * 2 : 32;
			f = xreallocarray(f, capf, sizeof(*f));
		}
		f[nf++] = (struct hfield){m + st, i - st, (size_t)(colon - (m + st)), 0};
	}
	relax_body_hash(m + (body < len ? body : len), body < len ? len - body : 0, bh);
	base64_encode(bh, 32, bh64, sizeof(bh64));
	buf_init(&h, 4096);
	buf_init(&data, len + 8192);
	/* h=: the fields present, each instance counted, the last one first */
	for (size_t k = 0; sign_fields[k]; k++) {
		size_t fl = strlen(sign_fields[k]);
		for (size_t n = nf; n-- > 0;) {
			if (f[n].used || f[n].name_len != fl ||
			    strncasecmp(f[n].p, sign_fields[k], fl) != 0)
				continue;
			f[n].used = 1;
			if (h.len)
				buf_append(&h, ":", 1);
			buf_append(&h, sign_fields[k], fl);
			relax_header(&data, &f[n]);
		}
	}
	buf_init(&val, 4096);
	buf_printf(&val,
		   "v=1; a=ed25519-sha256; c=relaxed/relaxed; d=%s; s=%s;\r\n\tt=%lld; "
		   "bh=%s;\r\n\th=%s;\r\n\tb=",
		   domain, selector, (long long)time(NULL), bh64, h.data ? h.data : "from");
	struct hfield self = {NULL, 0, strlen(DKIM_SIGNHEADER), 0};
	struct buf whole;
	buf_init(&whole, val.len + 64);
	buf_printf(&whole, "%s: %s", DKIM_SIGNHEADER, val.data);
	self.p = whole.data;
	self.len = whole.len;
	relax_header(&data, &self);
	data.len -= 2; /* the signature's own field without its CRLF (RFC 6376 3.7) */
	unsigned int hl = 32;
	EVP_Digest(data.data, data.len, hash, &hl, EVP_sha256(), NULL);

	BIO *bio = BIO_new_mem_buf(keytext, -1);
	EVP_PKEY *pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t sl = sizeof(sig);
	if (pk == NULL || ctx == NULL || EVP_DigestSignInit(ctx, NULL, NULL, NULL, pk) != 1 ||
	    EVP_DigestSign(ctx, sig, &sl, hash, sizeof(hash)) != 1 || sl != 64) {
		snprintf(err, errsize, "signing for %s (selector %s): Ed25519 failed", domain,
			 selector);
	} else {
		base64_encode(sig, 64, sig64, sizeof(sig64));
		buf_append_str(out, whole.data);
		/* b= folded as libopendkim folds: 70 characters a line */
		size_t total = strlen(sig64);
		for (size_t k = 0; k < total; k += 70) {
			if (k)
				buf_append_str(out, "\r\n\t ");
			buf_append(out, sig64 + k, total - k < 70 ? total - k : 70);
		}
		buf_append(out, "\r\n", 2);
		rc = 0;
	}
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	buf_free(&whole);
	buf_free(&val);
	buf_free(&h);
	buf_free(&data);
	free(f);
	return rc;
}

static int sign_one(const char *keytext, int ed25519, const char *selector, const char *domain,
		    const void *msg, size_t len, struct buf *out, char *err, size_t errsize)
{
	DKIM_STAT st;
	DKIM *d;
	unsigned char *hdr = NULL;
	size_t hlen = 0;

	if (ed25519)
		return sign_ed25519(keytext, selector, domain, msg, len, out, err, errsize);
	d = dkim_sign(lib, (const unsigned char *)"mailkeep", NULL, (dkim_sigkey_t)keytext,
		      (const unsigned char *)selector, (const unsigned char *)domain,
		      DKIM_CANON_RELAXED, DKIM_CANON_RELAXED,
		      ed25519 ? DKIM_SIGN_ED25519SHA256 : DKIM_SIGN_RSASHA256, -1, &st);
	if (d == NULL) {
		snprintf(err, errsize, "dkim_sign: %s", dkim_getresultstr(st));
		return -1;
	}
	st = dkim_chunk(d, (unsigned char *)msg, len);
	if (st == DKIM_STAT_OK)
		st = dkim_chunk(d, NULL, 0);
	if (st == DKIM_STAT_OK)
		st = dkim_eom(d, NULL);
	if (st == DKIM_STAT_OK)
		st = dkim_getsighdr_d(d, strlen(DKIM_SIGNHEADER) + 2, &hdr, &hlen);
	if (st != DKIM_STAT_OK) {
		snprintf(err, errsize, "signing for %s (selector %s): %s (%s)", domain, selector,
			 dkim_getresultstr(st), dkim_geterror(d) ? dkim_geterror(d) : "");
		dkim_free(d);
		return -1;
	}
	buf_append_str(out, DKIM_SIGNHEADER ": ");
	append_crlf(out, hdr, hlen);
	buf_append(out, "\r\n", 2);
	dkim_free(d);
	return 0;
}

/* The key in path: its PEM text and whether it is Ed25519. */
static int read_key(const char *path, char **text_r, int *ed25519_r, char *err, size_t errsize)
{
	char *data = NULL;
	size_t len = 0;

	if (mk_read_file(path, KEY_FILE_MAX, &data, &len) < 0) {
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		return -1;
	}
	BIO *bio = BIO_new_mem_buf(data, (int)len);
	EVP_PKEY *pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	if (pk == NULL) {
		snprintf(err, errsize, "%s: not a PEM private key", path);
		explicit_bzero(data, len);
		free(data);
		return -1;
	}
	*ed25519_r = EVP_PKEY_get_id(pk) == EVP_PKEY_ED25519;
	/* libopendkim reads PEM itself (PEM_read_bio_PrivateKey), RSA and Ed25519 alike */
	if (!*ed25519_r && EVP_PKEY_get_id(pk) != EVP_PKEY_RSA) {
		snprintf(err, errsize, "%s: neither RSA nor Ed25519", path);
		EVP_PKEY_free(pk);
		explicit_bzero(data, len);
		free(data);
		return -1;
	}
	EVP_PKEY_free(pk);
	*text_r = data;
	return 0;
}

int dkim_sign_message(const char *keydir, const char *domain, const void *msg, size_t len,
		      char **hdrs_r, size_t *len_r, char *err, size_t errsize)
{
	char dirpath[4096];
	struct buf out;
	DIR *dir;
	struct dirent *de;
	int rc = 0;

	*hdrs_r = NULL;
	*len_r = 0;
	if (keydir == NULL || keydir[0] == 0 || !name_ok(domain, 253))
		return 0;
	snprintf(dirpath, sizeof(dirpath), "%s/%s", keydir, domain);
	if ((dir = opendir(dirpath)) == NULL)
		return 0; /* no key for this domain: not signed */
	pthread_once(&lib_once, lib_init);
	if (lib == NULL) {
		closedir(dir);
		snprintf(err, errsize, "libopendkim could not start");
		return -1;
	}
	buf_init(&out, SIG_MAX);
	/* in name order, so that the fields come out the same each time */
	struct dirent **list = NULL;
	closedir(dir);
	int n = scandir(dirpath, &list, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		de = list[i];
		size_t nl = strlen(de->d_name);
		char selector[128], path[4400];
		if (rc == 0 && nl > 4 && strcmp(de->d_name + nl - 4, ".key") == 0 &&
		    nl - 4 < sizeof(selector)) {
			memcpy(selector, de->d_name, nl - 4);
			selector[nl - 4] = 0;
			if (name_ok(selector, 63)) {
				char *key = NULL;
				int ed = 0;
				snprintf(path, sizeof(path), "%s/%s", dirpath, de->d_name);
				rc = read_key(path, &key, &ed, err, errsize);
				if (rc == 0)
					rc = sign_one(key, ed, selector, domain, msg, len, &out,
						      err, errsize);
				if (key) {
					explicit_bzero(key, strlen(key));
					free(key);
				}
			}
		}
		free(de);
	}
	free(list);
	if (rc != 0 || out.len == 0) {
		buf_free(&out);
		return rc;
	}
	*hdrs_r = out.data;
	*len_r = out.len;
	return 0;
}

static int txt_of(EVP_PKEY *pk, const char *domain, const char *selector, char *txt, size_t txtsize,
		  char *err, size_t errsize)
{
	unsigned char *der = NULL, raw[32];
	const unsigned char *pub;
	size_t plen;
	int ed = EVP_PKEY_get_id(pk) == EVP_PKEY_ED25519;
	char b64[2048];

	if (ed) {
		plen = sizeof(raw);
		if (EVP_PKEY_get_raw_public_key(pk, raw, &plen) != 1) {
			snprintf(err, errsize, "cannot read the Ed25519 public key");
			return -1;
		}
		pub = raw;
	} else {
		int l = i2d_PUBKEY(pk, &der);
		if (l <= 0) {
			snprintf(err, errsize, "cannot encode the public key");
			return -1;
		}
		pub = der;
		plen = (size_t)l;
	}
	int bl = base64_encode(pub, plen, b64, sizeof(b64));
	OPENSSL_free(der);
	if (bl < 0) {
		snprintf(err, errsize, "public key too long");
		return -1;
	}
	/* strings of at most 255 bytes each (RFC 1035 character-strings) */
	int n = snprintf(txt, txtsize, "%s._domainkey.%s. IN TXT ( \"v=DKIM1; k=%s; \"", selector,
			 domain, ed ? "ed25519" : "rsa");
	size_t o = n > 0 ? (size_t)n : 0, b = strlen(b64);
	for (size_t i = 0; i < b && o < txtsize; i += 250) {
		n = snprintf(txt + o, txtsize - o, "\n\t\"%s%.250s\"", i == 0 ? "p=" : "", b64 + i);
		o += n > 0 ? (size_t)n : 0;
	}
	if (o < txtsize)
		snprintf(txt + o, txtsize - o, " )");
	return 0;
}

int dkim_keygen(const char *keydir, const char *domain, const char *selector, int ed25519, int bits,
		const char *owner, char *txt, size_t txtsize, char *err, size_t errsize)
{
	char dirpath[4096], path[4400];
	EVP_PKEY *pk;
	FILE *f;
	int fd, rc = -1;

	if (!name_ok(domain, 253) || strchr(domain, '.') == NULL) {
		snprintf(err, errsize, "\"%s\" is not a domain name", domain);
		return -1;
	}
	if (!name_ok(selector, 63) || strchr(selector, '.') != NULL) {
		snprintf(err, errsize, "\"%s\" is not a usable selector (letters, digits, - and _)",
			 selector);
		return -1;
	}
	snprintf(dirpath, sizeof(dirpath), "%s/%s", keydir, domain);
	if (mk_mkdirs(dirpath, 0750) < 0) {
		snprintf(err, errsize, "cannot create %s: %s", dirpath, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%s.key", dirpath, selector);
	pk = ed25519 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
		     : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	if (pk == NULL) {
		snprintf(err, errsize, "cannot make the key");
		return -1;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errsize, "%s: %s", path,
			 errno == EEXIST ? "exists already (a new selector for a new key)"
					 : strerror(errno));
		EVP_PKEY_free(pk);
		return -1;
	}
	f = fdopen(fd, "w");
	if (f == NULL || PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) != 1 ||
	    fflush(f) != 0 || fsync(fd) != 0) {
		snprintf(err, errsize, "cannot write %s", path);
		if (f)
			fclose(f);
		else
			close(fd);
		unlink(path);
		EVP_PKEY_free(pk);
		return -1;
	}
	if (owner != NULL && owner[0]) {
		struct passwd *pw = getpwnam(owner);
		if (pw != NULL) {
			if (fchown(fd, pw->pw_uid, pw->pw_gid) < 0 ||
			    chown(dirpath, pw->pw_uid, pw->pw_gid) < 0) {
				/* the key stays root's: say so, the daemons would not read it */
				snprintf(err, errsize, "cannot give %s to %s: %s", path, owner,
					 strerror(errno));
				fclose(f);
				EVP_PKEY_free(pk);
				return -1;
			}
		}
	}
	fclose(f);
	rc = txt_of(pk, domain, selector, txt, txtsize, err, errsize);
	EVP_PKEY_free(pk);
	return rc;
}

int dkim_txt_record(const char *keyfile, const char *domain, const char *selector, char *txt,
		    size_t txtsize, char *err, size_t errsize)
{
	FILE *f = fopen(keyfile, "r");
	EVP_PKEY *pk;
	int rc;

	if (f == NULL) {
		snprintf(err, errsize, "%s: %s", keyfile, strerror(errno));
		return -1;
	}
	pk = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (pk == NULL) {
		snprintf(err, errsize, "%s: not a PEM private key", keyfile);
		return -1;
	}
	rc = txt_of(pk, domain, selector, txt, txtsize, err, errsize);
	EVP_PKEY_free(pk);
	return rc;
}
