#!/bin/sh
# Builds mailkeep's Debian package with the standard tools and checks it:
# dpkg-buildpackage -b in a copy of the tree (it cleans the tree it builds
# in, and the developer's build/ must stay), then lintian (no error allowed).
#
#   tools/build-deb.sh [OUTDIR]     the .deb, .buildinfo and .changes into
#                                   OUTDIR (default build/deb-out), and
#                                   OUTDIR/lintian.txt
set -eu
cd "$(dirname "$0")/.."
REPO=$(pwd)
OUT=${1:-$REPO/build/deb-out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
VERSION=$(dpkg-parsechangelog -S Version)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src="$tmp/mailkeep-$VERSION"
mkdir -p "$src"
# the files of the tree (tracked, and new ones not ignored), as they are now
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -C "$src" -xf -
echo "build-deb: dpkg-buildpackage in $src (log: $OUT/build.log)"
if ! (cd "$src" && dpkg-buildpackage -b -us -uc -j"$(nproc 2>/dev/null || echo 2)") >"$OUT/build.log" 2>&1; then
	tail -n 30 "$OUT/build.log" >&2
	echo "build-deb: dpkg-buildpackage failed (above: the end of $OUT/build.log)" >&2
	exit 1
fi
rm -f "$OUT"/mailkeep_*.deb "$OUT"/mailkeep-dbgsym_*.deb
mv "$tmp"/*.deb "$tmp"/*.changes "$tmp"/*.buildinfo "$OUT"/
changes=$(ls "$OUT"/mailkeep_"$VERSION"_*.changes)
echo "build-deb: $(ls "$OUT"/mailkeep_"$VERSION"_*.deb)"
# lintian: errors fail the build; warnings and notes are printed
if ! lintian --fail-on error --no-tag-display-limit "$changes" >"$OUT/lintian.txt" 2>&1; then
	cat "$OUT/lintian.txt" >&2
	echo "build-deb: lintian found errors" >&2
	exit 1
fi
echo "build-deb: lintian: no error ($(grep -c '^W:' "$OUT/lintian.txt" || true) warnings; $OUT/lintian.txt)"
