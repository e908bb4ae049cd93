/* import_thunderbird — Thunderbird's local folders (a profile's
 * Mail/Local Folders, or ImapMail/<server> for a cached IMAP account).
 *
 * Each folder is an mbox file named as the folder ("Inbox", "Sent",
 * "Archives"), beside it NAME.msf (Thunderbird's index: ignored, it is
 * rebuilt from the mbox) and NAME.sbd/ holding the sub-folders the same way.
 * Thunderbird keeps a message's state in its own header fields, which stay
 * in the stored bytes (they were in the file):
 *   X-Mozilla-Status: hex; 0x0001 read, 0x0002 replied, 0x0004 flagged,
 *                     0x0008 expunged (deleted, not yet compacted away:
 *                     skipped), 0x1000 forwarded ($Forwarded)
 *   X-Mozilla-Keys:   the tags, IMAP keywords ($label1, "todo", ...)
 * Thunderbird quotes "From " lines in bodies as ">From " and never unquotes
 * them: the files are read as mboxo.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util.h"
#include "tools/import_mboxes.h"

#define MOZ_READ 0x0001
#define MOZ_REPLIED 0x0002
#define MOZ_MARKED 0x0004
#define MOZ_EXPUNGED 0x0008
#define MOZ_FORWARDED 0x1000

static int has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && strcmp(s + a - b, suf) == 0;
}

int import_is_thunderbird(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int yes = 0;

	if (d == NULL)
		return 0;
	while (!yes && (de = readdir(d)) != NULL)
		yes = has_suffix(de->d_name, ".msf") || has_suffix(de->d_name, ".sbd");
	closedir(d);
	return yes;
}

/* The value of header field name (with its colon) in msg's header, into out. */
static int header_value(const char *msg, size_t len, const char *name, char *out, size_t outsize)
{
	size_t nl = strlen(name), i = 0;

	while (i < len) {
		if (msg[i] == '\n' || msg[i] == '\r')
			return -1;
		if (len - i > nl && strncasecmp(msg + i, name, nl) == 0) {
			size_t j = i + nl, o = 0;
			while (j < len && (msg[j] == ' ' || msg[j] == '\t'))
				j++;
			while (j < len && msg[j] != '\r' && msg[j] != '\n' && o + 1 < outsize)
				out[o++] = msg[j++];
			out[o] = '\0';
			return 0;
		}
		const char *e = memchr(msg + i, '\n', len - i);
		if (e == NULL)
			return -1;
		i = (size_t)(e - msg) + 1;
	}
	return -1;
}

struct tb {
	struct importer *imp;
	struct progress *prog;
	const char *mailbox;
	uint64_t expunged;
	int fatal;
};

static int tb_msg(const struct mbox_each_msg *e, void *ctx)
{
	struct tb *t = ctx;
	struct import_msg im = {0};
	char v[64], keys[STORE_KEYWORDS_MAX], kw[STORE_KEYWORDS_MAX];
	unsigned long status = 0;

	if (header_value(e->data, e->len, "X-Mozilla-Status:", v, sizeof(v)) == 0)
		status = strtoul(v, NULL, 16);
	if (status & MOZ_EXPUNGED) {
		t->expunged++;
		return 0;
	}
	if (status & MOZ_READ)
		im.flags |= STORE_F_SEEN;
	if (status & MOZ_REPLIED)
		im.flags |= STORE_F_ANSWERED;
	if (status & MOZ_MARKED)
		im.flags |= STORE_F_FLAGGED;
	kw[0] = '\0';
	if (status & MOZ_FORWARDED)
		mk_strlcpy(kw, "$Forwarded", sizeof(kw));
	if (header_value(e->data, e->len, "X-Mozilla-Keys:", keys, sizeof(keys)) == 0) {
		char *save = NULL;
		for (char *k = strtok_r(keys, " \t", &save); k != NULL;
		     k = strtok_r(NULL, " \t", &save)) {
			if (strlen(kw) + strlen(k) + 2 > sizeof(kw))
				break;
			if (kw[0] != '\0')
				mk_strlcpy(kw + strlen(kw), " ", sizeof(kw) - strlen(kw));
			mk_strlcpy(kw + strlen(kw), k, sizeof(kw) - strlen(kw));
		}
	}
	im.keywords = kw[0] != '\0' ? kw : NULL;
	im.mailbox = t->mailbox;
	im.data = e->data;
	im.len = e->len;
	im.internaldate = e->internaldate;
	im.meta = e->meta;
	im.origin = e->origin;
	if (importer_add(t->imp, &im) != 0) {
		t->fatal = 1;
		return -2;
	}
	return 0;
}

