#!/bin/bash
# bench/run.sh -- mailwarden's benchmark: the real parts on loopback, side
# by side on the same messages and load, one table at the end.
#
#	bench/run.sh			full run (about 12 minutes on 2 cores)
#	BENCH_MSGS=300 BENCH_REPEAT=1 bench/run.sh	quick run
#
# Sets up, with t/lib.sh: nsd serving bench/zones (the sender's domain
# with SPF, an rsa-2048 DKIM key made for this run and DMARC; reverse DNS
# of the client; eight DNS lists), redis-server, a private Postfix whose
# sink.test goes to discard:, and these milters:
#   none          Postfix alone: the ceiling
#   noop-*        bench/noop_milter.c: what libmilter's protocol costs
#   mw-*          mailwarden, all checks on (bench/conf/); mw-stats-unix
#                 also with [stats] on and scraped every second
#   rspamd-*      rspamd, stock Debian configuration as installed, proxy
#                 worker in milter mode, told about the lab's DNS lists,
#                 Redis and name server
#   od-unix       opendkim (verify) + opendmarc (with its own SPF check)
#   (optional: noop-hdr-inet, noop-hdr-nagle: the no-op milter adding one
#   header, with and without TCP_NODELAY; bench/mlat measures them anyway)
# (-unix / -inet: the milter socket).  Load: Postfix's smtp-source sends
# the same DKIM-signed message file (-F) to every configuration, BENCH_MSGS
# messages over BENCH_SESSIONS sessions, per size in BENCH_SIZES, repeated
# BENCH_REPEAT times in turns (the median counts).  bench/mlat.c then
# measures per-message latency at the milter socket itself, and the
# memory tests run (peak RSS of every daemon, a 25 MB message, 500
# connections held mid-transaction).  bench/dns_parallel.sh,
# bench/greylist_bench*.sh and bench/dkim_rss*.sh run too when present.
#
# Everything runs in a private network namespace (unshare -n) whose
# loopback also carries 192.0.2.25, the client address: a client that is
# not 127.0.0.1 is not "local" to any of the filters (libspf2 passes
# loopback without a lookup, rspamd skips local senders), and
# /etc/resolv.conf is replaced there by "nameserver 127.0.0.1", where nsd
# answers on port 53, so filters that use the system resolver
# (opendmarc) ask the lab's zones and nothing leaves the machine.
# /tmp is a private tmpfs there too (unless MW_KEEP_LAB is set), so the
# lab directory is out of reach of anything sweeping /tmp/mwlab.*.
# Without unshare (BENCH_NETNS=0) the client is 127.0.0.1 and the peers
# are skipped.
#
# Output: the table on stdout, and bench/results/DATE.md + DATE.csv.
# Knobs (environment):
#   BENCH_MSGS=2000 BENCH_SESSIONS=20 BENCH_SIZES="4k 100k" BENCH_REPEAT=3
#   BENCH_CONFIGS="none noop-unix noop-inet mw-unix mw-inet rspamd-unix
#                  rspamd-inet od-unix"
#   BENCH_MLAT_MSGS (default BENCH_MSGS)  BENCH_HOLD_CONNS=500
#   BENCH_BIG=25000000 (bytes of the big message; 0 = skip)
#   BENCH_EXTRAS=1 (0: do not run dns_parallel/greylist_bench/dkim_rss)
#   BENCH_PEERS=1 (0: no rspamd/opendkim/opendmarc)  BENCH_NETNS=1
#   BENCH_RESULTS=bench/results
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/.." && pwd)

BENCH_MSGS=${BENCH_MSGS:-2000}
BENCH_SESSIONS=${BENCH_SESSIONS:-20}
BENCH_SIZES=${BENCH_SIZES:-4k 100k}
BENCH_REPEAT=${BENCH_REPEAT:-3}
BENCH_CONFIGS=${BENCH_CONFIGS:-none noop-unix noop-inet mw-unix mw-stats-unix mw-inet rspamd-unix rspamd-inet od-unix}
BENCH_MLAT_MSGS=${BENCH_MLAT_MSGS:-$BENCH_MSGS}
BENCH_HOLD_CONNS=${BENCH_HOLD_CONNS:-500}
BENCH_BIG=${BENCH_BIG:-25000000}
BENCH_EXTRAS=${BENCH_EXTRAS:-1}
BENCH_PEERS=${BENCH_PEERS:-1}
BENCH_NETNS=${BENCH_NETNS:-1}
BENCH_RESULTS=${BENCH_RESULTS:-$HERE/results}
# BENCH_MODE=sweep: the set-up below, then the cost curves of
# bench/sweep.sh (its knobs: SWEEP_*) instead of the standard run.
BENCH_MODE=${BENCH_MODE:-standard}
if [ "$BENCH_MODE" = sweep ]; then
	BENCH_CONFIGS="none noop-unix mw-unix"
	BENCH_PEERS=0
	BENCH_SIZES=4k
fi
PY=/usr/bin/python3	# Debian's, with python3-dkim (not a pyenv shim)
export BENCH_MSGS BENCH_SESSIONS BENCH_SIZES BENCH_REPEAT BENCH_CONFIGS \
    BENCH_MLAT_MSGS BENCH_HOLD_CONNS BENCH_BIG BENCH_EXTRAS BENCH_PEERS \
    BENCH_NETNS BENCH_RESULTS BENCH_MODE

# ------------------------------------------------- network namespace -----

