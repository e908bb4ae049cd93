/* import_dovecot — a Dovecot mdbox or sdbox store, copied to a temporary
 * Maildir++ tree by Dovecot's doveadm (see import_dovecot.c). */
#ifndef MK_TOOLS_IMPORT_DOVECOT_H
#define MK_TOOLS_IMPORT_DOVECOT_H

#include <stddef.h>

/* 1 if dir is an mdbox or sdbox directory (it has mailboxes/). */
int import_is_dovecot(const char *dir);
/* Runs `doveadm backup` of src into a Maildir++ tree under a new temporary
 * directory: tree_r gets the tree, tmp_r the directory to give to
 * import_dovecot_cleanup afterwards ("" if none was made). Returns 0, or -1
 * after saying why. */
int import_dovecot_export(const char *src, char *tree_r, size_t treesize, char *tmp_r,
			  size_t tmpsize);
/* Removes the temporary copy. */
void import_dovecot_cleanup(const char *tmp);

#endif
