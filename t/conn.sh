#!/bin/bash
# Integration: the connection checks (iprev, HELO, DNSBL) end to end
# through a private Postfix, clients presented with XCLIENT, zones in nsd
# (t/zones/conn-*.zone: the DNSBL bl.conn.test lists 198.18.1.66).
set -u
. "$(dirname "$0")/lib.sh"
lab_init

mw_config_lab "$LAB/mw.ini" <<'EOF2'
[dnsbl]
zone = bl.conn.test
[spf]
enabled = no
[dmarc]
enabled = no
EOF2
start_nsd conn-fwd.zone conn-rev4.zone conn-rev6.zone example.test.zone \
    2.0.192.in-addr.arpa.zone
start_daemon "$LAB/mw.ini"
start_postfix "inet:127.0.0.1:$MILTER_PORT"

# 1. A listed client: refused at RCPT with the list's text.
r=$(send_mail --xclient-addr 198.18.1.66 --xclient-name c66.conn.test \
    --helo c66.conn.test --from alice@sender.test --to rcpt@maildir.test)
like "$r" "^550 5.7.1 Service unavailable; Client host \[198.18.1.66\] blocked using bl.conn.test; " \
    "listed client refused at RCPT with the DNSBL text"
like "$(smtp_reply_of "$(swaks_log)" RCPT)" "^550 5.7.1" "... at RCPT"

# 2. ... but postmaster@ still accepts it, annotated.
r=$(send_mail --xclient-addr 198.18.1.66 --xclient-name c66.conn.test \
    --helo c66.conn.test --from alice@sender.test --to postmaster@maildir.test \
    --header "From: <alice@sender.test>")
like "$r" "^250 " "postmaster@ accepts the listed client"
wait_delivered 1
like "$(sed '/^$/q' "$(last_delivered)")" "x-dnsbl=fail dns.zone=bl.conn.test" "... annotated x-dnsbl=fail"

# 3. A clean client with forward-confirmed reverse DNS: iprev=pass.
clear_maildir
r=$(send_mail --xclient-addr 192.0.2.10 --xclient-name mx.example.test \
    --helo mx.example.test --from a@sender.test --header "From: <a@sender.test>")
like "$r" "^250 " "clean client delivered"
wait_delivered 1
hdr=$(sed '/^$/q' "$(last_delivered)")
like "$hdr" "iprev=pass policy.iprev=192.0.2.10 \(mx.example.test\)" "A-R: iprev=pass"
like "$hdr" "x-helo=pass smtp.helo=mx.example.test" "A-R: x-helo=pass"

# 4. No PTR: 550 5.7.25; a HELO claiming to be us: rejected.
r=$(send_mail --xclient-addr 192.0.2.20 --helo noptr.example.test \
    --from a@sender.test --to rcpt@maildir.test)
is "$r" "550 5.7.25 Client host [192.0.2.20] has no reverse DNS (PTR) record" \
    "client without PTR refused"
r=$(send_mail --xclient-addr 192.0.2.10 --xclient-name mx.example.test \
    --helo mx.test --from a@sender.test --to rcpt@maildir.test)
like "$r" "^5[0-9][0-9] 5\.[0-9.]+ .*mx.test" "HELO with our own name refused"

# 5. The log line says what happened to the message: no PTR, one
#    recipient refused, postmaster@ accepted and delivered.
clear_maildir
r=$(send_mail --xclient-addr 192.0.2.20 --helo noptr.example.test \
    --from a@sender.test --to rcpt@maildir.test,postmaster@maildir.test \
    --header "From: <a@sender.test>")
like "$r" "^250 " "no PTR: delivered to postmaster@"
wait_delivered 1
like "$(daemon_log)" "client=unknown\[192.0.2.20\] .* verdict=accept for 1 recipient, refused for 1: reject: 550 5.7.25 Client host \[192.0.2.20\] has no reverse DNS \(PTR\) record" \
    "log: accepted for 1 recipient, refused for 1, with the reply"

# 6. Postfix passes no name ("unknown"): the log names the client by the
#    name our iprev check confirmed, marked as such.
r=$(send_mail --xclient-addr 192.0.2.10 --xclient-name '[UNAVAILABLE]' \
    --helo mx.example.test --from b@sender.test --to rcpt@maildir.test)
like "$r" "^250 " "client without a name from the MTA delivered"
like "$(daemon_log)" "client=mx.example.test\[192.0.2.10\] name_from=iprev helo=<mx.example.test> from=<b@sender.test>" \
    "log: client name from our iprev check, marked name_from=iprev"

check_daemon_clean_exit
done_testing