# Re-run this script in a new network + mount namespace: loopback up with
# 192.0.2.25 on it, /etc/resolv.conf -> 127.0.0.1 (bind mount, private to
# the namespace).  Everything started inside dies with it.
if [ "$BENCH_NETNS" = 1 ] && [ -z "${BENCH_IN_NETNS:-}" ]; then
	if unshare -n -m true 2>/dev/null; then
		resolv=$(mktemp /tmp/mwbench-resolv.XXXXXX)
		printf 'nameserver 127.0.0.1\noptions attempts:1 timeout:2\n' > "$resolv"
		chmod 0644 "$resolv"
		# A private /tmp too (unless the lab is to be kept for a
		# look): the lab directory lives there, out of reach of
		# anything on the machine that sweeps /tmp/mwlab.* meanwhile.
		private_tmp=1
		[ -n "${MW_KEEP_LAB:-}" ] && [ "${MW_KEEP_LAB:-0}" != 0 ] && private_tmp=0
		exec unshare -n -m --propagation private \
		    env BENCH_IN_NETNS=1 BENCH_RESOLV="$resolv" BENCH_PRIVATE_TMP=$private_tmp \
		    bash -c 'ip link set lo up &&
			ip addr add 192.0.2.25/32 dev lo &&
			mount --bind "$BENCH_RESOLV" /etc/resolv.conf &&
			rm -f "$BENCH_RESOLV" &&
			{ [ "$BENCH_PRIVATE_TMP" = 0 ] ||
			  mount -t tmpfs -o size=8g,mode=1777 bench-tmp /tmp; } &&
			exec bash "$0" "$@"' "$0" "$@"
	fi
	echo "bench: cannot make a network namespace (unshare -n -m): running" \
	    "on the host's loopback, client 127.0.0.1, peers skipped" >&2
fi
if [ -n "${BENCH_IN_NETNS:-}" ]; then
	NETNS=1
	CLIENT_IP=192.0.2.25
else
	NETNS=0
	CLIENT_IP=127.0.0.1
	BENCH_PEERS=0
fi

. "$TOP/t/lib.sh"
lab_init >/dev/null
# Up to 500 held milter connections, each with its own sockets.
ulimit -n 20000 2>/dev/null || ulimit -n 4096 2>/dev/null || true
if [ "$NETNS" = 1 ]; then
	# Our own loopback: nsd takes the standard port, which every
	# resolver (system, libunbound, rspamd) uses without being told.
	NSD_PORT=53
	export NSD_PORT
fi

BIN=$LAB/bin
OUT=$LAB/out
mkdir -p "$BIN" "$OUT"
DATE=$(date +%F)
LOADAVG0=$(cut -d' ' -f1-3 /proc/loadavg)
STAMP=$(date '+%F %T %Z')

say() { printf '%s bench: %s\n' "$(date +%T)" "$*" >&2; }

# ------------------------------------------------------------ build ------

# The tree may be rebuilt while we run: wait for a build in progress,
# build if there is none, and run a copy.
for ((i = 0; i < 120; i++)); do [ -x "$MW_DAEMON" ] && break; sleep 1; done
[ -x "$MW_DAEMON" ] || make -C "$BUILD" -j2 >/dev/null ||
	lab_die "mailwarden is not built and make failed"
cp "$MW_DAEMON" "$BIN/mailwarden" || lab_die "cannot copy $MW_DAEMON"
MW_DAEMON=$BIN/mailwarden
# noop_milter and mlat: Makefile.am's EXTRA_PROGRAMS (no sanitizers).
make -C "$BUILD" bench/noop_milter bench/mlat >/dev/null ||
	lab_die "cannot build bench/noop_milter and bench/mlat"
cp "$BUILD/bench/noop_milter" "$BUILD/bench/mlat" "$BIN/" ||
	lab_die "cannot copy bench/noop_milter and bench/mlat"
command -v smtp-source >/dev/null || lab_die "smtp-source (postfix) not found"
$PY -c 'import dkim' 2>/dev/null || lab_die "python3-dkim not installed (apt-get install python3-dkim)"

# --------------------------------------------------- key, messages -------

say "DKIM key and messages"
openssl genrsa -out "$LAB/dkim.pem" 2048 2>/dev/null || lab_die "openssl genrsa failed"
chmod 0600 "$LAB/dkim.pem"
DKIM_TXT=$($PY "$HERE/mkmsg.py" --txt "$LAB/dkim.pem") || lab_die "mkmsg --txt failed"
for size in $BENCH_SIZES; do
	$PY "$HERE/mkmsg.py" "$LAB/dkim.pem" "$LAB/msg-$size.eml" "$size" ||
		lab_die "cannot make the $size message"
done
MSG_SMALL=$LAB/msg-$(set -- $BENCH_SIZES; echo "$1").eml
# The probe message goes to the Maildir: its To: must say so (rspamd
# scores a To: that is not the recipient, and greylists the body then).
$PY "$HERE/mkmsg.py" "$LAB/dkim.pem" "$LAB/msg-probe.eml" 4k sender@bench.example \
    rcpt@maildir.test || lab_die "cannot make the probe message"

# --------------------------------------------------------------- DNS -----

