#!/bin/bash
# t/fleet.sh -- several MX hosts, one Redis ([redis], lib/mw_redis.c):
#   1. two mailwarden daemons share one redis-server: a triplet greylisted
#      on host A passes on host B after the delay; auto-allowlisting
#      counts the passes of both (driven with t/milter_raw.py);
#   2. an ACL user limited to what greylisting needs (the line in
#      README.md), its password from a password_file; a key outside its
#      prefix is refused (NOPERM); a wrong password: one clear log line,
#      fail_mode, the process goes on;
#   3. Redis Sentinel: 1 master, 1 replica, 3 sentinels (quorum 2,
#      down-after-milliseconds 1000).  Under a trickle of RCPTs the master
#      is SIGKILLed: the RCPTs answered by fail_mode, the time until
#      decisions come from Redis again and the longest RCPT are reported
#      (not asserted); the new master must be found without help, and the
#      old master, restarted, becomes a replica without breaking anything.
# About 30 s.
set -eu
. "$(dirname "$0")/lib.sh"

[ -x "$DRIVER" ] || skip_all "test/greylist_driver not built"
command -v redis-server >/dev/null || skip_all "redis-server not installed"
command -v redis-sentinel >/dev/null || skip_all "redis-sentinel not installed"
lab_init
start_redis

# The other checks stay out of the way ([NAME] enabled = no for each).
OTHERS=
for m in iprev helo dnsbl spf dkim dmarc sender message tls; do
    printf '[%s]\nenabled = no\n' "$m" > "$LAB/probe.ini"
    if "$DRIVER" "$LAB/probe.ini" </dev/null | grep -q '^config error'; then continue; fi
    OTHERS="$OTHERS[$m]"$'\n''enabled = no'$'\n'
done

# conf FILE [DELAY]: [milter] [dns] [greylist] lines (delay DELAY, 1 s),
# then stdin (more [greylist] keys, [redis] ...)
conf() {
    local delay=${2:-1}
    {
        printf '%s' "$OTHERS"
        cat <<'EOF'
[milter]
authserv_id = mx.mailwarden.test
[dns]
nameservers = 127.0.0.1:@DNSFAULT_PORT@
timeout_ms = 50
tries = 1
[greylist]
enabled = yes
mode = all
fail_mode = closed
EOF
        echo "delay = $delay"
        cat
    } | mw_config_write "$1"
}

# rcpt NAME IP FROM TO: one transaction up to RCPT through a driver
rcpt() {
    drv "$1" connect "$2" >/dev/null
    drv "$1" mail "<$3>" >/dev/null
    drv "$1" rcpt "<$4>"
}

GREY='^451 4\.7\.1 Greylisted'
FAILMODE='451 4.3.0 Greylisting service unavailable, please try again later'

# --------------------------------------- 1. two daemons, one Redis ---

if [ -x "$MW_DAEMON" ] && [ "$(id -u)" = 0 ]; then
    PA=$(lab_port) PB=$(lab_port)
    for h in A B; do
        p=PA; [ $h = B ] && p=PB
        # delay 3 s: each step starts a python client, and the machine
        # may be busy; B's "too soon" must come within the delay
        conf "$LAB/mw$h.ini" 3 <<EOF
