#!/bin/bash
# Integration: a private Postfix on 127.0.0.1 with mailwarden as its
# milter, swaks as the client (XCLIENT presents any client IP), reading
# what lands in the Maildir.  Asserts what a mail admin sees: SMTP reply
# codes, and the headers of the delivered message.
set -u
. "$(dirname "$0")/lib.sh"
lab_init

mw_config_lab "$LAB/mw.ini" <<'EOF2'
[milter]
trusted_networks = 10.0.0.0/8
EOF2
start_nsd example.test.zone 2.0.192.in-addr.arpa.zone sender.test.zone 100.51.198.in-addr.arpa.zone
start_daemon "$LAB/mw.ini"
start_postfix "inet:127.0.0.1:$MILTER_PORT"
# Let the 25 MB cap be ours, not Postfix's (its default is 10 MB).
postfix_set message_size_limit=40000000

# 1. A clean message is delivered with our Authentication-Results on top
#    and the forged ones claiming our id gone (three positions), another
#    host's A-R kept.
cat > "$LAB/forged.eml" <<'EOF2'
Authentication-Results: mx.test; spf=pass smtp.mailfrom=ceo@bank.example
From: sender@sender.test
To: rcpt@maildir.test
Authentication-Results: other.example; dkim=pass header.d=other.example
Subject: forged results
Authentication-Results: (sneaky) MX.TEST; dkim=pass header.d=bank.example
Date: Wed, 25 Nov 2026 12:00:00 +0000
Message-ID: <forged@sender.test>
Authentication-Results: mx.test;
	dmarc=pass header.from=bank.example

hello
EOF2
r=$(send_mail --xclient-addr 192.0.2.10 --xclient-name mx.example.test \
    --helo mx.example.test --data "@$LAB/forged.eml")
like "$r" "^250 2.0.0 Ok: queued" "clean message accepted"
wait_delivered 1
msg=$(last_delivered)
hdr=$(sed '/^$/q' "$msg")
like "$hdr" $'\nAuthentication-Results: mx.test;' "delivered with our Authentication-Results"
is "$(grep -ci '^Authentication-Results: *(sneaky)\|^Authentication-Results: mx.test; spf=pass\|dmarc=pass header.from=bank' "$msg")" 0 \
    "forged A-R with our id removed (first, middle, last)"
like "$hdr" "Authentication-Results: other.example; dkim=pass" "another host's A-R kept"
is "$(grep -c '^Authentication-Results:' "$msg")" 2 "exactly ours + the other host's"
# Inserted at index 0: above the message's own fields (RFC 8601 wants
# it prepended, next to the Received: of the hop that did the checks).
first_ar=$(grep -n '^Authentication-Results:' "$msg" | head -1 | cut -d: -f1)
first_from=$(grep -n '^From:' "$msg" | head -1 | cut -d: -f1)
ok "our A-R is above the message's own fields" [ "$first_ar" -lt "$first_from" ]

# 2. Over the size cap (25 MB + 1 byte): 552 5.3.4 while the body streams.
python3 - "$LAB/big.eml" <<'EOF2'
import sys
hdr = b"From: sender@sender.test\r\nTo: rcpt@maildir.test\r\nSubject: big\r\n\r\n"
target = 25 * 1024 * 1024 + 1
line = b"x" * 998 + b"\r\n"
with open(sys.argv[1], "wb") as f:
    f.write(hdr)
    left = target - len(hdr)
    while left > 0:
        chunk = line if left >= len(line) else b"y" * (left - 2) + b"\r\n" if left > 2 else b"z" * left
        f.write(chunk)
        left -= len(chunk)
EOF2
r=$(send_mail --xclient-addr 192.0.2.10 --xclient-name mx.example.test \
    --helo mx.example.test --data "@$LAB/big.eml")
like "$r" "^552 5.3.4 Message size exceeds fixed maximum message size of 26214400 bytes" \
    "25 MB + 1 byte refused with 552 5.3.4"