DNSBL_ZONES=$(awk '$1 == "zone" { print $3 }' "$HERE/conf/mailwarden.d/dnsbl.ini")
# the sweep's lists: z01.sweep.test .. z32.sweep.test
SWEEP_DNSBL=
[ "$BENCH_MODE" = sweep ] && SWEEP_DNSBL=$(for i in $(seq -w 1 32); do echo "z$i.sweep.test"; done)
ZDIR=$LAB/zones
mkdir -p "$ZDIR"
_lab_subst "CLIENT_IP=$CLIENT_IP" "DKIM_TXT=$DKIM_TXT" \
    < "$HERE/zones/bench.example.zone.in" > "$ZDIR/bench.example.zone"
for z in $DNSBL_ZONES $SWEEP_DNSBL; do
	_lab_subst "ZONE=$z" < "$HERE/zones/dnsbl.zone.in" > "$ZDIR/$z.zone"
done
cp "$HERE/zones/2.0.192.in-addr.arpa.zone" "$HERE/zones/127.in-addr.arpa.zone" "$ZDIR/"
# nsd's response rate limiting (on in Debian's build: 200 answers/s per
# client /24 and answer type) would drop the answers of a benchmark, all
# from 127.0.0.1, and every filter would wait for its resolver's
# timeout: start_nsd with t/nsd.conf.in plus rrl-ratelimit: 0.
mkdir -p "$LAB/nsd-template"
awk '{ print } /^server:/ && !done { print "    rrl-ratelimit: 0"; print "    rrl-whitelist-ratelimit: 0"; done = 1 }' \
    "$T_DIR/nsd.conf.in" > "$LAB/nsd-template/nsd.conf.in"
