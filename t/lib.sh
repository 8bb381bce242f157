# t/lib.sh -- shell harness for mailwarden integration tests.       -*- sh -*-
#
# Source it from a bash test script (set -eu friendly):
#
#     #!/bin/bash
#     set -eu
#     . "$(dirname "$0")/lib.sh"
#     lab_init
#     start_nsd example.test.zone 2.0.192.in-addr.arpa.zone
#     ...
#     done_testing
#
# Everything runs on loopback under LAB=/tmp/mwlab.XXXXXX and is stopped by the
# EXIT/INT/TERM/HUP trap that lab_init installs.  See t/README.md.

if [ -n "${_MW_LIB_SH:-}" ]; then return 0; fi
_MW_LIB_SH=1

# TOP: the source tree (scripts, zones, keys); BUILD: the build tree
# (programs; $top_builddir, set by make, else the source tree).
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$(cd "${top_builddir:-$TOP}" && pwd)
T_DIR=$TOP/t
ZONE_DIR=$T_DIR/zones
MW_DAEMON=${MW_DAEMON:-$BUILD/milter/mailwarden}
export TOP BUILD T_DIR ZONE_DIR MW_DAEMON

LAB=${LAB:-}
_LAB_OWNER=            # pid of the shell that ran lab_init
_LAB_CLEANED=
_LAB_STACK=()          # started components, in start order
_LAB_CLEANUP_CMDS=()   # extra commands registered with lab_on_cleanup
_LAB_PORT_DIR=/tmp/mwlab-ports

# ---------------------------------------------------------------- TAP ------

_tap_n=0
_tap_failed=0

# diag MSG...: diagnostics to stderr, "# "-prefixed, one line per input line
diag() {
    local line
    printf '%s\n' "$*" | while IFS= read -r line; do printf '# %s\n' "$line" >&2; done
    return 0
}
# note MSG...: like diag but on stdout (part of the TAP stream)
note() {
    local line
    printf '%s\n' "$*" | while IFS= read -r line; do printf '# %s\n' "$line"; done
    return 0
}

_tap_result() {  # _tap_result 0|1 DESC
    _tap_n=$((_tap_n + 1))
    if [ "$1" = 0 ]; then
        printf 'ok %d - %s\n' "$_tap_n" "$2"
    else
        _tap_failed=$((_tap_failed + 1))
        printf 'not ok %d - %s\n' "$_tap_n" "$2"
        diag "  Failed test '$2' (${BASH_SOURCE[2]:-?} line ${BASH_LINENO[1]:-?})"
    fi
    return 0
}

