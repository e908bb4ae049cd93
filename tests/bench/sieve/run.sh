#!/bin/sh
# Sieve benchmark (issue 18): LMTP delivery with a dozen-rule Sieve script
# against the same without a script, mailkeep-smtpin against Dovecot's LMTP
# with Pigeonhole, 6 KB messages, interleaved repetitions, stores on a fresh
# loop ext4. Needs root (mount, Dovecot's users) and dovecot-sieve. See doc/bench.md.
#   tests/bench/sieve/run.sh [bench.py options]
# Environment: SIEVE_BENCH_REPS (5), SIEVE_BENCH_BUDGET (240 s), BENCH_KEEP=1.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
export MAILKEEP_BUILD="${MAILKEEP_BUILD:-$top/build}"
[ "$(id -u)" = 0 ] || { echo "sieve bench: needs root (loop mount, Dovecot)"; exit 1; }
for t in /usr/sbin/smtp-source /usr/sbin/dovecot /usr/lib/dovecot/lmtp /usr/lib/dovecot/modules/lib90_sieve_plugin.so mkfs.ext4; do
	[ -e "$t" ] || command -v "$t" >/dev/null || { echo "sieve bench: $t missing (tools/install-deps.sh)"; exit 1; }
done
work=$(mktemp -d /tmp/mk-sievebench-XXXXXX)
chmod 755 "$work"
cleanup() {
	if mountpoint -q "$work/mnt" 2>/dev/null; then umount "$work/mnt" || umount -l "$work/mnt"; fi
	if [ "${BENCH_KEEP:-}" = 1 ]; then echo "sieve bench: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM
timeout -k 20 420 /usr/bin/python3 "$here/bench.py" "$work" "$@"