grep -q 'rrl-ratelimit' "$T_DIR/nsd.conf.in" && cp "$T_DIR/nsd.conf.in" "$LAB/nsd-template/"
say "nsd on 127.0.0.1:$NSD_PORT"
T_DIR=$LAB/nsd-template start_nsd "$ZDIR"/*.zone
[ "$(lab_dig -x "$CLIENT_IP" PTR)" = mx.bench.example. ] ||
	lab_die "the lab DNS does not give the client's PTR"

start_redis

# ------------------------------------------------------------ Postfix ----

SMTP_HOST=127.0.0.1
start_postfix ""
if [ "$NETNS" = 1 ]; then
	# A second smtpd on 192.0.2.25: smtp-source connecting there comes
	# from 192.0.2.25 (the kernel picks the destination as source).
	printf '%s:%s inet n - n - - smtpd\n' "$CLIENT_IP" "$SMTP_PORT" >> "$PF_ETC/master.cf"
	postfix_reload
	SMTP_HOST=$CLIENT_IP
	for ((i = 0; i < 100; i++)); do
		(exec 3<>"/dev/tcp/$SMTP_HOST/$SMTP_PORT") 2>/dev/null && break
		sleep 0.05
	done
fi
# As Postfix is run on an MX: it looks the client's name up (PTR, then
# A) and hands it to the milters, at the same cost for every
# configuration.  The message size cap is the milters' business.
postfix_set "smtpd_peername_lookup=yes" "message_size_limit=40000000"

# ------------------------------------------------------------ milters ----

declare -A MILTER	# config name -> smtpd_milters value
declare -A MLAT_SOCK	# config name -> socket for bench/mlat
declare -A PIDS		# config name -> daemon pids (for RSS)
declare -A CHECK	# mailwarden check -> on | missing | rejected: why
MILTER[none]=""

wait_sock() {	# wait_sock SPEC NAME [TIMEOUT_S=10]
	local i
	for ((i = 0; i < ${3:-10} * 20; i++)); do
		_lab_socket_ready "$1" && return 0
		sleep 0.05
	done
	lab_die "$2 does not listen on $1" "$LAB/$2.log"
}

# milter spec (libmilter syntax) -> Postfix's
pf_spec() {
	case $1 in
		unix:*) echo "$1" ;;
		inet:*) local p=${1#inet:}; echo "inet:${p#*@}:${p%%@*}" ;;
	esac
}

say "noop milter"
NOOP_PORT=$(lab_port)
lab_spawn noop-unix "$BIN/noop_milter" -s "unix:$LAB/noop.sock"
lab_spawn noop-inet "$BIN/noop_milter" -s "inet:$NOOP_PORT@127.0.0.1"
# What TCP_NODELAY is worth: a no-op milter that adds one header (two
# small writes at end-of-message), with and without it.
HDR_PORT=$(lab_port)
NAGLE_PORT=$(lab_port)
lab_spawn noop-hdr-inet "$BIN/noop_milter" -a -s "inet:$HDR_PORT@127.0.0.1"
lab_spawn noop-hdr-nagle "$BIN/noop_milter" -a -n -s "inet:$NAGLE_PORT@127.0.0.1"
wait_sock "unix:$LAB/noop.sock" noop-unix
wait_sock "inet:$NOOP_PORT@127.0.0.1" noop-inet
wait_sock "inet:$HDR_PORT@127.0.0.1" noop-hdr-inet
wait_sock "inet:$NAGLE_PORT@127.0.0.1" noop-hdr-nagle
MLAT_SOCK[noop-hdr-inet]=inet:$HDR_PORT@127.0.0.1
MLAT_SOCK[noop-hdr-nagle]=inet:$NAGLE_PORT@127.0.0.1
MLAT_SOCK[noop-unix]=unix:$LAB/noop.sock
MLAT_SOCK[noop-inet]=inet:$NOOP_PORT@127.0.0.1
PIDS[noop-unix]=$(lab_pid noop-unix)
PIDS[noop-inet]=$(lab_pid noop-inet)

# mailwarden's configuration: the common part, and each check's part
# that this mailwarden accepts (a check still being written is reported
# as missing).
mw_conf() {	# mw_conf FILE SOCKET
	local f c err
	{
		_lab_subst "MW_SOCKET=$2" "DNS_PORT=$NSD_PORT" "REDIS_PORT=$REDIS_PORT" \
		    "LAB=$LAB" < "$HERE/conf/mailwarden.ini.in"
		for c in iprev helo dnsbl spf dkim dmarc greylist size; do
			[ "${CHECK[$c]:-}" = on ] || continue
			echo
			_lab_subst "DNS_PORT=$NSD_PORT" "REDIS_PORT=$REDIS_PORT" "LAB=$LAB" \
			    < "$HERE/conf/mailwarden.d/$c.ini"
		done
	} > "$1"
}
mw_probe_checks() {
	local c base=$LAB/mw-probe.ini dump err
	for c in iprev helo dnsbl spf dkim dmarc greylist size; do CHECK[$c]=off; done
	mw_conf "$base" "unix:$LAB/probe.sock"
	for c in iprev helo dnsbl spf dkim dmarc greylist size; do
		{
			cat "$base"
			echo
			_lab_subst "DNS_PORT=$NSD_PORT" "REDIS_PORT=$REDIS_PORT" "LAB=$LAB" \
			    < "$HERE/conf/mailwarden.d/$c.ini"
		} > "$LAB/mw-probe-$c.ini"
		if dump=$("$MW_DAEMON" -t -c "$LAB/mw-probe-$c.ini" 2>&1); then
			# A check still being written has a placeholder module:
			# it takes no keys and dumps none.
			if awk -v s="[$c]" '$0 == s { f = 1; next } /^\[/ { f = 0 }
			    f && /=/ { n++ } END { exit !n }' <<<"$dump"; then
				CHECK[$c]=on
			else
				CHECK[$c]="missing (not written yet)"
			fi
		elif grep -q "unknown key\|unknown\b" <<<"$dump" &&
		     [ "$(grep -c . "$TOP/lib/mw_$c.c" 2>/dev/null || echo 0)" -lt 60 ]; then
			CHECK[$c]="missing (not written yet)"
		else
			err=$(grep -v '^\s*$' <<<"$dump" | tail -n 1)
			CHECK[$c]="config rejected: $err"
		fi
	done
}

say "mailwarden"
mw_probe_checks
MW_PORT=$(lab_port)
mw_conf "$LAB/mw-unix.ini" "unix:$LAB/mw.sock"
mw_conf "$LAB/mw-inet.ini" "inet:$MW_PORT@127.0.0.1"
"$MW_DAEMON" -t -c "$LAB/mw-unix.ini" > "$OUT/mw-config-dump.txt" 2>&1 ||
	lab_die "mailwarden -t rejects the benchmark configuration" "$OUT/mw-config-dump.txt"
start_daemon "$LAB/mw-unix.ini"
lab_spawn mw-inet "$MW_DAEMON" -f -c "$LAB/mw-inet.ini"
wait_sock "inet:$MW_PORT@127.0.0.1" mw-inet
MLAT_SOCK[mw-unix]=unix:$LAB/mw.sock
MLAT_SOCK[mw-inet]=inet:$MW_PORT@127.0.0.1
PIDS[mw-unix]=$MW_DAEMON_PID
PIDS[mw-inet]=$(lab_pid mw-inet)
# mw-stats-unix: mw-unix with [stats] on, scraped every second as a
# Prometheus server would: what counting and serving metrics cost.
STATS_PORT=$(lab_port)
{
	sed "s|^socket = unix:.*|socket = unix:$LAB/mw-stats.sock|" "$LAB/mw-unix.ini"
	printf '\n[stats]\nlisten = 127.0.0.1:%s\n' "$STATS_PORT"
} > "$LAB/mw-stats-unix.ini"
lab_spawn mw-stats-unix "$MW_DAEMON" -f -c "$LAB/mw-stats-unix.ini"
wait_sock "unix:$LAB/mw-stats.sock" mw-stats-unix
lab_spawn stats-scraper bash -c "while :; do curl -s -o /dev/null \
    http://127.0.0.1:$STATS_PORT/metrics; sleep 1; done"
MLAT_SOCK[mw-stats-unix]=unix:$LAB/mw-stats.sock
PIDS[mw-stats-unix]=$(lab_pid mw-stats-unix)

for c in noop-unix noop-inet noop-hdr-inet noop-hdr-nagle mw-unix mw-inet mw-stats-unix; do
	MILTER[$c]=$(pf_spec "${MLAT_SOCK[$c]}")
done

# -------------------------------------------------------------- peers ----

PEER_NOTE=()
PSL=$LAB/public_suffix_list.dat
{ cat /usr/share/publicsuffix/public_suffix_list.dat 2>/dev/null; echo example; } > "$PSL"

start_rspamd() {
	local d=$LAB/rspamd l p1 p2 p3 zone i=0
	command -v rspamd >/dev/null || { PEER_NOTE+=("rspamd: not installed (apt-get install rspamd)"); return 1; }
	mkdir -p "$d/local/local.d" "$d/local/override.d" "$d/db" "$d/run" "$d/log"
	chown -R _rspamd:_rspamd "$d" 2>/dev/null || true
	p1=$(lab_port); p2=$(lab_port); p3=$(lab_port)
	RSPAMD_PORT=$p1
	l=$d/local
	# The workers on our ports; the milter proxy also on a unix socket.
	cat > "$l/override.d/worker-proxy.inc" <<EOF
bind_socket = ["127.0.0.1:$p1", "$d/run/proxy.sock mode=0666 owner=_rspamd"];
milter = yes;
timeout = 120s;
upstream "local" { default = yes; self_scan = no; hosts = "127.0.0.1:$p2"; }
count = 1;
max_retries = 5;
discard_on_reject = false;
quarantine_on_reject = false;
spam_header = "X-Spam";
reject_message = "Spam message rejected";
EOF
	echo "bind_socket = \"127.0.0.1:$p2\";" > "$l/override.d/worker-normal.inc"
	echo "bind_socket = \"127.0.0.1:$p3\";" > "$l/override.d/worker-controller.inc"
	cat > "$l/local.d/options.inc" <<EOF
dns { nameserver = ["127.0.0.1:$NSD_PORT"]; }
EOF
	echo "servers = \"127.0.0.1:$REDIS_PORT\";" > "$l/local.d/redis.conf"
	# The same eight lists as mailwarden's, instead of the stock ones
	# (which name real DNS lists this lab cannot ask).
	{
		echo "rbls {"
		for zone in $DNSBL_ZONES; do
			i=$((i + 1))
			printf '  bench%d { rbl = "%s"; ipv4 = true; ipv6 = false; from = true; received = false; rdns = false; helo = false; emails = false; urls = false; dkim = false; symbol = "BENCH_RBL%d"; }\n' "$i" "$zone" "$i"
		done
		echo "}"
	} > "$l/override.d/rbl.conf"
	# A-R in the delivered message, to see what rspamd concluded.
	echo 'use = ["authentication-results", "x-spamd-result"];' > "$l/local.d/milter_headers.conf"
	# Modules that would ask rspamd.com's services (not reachable here).
	echo 'enabled = false;' > "$l/local.d/asn.conf"
	echo 'enabled = false;' > "$l/local.d/fuzzy_check.conf"
	echo 'enabled = false;' > "$l/local.d/surbl.conf"
	chown -R _rspamd:_rspamd "$d" 2>/dev/null || true
	lab_spawn rspamd rspamd -f -u _rspamd -g _rspamd -c /etc/rspamd/rspamd.conf \
	    --var="LOCAL_CONFDIR=$l" --var="DBDIR=$d/db" --var="RUNDIR=$d/run" \
	    --var="LOGDIR=$d/log"
	# it loads (and compiles) its rules first: 10 to 30 s
	# rspamd renames its processes (the lab's path is gone from their
	# command lines): stop the main process and its workers ourselves.
	lab_on_cleanup stop_rspamd
	wait_sock "inet:$p1@127.0.0.1" rspamd 120
	wait_sock "inet:$p2@127.0.0.1" rspamd 120
	wait_sock "unix:$d/run/proxy.sock" rspamd 120
	MLAT_SOCK[rspamd-inet]=inet:$p1@127.0.0.1
	MLAT_SOCK[rspamd-unix]=unix:$d/run/proxy.sock
	MILTER[rspamd-inet]=inet:127.0.0.1:$p1
	MILTER[rspamd-unix]=unix:$d/run/proxy.sock
	return 0
}

# all pids of a daemon and its children (rspamd forks its workers)
tree_pids() {
	local p
	for p in "$@"; do
		echo "$p"
		tree_pids $(pgrep -P "$p" 2>/dev/null)
	done
}

stop_rspamd() {
	local main pids p i
	main=$(lab_pid rspamd) || return 0
	pids=$(tree_pids "$main")
	kill -TERM "$main" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		_lab_alive "$main" || break
		sleep 0.1
	done
	for p in $pids; do _lab_alive "$p" && kill -KILL "$p" 2>/dev/null; done
	return 0
}

start_od() {
	local d=$LAB/od
	command -v opendkim >/dev/null && command -v opendmarc >/dev/null ||
		{ PEER_NOTE+=("opendkim/opendmarc: not installed (apt-get install opendkim opendmarc)"); return 1; }
	mkdir -p "$d"
	# opendkim resolves with libunbound.  Nameservers points it at the
	# lab's nsd (port 53 in our namespace).  Not ResolverConfiguration
	# with an unbound.conf: under load opendkim 2.11 had libunbound read
	# that file again while other threads verified, and libunbound's
	# config parser is not thread-safe ("fatal flex scanner internal
	# error", then a segfault, with 20 sessions).
	cat > "$d/opendkim.conf" <<EOF
Mode			v
Socket			local:$d/opendkim.sock
UMask			000
PidFile			$d/opendkim.pid
Syslog			no
AuthservID		mx.sink.test
AlwaysAddARHeader	yes
RequireSafeKeys		false
Nameservers		127.0.0.1
EOF
	cat > "$d/opendmarc.conf" <<EOF
Socket			local:$d/opendmarc.sock
UMask			000
PidFile			$d/opendmarc.pid
Syslog			false
AuthservID		mx.sink.test
TrustedAuthservIDs	mx.sink.test
SPFSelfValidate		true
SPFIgnoreResults	true
PublicSuffixList	$PSL
RejectFailures		true
FailureReports		false
IgnoreAuthenticatedClients true
EOF
	lab_spawn opendkim opendkim -f -x "$d/opendkim.conf"
	lab_spawn opendmarc opendmarc -f -c "$d/opendmarc.conf"
	wait_sock "unix:$d/opendkim.sock" opendkim
	wait_sock "unix:$d/opendmarc.sock" opendmarc
	MLAT_SOCK[opendkim-unix]=unix:$d/opendkim.sock
	MLAT_SOCK[opendmarc-unix]=unix:$d/opendmarc.sock
	MILTER[od-unix]="unix:$d/opendkim.sock, unix:$d/opendmarc.sock"
	PIDS[od-unix]="$(lab_pid opendkim) $(lab_pid opendmarc)"
	return 0
}

if [ "$BENCH_PEERS" = 1 ]; then
	say "peers: rspamd, opendkim + opendmarc"
	start_rspamd || true
	start_od || true
else
	PEER_NOTE+=("peers skipped (BENCH_PEERS=0, or no network namespace)")
fi


# ----------------------------------------------------- load helpers ------

# smtp_load MSGFILE N SESSIONS RCPT [SMTP-SOURCE ARGS...]: N messages with
# smtp-source; prints the elapsed seconds; returns smtp-source's status
# (without -A it stops at the first reply that is not 2xx/3xx).
smtp_load() {
	local msg=$1 n=$2 s=$3 rcpt=$4 t0 t1 rc=0
	shift 4
	t0=$(date +%s.%N)
	timeout 900 smtp-source -s "$s" -m "$n" -F "$msg" -f sender@bench.example \
	    -t "$rcpt" -M mx.bench.example "$@" "$SMTP_HOST:$SMTP_PORT" \
	    >>"$OUT/smtp-source.log" 2>&1 || rc=$?
	t1=$(date +%s.%N)
	echo "$t0 $t1" | awk '{ printf "%.3f\n", $2 - $1 }'
	return $rc
}

use_milters() {	# use_milters CONFIG
	postfix_set "smtpd_milters=${MILTER[$1]}" >/dev/null
}

# The greylisting triplets (client /24, sender, recipient) must have
# passed before the timed runs, as for a correspondent one mails daily:
# a first attempt (451), the delay, a retry that passes.
greylist_pass() {
	local r rcpt
	[ "${CHECK[greylist]}" = on ] || return 0
	use_milters mw-unix
	for rcpt in rcpt@sink.test rcpt@maildir.test; do
		smtp_load "$LAB/msg-probe.eml" 1 1 "$rcpt" -A >/dev/null
	done
	sleep 1.5
	for rcpt in rcpt@sink.test rcpt@maildir.test; do
		if ! smtp_load "$LAB/msg-probe.eml" 1 1 "$rcpt" >/dev/null; then
			r=$(tail -n 3 "$OUT/smtp-source.log")
			lab_die "greylisting: $rcpt does not pass after the delay: $r" "$MW_LOG"
		fi
	done
	clear_maildir
}

vm() {	# vm FIELD PID...: sum of /proc/PID/status FIELD (kB)
	local f=$1 p s=0 v; shift
	for p in "$@"; do
		v=$(awk -v f="$f:" '$1 == f { print $2 }' "/proc/$p/status" 2>/dev/null)
		s=$((s + ${v:-0}))
	done
	echo "$s"
}
cpu_ticks() {	# cpu_ticks PID...: user + system CPU time so far, in clock ticks
	local p s=0 v
	for p in "$@"; do
		v=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null)
		s=$((s + ${v:-0}))
	done
	echo "$s"
}
CLK_TCK=$(getconf CLK_TCK)
cfg_pids() {	# cfg_pids CONFIG: the milter processes of a configuration, now
	case $1 in
		rspamd-*) tree_pids "$(lab_pid rspamd)" ;;
		# the daemon supervises its worker ([milter] auto_restart): count both
		*) if [ -n "${PIDS[$1]:-}" ]; then tree_pids "${PIDS[$1]}"; fi ;;
	esac
}
vmmax() {	# vmmax FIELD PID...: the largest of them
	local f=$1 p m=0 v; shift
	for p in "$@"; do
		v=$(vm "$f" "$p")
		[ "$v" -gt "$m" ] && m=$v
	done
	echo "$m"
}

# Delivered headers of one message per configuration: what each filter
# concluded (Authentication-Results etc.), for the report.
probe() {	# probe CONFIG
	local f
	use_milters "$1"
	clear_maildir
	if ! smtp_load "$LAB/msg-probe.eml" 1 1 rcpt@maildir.test >/dev/null; then
		echo "(refused: $(tail -n 1 "$OUT/smtp-source.log"))" > "$OUT/probe-$1.txt"
		return 1
	fi
	if wait_delivered 1 10 2>/dev/null; then
		f=$(last_delivered)
		sed '/^$/q' "$f" | awk '
			/^[^ \t]/ { keep = ($0 ~ /^(Authentication-Results|X-Spam|X-Spamd-Result|X-Greylist|Received-SPF|X-Mailwarden|X-Rspamd|DKIM-Filter|X-DMARC)/) }
			keep' > "$OUT/probe-$1.txt"
		[ -s "$OUT/probe-$1.txt" ] || echo "(no header added)" > "$OUT/probe-$1.txt"
	else
		echo "(not delivered within 10 s)" > "$OUT/probe-$1.txt"
	fi
	clear_maildir
}

# ------------------------------------------------------- throughput ------

greylist_pass
CONFIGS=()
for c in $BENCH_CONFIGS; do
	if [ -n "${MILTER[$c]+set}" ]; then CONFIGS+=("$c"); else
		PEER_NOTE+=("$c: not measured (not started)"); fi
done
if [ "$BENCH_MODE" = sweep ]; then
	. "$HERE/sweep.sh"
	exit 0
fi
say "probe message through each configuration"
for c in "${CONFIGS[@]}"; do probe "$c" || say "$c refused the probe message"; done

say "throughput: ${#CONFIGS[@]} configurations x sizes [$BENCH_SIZES] x $BENCH_REPEAT," \
    "$BENCH_MSGS messages over $BENCH_SESSIONS sessions each"
: > "$OUT/tp.txt"
for ((rep = 1; rep <= BENCH_REPEAT; rep++)); do
	for size in $BENCH_SIZES; do
		for c in "${CONFIGS[@]}"; do
			use_milters "$c"
			# warm up: processes forked, caches filled
			smtp_load "$LAB/msg-$size.eml" 40 "$BENCH_SESSIONS" rcpt@sink.test >/dev/null 2>&1
			pids=$(cfg_pids "$c")
			t0=$(cpu_ticks $pids)
			if secs=$(smtp_load "$LAB/msg-$size.eml" "$BENCH_MSGS" "$BENCH_SESSIONS" rcpt@sink.test); then
				rate=$(awk -v n="$BENCH_MSGS" -v s="$secs" 'BEGIN { printf "%.1f", n / s }')
			else
				rate=FAIL
			fi
			# CPU the milter spent per message: much less
			# sensitive than msg/s to other work on the machine
			cpu=-
			[ -n "$pids" ] && cpu=$(awk -v a="$t0" -v b="$(cpu_ticks $pids)" \
			    -v hz="$CLK_TCK" -v n="$BENCH_MSGS" 'BEGIN { printf "%.3f", (b - a) * 1000 / hz / n }')
			echo "$c $size $rep $rate $secs $cpu" >> "$OUT/tp.txt"
			say "  $c $size #$rep: $rate msg/s, milter CPU $cpu ms/msg"
		done
	done
done

# DNS answers lost on the way (nsd's socket buffer full)?  Counted in
# our own namespace only.
UDP_ERRS=$(nstat -asz UdpRcvbufErrors UdpInErrors 2>/dev/null | awk 'NR > 1 && $1 ~ /^Udp/ { printf "%s%s=%s", sep, $1, $2; sep = " " }')

# What mailwarden concluded for each message of the throughput runs
# (its one log line per message), to show that every check ran.
MW_RESULTS=$(cat "$LAB/mailwarden.log" "$LAB/mw-inet.log" 2>/dev/null |
    sed -n 's/.* results=\[\([^]]*\)\].* verdict=\([a-z]*\).*/[\1] -> \2/p' |
    sort | uniq -c | sort -rn | head -n 8)

