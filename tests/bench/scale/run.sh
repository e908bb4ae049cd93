#!/bin/sh
# Scale benchmark (issue 17): one user with BENCH_SCALE messages (default
# 100k; BENCH_SCALE=1M for the million, by hand) over 200 folders, one of them
# with 30% of them, as a native Maildir on a fresh loop ext4 and in the store
# on the same file system (mounted by mailkeep-fs, served by mailkeep-imapd).
# Prints each figure beside the native one (bench.py says how each is made).
# Needs root (loop mount, drop_caches).
set -eu
case "${BENCH_SCALE:-100k}" in
*[kK]) N=$((${BENCH_SCALE%?} * 1000)) ;;
*[mM]) N=$((${BENCH_SCALE%?} * 1000000)) ;;
*) N=$BENCH_SCALE ;;
esac
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
BUILD=${MAILKEEP_BUILD:-$REPO/build}
if [ "$(id -u)" != 0 ]; then
	echo "scale bench: skipped (needs root for the loop file system and drop_caches)"
	exit 0
fi
WORK=$(mktemp -d /tmp/mkscale.XXXXXX)
cleanup() {
	# bench.py ends the daemons it started; a mount left by a crash goes here
	if mountpoint -q "$WORK/mail" 2>/dev/null; then fusermount3 -u "$WORK/mail" || true; fi
	if mountpoint -q "$WORK/disk" 2>/dev/null; then umount "$WORK/disk" || true; fi
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
mkdir -p "$WORK/disk" "$WORK/mail"
# about 8 KB a message in the Maildir, a third of it in the store, room to spare
SIZE=$((N / 1000 * 30 + 2000))M
truncate -s "$SIZE" "$WORK/disk.img"
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 -N $((N + 100000)) "$WORK/disk.img"
mount -o loop "$WORK/disk.img" "$WORK/disk"
python3 "$HERE/bench.py" --build "$BUILD" --work "$WORK" --messages "$N"
