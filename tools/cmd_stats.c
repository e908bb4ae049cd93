/* cmd_stats — `mailkeep stats`: users, mailboxes, messages, bytes stored
 * against bytes referenced (what deduplication saves). One "name value" per
 * line, so scripts can read it; --users adds a line per user. */
#include <getopt.h>
#include <string.h>

#include "tools/cli.h"
#include "tools/cmd_stats_smtp.h"

static const char stats_help[] =
    "Prints what the store holds, one \"name value\" pair per line:\n"
    "  users, mailboxes, messages, aliases\n"
    "  blobs             distinct messages (each stored once)\n"
    "  bytes_stored      bytes of the distinct messages\n"
    "  bytes_referenced  sum of all messages' sizes (what a Maildir per user would hold)\n"
    "  dedup_ratio       bytes_referenced / bytes_stored\n"
    "  file_bytes, map_size   the LMDB file and its current map\n"
    "  --users           one more line per user: user NAME mailboxes N messages N bytes N\n"
    "  --smtp [LOGFILE...]  instead: a postscreen-style summary of smtpin's log (connections,\n"
    "                    postscreen verdicts, deliveries, rejections by reason, top rejected\n"
    "                    clients, SASL failures); default /var/log/mail.log, \"-\" = stdin\n\n"
    "example:\n  mailkeep stats --users\n  journalctl --since today | mailkeep stats --smtp -\n";

struct per_user {
	struct store_txn *txn;
	uint64_t mailboxes, messages, bytes;
};

static int sum_mb(const struct store_mailbox *mb, void *ctx)
{
	struct per_user *p = ctx;
	p->mailboxes++;
	p->messages += mb->messages;
	p->bytes += mb->bytes;
	return 0;
}

static int print_user(const struct store_user *u, void *ctx)
{
	struct per_user p = {.txn = ctx};
	store_mailbox_foreach(p.txn, u->id, sum_mb, &p);
	printf("user %s mailboxes %llu messages %llu bytes %llu\n", u->name,
	       (unsigned long long)p.mailboxes, (unsigned long long)p.messages,
	       (unsigned long long)p.bytes);
	return 0;
}

static int run(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"users", no_argument, NULL, 'u'}, {NULL, 0, NULL, 0}};
	struct store_stats st;
	struct store *store;
	char h1[32];
	int c, users = 0, rc;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--smtp") == 0)
			return stats_smtp_run(cli, argc, argv); /* tools/cmd_stats_smtp.c */
	while ((c = getopt_long(argc, argv, "u", opts, NULL)) != -1) {
		if (c != 'u')
			return cli_usage(&cmd_stats);
		users = 1;
	}
	if (optind != argc)
		return cli_usage(&cmd_stats);
	if ((store = cli_store(cli, 1)) == NULL)
		return 1;
	if ((rc = store_stats(store, &st)) != 0) {
		cli_error("stats: %s", cli_store_hint(rc));
		return 1;
	}
	printf("users %llu\nmailboxes %llu\nmessages %llu\naliases %llu\nblobs %llu\n",
	       (unsigned long long)st.users, (unsigned long long)st.mailboxes,
	       (unsigned long long)st.messages, (unsigned long long)st.aliases,
	       (unsigned long long)st.blobs);
	printf("bytes_stored %llu (%s)\n", (unsigned long long)st.bytes_stored,
	       cli_human_bytes(st.bytes_stored, h1, sizeof(h1)));
	printf("bytes_referenced %llu (%s)\n", (unsigned long long)st.bytes_referenced,
	       cli_human_bytes(st.bytes_referenced, h1, sizeof(h1)));
	printf("dedup_ratio %.2f\n",
	       st.bytes_stored > 0 ? (double)st.bytes_referenced / (double)st.bytes_stored : 1.0);
	printf("file_bytes %llu (%s)\n", (unsigned long long)st.file_bytes,
	       cli_human_bytes(st.file_bytes, h1, sizeof(h1)));
	printf("map_size %llu (%s)\n", (unsigned long long)st.map_size,
	       cli_human_bytes(st.map_size, h1, sizeof(h1)));
	if (users) {
		struct store_txn *txn = NULL;
		if ((rc = store_read_begin(store, &txn)) == 0) {
			rc = store_user_foreach(txn, print_user, txn);
			store_read_end(&txn);
		}
		if (rc != 0) {
			cli_error("stats: %s", store_strerror(rc));
			return 1;
		}
	}
	return 0;
}

const struct command cmd_stats = {
    "stats",	"[--users | --smtp [LOGFILE...]]", "show users, messages and bytes stored against bytes referenced",
    stats_help, run,
};
