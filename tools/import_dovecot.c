/* import_dovecot — a Dovecot mdbox or sdbox store (dbox: Dovecot's own
 * formats, which no other program reads) through Dovecot's own doveadm.
 *
 * `doveadm backup` (dsync) copies the store into a plain Maildir++ tree in
 * a temporary directory, with flags in the file names and the received
 * dates as mtimes; cmd_import then reads that tree like any Maildir. doveadm
 * runs with a configuration of its own (written next to the copy: the
 * store's location, '.' as the separator), never through a shell, and as
 * the owner of the store: Dovecot refuses to read mail as root, and so the
 * copy belongs to that owner too. Keywords (kept by dbox in its index) are
 * not carried: Maildir++ keeps them in per-folder letter files this import
 * does not read. Without doveadm, doc/tools.md gives the same step by hand.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/util.h"
#include "tools/cli.h"
#include "tools/import_dovecot.h"

static int exists_in(const char *dir, const char *name, int want_dir)
{
	char p[4200];
	struct stat st;

	if ((size_t)snprintf(p, sizeof(p), "%s/%s", dir, name) >= sizeof(p) || stat(p, &st) < 0)
		return 0;
	return want_dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode);
}

/* "mdbox", "sdbox" or NULL. */
static const char *dbox_kind(const char *dir)
{
	if (!exists_in(dir, "mailboxes", 1))
		return NULL;
	if (exists_in(dir, "storage", 1))
		return "mdbox";
	return exists_in(dir, "dovecot.list.index.log", 0) ||
		       exists_in(dir, "dovecot-uidvalidity", 0)
		   ? "sdbox"
		   : NULL;
}

int import_is_dovecot(const char *dir)
{
	return dbox_kind(dir) != NULL;
}

static const char *find_doveadm(void)
{
	static const char *const where[] = {"/usr/bin/doveadm", "/usr/local/bin/doveadm",
					    "/usr/sbin/doveadm"};
	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++)
		if (access(where[i], X_OK) == 0)
			return where[i];
	return NULL;
}

int import_dovecot_export(const char *src, char *tree_r, size_t treesize, char *tmp_r,
			  size_t tmpsize)
{
	const char *kind = dbox_kind(src), *doveadm = find_doveadm();
	char conf[4200], loc[4200], dest[4200], home[4200], abs[4096];
	struct stat st;
	struct passwd *pw;
	pid_t pid;
	int status;

	if (kind == NULL) {
		cli_error("import: %s is not a Dovecot mdbox or sdbox directory (no mailboxes/)",
			  src);
		return -1;
	}
	if (doveadm == NULL) {
		cli_error(
		    "import: %s is a Dovecot %s store, and reading it needs Dovecot's doveadm, "
		    "which is not installed here: copy it to a Maildir where Dovecot runs "
		    "(doc/tools.md, \"Dovecot's own formats\") and import that",
		    src, kind);
		return -1;
	}
	if (realpath(src, abs) == NULL || stat(abs, &st) < 0) {
		cli_error("import: %s: %s", src, strerror(errno));
		return -1;
	}
	if (st.st_uid == 0) {
		cli_error(
		    "import: %s belongs to root, and Dovecot never reads mail as root: give it "
		    "to the mail user (chown -R) or copy it, then import again",
		    src);
		return -1;
	}
	const char *tmpdir = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
	if ((size_t)snprintf(tmp_r, tmpsize, "%s/mailkeep-dovecot-XXXXXX", tmpdir) >= tmpsize ||
	    mkdtemp(tmp_r) == NULL) {
		tmp_r[0] = '\0';
		cli_error("import: cannot make a temporary directory in %s: %s", tmpdir,
			  strerror(errno));
		return -1;
	}
	snprintf(conf, sizeof(conf), "%s/dovecot.conf", tmp_r);
	snprintf(dest, sizeof(dest), "%s/maildir", tmp_r);
	snprintf(home, sizeof(home), "%s/home", tmp_r);
	snprintf(loc, sizeof(loc), "%s:%s", kind, abs);
	if (strchr(abs, '"') != NULL || strchr(abs, '\n') != NULL) {
		cli_error(
		    "import: %s: a path with '\"' or a line break cannot be handed to doveadm",
		    src);
		return -1;
	}
	FILE *f = fopen(conf, "w");
	if (f == NULL) {
		cli_error("import: %s: %s", conf, strerror(errno));
		return -1;
	}
	fprintf(f,
		"# written by mailkeep import for one doveadm backup\n"
		"mail_location = \"%s\"\n"
		"first_valid_uid = 1\n"
		"namespace inbox {\n  inbox = yes\n  prefix =\n  separator = .\n}\n",
		loc);
	if (fclose(f) != 0 || mkdir(home, 0700) < 0) {
		cli_error("import: %s: %s", tmp_r, strerror(errno));
		return -1;
	}
	pw = getpwuid(st.st_uid);
	if (geteuid() == 0 &&
	    (chown(tmp_r, st.st_uid, st.st_gid) < 0 || chown(home, st.st_uid, st.st_gid) < 0 ||
	     chown(conf, st.st_uid, st.st_gid) < 0)) {
		cli_error("import: %s: %s", tmp_r, strerror(errno));
		return -1;
	}
	char target[4300];
	snprintf(target, sizeof(target), "maildir:%s", dest);
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		cli_error("import: fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		char envuser[300], envhome[4300];
		/* doveadm runs as the store's owner: drop root for good first */
		if (geteuid() == 0 && (setgroups(0, NULL) < 0 || setgid(st.st_gid) < 0 ||
				       setuid(st.st_uid) < 0 || setuid(0) == 0)) {
			fprintf(stderr, "mailkeep: import: cannot become uid %u\n",
				(unsigned)st.st_uid);
			_exit(127);
		}
		snprintf(envuser, sizeof(envuser), "USER=%s", pw != NULL ? pw->pw_name : "mail");
		snprintf(envhome, sizeof(envhome), "HOME=%s", home);
		char *const env[] = {envuser, envhome, "PATH=/usr/bin:/bin", NULL};
		char *const argv[] = {(char *)doveadm, "-c", conf, "backup", target, NULL};
		execve(doveadm, argv, env);
		fprintf(stderr, "mailkeep: import: cannot run %s: %s\n", doveadm, strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			cli_error("import: waitpid: %s", strerror(errno));
			return -1;
		}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		cli_error("import: `doveadm backup` of %s failed (exit %d; its message is above)",
			  src, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		return -1;
	}
	mk_strlcpy(tree_r, dest, treesize);
	return 0;
}

static int rm_tree(const char *path)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		char *const argv[] = {"rm", "-rf", "--one-file-system", "--", (char *)path, NULL};
		execv("/bin/rm", argv);
		_exit(127);
	}
	if (pid < 0)
		return -1;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

void import_dovecot_cleanup(const char *tmp)
{
	if (tmp[0] != '\0' && rm_tree(tmp) < 0)
		cli_warn("import: could not remove %s (a copy of the mail: remove it by hand)",
			 tmp);
}
