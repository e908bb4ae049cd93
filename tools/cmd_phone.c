/* cmd_phone — `mailkeep phone USER`: a phone (or Thunderbird) set up in one
 * step.
 *
 * Writes into a directory (default: the current one)
 *   USER.mobileconfig   an Apple configuration profile (iOS, macOS): one
 *                       com.apple.mail.managed payload, IMAP over TLS and
 *                       SMTP submission; the password is not in it (the
 *                       device asks). Unsigned by default; signed (CMS
 *                       SignedData, DER, as `openssl smime -sign -nodetach
 *                       -outform der` makes) when phone_profile_sign_cert_file
 *                       and phone_profile_sign_key_file are set.
 *   config-v1.1.xml     Mozilla's autoconfig file, which Thunderbird, K-9 /
 *                       Thunderbird for Android and FairEmail fetch from
 *                       https://autoconfig.DOMAIN/mail/config-v1.1.xml
 * and prints a QR code of phone_profile_url/USER.mobileconfig on the
 * terminal (libqrencode): the iPhone's camera opens it and offers the
 * profile. doc/tools.md says where to publish both and which DNS records
 * (RFC 6186 SRV) let other clients find the servers.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/util.h"
#include "tools/cli.h"
#include "tools/params.h"

struct phone {
	const char *user, *address, *name, *outdir;
	char local[256], domain[256];
	struct tools_params p;
};

/* XML text: & < > " ' escaped. Returns -1 if it does not fit or holds a control character. */
static int xml_escape(const char *in, char *out, size_t outsize)
{
	size_t o = 0;

	for (; *in != '\0'; in++) {
		const char *rep = NULL;
		char one[2] = {*in, '\0'};
		switch (*in) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&apos;";
			break;
		default:
			if ((unsigned char)*in < 0x20)
				return -1;
			rep = one;
		}
		size_t n = strlen(rep);
		if (o + n + 1 > outsize)
			return -1;
		memcpy(out + o, rep, n);
		o += n;
	}
	out[o] = '\0';
	return 0;
}

