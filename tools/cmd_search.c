/* cmd_search — `mailkeep search USER QUERY...`: the user's messages that
 * hold every term of the query, from the words index (index/fts.h) with the
 * exact check; one line per message. */
#include <getopt.h>
#include <string.h>
#include <time.h>

#include "index/fts.h"
#include "lib/util.h"
#include "tools/cli.h"

struct search_out {
	struct store_txn *txn;
	uint64_t found, limit;
	int paths;
	const char *user;
};

/* The value of a header field, unfolded, into out (empty if absent). */
static void header_value(const char *msg, size_t len, const char *name, char *out, size_t size)
{
	size_t nl = strlen(name), o = 0;
	out[0] = '\0';
	for (size_t i = 0; i < len;) {
		if (msg[i] == '\n' || (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n'))
			return; /* end of the header */
		const char *e = memchr(msg + i, '\n', len - i);
		size_t l = e ? (size_t)(e - msg - i) : len - i;
		if (l > nl && strncasecmp(msg + i, name, nl) == 0 && msg[i + nl] == ':') {
			for (size_t k = i + nl + 1; k < len && o + 1 < size; k++) {
				if (msg[k] == '\n' &&
				    (k + 1 >= len || (msg[k + 1] != ' ' && msg[k + 1] != '\t')))
					break;
				if (msg[k] == '\r' || msg[k] == '\n')
					continue;
				out[o++] = (unsigned char)msg[k] < 0x20 ? ' ' : msg[k];
			}
			out[o] = '\0';
			while (out[0] == ' ' || out[0] == '\t')
				memmove(out, out + 1, strlen(out));
			return;
		}
		i += l + 1;
	}
}

static int print_hit(const struct store_msg *m, void *ctx)
{
	struct search_out *o = ctx;
	struct store_mailbox mb;
	const void *data;
	size_t len;
	char from[120] = "", subject[160] = "", date[32];
	struct tm tm;
	time_t t = (time_t)m->internaldate;

	if (store_mailbox_get_by_id(o->txn, m->mbid, &mb) != 0)
		return 0;
	if (store_blob_get(o->txn, m->hash, &data, &len) == 0) {
		header_value(data, len, "From", from, sizeof(from));
		header_value(data, len, "Subject", subject, sizeof(subject));
	}
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d", &tm);
	if (o->paths)
		printf("%s\t%u\t%s\n", mb.name, m->uid, m->base);
	else
		printf("%s\t%u\t%s\t%s\t%s\n", mb.name, m->uid, date, from, subject);
	return ++o->found >= o->limit;
}

static const char search_help[] =
    "Finds a user's messages by what they say: every term must occur in the\n"
    "message, in any case, as a substring of the text a reader sees (header\n"
    "fields, text parts decoded from their charset and encoding, HTML as text,\n"
    "attachment names). Terms are words or \"quoted phrases\"; from:, to:, cc:,\n"
    "subject: limit a term to that header field, body: to the body.\n"
    "Prints one line per message: mailbox, UID, date, From, Subject (tab-separated);\n"
    "with --names: mailbox, UID and the Maildir base name. The words index answers\n"
    "(doc/search.md); messages not indexed yet are read one by one, so the answer\n"
    "is always complete.\n\n"
    "  --mailbox NAME   only this mailbox\n"
    "  --limit N        at most N messages (default 1000)\n"
    "  --names          mailbox, UID, base name\n"
    "  --no-index       read every message instead (slow: what the index must agree with)\n\n"
    "example:\n  mailkeep search bob invoice from:example.org \"next week\"\n";

static int run(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"mailbox", required_argument, NULL, 'm'},
					     {"limit", required_argument, NULL, 'l'},
					     {"names", no_argument, NULL, 'n'},
					     {"no-index", no_argument, NULL, 'N'},
					     {NULL, 0, NULL, 0}};
	struct search_out o = {.limit = 1000};
	const char *mailbox = NULL;
	int no_index = 0;
	char q[4096] = "";
	int c, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			mailbox = optarg;
			break;
		case 'n':
			o.paths = 1;
			break;
		case 'N':
			no_index = 1;
			break;
		case 'l':
			if (mk_parse_u64(optarg, 1, UINT32_MAX, &o.limit) != 0) {
				cli_error("search: --limit takes a positive number");
				return EXIT_USAGE;
			}
			break;
		default:
			return cli_usage(&cmd_search);
		}
	}
	if (argc - optind < 2)
		return cli_usage(&cmd_search);
	o.user = argv[optind];
	for (int i = optind + 1; i < argc; i++) {
		size_t l = strlen(q);
		int quote = strchr(argv[i], ' ') != NULL && argv[i][0] != '"' &&
			    strchr(argv[i], ':') == NULL;
		if (snprintf(q + l, sizeof(q) - l, "%s%s%s%s", l ? " " : "", quote ? "\"" : "",
			     argv[i], quote ? "\"" : "") >= (int)(sizeof(q) - l)) {
			cli_error("search: the query is too long");
			return EXIT_USAGE;
		}
	}
	struct fts_query query;
	if (fts_query_parse(q, &query) != 0) {
		cli_error("search: an empty query, or more than %d terms", FTS_QUERY_TERMS);
		return EXIT_USAGE;
	}
	query.no_index = no_index;
	struct store *store = cli_store(cli, 1);
	struct store_user u;
	struct store_mailbox mb = {0};
	uint64_t checked = 0;
	if (store == NULL) {
		fts_query_free(&query);
		return 1;
	}
	if ((rc = store_read_begin(store, &o.txn)) == 0 &&
	    (rc = store_user_get(o.txn, o.user, &u)) == 0 &&
	    (mailbox == NULL || (rc = store_mailbox_get(o.txn, u.id, mailbox, &mb)) == 0)) {
		double t0 = mk_monotonic();
		rc = fts_search(o.txn, u.id, mb.id, &query, print_hit, &o, &checked);
		if (cli->verbose)
			fprintf(stderr, "search: %llu found, %llu messages read to check, %.3f s\n",
				(unsigned long long)o.found, (unsigned long long)checked,
				mk_monotonic() - t0);
	}
	store_read_end(&o.txn);
	fts_query_free(&query);
	if (rc == STORE_ENOTFOUND) {
		cli_error("search: no user %s%s%s", o.user, mailbox ? " or no mailbox " : "",
			  mailbox ? mailbox : "");
		return 1;
	}
	if (rc != 0) {
		cli_error("search: %s", cli_store_hint(rc));
		return 1;
	}
	return o.found > 0 ? 0 : 1;
}

const struct command cmd_search = {
    "search",
    "[--mailbox NAME] [--limit N] [--names] [--no-index] USER QUERY...",
    "find a user's messages by their words (full-text index)",
    search_help,
    run,
};
