#!/bin/bash
# bench/redis_failover.sh -- the Sentinel failover figures of t/fleet.sh,
# over several runs: RCPTs answered by fail_mode after the master is
# SIGKILLed (one RCPT about every 100 ms), the time until greylisting
# decisions come from Redis again, and the longest RCPT.
#
#   bench/redis_failover.sh [RUNS]	(default 3; as root, after make)
#
# Each run is a whole t/fleet.sh (about 40 s): 1 master, 1 replica,
# 3 redis-sentinel (quorum 2, down-after-milliseconds 1000), [redis]
# connect_timeout_ms = timeout_ms = 300, reconnect_interval_ms = 250.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
runs=${1:-3}
printf '%-4s %-8s %-10s %-12s %-14s\n' run RCPTs fail_mode back_ms longest_ms
for ((r = 1; r <= runs; r++)); do
    line=$(bash "$HERE/../t/fleet.sh" 2>/dev/null | sed -n 's/^# failover: //p')
    # "24 RCPTs, 14 answered by fail_mode, Redis decisions again 2419 ms
    #  after the SIGKILL, longest RCPT 4.762 ms (...)"
    set -- $line
    printf '%-4s %-8s %-10s %-12s %-14s\n' "$r" "$1" "$3" "${10}" "${17}"
done
