/* cmd_quota — QUOTA (RFC 9208): GETQUOTA, GETQUOTAROOT, SETQUOTA (refused:
 * limits are the administrator's, `mailkeep user quota`), and STATUS
 * DELETED-STORAGE. One quota root per user, named "", holding every mailbox
 * of the user; its resources are STORAGE (in units of 1024 octets, rounded
 * up) and MESSAGE, shown when the user has a limit of that kind. The
 * numbers are index/quota.h's, the same `mailkeep user show` prints. */
#include <stdio.h>
#include <string.h>

#include "imapd/session.h"
#include "index/quota.h"

/* Writes "* QUOTA "" (STORAGE u l MESSAGE u l)"; 1 if the user has a limit. */
static int write_quota(struct session *s, int write)
{
	struct store_txn *txn = NULL;
	struct quota_limits lim;
	struct quota_usage use;
	int rc = store_read_begin(s->d->store, &txn);
	if (rc == 0 && (rc = quota_limits(txn, s->user_id, &lim)) == 0)
		rc = quota_usage(txn, s->user_id, &use);
	store_read_end(&txn);
	if (rc != 0 || (lim.storage == 0 && lim.messages == 0))
		return 0;
	if (!write)
		return 1;
	io_puts(&s->io, "* QUOTA \"\" (");
	if (lim.storage)
		io_printf(&s->io, "STORAGE %llu %llu",
			  (unsigned long long)((use.bytes + 1023) / 1024),
			  (unsigned long long)(lim.storage / 1024));
	if (lim.messages)
		io_printf(&s->io, "%sMESSAGE %llu %llu", lim.storage ? " " : "",
			  (unsigned long long)use.messages, (unsigned long long)lim.messages);
	io_puts(&s->io, ")\r\n");
	return 1;
}

void cmd_getquota(struct session *s, struct imap_command *cmd)
{
	const char *root = cmd->nargs == 1 ? imap_arg_astring(s->arena, &cmd->args[0]) : NULL;
	if (root == NULL) {
		sess_tagged(s, "BAD", "GETQUOTA needs a quota root");
		return;
	}
	if (root[0] != '\0' || !write_quota(s, 1)) {
		sess_tagged(s, "NO", "[NONEXISTENT] No such quota root");
		return;
	}
	sess_tagged(s, "OK", "Getquota completed");
}

void cmd_getquotaroot(struct session *s, struct imap_command *cmd)
{
	char name[STORE_NAME_MAX + 1];
	struct store_txn *txn = NULL;
	struct store_mailbox mb;
	if (cmd->nargs != 1) {
		sess_tagged(s, "BAD", "GETQUOTAROOT needs a mailbox");
		return;
	}
	if (sess_mailbox_arg(s, &cmd->args[0], name, sizeof(name)) < 0)
		return;
	int rc = store_read_begin(s->d->store, &txn);
	if (rc == 0)
		rc = store_mailbox_get(txn, s->user_id, name, &mb);
	store_read_end(&txn);
	if (rc != 0) {
		sess_store_error(s, rc, "Getquotaroot");
		return;
	}
	io_puts(&s->io, "* QUOTAROOT ");
	sess_write_mailbox(s, name);
	io_puts(&s->io, write_quota(s, 0) ? " \"\"\r\n" : "\r\n");
	write_quota(s, 1);
	sess_tagged(s, "OK", "Getquotaroot completed");
}

void cmd_setquota(struct session *s, struct imap_command *cmd)
{
	(void)cmd;
	sess_tagged(s, "NO",
		    "[NOPERM] Quota limits are set by the administrator (mailkeep user quota)");
}

uint64_t sess_deleted_storage(struct session *s, const struct store_mailbox *mb)
{
	struct store_txn *txn = NULL;
	struct store_cursor *cur = NULL;
	struct store_msg m;
	uint64_t bytes = 0;
	if (store_read_begin(s->d->store, &txn) == 0 &&
	    store_msg_cursor_open(txn, mb->id, 1, &cur) == 0) {
		while (store_msg_cursor_next(cur, &m) == 0)
			if (m.flags & STORE_F_DELETED)
				bytes += m.size;
		store_msg_cursor_close(&cur);
	}
	store_read_end(&txn);
	return (bytes + 1023) / 1024;
}