# peak RSS of each daemon over the whole throughput run
declare -A HWM
if [ -n "${MLAT_SOCK[rspamd-inet]:-}" ]; then	# its workers, as they are now
	PIDS[rspamd-inet]=$(tree_pids "$(lab_pid rspamd)" | tr '\n' ' ')
	PIDS[rspamd-unix]=${PIDS[rspamd-inet]}
fi
for c in "${!PIDS[@]}"; do HWM[$c]="$(vm VmHWM ${PIDS[$c]}) $(vmmax VmHWM ${PIDS[$c]})"; done

# --------------------------------------------------------- latency -------

say "milter latency (bench/mlat)"
: > "$OUT/mlat.txt"
MLAT_TARGETS=(noop-unix noop-inet mw-unix mw-stats-unix mw-inet)
for t in rspamd-unix rspamd-inet opendkim-unix opendmarc-unix; do
	[ -n "${MLAT_SOCK[$t]:-}" ] && MLAT_TARGETS+=("$t")
done
mlat_run() {	# mlat_run TARGET CONNS MSGS [ARGS...]
	local t=$1 c=$2 n=$3 line; shift 3
	line=$("$BIN/mlat" -s "${MLAT_SOCK[$t]}" -c "$c" -n "$n" -m "$MSG_SMALL" \
	    -a "$CLIENT_IP" -N mx.bench.example -H mx.bench.example -f sender@bench.example \
	    -r rcpt@sink.test \
	    "$@" 2>>"$OUT/mlat.err" | tail -n 1)
	echo "$t $line" >> "$OUT/mlat.txt"
	say "  $t c=$c: ${line#mlat: }"
}
"$BIN/mlat" -s "${MLAT_SOCK[mw-unix]}" -n 1 -c 1 -m "$MSG_SMALL" -a "$CLIENT_IP" \
    -N mx.bench.example -H mx.bench.example -v > /dev/null 2> "$OUT/mlat-mw-headers.txt"
