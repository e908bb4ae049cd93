#!/bin/sh
# IMAP benchmark (issue 5): mailkeep-imapd against Dovecot's imapd over the same
# corpus messages, mixes of SELECT/FETCH/STORE/SEARCH/APPEND/IDLE and a phone's
# QRESYNC resync, N concurrent clients; ops/s and latency percentiles as ratios.
# Needs root (loop mount, Dovecot). See doc/bench.md.
#   tests/bench/imap/run.sh [bench.py options]
# Environment: CORPUS (/work/shared/corpus/spamassassin), IMAP_BENCH_REPS (3),
# IMAP_BENCH_DURATION (2 s per run), IMAP_BENCH_CLIENTS (8), IMAP_BENCH_MIXES
# (select,fetch,store,search,append,idle,resync,mixed), IMAP_BENCH_BUDGET
# (180 s: no new run starts after it), BENCH_KEEP=1 (keep the temporary
# directory and logs). About 3 minutes with the defaults.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
export MAILKEEP_BUILD="${MAILKEEP_BUILD:-$top/build}"
corpus=${CORPUS:-/work/shared/corpus/spamassassin}
[ "$(id -u)" = 0 ] || { echo "imap bench: needs root (loop mount, Dovecot)"; exit 1; }
for t in /usr/sbin/dovecot /usr/lib/dovecot/imap mkfs.ext4; do
	command -v "$t" >/dev/null || { echo "imap bench: $t missing (tools/install-deps.sh)"; exit 1; }
done
[ -d "$corpus" ] || { echo "imap bench: no corpus at $corpus"; exit 1; }
work=$(mktemp -d /tmp/mk-imapbench-XXXXXX)
chmod 755 "$work" # Dovecot drops privileges and must reach its dirs
cleanup() {
	if mountpoint -q "$work/mnt" 2>/dev/null; then umount "$work/mnt" || umount -l "$work/mnt"; fi
	if [ "${BENCH_KEEP:-}" = 1 ]; then echo "imap bench: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM
timeout -k 20 300 /usr/bin/python3 "$here/bench.py" "$work" "$corpus" "$@"