autoallow_after = 2
[milter]
socket = inet:${!p}@127.0.0.1
user = nobody
[redis]
server = 127.0.0.1:@REDIS_PORT@
EOF
        lab_spawn "mw$h" "$MW_DAEMON" -f -c "$LAB/mw$h.ini"
        for ((i = 0; i < 200; i++)); do
            _lab_socket_ready "inet:${!p}@127.0.0.1" && break
            sleep 0.05
        done
    done
    # mrcpt PORT IP FROM TO: the daemon's answer to RCPT, as milter_raw prints it
    mrcpt() {
        printf '%s\n' negotiate "connect mail.example.org $2" \
            'helo mail.example.org' "mail <$3>" "rcpt <$4>" quit |
            python3 "$T_DIR/milter_raw.py" "inet:$1@127.0.0.1" - 2>&1 |
            sed -n 's/^rcpt[^>]*-> //p'
    }
    like "$(mrcpt "$PA" 192.0.2.44 fleet@example.org z@example.net)" \
        '451 4\.7\.1 Greylisted: first delivery attempt' \
        "daemon A greylists a new triplet"
    like "$(mrcpt "$PB" 192.0.2.45 fleet@example.org z@example.net)" \
        '451 4\.7\.1 Greylisted: retried too soon' \
        "daemon B sees the same triplet (too early)"
    sleep 3.2
    is "$(mrcpt "$PB" 192.0.2.46 fleet@example.org z@example.net)" c \
        "daemon B accepts the retry after the delay"
    # auto-allowlist (autoallow_after = 2): one pass on each host
    mrcpt "$PA" 192.0.2.47 second@example.org z@example.net >/dev/null
    sleep 3.2
    is "$(mrcpt "$PA" 192.0.2.47 second@example.org z@example.net)" c \
        "daemon A passes a second triplet of the network"
    is "$(redis_cmd GET mw:gl:a:192.0.2.0/24)" 2 \
        "the network's pass counter has the passes of both daemons"
    is "$(mrcpt "$PB" 192.0.2.48 brand-new@example.org z@example.net)" c \
        "daemon B: the network is auto-allowlisted (passes counted on A and B)"
    for h in A B; do
        ok "daemon $h is still running" _lab_alive "$(lab_pid "mw$h")"
        lab_stop "mw$h"
    done
    # a daemon with a wrong password: fail_mode, one log line, no restart loop
    PC=$(lab_port)
    printf 'wrong\n' > "$LAB/daemon-wrong.pw"
    chmod 600 "$LAB/daemon-wrong.pw"
    conf "$LAB/mwC.ini" <<EOF
[milter]
socket = inet:$PC@127.0.0.1
user = nobody
[redis]
server = 127.0.0.1:@REDIS_PORT@
username = nosuchuser
password_file = @LAB@/daemon-wrong.pw
EOF
    lab_spawn mwC "$MW_DAEMON" -f -c "$LAB/mwC.ini"
    for ((i = 0; i < 200; i++)); do
        _lab_socket_ready "inet:$PC@127.0.0.1" && break
        sleep 0.05
    done
    answers=
    for ((i = 0; i < 5; i++)); do
        answers="$answers$(mrcpt "$PC" 192.0.2.49 w$i@example.org z@example.net)"$'\n'
    done
    is "$(grep -c '451 4\.3\.0 Greylisting service unavailable' <<<"$answers")" 5 \
        "daemon, wrong password: every RCPT answered by fail_mode (5 of 5)"
    is "$(grep -c 'refused AUTH as user nosuchuser: WRONGPASS' "$LAB/mwC.log" || true)" 1 \
        "daemon, wrong password: one clear log line"
    ok "daemon, wrong password: still running" _lab_alive "$(lab_pid mwC)"
    unlike "$(cat "$LAB/mwC.log")" 'worker [0-9]+ (killed|exited)|worker restarted' \
        "daemon, wrong password: its worker did not restart"
    lab_stop mwC
    unlike "$(cat "$LAB"/mwA.log "$LAB"/mwB.log "$LAB"/mwC.log)" 'Sanitizer|runtime error' \
        "no sanitizer report from the daemons"
else
    skip "two daemons sharing one Redis" "needs root and milter/mailwarden"
fi

# ------------------------------------------------- 2. ACL, passwords ---

redis_cmd FLUSHDB >/dev/null
# The ACL line of README.md ("Several MX hosts").
redis_cmd ACL SETUSER mailwarden reset on '>fleet-s3cret' '~mw:gl:*' \
    resetchannels -@all +evalsha +eval +time +get +hget +hset +hincrby \
    +incr +expire +role +select +ping >/dev/null
printf 'fleet-s3cret\n' > "$LAB/redis.pw"
chmod 600 "$LAB/redis.pw"
conf "$LAB/acl.ini" <<'EOF'
[redis]
server = 127.0.0.1:@REDIS_PORT@
username = mailwarden
password_file = @LAB@/redis.pw
EOF
drv_start acl "$LAB/acl.ini"
like "$(rcpt acl 192.0.2.60 acl@example.org z@example.net)" "$GREY" \
    "ACL user (password from password_file): greylisting works"
is "$(redis_cmd EXISTS 'mw:gl:t:192.0.2.0/24:acl@example.org:z@example.net')" 1 \
    "... and recorded the triplet under mw:gl:"
sleep 1.2
is "$(rcpt acl 192.0.2.60 acl@example.org z@example.net)" continue \
    "ACL user: the retry passes"
