#!/bin/sh
# fs benchmark: a synthetic archive (FS_BENCH_N messages, default 100000;
# mostly 2-20 KB, a few MB) as a plain Maildir on a fresh loop ext4, and the
# same messages in the store (on the same loop file system) shown by
# mailkeep-fs. grep -r (absent / common string), find | wc -l, du -s and
# mlist | mscan, warm and cold (drop_caches), interleaved, FS_BENCH_RUNS runs
# (default 3); then writing FS_BENCH_WRITE_N messages (default 10000) with cp
# and rsync into the mount against a plain Maildir on the same ext4 with an
# fsync per file (write.py); prints median ratios with min-max. Needs root
# (loop mount, drop_caches). Bounded: about 8-12 minutes at the default sizes.
set -eu
N=${FS_BENCH_N:-100000}
RUNS=${FS_BENCH_RUNS:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
BUILD=${MAILKEEP_BUILD:-$REPO/build}
if [ "$(id -u)" != 0 ]; then
	echo "fs bench: skipped (needs root for the loop file system and drop_caches)"
	exit 0
fi
make -s -C "$REPO" -f tests/helpers/Makefile BUILD="$BUILD" "$BUILD/tests/helpers/mkstore" >/dev/null
WORK=$(mktemp -d /tmp/mkfsbench.XXXXXX)
FSPID=
cleanup() {
	if mountpoint -q "$WORK/mail" 2>/dev/null; then fusermount3 -u "$WORK/mail" || true; fi
	if [ -n "$FSPID" ]; then kill "$FSPID" 2>/dev/null || true; wait "$FSPID" 2>/dev/null || true; fi
	if mountpoint -q "$WORK/disk" 2>/dev/null; then umount "$WORK/disk" || true; fi
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
mkdir -p "$WORK/disk" "$WORK/mail"
truncate -s 8G "$WORK/disk.img"
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$WORK/disk.img"
if ! mount -o loop "$WORK/disk.img" "$WORK/disk" 2>/dev/null; then
	echo "fs bench: no loop device here; native and store on $(df --output=fstype "$WORK" | tail -1) instead of a fresh ext4"
	rm -f "$WORK/disk.img"
fi

t0=$(date +%s)
python3 "$HERE/gen.py" "$WORK/disk/maildir" "$N"
t1=$(date +%s)
INST=$WORK/disk/inst
mkdir -p "$INST/data"
cat >"$INST/mailkeep.conf" <<CONF
data_directory = $INST/data
log_target = stderr
mount_point = $WORK/mail
CONF
MK="$BUILD/tests/helpers/mkstore $INST/data/store"
$MK user bob 0 0 >/dev/null
$MK mkbox bob Lists >/dev/null
$MK bulk bob INBOX "$WORK/disk/maildir/cur" 256
$MK bulk bob Archive "$WORK/disk/maildir/.Archive/cur" 256
$MK bulk bob Lists "$WORK/disk/maildir/.Lists/cur" 256
t2=$(date +%s)
echo "fs bench: generated $N messages in $((t1 - t0)) s, stored in $((t2 - t1)) s" \
	"(maildir $(du -sm "$WORK/disk/maildir" | cut -f1) MB, store $(du -sm "$INST/data/store" | cut -f1) MB)"

"$BUILD/bin/mailkeep-fs" -c "$INST/mailkeep.conf" -f >"$WORK/fs.log" 2>&1 &
FSPID=$!
i=0
while ! mountpoint -q "$WORK/mail"; do
	i=$((i + 1)); [ $i -lt 100 ] || { echo "fs bench: mount failed"; cat "$WORK/fs.log"; exit 1; }
	sleep 0.1
done
mkdir -p "$WORK/mblaze"
MBLAZE=$WORK/mblaze python3 "$HERE/bench.py" "$WORK/disk/maildir" "$WORK/mail/bob" "$RUNS"

# writing: FS_BENCH_WRITE_N messages (default 10000) into the mount with cp and
# rsync, against a plain Maildir on the same ext4 with an fsync per file
WN=${FS_BENCH_WRITE_N:-10000}
if [ "$WN" -gt 0 ]; then
	mkdir -p "$WORK/disk/wsrc" "$WORK/disk/native"
	find "$WORK/disk/maildir" -path '*/cur/*' -type f -size -100k | head -n "$WN" |
		while read -r f; do b=${f##*/}; cp -p "$f" "$WORK/disk/wsrc/${b%%:2,*}"; done
	chmod -R u=rwX,go= "$WORK/disk/wsrc" # a Maildir's modes (rsync -a keeps them)
	python3 "$HERE/write.py" "$WORK/disk/wsrc" "$WORK/disk/native" "$WORK/mail/bob" "$RUNS"
fi
