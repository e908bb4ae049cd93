#!/bin/sh
# Under-attack benchmark (issue 13): 8 legitimate clients deliver over SMTP
# and read over IMAP while 2,000 hostile connections come from 40 addresses,
# then from one IPv6 /64; their success rate and p99 latency against the same
# without the attack. Runs in a network namespace of its own (unshare -n:
# needs root) so that a /64 can be routed to lo. See doc/bench.md.
#   tests/bench/abuse/run.sh
# Environment: ABUSE_BENCH_REPS (3), ABUSE_BENCH_SECONDS (20 per phase),
# ABUSE_BENCH_HOSTILE (2000), BENCH_KEEP=1 (keep the directory with the logs).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
export MAILKEEP_BUILD="${MAILKEEP_BUILD:-$top/build}"
[ "$(id -u)" = 0 ] || { echo "abuse bench: needs root (a network namespace)"; exit 1; }
command -v unshare >/dev/null && command -v ip >/dev/null ||
	{ echo "abuse bench: unshare and ip are needed (util-linux, iproute2)"; exit 1; }
exec unshare -n /usr/bin/python3 "$here/bench.py" "$@"
