/* import_takeout — a Google Takeout mbox: one stored copy of each message, in
 * the mailbox of every label it has (index/gmail_labels.h says how labels
 * map). Also mbox_each(), the mbox reader the mbox-based sources share.
 *
 * A message with five labels is five messages in five mailboxes and one blob:
 * the store keys bytes by their hash, so labels cost nothing
 * (`mailkeep stats`: bytes_referenced against bytes_stored). The usual
 * no-duplicates rule of the importer holds per mailbox, so running the same
 * import again adds nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "index/gmail_labels.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "tools/import_mboxes.h"

#define FROM_META_MAX 1000

int mbox_each(const char *path, enum mbox_variant variant,
	      int (*cb)(const struct mbox_each_msg *m, void *ctx), void *ctx, struct progress *prog,
	      const struct importer *imp)
{
	struct mbox_reader rd;
	struct mbox_msg m;
	struct stat st;
	char *map, *out = NULL, meta[FROM_META_MAX + 64], origin[4200];
	size_t outcap = 0;
	uint64_t count = 0;
	int fd, n, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		cli_error("%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size == 0) {
		close(fd);
		if (st.st_size == 0 && S_ISREG(st.st_mode))
			return 0;
		cli_error("%s: not a regular file", path);
		return -1;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED) {
		cli_error("%s: cannot map the file: %s", path, strerror(errno));
		return -1;
	}
	(void)madvise(map, (size_t)st.st_size, MADV_SEQUENTIAL);
	mbox_reader_init(&rd, map, (size_t)st.st_size);
	while ((n = mbox_next(&rd, &m)) == 1) {
		struct mbox_each_msg e = {0};
		count++;
		snprintf(origin, sizeof(origin), "%s: message %llu (byte %zu)", path,
			 (unsigned long long)count, m.offset);
		if (m.raw_len + 1 > outcap) {
			outcap = m.raw_len + 1;
			out = xreallocarray(out, outcap, 1);
		}
		e.len = mbox_unquote(variant, m.raw, m.raw_len, out);
		e.data = out;
		e.origin = origin;
		if (e.len == 0)
			continue;
		if (m.from == NULL || mbox_parse_date(m.from, m.from_len, &e.internaldate) < 0)
			e.internaldate = st.st_mtime;
		meta[0] = '\0';
		if (m.from != NULL && m.from_len <= FROM_META_MAX &&
		    memchr(m.from, '\0', m.from_len) == NULL &&
		    memchr(m.from, '\r', m.from_len) == NULL)
			snprintf(meta, sizeof(meta), "mbox_from=%.*s\n%s", (int)m.from_len, m.from,
				 m.from_crlf ? "mbox_from_eol=crlf\n" : "");
		e.meta = meta[0] != '\0' ? meta : NULL;
		if ((rc = cb(&e, ctx)) != 0)
			break;
		if (prog != NULL && imp != NULL) {
			const struct import_totals *t = importer_totals(imp);
			progress_update(prog, rd.pos, (uint64_t)st.st_size, t->seen, t->seen_bytes);
		}
	}
	if (n < 0) {
		cli_error("%s: does not begin with a \"From \" line: not an mbox", path);
		rc = -1;
	}
	free(out);
	munmap(map, (size_t)st.st_size);
	return rc;
}

int import_is_takeout(const char *path)
{
	char head[65536];
	struct mbox_msg m;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

	if (fd < 0)
		return 0;
	n = read(fd, head, sizeof(head));
	close(fd);
	if (n < 5 || memcmp(head, "From ", 5) != 0)
		return 0;
	mbox_split_from_line(head, (size_t)n, &m);
	return gmail_labels_present(m.raw, m.raw_len);
}

struct takeout {
	struct importer *imp;
	const char *prefix;
	uint64_t dropped;
	int failed;
};

static int takeout_msg(const struct mbox_each_msg *e, void *ctx)
{
	struct takeout *t = ctx;
	struct gmail_labels g;
	char name[2 * STORE_NAME_MAX + 2];

	gmail_labels_parse(e->data, e->len, &g);
	if (g.dropped > 0) {
		if (t->dropped < 20)
			cli_warn("%s: %zu label%s left out (too many, or not usable as a mailbox "
				 "name)",
				 e->origin, g.dropped, g.dropped == 1 ? "" : "s");
		t->dropped += g.dropped;
	}
	for (size_t i = 0; i < g.n; i++) {
		struct import_msg im = {0};
		if (t->prefix != NULL)
			snprintf(name, sizeof(name), "%s%c%s", t->prefix, STORE_MAILBOX_SEP,
				 g.mailbox[i]);
		else
			mk_strlcpy(name, g.mailbox[i], sizeof(name));
		im.mailbox = name;
		im.data = e->data;
		im.len = e->len;
		im.flags = g.flags;
		im.keywords = g.important ? "$Important" : NULL;
		im.internaldate = e->internaldate;
		im.meta = e->meta;
		im.origin = e->origin;
		if (importer_add(t->imp, &im) != 0)
			return -2; /* the store: stop */
	}
	return 0;
}

int import_takeout(struct importer *imp, struct progress *prog, const char *path,
		   enum mbox_variant variant, const char *prefix)
{
	struct takeout t = {imp, prefix, 0, 0};
	int rc = mbox_each(path, variant, takeout_msg, &t, prog, imp);

	if (t.dropped > 0)
		cli_warn("%s: %llu labels in all were left out (see above)", path,
			 (unsigned long long)t.dropped);
	return rc == -2 ? -1 : rc == -1 ? 1 : 0;
}
