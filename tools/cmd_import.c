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
 *
 * Directories are walked as `find -L` would: a symbolic link is followed to
 * what it points at (stat, never lstat, decides), only regular files are read
 * (a FIFO, device or socket is never opened for reading), and a directory
 * that leads back to one being walked is a loop and is not entered. Nothing
 * is skipped quietly: every file left out is named with the reason, and the
 * end of the run counts them by reason.
 *
 * Maildir++ folder names are modified UTF-7 on disk (Dovecot and Courier:
 * ".Entw&APw-rfe"); the store's are UTF-8 ("Entwürfe"). A name with 8-bit
 * bytes that is valid UTF-8 (the mount's names, Dovecot's ":UTF-8" layout) is
 * taken as it is.
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

#include "index/dir.h"
#include "index/maildir_name.h"
#include "index/mbox.h"
#include "lib/utf7.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "tools/cli.h"
#include "tools/import_dovecot.h"
#include "tools/import_imap.h"
#include "tools/import_mboxes.h"
#include "tools/importer.h"

enum src_format {
	FMT_AUTO,
	FMT_MAILDIR,
	FMT_MBOX,
	FMT_FILES,
	FMT_TAKEOUT,
	FMT_THUNDERBIRD,
	FMT_DOVECOT,
	FMT_PST
};

/* Why something found in a source was not imported. */
enum skip_why {
	SKIP_HIDDEN,	 /* a file whose name starts with '.' */
	SKIP_HIDDEN_DIR, /* a directory whose name starts with '.' (not searched) */
	SKIP_SPECIAL,	 /* a FIFO, socket or device */
	SKIP_DANGLING,	 /* a symbolic link to nothing */
	SKIP_LOOP,	 /* a symbolic link loop, or a directory leading back up */
	SKIP_UNREADABLE, /* open or read failed */
	SKIP_EMPTY,	 /* no bytes, or only a From line */
	SKIP_NOT_MAIL,	 /* no header line at the start */
	SKIP_FOLDER,	 /* in a folder whose name cannot be a mailbox name */
	SKIP_N
};

static const struct {
	const char *why;	/* after a file's name */
	const char *one, *many; /* in the count at the end */
	int error;		/* mail left behind that the user can get in: exit status 1 */
} skip_text[SKIP_N] = {
    [SKIP_HIDDEN] = {"hidden (the name starts with '.')", "hidden file", "hidden files", 0},
    [SKIP_HIDDEN_DIR] = {"hidden directory (the name starts with '.'): not searched",
			 "hidden directory (not searched)", "hidden directories (not searched)", 0},
    [SKIP_SPECIAL] = {"not a regular file (a FIFO, socket or device)", "special file",
		      "special files (FIFOs, sockets, devices)", 0},
    [SKIP_DANGLING] = {"a symbolic link to nothing", "symbolic link to nothing",
		       "symbolic links to nothing", 0},
    [SKIP_LOOP] = {"a symbolic link loop", "symbolic link loop", "symbolic link loops", 0},
    [SKIP_UNREADABLE] = {"cannot be read", "unreadable file", "unreadable files", 1},
    [SKIP_EMPTY] = {"empty message", "empty message", "empty messages", 0},
    [SKIP_NOT_MAIL] = {"does not begin with a header line: not a mail message",
		       "file that is not mail", "files that are not mail", 0},
    [SKIP_FOLDER] = {"the folder name cannot be a mailbox name",
		     "file in a folder whose name cannot be a mailbox name",
		     "files in folders whose names cannot be mailbox names", 1},
};

/* Per-file lines for one reason stop after this many; the end counts them all. */
#define SKIP_SHOWN 20

struct import_run {
	struct importer *imp;
	struct progress prog;
	enum mbox_variant variant;
	uint64_t done, total; /* progress units: files, or bytes of an mbox */
	char *buf;	      /* reusable read buffer */
	size_t bufcap;
	uint64_t warnings;
	uint64_t skipped[SKIP_N];
	uint64_t link_files, link_dirs; /* read through symbolic links */
	int utf8_folders;		/* --utf8-folders: Maildir++ names are UTF-8 as they are */
	int fatal;			/* a batch could not be stored: stop */
};

/* Counts a skipped file (or count files, for a whole folder) and says so;
 * detail (may be NULL) replaces the reason's own words. */
