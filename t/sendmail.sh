#!/bin/bash
# t/sendmail.sh -- mailwarden behind a real Sendmail 8.17 (Debian's
# sendmail-bin, in a debootstrap chroot: it conflicts with the host's
# Postfix), configured with etc/sendmail.mc.snippet.  Everything runs in a
# private network namespace: nsd on its 127.0.0.1:53, the daemon (the
# build under test, outside the chroot), Sendmail on 127.0.0.1:25, and
# client addresses on its loopback that swaks binds to (Sendmail has no
# XCLIENT).  Checks what a user of Sendmail sees:
#  - clean mail delivered, our A-R above Sendmail's Received;
#  - 552 for a body over the cap, and at MAIL with SIZE=;
#  - an SPF -all forgery refused at RCPT with the domain's explanation,
#    postmaster@ accepted in the same transaction;
#  - DKIM verify pass and fail;
#  - an SMTP-AUTH client's mail signed (Sendmail's {auth_authen}),
#    verified by dkimpy;
#  - Sendmail's queue id in our log line;
#  - the daemon SIGKILLed under load and restarted: every message that got
#    250 is delivered, every other one got a 4xx.
set -eu
. "$(dirname "$0")/lib.sh"
. "$T_DIR/chroot.sh"
require_daemon
PKGS="sendmail-bin sendmail-cf m4 make sasl2-bin libsasl2-modules"
chroot_require
chroot_cache sendmail $PKGS || exit 1
netns_enter "$@"
lab_init
CLEAN=192.0.2.10         # mx.example.test, PTR agrees
FORGER=198.51.100.99     # no PTR; not in strict.spf.test's SPF
AUTHC=192.0.2.20         # a roaming user (no PTR), authenticates
netns_addr "$CLEAN" "$FORGER" "$AUTHC"

chroot_make sendmail $PKGS

# DNS on the namespace's port 53: for the daemon and for Sendmail alike.
NSD_PORT=53
start_nsd example.test.zone 2.0.192.in-addr.arpa.zone spf-test.zone dkim-test.zone
echo 'nameserver 127.0.0.1' > "$CHROOT/etc/resolv.conf"

mw_config_write "$LAB/mw.ini" <<'EOF'
[milter]
socket = inet:@MILTER_PORT@@127.0.0.1
authserv_id = mx.chroot.test
user = nobody
[dns]
nameservers = 127.0.0.1:@NSD_PORT@
timeout_ms = 500
tries = 1
[size]
max_bytes = 100k
[iprev]
noptr_action = accept
[dkim]
key = dkim.test rsa2048 @TOP@/test/dkim-keys/rsa2048.pem
allow_world_readable_keys = yes
EOF
start_daemon "$LAB/mw.ini"

# ------------------------------------------------------------ Sendmail ----
# Syslog of the chroot (Sendmail's milter lines), for diagnostics.
lab_spawn syslog python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
out = open(sys.argv[2], "ab", buffering=0)
while True:
    out.write(s.recv(65536) + b"\n")' "$CHROOT/dev/log" "$LAB/sendmail.syslog"
# One file per delivered message (local mailer), readable by the test.
install -d -m 1777 "$CHROOT/var/mail/out"
cat > "$CHROOT/usr/local/bin/mwsave" <<'EOF'
#!/bin/sh
for u; do :; done           # the recipient is the last argument
f=/var/mail/out/$u.$(date +%s%N).$$
cat > "$f.tmp" && mv "$f.tmp" "$f"
EOF
chmod 755 "$CHROOT/usr/local/bin/mwsave"
chroot_run sh -c 'id rcpt >/dev/null 2>&1 || useradd -M rcpt; id postmaster >/dev/null 2>&1 || useradd -M postmaster'
printf 'hosts files dns\naliases files\n' > "$CHROOT/etc/mail/service.switch.test"
# (in /etc: sendmail -bi, as root, makes no database in /etc/mail, owned by smmsp)
printf 'MAILER-DAEMON: rcpt\n' > "$CHROOT/etc/aliases.test"
# SMTP AUTH: alice / secret in sasldb (Debian's Sendmail reads /etc/mail/sasl)
for d in /etc/mail/sasl /etc/sasl2; do
    mkdir -p "$CHROOT$d"
    printf 'pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\n' > "$CHROOT$d/Sendmail.conf"