static void uuid(char out[37])
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof(b)) != 1) {
		cli_error("phone: no random bytes: %s", ERR_reason_error_string(ERR_get_error()));
		exit(1);
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

/* Writes data to dir/name through a temporary file, mode 0644. */
static int write_file(const char *dir, const char *name, const void *data, size_t len, char *path,
		      size_t pathsize)
{
	char tmp[4200];
	int fd;

	if ((size_t)snprintf(path, pathsize, "%s/%s", dir, name) >= pathsize ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid()) >= sizeof(tmp)) {
		cli_error("phone: %s/%s: path too long", dir, name);
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || mk_write_all(fd, data, len) < 0 || fsync(fd) < 0 || close(fd) < 0 ||
	    rename(tmp, path) < 0) {
		cli_error("phone: cannot write %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* The .mobileconfig property list (XML) into a malloc'd string. */
static char *mobileconfig(const struct phone *ph)
{
	char addr[600], user[600], name[600], ihost[600], shost[600], dom[600], u1[37], u2[37];
	char *out = NULL;
	size_t size = 0;
	FILE *f;

	if (xml_escape(ph->address, addr, sizeof(addr)) < 0 ||
	    xml_escape(ph->user, user, sizeof(user)) < 0 ||
	    xml_escape(ph->name, name, sizeof(name)) < 0 ||
	    xml_escape(ph->p.phone_imap_host, ihost, sizeof(ihost)) < 0 ||
	    xml_escape(ph->p.phone_submission_host, shost, sizeof(shost)) < 0 ||
	    xml_escape(ph->domain, dom, sizeof(dom)) < 0) {
		cli_error("phone: a name or address holds control characters or is too long");
		return NULL;
	}
	uuid(u1);
	uuid(u2);
	if ((f = open_memstream(&out, &size)) == NULL) {
		cli_error("phone: %s", strerror(errno));
		return NULL;
	}
	fprintf(f,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
		"\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
		"<plist version=\"1.0\">\n<dict>\n"
		"\t<key>PayloadContent</key>\n\t<array>\n\t\t<dict>\n"
		"\t\t\t<key>EmailAccountDescription</key>\n\t\t\t<string>%s</string>\n"
		"\t\t\t<key>EmailAccountName</key>\n\t\t\t<string>%s</string>\n"
		"\t\t\t<key>EmailAccountType</key>\n\t\t\t<string>EmailTypeIMAP</string>\n"
		"\t\t\t<key>EmailAddress</key>\n\t\t\t<string>%s</string>\n"
		"\t\t\t<key>IncomingMailServerAuthentication</key>\n"
		"\t\t\t<string>EmailAuthPassword</string>\n"
		"\t\t\t<key>IncomingMailServerHostName</key>\n\t\t\t<string>%s</string>\n"
		"\t\t\t<key>IncomingMailServerPortNumber</key>\n\t\t\t<integer>%lld</integer>\n"
		"\t\t\t<key>IncomingMailServerUseSSL</key>\n\t\t\t<true/>\n"
		"\t\t\t<key>IncomingMailServerUsername</key>\n\t\t\t<string>%s</string>\n"
		"\t\t\t<key>OutgoingMailServerAuthentication</key>\n"
		"\t\t\t<string>EmailAuthPassword</string>\n"
		"\t\t\t<key>OutgoingMailServerHostName</key>\n\t\t\t<string>%s</string>\n"
		"\t\t\t<key>OutgoingMailServerPortNumber</key>\n\t\t\t<integer>%lld</integer>\n"
		"\t\t\t<key>OutgoingMailServerUseSSL</key>\n\t\t\t<true/>\n"
		"\t\t\t<key>OutgoingMailServerUsername</key>\n\t\t\t<string>%s</string>\n"
		"\t\t\t<key>OutgoingPasswordSameAsIncomingPassword</key>\n\t\t\t<true/>\n"
		"\t\t\t<key>PayloadDescription</key>\n\t\t\t<string>Mail for %s</string>\n"
		"\t\t\t<key>PayloadDisplayName</key>\n\t\t\t<string>%s</string>\n"
		"\t\t\t<key>PayloadIdentifier</key>\n"
		"\t\t\t<string>org.mailkeep.%s.%s.account</string>\n"
		"\t\t\t<key>PayloadType</key>\n\t\t\t<string>com.apple.mail.managed</string>\n"
		"\t\t\t<key>PayloadUUID</key>\n\t\t\t<string>%s</string>\n"
		"\t\t\t<key>PayloadVersion</key>\n\t\t\t<integer>1</integer>\n"
		"\t\t\t<key>PreventAppSheet</key>\n\t\t\t<false/>\n"
		"\t\t\t<key>PreventMove</key>\n\t\t\t<false/>\n"
		"\t\t\t<key>SMIMEEnabled</key>\n\t\t\t<false/>\n"
		"\t\t</dict>\n\t</array>\n"
		"\t<key>PayloadDescription</key>\n\t<string>Sets up the mail account %s "
		"(IMAP and SMTP submission over TLS). The device asks for the password.</string>\n"
		"\t<key>PayloadDisplayName</key>\n\t<string>Mail: %s</string>\n"
		"\t<key>PayloadIdentifier</key>\n\t<string>org.mailkeep.%s.%s</string>\n"
		"\t<key>PayloadOrganization</key>\n\t<string>%s</string>\n"
		"\t<key>PayloadRemovalDisallowed</key>\n\t<false/>\n"
		"\t<key>PayloadType</key>\n\t<string>Configuration</string>\n"
		"\t<key>PayloadUUID</key>\n\t<string>%s</string>\n"
		"\t<key>PayloadVersion</key>\n\t<integer>1</integer>\n"
		"</dict>\n</plist>\n",
		addr, name, addr, ihost, ph->p.phone_imap_port, user, shost,
		ph->p.phone_submission_port, user, addr, addr, dom, user, u1, addr, addr, dom, user,
		dom, u2);
	fclose(f);
	return out;
}

/* CMS SignedData (DER) of data, signed with the configured certificate. */
static int sign(const struct phone *ph, const char *data, size_t len, unsigned char **out_r,
		int *outlen_r)
{
	FILE *cf = fopen(ph->p.phone_profile_sign_cert_file, "r");
	FILE *kf = cf != NULL ? fopen(ph->p.phone_profile_sign_key_file, "r") : NULL;
	X509 *cert = NULL, *more;
	EVP_PKEY *key = NULL;
	STACK_OF(X509) *chain = sk_X509_new_null();
	BIO *in = NULL;
	CMS_ContentInfo *cms = NULL;
	int rc = -1;

	if (cf == NULL || kf == NULL) {
		cli_error("phone: cannot read %s: %s",
			  cf == NULL ? ph->p.phone_profile_sign_cert_file
				     : ph->p.phone_profile_sign_key_file,
			  strerror(errno));
		goto out;
	}
	if ((cert = PEM_read_X509(cf, NULL, NULL, NULL)) == NULL) {
		cli_error("phone: %s: no PEM certificate", ph->p.phone_profile_sign_cert_file);
		goto out;
	}
	while ((more = PEM_read_X509(cf, NULL, NULL, NULL)) != NULL)
		sk_X509_push(chain, more); /* the intermediates, sent along */
	ERR_clear_error();
	if ((key = PEM_read_PrivateKey(kf, NULL, NULL, NULL)) == NULL) {
		cli_error("phone: %s: no PEM private key", ph->p.phone_profile_sign_key_file);
		goto out;
	}
	if (X509_check_private_key(cert, key) != 1) {
		cli_error("phone: %s does not belong to the certificate in %s",
			  ph->p.phone_profile_sign_key_file, ph->p.phone_profile_sign_cert_file);
		goto out;
	}
	in = BIO_new_mem_buf(data, (int)len);
	cms = CMS_sign(cert, key, chain, in, CMS_BINARY | CMS_NOSMIMECAP);
	if (cms == NULL) {
		cli_error("phone: signing failed: %s", ERR_reason_error_string(ERR_get_error()));
		goto out;
	}
	*out_r = NULL;
	*outlen_r = i2d_CMS_ContentInfo(cms, out_r);
	rc = *outlen_r > 0 ? 0 : -1;
out:
	if (cf != NULL)
		fclose(cf);
	if (kf != NULL)
		fclose(kf);
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	X509_free(cert);
	EVP_PKEY_free(key);
	sk_X509_pop_free(chain, X509_free);
	return rc;
}

/* Mozilla's autoconfig (clientConfig 1.1) into a malloc'd string. */
static char *autoconfig(const struct phone *ph)
{
	char dom[600], ihost[600], shost[600], login[600];
	char *out = NULL;
	size_t size = 0;
	FILE *f;

	/* the login is the user name: the address's local part when they are the same */
	if (xml_escape(ph->domain, dom, sizeof(dom)) < 0 ||
	    xml_escape(ph->p.phone_imap_host, ihost, sizeof(ihost)) < 0 ||
	    xml_escape(ph->p.phone_submission_host, shost, sizeof(shost)) < 0 ||
	    xml_escape(strcmp(ph->local, ph->user) == 0 ? "%EMAILLOCALPART%" : ph->user, login,
		       sizeof(login)) < 0)
		return NULL;
	if ((f = open_memstream(&out, &size)) == NULL) {
		cli_error("phone: %s", strerror(errno));
		return NULL;
	}
	fprintf(f,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<clientConfig version=\"1.1\">\n"
		"  <emailProvider id=\"%s\">\n"
		"    <domain>%s</domain>\n"
		"    <displayName>Mail at %s</displayName>\n"
		"    <displayShortName>%s</displayShortName>\n"
		"    <incomingServer type=\"imap\">\n"
		"      <hostname>%s</hostname>\n"
		"      <port>%lld</port>\n"
		"      <socketType>SSL</socketType>\n"
		"      <authentication>password-cleartext</authentication>\n"
		"      <username>%s</username>\n"
		"    </incomingServer>\n"
		"    <outgoingServer type=\"smtp\">\n"
		"      <hostname>%s</hostname>\n"
		"      <port>%lld</port>\n"
		"      <socketType>%s</socketType>\n"
		"      <authentication>password-cleartext</authentication>\n"
		"      <username>%s</username>\n"
		"    </outgoingServer>\n"
		"  </emailProvider>\n"
		"</clientConfig>\n",
		dom, dom, dom, dom, ihost, ph->p.phone_imap_port, login, shost,
		ph->p.phone_submission_port,
		ph->p.phone_submission_port == 465 ? "SSL" : "STARTTLS", login);
	fclose(f);
	return out;
}

/* The QR code of text on stdout, two rows of modules per line, as `qrencode
 * -t UTF8` draws it: light modules are the block characters (a dark
 * terminal's foreground), with a quiet zone of 4 modules. */
static int print_qr(const char *text)
{
	static const char *const glyph[4] = {" ", "\xe2\x96\x80", "\xe2\x96\x84",
					     "\xe2\x96\x88"}; /* none, upper, lower, full */
	QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	const int q = 4;

	if (qr == NULL) {
		cli_error("phone: cannot make a QR code of %s: %s", text, strerror(errno));
		return -1;
	}
	int w = qr->width, all = w + 2 * q;
	for (int y = 0; y < all; y += 2) {
		for (int x = 0; x < all; x++) {
			int light = 0;
			for (int k = 0; k < 2; k++) {
				int yy = y + k - q, xx = x - q, dark = 0;
				if (yy >= 0 && yy < w && xx >= 0 && xx < w)
					dark = qr->data[yy * w + xx] & 1;
				if (!dark)
					light |= 1 << k;
			}
			fputs(glyph[light], stdout);
		}
		fputc('\n', stdout);
	}
	QRcode_free(qr);
	return 0;
}

static const char phone_help[] =
    "Writes DIR/USER.mobileconfig (an Apple configuration profile for iOS and macOS:\n"
    "IMAP over TLS and SMTP submission, the password asked on the device) and\n"
    "DIR/config-v1.1.xml (the autoconfig file Thunderbird, K-9 and FairEmail fetch),\n"
    "and prints a QR code of phone_profile_url/USER.mobileconfig: scanned with the\n"
    "iPhone's camera, it opens the profile. The profile is signed (CMS) when\n"
    "phone_profile_sign_cert_file and phone_profile_sign_key_file are set.\n"
    "Host names and ports come from the phone_* settings (mailkeep.conf(5)).\n"
    "doc/tools.md says where to publish the files and which DNS SRV records help.\n\n"
    "options:\n"
    "  --address ADDR   the e-mail address (default USER@$phone_mail_domain)\n"
    "  --name TEXT      the name shown as the sender (default: the address)\n"
    "  --out DIR        where to write the files (default: the current directory)\n"
    "  --no-qr          do not print the QR code\n\n"
    "example:\n"
    "  mailkeep phone --out /var/www/autoconfig/mail bob\n";

static int run(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"address", required_argument, NULL, 'a'},
	    {"name", required_argument, NULL, 'n'},
	    {"out", required_argument, NULL, 'o'},
	    {"no-qr", no_argument, NULL, 'Q'},
	    {NULL, 0, NULL, 0},
	};
	struct phone ph = {0};
	struct config *cfg;
	char addrbuf[600], path[4200], url[2048];
	char *plist = NULL, *xml = NULL;
	unsigned char *der = NULL;
	int c, noqr = 0, rc = 1, derlen = 0;

	ph.outdir = ".";
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			ph.address = optarg;
			break;
		case 'n':
			ph.name = optarg;
			break;
		case 'o':
			ph.outdir = optarg;
			break;
		case 'Q':
			noqr = 1;
			break;
		default:
			return cli_usage(&cmd_phone);
		}
	}
	if (argc - optind != 1)
		return cli_usage(&cmd_phone);
	ph.user = argv[optind];
	if ((cfg = cli_config(cli)) == NULL)
		return 1;
	tools_params_bind(cfg, &ph.p);
	if (cli_directory_embedded(cli)) {
		struct store *store = cli_store(cli, 1);
		struct store_txn *txn = NULL;
		struct store_user u;
		int sr;
		if (store == NULL)
			goto out;
		if ((sr = store_read_begin(store, &txn)) == 0) {
			sr = store_user_get(txn, ph.user, &u);
			store_read_end(&txn);
		}
		if (sr == STORE_ENOTFOUND) {
			cli_error("phone: no user '%s' (mailkeep user list)", ph.user);
			goto out;
		}
	}
	if (ph.address == NULL) {
		snprintf(addrbuf, sizeof(addrbuf), "%s@%s", ph.user, ph.p.phone_mail_domain);
		ph.address = addrbuf;
	}
	const char *at = strrchr(ph.address, '@');
	if (at == NULL || at == ph.address || at[1] == '\0' ||
	    (size_t)(at - ph.address) >= sizeof(ph.local) || strlen(at + 1) >= sizeof(ph.domain)) {
		cli_error("phone: '%s' is not an e-mail address (give --address)", ph.address);
		goto out;
	}
	memcpy(ph.local, ph.address, (size_t)(at - ph.address));
	ph.local[at - ph.address] = '\0';
	mk_strlcpy(ph.domain, at + 1, sizeof(ph.domain));
	if (ph.name == NULL)
		ph.name = ph.address;
	if ((plist = mobileconfig(&ph)) == NULL || (xml = autoconfig(&ph)) == NULL)
		goto out;
	char fname[300];
	snprintf(fname, sizeof(fname), "%s.mobileconfig", ph.user);
	int signing = ph.p.phone_profile_sign_cert_file[0] != '\0';
	if (signing) {
		if (ph.p.phone_profile_sign_key_file[0] == '\0') {
			cli_error("phone: phone_profile_sign_cert_file is set but not "
				  "phone_profile_sign_key_file");
			goto out;
		}
		if (sign(&ph, plist, strlen(plist), &der, &derlen) < 0)
			goto out;
		if (write_file(ph.outdir, fname, der, (size_t)derlen, path, sizeof(path)) < 0)
			goto out;
	} else if (write_file(ph.outdir, fname, plist, strlen(plist), path, sizeof(path)) < 0) {
		goto out;
	}
	printf("wrote %s (%s)\n", path, signing ? "signed" : "unsigned");
	if (write_file(ph.outdir, "config-v1.1.xml", xml, strlen(xml), path, sizeof(path)) < 0)
		goto out;
	printf("wrote %s\n", path);
	snprintf(url, sizeof(url), "%s/%s.mobileconfig", ph.p.phone_profile_url, ph.user);
	printf("publish them as %s and https://autoconfig.%s/mail/config-v1.1.xml\n", url,
	       ph.domain);
	if (!noqr) {
		printf("scan with the phone's camera to open %s:\n", url);
		fflush(stdout);
		if (print_qr(url) < 0)
			goto out;
	}
	rc = 0;
out:
	free(plist);
	free(xml);
	OPENSSL_free(der);
	tools_params_unbind(&ph.p);
	return rc;
}

const struct command cmd_phone = {
    "phone",
    "[--address ADDR] [--out DIR] [--no-qr] USER",
    "set up a phone: Apple profile, autoconfig XML and a QR code",
    phone_help,
    run,
};
