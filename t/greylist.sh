#!/bin/bash
# t/greylist.sh -- greylisting (lib/mw_greylist.c) against a real
# redis-server on loopback.  Transactions are driven through
# test/greylist_driver (one long-lived process per "MX host", fed over
# FIFOs), so Redis can be killed, stopped and restarted under it.
# Delays are 1 s; the whole script takes about 15 s.
set -eu
. "$(dirname "$0")/lib.sh"

[ -x "$DRIVER" ] || skip_all "test/greylist_driver not built"
command -v redis-server >/dev/null || skip_all "redis-server not installed"
lab_init
start_redis

# ------------------------------------------------------------ helpers ---

# drv_start, drv, drv_stop: t/lib.sh

# rcpt NAME IP FROM TO: one transaction up to RCPT, prints the RCPT answer
rcpt() {
    local name=$1 ip=$2 from=$3 to=$4
    drv "$name" connect "$ip" >/dev/null
    drv "$name" helo mail.example.org >/dev/null
    drv "$name" mail "<$from>" >/dev/null
    drv "$name" rcpt "<$to>"
}

# The other checks stay out of the way ([NAME] enabled = no for each that
# has the key): what they find is set through the driver (set iprev_pass...).
OTHERS=
for m in iprev helo dnsbl spf dkim dmarc; do
    printf '[%s]\nenabled = no\n' "$m" > "$LAB/probe.ini"
    if "$DRIVER" "$LAB/probe.ini" </dev/null | grep -q '^config error'; then continue; fi
    OTHERS="$OTHERS[$m]"$'\n''enabled = no'$'\n'
done

# conf FILE [EXTRA [greylist] LINES...]
conf() {
    local file=$1 line; shift
    {
        printf '%s' "$OTHERS"
        cat <<'EOF'
[milter]
authserv_id = mx.mailwarden.test
trusted_networks = 127.0.0.0/8
[policy]
reject_score = 10
[dns]
; nothing listens there: any DNS lookup of another check fails at once
nameservers = 127.0.0.1:@DNSFAULT_PORT@
timeout_ms = 50
tries = 1
[greylist]
enabled = yes
delay = 1
server = 127.0.0.1:@REDIS_PORT@
EOF
        for line in "$@"; do printf '%s\n' "$line"; done
    } | {
        # a server line given replaces the default one (a key set twice
        # is an error)
        if printf '%s\n' "$@" | grep -q '^server *='; then
            sed '0,/^server = 127\.0\.0\.1:@REDIS_PORT@$/{//d}'
        else
            cat
        fi
    } | mw_config_write "$file"
}

GREY_NEW='451 4.7.1 Greylisted: first delivery attempt for this sender and recipient, please try again in 1 second'
GREY_EARLY='451 4.7.1 Greylisted: retried too soon, please try again in 1 second'

# ------------------------------------------------------- basic cycle ---

conf "$LAB/all.ini" "mode = all" "autoallow_after = 3"
drv_start a "$LAB/all.ini"
fds0=$(drv a fds)

is "$(rcpt a 192.0.2.7 alice@example.org bob@example.net)" "$GREY_NEW" \
    "first attempt: 451 4.7.1 with the retry time"
is "$(drv a rcpt '<postmaster@example.net>')" continue \
    "postmaster@ is not greylisted"
is "$(drv a rcpt '<Abuse@example.net>')" continue \
    "abuse@ is not greylisted"
is "$(rcpt a 192.0.2.7 alice@example.org bob@example.net)" "$GREY_EARLY" \
    "retry before the delay: 451 4.7.1 retried too soon"
key='mw:gl:t:192.0.2.0/24:alice@example.org:bob@example.net'
like "$(redis_cmd HGET "$key" first)" '^[0-9]{13}$' \
    "triplet key $key records the first attempt (ms)"
ttl=$(redis_cmd TTL "$key")
ok "unseen triplet expires after retry_window (TTL $ttl, 2 days)" \
    test "$ttl" -gt 172000 -a "$ttl" -le 172800
sleep 1.2
is "$(rcpt a 192.0.2.7 Alice+Lists@Example.ORG bob@example.net)" continue \
    "retry after the delay (sender with +ext, other case): accepted"
