/* cmd_import — `mailkeep import USER SOURCE...`: a Maildir tree (Maildir++
 * folders, flags from the file names), an mbox (mboxrd or mboxo), a directory
 * of one-message files, or one message file.
 *
 * A leading "From " line (mbox's envelope line, which many one-message files
 * carry) is not part of the message: it is taken off, its date becomes the
 * internal date (for mbox and plain files), and the line is kept in the
 * message's metadata as "mbox_from=..." so that `mailkeep export --format
 * files` gives the original file back byte for byte and `--format mbox` writes
 * the original envelope line. The stored message is exactly the bytes that
 * follow; mbox messages are unquoted (>From) per the variant.
 */
#define _GNU_SOURCE /* O_TMPFILE */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "index/dirs.h"
#include "index/maildir_name.h"
#include "index/mbox.h"
#include "lib/util.h"
#include "tools/cli.h"
#include "tools/importer.h"

enum src_format { FMT_AUTO, FMT_MAILDIR, FMT_MBOX, FMT_FILES };

struct import_run {
	struct importer *imp;
	struct progress prog;
	enum mbox_variant variant;
	uint64_t done, total; /* progress units: files, or bytes of an mbox */
	char *buf;	      /* reusable read buffer */
	size_t bufcap;
	uint64_t warnings;
	int fatal; /* a batch could not be stored: stop */
};

#define FROM_META_MAX 1000

/* "mbox_from=..." metadata for a From line, or "" if the line cannot be kept exactly. */
static void from_meta(const struct mbox_msg *m, char *out, size_t outsize)
{
	out[0] = '\0';
	if (m->from == NULL || m->from_len > FROM_META_MAX ||
	    memchr(m->from, '\0', m->from_len) != NULL ||
	    memchr(m->from, '\r', m->from_len) != NULL)
		return;
	snprintf(out, outsize, "mbox_from=%.*s\n%s", (int)m->from_len, m->from,
		 m->from_crlf ? "mbox_from_eol=crlf\n" : "");
}

/* 1 if the bytes begin like a message: a header field "Name:" line. */
static int looks_like_message(const char *p, size_t len)
{
	size_t i = 0;

	while (i < len && p[i] > 32 && p[i] < 127 && p[i] != ':')
		i++;
	return i > 0 && i < len && p[i] == ':';
}

static void check_bytes(struct import_run *r, const char *origin, const char *data, size_t len)
{
	if (memchr(data, '\0', len) != NULL) {
		cli_warn("%s: the message holds NUL bytes; it is stored as it is", origin);
		r->warnings++;
	}
}

static int add(struct import_run *r, const struct import_msg *m)
{
	int rc = importer_add(r->imp, m);
	const struct import_totals *t = importer_totals(r->imp);

	if (rc != 0)
		r->fatal = 1;
	progress_update(&r->prog, r->done, r->total, t->seen, t->seen_bytes);
	return rc;
}

/* Reads a whole file into r->buf. Returns 0 or -1 after printing why. */
static int read_file(struct import_run *r, const char *path, size_t *len_r, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	size_t got = 0;

	if (fd < 0 || fstat(fd, st) < 0) {
		cli_error("%s: %s: skipped", path, strerror(errno));
		goto fail;
	}
	if ((uint64_t)st->st_size + 1 > r->bufcap) {
		r->bufcap = (size_t)st->st_size + 1;
		r->buf = realloc(r->buf, r->bufcap);
		if (r->buf == NULL)
			abort();
	}
	while (got < (size_t)st->st_size) {
		ssize_t n = read(fd, r->buf + got, (size_t)st->st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			cli_error("%s: %s: skipped", path,
				  n < 0 ? strerror(errno) : "the file shrank while read");
			goto fail;
		}
		got += (size_t)n;
	}
	close(fd);
	*len_r = got;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	r->warnings++;
	return -1;
}

