#!/bin/bash
# bench/greylist_bench.sh -- greylisting decisions/s and added latency per
# RCPT against a private redis-server on loopback (TCP and unix socket).
#
#   bench/greylist_bench.sh [-t THREADS] [-n RCPTS]
#
# Builds bench/greylist_bench if needed (make bench/greylist_bench), starts
# Redis with t/lib.sh, runs a baseline (greylisting off) and the three
# phases (new, pass, known) of bench/greylist_bench.c.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../t/lib.sh"

BENCH=$BUILD/bench/greylist_bench
if [ ! -x "$BENCH" ]; then
    make -C "$BUILD" bench/greylist_bench >/dev/null || { echo "cannot build $BENCH" >&2; exit 1; }
fi
lab_init >/dev/null
start_redis

# the other checks off, where they have the switch: only greylisting is timed
OTHERS=
for m in iprev helo dnsbl spf dkim dmarc; do
    printf '[%s]\nenabled = no\n' "$m" > "$LAB/probe.ini"
    if "$BENCH" -C "$LAB/probe.ini" >/dev/null 2>&1; then
        OTHERS="$OTHERS[$m]"$'\n''enabled = no'$'\n'
    fi
done

conf() {  # conf FILE ENABLED SERVER
    {
        printf '[milter]\nauthserv_id = bench.test\ntrusted_networks = 127.0.0.1\nlog_level = warning\n'
        printf '%s' "$OTHERS"
        printf '[greylist]\nenabled = %s\nmode = all\ndelay = 1\nautoallow_after = 0\n' "$2"
        printf 'server = %s\n' "$3"
    } > "$1"
}
conf "$LAB/off.ini" no "127.0.0.1:$REDIS_PORT"
conf "$LAB/tcp.ini" yes "127.0.0.1:$REDIS_PORT"
conf "$LAB/unix.ini" yes "unix:$REDIS_SOCK"

echo "== redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), $(nproc) CPUs, TCP 127.0.0.1"
"$BENCH" "$@" "$LAB/tcp.ini" "$LAB/off.ini"
redis_cmd FLUSHALL >/dev/null
echo "== unix socket"
"$BENCH" "$@" "$LAB/unix.ini" "$LAB/off.ini"
echo "== keys in Redis: $(redis_cmd DBSIZE), memory: $(redis_cmd INFO memory | sed -n 's/^used_memory_human:\(.*\)\r$/\1/p')"
