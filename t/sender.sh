#!/bin/bash
# Integration: [sender] end to end through a private Postfix.  A MAIL FROM
# domain that does not exist is refused at RCPT (550 5.1.8) while
# postmaster@ still receives the same message; a null MX gets 550 5.7.27;
# domains with an MX or only an A record are delivered.  Zones in nsd
# (t/zones/sendercheck.test.zone); the client is presented with XCLIENT
# as 192.0.2.10 = mx.example.test (forward-confirmed reverse DNS).
set -u
. "$(dirname "$0")/lib.sh"
lab_init

mw_config_lab "$LAB/mw.ini" <<'EOF2'
[sender]
enabled = yes
[spf]
enabled = no
[dmarc]
enabled = no
EOF2
start_nsd sendercheck.test.zone example.test.zone 2.0.192.in-addr.arpa.zone
start_daemon "$LAB/mw.ini"
start_postfix "inet:127.0.0.1:$MILTER_PORT"

client=(--xclient-addr 192.0.2.10 --xclient-name mx.example.test
    --helo mx.example.test)

# 1. A sender domain that does not exist: refused at RCPT.
r=$(send_mail "${client[@]}" --from alice@nowhere.sendercheck.test \
    --to rcpt@maildir.test)
like "$r" "^550 5\.1\.8 .*nowhere\.sendercheck\.test does not exist" \
    "nonexistent sender domain refused with 550 5.1.8"
like "$(smtp_reply_of "$(swaks_log)" RCPT)" "^550 5.1.8" "... at RCPT"

# 2. The same sender to postmaster@ is delivered.
r=$(send_mail "${client[@]}" --from alice@nowhere.sendercheck.test \
    --to postmaster@maildir.test \
    --header "From: <alice@nowhere.sendercheck.test>")
like "$r" "^250 " "postmaster@ still receives from it"
wait_delivered 1
is "$(delivered_count)" 1 "... one message delivered"

# 3. A null MX: 550 5.7.27.
r=$(send_mail "${client[@]}" --from alice@nullmx.sendercheck.test \
    --to rcpt@maildir.test)
like "$r" "^550 5\.7\.27 .*null MX" "null MX sender refused with 550 5.7.27"

# 4. An MX, or an A record only: delivered.
clear_maildir
r=$(send_mail "${client[@]}" --from alice@mx.sendercheck.test \
    --header "From: <alice@mx.sendercheck.test>")
like "$r" "^250 " "sender domain with an MX delivered"
r=$(send_mail "${client[@]}" --from alice@aonly.sendercheck.test \
    --header "From: <alice@aonly.sendercheck.test>")
like "$r" "^250 " "sender domain with only an A record delivered"
wait_delivered 2
is "$(delivered_count)" 2 "... both delivered"

# 5. The null sender is not checked.
r=$(send_mail "${client[@]}" --from '<>' \
    --header "From: <MAILER-DAEMON@mx.example.test>")
like "$r" "^250 " "null sender delivered"

grep -q "MAIL FROM:<>" "$(swaks_log)" || fail "swaks did not send MAIL FROM:<>" "$(cat "$(swaks_log)")"
check_daemon_clean_exit
done_testing