/* One file holding one message (a leading From line is taken off). maildir: name carries flags. */
static int import_one_file(struct import_run *r, const char *path, const char *name,
			   const char *mailbox, int maildir, uint32_t extra_flags)
{
	struct import_msg im = {0};
	struct mbox_msg m;
	struct stat st;
	char meta[FROM_META_MAX + 64], base[STORE_BASE_MAX];
	uint32_t flags = 0;
	int forwarded = 0;
	size_t len;

	r->done++;
	if (read_file(r, path, &len, &st) < 0)
		return 0;
	mbox_split_from_line(r->buf, len, &m);
	if (!maildir && !looks_like_message(m.raw, m.raw_len)) {
		cli_warn("%s: %s: skipped", path,
			 len == 0 ? "empty file"
				  : "does not begin with a header line: not a mail message");
		r->warnings++;
		return 0;
	}
	base[0] = '\0';
	if (maildir) {
		if (maildir_name_parse(name, base, sizeof(base), &flags, &forwarded) < 0)
			base[0] = '\0';
	} else {
		mk_strlcpy(base, name, sizeof(base));
	}
	if (base[0] != '\0' && !maildir_base_valid(base))
		base[0] = '\0';
	from_meta(&m, meta, sizeof(meta));
	im.mailbox = mailbox;
	im.data = m.raw;
	im.len = m.raw_len;
	im.flags = flags | extra_flags;
	im.keywords = forwarded ? MAILDIR_KW_FORWARDED : NULL;
	im.internaldate = st.st_mtime;
	if (!maildir && m.from != NULL)
		(void)mbox_parse_date(m.from, m.from_len, &im.internaldate);
	im.base = base[0] != '\0' ? base : NULL;
	im.meta = meta[0] != '\0' ? meta : NULL;
	im.origin = path;
	if (m.raw_len == 0) {
		cli_warn("%s: empty message: skipped", path);
		r->warnings++;
		return 0;
	}
	check_bytes(r, path, m.raw, m.raw_len);
	return add(r, &im);
}

struct entry {
	char *name;
	int sub; /* Maildir: 0 cur, 1 new */
};

static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c != 0 ? c : x->sub - y->sub;
}

/* a/b; a path too long for PATH_MAX comes out empty, and opening it fails */
static void path_join(char *out, size_t size, const char *a, const char *b)
{
	int n = snprintf(out, size, "%s/%s", a, b);
	if (n < 0 || (size_t)n >= size)
		out[0] = '\0';
}

static int is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_maildir(const char *dir)
{
	char p[4096];

	path_join(p, sizeof(p), dir, "cur");
	if (is_dir(p))
		return 1;
	path_join(p, sizeof(p), dir, "new");
	return is_dir(p);
}

/* Lists a directory's entries (not starting with '.'), appending to *v. type: 1 files, 2 dirs. */
static void list_dir(const char *dir, int want, int sub, struct entry **v, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[4096];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' && want != 3)
			continue;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		path_join(p, sizeof(p), dir, de->d_name);
		struct stat st;
		if (lstat(p, &st) < 0)
			continue;
		if ((want == 1 && !S_ISREG(st.st_mode)) || (want >= 2 && !S_ISDIR(st.st_mode)))
			continue;
		*v = realloc(*v, (*n + 1) * sizeof(**v));
		if (*v == NULL || ((*v)[*n].name = strdup(de->d_name)) == NULL)
			abort();
		(*v)[*n].sub = sub;
		(*n)++;
	}
	closedir(d);
	qsort(*v, *n, sizeof(**v), entry_cmp);
}

