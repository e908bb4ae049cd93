#!/bin/sh
# Moving-in benchmark (issue 20): `mailkeep import USER imaps://...` against
# mbsync (isync) copying the same folders of the same Dovecot into a Maildir,
# over IMAPS on 127.0.0.1, interleaved repetitions; messages/s and the ratio.
# imapsync is not in Debian 12 (removed from the archive): reported as absent.
# Needs root (Dovecot runs its mail processes as nobody). See doc/tools.md.
#   tests/bench/movein/run.sh [bench.py options]
# Environment: MOVEIN_BENCH_MESSAGES (5000), MOVEIN_BENCH_REPS (3),
# BENCH_KEEP=1 (keep the temporary directory).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
export MAILKEEP_BUILD="${MAILKEEP_BUILD:-$top/build}"
[ "$(id -u)" = 0 ] || { echo "movein bench: needs root (Dovecot)"; exit 1; }
for t in /usr/sbin/dovecot /usr/bin/mbsync; do
	command -v "$t" >/dev/null || { echo "movein bench: $t missing (tools/install-deps.sh)"; exit 1; }
done
work=$(mktemp -d /tmp/mk-moveinbench-XXXXXX)
cleanup() {
	if [ "${BENCH_KEEP:-}" = 1 ]; then echo "movein bench: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM
timeout -k 20 600 /usr/bin/python3 "$here/bench.py" "$work" "$@"