# at least the 1.2 s slept; more on a loaded machine (no timed assertion)
like "$(drv a eom)" '^continue \| X-Greylist: delayed ([1-9] seconds?|[1-9][0-9]+ seconds) by mailwarden at mx\.mailwarden\.test$' \
    "the delivered message says how long it was delayed"
ttl=$(redis_cmd TTL "$key")
ok "passed triplet lives pass_ttl (TTL $ttl, 35 days)" \
    test "$ttl" -gt 3023000 -a "$ttl" -le 3024000
is "$(rcpt a 192.0.2.200 alice@example.org bob@example.net)" continue \
    "a /24 neighbour (192.0.2.200) matches the passed triplet"
is "$(drv a eom)" continue "no X-Greylist when this message was not delayed"
is "$(redis_cmd HGET "$key" n)" 2 "the triplet counts accepted messages"
is "$(rcpt a 192.0.3.7 alice@example.org bob@example.net)" "$GREY_NEW" \
    "the next /24 (192.0.3.7) is another triplet"
is "$(drv a rcpt '<carol@example.net>')" "$GREY_NEW" \
    "each recipient is its own triplet"

# ----------------------------------------------- sender normalisation ---

is "$(rcpt a 198.51.100.1 prvs=1123abcdef=news@list.example.org u@example.net)" "$GREY_NEW" \
    "BATV sender: first attempt greylisted"
sleep 1.2
is "$(rcpt a 198.51.100.1 prvs=2456fedcba=news@list.example.org u@example.net)" continue \
    "BATV sender with another tag matches"
is "$(rcpt a 198.51.100.1 news@list.example.org u@example.net)" continue \
    "... and so does the bare address"
is "$(rcpt a 198.51.100.1 SRS0=HHH=TT=orig.example=joe@fwd.example u@example.net)" "$GREY_NEW" \
    "SRS0 sender: first attempt greylisted"
sleep 1.2
is "$(rcpt a 198.51.100.1 SRS0=xyz=ZZ=orig.example=joe@fwd.example u@example.net)" continue \
    "SRS0 with another hash and timestamp matches"
is "$(rcpt a 198.51.100.1 'SRS1=ab=fwd1.example==h=tt=orig.example=joe@fwd2.example' u@example.net)" continue \
    "SRS1 wrapping the same original matches"
is "$(redis_cmd EXISTS 'mw:gl:t:198.51.100.0/24:joe@orig.example:u@example.net')" 1 \
    "SRS is keyed on the original address"
is "$(rcpt a 198.51.100.1 list-bounces-12345-u=example.net@lists.example u@example.net)" "$GREY_NEW" \
    "VERP sender: first attempt greylisted"
sleep 1.2
is "$(rcpt a 198.51.100.1 list-bounces-67890-u=example.net@lists.example u@example.net)" continue \
    "VERP sender with another number matches"

# ------------------------------------------------------------- IPv6 ---

is "$(rcpt a 2001:db8:1:2::25 v6@example.org bob@example.net)" "$GREY_NEW" \
    "IPv6 client: first attempt greylisted"
sleep 1.2
is "$(rcpt a 2001:db8:1:2:ffff::1 v6@example.org bob@example.net)" continue \
    "an IPv6 /64 neighbour matches"
is "$(redis_cmd EXISTS 'mw:gl:t:2001:db8:1:2::/64:v6@example.org:bob@example.net')" 1 \
    "IPv6 key names the /64"

# ---------------------------------------------------- auto-allowlist ---

redis_cmd FLUSHDB >/dev/null
for i in 1 2 3; do
    rcpt a 203.0.113.$i sender$i@example.org r@example.net >/dev/null
done
sleep 1.2
for i in 1 2; do
    is "$(rcpt a 203.0.113.9 sender$i@example.org r@example.net)" continue \
        "auto-allowlist: pass $i of 3"
done
is "$(rcpt a 203.0.113.9 new@example.org r@example.net)" "$GREY_NEW" \
    "after 2 passes the network is still greylisted"
is "$(rcpt a 203.0.113.9 sender3@example.org r@example.net)" continue \
    "auto-allowlist: pass 3 of 3"
is "$(redis_cmd GET mw:gl:a:203.0.113.0/24)" 3 "the network's pass counter is 3"
is "$(rcpt a 203.0.113.77 brand-new@example.org r@example.net)" continue \
    "after 3 passes a new triplet from the network is accepted at once"
