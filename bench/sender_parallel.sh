#!/bin/bash
# sender_parallel.sh -- the cost of [sender] at MAIL FROM: its MX/A/AAAA
# lookups are sent before the SPF check and answered while SPF waits for
# its own, so with every DNS answer delayed by DELAY ms a transaction
# (connect, HELO, MAIL FROM, RCPT) should take about as long with the
# sender check as without it, not one round trip more.  A measurement,
# not a test: one test/mwscenario process per variant (SPF alone, SPF +
# [sender]) runs RUNS transactions, each with a domain not seen before
# (the resolver cache would hide the round trips otherwise); printed is
# the wall time per transaction, the process start-up spread over them.
#
#	bench/sender_parallel.sh [RUNS [DELAY_MS]]	(20, 100)
#
# Needs a built tree (make test/mwscenario) and python3-dnslib.
set -eu
runs=${1:-20}
delay=${2:-100}
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/t/lib.sh"
lab_init >/dev/null
[ -x "$top/test/mwscenario" ] || lab_die "build test/mwscenario first"

map=$LAB/bench.map
for ((r = 1; r <= runs; r++)); do
	for kind in spf both; do
		echo "d$r-$kind.bench.test TXT \"v=spf1 ip4:198.18.9.0/24 -all\""
		echo "d$r-$kind.bench.test MX 10 mx.bench.test."
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

scenario() {	# KIND: RUNS transactions, SPF on, [sender] on for "both"
	cat <<EOS
config
[milter]
authserv_id = mx.test
[dns]
nameservers = 127.0.0.1:$port
timeout_ms = 2000
[iprev]
enabled = no
[helo]
enabled = no
[spf]
check_helo = no
[sender]
enabled = $([ "$1" = both ] && echo yes || echo no)
[dkim]
verify = no
[dmarc]
enabled = no
end
connect 198.18.9.1 mx.bench.test
helo mx.bench.test
EOS
	for ((r = 1; r <= runs; r++)); do
		printf 'mail <a@d%d-%s.bench.test>\nrcpt <b@example.net>\nabort\n' \
		    "$r" "$1"
	done
}

echo "# bench/sender_parallel.sh: $runs transactions, every DNS answer delayed $delay ms"
for kind in spf both; do
	scenario "$kind" > "$LAB/$kind.scn"
	t0=$(date +%s%N)
	"$top/test/mwscenario" "$LAB/$kind.scn" > "$LAB/$kind.out"
	t1=$(date +%s%N)
	[ "$(grep -c "^rcpt <b@example.net>" "$LAB/$kind.out")" = "$runs" ] ||
	    lab_die "scenario failed" "$LAB/$kind.out"
	if grep -q "reject\|tempfail" "$LAB/$kind.out"; then
		lab_die "unexpected refusal" "$LAB/$kind.out"
	fi
	echo $(( (t1 - t0) / 1000000 / runs )) > "$LAB/$kind.ms"
done
printf 'SPF alone:       %s ms per transaction\n' "$(cat "$LAB/spf.ms")"
printf 'SPF + [sender]:  %s ms per transaction\n' "$(cat "$LAB/both.ms")"
