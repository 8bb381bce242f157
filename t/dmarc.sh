#!/bin/bash
# Integration: DMARC end to end through a private Postfix, with the
# domains' SPF, DKIM and DMARC records served by nsd (t/zones/dmarc-*).
# The forger sends from 203.0.113.66 with MAIL FROM bounce@dmarc-evil.test,
# whose SPF covers that address (SPF passes, but does not align).
set -u
. "$(dirname "$0")/lib.sh"
lab_init

mw_config_lab "$LAB/mw.ini" <<'EOF2'
[iprev]
enabled = no
[helo]
enabled = no
[dmarc]
psl_file = @TOP@/test/scenarios/dmarc_psl.dat
quarantine_action = hold
history_file = @LAB@/dmarc-history.jsonl
EOF2
start_nsd dmarc-bank.zone dmarc-evil.zone dmarc-shop.zone dmarc-lists.zone dmarc-misc.zone \
    dmarc-bis.zone dmarc-tld.zone
# The daemon runs as nobody: give it its history file.
touch "$LAB/dmarc-history.jsonl"
[ "$(id -u)" = 0 ] && chown nobody "$LAB/dmarc-history.jsonl"
start_daemon "$LAB/mw.ini"
start_postfix "inet:127.0.0.1:$MILTER_PORT"

forge() {	# forge FROM_HEADER [RCPT] [EXTRA_HEADER]
	send_mail --xclient-addr 203.0.113.66 --helo mail.example.org \
	    --from bounce@dmarc-evil.test --to "${2:-rcpt@maildir.test}" \
	    --header "From: $1" ${3:+--add-header "$3"}
}

# 1. p=reject, forged: 550 5.7.1 with the configured text, after DATA.
r=$(forge "Bank <service@dmarc-bank.test>")
is "$r" "550 5.7.1 Unauthenticated mail from this domain is not accepted due to its DMARC policy (dmarc-bank.test)" \
    "forged p=reject domain: rejected at end of data"
like "$(smtp_reply_of "$(swaks_log)" EOM)" "^550 5.7.1" "the rejection is the answer to the message (end of DATA)"

# 2. The same to postmaster@: delivered, annotated as exempt.
r=$(forge "Bank <service@dmarc-bank.test>" postmaster@maildir.test)
like "$r" "^250 " "postmaster@ still receives it"
wait_delivered 1
like "$(sed '/^$/q' "$(last_delivered)")" "dmarc=fail header.from=dmarc-bank.test[[:space:]]+policy.dmarc=reject[[:space:]]+\(p=reject sp=reject np=reject dis=none; exempt recipient\)" \
    "postmaster copy annotated: dmarc=fail, exempt recipient"

# 3. Two From header fields: the defined verdict.
r=$(forge "Bank <service@dmarc-bank.test>" rcpt@maildir.test "From: Other <x@dmarc-evil.test>")
is "$r" "550 5.7.1 Message rejected: several From header fields (DMARC)" \
    "two From fields: rejected"

# 4. SPF pass but unaligned and no DKIM for a p=none/quarantine domain.
clear_maildir
r=$(forge "Shop <orders@dmarc-shop.test>")
like "$r" "^250 " "p=quarantine domain forged: accepted"
sleep 1
like "$(postfix_queue)" "!" "... and put on hold (quarantine_action = hold)"

# 5. Aligned DKIM pass through a relaxed subdomain: dmarc=pass.
/usr/bin/python3 - "$TOP/test/dkim-keys/rsa2048.pem" > "$LAB/signed.eml" <<'EOF2'
import sys, dkim
key = open(sys.argv[1], "rb").read()
msg = (b"From: News <news@mail.dmarc-bank.test>\r\nTo: rcpt@maildir.test\r\n"
       b"Subject: Your statement\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
       b"Message-ID: <stmt.1@dmarc-bank.test>\r\n\r\nDear customer,\r\n\r\n"
       b"your statement is ready.\r\n")
sig = dkim.sign(msg, b"rsa2048", b"dmarc-bank.test", key,
                include_headers=[b"from", b"to", b"subject", b"date"])
sys.stdout.buffer.write((sig + msg).replace(b"\r\n", b"\n"))
EOF2
clear_maildir
r=$(send_mail --xclient-addr 203.0.113.66 --helo mail.example.org \
    --from bounce@dmarc-evil.test --data "@$LAB/signed.eml")
like "$r" "^250 " "DKIM-aligned message accepted"
wait_delivered 1
hdr=$(sed '/^$/q' "$(last_delivered)")
like "$hdr" "dkim=pass[[:space:]]+header.d=dmarc-bank.test" "its DKIM signature passes"
like "$hdr" "dmarc=pass header.from=mail.dmarc-bank.test" "relaxed alignment through the subdomain: dmarc=pass"

# 6. RFC 9989 np=: dmarc-bis.test says p=reject sp=none np=reject.  A From
# domain below it that does not exist (NXDOMAIN) gets np=: rejected; an
# existing one gets sp=none: delivered, annotated.
r=$(forge "X <x@ghost.dmarc-bis.test>")
is "$r" "550 5.7.1 Unauthenticated mail from this domain is not accepted due to its DMARC policy (ghost.dmarc-bis.test)" \
    "np=reject: a non-existent subdomain is rejected although sp=none"
clear_maildir
r=$(forge "X <x@shop.dmarc-bis.test>")
like "$r" "^250 " "sp=none: an existing subdomain is accepted"
wait_delivered 1
like "$(sed '/^$/q' "$(last_delivered)")" "dmarc=fail header.from=shop.dmarc-bis.test[[:space:]]+policy.dmarc=none[[:space:]]+\(p=reject sp=none np=reject dis=none\)" \
    "... annotated dmarc=fail, policy none from sp="

# 7. The aggregate-report history: one JSON object per message.
n=$(wc -l < "$LAB/dmarc-history.jsonl")
ok "history has a line per DMARC-evaluated message ($n)" [ "$n" -ge 4 ]
ok "every history line is JSON" /usr/bin/python3 -c '
import json, sys
for line in open(sys.argv[1]): json.loads(line)' "$LAB/dmarc-history.jsonl"
ok "history records the discovery method, np and t= (RFC 9990)" /usr/bin/python3 -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
r = [x for x in recs if x["header_from"] == "ghost.dmarc-bis.test"][0]
assert r["v"] == 2 and r["discovery_method"] == "treewalk", r
assert r["np"] == "reject" and r["policy_from"] == "np" and r["testing"] == "n", r
assert r["policy_domain"] == "dmarc-bis.test" and r["org_domain"] == "dmarc-bis.test", r' "$LAB/dmarc-history.jsonl"

check_daemon_clean_exit
done_testing