is "$(redis_cmd EXISTS 'mw:gl:t:203.0.113.0/24:brand-new@example.org:r@example.net')" 0 \
    "... and not recorded"
ttl=$(redis_cmd TTL mw:gl:a:203.0.113.0/24)
ok "the allowlist entry lives autoallow_ttl (TTL $ttl)" \
    test "$ttl" -gt 3023000 -a "$ttl" -le 3024000

# -------------------------------------------------------- skip rules ---

is "$(rcpt a 127.0.0.1 x@example.org y@example.net)" continue \
    "trusted network: not greylisted"
drv a connect 192.0.2.50 >/dev/null
drv a auth alice >/dev/null
drv a mail '<x@example.org>' >/dev/null
is "$(drv a rcpt '<y@example.net>')" continue "authenticated client: not greylisted"
drv a connect 192.0.2.51 >/dev/null
drv a set dnswl 1 >/dev/null
drv a mail '<x@example.org>' >/dev/null
is "$(drv a rcpt '<y@example.net>')" continue "client on a DNS allowlist: not greylisted"
drv a connect 192.0.2.52 >/dev/null
drv a set score 12 >/dev/null
drv a mail '<x@example.org>' >/dev/null
like "$(drv a rcpt '<y@example.net>')" '^550 5\.7\.1 ' \
    "recipient the policy rejects: 550, not 451"
is "$(redis_cmd EXISTS 'mw:gl:t:192.0.2.0/24:x@example.org:y@example.net')" 0 \
    "... and no triplet is recorded for it"
is "$(drv a connect '')" continue "client without an IP address"
drv a mail '<x@example.org>' >/dev/null
is "$(drv a rcpt '<y@example.net>')" continue "... is not greylisted"

# mode = suspicious
conf "$LAB/susp.ini" "mode = suspicious" "only_if_score_above = 2"
drv_start s "$LAB/susp.ini"
suspicious() {  # suspicious IPREV SPF SCORE FROM
    drv s connect 192.0.2.60 >/dev/null
    drv s set iprev_pass "$1" >/dev/null
    drv s set score "$3" >/dev/null
    drv s mail "<$4>" >/dev/null
    drv s set spf "$2" >/dev/null
    drv s rcpt '<y@example.net>'
}
is "$(suspicious 1 pass 0 s1@example.org)" continue \
    "suspicious: iprev pass + SPF pass + score 0: not greylisted"
is "$(suspicious 1 pass 2 s2@example.org)" continue \
    "suspicious: ... score 2 (= only_if_score_above): not greylisted"
is "$(suspicious 1 pass 2.5 s3@example.org)" "$GREY_NEW" \
    "suspicious: score 2.5 (above): greylisted"
is "$(suspicious 0 pass 0 s4@example.org)" "$GREY_NEW" \
    "suspicious: no iprev pass: greylisted"
is "$(suspicious 1 fail 0 s5@example.org)" "$GREY_NEW" \
    "suspicious: SPF fail: greylisted"
is "$(suspicious 1 none 0 s6@example.org)" "$GREY_NEW" \
    "suspicious: no SPF record: greylisted"
drv_stop s

# dry run
conf "$LAB/dry.ini" "mode = all"
sed -i 's/^\[milter\]$/[milter]\ndry_run = yes/' "$LAB/dry.ini"
drv_start d "$LAB/dry.ini"
is "$(rcpt d 192.0.2.70 dry@example.org y@example.net)" continue \
    "dry_run: a new triplet is not refused"
like "$(drv d eom)" 'X-Mailwarden-Dry-Run: would tempfail: 451 4\.7\.1 Greylisted: first delivery attempt' \
    "dry_run: the message says it would have been greylisted"
is "$(redis_cmd EXISTS 'mw:gl:t:192.0.2.0/24:dry@example.org:y@example.net')" 1 \
    "dry_run: the triplet is recorded"
drv_stop d

# read-only sessions (mailwarden-check): the answer a triplet would get,
# nothing recorded
drv a readonly 1 >/dev/null
is "$(rcpt a 192.0.2.90 ro@example.org y@example.net)" "$GREY_NEW" \
    "read-only: a new triplet shows the 451 it would get"