pass() { _tap_result 0 "${1:-}"; }
fail() { _tap_result 1 "${1:-}"; if [ $# -gt 1 ]; then shift; diag "$@"; fi; return 0; }

# ok DESC CMD [ARGS...]: passes if CMD exits 0
ok() {
    local desc=$1; shift
    if "$@"; then _tap_result 0 "$desc"; else _tap_result 1 "$desc"; fi
}
# is GOT EXPECTED DESC
is() {
    if [ "$1" = "$2" ]; then _tap_result 0 "${3:-}"; else
        _tap_result 1 "${3:-}"; diag "         got: '$1'" "    expected: '$2'"; fi
}
# isnt GOT UNEXPECTED DESC
isnt() {
    if [ "$1" != "$2" ]; then _tap_result 0 "${3:-}"; else
        _tap_result 1 "${3:-}"; diag "         got: '$1'" "    expected: anything else"; fi
}
# like GOT ERE DESC   (bash [[ =~ ]] extended regex, unanchored)
like() {
    if [[ $1 =~ $2 ]]; then _tap_result 0 "${3:-}"; else
        _tap_result 1 "${3:-}"; diag "                  '$1'" "    doesn't match '$2'"; fi
}
# unlike GOT ERE DESC
unlike() {
    if [[ $1 =~ $2 ]]; then _tap_result 1 "${3:-}"
        diag "                  '$1'" "          matches '$2'"; else _tap_result 0 "${3:-}"; fi
}
# skip DESC REASON: a test marked SKIP (automake's TAP driver counts it as
# SKIP, not PASS).  With CI=true (CI has every dependency) it fails instead.
skip() {
    if [ "${CI:-}" = true ]; then
        _tap_result 1 "${1:-} (skipped, but CI=true: ${2:-})"
        return 0
    fi
    _tap_n=$((_tap_n + 1)); printf 'ok %d - %s # SKIP %s\n' "$_tap_n" "${1:-}" "${2:-}"
}
# skip_all REASON: whole script skipped (call before any test); with
# CI=true a failure instead
skip_all() {
    if [ "${CI:-}" = true ]; then
        printf 'not ok 1 - skipped, but CI=true: %s\n1..1\n' "$*"
        exit 1
    fi
    printf '1..0 # SKIP %s\n' "$*"; exit 0
}
# bail_out REASON: abort the whole test run (TAP "Bail out!")
bail_out() { printf 'Bail out! %s\n' "$*"; exit 255; }
# done_testing: print the plan; exit 1 if any test failed (cleanup runs via the trap)
done_testing() {
    printf '1..%d\n' "$_tap_n"
    if [ "$_tap_failed" -gt 0 ]; then
        diag "Looks like you failed $_tap_failed test(s) of $_tap_n."
        exit 1
    fi
    exit 0
}

# --------------------------------------------------------- utilities -------

# lab_die MSG [FILE...]: infrastructure failure: message (+ tail of FILEs) on
# stderr, exit 1 (the EXIT trap cleans up).  The missing plan marks the test as error.
lab_die() {
    local msg=$1 f; shift
    diag "lab: FATAL: $msg"
    for f in "$@"; do
        if [ -s "$f" ]; then diag "---- last lines of $f:"; diag "$(tail -n 40 "$f")"; fi
    done
    exit 1
}

_lab_need_init() { [ -n "$LAB" ] && [ -d "$LAB" ] || lab_die "${1:-function} called before lab_init"; }

# _lab_alive PID: running and not a zombie (PID 1 here does not reap orphans,
# so a killed daemonized process can stay <defunct> forever)
_lab_alive() {
    local s
    [ -n "${1:-}" ] || return 1
    { IFS= read -r s < "/proc/$1/stat"; } 2>/dev/null || return 1
    s=${s##*) }
    [ "${s%% *}" != Z ] && [ "${s%% *}" != X ]
}

# _lab_wait_gone PID TIMEOUT_S: 0 once PID is gone, 1 on timeout
_lab_wait_gone() {
    local pid=$1 i n=$(( ${2:-5} * 20 ))
    for ((i = 0; i < n; i++)); do
        _lab_alive "$pid" || return 0
        sleep 0.05
    done
    ! _lab_alive "$pid"
}

# _lab_terminate PID [TIMEOUT_S]: SIGTERM, wait, SIGKILL; reaps our own children
_lab_terminate() {
    local pid=$1 t=${2:-5}
    [ -n "$pid" ] || return 0
    if _lab_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        if ! _lab_wait_gone "$pid" "$t"; then
            diag "lab: pid $pid did not exit on SIGTERM within ${t}s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            _lab_wait_gone "$pid" 2 || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
    return 0
}

# lab_wait_port PORT [tcp|udp] [TIMEOUT_S]: wait until something listens on
# 127.0.0.1:PORT (checked with ss, no connection is made)
lab_wait_port() {
    local port=$1 proto=${2:-tcp} t=${3:-10} i opt=-Hltn
    [ "$proto" = udp ] && opt=-Hlun
    for ((i = 0; i < t * 20; i++)); do
        if [ -n "$(ss $opt "sport = :$port" 2>/dev/null)" ]; then return 0; fi
        sleep 0.05
    done
    return 1
}

# _lab_subst KEY=VALUE... : stdin -> stdout with every @KEY@ replaced by VALUE
_lab_subst() {
    local text kv k v
    text=$(cat; printf x); text=${text%x}
    for kv in "$@"; do
        k=${kv%%=*}; v=${kv#*=}
        text=${text//"@$k@"/"$v"}
    done
    printf '%s' "$text"
}

_lab_std_subst() {
    printf '%s\n' "LAB=$LAB" "TOP=$TOP" "T_DIR=$T_DIR" "ZONE_DIR=$ZONE_DIR" \
        "NSD_PORT=${NSD_PORT:-}" "SMTP_PORT=${SMTP_PORT:-}" "REDIS_PORT=${REDIS_PORT:-}" \
        "MILTER_PORT=${MILTER_PORT:-}" "DNSFAULT_PORT=${DNSFAULT_PORT:-}" \
        "REDIS_SOCK=${REDIS_SOCK:-}" "MILTER_CONN=${MILTER_CONN:-}"
}

# mw_config_write FILE <<EOF ... EOF
#   writes stdin to FILE replacing @LAB@ @MILTER_PORT@ @NSD_PORT@ @REDIS_PORT@
#   @SMTP_PORT@ @DNSFAULT_PORT@ @REDIS_SOCK@ @MILTER_CONN@ @TOP@ @T_DIR@ @ZONE_DIR@
mw_config_write() {
    local file=$1 kvs=() line
    [ -n "$file" ] || lab_die "mw_config_write: no file name"
    while IFS= read -r line; do kvs+=("$line"); done < <(_lab_std_subst)
    _lab_subst "${kvs[@]}" > "$file"
    if grep -qE '@[A-Z][A-Z0-9_]*@' "$file"; then
        diag "lab: warning: unsubstituted placeholder in $file: $(grep -oE '@[A-Z][A-Z0-9_]*@' "$file" | sort -u | tr '\n' ' ')"
    fi
    return 0
}

# mw_config_lab FILE <<EOF ... EOF
#   mw_config_write with the lab's usual start in front: [milter] on
#   inet:MILTER_PORT, authserv_id = mx.test, user = nobody; [dns] the lab nsd
#   with timeout_ms = 500.  stdin adds the rest; it may open [milter] or
#   [dns] again for more keys (a section may repeat, a key may not).
mw_config_lab() {
    { printf '%s\n' '[milter]' 'socket = inet:@MILTER_PORT@@127.0.0.1' \
          'authserv_id = mx.test' 'user = nobody' \
          '[dns]' 'nameservers = 127.0.0.1:@NSD_PORT@' 'timeout_ms = 500'
      cat; } | mw_config_write "$1"
}

# dkim_verify FILE: "pass" or "fail": dkimpy verifies the DKIM signature of
#   the message in FILE, keys looked up in the lab's nsd (dig).
dkim_verify() {
    /usr/bin/python3 - "$1" "$NSD_PORT" <<'EOF'
import subprocess, sys, dkim
def txt(name, timeout=5):
    out = subprocess.run(["dig", "+short", "TXT", "@127.0.0.1", "-p", sys.argv[2],
                          name.decode().rstrip(".")], capture_output=True, text=True).stdout
    return "".join(part for line in out.splitlines()
                   for part in line.split('"')[1::2]).encode()
raw = open(sys.argv[1], "rb").read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
print("pass" if dkim.verify(raw, dnsfunc=txt) else "fail")
EOF
}

# lab_chromium ARGS...: headless Chromium as root in the lab (no sandbox, no
#   network of its own, profile and HOME under $LAB), 60 s at most; stderr
#   to $LAB/chromium.log.  E.g. lab_chromium --dump-dom URL > dom.html
lab_chromium() {
    mkdir -p "$LAB/chrome-home"
    HOME=$LAB/chrome-home timeout 60 chromium --headless --no-sandbox --disable-gpu \
        --disable-quic --no-first-run --disable-background-networking \
        --disable-component-update --disable-sync --disable-dev-shm-usage \
        --user-data-dir="$LAB/chrome-profile" "$@" 2>>"$LAB/chromium.log"
}

# ------------------------------------------------------------- ports --------

# _lab_pick_ports N: print N distinct free loopback ports (TCP and UDP free on
# 127.0.0.1, and on ::1 when LAB_IPV6=1).  Ports are taken below the kernel's
# ephemeral range (so outgoing connections never grab one while a component is
# down, e.g. between kill_redis and start_redis) and reserved under
# /tmp/mwlab-ports/PORT (mkdir, holder pid inside) so parallel tests never
# share one; lab_cleanup releases them.
_lab_pick_ports() {
    mkdir -p "$_LAB_PORT_DIR" 2>/dev/null || true
    python3 - "$1" "${LAB_IPV6:-0}" "$_LAB_PORT_DIR" "$_LAB_OWNER" <<'PY'
import os, random, socket, sys, time
n, v6, rdir, owner = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3], sys.argv[4]
try:
    lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except Exception:
    lo = 32768
lo_pick, hi_pick = (20000, lo - 1) if lo > 21000 else (lo, 60999)

def free(p):
    fams = [(socket.AF_INET, "127.0.0.1")] + ([(socket.AF_INET6, "::1")] if v6 else [])
    socks = []
    try:
        for fam, addr in fams:
            for typ in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                s = socket.socket(fam, typ)
                socks.append(s)
                if fam == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind((addr, p))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()

def reserve(p):
    d = os.path.join(rdir, str(p))
    try:
        os.mkdir(d)
    except FileExistsError:
        try:
            holder = int(open(os.path.join(d, "pid")).read().split()[0])
            os.kill(holder, 0)
            return False                      # held by a live lab
        except (OSError, ValueError, IndexError):
            try:
                if os.path.getmtime(d) > time.time() - 5:
                    return False              # being created right now
            except OSError:
                return False
        # stale (its lab died without cleanup): the one that renames it away wins
        gone = "%s.stale.%s.%d" % (d, owner, random.randint(0, 1 << 30))
        try:
            os.rename(d, gone)
            for f in os.listdir(gone):
                os.unlink(os.path.join(gone, f))
            os.rmdir(gone)
            os.mkdir(d)
        except OSError:
            return False
    except OSError:
        return True                           # no reservation dir: best effort
    open(os.path.join(d, "pid"), "w").write(owner + "\n")
    return True

def release(p):
    d = os.path.join(rdir, str(p))
    for f in (os.path.join(d, "pid"),):
        try: os.unlink(f)
        except OSError: pass
    try: os.rmdir(d)
    except OSError: pass

got = []
for _ in range(5000):
    if len(got) == n:
        break
    p = random.randint(lo_pick, hi_pick)
    if p in got or not reserve(p):
        continue
    if free(p):
        got.append(p)
    else:
        release(p)
if len(got) < n:
    sys.exit("lab: cannot find %d free loopback ports" % n)
print(" ".join(map(str, got)))
PY
}

# lab_port: print one more free, reserved port (e.g. for t/dnsfault.py)
lab_port() {
    _lab_need_init lab_port
    local p
    p=$(_lab_pick_ports 1) || lab_die "no free port"
    echo "$p" >> "$LAB/ports"      # a file: lab_port is usually called in $(...)
    echo "$p"
}

_lab_release_ports() {
    local p
    for p in $(cat "$LAB/ports" 2>/dev/null); do
        if [ "$(cat "$_LAB_PORT_DIR/$p/pid" 2>/dev/null)" = "$_LAB_OWNER" ]; then
            rm -f "$_LAB_PORT_DIR/$p/pid"; rmdir "$_LAB_PORT_DIR/$p" 2>/dev/null || true
        fi
    done
    return 0
}

# ---------------------------------------------------------- lab_init --------

# lab_init: create $LAB, install the cleanup trap, pick and export ports.
lab_init() {
    local c ports
    if [ -n "$_LAB_OWNER" ]; then lab_die "lab_init called twice"; fi
    for c in python3 ss; do
        command -v $c >/dev/null || lab_die "lab_init: '$c' not found"
    done
    LAB=$(mktemp -d /tmp/mwlab.XXXXXX) || lab_die "mktemp failed"
    # 0755: postfix (smtpd, virtual as uid 65534) must traverse $LAB
    chmod 0755 "$LAB"
    _LAB_OWNER=${BASHPID:-$$}    # not $$: lab_init may run in a ( subshell )
    export LAB
    mkdir -p "$LAB/pids"
    trap '_lab_on_exit' EXIT
    trap '_lab_on_signal INT' INT
    trap '_lab_on_signal TERM' TERM
    trap '_lab_on_signal HUP' HUP

    LAB_IPV6=0
    if python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0))' 2>/dev/null; then
        LAB_IPV6=1
    fi
    export LAB_IPV6
    ports=$(_lab_pick_ports 5) || lab_die "cannot pick ports"
    printf '%s\n' $ports > "$LAB/ports"
    read -r NSD_PORT SMTP_PORT REDIS_PORT MILTER_PORT DNSFAULT_PORT <<<"$ports"
    MILTER_CONN="inet:$MILTER_PORT@127.0.0.1"
    REDIS_SOCK=$LAB/redis/redis.sock
    export NSD_PORT SMTP_PORT REDIS_PORT MILTER_PORT DNSFAULT_PORT MILTER_CONN REDIS_SOCK
    note "lab: LAB=$LAB nsd=$NSD_PORT smtp=$SMTP_PORT redis=$REDIS_PORT milter=$MILTER_PORT dnsfault=$DNSFAULT_PORT ipv6=$LAB_IPV6"
    return 0
}

# lab_on_cleanup CMD...: run CMD (eval'd) at cleanup, before the components stop
lab_on_cleanup() { _LAB_CLEANUP_CMDS+=("$*"); }

_lab_push() { _LAB_STACK+=("$1"); }

_lab_on_signal() {
    local sig=$1 rc=130
    case $sig in TERM) rc=143;; HUP) rc=129;; esac
    diag "lab: caught SIG$sig"
    exit $rc        # runs the EXIT trap
}