for t in "${MLAT_TARGETS[@]}"; do
	mlat_run "$t" 1 $(( BENCH_MLAT_MSGS / 4 > 50 ? BENCH_MLAT_MSGS / 4 : 50 ))
	mlat_run "$t" "$BENCH_SESSIONS" "$BENCH_MLAT_MSGS"
done
mlat_run noop-hdr-inet 1 50
mlat_run noop-hdr-nagle 1 50

# ---------------------------------------------------------- memory -------

say "memory: message size and concurrent connections"
MEM=()
restart_mw() {
	stop_daemon
	start_daemon "$LAB/mw-unix.ini"
	"$BIN/mlat" -s "unix:$LAB/mw.sock" -n 50 -c 5 -m "$MSG_SMALL" -a "$CLIENT_IP" >/dev/null 2>&1
}
if [ "$BENCH_BIG" != 0 ]; then
	$PY "$HERE/mkmsg.py" "$LAB/dkim.pem" "$LAB/msg-big.eml" "$BENCH_BIG" ||
		lab_die "cannot make the big message"
	restart_mw
	# the worker (a child of the supervisor) holds the message
	h0=$(vmmax VmHWM $(tree_pids "$MW_DAEMON_PID"))
	line=$("$BIN/mlat" -s "unix:$LAB/mw.sock" -n 1 -c 1 -m "$LAB/msg-big.eml" \
	    -a "$CLIENT_IP" -T 120 -v 2>"$OUT/mlat-big.err" | tail -n 1)
	h1=$(vmmax VmHWM $(tree_pids "$MW_DAEMON_PID"))
	MEM+=("big $h0 $h1 ${line#mlat: }")
	grep -q ' ok=1 ' <<<"$line" || say "the big message was not accepted: $line"
	rm -f "$LAB/msg-big.eml"