drv_stop acl

conf "$LAB/aclprefix.ini" <<'EOF'
prefix = other:
[redis]
server = 127.0.0.1:@REDIS_PORT@
username = mailwarden
password_file = @LAB@/redis.pw
EOF
drv_start aclp "$LAB/aclprefix.ini"
is "$(rcpt aclp 192.0.2.61 acl@example.org z@example.net)" "$FAILMODE" \
    "ACL user, a key outside ~mw:gl:*: refused by Redis, fail_mode answers"
like "$(cat "$LAB/aclp.err")" 'NOPERM' "... and the log says NOPERM"
drv_stop aclp

printf 'not-the-password\n' > "$LAB/wrong.pw"
chmod 600 "$LAB/wrong.pw"
conf "$LAB/wrong.ini" <<'EOF'
[redis]
server = 127.0.0.1:@REDIS_PORT@
username = mailwarden
password_file = @LAB@/wrong.pw
reconnect_interval_ms = 300
EOF
drv_start wrong "$LAB/wrong.ini"
answers=
for ((i = 0; i < 10; i++)); do
    answers="$answers$(rcpt wrong 192.0.2.62 w$i@example.org z@example.net)"$'\n'
    sleep 0.1
done
is "$(grep -c "^$FAILMODE\$" <<<"$answers")" 10 \
    "wrong password: every RCPT is answered by fail_mode (10 of 10)"
like "$(cat "$LAB/wrong.err")" \
    'redis: 127\.0\.0\.1:[0-9]+: 127\.0\.0\.1:[0-9]+ refused AUTH as user mailwarden: WRONGPASS' \
    "wrong password: the log says who was refused and why"
n=$(grep -c 'refused AUTH' "$LAB/wrong.err" || true)
ok "wrong password: logged once for the outage, not per RCPT ($n line(s))" \
    test "$n" -eq 1
ok "wrong password: the process goes on (no crash)" _lab_alive "${DRV_PID[wrong]}"
drv_stop wrong
redis_cmd ACL DELUSER mailwarden >/dev/null

# --------------------------------------------------- 3. Sentinel ---

MP=$(lab_port) RP=$(lab_port)
SP=($(lab_port) $(lab_port) $(lab_port))
mkdir -p "$LAB/master" "$LAB/replica"
for n in master replica; do
    p=$MP; [ $n = replica ] && p=$RP
    cat > "$LAB/$n/redis.conf" <<EOF
bind 127.0.0.1
port $p
protected-mode no
dir $LAB/$n
save ""
appendonly no
EOF
done
echo "replicaof 127.0.0.1 $MP" >> "$LAB/replica/redis.conf"
lab_spawn redis-master redis-server "$LAB/master/redis.conf"
lab_spawn redis-replica redis-server "$LAB/replica/redis.conf"
for i in 0 1 2; do
    mkdir -p "$LAB/s$i"
    cat > "$LAB/s$i/sentinel.conf" <<EOF
bind 127.0.0.1
port ${SP[$i]}
protected-mode no
dir $LAB/s$i
sentinel monitor mwm 127.0.0.1 $MP 2
sentinel down-after-milliseconds mwm 1000
sentinel failover-timeout mwm 5000
sentinel parallel-syncs mwm 1
EOF
    lab_spawn "sentinel$i" redis-sentinel "$LAB/s$i/sentinel.conf"
done
scli() { redis-cli -h 127.0.0.1 -p "$1" "${@:2}"; }
# Ready: the replica is in sync and every sentinel knows the replica and
# the two other sentinels.
ready=0
for ((i = 0; i < 150; i++)); do
    ready=1
    scli "$RP" INFO replication 2>/dev/null | grep -q 'master_link_status:up' || ready=0
    for s in "${SP[@]}"; do
        [ "$(scli "$s" SENTINEL replicas mwm 2>/dev/null | grep -c "^$RP\$")" -ge 1 ] || ready=0
        [ "$(scli "$s" SENTINEL sentinels mwm 2>/dev/null | grep -cx 'name')" -ge 2 ] || ready=0
    done
    [ $ready = 1 ] && break
    sleep 0.2
done
ok "1 master, 1 replica, 3 sentinels up and aware of each other" test $ready = 1