is "$(drv a notes)" "triplet mw:gl:t:192.0.2.0/24:ro@example.org:y@example.net (read-only: nothing is recorded) | new triplet: first attempt, a retry after 1 s will pass" \
    "read-only: the notes name the triplet and what happens"
is "$(redis_cmd EXISTS 'mw:gl:t:192.0.2.0/24:ro@example.org:y@example.net')" 0 \
    "read-only: nothing is recorded"
drv a readonly 0 >/dev/null
rcpt a 192.0.2.90 ro@example.org y@example.net >/dev/null
drv a readonly 1 >/dev/null
is "$(rcpt a 192.0.2.90 ro@example.org y@example.net)" "$GREY_EARLY" \
    "read-only: an early retry shows the 451"
sleep 1.2
is "$(rcpt a 192.0.2.90 ro@example.org y@example.net)" continue \
    "read-only: a retry after the delay would pass"
like "$(drv a notes)" '\| passes: first seen 1 s ago \(delay 1 s\); network passes: 1$' \
    "read-only: ... and the notes say so"
is "$(redis_cmd HGET 'mw:gl:t:192.0.2.0/24:ro@example.org:y@example.net' pass)" "" \
    "read-only: the triplet is not passed"
drv a readonly 0 >/dev/null
is "$(rcpt a 192.0.2.90 ro@example.org y@example.net)" continue \
    "the real retry passes"
is "$(drv a eom)" "continue | X-Greylist: delayed 1 second by mailwarden at mx.mailwarden.test" \
    "... and is marked delayed"

# --------------------------------------------------- TTLs, key shapes ---

nottl=
while IFS= read -r k; do
    [ -n "$k" ] || continue
    t=$(redis_cmd TTL "$k")
    if [ "$t" -le 0 ]; then nottl="$nottl $k($t)"; fi
done < <(redis_cmd --scan --pattern 'mw:gl:*')
nkeys=$(redis_cmd --scan --pattern 'mw:gl:*' | wc -l)
is "$nottl" "" "all $nkeys keys have a TTL"
is "$(redis_cmd --scan | grep -vc '^mw:gl:[at]:' || true)" 0 \
    "every key is under the prefix"

# --------------------------------------- two MX hosts share one Redis ---

drv_start b "$LAB/all.ini"
is "$(rcpt a 192.0.2.80 shared@example.org z@example.net)" "$GREY_NEW" \
    "host A greylists a new triplet"
is "$(rcpt b 192.0.2.81 shared@example.org z@example.net)" "$GREY_EARLY" \
    "host B sees the same triplet: too early"
sleep 1.2
is "$(rcpt b 192.0.2.82 shared@example.org z@example.net)" continue \
    "host B accepts the retry after the delay"
is "$(rcpt a 192.0.2.80 shared@example.org z@example.net)" continue \
    "host A agrees"

# a burst: 40 triplets, both hosts retry each at the same time
redis_cmd FLUSHDB >/dev/null
conf "$LAB/burst.ini" "mode = all" "autoallow_after = 0"
drv_start p "$LAB/burst.ini"
drv_start q "$LAB/burst.ini"
burst() {  # burst NAME: connect + 40 RCPTs, output to $LAB/burst.NAME
    local name=$1 i
    {
        drv "$name" connect 192.0.2.90 >/dev/null
        drv "$name" mail '<burst@example.org>' >/dev/null
        for ((i = 0; i < 40; i++)); do drv "$name" rcpt "<r$i@example.net>"; done
    } >"$LAB/burst.$name"
}
burst p
is "$(grep -c '^451 4\.7\.1 Greylisted: first' "$LAB/burst.p")" 40 "burst: 40 new triplets"
sleep 1.2
burst p & bp=$!
burst q & bq=$!
wait $bp $bq
is "$(grep -c '^continue$' "$LAB/burst.p")" 40 "burst: host A accepts all 40 retries"
is "$(grep -c '^continue$' "$LAB/burst.q")" 40 "burst: host B accepts all 40 retries"
is "$(redis_cmd GET mw:gl:a:192.0.2.0/24)" 40 \
    "each triplet passed exactly once (atomic check-and-record)"
drv_stop p
drv_stop q

# --------------------------------------------------- Redis goes away ---

redis_cmd FLUSHDB >/dev/null    # 192.0.2.0/24 is auto-allowlisted by now

