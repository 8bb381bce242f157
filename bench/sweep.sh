# bench/sweep.sh -- cost curves: sourced by bench/run.sh when
# BENCH_MODE=sweep, after its set-up (nsd, Redis, Postfix, the no-op
# milter, mailwarden with the greylisting triplet passed), so every
# function and variable of run.sh is at hand.  Not run by itself:
#
#	BENCH_MODE=sweep bench/run.sh			full sweep (~25 min)
#	BENCH_MODE=sweep SWEEP_SCALE=0.2 bench/run.sh	smaller (~6 min)
#
# Measures, for Postfix alone ("none"), the no-op milter and mailwarden
# (all checks on), each through the same Postfix with smtp-source:
#   size      msg/s and CPU per message vs message size (SWEEP_SIZES)
#   rcpt      ... vs recipients per message (SWEEP_RCPTS)
#   zones     ... vs DNSBL zones in mailwarden's [dnsbl] (SWEEP_ZONES;
#             the other two do not depend on it: measured once)
#   sessions  ... vs concurrent SMTP sessions (SWEEP_SESSIONS)
#   hold      RSS vs connections held mid-transaction (SWEEP_HOLD), with
#             bench/mlat at the milter socket (Postfix alone holds no
#             milter connection: not in that chart)
# CPU per message: the milter's processes (mailwarden: supervisor and
# worker), and Postfix's (its master and every child, living or reaped)
# in the same run, from /proc.  Results: $OUT/sweep.txt, one line per
# point: PART X CONFIG MSGS SECS MSG_PER_S MILTER_CPU_MS POSTFIX_CPU_MS
# (hold: PART N CONFIG RSS0_KB RSS1_KB THREADS); bench/sweep_plot.py
# draws the charts and writes the report.
#
# Knobs: SWEEP_PARTS="size rcpt zones sessions hold"
#   SWEEP_SIZES="1k 4k 16k 64k 256k 1M 4M 10M"
#   SWEEP_RCPTS="1 3 10 30 100 300 1000"  SWEEP_ZONES="0 1 2 4 8 16 32"
#   SWEEP_SESSIONS="1 5 20 50 100 200 500"
#   SWEEP_HOLD="10 50 100 250 500 1000 2000"
#   SWEEP_MSGS=600 (messages per point; fewer for big messages: at most
#   SWEEP_BYTES=120M of message per point, at least SWEEP_MIN=20; and at
#   most SWEEP_RCPT_BUDGET=20000 recipients per point)
#   SWEEP_SCALE=1 multiplies SWEEP_MSGS, SWEEP_BYTES, SWEEP_RCPT_BUDGET

to_bytes() {	# to_bytes SIZE (1k, 10M: powers of 1024, as mkmsg.py) -> bytes
	case $1 in
		*k) echo $(( ${1%k} * 1024 )) ;;
		*M) echo $(( ${1%M} * 1024 * 1024 )) ;;
		*) echo "$1" ;;
	esac
}

SWEEP_PARTS=${SWEEP_PARTS:-size rcpt zones sessions hold}
SWEEP_SIZES=${SWEEP_SIZES:-1k 4k 16k 64k 256k 1M 4M 10M}
SWEEP_RCPTS=${SWEEP_RCPTS:-1 3 10 30 100 300 1000}
SWEEP_ZONES=${SWEEP_ZONES:-0 1 2 4 8 16 32}
SWEEP_SESSIONS=${SWEEP_SESSIONS:-1 5 20 50 100 200 500}
SWEEP_HOLD=${SWEEP_HOLD:-10 50 100 250 500 1000 2000}
SWEEP_SCALE=${SWEEP_SCALE:-1}
scaled() { awk -v v="$1" -v s="$SWEEP_SCALE" 'BEGIN { v = int(v * s); print (v < 1 ? 1 : v) }'; }
SWEEP_MSGS=$(scaled "${SWEEP_MSGS:-600}")
SWEEP_BYTES=$(scaled "$(to_bytes "${SWEEP_BYTES:-120M}")")
SWEEP_RCPT_BUDGET=$(scaled "${SWEEP_RCPT_BUDGET:-20000}")
SWEEP_MIN=${SWEEP_MIN:-20}
SWEEP_CONFIGS="none noop-unix mw-unix"
SWEEP_TXT=$OUT/sweep.txt
: > "$SWEEP_TXT"

clamp() {	# clamp V MIN MAX
	local v=$1
	[ "$v" -gt "$3" ] && v=$3
	[ "$v" -lt "$2" ] && v=$2
	echo "$v"
}

