/* session — one IMAP connection: state, the selected mailbox's view, and the
 * helpers every cmd_*.c file shares. One thread runs one session (see
 * doc/imapd.md for why), so nothing here is locked except struct imapd's
 * shared tables. */
#ifndef MK_IMAP_SESSION_H
#define MK_IMAP_SESSION_H

#include <pthread.h>
#include <stdint.h>

#include "imapd/io.h"
#include "imapd/parse.h"
#include "index/store.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "index/dir.h"
#include "lib/tls.h"

/* What the whole server shares (read-only after start, except where locked). */
struct imapd {
	struct config *cfg;
	struct store *store;
	struct directory *dir;
	struct tls_holder tls; /* no context loaded: no TLS; replaced on SIGHUP */
	size_t max_line;
	uint64_t max_literal;
	int idle_interval; /* seconds between "* OK Still here" in IDLE */
	int timeout;	   /* seconds: autologout */
	int login_timeout; /* seconds before login */
	unsigned max_cmds_per_sec;
	char **plaintext_nets; /* clients allowed to log in without TLS */
	size_t nplaintext_nets;
	/* recent SELECT results by mailbox version, so a SELECT of an unchanged
	 * mailbox copies the UID list instead of walking every message */
	pthread_mutex_t views_lock;
	struct view_cache {
		uint32_t mbid, uidvalidity, uidnext, first_unseen;
		uint64_t hms;
		uint32_t *uids;
		size_t n;
		char *keywords; /* the keywords used in the mailbox, space-separated */
		unsigned long used;
	} views[64];
	unsigned long views_clock;
};

enum sess_state { S_NOTAUTH, S_AUTH, S_SELECTED, S_LOGOUT };

struct view {
	uint32_t mbid;
	char name[STORE_NAME_MAX + 1]; /* UTF-8 */
	uint32_t uidvalidity;
	uint32_t *uids; /* seq n is uids[n-1], ascending */
	size_t n, cap;
	uint64_t hms;	     /* flag changes up to this modseq were reported */
	uint64_t exp_modseq; /* expunges up to this modseq were reported */
	uint32_t uidnext;    /* first UID the client has not seen */
	int readonly;
	uint32_t *recent; /* UIDs that are \Recent in this session, ascending */
	size_t nrecent;
	struct buf keywords; /* keywords announced in FLAGS, space-separated (RFC 3501 7.2.6) */
};

struct session {
	struct imapd *d;
	struct io io;
	char ip[64];
	char lip[64];
	int plaintext_ok; /* local client: may log in without TLS */
	int tls;
	enum sess_state state;
	struct buf in;
	struct imap_framer fr;
	struct imap_arena *arena; /* per command */
	const char *tag;
	char user[STORE_NAME_MAX + 1];
	uint32_t user_id;
	struct view sel;
	int condstore, qresync;
	/* SEARCH RETURN (UPDATE) results kept current (CONTEXT=SEARCH, RFC 5267) */
	struct search_update *updates;
	size_t nupdates;
	/* SEARCHRES (RFC 5182): the UIDs saved by RETURN (SAVE), ascending; "$" */
	uint32_t *saved;
	size_t nsaved;
	int rev2;		     /* ENABLE IMAP4rev2 (RFC 9051) */
	struct notify_state *notify; /* NOTIFY SET (cmd_notify.c), or NULL */
	int notify_fd;		     /* its change notice (notify.c), or -1 */
	/* changes this session just reported itself (STORE): sess_sync skips them */
	const uint32_t *own_uids;
	const uint64_t *own_modseqs;
	size_t nown;
	int utf8;
	unsigned cmds_this_sec;
	double sec_start;
	char id[24]; /* a queue-id-like session id for logs */
};

/* The session thread's entry point; takes ownership of fd. */
void session_run(struct imapd *d, int fd, int implicit_tls);

