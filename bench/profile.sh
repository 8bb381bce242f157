#!/bin/bash
# bench/profile.sh -- where mailwarden's CPU goes per message, in
# repeatable instruction counts: mailwarden (the benchmark's
# configuration, all checks on) and the no-op milter, each run under
# valgrind --tool=callgrind while bench/mlat sends them the same
# DKIM-signed messages at the milter socket (no Postfix: the MTA's cost
# is the same for both).  Prints, per size, the instructions per message
# of each and their ratio, and writes the top of mailwarden's profile.
#
#	bench/profile.sh			4k and 100k, 200 messages each
#	PROF_SIZES="4k" PROF_MSGS=500 bench/profile.sh
#	PROF_TOOL=perf bench/profile.sh		perf record (native speed,
#						sampled) instead of callgrind
#
# Needs valgrind (or linux-perf), nsd, redis-server, python3-dkim and a
# plain build (`./configure && make && make bench-programs`: the
# sanitizers would be most of the profile).  Output goes to
# PROF_OUT (default bench/results/profile-DATE-HHMM/): callgrind.out.*
# files (callgrind_annotate reads them), top-SIZE.txt (the top of each
# profile, inclusive and self), summary.txt.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
PROF_SIZES=${PROF_SIZES:-4k 100k}
PROF_MSGS=${PROF_MSGS:-200}
PROF_TOOL=${PROF_TOOL:-callgrind}
PROF_OUT=${PROF_OUT:-$HERE/results/profile-$(date +%F-%H%M)}
PY=/usr/bin/python3

. "$TOP/t/lib.sh"
lab_init >/dev/null
say() { printf '%s profile: %s\n' "$(date +%T)" "$*" >&2; }
mkdir -p "$PROF_OUT" || lab_die "cannot make $PROF_OUT"
PROF_OUT=$(cd "$PROF_OUT" && pwd)
chmod 0777 "$PROF_OUT"	# the daemon runs as nobody, and callgrind writes there
case $PROF_TOOL in
	callgrind) command -v valgrind >/dev/null || lab_die "valgrind is not installed" ;;
	perf) command -v perf >/dev/null || lab_die "perf (linux-perf) is not installed" ;;
	*) lab_die "PROF_TOOL is callgrind or perf" ;;
esac

make -C "$BUILD" bench/noop_milter bench/mlat >/dev/null ||
	lab_die "cannot build bench/noop_milter and bench/mlat"
grep -q -- '-fsanitize' "$BUILD/Makefile" 2>/dev/null &&
	say "warning: this build has the sanitizers; profile a plain build"
CLIENT_IP=192.0.2.25

say "DKIM key, messages, zones"
openssl genrsa -out "$LAB/dkim.pem" 2048 2>/dev/null || lab_die "openssl genrsa failed"
DKIM_TXT=$($PY "$HERE/mkmsg.py" --txt "$LAB/dkim.pem") || lab_die "mkmsg --txt failed"
for size in $PROF_SIZES; do
	$PY "$HERE/mkmsg.py" "$LAB/dkim.pem" "$LAB/msg-$size.eml" "$size" ||
		lab_die "cannot make the $size message"
done
ZDIR=$LAB/zones
mkdir -p "$ZDIR"
_lab_subst "CLIENT_IP=$CLIENT_IP" "DKIM_TXT=$DKIM_TXT" \
    < "$HERE/zones/bench.example.zone.in" > "$ZDIR/bench.example.zone"
for z in $(awk '$1 == "zone" { print $3 }' "$HERE/conf/mailwarden.d/dnsbl.ini"); do
	_lab_subst "ZONE=$z" < "$HERE/zones/dnsbl.zone.in" > "$ZDIR/$z.zone"
done
cp "$HERE/zones/2.0.192.in-addr.arpa.zone" "$HERE/zones/127.in-addr.arpa.zone" "$ZDIR/"
mkdir -p "$LAB/nsd-template"
awk '{ print } /^server:/ && !done { print "    rrl-ratelimit: 0"; done = 1 }' \
    "$T_DIR/nsd.conf.in" > "$LAB/nsd-template/nsd.conf.in"
