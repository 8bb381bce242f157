#!/bin/bash
# t/deb.sh -- the Debian package on a fresh Debian 12: installed with apt
# into a debootstrap chroot, the daemon started the way the packaged systemd
# unit says (its User=, RuntimeDirectory=, ExecStartPre=, ExecStart=) with the
# packaged configuration, Postfix (Debian's, running as postfix) delivers a
# message through the documented socket /run/mailwarden/mailwarden.sock with
# our Authentication-Results; then `apt-get remove` keeps the configuration
# and `apt-get purge` leaves the file system as it was before the install.
#
# The .deb: $MW_DEB, else the newest build-deb/mailwarden_*.deb
# (sh scripts/build-deb.sh); without one the test is skipped.
# The chroot (bookworm minbase + postfix + the package's dependencies) is
# cached by t/chroot.sh; the first run needs the Debian mirror.
set -eu
. "$(dirname "$0")/lib.sh"
. "$T_DIR/chroot.sh"

deb=${MW_DEB:-$(ls -t "$TOP"/build-deb/mailwarden_*.deb 2>/dev/null | head -n 1 || true)}
if [ -z "$deb" ] || [ ! -f "$deb" ]; then
    skip_all "no mailwarden .deb (sh scripts/build-deb.sh, or set MW_DEB)"
fi
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")
# The package's dependencies (first alternative, no versions) go into the
# cached chroot with Postfix, so that apt installs the .deb offline.
deps=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/ //g' | grep . | sort -u)
chroot_require
chroot_cache deb postfix procps $deps || exit 1
netns_enter "$@"
lab_init
netns_addr 192.0.2.10
chroot_make deb postfix procps $deps
cp "$deb" "$CHROOT/tmp/"
debname=/tmp/$(basename "$deb")

# DNS for the checks: nsd on the namespace's 127.0.0.1:53, which is what the
# packaged configuration uses (no nameservers =, so /etc/resolv.conf).
NSD_PORT=53
start_nsd example.test.zone 2.0.192.in-addr.arpa.zone sender.test.zone
echo 'nameserver 127.0.0.1' > "$CHROOT/etc/resolv.conf"

# What the file system looks like before the package (for the purge check).
snapshot() {
    chroot_run sh -c 'find / -xdev \( -path /proc -o -path /tmp -o -path /var/log \
        -o -path /var/cache -o -path /var/lib/dpkg -o -path /var/lib/apt -o -path /run \
        -o -path /var/spool/postfix \) -prune -o -print' | sort
}
snapshot > "$LAB/before.list"

# --------------------------------------------------------------- install ---
if chroot_run apt-get install -y -q "$debname" >"$LAB/install.log" 2>&1; then
    pass "apt-get install ./$(basename "$deb") in a fresh Debian 12"
else
    fail "apt-get install ./$(basename "$deb") in a fresh Debian 12" "$(tail -n 30 "$LAB/install.log")"
    done_testing
fi
like "$(chroot_run dpkg-query -W -f='${Status}' mailwarden)" 'install ok installed' "dpkg says installed"
unlike "$(cat "$LAB/install.log")" '(^|[^a-z])(error|warning):' "no errors or warnings from the package scripts"
ok "mailwarden system user created" chroot_run sh -c 'getent passwd mailwarden >/dev/null'
like "$(chroot_run id -nG postfix)" '(^| )mailwarden( |$)' "postfix is in the mailwarden group (reaches the socket)"
like "$(chroot_run stat -c '%U:%G %a' /etc/mailwarden/dkim)" '^root:mailwarden 750$' "/etc/mailwarden/dkim: root:mailwarden 0750 (signing keys)"
ok "sample configuration is a conffile" grep -qx ' /etc/mailwarden/mailwarden.ini [0-9a-f]*' \
    <(chroot_run dpkg-query -W -f='${Conffiles}\n' mailwarden)
for f in /usr/sbin/mailwarden /usr/bin/mailwarden-check /usr/share/man/man8/mailwarden.8.gz \
         /usr/share/man/man5/mailwarden.ini.5.gz /usr/share/man/man1/mailwarden-check.1.gz \
         /lib/systemd/system/mailwarden.service /usr/sbin/mailwarden-report \
         /usr/share/man/man8/mailwarden-report.8.gz /lib/systemd/system/mailwarden-report.service \
         /lib/systemd/system/mailwarden-report.timer /etc/cron.d/mailwarden-report; do
    ok "installed: $f" test -e "$CHROOT$f"