# CPU ticks of Postfix so far: the master and its living children, and
# what its reaped children used (the master's cutime + cstime).
pf_ticks() {
	local m p s=0 v
	m=$(_lab_pf_master_pid)
	[ -n "$m" ] || { echo 0; return; }
	v=$(awk '{ sub(/^.*\) /, ""); print $14 + $15 }' "/proc/$m/stat" 2>/dev/null)
	s=${v:-0}
	for p in $(tree_pids "$m"); do
		v=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null)
		s=$((s + ${v:-0}))
	done
	echo "$s"
}

# point PART X CONFIG MSGFILE N SESSIONS [SMTP-SOURCE ARGS]: one measurement
point() {
	local part=$1 x=$2 c=$3 msg=$4 n=$5 s=$6 pids t0 p0 secs rate cpu pcpu
	shift 6
	use_milters "$c"
	smtp_load "$msg" "$(clamp $((n / 10)) 5 40)" "$s" rcpt@sink.test "$@" >/dev/null 2>&1
	pids=$(cfg_pids "$c")
	t0=$(cpu_ticks $pids)
	p0=$(pf_ticks)
	if secs=$(smtp_load "$msg" "$n" "$s" rcpt@sink.test "$@"); then
		rate=$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.2f", n / s }')
	else
		rate=FAIL
	fi
	cpu=-
	[ -n "$pids" ] && cpu=$(awk -v a="$t0" -v b="$(cpu_ticks $pids)" \
	    -v hz="$CLK_TCK" -v n="$n" 'BEGIN { printf "%.4f", (b - a) * 1000 / hz / n }')
	pcpu=$(awk -v a="$p0" -v b="$(pf_ticks)" -v hz="$CLK_TCK" -v n="$n" \
	    'BEGIN { printf "%.4f", (b - a) * 1000 / hz / n }')
	echo "$part $x $c $n $secs $rate $cpu $pcpu" >> "$SWEEP_TXT"
	say "  $part=$x $c: $n msgs, $rate msg/s, milter CPU $cpu ms/msg, Postfix CPU $pcpu ms/msg"
}

# A message file per size (DKIM-signed like the others).
sweep_msg() {	# sweep_msg SIZE -> path
	local f=$LAB/msg-$1.eml
	[ -f "$f" ] || $PY "$HERE/mkmsg.py" "$LAB/dkim.pem" "$f" "$1" >&2 ||
		lab_die "cannot make the $1 message"
	echo "$f"
}

