#!/bin/bash
# dns_parallel.sh -- the figure for issue 3: how long the connection
# checks (iprev, HELO, 8 DNSBL zones) keep a client waiting when every
# DNS answer is delayed by 100 ms.  They run in parallel, so a clean
# client should be answered at RCPT after about 2 round trips (the PTR,
# then the forward lookup of its name), not the 10 that the same
# lookups one after another take.  A measurement, not a test: it prints
# numbers and fails only if the checks give wrong verdicts.
#
#	bench/dns_parallel.sh [ZONES [RUNS [DELAY_MS]]]	(8, 20, 100)
#
# Needs a built tree (make), python3-dnslib, dig.  Starts its own
# t/dnsfault.py on a free loopback port (through t/lib.sh) and stops it.
set -eu
zones=${1:-8}
runs=${2:-20}
delay=${3:-100}
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/t/lib.sh"
lab_init >/dev/null

# bench/dns_parallel: Makefile.am's EXTRA_PROGRAMS.
make -C "$BUILD" bench/dns_parallel >/dev/null ||
    lab_die "cannot build bench/dns_parallel (configure and make the tree first)"

# Answers: clean clients 198.18.200.R with name hR, listed clients
# 198.18.201.R with name lR listed in every zone; anything else NXDOMAIN.
map=$LAB/bench.map
for ((r = 1; r <= runs; r++)); do
	echo "$r.200.18.198.in-addr.arpa PTR h$r.bench.test."
	echo "h$r.bench.test A 198.18.200.$r"
	echo "$r.201.18.198.in-addr.arpa PTR l$r.bench.test."
	echo "l$r.bench.test A 198.18.201.$r"
	for ((z = 1; z <= zones; z++)); do
		echo "$r.201.18.198.z$z.bench.test A 127.0.0.2"
		echo "$r.201.18.198.z$z.bench.test TXT \"listed in z$z\""
	done
done > "$map"

port=$(lab_port)
lab_spawn dnsfault /usr/bin/python3 "$top/t/dnsfault.py" "$port" \
    --delay "$delay" --zone "$map"
for _ in $(seq 1 100); do
	grep -q '^ready$' "$LAB/dnsfault.log" 2>/dev/null && break
	sleep 0.05
done
grep -q '^ready$' "$LAB/dnsfault.log" ||
    lab_die "t/dnsfault.py did not start" "$LAB/dnsfault.log"

echo "# bench/dns_parallel.sh: t/dnsfault.py --delay $delay on port $port"
"$BUILD/bench/dns_parallel" "$port" "$zones" "$runs" "$delay"