_lab_on_exit() {
    local rc=$?
    lab_cleanup "$rc"
    exit "$rc"
}

# _lab_lab_pids: pids of processes that refer to $LAB in their command line,
# environment (e.g. Postfix daemons: MAIL_CONFIG=$LAB/postfix/etc) or cwd
# (redis-server rewrites its title but runs in $LAB/redis), except this shell
# and its ancestors.
_lab_lab_pids() {
    local lab=${1:-$LAB} cands pid skip=" " p
    [ -n "$lab" ] || return 0
    p=${BASHPID:-$$}
    while [ -n "$p" ] && [ "$p" != 0 ]; do
        skip="$skip$p "
        p=$(awk '/^PPid:/{print $2}' "/proc/$p/status" 2>/dev/null) || break
    done
    skip="$skip$$ "
    # collect first, filter after: the helpers themselves (grep, find: LAB is in
    # their environment) are gone by then
    cands=$( {
        grep -lsF -e "$lab" /proc/[0-9]*/cmdline /proc/[0-9]*/environ
        find /proc/[0-9]*/cwd -maxdepth 0 \( -lname "$lab" -o -lname "$lab/*" \) -print
    } 2>/dev/null | sed -n 's|^/proc/\([0-9]*\)/.*|\1|p' | sort -un)
    for pid in $cands; do
        case $skip in *" $pid "*) continue;; esac
        if _lab_alive "$pid"; then echo "$pid"; fi
    done
    return 0
}