static void free_entries(struct entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

static uint64_t count_files(const char *dir, int recursive)
{
	struct entry *v = NULL, *d = NULL;
	size_t n = 0, nd = 0;
	uint64_t total;
	char p[4096];

	list_dir(dir, 1, 0, &v, &n);
	total = n;
	if (recursive) {
		list_dir(dir, 2, 0, &d, &nd);
		for (size_t i = 0; i < nd; i++) {
			path_join(p, sizeof(p), dir, d[i].name);
			total += count_files(p, 1);
		}
	}
	free_entries(v, n);
	free_entries(d, nd);
	return total;
}

static int import_maildir_folder(struct import_run *r, const char *dir, const char *mailbox)
{
	struct entry *v = NULL;
	size_t n = 0;
	char cur[4096], nw[4096], p[4096];

	path_join(cur, sizeof(cur), dir, "cur");
	path_join(nw, sizeof(nw), dir, "new");
	list_dir(cur, 1, 0, &v, &n);
	list_dir(nw, 1, 1, &v, &n);
	for (size_t i = 0; i < n && !r->fatal; i++) {
		path_join(p, sizeof(p), v[i].sub ? nw : cur, v[i].name);
		import_one_file(r, p, v[i].name, mailbox, 1, v[i].sub ? STORE_F_RECENT : 0);
	}
	free_entries(v, n);
	return r->fatal ? -1 : 0;
}

static int import_maildir_tree(struct import_run *r, const char *root, const char *prefix)
{
	struct entry *v = NULL;
	size_t n = 0;
	char p[4096], mb[STORE_NAME_MAX + 2];

	/* progress: count the files first (cheap next to reading them) */
	list_dir(root, 3, 0, &v, &n);
	r->total = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i].name[0] != '.' && strcmp(v[i].name, "cur") != 0 &&
		    strcmp(v[i].name, "new") != 0)
			continue;
		path_join(p, sizeof(p), root, v[i].name);
		if (v[i].name[0] == '.') {
			char q[4096];
			path_join(q, sizeof(q), p, "cur");
			r->total += count_files(q, 0);
			path_join(q, sizeof(q), p, "new");
			r->total += count_files(q, 0);
		} else {
			r->total += count_files(p, 0);
		}
	}
	if (import_maildir_folder(r, root, prefix != NULL ? prefix : "INBOX") < 0)
		goto done;
	for (size_t i = 0; i < n && !r->fatal; i++) {
		if (v[i].name[0] != '.' || v[i].name[1] == '\0')
			continue;
		path_join(p, sizeof(p), root, v[i].name);
		if (!is_maildir(p))
			continue;
		int len = prefix != NULL ? snprintf(mb, sizeof(mb), "%s%s", prefix, v[i].name)
					 : snprintf(mb, sizeof(mb), "%s", v[i].name + 1);
		if (len < 0 || (size_t)len >= sizeof(mb)) {
			cli_error("%s: folder name too long: skipped", p);
			continue;
		}
		import_maildir_folder(r, p, mb);
	}
done:
	free_entries(v, n);
	return r->fatal ? -1 : 0;
}

static int import_files_dir(struct import_run *r, const char *dir, const char *mailbox)
{
	struct entry *files = NULL, *dirs = NULL;
	size_t nf = 0, nd = 0;
	char p[4096], mb[STORE_NAME_MAX + 2];

	list_dir(dir, 1, 0, &files, &nf);
	list_dir(dir, 2, 0, &dirs, &nd);
	for (size_t i = 0; i < nf && !r->fatal; i++) {
		path_join(p, sizeof(p), dir, files[i].name);
		import_one_file(r, p, files[i].name, mailbox != NULL ? mailbox : "INBOX", 0, 0);
	}
	for (size_t i = 0; i < nd && !r->fatal; i++) {
		path_join(p, sizeof(p), dir, dirs[i].name);
		int len = mailbox != NULL ? snprintf(mb, sizeof(mb), "%s%c%s", mailbox,
						     STORE_MAILBOX_SEP, dirs[i].name)
					  : snprintf(mb, sizeof(mb), "%s", dirs[i].name);
		if (len < 0 || (size_t)len >= sizeof(mb)) {
			cli_error("%s: folder name too long: skipped", p);
			continue;
		}
		import_files_dir(r, p, mb);
	}
	free_entries(files, nf);
	free_entries(dirs, nd);
	return r->fatal ? -1 : 0;
}

/* Standard input copied into an unlinked file, so it can be mapped like any
 * mbox (`zcat old.mbox.gz | mailkeep import bob -`). Returns the fd or -1. */
