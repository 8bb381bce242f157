#!/bin/bash
# t/daemon.sh -- the daemon's side of the service boundary (issue 21):
# the unix socket's group defaults to the primary group of [milter] user
# (the group Postfix's user is put in, as the README says) and Postfix,
# running as its own user and in that group, gets through; an empty user
# runs as root with a warning; a pid file that cannot be written stops
# the start with the reason; `-t` refuses a user or group that does not
# exist; the open files limit is raised to the hard limit.
set -eu
. "$(dirname "$0")/lib.sh"
require_daemon
lab_init

start_nsd example.test.zone 2.0.192.in-addr.arpa.zone sender.test.zone
conf() {  # conf FILE EXTRA-MILTER-LINES...
    local f=$1; shift
    {
        echo "[milter]"
        printf '%s\n' "$@"
        echo "authserv_id = mx.test"
        echo "[dns]"
        echo "nameservers = 127.0.0.1:$NSD_PORT"
    } > "$f"
}

# 1. group empty: the socket gets nobody's primary group; Postfix's user
#    is a member of it (as `adduser postfix mailwarden` would make it)
# (/run/mailwarden as the unit makes it: owned by the user, mode 0750)
grp=$(id -gn nobody)
mkdir -m 0750 "$LAB/run"
chown nobody:"$grp" "$LAB/run"
conf "$LAB/a.ini" "socket = unix:$LAB/run/mailwarden.sock" "user = nobody" "group =" \
    "pidfile = $LAB/run/mailwarden.pid"
start_daemon "$LAB/a.ini"
is "$(stat -c '%a %G' "$LAB/run/mailwarden.sock")" "660 $grp" \
    "group empty: the socket is 0660 with the user's primary group ($grp)"
is "$(cat "$LAB/run/mailwarden.pid" 2>/dev/null)" "$MW_DAEMON_PID" "the pid file names the daemon"
if id -nG postfix | tr ' ' '\n' | grep -qx "$grp"; then added=0; else
    added=1; gpasswd -a postfix "$grp" >/dev/null
    lab_on_cleanup "gpasswd -d postfix $grp"
fi
start_postfix "unix:$LAB/run/mailwarden.sock"
# (with a forged A-R written with white space before the colon, and
#  one whose authserv-id has a trailing dot: both must go)
r=$(send_mail --xclient-addr 192.0.2.10 --xclient-name mx.example.test \
    --helo mx.example.test --from a@sender.test --header "From: <a@sender.test>" \
    --add-header "Authentication-Results : mx.test; dkim=pass header.d=bank.example" \
    --add-header "Authentication-Results: MX.test.; spf=pass")
like "$r" "^250 2.0.0 Ok: queued" "Postfix (user postfix, in group $grp) reaches the socket"
if wait_delivered 1; then
    hdr=$(sed '/^$/q' "$(last_delivered)")
    like "$hdr" "Authentication-Results: mx.test;" "delivered with our header"
    unlike "$hdr" "header.d=bank.example" "the forged 'Authentication-Results :' is removed"
    unlike "$hdr" "MX.test." "the forged A-R with 'MX.test.' is removed"
else
    fail "delivered"
fi
[ "$added" = 1 ] && { gpasswd -d postfix "$grp" >/dev/null; }
stop_postfix
stop_daemon
is "$MW_DAEMON_STATUS" 0 "daemon stops cleanly"
ok "the pid file is removed at exit" test ! -e "$LAB/run/mailwarden.pid"

# 2. user empty: root, with a warning
conf "$LAB/b.ini" "socket = inet:$MILTER_PORT@127.0.0.1" "user ="
start_daemon "$LAB/b.ini"
like "$(daemon_log)" "user is empty: running as root" "user empty: a warning says it runs as root"
like "$(daemon_log)" "open files limit|started" "started"
soft=$(awk '/Max open files/ {print $4}' "/proc/$MW_DAEMON_PID/limits")
hard=$(awk '/Max open files/ {print $5}' "/proc/$MW_DAEMON_PID/limits")
is "$soft" "$hard" "the open files limit is raised to the hard limit ($hard)"
stop_daemon

# 3. a pid file that cannot be written stops the start, saying why
conf "$LAB/c.ini" "socket = inet:$MILTER_PORT@127.0.0.1" "user = nobody" \
    "pidfile = $LAB/no/such/dir/mw.pid"
rc=0; timeout 20 "$MW_DAEMON" -f -c "$LAB/c.ini" > "$LAB/c.log" 2>&1 || rc=$?
is "$rc" 73 "an unwritable pid file: exit 73 (EX_CANTCREAT)"
like "$(cat "$LAB/c.log")" "pidfile $LAB/no/such/dir/mw.pid: No such file or directory" \
    "... and the reason is logged"

# 4. -t: user and group must exist
conf "$LAB/d.ini" "socket = inet:$MILTER_PORT@127.0.0.1" "user = no-such-user-mw"
rc=0; out=$("$MW_DAEMON" -t -c "$LAB/d.ini" 2>&1) || rc=$?
is "$rc" 78 "-t: a user that does not exist is refused"
like "$out" 'user "no-such-user-mw" does not exist' "... saying so"
done_testing
