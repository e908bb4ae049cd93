/* cmd_export — `mailkeep export USER DEST`: a user's mail as a Maildir tree
 * (flags in the names, Maildir++ folders), as mbox files (mboxrd), or as a
 * directory of one-message files. Message bytes are written exactly as stored;
 * nothing is added to them. Read transactions are kept short: a few hundred
 * messages each.
 *
 * Maildir++ folder names are written in modified UTF-7 (".Entw&APw-rfe" for
 * the mailbox "Entwürfe"), as Dovecot and Courier write and read them by
 * default; --utf8-folders writes the store's UTF-8 names as the mount shows
 * them (Dovecot's ":UTF-8" layout). mbox and files exports name their files
 * and directories in UTF-8.
 */
#define _GNU_SOURCE /* syncfs */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "index/maildir_name.h"
#include "index/mbox.h"
#include "lib/utf7.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "tools/cli.h"

enum out_format { OUT_MAILDIR, OUT_MBOX, OUT_FILES };

#define CHUNK 256

struct export_run {
	enum out_format format;
	int from_line;	  /* files: write back a kept From line */
	int utf8_folders; /* Maildir: folder names in UTF-8, not modified UTF-7 */
	FILE *mbox;	  /* mbox being written */
	char *qbuf;
	size_t qcap;
	uint64_t messages, bytes;
	struct progress prog;
};

static int path_fmt(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int path_fmt(char *out, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size) {
		cli_error("export: path too long: %s", out);
		return -1;
	}
	return 0;
}

