#!/bin/sh
# Search benchmark (issue 17): IMAP SEARCH TEXT over SEARCH_BENCH_N messages
# (default 100000) in one INBOX, mailkeep (words index) against Dovecot
# without full-text search, same messages on a fresh loop ext4. Needs root.
set -eu
N=${SEARCH_BENCH_N:-100000}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
if [ "$(id -u)" != 0 ] || ! command -v dovecot >/dev/null; then
	echo "search bench: skipped (needs root and Dovecot)"
	exit 0
fi
WORK=$(mktemp -d /tmp/mksearch.XXXXXX)
chmod 755 "$WORK" # Dovecot drops privileges and must reach its dirs
cleanup() {
	if mountpoint -q "$WORK/disk" 2>/dev/null; then umount "$WORK/disk" || true; fi
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
mkdir -p "$WORK/disk"
truncate -s $((N / 1000 * 25 + 2000))M "$WORK/disk.img"
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 -N $((2 * N + 100000)) "$WORK/disk.img"
mount -o loop "$WORK/disk.img" "$WORK/disk"
PYTHONPATH="$HERE/../common" timeout 3600 python3 "$HERE/bench.py" --work "$WORK" --messages "$N" \
	--reps "${SEARCH_BENCH_REPS:-2}"
