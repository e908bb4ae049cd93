#!/bin/bash
# Store benchmark (issue 2): mailkeep against a Maildir written the Maildir way
# (each file fsync'ed), in the same run, on a fresh loop ext4 file system when
# we are root (tests/bench/store/bench.py says how each figure is made).
#   BENCH_MESSAGES   synthetic archive size (default 100000)
#   BENCH_REPEAT     interleaved repetitions of the short runs (default 3)
#   BENCH_MAILDIR_LIMIT  seconds of fsync'ed Maildir import timed (default 45)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
BUILD=${MAILKEEP_BUILD:-$REPO/build}
PKGS="lmdb libzstd libcrypto libssl libevent libevent_openssl libevent_pthreads fuse3 ldap lber libetpan zlib libcrypt"
mkdir -p "$BUILD/bench"
# shellcheck disable=SC2046
cc -std=gnu11 -O2 -Wall -Wextra -I"$REPO" $(pkg-config --cflags $PKGS) -o "$BUILD/bench/mkbench" \
	"$HERE/mkbench.c" "$BUILD/index/libindex.a" "$BUILD/lib/libmk.a" $(pkg-config --libs $PKGS) -lm -pthread
WORK=$(mktemp -d /tmp/mkbench.XXXXXX)
LOOP=
cleanup() {
	if mountpoint -q "$WORK/fs" 2>/dev/null; then umount "$WORK/fs"; fi
	if [ -n "$LOOP" ]; then losetup -d "$LOOP" 2>/dev/null || true; fi
	rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/fs"
FSDESC="$(df --output=fstype "$WORK" | tail -1) under /tmp (not root: no loop file system)"
if [ "$(id -u)" = 0 ] && command -v mkfs.ext4 >/dev/null; then
	truncate -s 8G "$WORK/fs.img"
	mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$WORK/fs.img"
	if LOOP=$(losetup --direct-io=on -f --show "$WORK/fs.img" 2>/dev/null) && mount "$LOOP" "$WORK/fs"; then
		FSDESC="fresh 8 GB loop ext4 (direct I/O), lazy init off"
	else
		LOOP=
		FSDESC="$(df --output=fstype "$WORK" | tail -1) under /tmp (loop mount failed)"
	fi
fi
CORPUS=${MAILKEEP_CORPUS:-$REPO/../shared/corpus/spamassassin}
[ -d "$CORPUS" ] || CORPUS=/work/shared/corpus/spamassassin
python3 "$HERE/bench.py" --mailkeep "$BUILD/bin/mailkeep" --mkbench "$BUILD/bench/mkbench" \
	--work "$WORK" --fs "$WORK/fs" --fs-desc "$FSDESC" \
	--corpus "$CORPUS" \
	--messages "${BENCH_MESSAGES:-100000}" --repeat "${BENCH_REPEAT:-3}" \
	--maildir-limit "${BENCH_MAILDIR_LIMIT:-45}"
