#!/bin/sh
# Runs every fuzz target in build/fuzz for SECONDS seconds each (default 20),
# keeping a corpus per target in build/fuzz/corpus/<name> (seeded from
# tests/fuzz/corpus/<name> when that exists). Prints one line per target and
# "fuzz: N passed, N failed". A crash, leak, timeout or sanitizer report fails
# the target; its input is kept in build/fuzz/artifacts/.
secs=${1:-20}
dir=${FUZZ_BUILD:-build/fuzz}
src=$(dirname "$0")
pass=0; fail=0
mkdir -p "$dir/corpus" "$dir/artifacts" "$dir/logs"
for bin in "$dir"/fuzz-*; do
	[ -f "$bin" ] && [ -x "$bin" ] || continue
	name=$(basename "$bin")
	corpus="$dir/corpus/$name"
	mkdir -p "$corpus"
	if [ -d "$src/corpus/$name" ]; then
		cp -n "$src/corpus/$name"/* "$corpus"/ 2>/dev/null
	fi
	dict=""
	[ -f "$src/$name.dict" ] && dict="-dict=$src/$name.dict"
	log="$dir/logs/$name.log"
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$dir/artifacts/$name-" $dict "$corpus" >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | sed 's/cov: //')
	if [ "$rc" = 0 ]; then
		pass=$((pass + 1))
		echo "$name: ok (${runs:-?} runs, coverage ${cov:-?}, corpus $(ls "$corpus" | wc -l) inputs)"
	else
		fail=$((fail + 1))
		what=$(grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|SUMMARY' "$log")
		art=$(grep -o "$dir/artifacts/$name-[^ ]*" "$log" | tail -1)
		echo "$name: FAILED (exit $rc) ${what:-see $log}${art:+; input: $art}"
	fi
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" = 0 ] && [ "$pass" -gt 0 ]