static int make_dir(const char *path)
{
	if (mk_mkdirs(path, 0700) < 0) {
		cli_error("export: cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Writes a new file (never over an existing one) with the message, its mtime the internal date. */
static int write_file(const char *path, const char *pre, size_t prelen, const void *data,
		      size_t len, int64_t date)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	struct timeval tv[2] = {{.tv_sec = (time_t)date}, {.tv_sec = (time_t)date}};

	if (fd < 0) {
		cli_error("export: cannot create %s: %s", path,
			  errno == EEXIST
			      ? "it exists already (export into a new or empty directory)"
			      : strerror(errno));
		return -1;
	}
	if ((prelen > 0 && mk_write_all(fd, pre, prelen) < 0) || mk_write_all(fd, data, len) < 0) {
		cli_error("export: cannot write %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (date > 0)
		(void)futimes(fd, tv);
	if (close(fd) < 0) {
		cli_error("export: cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* The kept From line text from metadata, into out; 1 if there is one. */
static int meta_from(const char *meta, char *out, size_t outsize, int *crlf_r)
{
	const char *p = strstr(meta, "mbox_from=");
	const char *end;

	*crlf_r = strstr(meta, "mbox_from_eol=crlf\n") != NULL;
	if (p == NULL || (p != meta && p[-1] != '\n'))
		return 0;
	p += strlen("mbox_from=");
	end = strchr(p, '\n');
	if (end == NULL)
		end = p + strlen(p);
	if ((size_t)(end - p) >= outsize)
		return 0;
	memcpy(out, p, (size_t)(end - p));
	out[end - p] = '\0';
	return 1;
}

/* A From line for a message that came without one: Return-Path's address, or MAILER-DAEMON. */
static void made_up_from(const char *data, size_t len, int64_t date, char *out, size_t outsize)
{
	char sender[256] = "MAILER-DAEMON", when[32];
	size_t i = 0;

	while (i < len) {
		const char *nl = memchr(data + i, '\n', len - i);
		size_t n = nl != NULL ? (size_t)(nl - (data + i)) : len - i;
		if (n == 0 || (n == 1 && data[i] == '\r'))
			break;
		if (n > 12 && strncasecmp(data + i, "Return-Path:", 12) == 0) {
			const char *lt = memchr(data + i, '<', n),
				   *gt = lt ? memchr(lt, '>', n - (size_t)(lt - (data + i))) : NULL;
			if (lt != NULL && gt != NULL && gt - lt > 1 &&
			    (size_t)(gt - lt) < sizeof(sender)) {
				int ok = 1;
				for (const char *c = lt + 1; c < gt; c++)
					if (*c <= ' ' || *c >= 127)
						ok = 0;
				if (ok) {
					memcpy(sender, lt + 1, (size_t)(gt - lt - 1));
					sender[gt - lt - 1] = '\0';
				}
			}
			break;
		}
		i += n + 1;
	}
	mbox_format_date(date, when);
	snprintf(out, outsize, "%s %s", sender, when);
}

static int export_message(struct export_run *x, const char *dir, const struct store_msg *msg,
			  const char *meta, const void *data, size_t len)
{
	char path[4096], name[STORE_BASE_MAX + 16], from[1100];
	int crlf = 0;

	switch (x->format) {
	case OUT_MAILDIR:
		if ((msg->flags & ~(uint32_t)STORE_F_RECENT) == 0 &&
		    (msg->flags & STORE_F_RECENT) && (msg->keywords[0] == '\0')) {
			if (path_fmt(path, sizeof(path), "%s/new/%s", dir, msg->base) < 0)
				return -1;
		} else {
			if (maildir_name_format(msg->base, msg->flags, msg->keywords, name,
						sizeof(name)) < 0 ||
			    path_fmt(path, sizeof(path), "%s/cur/%s", dir, name) < 0)
				return -1;
		}
		return write_file(path, NULL, 0, data, len, msg->internaldate);
	case OUT_FILES: {
		char pre[1200];
		size_t prelen = 0;
		if (x->from_line && meta_from(meta, from, sizeof(from), &crlf)) {
			int n = snprintf(pre, sizeof(pre), "From %s%s", from, crlf ? "\r\n" : "\n");
			prelen = n > 0 && (size_t)n < sizeof(pre) ? (size_t)n : 0;
		}
		if (path_fmt(path, sizeof(path), "%s/%s", dir, msg->base) < 0)
			return -1;
		return write_file(path, pre, prelen, data, len, msg->internaldate);
	}
	case OUT_MBOX: {
		size_t qlen = mbox_quoted_len(data, len);
		if (!meta_from(meta, from, sizeof(from), &crlf))
			made_up_from(data, len, msg->internaldate, from, sizeof(from));
		if (qlen > x->qcap) {
			x->qcap = qlen;
			x->qbuf = xreallocarray(x->qbuf, x->qcap, 1);
		}
		mbox_quote(data, len, x->qbuf);
		fprintf(x->mbox, "From %s%s", from, crlf ? "\r\n" : "\n");
		fwrite(x->qbuf, 1, qlen, x->mbox);
		if (len == 0 || ((const char *)data)[len - 1] != '\n')
			fputc('\n', x->mbox);
		fputc('\n', x->mbox);
		if (ferror(x->mbox)) {
			cli_error("export: cannot write the mbox: %s", strerror(errno));
			return -1;
		}
		return 0;
	}
	}
	return -1;
}

/* Exports one mailbox into dir (Maildir / files) or the open mbox. */
static int export_mailbox(struct export_run *x, struct store *store, const struct store_mailbox *mb,
			  const char *dir)
{
	uint32_t next = 1;
	int rc = 0;

	for (;;) {
		struct store_txn *txn = NULL;
		struct store_cursor *cur = NULL;
		struct store_msg msg;
		int n = 0, r;

		if ((rc = store_read_begin(store, &txn)) != 0 ||
		    (rc = store_msg_cursor_open(txn, mb->id, next, &cur)) != 0) {
			store_read_end(&txn);
			if (rc == STORE_ENOTFOUND)
				return 0;
			cli_error("export: cannot read mailbox %s: %s", mb->name,
				  store_strerror(rc));
			return -1;
		}
		while (n < CHUNK && (r = store_msg_cursor_next(cur, &msg)) == 0) {
			const void *data;
			size_t len;
			char meta[STORE_META_MAX];
			n++;
			next = msg.uid + 1;
			if ((rc = store_blob_get(txn, msg.hash, &data, &len)) != 0) {
				cli_error("export: %s uid %u: cannot read the message: %s (run "
					  "mailkeep fsck)",
					  mb->name, msg.uid, store_strerror(rc));
				rc = -1;
				break;
			}
			if (store_msg_meta(txn, mb->id, msg.uid, meta) != 0)
				meta[0] = '\0';
			if ((rc = export_message(x, dir, &msg, meta, data, len)) != 0)
				break;
			x->messages++;
			x->bytes += len;
			progress_update(&x->prog, 0, 0, x->messages, x->bytes);
		}
		store_msg_cursor_close(&cur);
		store_read_end(&txn);
		if (rc != 0)
			return -1;
		if (n < CHUNK)
			return 0;
	}
}

struct mb_list {
	struct store_mailbox *v;
	size_t n;
};

static int collect_mb(const struct store_mailbox *mb, void *ctx)
{
	struct mb_list *l = ctx;
	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	l->v[l->n++] = *mb;
	return 0;
}

static const char export_help[] =
    "Writes a user's mail out, byte for byte as stored, for any other program to read.\n"
    "  --format maildir   (default) DEST is a Maildir: INBOX in DEST/cur and DEST/new,\n"
    "                     mailbox A.B in DEST/.A.B (Maildir++); non-ASCII folder\n"
    "                     names in modified UTF-7 (Entwürfe: .Entw&APw-rfe), as Dovecot\n"
    "                     and Courier keep them; flags in the names\n"
    "                     (:2,DFPRST); \\Recent messages without flags in new/; file\n"
    "                     times are the internal dates\n"
    "  --format mbox      mboxrd: DEST is a directory with one mbox file per mailbox\n"
    "                     (DEST/INBOX, DEST/A.B), or, with --mailbox, the mbox file itself;\n"
    "                     a From line kept at import is written back; flags are not written\n"
    "  --format files     DEST/MAILBOX/BASE, one message per file; a From line kept at\n"
    "                     import is written back first (--no-from-line leaves it out), so\n"
    "                     files imported with --format files come back byte-identical\n"
    "  --mailbox NAME     only this mailbox\n"
    "  --utf8-folders     Maildir folder names in UTF-8 (.Entwürfe), as the mount shows\n"
    "                     them (and Dovecot with mail_location = maildir:...:UTF-8)\n"
    "Existing files are never overwritten: export into a new or empty directory.\n\n"
    "examples:\n"
    "  mailkeep export bob /srv/backup/bob-maildir\n"
    "  mutt -f /srv/backup/bob-maildir\n"
    "  mailkeep export --format mbox --mailbox INBOX bob /tmp/bob-inbox.mbox\n";

struct export_opts {
	const char *only; /* --mailbox */
	int quiet;
};

/* Returns 0, or the exit status of a bad option (its message printed). */
static int parse_options(struct export_opts *o, struct export_run *x, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"format", required_argument, NULL, 'f'}, {"mailbox", required_argument, NULL, 'm'},
	    {"no-from-line", no_argument, NULL, 'n'}, {"utf8-folders", no_argument, NULL, 'u'},
	    {"quiet", no_argument, NULL, 'q'},	      {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "f:m:nq", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (strcmp(optarg, "maildir") == 0)
				x->format = OUT_MAILDIR;
			else if (strcmp(optarg, "mbox") == 0 || strcmp(optarg, "mboxrd") == 0)
				x->format = OUT_MBOX;
			else if (strcmp(optarg, "files") == 0)
				x->format = OUT_FILES;
			else {
				cli_error("export: unknown format '%s' (maildir, mbox, files)",
					  optarg);
				return EXIT_USAGE;
			}
			break;
		case 'm':
			o->only = optarg;
			break;
		case 'n':
			x->from_line = 0;
			break;
		case 'u':
			x->utf8_folders = 1;
			break;
		case 'q':
			o->quiet = 1;
			break;
		default:
			return cli_usage(&cmd_export);
		}
	}
	return argc - optind != 2 ? cli_usage(&cmd_export) : 0;
}

/* The user's mailboxes into l. Returns 0 or 1 (the message printed). */
static int user_mailboxes(struct store *store, const char *name, struct mb_list *l)
{
	struct store_txn *txn = NULL;
	struct store_user user;
	int rc;

	if ((rc = store_read_begin(store, &txn)) == 0) {
		rc = store_user_get(txn, name, &user);
		if (rc == 0)
			rc = store_mailbox_foreach(txn, user.id, collect_mb, l);
		store_read_end(&txn);
	}
	if (rc == STORE_ENOTFOUND) {
		cli_error("export: no user '%s' (mailkeep user list shows them)", name);
		return 1;
	}
	if (rc != 0) {
		cli_error("export: cannot read the store: %s", store_strerror(rc));
		return 1;
	}
	return 0;
}

/* DEST: one mbox file (or standard output) for --format mbox --mailbox, else
 * a new directory. Returns 0 or an exit status (the message printed). */
static int open_dest(struct export_run *x, const char *dest, const char *only, int to_stdout)
{
	if (to_stdout && !(x->format == OUT_MBOX && only != NULL)) {
		cli_error("export: \"-\" (standard output) needs --format mbox and --mailbox");
		return EXIT_USAGE;
	}
	if (x->format == OUT_MBOX && only != NULL) {
		x->mbox = to_stdout ? stdout : fopen(dest, "wx");
		if (x->mbox == NULL) {
			cli_error("export: cannot create %s: %s", dest,
				  errno == EEXIST ? "it exists already" : strerror(errno));
			return 1;
		}
		return 0;
	}
	struct stat st;
	if (stat(dest, &st) == 0 && !S_ISDIR(st.st_mode)) {
		cli_error("export: %s exists and is not a directory: %s is written into a new "
			  "(or empty) directory; give another DEST, or write one mailbox into one "
			  "file with --format mbox --mailbox NAME",
			  dest,
			  x->format == OUT_MAILDIR ? "a Maildir"
			  : x->format == OUT_MBOX  ? "an mbox per mailbox"
						   : "a file per message");
		return 1;
	}
	if (stat(dest, &st) < 0 && errno == ENOTDIR) {
		cli_error("export: %s: a part of the path is a file, not a directory", dest);
		return 1;
	}
	return make_dir(dest) < 0 ? 1 : 0;
}

/* A mailbox's Maildir (DEST itself for INBOX, DEST/.A.B else) into dir. */
static int maildir_folder(const struct export_run *x, const char *dest,
			  const struct store_mailbox *mb, char *dir, size_t dirsize)
{
	static const char *const subs[] = {"cur", "new", "tmp"};
	int inbox = strcasecmp(mb->name, "INBOX") == 0;
	char folder[4 * STORE_NAME_MAX + 16], sub[4200];

	if (x->utf8_folders || utf8_to_utf7(mb->name, folder, sizeof(folder)) < 0) {
		if (!x->utf8_folders)
			cli_warn("export: mailbox name '%s' is not UTF-8: its folder "
				 "keeps the name's bytes as they are",
				 mb->name);
		mk_strlcpy(folder, mb->name, sizeof(folder));
	}
	if (inbox)
		mk_strlcpy(dir, dest, dirsize);
	else if (path_fmt(dir, dirsize, "%s/.%s", dest, folder) < 0)
		return -1;
	for (int s = 0; s < 3; s++)
		if (path_fmt(sub, sizeof(sub), "%s/%s", dir, subs[s]) < 0 || make_dir(sub) < 0)
			return -1;
	if (!inbox) {
		if (path_fmt(sub, sizeof(sub), "%s/%s", dir, "maildirfolder") < 0)
			return -1;
		close(open(sub, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	}
	return 0;
}

/* Where one mailbox goes, made ready: its folder (into dir) or its mbox file.
 * Returns 0, 1 to skip it (an empty mailbox as files), or -1. */
static int prepare_mailbox(struct export_run *x, const char *dest, const char *only,
			   const struct store_mailbox *mb, char *dir, size_t dirsize)
{
	char path[4096];

	if (x->format == OUT_MAILDIR)
		return maildir_folder(x, dest, mb, dir, dirsize);
	if (x->format == OUT_FILES) {
		if (mb->messages == 0 && only == NULL)
			return 1;
		return path_fmt(dir, dirsize, "%s/%s", dest, mb->name) < 0 || make_dir(dir) < 0 ? -1
												: 0;
	}
	if (only != NULL) /* the one mbox file is open */
		return 0;
	if (path_fmt(path, sizeof(path), "%s/%s", dest, mb->name) < 0)
		return -1;
	if ((x->mbox = fopen(path, "wx")) == NULL) {
		cli_error("export: cannot create %s: %s", path,
			  errno == EEXIST ? "it exists already" : strerror(errno));
		return -1;
	}
	return 0;
}

/* Flushes, syncs and closes x->mbox; what names it in a message. */
static int close_mbox(struct export_run *x, const char *what)
{
	int rc = 0;

	if (fflush(x->mbox) != 0 || fsync(fileno(x->mbox)) != 0 || fclose(x->mbox) != 0) {
		cli_error("export: cannot write %s: %s", what, strerror(errno));
		rc = 1;
	}
	x->mbox = NULL;
	return rc;
}

/* Every mailbox of l (or only the one named). Returns 0 or 1. */
static int export_all(struct export_run *x, struct store *store, const struct mb_list *l,
		      const char *dest, const char *only, int *found_r)
{
	int rc = 0;

	for (size_t i = 0; i < l->n && rc == 0; i++) {
		const struct store_mailbox *mb = &l->v[i];
		char dir[4096], what[4200];
		if (only != NULL && strcmp(only, mb->name) != 0 &&
		    !(strcasecmp(only, "INBOX") == 0 && strcasecmp(mb->name, "INBOX") == 0))
			continue;
		*found_r = 1;
		int prep = prepare_mailbox(x, dest, only, mb, dir, sizeof(dir));
		if (prep == 1)
			continue;
		if (prep < 0) {
			rc = 1;
			if (x->format != OUT_MAILDIR)
				break;
		}
		if (rc == 0 && export_mailbox(x, store, mb, dir) < 0)
			rc = 1;
		if (x->mbox != NULL && only == NULL) {
			snprintf(what, sizeof(what), "%s/%s", dest, mb->name);
			rc |= close_mbox(x, what);
		}
	}
	return rc;
}

static int run(struct cli *cli, int argc, char **argv)
{
	struct export_run x = {.format = OUT_MAILDIR, .from_line = 1};
	struct export_opts o = {0};
	struct mb_list l = {0};
	struct store *store;
	int rc, found = 0;

	if ((rc = parse_options(&o, &x, argc, argv)) != 0)
		return rc;
	const char *name = argv[optind], *dest = argv[optind + 1];
	if ((store = cli_store(cli, 1)) == NULL)
		return 1;
	if ((rc = user_mailboxes(store, name, &l)) != 0)
		return rc;
	progress_init(&x.prog, "exporting");
	int to_stdout = strcmp(dest, "-") == 0;
	if ((rc = open_dest(&x, dest, o.only, to_stdout)) != 0)
		goto done;
	rc = export_all(&x, store, &l, dest, o.only, &found);
	if (x.mbox != NULL && to_stdout) {
		if (fflush(stdout) != 0 || ferror(stdout)) {
			cli_error("export: cannot write to standard output: %s", strerror(errno));
			rc = 1;
		}
		x.mbox = NULL;
	} else if (x.mbox != NULL) {
		rc |= close_mbox(&x, dest);
	}
	if (o.only != NULL && !found) {
		cli_error("export: %s has no mailbox '%s'", name, o.only);
		rc = 1;
	}
	if (rc == 0 && !to_stdout) {
		/* make the whole export durable at once rather than per file */
		int fd = open(dest, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			syncfs(fd);
			close(fd);
		}
	}
	progress_end(&x.prog);
	if (!o.quiet) {
		char hb[32];
		fprintf(to_stdout ? stderr : stdout, "exported %llu %s (%s) of %s to %s\n",
			(unsigned long long)x.messages,
			cli_plural(x.messages, "message", "messages"),
			cli_human_bytes(x.bytes, hb, sizeof(hb)), name,
			to_stdout ? "standard output" : dest);
	}
done:
	free(l.v);
	free(x.qbuf);
	return rc;
}

const struct command cmd_export = {
    "export",
    "[--format maildir|mbox|files] [--mailbox NAME] USER DEST",
    "write a user's mail as a Maildir tree, mbox files or message files",
    export_help,
    run,
};