done
# The report program with the packaged configuration: report_from is not
# set, so it says what to set instead of sending anything.
like "$(chroot_run /usr/sbin/mailwarden-report -c /etc/mailwarden/mailwarden.ini 2>&1; echo "exit $?")" \
    'history_file is not set.*exit 1|set \[dmarc\] report_from.*exit 1' \
    "mailwarden-report with the packaged configuration: names the missing setting, exit 1"
if command -v systemd-analyze >/dev/null; then
    # (the chroot has no systemd, hence no sysinit.target & co.)
    v=$(systemd-analyze verify --root="$CHROOT" --man=no /lib/systemd/system/mailwarden.service 2>&1 |
        grep -v 'Unit [a-z.-]*\.target not found' || true)
    is "$v" "" "systemd-analyze verify: the packaged unit is valid"
    v=$(systemd-analyze verify --root="$CHROOT" --man=no /lib/systemd/system/mailwarden-report.service \
        /lib/systemd/system/mailwarden-report.timer 2>&1 | grep -v 'Unit [a-z.-]*\.target not found' || true)
    is "$v" "" "systemd-analyze verify: mailwarden-report.service and .timer are valid"
    v=$(systemd-analyze security --offline=yes --root="$CHROOT" mailwarden.service 2>&1 | tail -n 1)
    note "$v"
    like "$v" 'exposure level for mailwarden.service: [01]\.[0-9] OK' "systemd-analyze security: exposure below 2 (OK)"
else
    skip "systemd-analyze verify: the packaged unit is valid" "no systemd-analyze on this host"
    skip "systemd-analyze verify: mailwarden-report.service and .timer" "no systemd-analyze on this host"
    skip "systemd-analyze security: exposure below 2" "no systemd-analyze on this host"
fi

# ------------------------------------------------ start it like the unit ---
unit=$CHROOT/lib/systemd/system/mailwarden.service
uval() { sed -n "s/^$1=//p" "$unit" | tail -n 1; }
user=$(uval User); group=$(uval Group)
is "$user:$group" mailwarden:mailwarden "unit: User=mailwarden Group=mailwarden"
rd=/run/$(uval RuntimeDirectory)
install -d -m "$(uval RuntimeDirectoryMode)" "$CHROOT$rd"
chroot_run chown "$user:$group" "$rd"
runas() { chroot_run setpriv --reuid="$user" --regid="$group" --init-groups "$@"; }
# ExecStartPre: mailwarden -t with the packaged configuration
read -r -a pre <<<"$(uval ExecStartPre)"
if runas "${pre[@]}" >"$LAB/check.out" 2>&1; then
    pass "ExecStartPre (${pre[*]}) accepts the packaged configuration"
else
    fail "ExecStartPre (${pre[*]}) accepts the packaged configuration" "$(tail -n 20 "$LAB/check.out")"
fi
read -r -a start <<<"$(uval ExecStart)"
MW_LOG=$LAB/mailwarden.log
# exec: $! is then the daemon itself
(CHROOT_EXEC=1 runas "${start[@]}") >"$MW_LOG" 2>&1 &
MW_DAEMON_PID=$!
echo "$MW_DAEMON_PID" > "$LAB/pids/daemon.pid"
_lab_push daemon
sock=$CHROOT/run/mailwarden/mailwarden.sock
for ((i = 0; i < 200; i++)); do [ -S "$sock" ] && break; daemon_alive || break; sleep 0.05; done
ok "daemon listens on /run/mailwarden/mailwarden.sock" test -S "$sock"
is "$(chroot_run stat -c '%U:%G %a' /run/mailwarden/mailwarden.sock 2>/dev/null)" "mailwarden:mailwarden 660" "socket mailwarden:mailwarden 0660"
is "$(chroot_run stat -c '%U:%G %a' /run/mailwarden)" "mailwarden:mailwarden 750" "/run/mailwarden mailwarden:mailwarden 0750"

# ------------------------------------------------------- Debian's Postfix ---
# As README "Install" says: smtpd_milters = the socket, and smtpd not
# chrooted (Debian's master.cf chroots it in /var/spool/postfix, where
# /run/mailwarden does not exist).
[ -f "$CHROOT/etc/postfix/master.cf" ] || cp "$CHROOT/usr/share/postfix/master.cf.dist" "$CHROOT/etc/postfix/master.cf"
cat > "$CHROOT/etc/postfix/main.cf" <<'EOF'
compatibility_level = 3.6
myhostname = mx.chroot.test
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
maillog_file = /var/log/postfix.log
alias_maps =
smtp_dns_support_level = disabled
virtual_mailbox_domains = maildir.test
virtual_mailbox_base = /var/mail/vhosts
virtual_mailbox_maps = static:sink/
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
smtpd_milters = unix:/run/mailwarden/mailwarden.sock
non_smtpd_milters =
milter_default_action = tempfail
milter_protocol = 6
EOF
install -d -o 65534 -g 65534 "$CHROOT/var/mail/vhosts"
chroot_run postconf -F smtp/inet/chroot=n
touch -d '-5 sec' "$CHROOT/etc/postfix/main.cf" "$CHROOT/etc/postfix/master.cf"
lab_on_cleanup "chroot_run postfix stop"
if chroot_run postfix start >"$LAB/postfix.out" 2>&1; then
    pass "Postfix starts in the chroot"
