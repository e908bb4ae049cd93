#!/bin/sh
# Benchmark: messages per second accepted durably into a mailbox, 6 KB
# messages, 1, 8 and 32 concurrent smtp-source sessions, side by side with
#   (a) Debian's Postfix delivering over LMTP into Debian's Dovecot,
#   (b) Dovecot's own LMTP server,
#   (c) smtp-source -> smtp-sink (no storage: the ceiling).
# Everything is started here on free ports with its own directories, and
# stopped by pid. Prints figures and ratios (median of BENCH_ROUNDS rounds,
# peers interleaved). Needs root (Postfix and Dovecot), build/bin/mailkeep-smtpin.
#   BENCH_ROUNDS=3 BENCH_MESSAGES=1000 tests/bench/smtpin/run.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 "$here/bench.py" "$@"
