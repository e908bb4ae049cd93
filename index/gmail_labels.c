/* gmail_labels — Google Takeout's X-Gmail-Labels (see gmail_labels.h). */
#include "index/gmail_labels.h"

#include <libetpan/libetpan.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"
#include "lib/xmalloc.h"

#define VALUE_MAX 16384 /* an unfolded header value; longer ones are cut */

static const char HEADER[] = "X-Gmail-Labels:";

/* The unfolded value of the first X-Gmail-Labels field into out; 0 if none. */
static int find_value(const char *msg, size_t len, char *out, size_t outsize)
{
	size_t i = 0, hl = sizeof(HEADER) - 1;

	while (i < len) {
		/* a line starting at i */
		if (msg[i] == '\n' || (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n'))
			return 0; /* the empty line: end of the header */
		if (len - i >= hl && strncasecmp(msg + i, HEADER, hl) == 0) {
			size_t o = 0, j = i + hl;
			for (;;) {
				while (j < len && msg[j] != '\n') {
					if (msg[j] != '\r' && o + 1 < outsize)
						out[o++] = msg[j] == '\t' ? ' ' : msg[j];
					j++;
				}
				/* a continuation line starts with white space */
				if (j + 1 < len && (msg[j + 1] == ' ' || msg[j + 1] == '\t')) {
					j++;
					continue;
				}
				break;
			}
			out[o] = '\0';
			return 1;
		}
		const char *nl = memchr(msg + i, '\n', len - i);
		if (nl == NULL)
			return 0;
		i = (size_t)(nl - msg) + 1;
	}
	return 0;
}

int gmail_labels_present(const char *msg, size_t len)
{
	char v[8];
	return find_value(msg, len, v, sizeof(v));
}

/* Adds a mailbox name unless it is there. */
static void add_mailbox(struct gmail_labels *g, const char *name)
{
	for (size_t i = 0; i < g->n; i++)
		if (strcmp(g->mailbox[i], name) == 0)
			return;
	if (g->n >= GMAIL_LABELS_MAX) {
		g->dropped++;
		return;
	}
	mk_strlcpy(g->mailbox[g->n++], name, STORE_NAME_MAX + 1);
}

/* A user label ("Work/Project") as a store name ("Work.Project"). */
static int label_name(const char *label, char *out, size_t outsize)
{
	size_t o = 0;
	int start = 1;

	for (const char *p = label; *p != '\0'; p++) {
		const char *rep = NULL;
		char c = *p;
		if ((unsigned char)c < 0x20 || c == 0x7f)
			return -1;
		if (c == '/') {
			if (start)
				return -1; /* an empty level */
			rep = ".";
			start = 1;
		} else if (c == '.') {
			rep = "\xe2\x80\xa4"; /* U+2024 ONE DOT LEADER */
			start = 0;
		} else {
			start = 0;
		}
		size_t n = rep != NULL ? strlen(rep) : 1;
		if (o + n + 1 > outsize)
			return -1;
		memcpy(out + o, rep != NULL ? rep : p, n);
		o += n;
	}
	out[o] = '\0';
	return o > 0 && !start && o <= STORE_NAME_MAX ? 0 : -1;
}

static void one_label(struct gmail_labels *g, char *label, int *seen)
{
	static const struct {
		const char *label, *mailbox;
	} system[] = {
	    {"Inbox", "INBOX"}, {"Sent", "Sent"},   {"Drafts", "Drafts"}, {"Draft", "Drafts"},
	    {"Spam", "Junk"},	{"Trash", "Trash"}, {"Chat", "Chats"},	  {"Chats", "Chats"},
	};
	char name[STORE_NAME_MAX + 1];
	char *decoded = NULL;

	/* trim */
	while (*label == ' ')
		label++;
	size_t l = strlen(label);
	while (l > 0 && label[l - 1] == ' ')
		label[--l] = '\0';
	if (l >= 2 && label[0] == '"' && label[l - 1] == '"') {
		label[l - 1] = '\0';
		label++;
	}
	if (*label == '\0')
		return;
	if (strstr(label, "=?") != NULL) {
		size_t idx = 0;
		if (mailmime_encoded_phrase_parse("utf-8", label, strlen(label), &idx, "utf-8",
						  &decoded) == MAILIMF_NO_ERROR &&
		    decoded != NULL)
			label = decoded;
	}
	for (size_t i = 0; i < sizeof(system) / sizeof(system[0]); i++)
		if (strcasecmp(label, system[i].label) == 0) {
			add_mailbox(g, system[i].mailbox);
			goto out;
		}
	if (strcasecmp(label, "Starred") == 0)
		g->flags |= STORE_F_FLAGGED;
	else if (strcasecmp(label, "Important") == 0)
		g->important = 1;
	else if (strcasecmp(label, "Unread") == 0)
		*seen = 0;
	else if (strcasecmp(label, "Opened") == 0 || strcasecmp(label, "Archived") == 0 ||
		 strncasecmp(label, "Category ", 9) == 0)
		; /* not a mailbox: Opened is \Seen anyway, Archived is the default */
	else if (label_name(label, name, sizeof(name)) == 0)
		add_mailbox(g, name);
	else
		g->dropped++;
out:
	free(decoded);
}

int gmail_labels_parse(const char *msg, size_t len, struct gmail_labels *out)
{
	char *v = xmalloc(VALUE_MAX);
	int seen = 1, found;

	memset(out, 0, sizeof(*out));
	found = find_value(msg, len, v, VALUE_MAX);
	if (found) {
		/* split at commas outside double quotes */
		char *p = v, *start = v;
		int quoted = 0;
		for (;; p++) {
			if (*p == '"')
				quoted = !quoted;
			if (*p == '\0' || (*p == ',' && !quoted)) {
				int end = *p == '\0';
				*p = '\0';
				one_label(out, start, &seen);
				if (end)
					break;
				start = p + 1;
			}
		}
	}
	if (out->n == 0)
		add_mailbox(out, "Archive");
	if (seen)
		out->flags |= STORE_F_SEEN;
	free(v);
	return found;
}