conf "$LAB/closed.ini" "mode = all" "fail_mode = closed" "timeout_ms = 300" \
    "connect_timeout_ms = 300" "reconnect_interval_ms = 500"
conf "$LAB/open.ini" "mode = all" "timeout_ms = 300" "connect_timeout_ms = 300" \
    "reconnect_interval_ms = 500"
drv_start o "$LAB/open.ini"
drv_start c "$LAB/closed.ini"
is "$(rcpt o 192.0.2.100 down@example.org z@example.net)" "$GREY_NEW" \
    "fail-open host works before the outage"
is "$(rcpt c 192.0.2.101 down2@example.org z@example.net)" "$GREY_NEW" \
    "fail-closed host works before the outage"
fds_o=$(drv o fds)
fds_c=$(drv c fds)

kill_redis
is "$(rcpt o 192.0.2.100 down3@example.org z@example.net)" continue \
    "Redis killed: fail_mode = open accepts"
like "$(drv o eom)" '^continue \| X-Greylist: unchecked \(greylist database unavailable\) by mailwarden at mx\.mailwarden\.test$' \
    "... and says so in X-Greylist"
is "$(rcpt c 192.0.2.101 down4@example.org z@example.net)" \
    "451 4.3.0 Greylisting service unavailable, please try again later" \
    "Redis killed: fail_mode = closed tempfails with 451 4.3.0"
is "$(drv c rcpt '<postmaster@example.net>')" continue \
    "... but postmaster@ still gets through"
for ((i = 0; i < 20; i++)); do rcpt c 192.0.2.101 x$i@example.org z@example.net >/dev/null; done
t=$(drv c time)
ok "while Redis is down a RCPT does not wait (last took $t ms)" \
    awk -v t="$t" 'BEGIN { exit !(t < 300) }'

start_redis
sleep 0.7   # reconnect_interval_ms = 500
is "$(rcpt o 192.0.2.100 back@example.org z@example.net)" "$GREY_NEW" \
    "Redis back: the fail-open host greylists again by itself"
is "$(rcpt c 192.0.2.101 back@example.org z@example.net)" "$GREY_EARLY" \
    "Redis back: the fail-closed host too (and sees the same triplet)"
is "$(drv o fds)" "$fds_o" "fail-open host: no fd leaked ($fds_o open)"
is "$(drv c fds)" "$fds_c" "fail-closed host: no fd leaked ($fds_c open)"
grep -q 'is reachable again' "$LAB/o.err" && pass "the recovery is logged" ||
    fail "the recovery is logged" "$(cat "$LAB/o.err")"

# a hung Redis (SIGSTOP): every RCPT bounded by timeout_ms
rpid=$(cat "$LAB/redis/redis.pid")
kill -STOP "$rpid"
lab_on_cleanup "kill -CONT $rpid"
is "$(rcpt o 192.0.2.100 hung@example.org z@example.net)" continue \
    "Redis hung: fail-open accepts"
t=$(drv o time)
ok "... after about timeout_ms = 300 ($t ms)" \
    awk -v t="$t" 'BEGIN { exit !(t >= 250 && t < 1000) }'
is "$(rcpt c 192.0.2.101 hung@example.org z@example.net)" \
    "451 4.3.0 Greylisting service unavailable, please try again later" \
    "Redis hung: fail-closed tempfails"
t=$(drv c time)
ok "... within connect_timeout_ms + timeout_ms ($t ms)" \
    awk -v t="$t" 'BEGIN { exit !(t < 1000) }'
kill -CONT "$rpid"
sleep 0.7
is "$(rcpt o 192.0.2.100 hung2@example.org z@example.net)" "$GREY_NEW" \
    "Redis resumed: greylisting again"
is "$(drv o fds)" "$fds_o" "no fd leaked after the hang"

# the server lost the script cache (restart without a flush of the data
# would do the same): EVALSHA -> NOSCRIPT -> EVAL
redis_cmd SCRIPT FLUSH >/dev/null
is "$(rcpt o 192.0.2.100 noscript@example.org z@example.net)" "$GREY_NEW" \
    "script cache flushed: falls back to EVAL"
is "$(rcpt o 192.0.2.100 noscript2@example.org z@example.net)" "$GREY_NEW" \
    "... and EVALSHA works again"