fi
hold_test() {	# hold_test NAME SOCKET PID
	local name=$1 sock=$2 pid=$3 r0 r1 i log=$OUT/hold-$1.txt
	# the daemon and its children (mailwarden's worker)
	r0=$(vm VmRSS $(tree_pids "$pid"))
	"$BIN/mlat" -s "$sock" -c "$BENCH_HOLD_CONNS" -w 3 -m "$MSG_SMALL" -a "$CLIENT_IP" \
	    -T 60 > "$log" 2>&1 &
	local mp=$!
	for ((i = 0; i < 1200; i++)); do
		grep -q holding "$log" && break
		kill -0 "$mp" 2>/dev/null || break
		sleep 0.05
	done
	sleep 0.5
	r1=$(vm VmRSS $(tree_pids "$pid"))
	threads=$(vm Threads $(tree_pids "$pid"))
	wait "$mp"
	MEM+=("hold-$name $r0 $r1 $threads $(grep -o 'holding.*' "$log" | head -1) / $(tail -n 1 "$log" | sed 's/^mlat: //')")
}
restart_mw
hold_test mw-unix "unix:$LAB/mw.sock" "$MW_DAEMON_PID"
hold_test noop-unix "unix:$LAB/noop.sock" "${PIDS[noop-unix]}"

