#!/bin/bash
# run_dns_test.sh -- run test/test_dns against real DNS servers on loopback.
#
#	bash test/run_dns_test.sh [path/to/test_dns]
#
# Starts nsd (t/zones/dnstest*.zone) and t/dnsfault.py (every answer
# delayed 100 ms) on free loopback ports, runs the test, stops both, and
# exits with the test's status.  Without an argument it runs (and makes,
# if needed) the build tree's test/test_dns.  Needs nsd, python3-dnslib.

set -u

top=$(cd "$(dirname "$0")/.." && pwd)
# Debian's python3 has python3-dnslib; a python3 earlier in PATH may not.
py=/usr/bin/python3
[ -x "$py" ] || py=python3

lab=$(mktemp -d "${TMPDIR:-/tmp}/mw_dns_test.XXXXXX") || exit 1
nsd_pid=
fault_pid=

# shellcheck disable=SC2317	# run by the trap
cleanup() {
	local _
	[ -n "$fault_pid" ] && kill -TERM "$fault_pid" 2>/dev/null
	# nsd runs in its own process group: its server child goes too.
	[ -n "$nsd_pid" ] && kill -TERM -- -"$nsd_pid" 2>/dev/null
	[ -n "$fault_pid" ] && wait "$fault_pid" 2>/dev/null
	if [ -n "$nsd_pid" ]; then
		wait "$nsd_pid" 2>/dev/null
		for _ in $(seq 1 40); do
			kill -0 -- -"$nsd_pid" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL -- -"$nsd_pid" 2>/dev/null
	fi
	rm -rf "$lab"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
	echo "run_dns_test: $*" >&2
	exit 1
}

# A port free for both UDP and TCP on 127.0.0.1 (and ::1 if $1 is v6).
free_port() {
	"$py" - "$@" <<'EOF'
import socket, sys
v6 = len(sys.argv) > 1 and sys.argv[1] == "v6"
for _ in range(50):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    others = []
    try:
        for fam, typ, addr in ((socket.AF_INET, socket.SOCK_STREAM,
                                "127.0.0.1"),) + (
                ((socket.AF_INET6, socket.SOCK_DGRAM, "::1"),
                 (socket.AF_INET6, socket.SOCK_STREAM, "::1")) if v6
                else ()):
            s = socket.socket(fam, typ)
            others.append(s)
            s.bind((addr, port))
    except OSError:
        continue
    finally:
        u.close()
        for s in others:
            s.close()
    print(port)
    sys.exit(0)
sys.exit("no free port")
EOF
}

has_v6() {
	"$py" -c 'import socket
socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).bind(("::1", 0))' \
	    2>/dev/null
}

# --- the test binary (Makefile.am's check_PROGRAMS: built with the
# tree's flags, sanitizers included when configured so)
build=$(cd "${top_builddir:-$top}" && pwd)
if [ $# -ge 1 ]; then
	bin=$1
else
	bin=$build/test/test_dns
	[ -x "$bin" ] || make -C "$build" test/test_dns >/dev/null ||
	    die "cannot build test/test_dns (configure the tree first)"
fi
[ -x "$bin" ] || die "$bin: not an executable"

# --- nsd
v6=0
if has_v6; then
	v6=1
	nsd_port=$(free_port v6) || die "no free port for nsd"
else
	nsd_port=$(free_port) || die "no free port for nsd"
fi
mkdir -p "$lab/dns/nsd"
cp "$top"/t/zones/dnstest.zone "$top"/t/zones/dnstest-rev4.zone \
    "$top"/t/zones/dnstest-rev6.zone "$lab/dns/" || die "zone files missing"
{
	echo "server:"
	echo "    ip-address: 127.0.0.1@$nsd_port"
	[ $v6 = 1 ] && echo "    ip-address: ::1@$nsd_port"
	cat <<EOF
    port: $nsd_port
    username: ""
    chroot: ""
    zonesdir: "$lab/dns"
    database: ""
    zonelistfile: "$lab/dns/nsd/zone.list"
    xfrdfile: "$lab/dns/nsd/xfrd.state"
    xfrdir: "$lab/dns/nsd"
    pidfile: "$lab/dns/nsd/nsd.pid"
    logfile: "$lab/dns/nsd/nsd.log"
    server-count: 1
    verbosity: 1
    hide-version: yes
remote-control:
    control-enable: no
zone:
    name: dnstest.test
    zonefile: dnstest.zone
zone:
    name: 113.0.203.in-addr.arpa
    zonefile: dnstest-rev4.zone
zone:
    name: 5.7.d.0.8.b.d.0.1.0.0.2.ip6.arpa
    zonefile: dnstest-rev6.zone
EOF
} >"$lab/nsd.conf"
nsd-checkconf "$lab/nsd.conf" || die "nsd.conf does not check"
# -d: stay in the foreground, so $! is nsd itself; setsid (which execs,
# same pid) gives it a process group of its own for the trap to stop.
setsid nsd -d -c "$lab/nsd.conf" >"$lab/nsd.out" 2>&1 &
nsd_pid=$!

# --- the fault responder
fault_port=$(free_port) || die "no free port for dnsfault"
"$py" "$top/t/dnsfault.py" "$fault_port" --delay 100 \
    --zone "$top/t/zones/dnstest-fault.map" >"$lab/fault.out" 2>&1 &
fault_pid=$!

# --- wait for both (each is up in well under a second)
for _ in $(seq 1 100); do
	if dig +time=1 +tries=1 -p "$nsd_port" @127.0.0.1 dnstest.test SOA \
	    +short 2>/dev/null | grep -q hostmaster; then
		break
	fi
	kill -0 "$nsd_pid" 2>/dev/null || break
	sleep 0.1
done
if ! dig +time=1 +tries=1 -p "$nsd_port" @127.0.0.1 dnstest.test SOA \
    +short 2>/dev/null | grep -q hostmaster; then
	cat "$lab/nsd.out" "$lab/dns/nsd/nsd.log" >&2 2>/dev/null
	die "nsd did not come up on port $nsd_port"
fi
for _ in $(seq 1 100); do
	grep -q '^ready$' "$lab/fault.out" && break
	kill -0 "$fault_pid" 2>/dev/null || break
	sleep 0.1
done
if ! grep -q '^ready$' "$lab/fault.out"; then
	cat "$lab/fault.out" >&2
	die "dnsfault.py did not come up on port $fault_port"
fi

echo "# nsd on $nsd_port, dnsfault.py on $fault_port"
MW_DNS_TEST_V6=$v6 "$bin" "$nsd_port" "$fault_port"
status=$?
exit $status
