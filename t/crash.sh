#!/bin/bash
# t/crash.sh -- one bad peer must not take the service down (issue 21).
#
# Postfix sends a steady stream of messages through mailwarden while a
# hostile milter peer sends the two crash inputs found by fuzzing (an odd
# macro list, which makes libmilter 8.17 read past its macro array at
# smfi_getsymval(); the ABORT-then-stray-events sequence that crashed the
# DKIM verifier) and the worker is killed with SIGSEGV and SIGABRT (what
# those crashes look like to the supervisor, whether or not the heap
# layout lets the overread fault this time).  Every message Postfix
# accepted must be delivered; the others were deferred (4xx, the client
# keeps them): lost = 0.  How long the service took to answer again after
# each crash is measured and printed, not asserted.
set -eu
. "$(dirname "$0")/lib.sh"
require_daemon
lab_init

start_nsd example.test.zone 2.0.192.in-addr.arpa.zone sender.test.zone
mw_config_write "$LAB/mw.conf" <<'EOF'
[milter]
socket = inet:@MILTER_PORT@@127.0.0.1
user = nobody
authserv_id = mx.mailwarden.test
auto_restart = yes
auto_restart_rate = 20/1h
[dns]
nameservers = 127.0.0.1:@NSD_PORT@
timeout_ms = 500
EOF
# A crash must be a real signal the supervisor sees, not a sanitizer exit.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}:handle_segv=0:handle_abort=0:handle_sigbus=0"
start_daemon "$LAB/mw.conf"
start_postfix "inet:127.0.0.1:$MILTER_PORT"

worker_pid() { pgrep -P "$MW_DAEMON_PID" | head -n 1; }
# wait_new_worker OLD: until a worker other than OLD runs
wait_new_worker() {
    local i w
    for ((i = 0; i < 100; i++)); do
        w=$(worker_pid || true)
        if [ -n "$w" ] && [ "$w" != "$1" ]; then return 0; fi
        sleep 0.02
    done
    return 1
}
raw() { python3 "$T_DIR/milter_raw.py" "$MILTER_CONN" - >>"$LAB/raw.log" 2>&1 || true; }

w0=$(worker_pid)
ok "a worker process serves the milter (supervisor $MW_DAEMON_PID)" test -n "$w0"

python3 "$T_DIR/smtp_load.py" 127.0.0.1 "$SMTP_PORT" 2 "$LAB/stop" >"$LAB/load.out" 2>"$LAB/load.err" &
load_pid=$!
lab_on_cleanup "touch $LAB/stop; kill $load_pid"
note "t=${SECONDS}s: load started"
sleep 1.5

# 1. odd macro lists (1, 3, 5 ... strings), then MAIL: smfi_getsymval()
for n in 1 3 5 7 9 11 13 15 17 19 21 23; do
    cat <<EOF
reconnect
negotiate
connect mx.example.test 192.0.2.10
helo mx.example.test
macro-raw M $(seq -f 'x%g' 1 $n | tr '\n' ' ')
mail <a@sender.test>
quit
EOF
done | raw
sleep 0.5
# 2. ABORT, then per-message events, then an authenticated message
raw <<'EOF'
negotiate
connect mx.example.test 192.0.2.10
helo mx.example.test
mail <a@sender.test>
abort
rcpt <b@maildir.test>
data
header From: <a@sender.test>
eoh
macro M {auth_authen}=alice
mail <alice@sender.test>
rcpt <b@maildir.test>
data
header From: <alice@sender.test>
eoh
body hi
eom
EOF
raw <<'EOF'
negotiate
connect mx.example.test 192.0.2.10
helo mx.example.test
mail <a@sender.test>
abort
rcpt <b@maildir.test>
EOF
like "$(grep -c 'out of order' "$MW_LOG")" '^[1-9]' "stray events after ABORT are refused (logged)"
sleep 0.5

# 3. crashes as the supervisor sees them
for sig in SEGV ABRT SEGV; do
    w=$(worker_pid)
    kill -"$sig" "$w"
    ms=$(python3 "$T_DIR/milter_raw.py" "$MILTER_CONN" --probe 10 || echo never)
    note "SIG$sig to worker $w: the milter answered again after $ms ms"
    echo "$ms" >> "$LAB/answer_ms"
    ok "a new worker after SIG$sig" wait_new_worker "$w"
    sleep 1
done
sleep 1
touch "$LAB/stop"
wait "$load_pid" || true
note "t=${SECONDS}s: load stopped"

crashes=$(grep -c 'killed by signal\|exited with status' "$MW_LOG" || true)
note "$(grep 'killed by signal\|exited with status' "$MW_LOG")"
like "$(grep -c 'killed by signal 11 (Segmentation fault)' "$MW_LOG")" '^[1-9]' \
    "the supervisor logs the worker's SIGSEGV"
like "$(grep -c 'killed by signal 6 (Aborted)' "$MW_LOG")" '^[1-9]' \
    "the supervisor logs the worker's SIGABRT"
ok "the supervisor is still running" daemon_alive

total=$(wc -l < "$LAB/load.out")
accepted=$(awk '$2 == 250' "$LAB/load.out" | wc -l)
deferred=$(awk '$2 ~ /^4/' "$LAB/load.out" | wc -l)
other=$(awk '$2 != 250 && $2 !~ /^4/' "$LAB/load.out" | wc -l)
# every accepted message must arrive
wait_delivered "$accepted" 30 || true
note "t=${SECONDS}s: delivered"
grep -rh '^Message-ID: ' "$MAILDIR/new" 2>/dev/null | sed 's/^Message-ID: //; s/\r$//' |
    sort -u > "$LAB/delivered.ids"
awk '$2 == 250 { print $1 }' "$LAB/load.out" | sort -u > "$LAB/accepted.ids"
missing=$(comm -23 "$LAB/accepted.ids" "$LAB/delivered.ids" | wc -l)
lost=$((missing + other))
note "slowest transactions (s): $(sort -k3 -rn "$LAB/load.out" | head -n 3 | awk '{print $2, $3}' | tr '\n' ' ')"
note "load: $total messages: accepted $accepted, deferred $deferred, lost $lost" \
    "(crashes seen by the supervisor: $crashes; answer times in ms: $(tr '\n' ' ' < "$LAB/answer_ms"))"
ok "messages were accepted under load ($accepted)" test "$accepted" -gt 10
is "$lost" 0 "nothing lost: every message was delivered or deferred"

r=$(send_mail --xclient-addr 192.0.2.10 --xclient-name mx.example.test --from a@sender.test)
like "$r" '^250 ' "after the crashes the service accepts mail"
check_daemon_clean_exit
done_testing
