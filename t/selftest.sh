#!/bin/bash
# t/selftest.sh -- tests the integration-test harness (t/lib.sh) itself.
# Needs root, nsd, redis-server, postfix, swaks, miltertest, dig; no mailwarden.
#
# The outer run starts the real checks in a child ("--inner"), passes its TAP
# through, and then verifies that the child left nothing behind: no process
# referring to its $LAB, no $LAB, no port reservations, ports free again.
# A second child ("--inner-hold") is killed with SIGTERM mid-run to check
# the signal path (and MW_KEEP_LAB=1 keeping the lab of a failed run).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

# a stand-in for the mailwarden binary: listens on the [milter] socket of -c FILE
write_stub() {
    cat > "$1" <<'PY'
#!/usr/bin/python3
import os, signal, socket, sys
if os.environ.get("STUB_FAIL"):
    print("stub: failing on purpose", file=sys.stderr)
    sys.exit(3)
args = sys.argv[1:]
assert "-f" in args, "stub: -f missing"
conf = args[args.index("-c") + 1]
sec, spec = None, None
for line in open(conf):
    line = line.split(" ;")[0].split(" #")[0].strip()
    if line.startswith("["):
        sec = line.strip("[] ").lower()
    elif sec == "milter" and line.split("=")[0].strip() == "socket":
        spec = line.split("=", 1)[1].strip()
if spec.startswith("inet:"):
    port, host = spec[5:].split("@")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
else:
    path = spec.split(":", 1)[1]
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    os.chmod(path, 0o666)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
s.listen(16)
print("stub: listening on", spec, flush=True)
while True:
    c, _ = s.accept()
    c.close()
PY
    chmod +x "$1"
}

state() { [ -z "${SELFTEST_STATE:-}" ] || echo "$*" >> "$SELFTEST_STATE"; }

