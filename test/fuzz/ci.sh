#!/bin/sh
# A CI-sized fuzz run of the SPF check (see README.md here): build the
# libFuzzer harness with ASan + UBSan, seed it from the OpenSPF suites,
# and fuzz for $MW_FUZZ_SECONDS (default 120) CPU-seconds.  Any crash,
# sanitizer report or leak fails the test.  Skipped (TAP "1..0 # SKIP";
# a failure when CI=true) without clang's libFuzzer runtime.  The harness
# is built in $top_builddir/test/fuzz (make sets top_builddir).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${top_builddir:-$top}" && pwd)
export top_builddir=$build
secs=${MW_FUZZ_SECONDS:-120}
if ! command -v clang >/dev/null 2>&1 ||
    ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a \
    >/dev/null 2>&1; then
	why="clang/libFuzzer not installed (apt-get install clang libclang-rt-14-dev)"
	if [ "${CI:-}" = true ]; then
		echo "not ok 1 - fuzz run skipped under CI=true: $why"
		echo "1..1"
		exit 1
	fi
	echo "1..0 # SKIP $why"
	exit 0
fi
work=$(mktemp -d /tmp/mwfuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
if ! sh "$top/test/fuzz/build.sh" >"$work/build.log" 2>&1; then
	echo "not ok 1 - fuzz harness builds"
	sed 's/^/#   /' "$work/build.log"
	exit 1
fi
echo "ok 1 - fuzz harness builds"
MW_TESTDATA=${MW_TESTDATA:-$top/test/corpora} \
    /usr/bin/python3 "$top/test/fuzz/make_seeds.py" "$work/seeds" >/dev/null 2>&1
mkdir -p "$work/corpus"
# Leave any crash file in $work (shown below), not in the source tree.
cd "$work"
if "$build/test/fuzz/fuzz_spf" -max_total_time="$secs" -max_len=8192 \
    -print_final_stats=1 "$work/corpus" "$work/seeds" >"$work/fuzz.log" 2>&1; then
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log")
	echo "ok 2 - $secs s of fuzzing the SPF check: $runs inputs, no crash"
	rm -f "$build/test/fuzz/fuzz_spf"
	echo "1..2"
	exit 0
fi
echo "not ok 2 - fuzzing the SPF check found a problem"
tail -n 60 "$work/fuzz.log" | sed 's/^/#   /'
for f in crash-* leak-* timeout-*; do
	[ -f "$f" ] && { echo "#   input $f (base64):"; base64 "$f" | sed 's/^/#   /'; }
done
rm -f "$build/test/fuzz/fuzz_spf"
echo "1..2"
exit 1
