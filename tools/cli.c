/* cli — helpers shared by the mailkeep commands (see cli.h). */
#include <errno.h>
#include <stdarg.h>
#include <sys/statvfs.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "index/params.h"
#include "lib/util.h"
#include "tools/cli.h"

/* a progress line is on the terminal: messages first clear it */
static int progress_shown;

static void clear_progress(void)
{
	if (progress_shown) {
		fputs("\r\033[K", stderr);
		progress_shown = 0;
	}
}

void cli_error(const char *fmt, ...)
{
	va_list ap;

	clear_progress();
	fputs("mailkeep: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void cli_warn(const char *fmt, ...)
{
	va_list ap;

	clear_progress();
	fputs("mailkeep: warning: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_usage(const struct command *cmd)
{
	fprintf(stderr, "usage: mailkeep %s %s\n(mailkeep %s --help tells more)\n", cmd->name,
		cmd->args, cmd->name);
	return EXIT_USAGE;
}

struct config *cli_config(struct cli *cli)
{
	char err[512];

	if (cli->cfg != NULL)
		return cli->cfg;
	if (access(cli->conf_path, R_OK) != 0) {
		cli_error("cannot read the configuration %s: %s%s", cli->conf_path, strerror(errno),
			  cli->conf_given ? ""
					  : " (give one with -c CONF or $MAILKEEP_CONF, or make an "
					    "instance with `mailkeep init DIR`)");
		return NULL;
	}
	cli->cfg = params_load(cli->conf_path, err, sizeof(err));
	if (cli->cfg == NULL) {
		cli_error("%s", err);
		return NULL;
	}
	common_params_bind(cli->cfg, &cli->common);
	return cli->cfg;
}

const char *cli_store_hint(int err)
{
	switch (err) {
	case STORE_EFULL:
		return "the store is full (store_map_max reached, or no room left on the disk): "
		       "raise store_map_max or free disk space, then run the command again";
	case STORE_ECORRUPT:
		return "the store holds a record it cannot decode: run `mailkeep fsck`";
	case STORE_EIO:
		return "an I/O error from the store (see the system log); nothing of this write "
		       "was kept";
	default:
		return store_strerror(err);
	}
}

void cli_disk_hint(const char *dir, int err)
{
	struct statvfs vfs;
	char hb[32];

	if ((err != STORE_EIO && err != STORE_EFULL) || statvfs(dir, &vfs) != 0)
		return;
	uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	if (avail < ((uint64_t)64 << 20) || avail < (uint64_t)vfs.f_blocks * vfs.f_frsize / 100)
		cli_error("the file system holding %s is full (%s left): free some space, then run "
			  "the command again",
			  dir, cli_human_bytes(avail, hb, sizeof(hb)));
}

struct store *cli_store(struct cli *cli, int read_only)
{
	struct store_options opt = {0};
	const char *dir;
	char err[512];

	if (cli->store != NULL && (read_only || !cli->store_ro))
		return cli->store;
	if (cli->store != NULL)
		store_close(&cli->store); /* read-only so far; now it must write */
	if (cli_config(cli) == NULL)
		return NULL;
	dir = cli->common.store_directory;
	if (dir == NULL || dir[0] == '\0') {
		cli_error("%s: store_directory is not usable (see mailkeep check)", cli->conf_path);
		return NULL;
	}
	opt.map_size = cli->common.store_map_size;
	opt.map_max = cli->common.store_map_max;
	opt.read_only = read_only;
	if (!read_only && mk_mkdirs(dir, 0700) < 0) {
		cli_error("cannot create the store directory %s: %s", dir, strerror(errno));
		return NULL;
	}
	if (store_open(dir, &opt, &cli->store, err, sizeof(err)) != 0) {
		cli_error("cannot open the store %s: %s", dir, err);
		cli->store = NULL;
		return NULL;
	}
	cli->store_ro = read_only;
	return cli->store;
}

int cli_directory_embedded(struct cli *cli)
{
	const char *d = cli->cfg != NULL ? cli->common.user_directory : NULL;
	return d == NULL || strcmp(d, "embedded") == 0;
}

void cli_close(struct cli *cli)
{
	if (cli->store != NULL)
		store_close(&cli->store);
	if (cli->cfg != NULL) {
		common_params_unbind(&cli->common);
		config_free(&cli->cfg);
	}
}

static int read_line(FILE *f, char *out, size_t outsize)
{
	size_t n;

	if (fgets(out, (int)outsize, f) == NULL)
		return -1;
	n = strlen(out);
	if (n > 0 && out[n - 1] != '\n' && !feof(f))
		return -2; /* too long */
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = '\0';
	return 0;
}

static int read_tty(const char *prompt, char *out, size_t outsize)
{
	struct termios old, quiet;
	FILE *tty = fopen("/dev/tty", "r+");
	int rc;

	if (tty == NULL)
		return -1;
	fputs(prompt, tty);
	fflush(tty);
	tcgetattr(fileno(tty), &old);
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
	rc = read_line(tty, out, outsize);
	tcsetattr(fileno(tty), TCSAFLUSH, &old);
	fputc('\n', tty);
	fclose(tty);
	return rc;
}

int cli_read_password(const char *file, int confirm, char *out, size_t outsize)
{
	int rc;

	if (file != NULL) {
		FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
		if (f == NULL) {
			cli_error("cannot read the password file %s: %s", file, strerror(errno));
			return -1;
		}
		rc = read_line(f, out, outsize);
		if (f != stdin)
			fclose(f);
		if (rc == -2) {
			cli_error("the password in %s is too long (at most %zu bytes)", file,
				  outsize - 2);
			return -1;
		}
		if (rc < 0 || out[0] == '\0') {
			cli_error("%s holds no password (the first line is the password)", file);
			return -1;
		}
		return 0;
	}
	if (isatty(STDIN_FILENO)) {
		char again[256];
		if (read_tty("Password: ", out, outsize) < 0 || out[0] == '\0') {
			cli_error("no password given");
			return -1;
		}
		if (confirm) {
			if (read_tty("Again: ", again, sizeof(again)) < 0 ||
			    strcmp(again, out) != 0) {
				explicit_bzero(again, sizeof(again));
				cli_error("the two passwords differ");
				return -1;
			}
			explicit_bzero(again, sizeof(again));
		}
		return 0;
	}
	rc = read_line(stdin, out, outsize);
	if (rc < 0 || out[0] == '\0') {
		cli_error("no password on standard input (give --password-file FILE, or run on a "
			  "terminal)");
		return -1;
	}
	return 0;
}

int cli_confirm(const char *question)
{
	char answer[16];
	FILE *tty = fopen("/dev/tty", "r+");
	int yes = 0;

	if (tty == NULL)
		return 0;
	fprintf(tty, "%s [y/N] ", question);
	fflush(tty);
	if (read_line(tty, answer, sizeof(answer)) == 0)
		yes = answer[0] == 'y' || answer[0] == 'Y';
	fclose(tty);
	return yes;
}

const char *cli_human_bytes(uint64_t bytes, char *buf, size_t size)
{
	static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)bytes;
	size_t u = 0;

	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, size, "%.1f %s", v, units[u]);
	return buf;
}

void progress_init(struct progress *p, const char *what)
{
	p->tty = isatty(STDERR_FILENO);
	p->start = mk_monotonic();
	p->last = 0;
	p->what = what;
}

void progress_update(struct progress *p, uint64_t done, uint64_t total, uint64_t count,
		     uint64_t bytes)
{
	double now = mk_monotonic(), t;
	char hb[32];

	if (!p->tty || now - p->last < 0.1)
		return;
	p->last = now;
	t = now - p->start > 0.001 ? now - p->start : 0.001;
	if (total > 0) {
		int width = 30, fill = (int)((double)done / (double)total * width);
		char bar[31];
		if (fill > width)
			fill = width;
		memset(bar, '#', (size_t)fill);
		memset(bar + fill, '.', (size_t)(width - fill));
		bar[width] = '\0';
		char eta[32] = "";
		if (done > 0 && done < total && t > 2) {
			double left = t * (double)(total - done) / (double)done;
			snprintf(eta, sizeof(eta), ", ETA %dm%02ds", (int)(left / 60),
				 (int)left % 60);
		}
		fprintf(stderr, "\r%s [%s] %3d%% %llu messages, %s, %.0f msg/s%s ", p->what, bar,
			(int)((double)done * 100 / (double)total), (unsigned long long)count,
			cli_human_bytes(bytes, hb, sizeof(hb)), (double)count / t, eta);
	} else {
		fprintf(stderr, "\r%s %llu messages, %s, %.0f msg/s ", p->what,
			(unsigned long long)count, cli_human_bytes(bytes, hb, sizeof(hb)),
			(double)count / t);
	}
	fflush(stderr);
	progress_shown = 1;
}

void progress_end(struct progress *p)
{
	(void)p;
	clear_progress();
}

const struct subcommand *cli_subcommand_find(const struct subcommand *table, const char *name)
{
	for (const struct subcommand *s = table; s->name != NULL; s++)
		if (strcmp(s->name, name) == 0)
			return s;
	return NULL;
}

void cli_subcommand_names(const struct subcommand *table, char *out, size_t size)
{
	size_t off = 0;

	out[0] = '\0';
	for (const struct subcommand *s = table; s->name != NULL && off < size; s++) {
		int n = snprintf(out + off, size - off, "%s%s", s == table ? "" : ", ", s->name);
		off += n > 0 ? (size_t)n : 0;
	}
}
