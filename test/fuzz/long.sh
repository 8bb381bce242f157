#!/bin/sh
# Fuzz for hours: every libFuzzer harness in turn, then the milter
# protocol fuzzer against the ASan daemon, round
# after round, keeping the corpora in $MW_FUZZ_DIR (default
# /var/tmp/mwfuzz) so each round starts where the last stopped.
#
#	test/fuzz/long.sh [HOURS]	(default 8)
#
# Crashes land in $MW_FUZZ_DIR/crashes/; turn each into a regression
# case: copy the input to test/fuzz/regress/HARNESS/ (ci.sh replays
# them) after fixing it.  Prints the CPU time spent and what was found.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
hours=${1:-8}
dir=${MW_FUZZ_DIR:-/var/tmp/mwfuzz}
mkdir -p "$dir/crashes"
sh "$top/test/fuzz/build.sh" >"$dir/build.log" 2>&1 || { cat "$dir/build.log"; exit 1; }
MW_TESTDATA=${MW_TESTDATA:-$top/test/corpora} \
    /usr/bin/python3 "$top/test/fuzz/make_seeds.py" "$dir/seeds.fuzz_spf" >/dev/null 2>&1
mkdir -p "$dir/seeds.fuzz_ini" "$dir/seeds.fuzz_session"
cp "$top"/etc/mailwarden.ini "$top"/test/badconfig/*.ini "$dir/seeds.fuzz_ini/"
cp "$top"/test/fuzz/seeds/session/* "$dir/seeds.fuzz_session/"
end=$(( $(date +%s) + hours * 3600 ))
slice=900
while [ "$(date +%s)" -lt "$end" ]; do
	for h in fuzz_spf fuzz_session fuzz_ini; do
		mkdir -p "$dir/corpus.$h"
		(cd "$dir/crashes" && "$top/test/fuzz/$h" -max_total_time=$slice \
		    -max_len=16384 -print_final_stats=1 "$dir/corpus.$h" \
		    "$dir/seeds.$h" >>"$dir/$h.log" 2>&1) ||
		    echo "$(date): $h found something (see $dir/$h.log, $dir/crashes)"
	done
	MW_FUZZ_SECONDS=$((slice * 2)) bash "$top/t/milter_fuzz.sh" >>"$dir/milter.log" 2>&1 ||
	    echo "$(date): the milter fuzzer found something (see $dir/milter.log)"
done
echo "CPU seconds (libFuzzer runs):"
grep -h 'stat::number_of_executed_units\|Done [0-9]* runs in' "$dir"/fuzz_*.log | tail -n 12
ls -l "$dir/crashes"
