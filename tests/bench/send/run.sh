#!/bin/sh
# Outbound benchmark (issue 15): mailkeep (submission -> store -> smtpout)
# against Postfix (submission -> queue -> smtp), both relaying to one
# smtp-sink, 6 KB messages, 1/8/32 submission sessions with STARTTLS and AUTH,
# interleaved repetitions, queues on a fresh loop ext4. Then the crash test at
# 5,000 messages (kill -9 of smtpout and smtpin at random during the send:
# lost and duplicated messages counted). Needs root. See doc/sending.md.
#   tests/bench/send/run.sh [bench.py options]
# Environment: SEND_BENCH_REPS (3), SEND_BENCH_MESSAGES ("300,1000,1500"),
# SEND_BENCH_SYSTEMS ("postfix,mailkeep"), SEND_BENCH_BUDGET (300 s),
# SEND_BENCH_CRASH_N (5000; 0 skips it), BENCH_KEEP=1 (keep the directory).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
export MAILKEEP_BUILD="${MAILKEEP_BUILD:-$top/build}"
[ "$(id -u)" = 0 ] || { echo "send bench: needs root (loop mount, Postfix, Dovecot)"; exit 1; }
for t in /usr/sbin/smtp-sink /usr/sbin/postfix /usr/sbin/dovecot mkfs.ext4; do
	command -v "$t" >/dev/null || { echo "send bench: $t missing (tools/install-deps.sh)"; exit 1; }
done
work=$(mktemp -d /tmp/mk-sendbench-XXXXXX)
chmod 755 "$work"
cleanup() {
	if mountpoint -q "$work/mnt" 2>/dev/null; then umount "$work/mnt" || umount -l "$work/mnt"; fi
	if [ "${BENCH_KEEP:-}" = 1 ]; then echo "send bench: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM
rc=0
timeout -k 20 540 /usr/bin/python3 "$here/bench.py" "$work" "$@" || rc=1
n=${SEND_BENCH_CRASH_N:-5000}
if [ "$n" != 0 ]; then
	echo
	echo "kill -9 during a send of $n messages (tests/integration/send/test_crash.py):"
	MK_SEND_CRASH_N=$n timeout -k 20 600 /usr/bin/python3 -m pytest -q -s -p no:cacheprovider \
		--basetemp="$work/crash" "$top/tests/integration/send/test_crash.py" 2>&1 |
		grep -E "crash test:|passed|failed" || rc=1
fi
exit $rc
