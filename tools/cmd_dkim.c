/* cmd_dkim — `mailkeep dkim keygen|txt|sign`: DKIM keys in dkim_key_directory
 * and the DNS records to publish (lib/dkim.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/dkim.h"
#include "lib/util.h"
#include "tools/cli.h"

static const char dkim_help[] =
    "DKIM keys for the domains mailkeep sends for. Mail that authenticated users\n"
    "submit and `mailkeep sendmail` writes is signed with every key of its From:\n"
    "domain (dkim_sign = yes), relaxed/relaxed.\n\n"
    "  dkim keygen DOMAIN SELECTOR [--ed25519 | --bits N]\n"
    "        makes $dkim_key_directory/DOMAIN/SELECTOR.key (RSA 2048 by default, or\n"
    "        Ed25519, RFC 8463), readable by mail_owner only, and prints the TXT\n"
    "        record to publish. A new key wants a new selector: publish the record,\n"
    "        wait for the DNS, then remove the old key file.\n"
    "  dkim txt DOMAIN SELECTOR      prints the TXT record of an existing key again\n"
    "  dkim sign [FILE]              signs a message (FILE or standard input) and\n"
    "                                prints it, as submission would send it\n\n"
    "examples:\n"
    "  mailkeep dkim keygen example.org 2026r\n"
    "  mailkeep dkim keygen example.org 2026e --ed25519\n";

static int keygen(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"ed25519", no_argument, NULL, 'e'},
					     {"bits", required_argument, NULL, 'b'},
					     {NULL, 0, NULL, 0}};
	int ed = 0, c;
	uint64_t bits = 2048;
	char txt[4096], err[512];

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'e')
			ed = 1;
		else if (c == 'b' && mk_parse_u64(optarg, 1024, 4096, &bits) == 0)
			;
		else
			return cli_usage(&cmd_dkim);
	}
	if (argc - optind != 2)
		return cli_usage(&cmd_dkim);
	if (cli_config(cli) == NULL)
		return 1;
	if (dkim_keygen(cli->common.dkim_key_directory, argv[optind], argv[optind + 1], ed,
			(int)bits, cli->common.mail_owner, txt, sizeof(txt), err,
			sizeof(err)) < 0) {
		cli_error("dkim keygen: %s", err);
		return 1;
	}
	fprintf(stderr, "mailkeep: dkim: %s/%s/%s.key written; publish this record:\n",
		cli->common.dkim_key_directory, argv[optind], argv[optind + 1]);
	printf("%s\n", txt);
	return 0;
}

static int txt(struct cli *cli, int argc, char **argv)
{
	char path[4400], out[4096], err[512];

	if (argc - optind != 2)
		return cli_usage(&cmd_dkim);
	if (cli_config(cli) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/%s/%s.key", cli->common.dkim_key_directory, argv[optind],
		 argv[optind + 1]);
	if (dkim_txt_record(path, argv[optind], argv[optind + 1], out, sizeof(out), err,
			    sizeof(err)) < 0) {
		cli_error("dkim txt: %s", err);
		return 1;
	}
	printf("%s\n", out);
	return 0;
}

static int sign(struct cli *cli, int argc, char **argv)
{
	struct buf msg;
	char domain[256], err[512], *hdrs = NULL, chunk[65536];
	size_t hl = 0, n;
	FILE *in = stdin;

	if (argc - optind > 1)
		return cli_usage(&cmd_dkim);
	if (cli_config(cli) == NULL)
		return 1;
	if (argc - optind == 1 && (in = fopen(argv[optind], "rb")) == NULL) {
		cli_error("dkim sign: cannot read %s", argv[optind]);
		return 1;
	}
	buf_init(&msg, (size_t)64 << 20);
	while ((n = fread(chunk, 1, sizeof(chunk), in)) > 0)
		if (buf_append(&msg, chunk, n) < 0) {
			cli_error("dkim sign: message too large");
			return 1;
		}
	if (in != stdin)
		fclose(in);
	if (dkim_from_domain(msg.data ? msg.data : "", msg.len, domain, sizeof(domain)) < 0) {
		cli_error("dkim sign: the message has no From: address");
		buf_free(&msg);
		return 1;
	}
	if (dkim_sign_message(cli->common.dkim_key_directory, domain, msg.data, msg.len, &hdrs, &hl,
			      err, sizeof(err)) < 0) {
		cli_error("dkim sign: %s", err);
		buf_free(&msg);
		return 1;
	}
	if (hl == 0)
		cli_warn("dkim sign: no key for %s in %s: not signed", domain,
			 cli->common.dkim_key_directory);
	fwrite(hdrs ? hdrs : "", 1, hl, stdout);
	fwrite(msg.data ? msg.data : "", 1, msg.len, stdout);
	free(hdrs);
	buf_free(&msg);
	return 0;
}

static int run(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage(&cmd_dkim);
	/* getopt starts afresh (optind 0) on the sub-command's own arguments */
	optind = 0;
	if (strcmp(argv[1], "keygen") == 0)
		return keygen(cli, argc - 1, argv + 1);
	optind = 1;
	if (strcmp(argv[1], "txt") == 0)
		return txt(cli, argc - 1, argv + 1);
	if (strcmp(argv[1], "sign") == 0)
		return sign(cli, argc - 1, argv + 1);
	return cli_usage(&cmd_dkim);
}

const struct command cmd_dkim = {
    "dkim",
    "keygen|txt|sign [DOMAIN SELECTOR] [--ed25519]",
    "DKIM keys and the DNS records to publish (mail is signed at submission)",
    dkim_help,
    run,
};