static void skipped(struct import_run *r, enum skip_why why, uint64_t count, const char *path,
		    const char *detail)
{
	uint64_t before = r->skipped[why];

	r->skipped[why] += count;
	if (before < SKIP_SHOWN)
		cli_warn("%s: %s: skipped", path, detail != NULL ? detail : skip_text[why].why);
	else if (before == SKIP_SHOWN)
		cli_warn("more %s: not named one by one, counted at the end", skip_text[why].many);
}

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
	if (len > 0 && memchr(data, '\0', len) != NULL) {
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

/* Reads a whole regular file into r->buf, following a symbolic link.
 * Returns 0, or -1 after counting and saying why it was skipped. */
static int read_file(struct import_run *r, const char *path, size_t *len_r, struct stat *st)
{
	/* O_NONBLOCK: a FIFO put in the file's place is never waited on */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	size_t got = 0;

	if (fd < 0 || fstat(fd, st) < 0) {
		int e = errno;
		struct stat lst;
		if (e == ELOOP)
			skipped(r, SKIP_LOOP, 1, path, NULL);
		else if (e == ENOENT && lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode))
			skipped(r, SKIP_DANGLING, 1, path, NULL);
		else
			skipped(r, SKIP_UNREADABLE, 1, path, strerror(e));
		goto fail;
	}
	if (!S_ISREG(st->st_mode)) {
		skipped(r, SKIP_SPECIAL, 1, path, NULL);
		goto fail;
	}
	if ((uint64_t)st->st_size + 1 > r->bufcap) {
		r->bufcap = (size_t)st->st_size + 1;
		r->buf = xreallocarray(r->buf, r->bufcap, 1);
	}
	while (got < (size_t)st->st_size) {
		ssize_t n = read(fd, r->buf + got, (size_t)st->st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			skipped(r, SKIP_UNREADABLE, 1, path,
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
	if (m.raw_len == 0) {
		skipped(r, SKIP_EMPTY, 1, path, len == 0 ? "empty file" : NULL);
		return 0;
	}
	if (!maildir && !looks_like_message(m.raw, m.raw_len)) {
		skipped(r, SKIP_NOT_MAIL, 1, path, NULL);
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
	check_bytes(r, path, m.raw, m.raw_len);
	return add(r, &im);
}

struct entry {
	char *name;
	int sub;   /* Maildir: 0 cur, 1 new */
	int link;  /* reached through a symbolic link */
	dev_t dev; /* directories: for loop checks */
	ino_t ino;
};

struct listing {
	struct entry *files, *dirs;
	size_t nfiles, ndirs;
};

/* The directories being walked, innermost first: a directory found again
 * among them is a loop (a symbolic link pointing up the tree). */
struct walk {
	dev_t dev;
	ino_t ino;
	const struct walk *up;
};

static int walk_has(const struct walk *w, const struct stat *st)
{
	for (; w != NULL; w = w->up)
		if (w->dev == st->st_dev && w->ino == st->st_ino)
			return 1;
	return 0;
}

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

static void entry_add(struct entry **v, size_t *n, const char *name, int sub, int link,
		      const struct stat *st)
{
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[*n].name = xstrdup(name);
	(*v)[*n].sub = sub;
	(*v)[*n].link = link;
	(*v)[*n].dev = st->st_dev;
	(*v)[*n].ino = st->st_ino;
	(*n)++;
}

enum scan_mode {
	SCAN_FILES,	   /* a directory of message files: report what is not one */
	SCAN_MAILDIR_SUB,  /* cur/ or new/: files only; report what is not one */
	SCAN_MAILDIR_ROOT, /* a Maildir's top: directories (".Folder" too), report nothing */
};

/* Adds dir's regular files and directories to l (symbolic links followed to
 * what they point at). With r (the import pass, not the counting one),
 * whatever is neither, and hidden names, are reported as skipped. */
static void scan_dir(struct import_run *r, const char *dir, enum scan_mode mode, int sub,
		     struct listing *l)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[4096];

	if (d == NULL) {
		if (r != NULL && mode != SCAN_MAILDIR_ROOT && errno != ENOENT)
			skipped(r, SKIP_UNREADABLE, 1, dir, strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st, lst;
		int link;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		path_join(p, sizeof(p), dir, de->d_name);
		if (lstat(p, &lst) < 0)
			continue; /* gone since readdir */
		link = S_ISLNK(lst.st_mode);
		if (link && stat(p, &st) < 0) {
			if (r != NULL && mode != SCAN_MAILDIR_ROOT)
				skipped(r, errno == ELOOP ? SKIP_LOOP : SKIP_DANGLING, 1, p, NULL);
			continue;
		}
		if (!link)
			st = lst;
		if (S_ISDIR(st.st_mode)) {
			if (mode == SCAN_MAILDIR_SUB)
				continue; /* not a message; nothing of a Maildir's either */
			if (de->d_name[0] == '.' && mode == SCAN_FILES) {
				if (r != NULL)
					skipped(r, SKIP_HIDDEN_DIR, 1, p, NULL);
				continue;
			}
			entry_add(&l->dirs, &l->ndirs, de->d_name, sub, link, &st);
			continue;
		}
		if (mode == SCAN_MAILDIR_ROOT)
			continue; /* dovecot-uidlist, subscriptions, ...: not messages */
		if (de->d_name[0] == '.') {
			if (r != NULL)
				skipped(r, SKIP_HIDDEN, 1, p, NULL);
			continue;
		}
		if (!S_ISREG(st.st_mode)) {
			if (r != NULL)
				skipped(r, SKIP_SPECIAL, 1, p, NULL);
			continue;
		}
		entry_add(&l->files, &l->nfiles, de->d_name, sub, link, &st);
	}
	closedir(d);
	/* qsort's pointer must not be NULL, even for no elements */
	if (l->nfiles > 1)
		qsort(l->files, l->nfiles, sizeof(*l->files), entry_cmp);
	if (l->ndirs > 1)
		qsort(l->dirs, l->ndirs, sizeof(*l->dirs), entry_cmp);
}

static void free_entries(struct entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

static void listing_free(struct listing *l)
{
	free_entries(l->files, l->nfiles);
	free_entries(l->dirs, l->ndirs);
	memset(l, 0, sizeof(*l));
}

/* Files under dir (a directory of message files; recursive walks sub-directories). */
static uint64_t count_files(const char *dir, int recursive, const struct walk *up)
{
	struct listing l = {0};
	struct stat st;
	uint64_t total;
	char p[4096];

	if (stat(dir, &st) < 0 || walk_has(up, &st))
		return 0;
	struct walk here = {st.st_dev, st.st_ino, up};
	scan_dir(NULL, dir, SCAN_FILES, 0, &l);
	total = l.nfiles;
	for (size_t i = 0; recursive && i < l.ndirs; i++) {
		path_join(p, sizeof(p), dir, l.dirs[i].name);
		total += count_files(p, 1, &here);
	}
	listing_free(&l);
	return total;
}

/* Files in a Maildir folder's cur/ and new/. */
static uint64_t count_maildir_files(const char *dir)
{
	struct listing l = {0};
	char p[4096];
	uint64_t n;

	path_join(p, sizeof(p), dir, "cur");
	scan_dir(NULL, p, SCAN_MAILDIR_SUB, 0, &l);
	path_join(p, sizeof(p), dir, "new");
	scan_dir(NULL, p, SCAN_MAILDIR_SUB, 1, &l);
	n = l.nfiles;
	listing_free(&l);
	return n;
}

static int import_maildir_folder(struct import_run *r, const char *dir, const char *mailbox)
{
	struct listing l = {0};
	char cur[4096], nw[4096], p[4096];

	path_join(cur, sizeof(cur), dir, "cur");
	path_join(nw, sizeof(nw), dir, "new");
	scan_dir(r, cur, SCAN_MAILDIR_SUB, 0, &l);
	scan_dir(r, nw, SCAN_MAILDIR_SUB, 1, &l);
	if (l.nfiles > 1) /* cur/ and new/ together, in name (delivery) order */
		qsort(l.files, l.nfiles, sizeof(*l.files), entry_cmp);
	for (size_t i = 0; i < l.nfiles && !r->fatal; i++) {
		path_join(p, sizeof(p), l.files[i].sub ? nw : cur, l.files[i].name);
		r->link_files += (uint64_t)l.files[i].link;
		import_one_file(r, p, l.files[i].name, mailbox, 1,
				l.files[i].sub ? STORE_F_RECENT : 0);
	}
	listing_free(&l);
	return r->fatal ? -1 : 0;
}

/* The store name of Maildir++ folder ".NAME" (name without the dot) under
 * prefix (may be NULL): NAME decoded from modified UTF-7, or taken as it is
 * when it is UTF-8 with 8-bit bytes (or with --utf8-folders). Returns 0, or
 * -1 after reporting the folder's files as skipped. */
static int folder_mailbox(struct import_run *r, const char *path, const char *name,
			  const char *prefix, char *out, size_t outsize)
{
	char dec[STORE_NAME_MAX + 1], enc[4 * STORE_NAME_MAX + 16];
	const char *use = NULL, *why = NULL;
	int n, ascii = 1;

	for (const char *c = name; *c != '\0'; c++)
		if ((unsigned char)*c >= 0x80)
			ascii = 0;
	if (!r->utf8_folders && ascii && utf7_to_utf8(name, dec, sizeof(dec)) == 0)
		use = dec;
	else if (utf8_to_utf7(name, enc, sizeof(enc)) == 0) {
		use = name; /* UTF-8, as the store keeps names */
		if (!r->utf8_folders && ascii && strchr(name, '&') != NULL)
			cli_warn("%s: the folder name is not valid modified UTF-7; mailbox '%s' "
				 "keeps it as it is",
				 path, name);
	} else {
		why = ascii ? "the folder name holds control characters"
			    : "the folder name is neither modified UTF-7 nor UTF-8 (rename it "
			      "to UTF-8, e.g. with convmv, and import again)";
	}
	if (use != NULL) {
		n = prefix != NULL
			? snprintf(out, outsize, "%s%c%s", prefix, STORE_MAILBOX_SEP, use)
			: snprintf(out, outsize, "%s", use);
		if (n < 0 || (size_t)n >= outsize || strlen(out) > STORE_NAME_MAX)
			why = "the mailbox name would be too long";
	}
	if (why == NULL)
		return 0;
	uint64_t files = count_maildir_files(path);
	char detail[600];
	snprintf(detail, sizeof(detail), "%s (%llu message file%s in it)", why,
		 (unsigned long long)files, files == 1 ? "" : "s");
	skipped(r, SKIP_FOLDER, files, path, detail);
	return -1;
}

static int import_maildir_tree(struct import_run *r, const char *root, const char *prefix)
{
	struct listing l = {0};
	char p[4096], mb[STORE_NAME_MAX + 2];

	/* progress: count the files first (cheap next to reading them) */
	scan_dir(NULL, root, SCAN_MAILDIR_ROOT, 0, &l);
	r->total = count_maildir_files(root);
	for (size_t i = 0; i < l.ndirs; i++) {
		if (l.dirs[i].name[0] != '.')
			continue;
		path_join(p, sizeof(p), root, l.dirs[i].name);
		r->total += count_maildir_files(p);
	}
	if (import_maildir_folder(r, root, prefix != NULL ? prefix : "INBOX") < 0)
		goto done;
	for (size_t i = 0; i < l.ndirs && !r->fatal; i++) {
		const char *name = l.dirs[i].name;
		if (name[0] != '.' || name[1] == '\0')
			continue;
		path_join(p, sizeof(p), root, name);
		if (!is_maildir(p))
			continue;
		if (folder_mailbox(r, p, name + 1, prefix, mb, sizeof(mb)) < 0)
			continue;
		r->link_dirs += (uint64_t)l.dirs[i].link;
		import_maildir_folder(r, p, mb);
	}
done:
	listing_free(&l);
	return r->fatal ? -1 : 0;
}

/* dir's files into mailbox (NULL: INBOX), its sub-directories into child
 * mailboxes; up: the directories above, for loop checks. */
static int import_files_dir(struct import_run *r, const char *dir, const char *mailbox,
			    const struct walk *up)
{
	struct listing l = {0};
	struct stat st;
	char p[4096], mb[STORE_NAME_MAX + 2];

	if (stat(dir, &st) < 0) {
		skipped(r, SKIP_UNREADABLE, 1, dir, strerror(errno));
		return 0;
	}
	struct walk here = {st.st_dev, st.st_ino, up};
	scan_dir(r, dir, SCAN_FILES, 0, &l);
	for (size_t i = 0; i < l.nfiles && !r->fatal; i++) {
		path_join(p, sizeof(p), dir, l.files[i].name);
		r->link_files += (uint64_t)l.files[i].link;
		import_one_file(r, p, l.files[i].name, mailbox != NULL ? mailbox : "INBOX", 0, 0);
	}
	for (size_t i = 0; i < l.ndirs && !r->fatal; i++) {
		const struct entry *e = &l.dirs[i];
		struct stat dst = {.st_dev = e->dev, .st_ino = e->ino};
		path_join(p, sizeof(p), dir, e->name);
		if (walk_has(&here, &dst)) {
			skipped(
			    r, SKIP_LOOP, 1, p,
			    "a directory that leads back to one above it (a loop): not entered");
			continue;
		}
		int len = mailbox != NULL ? snprintf(mb, sizeof(mb), "%s%c%s", mailbox,
						     STORE_MAILBOX_SEP, e->name)
					  : snprintf(mb, sizeof(mb), "%s", e->name);
		if (len < 0 || (size_t)len >= sizeof(mb) || (size_t)len > STORE_NAME_MAX) {
			uint64_t files = count_files(p, 1, &here);
			skipped(r, SKIP_FOLDER, files, p, "the mailbox name would be too long");
			continue;
		}
		r->link_dirs += (uint64_t)e->link;
		import_files_dir(r, p, mb, &here);
	}
	listing_free(&l);
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

	fd = strcmp(path, "-") == 0 ? stdin_to_file()
				    : open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		cli_error("%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		cli_error("%s: not a regular file (to read an mbox from a pipe, give \"-\" and "
			  "pipe it to standard input)",
			  path);
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
			out = xreallocarray(out, outcap, 1);
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
			skipped(r, SKIP_EMPTY, 1, origin, NULL);
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
		struct listing l = {0};
		int maildir = is_maildir(path);
		char p[4096];
		scan_dir(NULL, path, SCAN_MAILDIR_ROOT, 0, &l);
		for (size_t i = 0; i < l.ndirs && !maildir; i++) {
			if (l.dirs[i].name[0] != '.')
				continue;
			path_join(p, sizeof(p), path, l.dirs[i].name);
			maildir = is_maildir(p);
		}
		listing_free(&l);
		if (!maildir && import_is_dovecot(path))
			return FMT_DOVECOT;
		if (!maildir && import_is_thunderbird(path))
			return FMT_THUNDERBIRD;
		return maildir ? FMT_MAILDIR : FMT_FILES;
	}
	if (!S_ISREG(st.st_mode))
		return FMT_FILES; /* never opened: reported as not a regular file */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return FMT_AUTO;
	ssize_t n = read(fd, head, sizeof(head));
	close(fd);
	if (import_is_pst(path))
		return FMT_PST;
	if (n == 5 && memcmp(head, "From ", 5) == 0)
		return import_is_takeout(path) ? FMT_TAKEOUT : FMT_MBOX;
	return FMT_FILES;
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
		cli_error("import: the directory (%s) has no user '%s'", cli->common.user_directory,
			  name);
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

int import_user_ready(struct cli *cli, struct store *store, const char *user)
{
	return cli_directory_embedded(cli) ? 0 : ldap_user_ready(cli, store, user);
}

static const char import_help[] =
    "Adds mail to a user's mailboxes. SOURCE is (detected, or named by --format):\n"
    "  a Maildir tree   cur/ and new/ go to INBOX, Maildir++ folders .A.B to mailbox A.B;\n"
    "                   folder names in modified UTF-7 (.Entw&APw-rfe, as Dovecot and\n"
    "                   Courier write them) become UTF-8 (Entwürfe); flags from the\n"
    "                   names (:2,DFPRST), new/ messages stay \\Recent\n"
    "  an mbox file     mboxrd by default (--mbox-variant o for mboxo); Status:/X-Status:\n"
    "                   give flags; the From line's date is the internal date\n"
    "  a directory      of one-message files: each file is one message; files go to\n"
    "                   INBOX (or --mailbox), a sub-directory S to mailbox S (or MAILBOX.S)\n"
    "  a file           not starting with \"From \": one message\n"
    "  imaps://LOGIN@HOST[:PORT]  every folder of an IMAP server (imap://: STARTTLS);\n"
    "                   special-use folders into ours, flags, keywords, dates; the\n"
    "                   store records how far each folder got: run it again to resume\n"
    "                   or to copy what is new (see the options for a server below)\n"
    "Symbolic links are followed to regular files and directories (loops are not\n"
    "entered). Whatever is not imported (not mail, empty, hidden, a link to nothing,\n"
    "unreadable) is named with the reason and counted by reason at the end; a run\n"
    "that found files but imported none exits 1.\n"
    "A leading \"From \" line is taken off each message and kept as metadata, so\n"
    "`mailkeep export --format files` gives the original files back byte for byte.\n"
    "Running the same import again adds only what is missing: for each mailbox a\n"
    "message is added only if the mailbox holds fewer copies of those exact bytes than\n"
    "the source does. Many messages share one durable commit; an interrupted import\n"
    "keeps whole batches and can simply be run again.\n\n"
    "options:\n"
    "  --format F         auto (default), maildir, mbox, files, takeout (a Google Takeout\n"
    "                     mbox: found by its X-Gmail-Labels) or thunderbird (local\n"
    "                     folders: found by their .msf files) or dovecot (an mdbox or\n"
    "                     sdbox directory, copied out with Dovecot's doveadm) or pst\n"
    "                     (an Outlook .pst/.ost, read with readpst from pst-utils)\n"
    "  --mbox-variant V   rd (default) or o: how >From lines are unquoted\n"
    "  --mailbox NAME     the mailbox for an mbox or files (default INBOX); for a Maildir\n"
    "                     tree, the parent under which its folders go\n"
    "  --utf8-folders     Maildir++ folder names are UTF-8 as they are, never decoded\n"
    "                     from modified UTF-7 (without it, a name with 8-bit bytes that\n"
    "                     is valid UTF-8 is taken as it is anyway)\n"
    "  --batch N          messages per commit (default 1000)\n"
    "  -q, --quiet        no summary line\n"
    "With user_directory = ldap:FILE, USER is a user of the directory; the store\n"
    "learns them here if no mail reached them yet.\n\n"
    "options for a server (imaps://):\n"
    "  --password-file F      the password is the first line of F (- for standard input);\n"
    "                         without it, asked on the terminal\n"
    "  --oauth2-token-file F  log in with an OAuth2 access token (XOAUTH2 or OAUTHBEARER)\n"
    "  --oauth2-mechanism M   xoauth2 or oauthbearer (default: XOAUTH2 if offered)\n"
    "  --ca-file F            trust the CA certificates in F (a server with its own CA)\n"
    "  --max-rate R           read at most R bytes a second (k, m suffixes)\n"
    "  --max-bytes N          stop after N bytes (0: no limit; from Gmail 2400m unless\n"
    "                         said otherwise); run again to go on\n"
    "  --full                 compare every message by content, not from the last UID\n"
    "  --timeout S            seconds to wait for the server (default 120)\n"
    "  --retries N            reconnections in a row without progress (default 8)\n"
    "  --mailbox NAME         put every folder under this mailbox\n"
    "  --batch N, -q          as above\n\n"
    "examples:\n"
    "  mailkeep import bob ~/Maildir\n"
    "  mailkeep import --mailbox Archive.2003 bob ~/mail/2003.mbox\n"
    "  mailkeep import --format files --mailbox Corpus bob /work/shared/corpus/spamassassin\n"
    "  mailkeep import bob imaps://bob@imap.example.net\n"
    "  mailkeep import --oauth2-token-file tok bob imaps://me@gmail.com@imap.gmail.com\n";

struct import_opts {
	enum src_format format;
	const char *mailbox;
	uint64_t batch;
	int quiet;
};

/* Returns 0, or the exit status of a bad option (its message printed). */
static int parse_options(struct import_opts *o, struct import_run *r, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"format", required_argument, NULL, 'f'},
	    {"mbox-variant", required_argument, NULL, 'V'},
	    {"mailbox", required_argument, NULL, 'm'},
	    {"batch", required_argument, NULL, 'b'},
	    {"utf8-folders", no_argument, NULL, 'u'},
	    {"quiet", no_argument, NULL, 'q'},
	    {NULL, 0, NULL, 0},
	};
	static const struct {
		const char *name;
		enum src_format format;
	} formats[] = {{"auto", FMT_AUTO},	 {"maildir", FMT_MAILDIR},
		       {"mbox", FMT_MBOX},	 {"files", FMT_FILES},
		       {"takeout", FMT_TAKEOUT}, {"thunderbird", FMT_THUNDERBIRD},
		       {"dovecot", FMT_DOVECOT}, {"pst", FMT_PST}};
	int c;
	size_t i;

	while ((c = getopt_long(argc, argv, "f:V:m:b:q", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			for (i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
				if (strcmp(optarg, formats[i].name) == 0)
					break;
			if (i == sizeof(formats) / sizeof(formats[0])) {
				cli_error("import: unknown format '%s' (auto, maildir, mbox, "
					  "files, takeout, "
					  "thunderbird, dovecot, pst)",
					  optarg);
				return EXIT_USAGE;
			}
			o->format = formats[i].format;
			break;
		case 'V':
			if (strcmp(optarg, "rd") == 0 || strcmp(optarg, "mboxrd") == 0)
				r->variant = MBOX_RD;
			else if (strcmp(optarg, "o") == 0 || strcmp(optarg, "mboxo") == 0)
				r->variant = MBOX_O;
			else {
				cli_error("import: unknown mbox variant '%s' (rd or o)", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'm':
			o->mailbox = optarg;
			break;
		case 'b':
			if (mk_parse_u64(optarg, 1, 1000000, &o->batch) < 0) {
				cli_error("import: --batch wants a number from 1 to 1000000");
				return EXIT_USAGE;
			}
			break;
		case 'q':
			o->quiet = 1;
			break;
		case 'u':
			r->utf8_folders = 1;
			break;
		default:
			return cli_usage(&cmd_import);
		}
	}
	return 0;
}

/* One SOURCE, of the format named or found. Returns 0, or -1 if it failed
 * (the message printed). */
static int import_source(struct import_run *r, const char *src, const struct import_opts *o)
{
	enum src_format f = o->format != FMT_AUTO ? o->format : detect(src);
	const char *mailbox = o->mailbox;
	struct stat st;

	r->done = r->total = 0;
	if (strcmp(src, "-") == 0) /* standard input: an mbox */
		return import_mbox(r, src, mailbox != NULL ? mailbox : "INBOX") < 0 ? -1 : 0;
	if (stat(src, &st) < 0) {
		cli_error("import: %s: %s", src, strerror(errno));
		return -1;
	}
	if (f == FMT_TAKEOUT || f == FMT_THUNDERBIRD) { /* tools/import_{takeout,thunderbird}.c */
		int tr = f == FMT_TAKEOUT
			     ? import_takeout(r->imp, &r->prog, src, r->variant, mailbox)
			     : import_thunderbird(r->imp, &r->prog, src, mailbox);
		r->fatal = tr < 0;
		return tr != 0 ? -1 : 0;
	}
	if (f == FMT_PST) { /* tools/import_pst.c */
		int pr = import_pst(r->imp, &r->prog, src, mailbox);
		r->fatal = pr < 0;
		return pr != 0 ? -1 : 0;
	}
	if (f == FMT_DOVECOT) { /* tools/import_dovecot.c: doveadm makes a Maildir of it */
		char tree[4200], tmp[4200] = "";
		int dr = import_dovecot_export(src, tree, sizeof(tree), tmp, sizeof(tmp));
		if (dr == 0)
			dr = import_maildir_tree(r, tree, mailbox) < 0 ? -1 : 0;
		import_dovecot_cleanup(tmp);
		return dr;
	}
	if (f == FMT_MAILDIR) {
		if (!S_ISDIR(st.st_mode)) {
			cli_error("import: %s is not a directory: not a Maildir", src);
			return -1;
		}
		return import_maildir_tree(r, src, mailbox) < 0 ? -1 : 0;
	}
	if (f == FMT_MBOX) {
		if (S_ISDIR(st.st_mode)) {
			cli_error("import: %s is a directory, not an mbox file", src);
			return -1;
		}
		return import_mbox(r, src, mailbox != NULL ? mailbox : "INBOX") < 0 ? -1 : 0;
	}
	if (S_ISDIR(st.st_mode)) {
		r->total = count_files(src, 1, NULL);
		return import_files_dir(r, src, mailbox, NULL) < 0 ? -1 : 0;
	}
	const char *slash = strrchr(src, '/');
	r->total = 1;
	import_one_file(r, src, slash != NULL ? slash + 1 : src,
			mailbox != NULL ? mailbox : "INBOX", 0, 0);
	return 0;
}

/* The one line, whatever -q says, of what was left out and why. */
static void report_skipped(const struct import_run *r, uint64_t nskipped)
{
	char line[2048];
	size_t off = 0;
	int n = snprintf(line, sizeof(line), "skipped %llu:", (unsigned long long)nskipped);

	off = n > 0 ? (size_t)n : 0;
	for (int w = 0, first = 1; w < SKIP_N && off < sizeof(line); w++) {
		if (r->skipped[w] == 0)
			continue;
		n = snprintf(line + off, sizeof(line) - off, "%s %llu %s", first ? "" : ",",
			     (unsigned long long)r->skipped[w],
			     r->skipped[w] == 1 ? skip_text[w].one : skip_text[w].many);
		off += n > 0 ? (size_t)n : 0;
		first = 0;
	}
	cli_warn("%s", line);
}

/* The summary and the exit status of the whole run. */
static int report(const struct import_run *r, const char *user, double secs, int quiet, int rc)
{
	const struct import_totals *t = importer_totals(r->imp);
	uint64_t nskipped = 0;
	int skip_error = 0;

	if (secs < 0.001)
		secs = 0.001;
	for (int w = 0; w < SKIP_N; w++) {
		nskipped += r->skipped[w];
		if (r->skipped[w] > 0 && skip_text[w].error)
			skip_error = 1;
	}
	if (!quiet) {
		char hb[32];
		printf("imported %llu messages (%s) for %s; %llu already there, %llu failed, %llu "
		       "skipped, %llu warnings; "
		       "%llu mailboxes created; %.2f s, %.0f msg/s, %.1f MB/s\n",
		       (unsigned long long)t->added,
		       cli_human_bytes(t->added_bytes, hb, sizeof(hb)), user,
		       (unsigned long long)t->present, (unsigned long long)t->failed,
		       (unsigned long long)nskipped, (unsigned long long)r->warnings,
		       (unsigned long long)t->mailboxes_created, secs, (double)t->seen / secs,
		       (double)t->seen_bytes / secs / 1e6);
		if (r->link_files > 0 || r->link_dirs > 0)
			printf("followed symbolic links to %llu file%s and %llu director%s\n",
			       (unsigned long long)r->link_files, r->link_files == 1 ? "" : "s",
			       (unsigned long long)r->link_dirs, r->link_dirs == 1 ? "y" : "ies");
	}
	if (nskipped > 0) {
		report_skipped(r, nskipped);
		if (t->seen == 0) {
			cli_error("import: no message was imported: everything found was skipped "
				  "(see above)");
			rc = 1;
		} else if (skip_error) {
			rc = 1;
		}
	}
	if (r->fatal) {
		cli_error("import stopped; what was stored before stays, and running the same "
			  "import again "
			  "adds only what is missing");
		rc = 1;
	}
	if (t->failed > 0)
		rc = 1;
	return rc;
}

static int run(struct cli *cli, int argc, char **argv)
{
	struct import_opts o = {.format = FMT_AUTO, .batch = 1000};
	struct import_run r = {0};
	int rc;
	struct store *store;

	for (int i = 1; i < argc; i++)
		if (import_imap_is_url(argv[i]))
			return import_imap_main(cli, argc, argv); /* tools/import_imap.c */
	if ((rc = parse_options(&o, &r, argc, argv)) != 0)
		return rc;
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
	if ((r.imp = importer_new(store, user, (size_t)o.batch, 0)) == NULL)
		return 1;
	progress_init(&r.prog, "importing");
	double t0 = mk_monotonic();
	for (int i = optind + 1; i < argc && !r.fatal; i++)
		if (import_source(&r, argv[i], &o) < 0)
			rc = 1;
	if (!r.fatal && importer_flush(r.imp) != 0)
		r.fatal = 1;
	progress_end(&r.prog);
	rc = report(&r, user, mk_monotonic() - t0, o.quiet, rc);
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