inner() {
    lab_init
    state "LAB=$LAB"
    state "PORTS=$NSD_PORT $SMTP_PORT $REDIS_PORT $MILTER_PORT $DNSFAULT_PORT"

    like "$LAB" '^/tmp/mwlab\.[A-Za-z0-9]{6}$' "LAB is an absolute /tmp/mwlab.XXXXXX"
    ok "LAB exists" test -d "$LAB"
    is "$(printf '%s\n' "$NSD_PORT" "$SMTP_PORT" "$REDIS_PORT" "$MILTER_PORT" "$DNSFAULT_PORT" | sort -u | wc -l)" 5 \
        "five distinct ports"
    local extra; extra=$(lab_port)
    like "$extra" '^[0-9]+$' "lab_port gives another port ($extra)"
    state "PORTS=$extra"

    # ---- nsd
    start_nsd example.test.zone 2.0.192.in-addr.arpa.zone 100.51.198.in-addr.arpa.zone \
        8.b.d.0.1.0.0.2.ip6.arpa.zone "$ZONE_DIR/sender.test.zone"
    state "PID=$(cat "$LAB/pids/nsd.pid")"
    is "$(dig +short @127.0.0.1 -p "$NSD_PORT" mx.example.test A)" 192.0.2.10 "nsd: A mx.example.test"
    is "$(lab_dig -x 192.0.2.10)" mx.example.test. "nsd: PTR 192.0.2.10"
    is "$(lab_dig -x 192.0.2.20)" "" "nsd: no PTR for 192.0.2.20"
    like "$(dig +norec @127.0.0.1 -p "$NSD_PORT" -x 192.0.2.20)" 'status: NXDOMAIN' "nsd: 192.0.2.20 PTR is NXDOMAIN"
    is "$(lab_dig -x 192.0.2.30)" liar.example.test. "nsd: PTR 192.0.2.30 -> liar"
    is "$(lab_dig liar.example.test A)" 192.0.2.99 "nsd: liar.example.test A mismatches"
    is "$(lab_dig mx6.example.test AAAA)" 2001:db8::10 "nsd: AAAA mx6.example.test"
    is "$(lab_dig -x 2001:db8::10)" mx6.example.test. "nsd: ip6.arpa PTR"
    is "$(lab_dig -x 198.51.100.5)" mail.sender.test. "nsd: PTR 198.51.100.5"
    is "$(lab_dig mail.sender.test A)" 198.51.100.5 "nsd: A mail.sender.test"
    like "$(lab_dig example.test SOA)" ' 60$' "nsd: SOA minimum 60"
    like "$(dig +norec @127.0.0.1 -p "$NSD_PORT" mx.example.test A)" 'IN[[:space:]]+A' "nsd: answer section"
    like "$(dig +norec @127.0.0.1 -p "$NSD_PORT" mx.example.test A | grep -E '^mx\.example\.test\.')" \
        '^mx\.example\.test\.[[:space:]]+300[[:space:]]' "nsd: TTL 300"
    if [ "$LAB_IPV6" = 1 ]; then
        is "$(dig +short @::1 -p "$NSD_PORT" mx.example.test A)" 192.0.2.10 "nsd: answers on [::1]"
    else
        skip "nsd: answers on [::1]" "no IPv6 loopback"
    fi
    is "$(dig +short +tcp @127.0.0.1 -p "$NSD_PORT" mx.example.test A)" 192.0.2.10 "nsd: answers over TCP"
    # reload with an edited zone (serial unchanged on purpose)
    sed 's/^liar .*/&\nadded           IN A    192.0.2.77/' "$ZONE_DIR/example.test.zone" > "$LAB/example.test.zone"
    reload_nsd "$LAB/example.test.zone"
    is "$(lab_dig added.example.test A)" 192.0.2.77 "reload_nsd: new record served"
    is "$(lab_dig mail.sender.test A)" 198.51.100.5 "reload_nsd: other zones still served"
    state "PID=$(cat "$LAB/pids/nsd.pid")"

    # ---- redis
    start_redis
    local rpid; rpid=$(cat "$LAB/redis/redis.pid")
    state "PID=$rpid"
    is "$(redis_cmd PING)" PONG "redis: PING"
    is "$(redis-cli -s "$REDIS_SOCK" PING)" PONG "redis: PING on the unix socket"
    redis_cmd SET mwkey 42 >/dev/null
    is "$(redis_cmd GET mwkey)" 42 "redis: SET/GET"
    kill_redis
    ok "kill_redis: process gone" eval "! _lab_alive $rpid"
    isnt "$(redis_cmd PING 2>&1)" PONG "kill_redis: no answer on the port"
    start_redis
    state "PID=$(cat "$LAB/redis/redis.pid")"
    isnt "$(cat "$LAB/redis/redis.pid")" "$rpid" "start_redis again: new process"
    is "$(redis_cmd PING)" PONG "start_redis again: PING on the same port $REDIS_PORT"
    is "$(redis_cmd GET mwkey)" "" "redis: no persistence across restarts"
    stop_redis
    isnt "$(redis_cmd PING 2>&1)" PONG "stop_redis: stopped"
    start_redis
    state "PID=$(cat "$LAB/redis/redis.pid")"
    is "$(redis_cmd PING)" PONG "start_redis after stop_redis"

    # ---- postfix, no milter
    start_postfix "" "smtpd_banner=\$myhostname ESMTP selftest"
    state "PID=$(cat "$LAB/pids/postfix.pid")"
    state "PFKIDS=$(pgrep -P "$(cat "$LAB/pids/postfix.pid")" | tr '\n' ' ')"
    is "$(_lab_smtp_banner)" "220 mx.mailwarden.test ESMTP selftest" "start_postfix KEY=VALUE applied"
    is "$(postconf -c "$PF_ETC" -h smtpd_milters)" "" "postfix: no milter"
    ok "postfix: the system instance was not started" \
        eval '! _lab_alive "$(sed -n "1s/ //gp" /var/spool/postfix/pid/master.pid 2>/dev/null)"'
    local subj="selftest $$ $RANDOM" r f
    r=$(send_mail --xclient "ADDR=192.0.2.10 NAME=mx.example.test" --helo mx.example.test \
        --from alice@example.test --to rcpt@maildir.test --h-Subject "$subj")
    like "$r" '^250 2\.0\.0 Ok: queued as [0-9A-F]+' "send_mail: accepted ($r)"
    like "$(queue_id "$r")" '^[0-9A-F]+$' "queue_id"
    ok "wait_delivered 1" wait_delivered 1
    is "$(delivered_count)" 1 "one message in the Maildir"
    f=$(last_delivered)
    ok "delivered file contains the Subject" grep -q "^Subject: $subj" "$f"
    ok "Received: shows the XCLIENT address" grep -q "mx.example.test \[192.0.2.10\]" "$f"
    like "$(postfix_log)" "$(queue_id "$r").*status=sent \(delivered to maildir\)" "postfix_log: delivery logged"

    r=$(send_mail --xclient-addr 192.0.2.20 --to someone@nonexistent.invalid)
    like "$r" '^55[04] 5\.7\.1 .*Relay access denied' "send_mail: relay to unknown domain rejected ($r)"
    like "$(cat "$(swaks_log)")" 'XCLIENT ADDR=192.0.2.20' "swaks_log: transcript has XCLIENT"
    is "$(cat "$LAB/swaks.2.rc")" 24 "swaks exit code kept (24 = RCPT rejected)"
    is "$(smtp_reply_of "$(swaks_log)" RCPT)" "554 5.7.1 <someone@nonexistent.invalid>: Relay access denied" \
        "smtp_reply_of RCPT"
    like "$(smtp_reply_of "$(swaks_log 1)" EOM)" '^250 2\.0\.0 Ok: queued as ' "smtp_reply_of EOM"
    like "$(smtp_reply_of "$(swaks_log 1)" CONNECT)" '^220 mx\.mailwarden\.test ESMTP' "smtp_reply_of CONNECT"
    like "$(smtp_reply_of "$(swaks_log 1)" XCLIENT)" '^220 ' "smtp_reply_of XCLIENT"
    is "$(smtp_reply_of "$(swaks_log 1)" DATA)" "354 End data with <CR><LF>.<CR><LF>" "smtp_reply_of DATA"
    is "$(smtp_reply_of "$(swaks_log 1)" MAIL)" "250 2.1.0 Ok" "smtp_reply_of MAIL"
    is "$(smtp_reply_of "$(swaks_log)" DATA)" "" "smtp_reply_of: stage not reached"
    r=$(send_mail --to someone@nonexistent.invalid)
    like "$r" '^554 5\.7\.1 ' "no relaying even from 127.0.0.1"

    r=$(send_mail --xclient-addr 198.51.100.5 --to x@sink.test --h-Subject discard-me)
    like "$r" '^250 ' "sink.test accepted"
    sleep 0.5
    like "$(postfix_log)" 'to=<x@sink.test>, relay=none.*status=sent \(sink.test\)|to=<x@sink.test>.*discard' "sink.test discarded"
    is "$(delivered_count)" 1 "sink.test did not go to the Maildir"

    # milter wiring + postfix_set/reload: nothing listens on MILTER_PORT -> tempfail
    postfix_set "smtpd_milters=inet:127.0.0.1:$MILTER_PORT"
    is "$(postconf -c "$PF_ETC" -h smtpd_milters)" "inet:127.0.0.1:$MILTER_PORT" "postfix_set: main.cf changed"
    r=$(send_mail --xclient-addr 192.0.2.10)
    like "$r" '^4[25]1 4\.[0-9]\.[0-9] ' "dead milter + milter_default_action=tempfail -> 4xx ($r)"
    postfix_set "smtpd_milters="
    r=$(send_mail --xclient-addr 192.0.2.10 --h-Subject second)
    like "$r" '^250 ' "postfix_set back to no milter: accepted"
    ok "wait_delivered 2" wait_delivered 2
    ok "delivered_files oldest first" eval 'grep -q "^Subject: second" "$(delivered_files | tail -n 1)"'
    clear_maildir
    is "$(delivered_count)" 0 "clear_maildir"
    ok "postfix_flush" postfix_flush
    like "$(postfix_queue)" 'Mail queue is empty' "postfix_queue"
    ok "wait_delivered times out with status 1" eval '! wait_delivered 1 1 2>/dev/null'

    # ---- start_daemon / stop_daemon with a stub binary
    write_stub "$LAB/stub-mailwarden"
    MW_DAEMON=$LAB/stub-mailwarden
    mw_config_write "$LAB/mw.conf" <<'EOF'
[milter]
socket = inet:@MILTER_PORT@@127.0.0.1   ; comment
[dns]
server = 127.0.0.1:@NSD_PORT@
[redis]
server = 127.0.0.1:@REDIS_PORT@
state = @LAB@/state
EOF
    ok "mw_config_write substituted" grep -qx "server = 127.0.0.1:$NSD_PORT" "$LAB/mw.conf"
    ok "mw_config_write: LAB" grep -qx "state = $LAB/state" "$LAB/mw.conf"
    is "$(_lab_milter_socket "$LAB/mw.conf")" "inet:$MILTER_PORT@127.0.0.1" "socket parsed from [milter]"
    start_daemon "$LAB/mw.conf"
    state "PID=$MW_DAEMON_PID"
    ok "start_daemon: running" daemon_alive
    ok "start_daemon: listening" lab_wait_port "$MILTER_PORT" tcp 1
    like "$(daemon_log)" "stub: listening on inet:$MILTER_PORT@127.0.0.1" "daemon_log"
    postfix_set "smtpd_milters=inet:127.0.0.1:$MILTER_PORT"
    r=$(send_mail --xclient-addr 192.0.2.10)
    like "$r" '^4[25]1 ' "postfix -> a socket that is not a milter -> tempfail ($r)"
    postfix_set "smtpd_milters="
    stop_daemon
    is "$MW_DAEMON_STATUS" 0 "stop_daemon: exit status 0 after SIGTERM"
    ok "stop_daemon: gone" eval '! lab_wait_port "$MILTER_PORT" tcp 0'
    # unix socket
    mw_config_write "$LAB/mw-unix.conf" <<'EOF'
[milter]
socket = unix:@LAB@/mw.sock
EOF
    start_daemon "$LAB/mw-unix.conf"
    state "PID=$MW_DAEMON_PID"
    ok "start_daemon: unix socket" test -S "$LAB/mw.sock"
    stop_daemon
    # early exit is reported
    local out st=0
    out=$(STUB_FAIL=1 start_daemon "$LAB/mw.conf" 2>&1) || st=$?
    is "$st" 1 "start_daemon: dies if the daemon exits early"
    like "$out" 'exited during startup \(status 3\)' "start_daemon: says why"
    like "$out" 'failing on purpose' "start_daemon: shows the log"
    # SIGTERM-ignoring process: _lab_terminate escalates to SIGKILL
    bash -c 'trap "" TERM; while :; do sleep 0.1; done' &
    local tp=$! i
    # let it exec first (a signal between fork and exec runs our own traps there)
    for ((i = 0; i < 100; i++)); do grep -q trap "/proc/$tp/cmdline" 2>/dev/null && break; sleep 0.02; done
    sleep 0.1
    _lab_terminate "$tp" 1 2>/dev/null
    ok "_lab_terminate escalates to SIGKILL" eval "! _lab_alive $tp"

    # ---- miltertest
    cat > "$LAB/vars.lua" <<'EOF'
local ok, err = pcall(function()
    assert(MILTER_CONN == "inet:" .. MILTER_PORT .. "@127.0.0.1", "MILTER_CONN")
    print("port=" .. MILTER_PORT .. " lab=" .. os.getenv("LAB"))
end)
if not ok then print("ERROR: " .. tostring(err)); os.exit(1) end
EOF
    ok "run_miltertest: script succeeds" run_miltertest "$LAB/vars.lua"
    like "$(cat "$(miltertest_log)")" "port=$MILTER_PORT lab=$LAB" "run_miltertest: variables passed"
    printf 'error("boom")\n' > "$LAB/fail.lua"
    st=0; run_miltertest "$LAB/fail.lua" 2>/dev/null || st=$?
    isnt "$st" 0 "run_miltertest: failure status returned"

    # ---- a spawned helper (e.g. t/dnsfault.py) is stopped at cleanup
    lab_spawn helper sleep 300
    state "PID=$(lab_pid helper)"
    ok "lab_spawn: running" _lab_alive "$(lab_pid helper)"

    done_testing
}

