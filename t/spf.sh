#!/bin/bash
# Integration: SPF end to end through a private Postfix, records served by
# nsd (t/zones/spf-test.zone), client addresses presented with XCLIENT.
set -u
. "$(dirname "$0")/lib.sh"
lab_init

write_config() {	# write_config NAMESERVER_PORT
	mw_config_write "$LAB/mw.ini" <<EOF2
[milter]
socket = inet:@MILTER_PORT@@127.0.0.1
authserv_id = mx.test
user = nobody
[dns]
nameservers = 127.0.0.1:$1
timeout_ms = 300
tries = 1
[iprev]
enabled = no
[helo]
enabled = no
[dmarc]
enabled = no
EOF2
}
start_nsd spf-test.zone
write_config "$NSD_PORT"
start_daemon "$LAB/mw.ini"
start_postfix "inet:127.0.0.1:$MILTER_PORT"

# 1. A forged sender of a -all domain: 550 5.7.23 at RCPT, with the
#    domain's explanation; postmaster@ still gets it.
r=$(send_mail --xclient-addr 198.51.100.99 --helo forger.spf.test \
    --from alice@strict.spf.test --to rcpt@maildir.test)
is "$r" "550 5.7.23 SPF fail: strict.spf.test does not designate 198.51.100.99 as permitted sender; strict.spf.test explains: Mail from strict.spf.test is accepted from its own servers only, not from 198.51.100.99" \
    "forged -all sender rejected with the domain's explanation"
like "$(smtp_reply_of "$(swaks_log)" RCPT)" "^550 5.7.23" "... at RCPT"
r=$(send_mail --xclient-addr 198.51.100.99 --helo forger.spf.test \
    --from alice@strict.spf.test --to postmaster@maildir.test)
like "$r" "^250 " "postmaster@ accepts the same sender"
wait_delivered 1
like "$(sed '/^$/q' "$(last_delivered)")" "spf=fail[[:space:]]" "... annotated spf=fail"

# 2. ~all: delivered, annotated softfail, with Received-SPF.
clear_maildir
r=$(send_mail --xclient-addr 198.51.100.99 --helo forger.spf.test \
    --from alice@soft.spf.test --to rcpt@maildir.test)
like "$r" "^250 " "~all sender delivered"
wait_delivered 1
hdr=$(sed '/^$/q' "$(last_delivered)")
like "$hdr" "spf=softfail[[:space:]]+\([^)]*\)[[:space:]]+smtp.mailfrom=alice@soft.spf.test" "A-R: spf=softfail smtp.mailfrom="
like "$hdr" $'\nReceived-SPF: softfail \\(mx.test: [^)]*\\)[[:space:]]+identity=mailfrom; client-ip=198.51.100.99; envelope-from="alice@soft.spf.test"; helo=forger.spf.test; receiver=mx.test;' \
    "Received-SPF header with identity, client-ip, envelope-from, helo, receiver"

# 3. A pass.
clear_maildir
r=$(send_mail --xclient-addr 192.0.2.10 --helo mx.spf.test \
    --from alice@pass.spf.test --to rcpt@maildir.test)
like "$r" "^250 " "authorized sender delivered"
wait_delivered 1
like "$(sed '/^$/q' "$(last_delivered)")" "spf=pass[[:space:]]+\([^)]*\)[[:space:]]+smtp.mailfrom=alice@pass.spf.test" "A-R: spf=pass"

# 4. DNS timeout: 451 4.7.24 (the sender retries later).
lab_spawn dnsfault /usr/bin/python3 "$T_DIR/dnsfault.py" "$DNSFAULT_PORT"
sleep 0.5
stop_daemon
write_config "$DNSFAULT_PORT"
start_daemon "$LAB/mw.ini"
r=$(send_mail --xclient-addr 198.51.100.99 --helo forger.spf.test \
    --from alice@timeout.spf.test --to rcpt@maildir.test)
like "$r" "^451 4.7.24 " "DNS timeout looking up SPF: 451 4.7.24"

check_daemon_clean_exit
done_testing