# lab_cleanup [RC]: stop everything (reverse start order), kill -9 stragglers,
# remove $LAB (kept if RC!=0 or a test failed and MW_KEEP_LAB=1; always kept
# with MW_KEEP_LAB=2).  Idempotent; called by the EXIT trap.
lab_cleanup() {
    local rc=${1:-0} i name pids seen=" "
    [ -z "$_LAB_CLEANED" ] || return 0
    [ "${BASHPID:-$$}" = "$_LAB_OWNER" ] || return 0   # not from subshells
    _LAB_CLEANED=1
    set +e
    trap '' INT TERM HUP
    for ((i = ${#_LAB_CLEANUP_CMDS[@]} - 1; i >= 0; i--)); do
        eval "${_LAB_CLEANUP_CMDS[$i]}" >/dev/null 2>&1
    done
    for ((i = ${#_LAB_STACK[@]} - 1; i >= 0; i--)); do
        name=${_LAB_STACK[$i]}
        case $seen in *" $name "*) continue;; esac
        seen="$seen$name "
        case $name in
            daemon)  stop_daemon ;;
            postfix) stop_postfix ;;
            redis)   stop_redis ;;
            nsd)     stop_nsd ;;
            spawn:*) lab_stop "${name#spawn:}" ;;
        esac
    done
    if [ -n "$LAB" ]; then
        pids=$(_lab_lab_pids)
        if [ -n "$pids" ]; then
            diag "lab: killing stragglers: $(echo $pids)"
            kill -KILL $pids 2>/dev/null
            for i in $pids; do _lab_wait_gone "$i" 2; wait "$i" 2>/dev/null; done
        fi
        if [ "${MW_KEEP_LAB:-0}" = 2 ] ||
           { [ "${MW_KEEP_LAB:-0}" = 1 ] && { [ "$rc" != 0 ] || [ "$_tap_failed" -gt 0 ]; }; }; then
            diag "lab: kept $LAB"
        else
            _lab_release_ports
            rm -rf "$LAB"
            return 0
        fi
        _lab_release_ports
    fi
    return 0
}

# lab_spawn NAME CMD [ARGS...]: run CMD in the background (output to
# $LAB/NAME.log), remembered for cleanup; sets/prints nothing, pid in $LAB/pids/NAME.pid
lab_spawn() {
    _lab_need_init lab_spawn
    local name=$1; shift
    "$@" >>"$LAB/$name.log" 2>&1 &
    echo $! > "$LAB/pids/$name.pid"
    _lab_push "spawn:$name"
    return 0
}
# lab_pid NAME: pid of a spawned process
lab_pid() { cat "$LAB/pids/$1.pid" 2>/dev/null; }
# lab_stop NAME: SIGTERM (5 s) then SIGKILL a spawned process
lab_stop() {
    local pid; pid=$(lab_pid "$1") || return 0
    _lab_terminate "$pid" 5
    rm -f "$LAB/pids/$1.pid"
    return 0
}

# --------------------------------------------------------------- nsd --------

_NSD_PID=

_lab_zone_name() {  # from $ORIGIN, else the file name <zone>.zone
    local z
    z=$(awk 'toupper($1)=="$ORIGIN"{print $2; exit}' "$1")
    [ -n "$z" ] || { z=$(basename "$1"); z=${z%.zone}; }
    z=${z%.}
    echo "$z" | tr 'A-Z' 'a-z'
}

_lab_zone_file() {  # resolve a zone file argument (path, or name under t/zones)
    if [ -f "$1" ]; then (cd "$(dirname "$1")" && echo "$(pwd)/$(basename "$1")")
    elif [ -f "$ZONE_DIR/$1" ]; then echo "$ZONE_DIR/$1"
    else lab_die "zone file not found: $1"; fi
}