# started everything, then waits to be killed by the outer run
inner_hold() {
    lab_init
    state "LAB=$LAB"
    state "PORTS=$NSD_PORT $SMTP_PORT $REDIS_PORT $MILTER_PORT $DNSFAULT_PORT"
    start_nsd example.test.zone
    state "PID=$(cat "$LAB/pids/nsd.pid")"
    start_redis
    state "PID=$(cat "$LAB/redis/redis.pid")"
    start_postfix ""
    state "PID=$(cat "$LAB/pids/postfix.pid")"
    state "PFKIDS=$(pgrep -P "$(cat "$LAB/pids/postfix.pid")" | tr '\n' ' ')"
    write_stub "$LAB/stub-mailwarden"
    MW_DAEMON=$LAB/stub-mailwarden
    printf '[milter]\nsocket = inet:%s@127.0.0.1\n' "$MILTER_PORT" > "$LAB/mw.conf"
    start_daemon "$LAB/mw.conf"
    state "PID=$MW_DAEMON_PID"
    # a stray child of the test (LAB in its environment): killed as straggler
    sleep 300 &
    state "PID=$!"
    state "READY"
    sleep 120 & wait $!     # wait is interruptible by the trap, a foreground sleep is not
    exit 0
}

# ---- outer run: checks that a finished/killed harness left nothing behind
check_clean() {  # check_clean STATEFILE WHAT
    local sf=$1 what=$2 lab pids p ports left
    lab=$(sed -n 's/^LAB=//p' "$sf")
    like "$lab" '^/tmp/mwlab\.' "$what: child reported its LAB"
    [ -n "$lab" ] || return 0
    is "$(pgrep -f -- "$lab" | tr '\n' ' ')" "" "$what: no process with $lab in its command line"
    is "$(_lab_lab_pids "$lab" | tr '\n' ' ')" "" "$what: no process with $lab in environment or cwd"
    pids=$(sed -n 's/^PID=//p; s/^PFKIDS=//p' "$sf")
    left=
    for p in $pids; do if _lab_alive "$p"; then left="$left $p($(ps -o comm= -p "$p"))"; fi; done
    is "$left" "" "$what: all $(echo $pids | wc -w) started processes are gone"
    ports=$(sed -n 's/^PORTS=//p' "$sf")
    left=
    for p in $ports; do [ ! -e "$_LAB_PORT_DIR/$p" ] || left="$left $p"; done
    is "$left" "" "$what: port reservations released"
    left=
    for p in $ports; do
        if [ -n "$(ss -Hltun "sport = :$p" 2>/dev/null)" ]; then left="$left $p"; fi
    done
    is "$left" "" "$what: nothing listens on the lab ports"
}