static int stdin_to_file(void)
{
	const char *dir = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
	char buf[1 << 16];
	ssize_t n;
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0)
		return -1;
	while ((n = read(STDIN_FILENO, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || mk_write_all(fd, buf, (size_t)n) < 0) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

static int import_mbox(struct import_run *r, const char *path, const char *mailbox)
{
	struct mbox_reader rd;
	struct mbox_msg m;
	struct stat st;
	char *map = NULL, *out = NULL, meta[FROM_META_MAX + 64], origin[4200];
	size_t outcap = 0;
	int fd, rc = 0, n;
	uint64_t count = 0;

	fd = strcmp(path, "-") == 0 ? stdin_to_file() : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		cli_error("%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (st.st_size == 0) {
		cli_warn("%s: empty file: no messages", path);
		close(fd);
		return 0;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED) {
		cli_error("%s: cannot map the file: %s", path, strerror(errno));
		return -1;
	}
	(void)madvise(map, (size_t)st.st_size, MADV_SEQUENTIAL);
	r->total = (uint64_t)st.st_size;
	mbox_reader_init(&rd, map, (size_t)st.st_size);
	while ((n = mbox_next(&rd, &m)) == 1 && !r->fatal) {
		struct import_msg im = {0};
		count++;
		r->done = rd.pos;
		snprintf(origin, sizeof(origin), "%s: message %llu (byte %zu)", path,
			 (unsigned long long)count, m.offset);
		if (m.raw_len + 1 > outcap) {
			outcap = m.raw_len + 1;
			if ((out = realloc(out, outcap)) == NULL)
				abort();
		}
		im.len = mbox_unquote(r->variant, m.raw, m.raw_len, out);
		im.data = out;
		if (m.truncated) {
			cli_warn("%s: the last message does not end with a newline: the file may "
				 "be cut short; "
				 "the message is stored as it is",
				 origin);
			r->warnings++;
		}
		if (im.len == 0) {
			cli_warn("%s: empty message: skipped", origin);
			r->warnings++;
			continue;
		}
		check_bytes(r, origin, out, im.len);
		from_meta(&m, meta, sizeof(meta));
		im.mailbox = mailbox;
		im.flags = mbox_status_flags(out, im.len);
		if (mbox_parse_date(m.from, m.from_len, &im.internaldate) < 0)
			im.internaldate = st.st_mtime;
		im.meta = meta[0] != '\0' ? meta : NULL;
		im.origin = origin;
		if (add(r, &im) != 0)
			break;
	}
	if (n < 0) {
		cli_error("%s: does not begin with a \"From \" line: not an mbox (import one "
			  "message with "
			  "--format files, or a Maildir with --format maildir)",
			  path);
		rc = -1;
	}
	free(out);
	munmap(map, (size_t)st.st_size);
	return r->fatal ? -1 : rc;
}

static enum src_format detect(const char *path)
{
	struct stat st;
	char head[5];
	int fd;

	if (stat(path, &st) < 0)
		return FMT_AUTO;
	if (S_ISDIR(st.st_mode)) {
		struct entry *v = NULL;
		size_t n = 0;
		int maildir = is_maildir(path);
		char p[4096];
		list_dir(path, 3, 0, &v, &n);
		for (size_t i = 0; i < n && !maildir; i++) {
			if (v[i].name[0] != '.')
				continue;
			path_join(p, sizeof(p), path, v[i].name);
			maildir = is_maildir(p);
		}
		free_entries(v, n);
		return maildir ? FMT_MAILDIR : FMT_FILES;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return FMT_AUTO;
	ssize_t n = read(fd, head, sizeof(head));
	close(fd);
	return n == 5 && memcmp(head, "From ", 5) == 0 ? FMT_MBOX : FMT_FILES;
}

static int ensure_user(struct store_txn *txn, void *ctx)
{
	struct store_user u;
	return store_user_ensure(txn, ctx, &u);
}

/* With users in LDAP, the store knows a user only from their first message:
 * a user the directory knows is made in the store before the import. */
static int ldap_user_ready(struct cli *cli, struct store *store, const char *name)
{
	struct directory *dir = NULL;
	struct dir_user u;
	enum dir_result r;
	char err[512];
	int rc;

	if (directory_open(cli->cfg, store, &dir, err, sizeof(err)) < 0) {
		cli_error("import: %s", err);
		return 1;
	}
	memset(&u, 0, sizeof(u));
	r = strchr(name, '@') != NULL ? dir_lookup_address(dir, name, &u)
				      : dir_get_user(dir, name, &u);
	if (r == DIR_NOTFOUND) {
		cli_error("import: the directory (%s) has no user '%s'",
			  config_get(cli->cfg, "user_directory"), name);
		dir_close(&dir);
		return 1;
	}
	if (r != DIR_OK) {
		cli_error("import: the directory cannot answer now (%s): %s; try again later",
			  dir_result_str(r), dir_error());
		dir_close(&dir);
		return 75; /* EX_TEMPFAIL, as `mailkeep user` */
	}
	dir_close(&dir);
	if (strcmp(u.name, name) != 0) {
		cli_error("import: '%s' is the address of user %s: import for %s", name, u.name,
			  u.name);
		return 1;
	}
	if ((rc = store_write(store, ensure_user, (void *)name)) != 0) {
		cli_error("import: cannot add %s to the store: %s", name, cli_store_hint(rc));
		return 1;
	}
	return 0;
}

static const char import_help[] =
    "Adds mail to a user's mailboxes. SOURCE is (detected, or named by --format):\n"
    "  a Maildir tree   cur/ and new/ go to INBOX, Maildir++ folders .A.B to mailbox A.B;\n"
    "                   flags from the names (:2,DFPRST), new/ messages stay \\Recent\n"
    "  an mbox file     mboxrd by default (--mbox-variant o for mboxo); Status:/X-Status:\n"
    "                   give flags; the From line's date is the internal date\n"
    "  a directory      of one-message files: each file is one message; files go to\n"
    "                   INBOX (or --mailbox), a sub-directory S to mailbox S (or MAILBOX.S)\n"
    "  a file           not starting with \"From \": one message\n"
    "A leading \"From \" line is taken off each message and kept as metadata, so\n"
    "`mailkeep export --format files` gives the original files back byte for byte.\n"
    "Running the same import again adds only what is missing: for each mailbox a\n"
    "message is added only if the mailbox holds fewer copies of those exact bytes than\n"
    "the source does. Many messages share one durable commit; an interrupted import\n"
    "keeps whole batches and can simply be run again.\n\n"
    "options:\n"
    "  --format F         auto (default), maildir, mbox or files\n"
    "  --mbox-variant V   rd (default) or o: how >From lines are unquoted\n"
    "  --mailbox NAME     the mailbox for an mbox or files (default INBOX); for a Maildir\n"
    "                     tree, the parent under which its folders go\n"
    "  --batch N          messages per commit (default 1000)\n"
    "  -q, --quiet        no summary line\n"
    "With user_directory = ldap:FILE, USER is a user of the directory; the store\n"
    "learns them here if no mail reached them yet.\n\n"
    "examples:\n"
    "  mailkeep import bob ~/Maildir\n"
    "  mailkeep import --mailbox Archive.2003 bob ~/mail/2003.mbox\n"
    "  mailkeep import --format files --mailbox Corpus bob /work/shared/corpus/spamassassin\n";

static int run(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"format", required_argument, NULL, 'f'},
	    {"mbox-variant", required_argument, NULL, 'V'},
	    {"mailbox", required_argument, NULL, 'm'},
	    {"batch", required_argument, NULL, 'b'},
	    {"quiet", no_argument, NULL, 'q'},
	    {NULL, 0, NULL, 0},
	};
	enum src_format format = FMT_AUTO;
	struct import_run r = {0};
	const char *mailbox = NULL;
	uint64_t batch = 1000;
	int c, quiet = 0, rc = 0;
	struct store *store;

	while ((c = getopt_long(argc, argv, "f:V:m:b:q", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (strcmp(optarg, "auto") == 0)
				format = FMT_AUTO;
			else if (strcmp(optarg, "maildir") == 0)
				format = FMT_MAILDIR;
			else if (strcmp(optarg, "mbox") == 0)
				format = FMT_MBOX;
			else if (strcmp(optarg, "files") == 0)
				format = FMT_FILES;
			else {
				cli_error(
				    "import: unknown format '%s' (auto, maildir, mbox, files)",
				    optarg);
				return EXIT_USAGE;
			}
			break;
		case 'V':
			if (strcmp(optarg, "rd") == 0 || strcmp(optarg, "mboxrd") == 0)
				r.variant = MBOX_RD;
			else if (strcmp(optarg, "o") == 0 || strcmp(optarg, "mboxo") == 0)
				r.variant = MBOX_O;
			else {
				cli_error("import: unknown mbox variant '%s' (rd or o)", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'm':
			mailbox = optarg;
			break;
		case 'b':
			if (mk_parse_u64(optarg, 1, 1000000, &batch) < 0) {
				cli_error("import: --batch wants a number from 1 to 1000000");
				return EXIT_USAGE;
			}
			break;
		case 'q':
			quiet = 1;
			break;
		default:
			return cli_usage(&cmd_import);
		}
	}
	if (argc - optind < 2)
		return cli_usage(&cmd_import);
	const char *user = argv[optind];
	for (int i = optind + 1; i < argc; i++) {
		if (strcmp(argv[i], "-") != 0 && access(argv[i], R_OK) != 0) {
			cli_error("import: cannot read %s: %s", argv[i], strerror(errno));
			return 1;
		}
	}
	if ((store = cli_store(cli, 0)) == NULL)
		return 1;
	if (!cli_directory_embedded(cli) && (rc = ldap_user_ready(cli, store, user)) != 0)
		return rc;
	if ((r.imp = importer_new(store, user, (size_t)batch, 0)) == NULL)
		return 1;
	progress_init(&r.prog, "importing");
	double t0 = mk_monotonic();
	for (int i = optind + 1; i < argc && !r.fatal; i++) {
		const char *src = argv[i];
		enum src_format f = format != FMT_AUTO ? format : detect(src);
		struct stat st;
		r.done = r.total = 0;
		if (strcmp(src, "-") == 0) {
			/* standard input: an mbox */
			if (import_mbox(&r, src, mailbox != NULL ? mailbox : "INBOX") < 0)
				rc = 1;
			continue;
		}
		if (stat(src, &st) < 0) {
			cli_error("import: %s: %s", src, strerror(errno));
			rc = 1;
			continue;
		}
		if (f == FMT_MAILDIR) {
			if (!S_ISDIR(st.st_mode) || !is_maildir(src)) {
				if (!S_ISDIR(st.st_mode)) {
					cli_error("import: %s is not a directory: not a Maildir",
						  src);
					rc = 1;
					continue;
				}
			}
			if (import_maildir_tree(&r, src, mailbox) < 0)
				rc = 1;
		} else if (f == FMT_MBOX) {
			if (S_ISDIR(st.st_mode)) {
				cli_error("import: %s is a directory, not an mbox file", src);
				rc = 1;
				continue;
			}
			if (import_mbox(&r, src, mailbox != NULL ? mailbox : "INBOX") < 0)
				rc = 1;
		} else if (S_ISDIR(st.st_mode)) {
			r.total = count_files(src, 1);
			if (import_files_dir(&r, src, mailbox) < 0)
				rc = 1;
		} else {
			const char *slash = strrchr(src, '/');
			r.total = 1;
			import_one_file(&r, src, slash != NULL ? slash + 1 : src,
					mailbox != NULL ? mailbox : "INBOX", 0, 0);
		}
	}
	if (!r.fatal && importer_flush(r.imp) != 0)
		r.fatal = 1;
	progress_end(&r.prog);
	const struct import_totals *t = importer_totals(r.imp);
	double secs = mk_monotonic() - t0;
	if (secs < 0.001)
		secs = 0.001;
	if (!quiet) {
		char hb[32];
		printf("imported %llu messages (%s) for %s; %llu already there, %llu failed, %llu "
		       "warnings; "
		       "%llu mailboxes created; %.2f s, %.0f msg/s, %.1f MB/s\n",
		       (unsigned long long)t->added,
		       cli_human_bytes(t->added_bytes, hb, sizeof(hb)), user,
		       (unsigned long long)t->present, (unsigned long long)t->failed,
		       (unsigned long long)r.warnings, (unsigned long long)t->mailboxes_created,
		       secs, (double)t->seen / secs, (double)t->seen_bytes / secs / 1e6);
	}
	if (r.fatal) {
		cli_error("import stopped; what was stored before stays, and running the same "
			  "import again "
			  "adds only what is missing");
		rc = 1;
	}
	if (t->failed > 0)
		rc = 1;
	importer_free(&r.imp);
	free(r.buf);
	return rc;
}

const struct command cmd_import = {
    "import",
    "[--format F] [--mailbox NAME] USER SOURCE...",
    "add mail from a Maildir tree, an mbox or a directory of message files",
    import_help,
    run,
};
