#!/bin/bash
# Golden tests: run every test/scenarios/*.scn through test/mwscenario and
# compare the transcript with the .out file beside it.
#
#	test/run_scenarios.sh [NAME...]	(default: all; NAME = spf_fail etc.)
#	MW_BLESS=1 test/run_scenarios.sh	rewrite the .out files (review the
#					diff before committing)
#
# DNS for the scenarios is real: nsd serves every t/zones/*.zone on
# 127.0.0.1:$NSD_PORT and t/dnsfault.py answers from every t/zones/*.map
# on 127.0.0.1:$FAULT_PORT (names starting timeout., servfail., ... fail
# as their names say).  Scenario configs refer to @NSD_PORT@, @FAULT_PORT@.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
top_srcdir=$(cd "$top_srcdir" && pwd)
top_builddir=$(cd "$top_builddir" && pwd)
. "$top_srcdir/t/lib.sh"
run=$top_builddir/test/mwscenario

lab_init
start_nsd "$top_srcdir"/t/zones/*.zone
FAULT_PORT=$(lab_port fault)
cat "$top_srcdir"/t/zones/*.map > "$LAB/fault.map" 2>/dev/null || :
lab_spawn dnsfault /usr/bin/python3 "$top_srcdir/t/dnsfault.py" \
    --zone "$LAB/fault.map" "$FAULT_PORT"
for _ in $(seq 1 100); do
	dig +short +time=1 +tries=1 @127.0.0.1 -p "$FAULT_PORT" \
	    ready.probe A >/dev/null 2>&1 && break
	sleep 0.05
done
start_silent_dns
export NSD_PORT FAULT_PORT REDIS_PORT SILENT_DNS_PORT

if [ $# -gt 0 ]; then
	set -- $(for n in "$@"; do echo "$top_srcdir/test/scenarios/$n.scn"; done)
else
	set -- "$top_srcdir"/test/scenarios/*.scn
fi
for scn in "$@"; do
	name=$(basename "$scn" .scn)
	out=${scn%.scn}.out
	got=$LAB/$name.got
	if ! "$run" "$scn" >"$got" 2>"$got.err"; then
		fail "$name: driver failed" "$(cat "$got.err")"
	elif [ "${MW_BLESS:-}" = 1 ]; then
		cp "$got" "$out"
		pass "$name # blessed"
	elif diff -u "$out" "$got" >"$got.diff" 2>&1; then
		pass "$name"
	else
		fail "$name" "$(cat "$got.diff")"
	fi
	# Anything the sanitizers said is a failure even if output matched.
	if grep -q "ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer" \
	    "$got.err" 2>/dev/null; then
		fail "$name: sanitizer report" "$(cat "$got.err")"
	fi
done
done_testing
