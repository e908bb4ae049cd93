#!/bin/sh
# imaptest benchmark (issue 12): Dovecot's imaptest drives mailkeep-imapd and
# Dovecot's imapd in the same run, 10 clients, profiles default (imaptest's
# own mix), append, fetch and login; commands/s per command as ratios and both
# servers' protocol error counts. Needs root (loop mount, Dovecot) and builds
# imaptest into build/imaptest if it is not there (about 20 s). See doc/bench.md.
#   tests/bench/imaptest/run.sh [bench.py options]
# Environment: CORPUS (/work/shared/corpus/spamassassin), IMAPTEST_BENCH_REPS (3),
# IMAPTEST_BENCH_SECS (10 s per run), IMAPTEST_BENCH_CLIENTS (10),
# IMAPTEST_BENCH_MESSAGES (1000 in INBOX), IMAPTEST_BENCH_PROFILES
# (default,append,fetch,login), BENCH_KEEP=1 (keep the temporary directory and
# logs). About 5 minutes with the defaults.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
export MAILKEEP_BUILD="${MAILKEEP_BUILD:-$top/build}"
corpus=${CORPUS:-/work/shared/corpus/spamassassin}
src=$top/../shared/imaptest
[ -f "$src/build.sh" ] || src=/work/shared/imaptest
[ "$(id -u)" = 0 ] || { echo "imaptest bench: needs root (loop mount, Dovecot)"; exit 1; }
for t in /usr/sbin/dovecot /usr/lib/dovecot/imap mkfs.ext4; do
	command -v "$t" >/dev/null || { echo "imaptest bench: $t missing (tools/install-deps.sh)"; exit 1; }
done
[ -d "$corpus" ] || { echo "imaptest bench: no corpus at $corpus"; exit 1; }
sh "$src/build.sh" "$MAILKEEP_BUILD/imaptest" >/dev/null
work=$(mktemp -d /tmp/mk-imaptestbench-XXXXXX)
chmod 755 "$work" # Dovecot drops privileges and must reach its dirs
cleanup() {
	if mountpoint -q "$work/mnt" 2>/dev/null; then umount "$work/mnt" || umount -l "$work/mnt"; fi
	if [ "${BENCH_KEEP:-}" = 1 ]; then echo "imaptest bench: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM
timeout -k 20 900 /usr/bin/python3 "$here/bench.py" "$work" "$corpus" "$@"