# ----------------------------------------------------------- extras ------

EXTRAS=()
if [ "$BENCH_EXTRAS" = 1 ]; then
	# their programs (Makefile.am: EXTRA_PROGRAMS, `make bench-programs`)
	make -C "$BUILD" bench-programs >"$OUT/make-bench-programs.log" 2>&1 ||
		say "make bench-programs failed (see the extras' output)"
	for x in "$HERE"/dns_parallel.sh "$HERE"/greylist_bench*.sh "$HERE"/dkim_rss*.sh; do
		[ -f "$x" ] || continue
		say "extra: $(basename "$x")"
		timeout 900 env -u MW_KEEP_LAB bash "$x" > "$OUT/extra-$(basename "$x").txt" 2>&1 ||
			echo "(exited with status $?)" >> "$OUT/extra-$(basename "$x").txt"
		EXTRAS+=("$x")
	done
fi

# ----------------------------------------------------------- report ------

say "report"
VERSIONS=$(for p in postfix libmilter1.0.1 nsd redis-server rspamd opendkim opendmarc \
    libopendkim11 libopendmarc2 libspf2-2 libc-ares2 libhiredis0.14 libunbound8; do
	v=$(dpkg-query -W -f '${Version}' "$p" 2>/dev/null) && echo "$p $v"
done)
MW_REV=$(cd "$TOP" && git rev-parse --short HEAD 2>/dev/null)$(cd "$TOP" &&
    git diff --quiet HEAD -- lib milter 2>/dev/null || echo "+uncommitted")

export OUT STAMP DATE NETNS CLIENT_IP VERSIONS MW_REV LOADAVG0
export CHECKS_STATE=$(for c in iprev helo dnsbl spf dkim dmarc greylist size; do
	echo "$c|${CHECK[$c]}"; done)
export MW_RESULTS
export HWM_STATE=$(for c in "${!HWM[@]}"; do echo "$c ${HWM[$c]}"; done)
export MEM_STATE=$(printf '%s\n' "${MEM[@]}")
[ "$NETNS" = 1 ] && PEER_NOTE+=("UDP receive errors in the namespace after the throughput runs (DNS queries or answers dropped): ${UDP_ERRS:-?}")
export NOTES=$(printf '%s\n' "${PEER_NOTE[@]}")
export EXTRAS_LIST=$(printf '%s\n' "${EXTRAS[@]}")
export CONFIG_LIST="${CONFIGS[*]}"
export CORES=$(nproc)
export CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
export LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$BENCH_RESULTS"
base=$BENCH_RESULTS/$DATE
[ -e "$base.md" ] && base=$BENCH_RESULTS/$DATE-$(date +%H%M)
$PY "$HERE/report.py" "$base.md" "$base.csv" || lab_die "report.py failed"
cat "$base.md"
say "written: $base.md $base.csv"