conf "$LAB/sentinel.ini" <<EOF
[redis]
sentinels = 127.0.0.1:${SP[0]}, 127.0.0.1:${SP[1]}, 127.0.0.1:${SP[2]}
master_name = mwm
connect_timeout_ms = 300
timeout_ms = 300
reconnect_interval_ms = 250
EOF
drv_start sen "$LAB/sentinel.ini"
n=0
for ((i = 0; i < 5; i++)); do
    [[ $(rcpt sen 192.0.2.70 pre$i@example.org z@example.net) =~ $GREY ]] && n=$((n + 1))
done
is "$n" 5 "through the sentinels: decisions come from Redis (5 of 5)"
is "$(drv sen metrics)" \
    "mailwarden_redis_failovers_total 0 | mailwarden_redis_master{address=\"127.0.0.1:$MP\"} 1 | mailwarden_redis_seconds_without_master_total 0.000" \
    "metrics: the master in use, no failover, no time without a master"

# The trickle: a RCPT every 100 ms, each a new triplet.  SIGKILL the master
# and go on until 10 decisions in a row came from Redis again (60 s at most).
kill -KILL "$(lab_pid redis-master)"
t_kill=$(date +%s%N)
nfail=0 nredis=0 nother=0 streak=0 maxms=0 t_back= total=0
while [ $streak -lt 10 ] && [ $(( ($(date +%s%N) - t_kill) / 1000000 )) -lt 60000 ]; do
    a=$(rcpt sen 192.0.2.71 t$total@example.org z@example.net)
    ms=$(drv sen time)
    total=$((total + 1))
    maxms=$(awk -v a="$ms" -v b="$maxms" 'BEGIN { print (a > b) ? a : b }')
    if [[ $a =~ $GREY ]]; then
        nredis=$((nredis + 1)); streak=$((streak + 1))
        [ -n "$t_back" ] || t_back=$(date +%s%N)
    elif [ "$a" = "$FAILMODE" ]; then
        nfail=$((nfail + 1)); streak=0; t_back=
    else
        nother=$((nother + 1)); streak=0; t_back=
        diag "unexpected answer: $a"
    fi
    sleep 0.1
done
if [ -n "$t_back" ]; then back_ms=$(( (t_back - t_kill) / 1000000 )); else back_ms=never; fi
note "failover: $total RCPTs, $nfail answered by fail_mode, Redis decisions again $back_ms ms after the SIGKILL, longest RCPT $maxms ms (bound connect_timeout_ms + timeout_ms = 600)"
is "$nother" 0 "during the failover every RCPT got a Redis or a fail_mode answer"
ok "the driver found the new master by itself (10 Redis decisions in a row)" \
    test $streak -ge 10
like "$(drv sen metrics)" \
    "^mailwarden_redis_failovers_total 1 \\| mailwarden_redis_master\\{address=\"127\\.0\\.0\\.1:$RP\"\\} 1 \\| mailwarden_redis_seconds_without_master_total [0-9.]+\$" \
    "metrics: the replica is the master now, one failover"
note "metrics after the failover: $(drv sen metrics)"
is "$(scli "$RP" EXISTS "mw:gl:t:192.0.2.0/24:t$((total - 1))@example.org:z@example.net")" 1 \
    "the last triplet is recorded on the new master"
like "$(cat "$LAB/sen.err")" "master mwm is now 127\\.0\\.0\\.1:$RP \\(was 127\\.0\\.0\\.1:$MP\\): failover" \
    "the failover is logged"

# The old master comes back: the sentinels make it a replica.
lab_spawn redis-master2 redis-server "$LAB/master/redis.conf"
nredis=0 role= total=0
for ((i = 0; i < 40; i++)); do
    total=$((total + 1))
    [[ $(rcpt sen 192.0.2.72 back$i@example.org z@example.net) =~ $GREY ]] && nredis=$((nredis + 1))
    role=$(scli "$MP" ROLE 2>/dev/null | head -n 1)
    [ $i -ge 19 ] && [ "$role" = slave ] && break
    sleep 0.25
done
is "$nredis" "$total" "old master restarted: every RCPT still decided by Redis ($nredis)"
is "$role" slave "the old master is a replica now"
like "$(drv sen metrics)" "failovers_total 1 " "no failover counted for the restart"
ok "the driver is still running" _lab_alive "${DRV_PID[sen]}"
drv_stop sen

done_testing