# 3. A 100 kB header line and a NUL byte: a defined answer, no crash.
python3 - "$LAB/odd.eml" <<'EOF2'
import sys
with open(sys.argv[1], "wb") as f:
    f.write(b"From: sender@sender.test\r\nTo: rcpt@maildir.test\r\n")
    f.write(b"X-Long: " + b"a" * 100000 + b"\r\n")
    f.write(b"X-Nul: before\x00after\r\nSubject: odd\r\n\r\nbody\r\n")
EOF2
clear_maildir
r=$(send_mail --xclient-addr 192.0.2.10 --xclient-name mx.example.test \
    --helo mx.example.test --data "@$LAB/odd.eml")
like "$r" "^250 2.0.0 Ok: queued" "100 kB header line and NUL byte: accepted"
wait_delivered 1
like "$(sed '/^$/q' "$(last_delivered)")" "Authentication-Results: mx.test;" \
    "odd message delivered with our header"
ok "daemon still running" daemon_alive

# 3b. One header field of 100 kB, folded into short lines (a long To: or
#     Received: chain): Postfix allows fields up to header_size_limit
#     (102400).  Postfix 3.7 with a milter keeps the first ~60 kB of
#     such a field (without a milter it keeps all of it), so the milter
#     sees it within libmilter's default 64 kB packet; t/miltertest.sh
#     sends a larger one directly.  The message must be delivered, not
#     deferred by "milter_default_action = tempfail".
python3 - "$LAB/bighdr.eml" <<'EOF2'
import sys
with open(sys.argv[1], "wb") as f:
    f.write(b"From: sender@sender.test\r\nTo: rcpt@maildir.test\r\n")
    f.write(b"X-Big: start")
    n = len(b"X-Big: start")
    while n < 101000:
        f.write(b"\r\n\t" + b"b" * 70)
        n += 73
    f.write(b"\r\nSubject: big header\r\n\r\nbody\r\n")
EOF2
clear_maildir
r=$(send_mail --xclient-addr 192.0.2.10 --xclient-name mx.example.test \
    --helo mx.example.test --data "@$LAB/bighdr.eml")
like "$r" "^250 2.0.0 Ok: queued" "a 101 kB header field is accepted"
if wait_delivered 1; then
	hdr=$(sed '/^$/q' "$(last_delivered)")
	like "$hdr" "Authentication-Results: mx.test;" \
	    "... delivered with our header (the milter saw the whole message)"
	big=$(sed -n '/^X-Big:/,/^Subject:/p' "$(last_delivered)" | wc -c)
	ok "... with (what Postfix keeps of) the big field: $big bytes" [ "$big" -gt 50000 ]
else
	fail "a 101 kB header field is delivered" "$(tail -5 "$PF_DIR/maillog")"
fi
ok "daemon still running after the big field" daemon_alive
unlike "$(postfix_log)" "milter.*(too big|Connection reset|unexpected EOF)" \
    "Postfix saw no milter failure"

# 4. The same over a unix socket, as the README's main.cf snippet has it:
#    the daemon makes the socket (mode 0660, group postfix) as root, then
#    drops to nobody; Postfix's smtpd (user postfix) must get through.
stop_daemon
sed -e "s|^socket = .*|socket = unix:$LAB/mw.sock|" "$LAB/mw.ini" > "$LAB/mw-unix.ini"
printf 'socket_mode = 0660\ngroup = postfix\n' > "$LAB/unix-extra"
sed -i "/^socket = unix:/r $LAB/unix-extra" "$LAB/mw-unix.ini"
start_daemon "$LAB/mw-unix.ini"
is "$(stat -c '%a %G' "$LAB/mw.sock")" "660 postfix" "unix socket has mode 0660, group postfix"
postfix_set "smtpd_milters=unix:$LAB/mw.sock"
clear_maildir
r=$(send_mail --xclient-addr 192.0.2.10 --xclient-name mx.example.test \
    --helo mx.example.test --from a@sender.test --header "From: <a@sender.test>")
like "$r" "^250 2.0.0 Ok: queued" "accepted through the unix socket"
wait_delivered 1
like "$(sed '/^$/q' "$(last_delivered)")" "Authentication-Results: mx.test;" \
    "delivered with our header (milter on the unix socket)"

check_daemon_clean_exit
done_testing
