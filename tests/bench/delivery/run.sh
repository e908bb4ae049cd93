#!/bin/sh
# Delivery benchmark (issue 3): mailkeep-smtpin over SMTP and LMTP against
# Postfix -> LMTP -> Dovecot, Dovecot's LMTP alone and smtp-source -> smtp-sink,
# 6 KB messages, 1/8/32 sessions, interleaved repetitions, stores on a fresh
# loop ext4 file system. Needs root (mount, the peers' users). See doc/bench.md.
#   tests/bench/delivery/run.sh [bench.py options]
# Environment: DELIVERY_BENCH_REPS (5), DELIVERY_BENCH_MESSAGES ("300,1000,1500":
# messages per run for 1, 8, 32 sessions), DELIVERY_BENCH_SYSTEMS (comma list),
# DELIVERY_BENCH_BUDGET (300: seconds after which no new run starts),
# BENCH_KEEP=1 (keep the temporary directory with the logs).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
export MAILKEEP_BUILD="${MAILKEEP_BUILD:-$top/build}"
[ "$(id -u)" = 0 ] || { echo "delivery bench: needs root (loop mount, Postfix, Dovecot)"; exit 1; }
for t in /usr/sbin/smtp-source /usr/sbin/smtp-sink /usr/sbin/postfix /usr/sbin/dovecot \
	/usr/lib/dovecot/lmtp mkfs.ext4; do
	command -v "$t" >/dev/null || { echo "delivery bench: $t missing (tools/install-deps.sh)"; exit 1; }
done
work=$(mktemp -d /tmp/mk-delivbench-XXXXXX)
chmod 755 "$work" # Postfix and Dovecot drop privileges and must reach their dirs
cleanup() {
	if mountpoint -q "$work/mnt" 2>/dev/null; then umount "$work/mnt" || umount -l "$work/mnt"; fi
	if [ "${BENCH_KEEP:-}" = 1 ]; then echo "delivery bench: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM
timeout -k 20 540 /usr/bin/python3 "$here/bench.py" "$work" "$@"
