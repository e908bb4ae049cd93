#!/bin/sh
# Spam benchmark: mailkeep's filter against bogofilter and SpamProbe: 5-fold
# cross-validation on the tuning part of the corpus and one run on the
# held-out part, reported apart (see bench.py for the method).
#   tests/bench/spam/run.sh [CORPUS]
# Environment: SPAM_BENCH_LIMIT=N (first N files per class, for a quick run),
# SPAM_BENCH_JOBS=2 (folds in parallel: rates get noisier), SPAM_BENCH_FOLDS,
# SPAM_BENCH_PEERS=0, SPAM_BENCH_HELDOUT=0, SPAM_BENCH_GROWTH=50000 (the
# size after 50,000 perturbed messages). About 8 minutes on one idle CPU.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
corpus=${1:-${CORPUS:-/work/shared/corpus/spamassassin}}
build=${MAILKEEP_BUILD:-$top/build}
for t in bogofilter spamprobe; do
	command -v $t >/dev/null || { echo "spam bench: $t missing (tools/install-deps.sh)"; exit 1; }
done
[ -d "$corpus/ham" ] && [ -d "$corpus/spam" ] || { echo "spam bench: no corpus at $corpus"; exit 1; }
make -C "$top" -s "$build/index/libindex.a" "$build/lib/libmk.a" BUILD="$build"
work=$(mktemp -d /tmp/mk-spambench-XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
cc -std=gnu11 -O2 -g -Wall -Wextra -Werror -I"$top" -pthread -o "$work/spambench" "$here/spambench.c" \
	"$build/index/libindex.a" "$build/lib/libmk.a" $(pkg-config --libs lmdb libcrypto) -lm
MAILKEEP_BUILD="$build" timeout 3000 /usr/bin/python3 "$here/bench.py" "$corpus" "$work" "$work/spambench" "$here"
# getfattr on the mount with a large token database (the whole corpus learned)
MAILKEEP_BUILD="$build" timeout 900 /usr/bin/python3 "$here/getfattr.py" "$corpus"