# mailwarden with a [dnsbl] of N zones (0: the check off), on its own
# socket; prints nothing, sets MILTER[mw-zones] and PIDS[mw-zones].
start_mw_zones() {
	local k=$1 ini=$LAB/mw-zones.ini sock=$LAB/mwz.sock
	lab_stop mw-zones
	rm -f "$sock"
	awk -v k="$k" '
		/^\[/ { sect = $0 }
		sect == "[dnsbl]" && /^zone[ \t]*=/ { next }
		{ print }
		$0 == "[dnsbl]" {
			if (k == 0) print "enabled = no"
			for (i = 1; i <= k; i++)
				printf "zone = z%02d.sweep.test weight=0.1\n", i
		}' "$LAB/mw-unix.ini" | sed "s|^socket = unix:.*|socket = unix:$sock|" > "$ini"
	lab_spawn mw-zones "$MW_DAEMON" -f -c "$ini"
	wait_sock "unix:$sock" mw-zones
	MILTER[mw-zones]=unix:$sock
	PIDS[mw-zones]=$(lab_pid mw-zones)
}

SESSIONS=$BENCH_SESSIONS
say "sweep: parts [$SWEEP_PARTS], up to $SWEEP_MSGS messages per point"
# Raise Postfix's process limit for the concurrency part (500 smtpd).
postfix_set "default_process_limit=700" >/dev/null
postfix_reload >/dev/null 2>&1 || true

for part in $SWEEP_PARTS; do
	case $part in
	size)
		for size in $SWEEP_SIZES; do
			msg=$(sweep_msg "$size")
			b=$(to_bytes "$size")
			n=$(clamp $((SWEEP_BYTES / b)) "$SWEEP_MIN" "$SWEEP_MSGS")
			for c in $SWEEP_CONFIGS; do
				point size "$b" "$c" "$msg" "$n" "$SESSIONS"
			done
		done
		;;
	rcpt)
		msg=$(sweep_msg 4k)
		# Greylisting: every new recipient's triplet must have
		# passed, as for the one of the other runs.
		max=0
		for r in $SWEEP_RCPTS; do [ "$r" -gt "$max" ] && max=$r; done
		# smtp-source -r N sends to 1rcpt@..NRCPT@ (1: rcpt@): one
		# message to the most; Postfix would hang up after 20 refused
		# RCPTs (smtpd_hard_error_limit), and sleep after each
		# (smtpd_error_sleep_time), without these.
		postfix_set "smtpd_hard_error_limit=5000" "smtpd_soft_error_limit=5000" \
		    "smtpd_error_sleep_time=0" >/dev/null
		if [ "$max" -gt 1 ]; then
			use_milters mw-unix
			smtp_load "$msg" 1 1 rcpt@sink.test -r "$max" -A >/dev/null 2>&1
			sleep 1.5
		fi
		for r in $SWEEP_RCPTS; do
			n=$(clamp $((SWEEP_RCPT_BUDGET / r)) 10 "$SWEEP_MSGS")
			for c in $SWEEP_CONFIGS; do
				if [ "$r" -gt 1 ]; then
					point rcpt "$r" "$c" "$msg" "$n" "$SESSIONS" -r "$r"
				else
					point rcpt "$r" "$c" "$msg" "$n" "$SESSIONS"
				fi
			done
		done
		;;
	zones)
		msg=$(sweep_msg 4k)
		for c in none noop-unix; do
			point zones - "$c" "$msg" "$SWEEP_MSGS" "$SESSIONS"
		done
		for k in $SWEEP_ZONES; do
			start_mw_zones "$k"
			point zones "$k" mw-zones "$msg" "$SWEEP_MSGS" "$SESSIONS"
		done
		lab_stop mw-zones
		;;
	sessions)
		msg=$(sweep_msg 4k)
		for s in $SWEEP_SESSIONS; do
			n=$SWEEP_MSGS
			[ $((s * 2)) -gt "$n" ] && n=$((s * 2))
			for c in $SWEEP_CONFIGS; do
				point sessions "$s" "$c" "$msg" "$n" "$s"
			done
		done
		;;
	hold)
		msg=$(sweep_msg 4k)
		for k in $SWEEP_HOLD; do
			for c in noop-unix mw-unix; do
				if [ "$c" = mw-unix ]; then
					# a fresh worker for every point
					stop_daemon
					start_daemon "$LAB/mw-unix.ini"
					PIDS[mw-unix]=$MW_DAEMON_PID
				fi
				pids=$(cfg_pids "$c")
				r0=$(vm VmRSS $pids)
				log=$OUT/sweep-hold-$c-$k.txt
				"$BIN/mlat" -s "${MLAT_SOCK[$c]}" -c "$k" -w 3 -m "$msg" \
				    -a "$CLIENT_IP" -T 120 > "$log" 2>&1 &
				mp=$!
				for ((i = 0; i < 2400; i++)); do
					grep -qs holding "$log" && break
					kill -0 "$mp" 2>/dev/null || break
					sleep 0.05
				done
				sleep 0.5
				pids=$(cfg_pids "$c")
				r1=$(vm VmRSS $pids)
				th=$(vm Threads $pids)
				wait "$mp"
				grep -q holding "$log" || say "  hold=$k $c: did not get to hold ($(tail -n 1 "$log"))"
				echo "hold $k $c $r0 $r1 $th" >> "$SWEEP_TXT"
				say "  hold=$k $c: RSS $r0 kB -> $r1 kB, $th threads"
			done
		done
		;;
	*)
		say "sweep: unknown part $part"
		;;
	esac
done

say "sweep: charts and report"
MW_REV=$(cd "$TOP" && git rev-parse --short HEAD 2>/dev/null)$(cd "$TOP" &&
    git diff --quiet HEAD -- lib milter 2>/dev/null || echo "+uncommitted")
export SWEEP_TXT STAMP CORES="$(nproc)" LOADAVG0 MW_REV \
    CPU="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
    LOADAVG="$(cut -d' ' -f1-3 /proc/loadavg)" SWEEP_PARTS SWEEP_MSGS \
    SWEEP_BYTES SWEEP_RCPT_BUDGET SWEEP_SCALE SESSIONS
mkdir -p "$BENCH_RESULTS"
base=$BENCH_RESULTS/$DATE-sweep
[ -e "$base" ] && base=$BENCH_RESULTS/$DATE-$(date +%H%M)-sweep
mkdir -p "$base"
cp "$SWEEP_TXT" "$base/sweep.txt"
$PY "$HERE/sweep_plot.py" "$base" || lab_die "sweep_plot.py failed"
cat "$base/README.md"
say "written: $base/"
