/* import_pst — an Outlook .pst (or .ost) file, through readpst from Debian's
 * pst-utils (libpst).
 *
 * readpst -r writes one directory per Outlook folder under the file's top
 * folder ("Personal Folders/Inbox/mbox", ".../Sent Items/mbox"), each mail
 * folder an mbox; calendars, contacts and tasks are left out (-t e: e-mail
 * only). The folders map onto ours: Inbox -> INBOX, Sent Items -> Sent,
 * Deleted Items -> Trash, Junk E-mail -> Junk, Drafts, Archive; the others
 * keep their names, '/' levels becoming '.'. Status: lines readpst writes
 * give \Seen. readpst parses an untrusted binary file: it runs without
 * root (as the file's owner, or nobody), never through a shell, into a
 * temporary directory removed afterwards.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/util.h"
#include "tools/import_mboxes.h"

static const char *find_readpst(void)
{
	static const char *const where[] = {"/usr/bin/readpst", "/usr/local/bin/readpst"};
	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++)
		if (access(where[i], X_OK) == 0)
			return where[i];
	return NULL;
}

int import_is_pst(const char *path)
{
	unsigned char head[4];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	ssize_t n = fd >= 0 ? read(fd, head, sizeof(head)) : -1;

	if (fd >= 0)
		close(fd);
	return n == 4 && memcmp(head, "!BDN", 4) == 0; /* the PST/OST magic */
}

static int run_as(uid_t uid, gid_t gid, char *const argv[])
{
	pid_t pid;
	int status;

	fflush(NULL);
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		if (geteuid() == 0 && (setgroups(0, NULL) < 0 || setgid(gid) < 0 ||
				       setuid(uid) < 0 || setuid(0) == 0)) {
			fprintf(stderr, "mailkeep: import: cannot drop privileges for %s\n",
				argv[0]);
			_exit(127);
		}
		char *const env[] = {"PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8", NULL};
		execve(argv[0], argv, env);
		fprintf(stderr, "mailkeep: import: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

struct pst {
	struct importer *imp;
	struct progress *prog;
	const char *mailbox;
	int fatal, failed;
	int folders; /* mail folders found */
};

static int pst_msg(const struct mbox_each_msg *e, void *ctx)
{
	struct pst *p = ctx;
	struct import_msg im = {0};

	im.mailbox = p->mailbox;
	im.data = e->data;
	im.len = e->len;
	im.flags = mbox_status_flags(e->data, e->len);
	im.internaldate = e->internaldate;
	im.meta = e->meta;
	im.origin = e->origin;
	if (importer_add(p->imp, &im) != 0) {
		p->fatal = 1;
		return -2;
	}
	return 0;
}

static const char *pst_name(const char *name, int top)
{
	static const struct {
		const char *pst, *ours;
	} map[] = {{"Inbox", "INBOX"},	    {"Sent Items", "Sent"}, {"Deleted Items", "Trash"},
		   {"Junk E-mail", "Junk"}, {"Junk Email", "Junk"}, {"Drafts", "Drafts"},
		   {"Archive", "Archive"}};
	if (top)
		for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
			if (strcasecmp(name, map[i].pst) == 0)
				return map[i].ours;
	return name;
}

/* dir's "mbox" into mailbox (NULL at the top folder), its sub-directories as children. */
static void walk(struct pst *p, const char *dir, const char *mailbox, int depth)
{
	DIR *d;
	struct dirent *de;
	char path[4200], child[2 * STORE_NAME_MAX + 2];
	struct stat st;

	snprintf(path, sizeof(path), "%s/mbox", dir);
	if (mailbox != NULL && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
		p->mailbox = mailbox;
		p->folders++;
		int r = mbox_each(path, MBOX_O, pst_msg, p, p->prog, p->imp);
		if (r == -1)
			p->failed = 1;
	}
	if (depth > 32 || p->fatal || (d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL && !p->fatal) {
		if (de->d_name[0] == '.')
			continue;
		int n = snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (n < 0 || (size_t)n >= sizeof(path) || stat(path, &st) < 0 ||
		    !S_ISDIR(st.st_mode))
			continue;
		const char *name = pst_name(de->d_name, depth == 1);
		if (depth == 0) { /* the file's top folder ("Personal Folders"): not a level */
			walk(p, path, mailbox, depth + 1);
			continue;
		}
		if (mailbox != NULL)
			n = snprintf(child, sizeof(child), "%s%c%s", mailbox, STORE_MAILBOX_SEP,
				     name);
		else
			n = snprintf(child, sizeof(child), "%s", name);
		if (n < 0 || (size_t)n >= sizeof(child))
			continue;
		walk(p, path, child, depth + 1);
	}
	closedir(d);
}

int import_pst(struct importer *imp, struct progress *prog, const char *path, const char *prefix)
{
	const char *readpst = find_readpst();
	char tmp[4200], abs[4096];
	struct stat st;
	uid_t uid = geteuid();
	gid_t gid = getegid();
	struct pst p = {imp, prog, NULL, 0, 0, 0};
	int rc;

	if (readpst == NULL) {
		cli_error("import: %s is an Outlook file; reading it needs readpst (Debian's "
			  "pst-utils: apt-get install pst-utils)",
			  path);
		return 1;
	}
	if (realpath(path, abs) == NULL || stat(abs, &st) < 0) {
		cli_error("import: %s: %s", path, strerror(errno));
		return 1;
	}
	if (uid == 0) { /* never parse it as root */
		struct passwd *pw = st.st_uid != 0 ? getpwuid(st.st_uid) : getpwnam("nobody");
		if (pw == NULL) {
			cli_error("import: no user to run readpst as (not as root)");
			return 1;
		}
		uid = pw->pw_uid;
		gid = pw->pw_gid;
	}
	const char *tmpdir = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/mailkeep-pst-XXXXXX", tmpdir) >= sizeof(tmp) ||
	    mkdtemp(tmp) == NULL) {
		cli_error("import: cannot make a temporary directory in %s: %s", tmpdir,
			  strerror(errno));
		return 1;
	}
	if (geteuid() == 0 && chown(tmp, uid, gid) < 0) {
		cli_error("import: %s: %s", tmp, strerror(errno));
		rmdir(tmp);
		return 1;
	}
	char *const argv[] = {(char *)readpst, "-r", "-q", "-t", "e", "-8", "-o", tmp, abs, NULL};
	rc = run_as(uid, gid, argv);
	if (rc != 0) {
		cli_error("import: readpst could not read %s (exit %d; its message is above)", path,
			  rc);
	} else {
		walk(&p, tmp, prefix, 0);
		if (p.folders == 0)
			cli_warn("import: %s holds no mail (its calendars, contacts and tasks are "
				 "not mail: left out)",
				 path);
	}
	char *const rm[] = {"/bin/rm", "-rf", "--one-file-system", "--", tmp, NULL};
	if (run_as(uid, gid, rm) != 0)
		cli_warn("import: could not remove %s (a copy of the mail: remove it by hand)",
			 tmp);
	if (p.fatal)
		return -1;
	return rc != 0 || p.failed ? 1 : 0;
}