outer() {
    [ "$(id -u)" = 0 ] || skip_all "needs root (private Postfix instance)"
    local c
    for c in nsd redis-server redis-cli postfix postconf swaks miltertest dig; do
        command -v "$c" >/dev/null || skip_all "$c not installed"
    done
    local sf line rc lab
    sf=$(mktemp /tmp/mwselftest.XXXXXX)
    trap 'rm -f "$sf"' EXIT

    # 1. a full run, TAP passed through (its plan dropped, its numbers kept)
    rc=
    while IFS= read -r line; do
        case $line in
            "1.."*) ;;
            "ok "*) _tap_n=$((_tap_n + 1)); printf '%s\n' "$line" ;;
            "not ok "*) _tap_n=$((_tap_n + 1)); _tap_failed=$((_tap_failed + 1)); printf '%s\n' "$line" ;;
            "__EXIT__ "*) rc=${line#__EXIT__ } ;;
            *) printf '%s\n' "$line" ;;
        esac
    done < <(st=0; SELFTEST_STATE=$sf MW_KEEP_LAB=0 bash "$0" --inner || st=$?; echo "__EXIT__ $st")
    is "$rc" "$([ "$_tap_failed" = 0 ] && echo 0 || echo 1)" "harness run exited with the right status"
    lab=$(sed -n 's/^LAB=//p' "$sf")
    ok "lab directory removed" test ! -e "${lab:-/nonexistent}"
    check_clean "$sf" "after a normal run"

    # 2. killed with SIGTERM while everything runs; MW_KEEP_LAB=1 keeps the lab
    : > "$sf"
    SELFTEST_STATE=$sf MW_KEEP_LAB=1 bash "$0" --inner-hold > "$sf.out" 2>&1 &
    local hp=$! i
    for ((i = 0; i < 600; i++)); do
        grep -qx READY "$sf" && break
        _lab_alive "$hp" || break
        sleep 0.1
    done
    ok "held run got everything started" grep -qx READY "$sf"
    kill -TERM "$hp" 2>/dev/null || true
    rc=0; wait "$hp" || rc=$?
    is "$rc" 143 "killed run exits 143"
    like "$(cat "$sf.out")" 'killing stragglers' "stray child killed as straggler"
    lab=$(sed -n 's/^LAB=//p' "$sf")
    ok "MW_KEEP_LAB=1 kept the lab of the failed run" test -d "${lab:-/nonexistent}/postfix"
    check_clean "$sf" "after SIGTERM"
    if [ -n "$lab" ] && [[ $lab == /tmp/mwlab.* ]]; then rm -rf "$lab"; fi
    rm -f "$sf.out"
    done_testing
}

case ${1:-} in
    --inner) inner ;;
    --inner-hold) inner_hold ;;
    *) outer ;;
esac