/* --- replies ---------------------------------------------------------------- */
void sess_tagged(struct session *s, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sess_untagged(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* NO with a response code chosen from a store error. */
void sess_store_error(struct session *s, int err, const char *what);
/* TLS on the connection (STARTTLS, port 993) with the certificate loaded now; 0 or -1 with err. */
int sess_start_tls(struct session *s, char *err, size_t errsize);

/* --- mailbox names ------------------------------------------------------------- */
/* Decodes a mailbox argument (modified UTF-7) into UTF-8; INBOX in any case
 * becomes "INBOX". Returns 0 or -1 (answers BAD/NO itself). */
int sess_mailbox_arg(struct session *s, const struct imap_arg *arg, char *name_r, size_t size);
/* Writes a UTF-8 store name as a quoted modified UTF-7 mailbox. */
void sess_write_mailbox(struct session *s, const char *name);

/* --- the selected mailbox -------------------------------------------------------- */
/* Tells the client what changed since it last heard (EXISTS, FETCH FLAGS, and
 * if allow_expunge EXPUNGE/VANISHED). */
void sess_sync(struct session *s, int allow_expunge);
/* Drops the selected mailbox. */
void sess_unselect(struct session *s);
/* Parses a sequence set of message numbers (uid 0) or UIDs (uid 1), "$"
 * (SEARCHRES's saved result) included. 0 or -1. */
int sess_seqset(struct session *s, const char *text, int uid, struct imap_seqset *set_r);
/* Resolves a sequence set (seqs or UIDs, or "$") to ascending sequence numbers
 * (arena-allocated). Returns 0 or -1 (bad syntax). */
int sess_resolve(struct session *s, const char *set, int uid, uint32_t **seqs_r, size_t *n_r);
/* Sequence number of uid, or 0. */
uint32_t sess_seq_of(const struct session *s, uint32_t uid);
/* The store's flags with \Recent as this session sees it (RFC 3501: the
 * session that selected a message first holds its \Recent). */
uint32_t sess_flags(const struct session *s, uint32_t uid, uint32_t flags);
/* Before a FETCH response shows keywords: any of them the client has not
 * been told of in FLAGS is added to the view's list, and a new "* FLAGS" and
 * "* OK [PERMANENTFLAGS]" go out first (RFC 3501 7.2.6). */
void sess_keywords_seen(struct session *s, const char *keywords);
/* Writes the FLAGS and PERMANENTFLAGS responses with the view's keywords. */
void sess_write_flag_lists(struct session *s);
/* Adds the keywords of a message to a space-separated set (bounded). Returns
 * 1 if something was added. */
int keywords_merge(struct buf *set, const char *keywords);
/* CONDSTORE turned on by a command (RFC 7162 3.1): says HIGHESTMODSEQ if a
 * mailbox is selected and it was off. */
void sess_condstore_on(struct session *s);
/* Writes "(\Seen \Answered kw ...)". */
void sess_write_flags(struct session *s, uint32_t flags, const char *keywords);
/* Parses a flag list (or a single flag) into system flags and keywords
 * (space-separated, arena). Returns 0 or -1. */
int sess_parse_flags(struct session *s, const struct imap_arg *arg, uint32_t *flags_r,
		     const char **keywords_r);
/* Formats a UID set "1:3,5" from ascending uids into the arena. */
const char *sess_uidset(struct session *s, const uint32_t *uids, size_t n);

/* CONTEXT=SEARCH (cmd_search.c): the expunged UIDs (ascending) leave the
 * kept results, with REMOVEFROM by their sequence numbers before the view
 * forgets them; after a sync, the kept searches run again and ADDTO /
 * REMOVEFROM tell what changed; dropping ends them all. */
void search_updates_expunged(struct session *s, const uint32_t *uids, size_t n);
void search_updates_run(struct session *s);
void search_updates_drop(struct session *s);

/* Adds uid at the end of the view. */
void view_push(struct view *v, uint32_t uid);
/* Length of the command being run (its bytes start s->in.data). */
size_t sess_current_cmdlen(void);
/* Reads one more line from the client after the current command's cmdlen
 * bytes (AUTHENTICATE, IDLE), copied into the arena without CRLF. Literal
 * arguments of the command are invalid afterwards. Returns 0 or -1. */
int sess_read_line(struct session *s, size_t cmdlen, char **line_r);

/* The password check other listeners of imapd share with LOGIN (directory,
 * worker threads, the shared penalty of imapd/limits.c; cmd_auth.c): DIR_OK
 * with the store's user, DIR_BADPASS, DIR_TEMPFAIL (also: refused by the
 * penalty without a check). io is flushed while the attempt waits its turn. */
enum dir_result imapd_authenticate(struct imapd *d, const char *id, const char *ip, const char *proto,
				   struct io *io, const char *login, const char *password,
				   struct store_user *su_r);

/* --- commands (cmd_*.c) ------------------------------------------------------------ */
typedef void cmd_fn(struct session *s, struct imap_command *cmd);
cmd_fn cmd_capability, cmd_noop, cmd_logout, cmd_starttls, cmd_login, cmd_authenticate, cmd_id,
    cmd_enable, cmd_compress, cmd_namespace;
cmd_fn cmd_create, cmd_delete, cmd_rename, cmd_subscribe, cmd_unsubscribe, cmd_list, cmd_lsub,
    cmd_status;
cmd_fn cmd_select, cmd_examine, cmd_unselect, cmd_close, cmd_check, cmd_expunge;
cmd_fn cmd_fetch, cmd_store, cmd_search, cmd_append, cmd_copy, cmd_move, cmd_idle;
cmd_fn cmd_sort, cmd_thread, cmd_cancelupdate, cmd_notify;
cmd_fn cmd_getquota, cmd_getquotaroot, cmd_setquota; /* cmd_quota.c: QUOTA (RFC 9208) */
/* STATUS DELETED-STORAGE (RFC 9208): KiB of the \Deleted messages. */
uint64_t sess_deleted_storage(struct session *s, const struct store_mailbox *mb);
/* NOTIFY (cmd_notify.c): tells what changed since the last look (the
 * selected mailbox too when between_commands); ends it. */
void sess_notify_check(struct session *s, int between_commands);
void sess_notify_drop(struct session *s);

/* NOTIFY's MessageNew fetch attributes (cmd_fetch.c): 0 if atts (a list
 * or one item) is a valid FETCH request, -1 if not; the untagged FETCH of
 * those attributes for new messages (uids ascending, in the view). */
int fetch_atts_check(struct session *s, const struct imap_arg *atts);
void fetch_new_messages(struct session *s, const struct imap_arg *atts, const uint32_t *uids,
			size_t n);

/* Capability string for the session's state (no leading "CAPABILITY"). */
void sess_capabilities(struct session *s, struct buf *out);

#endif
