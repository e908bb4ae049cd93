#!/bin/sh
# Spam benchmark: mailkeep's filter against bogofilter and SpamAssassin's Bayes,
# 5-fold cross-validation on the same folds (see bench.py for the method).
#   tests/bench/spam/run.sh [CORPUS]
# Environment: SPAM_BENCH_LIMIT=N (first N files per class, for a quick run),
# SPAM_BENCH_VARIANTS="chi-square:sbph graham:osb ..." (mailkeep variants),
# SPAM_BENCH_JOBS=2 (folds run in parallel). About 5 minutes on 2 idle CPUs;
# SPAM_BENCH_LIMIT=300 gives a quicker, smaller run. While working on the
# filter: SPAM_BENCH_FOLDS="0 3", SPAM_BENCH_PEERS=0 (mailkeep alone),
# SPAM_BENCH_SAVE=DIR / SPAM_BENCH_COMPARE=DIR (scores bit for bit against an
# earlier run: shows that a change kept every verdict).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
corpus=${1:-${CORPUS:-/work/shared/corpus/spamassassin}}
build=${MAILKEEP_BUILD:-$top/build}
for t in bogofilter perl; do
	command -v $t >/dev/null || { echo "spam bench: $t missing (tools/install-deps.sh)"; exit 1; }
done
perl -MMail::SpamAssassin -e 1 || { echo "spam bench: SpamAssassin missing"; exit 1; }
[ -d "$corpus/ham" ] && [ -d "$corpus/spam" ] || { echo "spam bench: no corpus at $corpus"; exit 1; }
make -C "$top" -s "$build/index/libindex.a" "$build/lib/libmk.a" BUILD="$build"
work=$(mktemp -d /tmp/mk-spambench-XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
cc -std=gnu11 -O2 -g -Wall -Wextra -Werror -I"$top" -pthread -o "$work/spambench" "$here/spambench.c" \
	"$build/index/libindex.a" "$build/lib/libmk.a" $(pkg-config --libs lmdb libzstd libcrypto) -lm
timeout 1800 /usr/bin/python3 "$here/bench.py" "$corpus" "$work" "$work/spambench" "$here"
