/* cli — what every `mailkeep` command shares: the command table entry, the
 * global options, opening the config and the store, reading passwords,
 * progress lines and messages.
 *
 * Adding a command: write tools/cmd_<name>.c defining
 *     const struct command cmd_<name> = {"name", "ARGS", "one line", help, run};
 * declare it below and list it in tools/main.c's table. run() gets argv with
 * argv[0] = the command name and returns the exit status (0 ok, 1 failure,
 * 2 usage). `--help` is answered by main.c before run() is called.
 */
#ifndef MK_TOOLS_CLI_H
#define MK_TOOLS_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "index/params.h"
#include "index/store.h"
#include "lib/config.h"

#define EXIT_USAGE 2

#define MAILKEEP_DEFAULT_CONF "/etc/mailkeep/mailkeep.conf"

struct cli {
	const char *conf_path; /* -c, $MAILKEEP_CONF, or the default */
	int conf_given;	       /* -c or $MAILKEEP_CONF was used */
	int verbose;
	struct config *cfg;	     /* loaded by cli_config */
	struct common_params common; /* cfg's shared settings, typed (bound by cli_config) */
	struct store *store;	     /* opened by cli_store */
	int store_ro;		     /* ... read-only */
	char exe_dir[4096];	     /* the directory of the mailkeep binary */
};

struct command {
	const char *name;
	const char *args;    /* synopsis after the name: "USER SOURCE [options]" */
	const char *summary; /* one line for `mailkeep --help` */
	const char *help;    /* the rest of `mailkeep NAME --help` */
	int (*run)(struct cli *cli, int argc, char **argv);
};

/* A command's sub-commands (`mailkeep user add`), found by name in a table
 * that ends with a NULL name (OpenSMTPD's and Dovecot's command tables).
 * flags are the command's to read (SUB_*); run gets the command's context
 * (its parsed options) and returns the exit status. */
struct subcommand {
	const char *name;
	int flags;
	int (*run)(void *ctx);
};
#define SUB_NAME 1	/* takes a NAME argument */
#define SUB_READ_ONLY 2 /* only reads: the store is opened read-only */

/* The entry of table named name, or NULL. */
const struct subcommand *cli_subcommand_find(const struct subcommand *table, const char *name);
/* "add, del, list": the names of table, for messages. */
void cli_subcommand_names(const struct subcommand *table, char *out, size_t size);

extern const struct command cmd_init, cmd_check, cmd_user, cmd_alias, cmd_import, cmd_export,
    cmd_fsck, cmd_backup, cmd_stats, cmd_smtpin, cmd_imapd, cmd_mount, cmd_run, cmd_spam,
    cmd_status, cmd_phone, cmd_report, cmd_sieve, cmd_compact, cmd_search, cmd_reindex, cmd_queue,
    cmd_smtpout, cmd_sendmail, cmd_dkim;

/* The path of a service binary ("mailkeep-smtpin") into out: next to the
 * mailkeep binary (the build), else in ../lib/mailkeep (PREFIX/lib/mailkeep
 * after make install). Returns 0, or -1 if it is not installed. */
int cli_find_service(const struct cli *cli, const char *bin, char *out, size_t size);

/* Messages to stderr, prefixed "mailkeep: " (warnings: "mailkeep: warning: "). */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "usage: mailkeep NAME ARGS" and a pointer to --help; returns EXIT_USAGE. */
int cli_usage(const struct command *cmd);

/* The configuration, loaded on first call (a missing file is an error that
 * says how to make one). Returns NULL after printing the error. */
struct config *cli_config(struct cli *cli);
/* The store named by the configuration, opened on first call. read_only:
 * for commands that only read (stats, fsck, export, backup, list, show): no
 * right to write is needed, nothing is created, and a missing store is an
 * error. Returns NULL after printing the error. */
struct store *cli_store(struct cli *cli, int read_only);
/* The store in dir (a backup, `mailkeep fsck DIR`), read-only, without any
 * configuration. Returns NULL after printing the error (a directory that
 * holds no store is said to be one). */
struct store *cli_store_at(struct cli *cli, const char *dir);
/* one if n == 1, else many: "1 message", "2 messages" */
const char *cli_plural(uint64_t n, const char *one, const char *many);
/* 1 if users are managed in the store (user_directory = embedded). */
int cli_directory_embedded(struct cli *cli);
void cli_close(struct cli *cli);

/* Reads a password: from file (a path, or "-" for standard input: the first
 * line), else from the terminal (twice if confirm, echo off), else the first
 * line of standard input. Returns 0, or -1 after printing why. */
int cli_read_password(const char *file, int confirm, char *out, size_t outsize);
/* Asks a yes/no question on the terminal; 0 if there is none. */
int cli_confirm(const char *question);

/* "12.3 MiB" */
const char *cli_human_bytes(uint64_t bytes, char *buf, size_t size);

/* A one-line progress display on stderr, shown only if stderr is a terminal,
 * redrawn at most ten times a second. */
struct progress {
	int tty;
	double start, last;
	const char *what;
};
void progress_init(struct progress *p, const char *what);
/* done/total in units (total 0 = unknown); count and bytes for the rate. */
void progress_update(struct progress *p, uint64_t done, uint64_t total, uint64_t count,
		     uint64_t bytes);
void progress_end(struct progress *p);

/* A store_strerror sentence plus what to do about it, for CLI messages. */
const char *cli_store_hint(int err);
/* After a failed write: if the file system holding dir is (nearly) full, says
 * so (LMDB reports a short write on a full disk as an I/O error). */
void cli_disk_hint(const char *dir, int err);

#endif