# a key of the wrong type (an admin's mistake): an error, not a crash
redis_cmd SET 'mw:gl:t:192.0.2.0/24:wrong@example.org:z@example.net' x >/dev/null
is "$(rcpt c 192.0.2.101 wrong@example.org z@example.net)" \
    "451 4.3.0 Greylisting service unavailable, please try again later" \
    "a key of the wrong type: fail_mode applies"
is "$(rcpt c 192.0.2.101 fine@example.org z@example.net)" "$GREY_NEW" \
    "... and the next triplet works at once"

drv_stop o
drv_stop c
drv_stop a
drv_stop b

# ------------------------------------ through Postfix and the daemon ---

if [ -x "$MW_DAEMON" ] && [ "$(id -u)" = 0 ] && command -v postfix >/dev/null &&
   command -v swaks >/dev/null; then
    redis_cmd FLUSHDB >/dev/null
    conf "$LAB/mw.ini" "mode = all"
    sed -i "s/^\[milter\]\$/[milter]\nsocket = $MILTER_CONN\nuser = nobody/" "$LAB/mw.ini"
    start_daemon "$LAB/mw.ini"
    start_postfix "inet:127.0.0.1:$MILTER_PORT"   # Postfix spelling
    smtp() { send_mail --xclient-addr "$1" --from "$2" --to bob@maildir.test; }
    like "$(smtp 192.0.2.33 alice@example.org)" \
        '^451 4\.7\.1 Greylisted: first delivery attempt for this sender and recipient, please try again in 1 second$' \
        "SMTP: first attempt gets 451 4.7.1 at RCPT"
    sleep 1.2
    like "$(smtp 192.0.2.34 alice@example.org)" '^250 ' "SMTP: retry after the delay is delivered"
    wait_delivered 1 || true
    like "$(grep '^X-Greylist:' "$(last_delivered)")" \
        '^X-Greylist: delayed ([1-9] seconds?|[1-9][0-9]+ seconds) by mailwarden at mx\.mailwarden\.test$' \
        "SMTP: the delivered message has the X-Greylist header"
    fds_d=$(ls "/proc/$MW_DAEMON_PID/fd" | wc -l)
    kill_redis
    like "$(smtp 192.0.2.35 nobody-knows@example.org)" '^250 ' \
        "SMTP: Redis killed, fail-open delivers"
    wait_delivered 2 || true
    is "$(grep '^X-Greylist:' "$(last_delivered)")" \
        "X-Greylist: unchecked (greylist database unavailable) by mailwarden at mx.mailwarden.test" \
        "SMTP: ... marked unchecked"
    start_redis
    sleep 1.2   # reconnect_interval_ms = 1000
    like "$(smtp 192.0.2.35 later@example.org)" '^451 4\.7\.1 Greylisted' \
        "SMTP: Redis back, greylisting again"
    ok "SMTP: the daemon is still running" daemon_alive
    is "$(ls "/proc/$MW_DAEMON_PID/fd" | wc -l)" "$fds_d" \
        "SMTP: the daemon has as many fds as before the outage ($fds_d)"
    stop_postfix
    stop_daemon
    is "$MW_DAEMON_STATUS" 0 "SMTP: the daemon stops cleanly"
else
    skip "SMTP through Postfix" "needs root, postfix, swaks and milter/mailwarden"
fi

# -------------------------------------------------------------- config ---

badconf() {  # badconf LINE -> the driver's config error
    conf "$LAB/bad.ini" "$1"
    "$DRIVER" "$LAB/bad.ini" </dev/null | sed 's/^[^:]*: [^:]*:[0-9]*: //'
}
like "$(badconf 'mode = some')" '\[greylist\] mode: "some" is not all or suspicious' \
    "bad mode is refused"
like "$(badconf 'fail_mode = maybe')" 'fail_mode: "maybe" is not open or closed' \
    "bad fail_mode is refused"
like "$(badconf 'server = 2001:db8::1:6379')" 'write an IPv6 address as \[address\]:port' \
    "unbracketed IPv6 server is refused"
like "$(badconf 'retry_window = 1')" 'retry_window \(1 s\) must be longer than delay \(1 s\)' \
    "retry_window not longer than delay is refused"
like "$(badconf 'ipv4_prefix = 33')" 'ipv4_prefix' "ipv4_prefix 33 is refused"

done_testing
