#!/bin/sh
# Runs every benchmark (tests/bench/*/run.sh) and prints their figures.
# Each area's run.sh prints its own figures side by side with its peers, as ratios.
here=$(cd "$(dirname "$0")" && pwd)
rc=0
for b in "$here"/*/run.sh; do
	[ -x "$b" ] || continue
	area=$(basename "$(dirname "$b")")
	echo "=== $area ($b)"
	if ! "$b"; then
		echo "=== $area: FAILED"
		rc=1
	fi
	echo
done
exit $rc
