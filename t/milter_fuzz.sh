#!/bin/bash
# t/milter_fuzz.sh -- a CI-sized run of the milter-protocol fuzzer
# (test/fuzz/milter_fuzz.py) against the ASan-built daemon: mutated
# transactions, out-of-order commands, bad lengths, random packets for
# $MW_FUZZ_SECONDS/2 (default 60) seconds.  No worker may die and the
# sanitizers must stay silent.  (Odd macro lists, which crash libmilter
# itself, are left to test/fuzz/long.sh and t/crash.sh.)
set -eu
. "$(dirname "$0")/lib.sh"
require_daemon
lab_init
secs=$(( ${MW_FUZZ_SECONDS:-120} / 2 ))

start_nsd example.test.zone 2.0.192.in-addr.arpa.zone sender.test.zone
mw_config_write "$LAB/mw.conf" <<'CONF'
[milter]
socket = inet:@MILTER_PORT@@127.0.0.1
user = nobody
authserv_id = mx.mailwarden.test
[dns]
nameservers = 127.0.0.1:@NSD_PORT@
timeout_ms = 300
CONF
start_daemon "$LAB/mw.conf"
seed=${MW_FUZZ_SEED:-$RANDOM}
if out=$(python3 "$TOP/test/fuzz/milter_fuzz.py" "$MILTER_CONN" "$secs" \
    --seed "$seed" --save "$LAB/cases" 2>&1); then
    pass "milter fuzzer ran: $out"
else
    fail "milter fuzzer: the milter stopped answering" "$out"
fi
crashes=$(grep -c 'killed by signal\|exited with status' "$MW_LOG" || true)
is "$crashes" 0 "no worker died (seed $seed)"
if [ "$crashes" != 0 ]; then
    diag "$(grep -B30 'killed by signal\|exited with status' "$MW_LOG" | head -n 80)"
    for f in "$LAB"/cases/*; do [ -f "$f" ] && diag "case $f:" "$(cat "$f")"; done
fi
check_daemon_clean_exit
done_testing