# start_nsd ZONEFILE...: serve the zones (names from $ORIGIN or <zone>.zone) on
# 127.0.0.1:$NSD_PORT (and [::1] if available).  Files are copied into
# $LAB/dns/zones; bare names are looked up in t/zones.  If nsd already runs,
# the zones are added/replaced and nsd is restarted.
start_nsd() {
    _lab_need_init start_nsd
    local f src z
    mkdir -p "$LAB/dns/zones" "$LAB/dns/nsd"
    [ $# -gt 0 ] || [ -n "$(ls "$LAB/dns/zones" 2>/dev/null)" ] || lab_die "start_nsd: no zone files"
    for f in "$@"; do
        src=$(_lab_zone_file "$f") || exit 1
        z=$(_lab_zone_name "$src")
        nsd-checkzone "$z" "$src" >"$LAB/dns/nsd/checkzone.out" 2>&1 ||
            lab_die "start_nsd: zone $z in $src is broken" "$LAB/dns/nsd/checkzone.out"
        cp "$src" "$LAB/dns/zones/$z.zone"
    done
    if [ -n "$_NSD_PID" ] && _lab_alive "$_NSD_PID"; then stop_nsd; fi
    _lab_nsd_conf > "$LAB/dns/nsd.conf"
    nsd-checkconf "$LAB/dns/nsd.conf" >"$LAB/dns/nsd/checkconf.out" 2>&1 ||
        lab_die "nsd-checkconf failed" "$LAB/dns/nsd/checkconf.out"
    : > "$LAB/dns/nsd/nsd.log"
    nsd -d -c "$LAB/dns/nsd.conf" >>"$LAB/dns/nsd/nsd.out" 2>&1 &
    _NSD_PID=$!
    echo "$_NSD_PID" > "$LAB/pids/nsd.pid"
    _lab_push nsd
    local i zones=() qs=() ok
    for f in "$LAB"/dns/zones/*.zone; do
        z=$(basename "$f" .zone); zones+=("$z"); qs+=("$z" SOA)
    done
    for ((i = 0; i < 200; i++)); do
        _lab_alive "$_NSD_PID" || lab_die "nsd exited during startup" "$LAB/dns/nsd/nsd.out" "$LAB/dns/nsd/nsd.log"
        ok=
        # one dig, one query per zone: ready when every zone has its SOA
        if [ "$(dig +short +norec +time=1 +tries=1 @127.0.0.1 -p "$NSD_PORT" "${qs[@]}" 2>/dev/null |
                grep -c .)" = "${#zones[@]}" ]; then ok=1; fi
        if [ -n "$ok" ] && [ "$LAB_IPV6" = 1 ] &&
           [ -z "$(dig +short +norec +time=1 +tries=1 @::1 -p "$NSD_PORT" "${zones[0]}" SOA 2>/dev/null)" ]; then
            ok=
        fi
        [ -z "$ok" ] || return 0
        sleep 0.05
    done
    lab_die "nsd does not answer SOA for all of: ${zones[*]}" "$LAB/dns/nsd/nsd.out" "$LAB/dns/nsd/nsd.log"
}

_lab_nsd_conf() {
    local listen zblocks="" f z
    listen="    ip-address: 127.0.0.1@$NSD_PORT"
    if [ "$LAB_IPV6" = 1 ]; then listen="$listen
    ip-address: ::1@$NSD_PORT"; fi
    for f in "$LAB"/dns/zones/*.zone; do
        z=$(basename "$f" .zone)
        zblocks="${zblocks}zone:
    name: \"$z\"
    zonefile: \"$z.zone\"
"
    done
    _lab_subst "LAB=$LAB" "NSD_PORT=$NSD_PORT" "LISTEN=$listen" "ZONES=$zblocks" < "$T_DIR/nsd.conf.in"
}

# reload_nsd [ZONEFILE...]: add/replace the given zones (or re-read the copies
# in $LAB/dns/zones after a test edited them) and restart nsd on the same port;
# on return the new data is served (no HUP race, serial bumps not needed).
reload_nsd() { start_nsd "$@"; }

# stop_nsd: stop nsd (SIGTERM, then SIGKILL after 5 s)
stop_nsd() {
    [ -n "$_NSD_PID" ] || _NSD_PID=$(cat "$LAB/pids/nsd.pid" 2>/dev/null) || true
    _lab_terminate "$_NSD_PID" 5
    _NSD_PID=
    return 0
}

# start_silent_dns: a UDP "name server" on 127.0.0.1:$SILENT_DNS_PORT that
# reads every query and never answers -- a DNS timeout that does not depend
# on the kernel's ICMP rate limit, as "nothing listens" does (a refused port
# answers with ICMP port unreachable, which the kernel may drop under load).
start_silent_dns() {
    _lab_need_init start_silent_dns
    SILENT_DNS_PORT=$(lab_port)
    lab_spawn silent-dns python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
print("ready", flush=True)
while True:
    s.recv(4096)
' "$SILENT_DNS_PORT"
    local i
    for ((i = 0; i < 100; i++)); do
        grep -q ready "$LAB/silent-dns.log" 2>/dev/null && return 0
        sleep 0.05
    done
    lab_die "start_silent_dns: the listener did not start" "$LAB/silent-dns.log"
}

# lab_dig ARGS...: dig +short against the lab nsd (e.g. lab_dig mx.example.test A)
lab_dig() { dig +short +norec +time=2 +tries=1 @127.0.0.1 -p "$NSD_PORT" "$@"; }

# ------------------------------------------------------------- redis --------

# start_redis: redis-server on 127.0.0.1:$REDIS_PORT (+ unix socket $REDIS_SOCK),
# no persistence, dir $LAB/redis, daemonized; waits for PING.
start_redis() {
    _lab_need_init start_redis
    local d=$LAB/redis i pid
    mkdir -p "$d"
    if pid=$(cat "$d/redis.pid" 2>/dev/null) && _lab_alive "$pid"; then
        return 0
    fi
    cat > "$d/redis.conf" <<EOF
bind 127.0.0.1
port $REDIS_PORT
unixsocket $REDIS_SOCK
unixsocketperm 777
protected-mode no
daemonize yes
pidfile $d/redis.pid
logfile $d/redis.log
dir $d
save ""
appendonly no
databases 16
EOF
    rm -f "$d/redis.pid"
    (cd "$d" && redis-server "$d/redis.conf") >>"$d/redis.out" 2>&1 ||
        lab_die "redis-server failed to start" "$d/redis.out" "$d/redis.log"
    _lab_push redis
    for ((i = 0; i < 200; i++)); do
        if [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; then
            cp "$d/redis.pid" "$LAB/pids/redis.pid" 2>/dev/null || true
            return 0
        fi
        sleep 0.05
    done
    lab_die "redis does not answer PING on port $REDIS_PORT" "$d/redis.out" "$d/redis.log"
}

_lab_redis_pid() { cat "$LAB/redis/redis.pid" 2>/dev/null || cat "$LAB/pids/redis.pid" 2>/dev/null; }

# stop_redis: SIGTERM (5 s, then SIGKILL) and wait until it is gone
stop_redis() {
    local pid; pid=$(_lab_redis_pid) || return 0
    _lab_terminate "$pid" 5
    return 0
}

# kill_redis: SIGKILL (a crash) and wait until it is gone; start_redis restarts
kill_redis() {
    local pid; pid=$(_lab_redis_pid) || return 0
    kill -KILL "$pid" 2>/dev/null || true
    _lab_wait_gone "$pid" 5 || lab_die "redis pid $pid survives SIGKILL"
    return 0
}

# redis_cmd ARGS...: redis-cli against the lab redis (e.g. redis_cmd GET key)
redis_cmd() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }

# ------------------------------------------------------ greylist_driver ----
# test/greylist_driver: the policy library in a long-lived process, one per
# "MX host", fed over FIFOs (see its header for the commands), so Redis can
# be killed, stopped and restarted under it.  stderr goes to $LAB/NAME.err.

declare -A DRV_W DRV_R DRV_PID
DRIVER=${GREYLIST_DRIVER:-$BUILD/test/greylist_driver}

# drv_start NAME CONFIG: start a driver process NAME on CONFIG
drv_start() {
    local name=$1 conf=$2 w r
    mkfifo "$LAB/$name.in" "$LAB/$name.out"
    "$DRIVER" "$conf" <"$LAB/$name.in" >"$LAB/$name.out" 2>>"$LAB/$name.err" &
    DRV_PID[$name]=$!
    lab_on_cleanup "kill ${DRV_PID[$name]}"
    exec {w}>"$LAB/$name.in"
    exec {r}<"$LAB/$name.out"
    DRV_W[$name]=$w
    DRV_R[$name]=$r
}

# drv NAME COMMAND...: one command, prints the driver's one-line answer
drv() {
    local name=$1 line; shift
    printf '%s\n' "$*" >&"${DRV_W[$name]}"
    if ! IFS= read -r -t 20 line <&"${DRV_R[$name]}"; then
        echo "NO ANSWER (driver $name: $(tail -n 3 "$LAB/$name.err" 2>/dev/null))"
        return 0
    fi
    printf '%s\n' "$line"
}

# drv_stop NAME: quit and wait
drv_stop() {
    local name=$1 w=${DRV_W[$1]} r=${DRV_R[$1]}
    printf 'quit\n' >&"$w" || true
    exec {w}>&- {r}<&-
    wait "${DRV_PID[$name]}" 2>/dev/null || true
}

# ----------------------------------------------------------- postfix --------

PF_DIR=
PF_ETC=
MAILDIR=

_lab_pf_init_vars() {
    PF_DIR=$LAB/postfix
    PF_ETC=$PF_DIR/etc
    MAILDIR=$PF_DIR/mail/sink
    export PF_DIR PF_ETC MAILDIR
}

# Postfix re-reads a main.cf whose mtime is in the current second, sleeping 0.3 s
# between tries (protection against half-written files): a freshly generated or
# postconf -e'd main.cf costs 1-2.5 s per postfix/postconf command.  Backdate it.
_lab_pf_backdate() {
    touch -d "@$(( $(date +%s) - 5 ))" "$PF_ETC/main.cf" "$PF_ETC/master.cf"
}

_lab_pf_master_pid() { sed -n '1s/ //gp' "$PF_DIR/spool/pid/master.pid" 2>/dev/null; }

# start_postfix MILTER_SPEC [KEY=VALUE...]: private Postfix under $LAB/postfix,
# smtpd on 127.0.0.1:$SMTP_PORT with smtpd_milters=MILTER_SPEC ("" = none);
# KEY=VALUE are postconf -e'd before the start.
# Never touches the system instance (/etc/postfix, /var/spool/postfix).
start_postfix() {
    _lab_need_init start_postfix
    local milters=${1-} i pid line
    [ $# -eq 0 ] || shift
    [ "$(id -u)" = 0 ] || lab_die "start_postfix needs root"
    command -v postfix >/dev/null || lab_die "postfix not installed"
    _lab_pf_init_vars
    if pid=$(_lab_pf_master_pid) && _lab_alive "$pid"; then stop_postfix; fi
    mkdir -p "$PF_ETC" "$PF_DIR/spool" "$PF_DIR/data" "$PF_DIR/mail"
    # postfix chdir()s to queue_directory before anything else: it must exist
    # (root-owned); post-install creates the queue subdirs with the right owners.
    chown root:root "$PF_DIR/spool"; chmod 0755 "$PF_DIR/spool"
    chown postfix "$PF_DIR/data"; chmod 0700 "$PF_DIR/data"
    chown 65534:65534 "$PF_DIR/mail"                  # virtual_uid_maps
    _lab_subst "LAB=$LAB" "SMTP_PORT=$SMTP_PORT" "MILTERS=$milters" \
        "MYHOSTNAME=${POSTFIX_HOSTNAME:-mx.mailwarden.test}" \
        < "$T_DIR/postfix/main.cf.in" > "$PF_ETC/main.cf"
    _lab_subst "SMTP_PORT=$SMTP_PORT" < "$T_DIR/postfix/master.cf.in" > "$PF_ETC/master.cf"
    if [ $# -gt 0 ]; then
        postconf -c "$PF_ETC" -e "$@" || lab_die "start_postfix: postconf -e $* failed"
    fi
    _lab_pf_backdate
    touch "$PF_DIR/maillog"
    # errors of the postfix command go to maillog_file, not to stderr
    postfix -c "$PF_ETC" start >>"$PF_DIR/postfix.out" 2>&1 ||
        lab_die "postfix start failed" "$PF_DIR/postfix.out" "$PF_DIR/maillog"
    _lab_push postfix
    # a deadline, not a count: one attempt can take 10 s when smtpd accepts
    # but never greets (the milter's connect stage hangs, say)
    local until=$((SECONDS + 60))
    while [ "$SECONDS" -lt "$until" ]; do
        if line=$(_lab_smtp_banner) && [[ $line == 220* ]]; then
            _lab_pf_master_pid > "$LAB/pids/postfix.pid"
            return 0
        fi
        sleep 0.05
    done
    lab_die "postfix smtpd does not greet on 127.0.0.1:$SMTP_PORT within 60 s" "$PF_DIR/postfix.out" "$PF_DIR/maillog"
}

_lab_smtp_banner() {  # print the 220 greeting of 127.0.0.1:$SMTP_PORT
    (
        exec 3<>"/dev/tcp/127.0.0.1/$SMTP_PORT" || exit 1
        IFS= read -r -t 5 line <&3 || exit 1
        printf 'QUIT\r\n' >&3
        IFS= read -r -t 5 _ <&3
        printf '%s\n' "${line%$'\r'}"
    ) 2>/dev/null
}

# postfix_set KEY=VALUE...: postconf -e into the private main.cf, then reload
postfix_set() {
    [ -n "$PF_ETC" ] || lab_die "postfix_set: postfix not started"
    postconf -c "$PF_ETC" -e "$@" || lab_die "postconf -e $* failed"
    _lab_pf_backdate
    postfix_reload
}

# postfix_reload: postfix reload, and wait until every daemon process of the
# old configuration is gone (master handles SIGHUP asynchronously, and an idle
# old smtpd could otherwise still take the next connection with old settings)
postfix_reload() {
    local master old p i pid
    master=$(_lab_pf_master_pid) || lab_die "postfix_reload: no master pid"
    old=$(pgrep -P "$master" || true)
    postfix -c "$PF_ETC" reload >>"$PF_DIR/postfix.out" 2>&1 ||
        lab_die "postfix reload failed" "$PF_DIR/postfix.out" "$PF_DIR/maillog"
    for ((i = 0; i < 100; i++)); do
        p=
        for pid in $old; do
            if _lab_alive "$pid" && [ "$(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ')" = "$master" ]; then
                p=$pid; break
            fi
        done
        [ -n "$p" ] || return 0
        sleep 0.05
    done
    diag "lab: postfix_reload: old daemon pid $p still running after 5 s (busy session?)"
    return 0
}

# stop_postfix: postfix stop, then make sure master and all its children are gone
stop_postfix() {
    [ -n "$PF_ETC" ] || _lab_pf_init_vars
    [ -f "$PF_ETC/main.cf" ] || return 0
    local master kids p
    master=$(_lab_pf_master_pid) || true
    [ -n "$master" ] || master=$(cat "$LAB/pids/postfix.pid" 2>/dev/null) || true
    kids=$( [ -n "$master" ] && pgrep -P "$master" || true)
    if [ -n "$master" ] && _lab_alive "$master"; then
        # what "postfix stop" does, minus its 1-second polling: SIGTERM to
        # master, which terminates its children; the group (master did
        # setsid) is SIGKILLed if that takes more than 5 s
        kill -TERM "$master" 2>/dev/null || true
        if ! _lab_wait_gone "$master" 5; then
            diag "lab: postfix master $master still running, SIGKILL"
            kill -KILL -- -"$master" "$master" $kids 2>/dev/null || true
            _lab_wait_gone "$master" 2 || true
        fi
    fi
    for p in $kids; do _lab_wait_gone "$p" 2 || kill -KILL "$p" 2>/dev/null || true; done
    return 0
}

# postfix_flush: postqueue -f (attempt delivery of deferred mail now)
postfix_flush() { postqueue -c "$PF_ETC" -f; }
# postfix_queue: postqueue -p (queue listing)
postfix_queue() { postqueue -c "$PF_ETC" -p; }
# postfix_log: print the private maillog
postfix_log() { cat "$PF_DIR/maillog"; }

# wait_delivered N [TIMEOUT_S=10]: wait until >= N files are in $MAILDIR/new;
# returns 1 (with diagnostics) on timeout.
wait_delivered() {
    local n=$1 t=${2:-10} i c=0
    for ((i = 0; i < t * 20; i++)); do
        c=$(delivered_count)
        [ "$c" -lt "$n" ] || return 0
        sleep 0.05
    done
    diag "lab: wait_delivered: $c of $n message(s) in $MAILDIR/new after ${t}s"
    diag "$(tail -n 15 "$PF_DIR/maillog" 2>/dev/null)"
    return 1
}

# delivered_count: number of messages in $MAILDIR/new
delivered_count() {
    local f c=0
    for f in "$MAILDIR"/new/*; do [ -e "$f" ] && c=$((c + 1)); done
    echo "$c"
}

# delivered_files: full paths of the delivered messages, oldest first
delivered_files() {
    [ -d "$MAILDIR/new" ] || return 0
    find "$MAILDIR/new" -type f -printf '%T@ %p\n' | sort -n | cut -d' ' -f2-
}

# last_delivered: full path of the newest delivered message
last_delivered() { delivered_files | tail -n 1; }

# clear_maildir: remove all delivered messages
clear_maildir() {
    rm -f "$MAILDIR"/new/* "$MAILDIR"/cur/* "$MAILDIR"/tmp/* 2>/dev/null || true
}

# ------------------------------------------------------------- swaks --------

# send_mail [SWAKS ARGS...]: one SMTP transaction with swaks against
# 127.0.0.1:$SMTP_PORT.  Defaults (overridable, swaks takes the last one):
# --from sender@sender.test --to rcpt@maildir.test.  XCLIENT: --xclient-addr IP
# --xclient-name NAME --xclient-helo HELO, or --xclient "ADDR=.. NAME=..".
# Transcript: $LAB/swaks.N.log (swaks_log prints the last one's path), exit code
# in $LAB/swaks.N.rc.  Prints the last server reply before QUIT (without the
# "<- "/"<** " prefix), e.g. "550 5.7.1 rejected" or "250 2.0.0 Ok: queued as ...";
# if the connection failed, the swaks error line.  Always returns 0.
send_mail() {
    _lab_need_init send_mail
    local n log rc=0
    n=$(( $(cat "$LAB/swaks.count" 2>/dev/null || echo 0) + 1 ))
    echo "$n" > "$LAB/swaks.count"
    log=$LAB/swaks.$n.log
    swaks --server 127.0.0.1 --port "$SMTP_PORT" --timeout "${SWAKS_TIMEOUT:-60}" \
        --from sender@sender.test --to rcpt@maildir.test "$@" </dev/null >"$log" 2>&1 || rc=$?
    echo "$rc" > "$LAB/swaks.$n.rc"
    smtp_final_reply "$log"
    return 0
}

# smtp_final_reply LOGFILE: last server reply line before QUIT in a swaks transcript
smtp_final_reply() {
    awk '
        /^ *[-~*]+> / { line = $0; sub(/^ *[-~*]+> /, "", line); lastcmd = toupper(line); next }
        /^<[-~*]+ / {
            if (lastcmd ~ /^QUIT/) next
            line = $0; sub(/^<[-~*]+ +/, "", line); reply = line; next
        }
        /^\*\*\* / && err == "" { err = $0 }
        END {
            if (reply != "") print reply
            else if (err != "") print err
            else print "NO-REPLY"
        }' "$1"
}

# smtp_reply_of LOGFILE STAGE: last server reply line at STAGE in a swaks
# transcript; STAGE = CONNECT (banner), HELO (EHLO/HELO), XCLIENT, MAIL, RCPT,
# DATA (the 354), EOM (reply after the final "."), QUIT.  Empty if not reached.
smtp_reply_of() {
    awk -v want="$(tr 'a-z' 'A-Z' <<<"$2")" '
        BEGIN { st = "CONNECT" }
        /^ *[-~*]+> / {
            l = $0; sub(/^ *[-~*]+> /, "", l); sub(/\r$/, "", l)
            if (indata) { if (l == ".") { st = "EOM"; indata = 0 }; next }
            u = toupper(l)
            if (u ~ /^(EHLO|HELO|LHLO)( |$)/) st = "HELO"
            else if (u ~ /^XCLIENT( |$)/) st = "XCLIENT"
            else if (u ~ /^MAIL FROM:/) st = "MAIL"
            else if (u ~ /^RCPT TO:/) st = "RCPT"
            else if (u ~ /^DATA$/) st = "DATA"
            else if (u ~ /^QUIT$/) st = "QUIT"
            else { split(u, w, " "); st = w[1] }
            next
        }
        /^<[-~*]+ / {
            r = $0; sub(/^<[-~*]+ +/, "", r); rep[st] = r
            if (st == "DATA" && r ~ /^354/) indata = 1
        }
        END { print rep[want] }' "$1"
}

# swaks_log [N]: path of the transcript of send_mail call N (default: the last)
swaks_log() { echo "$LAB/swaks.${1:-$(cat "$LAB/swaks.count" 2>/dev/null || echo 0)}.log"; }

# queue_id REPLY: the queue id from "250 2.0.0 Ok: queued as ABC123"
queue_id() { sed -n 's/.*queued as \([0-9A-Za-z]*\).*/\1/p' <<<"$1"; }

# -------------------------------------------------------- miltertest --------

# run_miltertest SCRIPT.lua [MILTERTEST ARGS...]: run miltertest -s SCRIPT with
# Lua globals (-D) MILTER_CONN ("inet:$MILTER_PORT@127.0.0.1"), MILTER_PORT,
# NSD_PORT, REDIS_PORT, SMTP_PORT, LAB (also in the environment: os.getenv).
# Output to $LAB/miltertest.N.log (miltertest_log prints the path); on failure the
# output is shown as diagnostics.  Returns miltertest's exit status.
# (error() inside a script prints nothing: wrap the body in pcall and print.)
run_miltertest() {
    _lab_need_init run_miltertest
    local script=$1 n log rc=0; shift
    [ -f "$script" ] || lab_die "run_miltertest: no such script: $script"
    n=$(( $(cat "$LAB/miltertest.count" 2>/dev/null || echo 0) + 1 ))
    echo "$n" > "$LAB/miltertest.count"
    log=$LAB/miltertest.$n.log
    miltertest -D "MILTER_CONN=$MILTER_CONN" -D "MILTER_PORT=$MILTER_PORT" \
        -D "NSD_PORT=$NSD_PORT" -D "REDIS_PORT=$REDIS_PORT" -D "SMTP_PORT=$SMTP_PORT" \
        -D "LAB=$LAB" "$@" -s "$script" </dev/null >"$log" 2>&1 || rc=$?
    if [ "$rc" != 0 ]; then
        diag "lab: miltertest $script exited $rc:"
        diag "$(tail -n 40 "$log")"
    fi
    return "$rc"
}

# miltertest_log [N]: path of the output of run_miltertest call N (default: last)
miltertest_log() { echo "$LAB/miltertest.${1:-$(cat "$LAB/miltertest.count" 2>/dev/null || echo 0)}.log"; }

# ---------------------------------------------------------- mailwarden ------

MW_DAEMON_PID=
MW_DAEMON_STATUS=
MW_LOG=

# require_daemon: skip the whole test script if $MW_DAEMON is not built
require_daemon() {
    [ -x "$MW_DAEMON" ] || skip_all "mailwarden not built ($MW_DAEMON)"
}

# _lab_milter_socket CONFIG: the "socket" value of the [milter] section
_lab_milter_socket() {
    awk '
        /^[ \t]*\[/ { sec = $0; gsub(/[][ \t]/, "", sec); sec = tolower(sec); next }
        sec == "milter" && /^[ \t]*socket[ \t]*[=:]/ {
            v = $0; sub(/^[^=:]*[=:][ \t]*/, "", v); sub(/[ \t]+[;#].*$/, "", v)
            sub(/[ \t\r]+$/, "", v); gsub(/^"|"$/, "", v); last = v
        }
        END { print last }' "$1"
}

# _lab_socket_ready SPEC: something listens on the libmilter socket SPEC
_lab_socket_ready() {
    local spec=$1 port path
    case $spec in
        inet:*|inet6:*)
            port=${spec#*:}; port=${port%%@*}
            [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ] ;;
        unix:*|local:*|/*)
            path=${spec#unix:}; path=${path#local:}
            [ -S "$path" ] && ss -Hlx 2>/dev/null | awk -v p="$path" '{for (i = 1; i <= NF; i++) if ($i == p) f = 1} END {exit !f}' ;;
        *) return 1 ;;
    esac
}

# start_daemon CONFIG [EXTRA ARGS...]: run "$MW_DAEMON -f -c CONFIG EXTRA..."
# (prefixed by $MW_DAEMON_WRAPPER, e.g. valgrind, if set) in the background,
# output to $LAB/mailwarden.log; wait ($MW_START_TIMEOUT, 10 s) until its
# [milter] socket listens.  Dies with the log if it exits or never listens.
start_daemon() {
    _lab_need_init start_daemon
    local conf=$1 spec i t=${MW_START_TIMEOUT:-10} st=0; shift
    [ -f "$conf" ] || lab_die "start_daemon: no config file $conf"
    [ -x "$MW_DAEMON" ] || lab_die "start_daemon: $MW_DAEMON is not built (set MW_DAEMON)"
    spec=$(_lab_milter_socket "$conf")
    [ -n "$spec" ] || lab_die "start_daemon: no [milter] socket in $conf"
    if [ -n "$MW_DAEMON_PID" ] && _lab_alive "$MW_DAEMON_PID"; then stop_daemon; fi
    MW_LOG=$LAB/mailwarden.log
    export MW_LOG
    echo "=== $(date '+%F %T') start: $MW_DAEMON -f -c $conf $*" >> "$MW_LOG"
    ${MW_DAEMON_WRAPPER:-} "$MW_DAEMON" -f -c "$conf" "$@" >>"$MW_LOG" 2>&1 &
    MW_DAEMON_PID=$!
    MW_DAEMON_STATUS=
    echo "$MW_DAEMON_PID" > "$LAB/pids/daemon.pid"
    _lab_push daemon
    for ((i = 0; i < t * 20; i++)); do
        if ! _lab_alive "$MW_DAEMON_PID"; then
            wait "$MW_DAEMON_PID" 2>/dev/null || st=$?
            MW_DAEMON_PID=
            lab_die "mailwarden exited during startup (status $st)" "$MW_LOG"
        fi
        if _lab_socket_ready "$spec"; then return 0; fi
        sleep 0.05
    done
    lab_die "mailwarden does not listen on $spec after ${t}s" "$MW_LOG"
}

# stop_daemon: SIGTERM, wait up to 5 s, then SIGKILL.  Sets MW_DAEMON_STATUS
# to the exit status (128+signal if killed by a signal).
stop_daemon() {
    [ -n "$MW_DAEMON_PID" ] || return 0
    local pid=$MW_DAEMON_PID st=0
    if _lab_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        if ! _lab_wait_gone "$pid" 5; then
            diag "lab: mailwarden ($pid) ignores SIGTERM for 5 s, SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            _lab_wait_gone "$pid" 2 || true
        fi
    fi
    wait "$pid" 2>/dev/null || st=$?
    MW_DAEMON_STATUS=$st
    MW_DAEMON_PID=
    return 0
}

# daemon_signal SIG: send a signal to the running daemon (e.g. daemon_signal HUP)
daemon_signal() { [ -n "$MW_DAEMON_PID" ] && kill -"$1" "$MW_DAEMON_PID"; }
# daemon_alive: true while the daemon runs
daemon_alive() { _lab_alive "$MW_DAEMON_PID"; }
# daemon_log: print the daemon's output so far
daemon_log() { cat "$LAB/mailwarden.log" 2>/dev/null || true; }

# check_daemon_clean_exit: the usual end of an integration test: stop
# Postfix (if started) and the daemon, then test that the daemon exited 0
# on SIGTERM and that its log holds no sanitizer report.
check_daemon_clean_exit() {
    stop_postfix
    stop_daemon
    is "$MW_DAEMON_STATUS" 0 "daemon stops cleanly on SIGTERM (exit 0)"
    if grep -q "ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer" "$MW_LOG"; then
        fail "no sanitizer reports in the daemon log" "$(cat "$MW_LOG")"
    else
        pass "no sanitizer reports in the daemon log"
    fi
}