done
echo secret | chroot_run saslpasswd2 -c -p -u mx.chroot.test -f /etc/sasldb2 alice
{
    cat <<'EOF'
divert(-1)dnl
include(`/usr/share/sendmail/cf/m4/cf.m4')dnl
VERSIONID(`mailwarden t/sendmail.sh')dnl
OSTYPE(`linux')dnl
define(`confDOMAIN_NAME', `mx.chroot.test')dnl
define(`confTRUSTED_USER', `smmta')dnl
define(`confHOST_STATUS_DIRECTORY', `')dnl
define(`confSERVICE_SWITCH_FILE', `/etc/mail/service.switch.test')dnl
define(`confDONT_PROBE_INTERFACES', `True')dnl
define(`confTO_IDENT', `0')dnl
dnl never refuse or only queue because the machine is busy (CI, parallel tests)
define(`confQUEUE_LA', `10000')dnl
define(`confREFUSE_LA', `10000')dnl
define(`confDELAY_LA', `0')dnl
FEATURE(`no_default_msa')dnl
define(`confLOG_LEVEL', `14')dnl
define(`confPID_FILE', `/run/sendmail.pid')dnl
define(`ALIAS_FILE', `/etc/aliases.test')dnl
define(`confAUTH_MECHANISMS', `PLAIN LOGIN')dnl
define(`confAUTH_OPTIONS', `A')dnl
TRUST_AUTH_MECH(`PLAIN LOGIN')dnl
define(`LOCAL_MAILER_PATH', `/usr/local/bin/mwsave')dnl
define(`LOCAL_MAILER_ARGS', `mwsave $u')dnl
FEATURE(`nocanonify')dnl
FEATURE(`accept_unresolvable_domains')dnl
LOCAL_DOMAIN(`maildir.test')dnl
DAEMON_OPTIONS(`Family=inet, Name=MTA, Port=25, Addr=127.0.0.1')dnl
EOF
    # the project's snippet, as shipped, with the test's milter port
    sed "s/inet:8891@127.0.0.1/inet:$MILTER_PORT@127.0.0.1/" "$TOP/etc/sendmail.mc.snippet"
    printf 'MAILER(`local'"'"')dnl\nMAILER(`smtp'"'"')dnl\n'
} > "$CHROOT/etc/mail/mailwarden-test.mc"
chroot_run sh -c 'cd /etc/mail && m4 mailwarden-test.mc > sendmail.cf && /usr/sbin/sendmail -bi' \
    >"$LAB/sendmail-cf.log" 2>&1 || lab_die "building sendmail.cf failed" "$LAB/sendmail-cf.log"
grep -q "^Xmailwarden, S=inet:$MILTER_PORT@127.0.0.1, F=T" "$CHROOT/etc/mail/sendmail.cf" ||
    lab_die "the snippet's INPUT_MAIL_FILTER is not in sendmail.cf" "$CHROOT/etc/mail/sendmail.cf"
lab_spawn sendmail chroot_run /usr/sbin/sendmail -bD -q15s
lab_on_cleanup 'kill -TERM $(cat "$CHROOT/run/sendmail.pid" 2>/dev/null | head -n 1)'
SMTP_PORT=25
lab_wait_port 25 tcp 30 || lab_die "Sendmail does not listen on 127.0.0.1:25" "$LAB/sendmail.log" "$LAB/sendmail.syslog"
like "$(chroot_run /usr/sbin/sendmail -d0.1 -bt </dev/null 2>&1 | head -n 1)" '^Version 8\.17' "Sendmail 8.17"

out=$CHROOT/var/mail/out
# delivered_to USER TOKEN: print the file delivered to USER whose text has TOKEN
delivered_to() {
    local i f
    for ((i = 0; i < 100; i++)); do
        f=$(grep -l -F -- "$2" "$out/$1".* 2>/dev/null | grep -v '\.tmp$' | head -n 1 || true)
        if [ -n "$f" ]; then echo "$f"; return 0; fi
        sleep 0.1
    done
    return 1
}
header_of() { sed '/^\r\{0,1\}$/q' "$1"; }

# ----------------------------------------------------------- 1. clean -----
r=$(send_mail --local-interface "$CLEAN" --helo mx.example.test \
    --from someone@example.test --to rcpt@maildir.test --h-Subject "clean-1")
like "$r" '^250 2\.0\.0 [0-9A-Za-z]+ Message accepted for delivery' "clean message accepted by Sendmail"
qid=$(sed -n 's/^250 2\.0\.0 \([0-9A-Za-z]*\) Message accepted.*/\1/p' <<<"$r")
if f=$(delivered_to rcpt clean-1); then
    hdr=$(header_of "$f")
    like "$hdr" '(^|'$'\n'')Authentication-Results: mx\.chroot\.test;[[:space:]]+iprev=pass policy\.iprev=192\.0\.2\.10 \(mx\.example\.test\)' \
        "delivered with our A-R (iprev=pass)"
    ar_line=$(grep -n '^Authentication-Results: mx.chroot.test' <<<"$hdr" | head -n 1 | cut -d: -f1)
    rcv_line=$(grep -n '^Received: ' <<<"$hdr" | head -n 1 | cut -d: -f1)
    ok "our A-R is above Sendmail's Received (lines ${ar_line:-?} < ${rcv_line:-?})" \
        test "${ar_line:-999}" -lt "${rcv_line:-0}"
else
    fail "clean message delivered" "$(tail -n 20 "$LAB/sendmail.syslog")"
fi
if [ -n "$qid" ]; then
    like "$(grep -F " $qid" "$MW_LOG" || true)" "$qid" "Sendmail's queue id $qid is in our log line"
else
    fail "Sendmail's queue id in our log line" "no queue id in: $r"
fi

# ------------------------------------------------------------ 2. size -----
python3 -c 'import sys; sys.stdout.write("Subject: big\r\n\r\n" + ("y" * 998 + "\r\n") * 150)' > "$LAB/big.eml"
r=$(send_mail --local-interface "$CLEAN" --helo mx.example.test \
    --from someone@example.test --to rcpt@maildir.test --data "@$LAB/big.eml")
like "$r" '^552 5\.3\.4 ' "150 kB body over the 100 kB cap: 552 5.3.4"
is "$(smtp_reply_of "$(swaks_log)" EOM | cut -c1-3)" 552 "... at the end of data"
r=$(python3 - "$CLEAN" <<'EOF'
import smtplib, sys
s = smtplib.SMTP(timeout=30, source_address=(sys.argv[1], 0))
s.connect("127.0.0.1", 25)
s.ehlo("mx.example.test")
code, msg = s.mail("someone@example.test", ["SIZE=200000"])
print(code, msg.decode())
s.quit()
EOF
)
like "$r" '^552 5\.3\.4 ' "MAIL FROM with SIZE=200000: 552 5.3.4 at MAIL"

# ------------------------------------------------------------- 3. SPF -----
r=$(send_mail --local-interface "$FORGER" --helo forger.spf.test \
    --from alice@strict.spf.test --to rcpt@maildir.test,postmaster@maildir.test \
    --h-Subject "forged-1")
log=$(swaks_log)
like "$(grep -A1 '> RCPT TO:<rcpt@maildir.test>' "$log" | tail -n 1)" \
    '550 5\.7\.23 <rcpt@maildir\.test>\.\.\. SPF fail: strict\.spf\.test does not designate 198\.51\.100\.99 as permitted sender; strict\.spf\.test explains: Mail from strict\.spf\.test is accepted from its own servers only' \
    "SPF -all forgery: 550 5.7.23 at RCPT with the domain's explanation"
like "$(grep -A1 '> RCPT TO:<postmaster@maildir.test>' "$log" | tail -n 1)" '250 ' \
    "postmaster@ accepted in the same transaction"
like "$r" '^250 ' "... and the message accepted for postmaster@"
if f=$(delivered_to postmaster forged-1); then
    like "$(header_of "$f")" 'spf=fail[[:space:]]' "delivered to postmaster, annotated spf=fail"
else
    fail "delivered to postmaster"
fi

# The log line says what happened to that message: delivered to one
# recipient, refused for the other (it said verdict=reject before).
like "$(grep -F 'from=<alice@strict.spf.test>' "$MW_LOG" | tail -n 1)" \
    'verdict=accept for 1 recipient, refused for 1: reject: 550 5\.7\.23 SPF fail: ' \
    "log: accepted for 1 recipient, refused for 1, with the reply"

# ----------------------------------------------- 3b. a 70 kB header -----
# One header field above the milter protocol's default 64 kB packet.  The
# daemon takes packets up to 1 MB, but Sendmail never sends one: its own
# MaxHeadersLength (32 kB by default) refuses the message first, with a
# permanent 552 -- not a 4xx repeated forever.  (With MaxHeadersLength
# raised above 64 kB, Debian's Sendmail 8.17 refuses to write the packet
# itself -- "milter_write(mailwarden): length 72013 out of range" -- and
# F=T tempfails: see README, Large header fields.)
python3 -c 'import sys; sys.stdout.write("Subject: bighdr-1\r\nX-Big: start" + "\r\n\t" .join([""] + ["b" * 70] * 1000) + "\r\n\r\nbody\r\n")' > "$LAB/bighdr.eml"
r=$(send_mail --local-interface "$CLEAN" --helo mx.example.test \
    --from someone@example.test --to rcpt@maildir.test --data "@$LAB/bighdr.eml")
like "$r" '^552 5\.6\.0 Headers too large \(32768 max\)' \
    "a 70 kB header field: refused by Sendmail itself (552, not deferred)"
ok "daemon alive after it" daemon_alive

# ------------------------------------------------------------ 4. DKIM -----
sign() {    # sign FILE: print FILE signed for dkim.test by test/dkim-keys/rsa2048.pem
    /usr/bin/python3 - "$TOP/test/dkim-keys/rsa2048.pem" "$1" <<'EOF'
import sys, dkim
key = open(sys.argv[1], "rb").read()
msg = open(sys.argv[2], "rb").read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
sig = dkim.sign(msg, b"rsa2048", b"dkim.test", key,
                include_headers=[b"from", b"to", b"subject", b"date"])
sys.stdout.buffer.write(sig + msg)
EOF
}
cat > "$LAB/msg.eml" <<'EOF'
From: Alice <alice@dkim.test>
To: rcpt@maildir.test
Subject: dkim-1
Date: Tue, 14 Nov 2023 22:13:20 +0000
Message-ID: <dkim-1@dkim.test>

Hi Bob,

shall we meet at noon?
EOF
sign "$LAB/msg.eml" > "$LAB/signed.eml"
r=$(send_mail --local-interface "$CLEAN" --helo mx.example.test \
    --from alice@dkim.test --data "@$LAB/signed.eml")
like "$r" '^250 ' "signed message accepted"
if f=$(delivered_to rcpt dkim-1@); then
    like "$(header_of "$f")" 'dkim=pass[[:space:]]+header\.d=dkim\.test[[:space:]]+header\.i=@dkim\.test[[:space:]]+header\.s=rsa2048' \
        "DKIM verify: dkim=pass"
else
    fail "signed message delivered"
fi
sed 's/shall we meet at noon?/shall we meet at noon!/; s/dkim-1/dkim-2/' "$LAB/signed.eml" > "$LAB/changed.eml"
r=$(send_mail --local-interface "$CLEAN" --helo mx.example.test \
    --from alice@dkim.test --data "@$LAB/changed.eml")
like "$r" '^250 ' "changed message accepted (DKIM only annotates)"
if f=$(delivered_to rcpt dkim-2@); then
    like "$(header_of "$f")" 'dkim=fail[^;]*header\.d=dkim\.test' "body changed after signing: dkim=fail"
else
    fail "changed message delivered"
fi

# ---------------------------------------------- 5. signing, SMTP AUTH -----
sed 's/dkim-1/auth-1/g' "$LAB/msg.eml" > "$LAB/auth.eml"
r=$(send_mail --local-interface "$AUTHC" --helo roaming.example.test \
    --auth PLAIN --auth-user alice --auth-password secret \
    --from alice@dkim.test --data "@$LAB/auth.eml")
like "$(smtp_reply_of "$(swaks_log)" AUTH)" '^235 ' "SMTP AUTH as alice"
like "$r" '^250 ' "authenticated client's message accepted"
if f=$(delivered_to rcpt auth-1@); then
    hdr=$(header_of "$f")
    like "$hdr" $'(^|\n)DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=dkim\\.test;' \
        "signed by mailwarden for the authenticated client ({auth_authen})"
    unlike "$hdr" 'Authentication-Results: mx\.chroot\.test' "... and not checked as inbound"
    v=$(dkim_verify "$f")
    is "$v" pass "dkimpy verifies the signature (key from DNS)"
else
    fail "authenticated client's message delivered" "$(tail -n 20 "$LAB/sendmail.syslog")"
fi

# ------------------------------------------- 6. SIGKILL under load -----
# 4 clients send one message per session, without pause, until told to
# stop; the daemon is SIGKILLed after a dozen answers and started again;
# the clients go on until 10 more messages were accepted.  Sendmail (F=T)
# must tempfail what the dead filter was handling and what came while it
# was down; whatever got 250 must be delivered.
mkdir -p "$LAB/load"
/usr/bin/python3 - "$CLEAN" "$LAB/load" <<'EOF' &
import os, smtplib, sys, threading, time
src, outdir = sys.argv[1], sys.argv[2]
lock = threading.Lock()
count = [0]
def worker():
    t0 = time.time()
    while not os.path.exists(os.path.join(outdir, "STOP")) and time.time() < t0 + 120:
        with lock:
            n = count[0]; count[0] += 1
        tok = "load-%04d" % n
        res = "none"
        try:
            s = smtplib.SMTP(timeout=30, source_address=(src, 0))
            s.connect("127.0.0.1", 25)
            s.ehlo("mx.example.test")
            msg = ("From: someone@example.test\r\nTo: rcpt@maildir.test\r\n"
                   "Subject: %s\r\nMessage-ID: <%s@example.test>\r\n\r\n%s\r\n" % (tok, tok, "x" * 2000))
            code, text = s.mail("someone@example.test")
            if code != 250: raise smtplib.SMTPResponseException(code, text)
            code, text = s.rcpt("rcpt@maildir.test")
            if code != 250: raise smtplib.SMTPResponseException(code, text)
            code, _ = s.data(msg)
            res = str(code)
            s.quit()
        except smtplib.SMTPResponseException as e:
            res = str(e.smtp_code)
        except Exception as e:
            res = "error:" + type(e).__name__
        with open(os.path.join(outdir, tok + ".tmp"), "w") as f:
            f.write(res + "\n")
        os.rename(os.path.join(outdir, tok + ".tmp"), os.path.join(outdir, tok))
        if res != "250":
            time.sleep(0.05)
ts = [threading.Thread(target=worker) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
EOF
loader=$!
answers() { ls "$LAB/load" | grep -c '^load-[0-9]*$' || true; }
accepted() { grep -lx 250 "$LAB"/load/load-[0-9]* 2>/dev/null | grep -c . || true; }
for ((i = 0; i < 600; i++)); do [ "$(answers)" -ge 12 ] && break; sleep 0.05; done
kill -KILL "$MW_DAEMON_PID"
wait "$MW_DAEMON_PID" 2>/dev/null || true
MW_DAEMON_PID=
note "daemon SIGKILLed after $(answers) answers"
sleep 0.5
start_daemon "$LAB/mw.ini"
before=$(accepted)
for ((i = 0; i < 1200; i++)); do [ "$(accepted)" -ge $((before + 10)) ] && break; sleep 0.05; done
touch "$LAB/load/STOP"
wait "$loader" || true
acc=0; temp=0; other=""; lost=""
for f in "$LAB"/load/load-[0-9]*; do
    case $f in *.tmp) continue;; esac
    tok=$(basename "$f"); res=$(cat "$f")
    case $res in
        250) acc=$((acc + 1))
             delivered_to rcpt "<$tok@" >/dev/null || lost="$lost $tok" ;;
        4??) temp=$((temp + 1)) ;;
        *)   other="$other $tok=$res" ;;
    esac
done
note "under load with a SIGKILL: $((acc + temp)) messages, $acc accepted, $temp tempfailed, others:${other:- none}"
is "${other# }" "" "every message got 250 or 4xx"
is "${lost# }" "" "nothing 250-accepted is lost ($acc delivered)"
ok "messages were tempfailed around the kill ($temp)" test "$temp" -gt 0
ok "10 more accepted after the restart" test "$acc" -ge $((before + 10))
r=$(send_mail --local-interface "$CLEAN" --helo mx.example.test \
    --from someone@example.test --to rcpt@maildir.test --h-Subject "after-restart")
like "$r" '^250 ' "a message after the restart is accepted"
if f=$(delivered_to rcpt after-restart); then
    like "$(header_of "$f")" 'Authentication-Results: mx\.chroot\.test;' "... and checked (our A-R)"
else
    fail "message after the restart delivered"
fi

check_daemon_clean_exit
done_testing
