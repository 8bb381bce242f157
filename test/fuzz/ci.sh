#!/bin/sh
# A CI-sized fuzz run (see README.md here): build the libFuzzer harnesses
# with ASan + UBSan, replay every saved regression input, then fuzz each
# harness from its seeds for a while: fuzz_spf $MW_FUZZ_SECONDS (default
# 120) CPU-seconds, fuzz_session and fuzz_ini half of that each.  Any
# crash, sanitizer report or leak fails the test.  Skipped (TAP "1..0 #
# SKIP"; a failure when CI=true) without clang's libFuzzer runtime.  The
# harnesses are built in $top_builddir/test/fuzz (make sets top_builddir).
# The milter-protocol fuzzer, which needs the daemon, runs in
# t/milter_fuzz.sh.  For hours: test/fuzz/long.sh.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${top_builddir:-$top}" && pwd)
export top_builddir=$build
secs=${MW_FUZZ_SECONDS:-120}
half=$((secs / 2))
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
trap 'rm -rf "$work"; rm -f "$build"/test/fuzz/fuzz_spf "$build"/test/fuzz/fuzz_session "$build"/test/fuzz/fuzz_ini' EXIT
n=0 failed=0
if ! sh "$top/test/fuzz/build.sh" >"$work/build.log" 2>&1; then
	echo "not ok 1 - fuzz harnesses build"
	sed 's/^/#   /' "$work/build.log"
	echo "1..1"
	exit 1
fi
n=1
echo "ok 1 - fuzz harnesses build"

MW_TESTDATA=${MW_TESTDATA:-$top/test/corpora} \
    /usr/bin/python3 "$top/test/fuzz/make_seeds.py" "$work/seeds.fuzz_spf" >/dev/null 2>&1
mkdir -p "$work/seeds.fuzz_ini" "$work/seeds.fuzz_session"
cp "$top"/etc/mailwarden.ini "$top"/test/badconfig/*.ini "$work/seeds.fuzz_ini/"
cp "$top"/test/fuzz/seeds/session/* "$work/seeds.fuzz_session/"

# fuzz NAME SECONDS MAXLEN
fuzz() {
	h=$1
	# Leave any crash file in $work (shown below), not in the source tree.
	cd "$work" || exit 1
	# Saved crashes first: each must now pass.
	if [ -d "$top/test/fuzz/regress/$h" ]; then
		n=$((n + 1))
		if "$build/test/fuzz/$h" "$top"/test/fuzz/regress/"$h"/* \
		    >"$work/$h.regress.log" 2>&1; then
			echo "ok $n - $h: every saved regression input passes"
		else
			failed=$((failed + 1))
			echo "not ok $n - $h: a saved regression input fails"
			tail -n 40 "$work/$h.regress.log" | sed 's/^/#   /'
		fi
	fi
	mkdir -p "$work/corpus.$h"
	n=$((n + 1))
	if "$build/test/fuzz/$h" -max_total_time="$2" -max_len="$3" \
	    -print_final_stats=1 "$work/corpus.$h" "$work/seeds.$h" \
	    >"$work/$h.log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$h.log")
		echo "ok $n - $h: $2 s of fuzzing, $runs inputs, no crash"
		return
	fi
	failed=$((failed + 1))
	echo "not ok $n - $h found a problem"
	tail -n 60 "$work/$h.log" | sed 's/^/#   /'
	for f in crash-* leak-* timeout-*; do
		[ -f "$f" ] && { echo "#   input $f (base64):"; base64 "$f" | sed 's/^/#   /'; }
	done
	rm -f crash-* leak-* timeout-*
}

fuzz fuzz_spf "$secs" 8192
fuzz fuzz_session "$half" 16384
fuzz fuzz_ini "$half" 8192
echo "1..$n"
[ "$failed" = 0 ]