T_DIR=$LAB/nsd-template start_nsd "$ZDIR"/*.zone
start_redis

# One process (no supervisor) to profile.
{
	_lab_subst "MW_SOCKET=unix:$LAB/mw.sock" "DNS_PORT=$NSD_PORT" \
	    "REDIS_PORT=$REDIS_PORT" "LAB=$LAB" < "$HERE/conf/mailwarden.ini.in" |
	    sed 's/^\[milter\]$/[milter]\nauto_restart = no/'
	for c in iprev helo dnsbl spf dkim dmarc greylist size; do
		echo
		_lab_subst "DNS_PORT=$NSD_PORT" "REDIS_PORT=$REDIS_PORT" "LAB=$LAB" \
		    < "$HERE/conf/mailwarden.d/$c.ini"
	done
} > "$LAB/mw.ini"
"$MW_DAEMON" -t -c "$LAB/mw.ini" >/dev/null 2>"$LAB/mw-t.err" ||
	lab_die "mailwarden -t rejects the configuration" "$LAB/mw-t.err"

mlat() {	# mlat SOCKET MSGFILE N CONNS [ARGS]
	local s=$1 m=$2 n=$3 c=$4; shift 4
	"$BUILD/bench/mlat" -s "$s" -m "$m" -n "$n" -c "$c" -a "$CLIENT_IP" \
	    -N mx.bench.example -H mx.bench.example -f sender@bench.example \
	    -r rcpt@sink.test -T 120 "$@" 2>&1 | tail -n 1
}

# run_one NAME SIZE MSGS SOCKET CMD...: the milter under the tool, a
# warm-up then MSGS messages, one connection at a time
run_one() {
	local name=$1 size=$2 n=$3 sock=$4 pid line tag; shift 4
	local msg=$LAB/msg-$size.eml
	tag=$name-$size-$n
	rm -f "${sock#unix:}"
	case $PROF_TOOL in
	callgrind)
		valgrind --tool=callgrind --callgrind-out-file="$PROF_OUT/callgrind.out.$tag" \
		    "$@" >"$LAB/$tag.log" 2>&1 &
		pid=$!
		;;
	perf)
		"$@" >"$LAB/$tag.log" 2>&1 &
		pid=$!
		;;
	esac
	wait_milter "$sock" "$pid" "$tag"
	# callgrind made its file as root; mailwarden writes it at exit
	# as the user it has become.
	[ "$PROF_TOOL" = callgrind ] && chown nobody "$PROF_OUT/callgrind.out.$tag"
	# warm up (and, for mailwarden, pass the greylisting triplet)
	mlat "$sock" "$msg" 2 1 >/dev/null
	if [ "$name" = mw ]; then sleep 1.2; mlat "$sock" "$msg" 2 1 >/dev/null; fi
	if [ "$PROF_TOOL" = callgrind ]; then
		# callgrind_control cannot reach a daemon that has dropped
		# root: the whole life is counted, and the caller takes the
		# difference of a run with MSGS messages and one without.
		line="msgs=0 ok=0"
		[ "$n" -gt 0 ] && line=$(mlat "$sock" "$msg" "$n" 1)
	else
		perf record -q -g -o "$PROF_OUT/perf.data.$tag" -p "$pid" \
		    >/dev/null 2>&1 &
		local pp=$!
		sleep 0.5
		line=$(mlat "$sock" "$msg" "$n" 20)
		kill -INT "$pp"; wait "$pp"
	fi
	say "  $tag: ${line#mlat: }"
	grep -q " ok=$n\b" <<<" $line" || say "warning: not every message was accepted"
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}
wait_milter() {	# SPEC PID NAME
	local i
	for ((i = 0; i < 1200; i++)); do
		_lab_socket_ready "$1" && return 0
		_lab_alive "$2" || lab_die "$3 exited" "$LAB/$3.log"
		sleep 0.1
	done
	lab_die "$3 does not listen on $1" "$LAB/$3.log"
}

total_ir() {	# total_ir FILE: instructions counted in a callgrind file
	callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }'
}

: > "$PROF_OUT/summary.txt"
for size in $PROF_SIZES; do
	say "$size: no-op milter, then mailwarden, $PROF_MSGS messages each under $PROF_TOOL"
	for name in noop mw; do
		if [ $name = noop ]; then
			set -- "$BUILD/bench/noop_milter" -s "unix:$LAB/noop.sock"
			sock=unix:$LAB/noop.sock
		else
			set -- "$MW_DAEMON" -f -c "$LAB/mw.ini"
			sock=unix:$LAB/mw.sock
		fi
		run_one $name "$size" "$PROF_MSGS" "$sock" "$@"
		[ "$PROF_TOOL" = callgrind ] && run_one $name "$size" 0 "$sock" "$@"
	done
	if [ "$PROF_TOOL" = callgrind ]; then
		n=$(( $(total_ir "$PROF_OUT/callgrind.out.noop-$size-$PROF_MSGS") -
		    $(total_ir "$PROF_OUT/callgrind.out.noop-$size-0") ))
		m=$(( $(total_ir "$PROF_OUT/callgrind.out.mw-$size-$PROF_MSGS") -
		    $(total_ir "$PROF_OUT/callgrind.out.mw-$size-0") ))
		awk -v s="$size" -v n="$n" -v m="$m" -v k="$PROF_MSGS" 'BEGIN {
			printf "%s: no-op milter %.0f instructions/msg, mailwarden %.0f instructions/msg, ratio %.2f\n",
			    s, n / k, m / k, m / n }' | tee -a "$PROF_OUT/summary.txt"
		f=$PROF_OUT/callgrind.out.mw-$size-$PROF_MSGS
		{
			echo "== mailwarden, $size, $PROF_MSGS messages (and start, stop): inclusive"
			callgrind_annotate --inclusive=yes "$f" 2>/dev/null | sed -n '/^Ir/,$p' | head -n 45
			echo
			echo "== self"
			callgrind_annotate "$f" 2>/dev/null | sed -n '/^Ir/,$p' | head -n 35
		} > "$PROF_OUT/top-$size.txt"
	else
		perf report -i "$PROF_OUT/perf.data.mw-$size-$PROF_MSGS" --stdio --no-children \
		    --percent-limit 1 -g none 2>/dev/null | grep -v '^#' | grep . | head -n 40 \
		    > "$PROF_OUT/top-$size.txt"
	fi
done
say "written: $PROF_OUT"
cat "$PROF_OUT/summary.txt"