/* Thunderbird's folder name -> ours */
static const char *tb_name(const char *name, int top)
{
	static const struct {
		const char *tb, *ours;
	} map[] = {{"Inbox", "INBOX"},	 {"Archives", "Archive"}, {"Sent", "Sent"},
		   {"Drafts", "Drafts"}, {"Trash", "Trash"},	  {"Junk", "Junk"}};
	if (top)
		for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
			if (strcasecmp(name, map[i].tb) == 0)
				return map[i].ours;
	return name;
}

static int walk(struct tb *t, const char *dir, const char *parent, int depth)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[4096], mb[2 * STORE_NAME_MAX + 2], sbd[4200];
	int rc = 0;

	if (d == NULL) {
		cli_error("%s: %s", dir, strerror(errno));
		return 1;
	}
	while ((de = readdir(d)) != NULL && !t->fatal) {
		struct stat st;
		const char *n = de->d_name;
		if (n[0] == '.' || has_suffix(n, ".msf") || has_suffix(n, ".sbd") ||
		    has_suffix(n, ".dat") || has_suffix(n, ".json") || has_suffix(n, ".html") ||
		    has_suffix(n, ".sqlite") || strcmp(n, "msgFilterRules.dat") == 0)
			continue;
		int pl = snprintf(path, sizeof(path), "%s/%s", dir, n);
		if (pl < 0 || (size_t)pl >= sizeof(path) || stat(path, &st) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		/* an mbox: begins with "From " (Thunderbird writes "From - <date>") */
		char head[5];
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
		ssize_t got = fd >= 0 ? read(fd, head, sizeof(head)) : -1;
		if (fd >= 0)
			close(fd);
		if (st.st_size > 0 && (got != 5 || memcmp(head, "From ", 5) != 0))
			continue; /* a file of Thunderbird's own, not a folder */
		const char *ours = tb_name(n, depth == 0 && parent == NULL);
		if (parent != NULL)
			snprintf(mb, sizeof(mb), "%s%c%s", parent, STORE_MAILBOX_SEP, ours);
		else
			mk_strlcpy(mb, ours, sizeof(mb));
		if (strchr(ours, STORE_MAILBOX_SEP) != NULL) {
			cli_warn("%s: the folder name holds '%c', which here makes a level", path,
				 STORE_MAILBOX_SEP);
		}
		t->mailbox = mb;
		int r = mbox_each(path, MBOX_O, tb_msg, t, t->prog, t->imp);
		if (r == -2)
			break;
		if (r != 0)
			rc = 1;
		snprintf(sbd, sizeof(sbd), "%s.sbd", path);
		if (depth < 32 && stat(sbd, &st) == 0 && S_ISDIR(st.st_mode)) {
			char child_parent[2 * STORE_NAME_MAX + 2];
			mk_strlcpy(child_parent, mb, sizeof(child_parent));
			if (walk(t, sbd, child_parent, depth + 1) != 0)
				rc = 1;
		}
	}
	closedir(d);
	return rc;
}

int import_thunderbird(struct importer *imp, struct progress *prog, const char *dir,
		       const char *prefix)
{
	struct tb t = {imp, prog, NULL, 0, 0};
	int rc = walk(&t, dir, prefix, 0);

	if (t.expunged > 0)
		cli_warn("%s: %llu messages Thunderbird marks as deleted (not yet compacted) were "
			 "left out",
			 dir, (unsigned long long)t.expunged);
	return t.fatal ? -1 : rc;
}