else
    fail "Postfix starts in the chroot" "$(cat "$LAB/postfix.out" "$CHROOT/var/log/postfix.log" 2>/dev/null | tail -n 20)"
fi
SMTP_PORT=25
for ((i = 0; i < 100; i++)); do lab_wait_port 25 tcp 1 && break; done

r=$(send_mail --local-interface 192.0.2.10 --helo mx.example.test \
    --from sender@example.test --to rcpt@maildir.test --h-Subject "package test")
like "$r" '^250 ' "a message from mx.example.test [192.0.2.10] is accepted"
msg=
for ((i = 0; i < 100; i++)); do
    msg=$(ls "$CHROOT"/var/mail/vhosts/sink/new/* 2>/dev/null | head -n 1 || true)
    [ -n "$msg" ] && break
    sleep 0.1
done
if [ -n "$msg" ]; then
    pass "delivered to the mailbox"
    like "$(head -n 1 "$msg")" '^Return-Path: ' "delivered by Postfix"
    ar=$(awk '/^Authentication-Results:/ { p = 1; printf "%s", $0; next }
              p && /^[ \t]/ { printf " %s", $0; next }
              p { exit }' "$msg" | tr -s '\t ' ' ')
    like "$ar" '^Authentication-Results: mx\.chroot\.test; iprev=pass policy\.iprev=192\.0\.2\.10 \(mx\.example\.test\)' \
        "our A-R (authserv-id = the host name, iprev=pass)"
    like "$ar" 'spf=none \(example\.test publishes no SPF record\) smtp\.mailfrom=sender@example\.test' "... with the SPF result"
else
    fail "delivered to the mailbox" "$(tail -n 20 "$CHROOT/var/log/postfix.log" "$MW_LOG")"
fi
like "$(cat "$MW_LOG")" "running as|started on unix:/run/mailwarden/mailwarden.sock" "daemon log says where it listens"
unlike "$(cat "$CHROOT/var/log/postfix.log")" 'milter.*(Permission denied|No such file)' "Postfix reaches the socket"
is "$(stat -c %u "/proc/$MW_DAEMON_PID" 2>/dev/null)" "$(chroot_run id -u mailwarden)" "daemon runs as mailwarden"
chroot_run postfix stop >/dev/null 2>&1 || true
stop_daemon
is "$MW_DAEMON_STATUS" 0 "daemon stops cleanly on SIGTERM"

# --------------------------------------------------------- remove, purge ---
if chroot_run apt-get remove -y -q mailwarden >"$LAB/remove.log" 2>&1; then
    pass "apt-get remove"
else
    fail "apt-get remove" "$(tail -n 20 "$LAB/remove.log")"
fi
ok "remove: the binary is gone" test ! -e "$CHROOT/usr/sbin/mailwarden"
ok "remove: the configuration is kept" test -f "$CHROOT/etc/mailwarden/mailwarden.ini"
like "$(chroot_run dpkg-query -W -f='${Status}' mailwarden)" 'deinstall ok config-files' "dpkg: config-files"
if chroot_run apt-get purge -y -q mailwarden >"$LAB/purge.log" 2>&1; then
    pass "apt-get purge"
else
    fail "apt-get purge" "$(tail -n 20 "$LAB/purge.log")"
fi
unlike "$(cat "$LAB/remove.log" "$LAB/purge.log")" '(^|[^a-z])(error|warning):' "no errors or warnings from remove and purge"
is "$(chroot_run dpkg-query -W -f='${db:Status-Status}' mailwarden 2>/dev/null || echo not-installed)" not-installed \
    "purge: dpkg status not-installed"
# Postfix wrote its own files at start (queue, data): compare without them.
snapshot > "$LAB/after.list"
left=$(comm -13 "$LAB/before.list" "$LAB/after.list" | grep -v '^/var/lib/postfix\|^/etc/postfix\|^/var/mail' || true)
gone=$(comm -23 "$LAB/before.list" "$LAB/after.list" | grep -v '^/var/lib/postfix\|^/etc/postfix\|^/var/mail' || true)
is "$left" "" "purge: no file left behind"
is "$gone" "" "purge: no file of the system removed"
done_testing
