#!/bin/bash
# Integration: ARC (RFC 8617) and trusted sealers, end to end through a
# private Postfix.  A bank (dmarc-bank.test, p=reject) writes to a mailing
# list (dmarc-lists.test), which re-sends the message with its own
# envelope and DKIM signature -- DMARC fails -- after sealing it with ARC
# (dkimpy's arc_sign) and recording dmarc=pass on arrival.  Keys, SPF and
# DMARC records are served by nsd (t/zones/dmarc-*, dkim-test).
#  1. sealed by the list, which [arc] trusted_sealers names: delivered,
#     the A-R keeps dmarc=fail policy.dmarc=reject with the override, and
#     the history record says trusted_forwarder, and so does the
#     aggregate report mailwarden-report makes of it;
#  2. the same message sealed by dkim.test, not trusted: refused;
#  3. the body changed after the seal: refused, and postmaster@'s copy
#     says arc=fail.
set -u
. "$(dirname "$0")/lib.sh"
/usr/bin/python3 -c "import dkim" 2>/dev/null ||
	skip_all "python3-dkim missing"
lab_init

mw_config_lab "$LAB/mw.ini" <<'EOF2'
[iprev]
enabled = no
[helo]
enabled = no
[arc]
enabled = yes
trusted_sealers = dmarc-lists.test
[dmarc]
psl_file = @TOP@/test/scenarios/dmarc_psl.dat
history_file = @LAB@/dmarc-history.jsonl
report_org_name = Receiver Test
report_submitter = mx.test
report_state_dir = @LAB@/report-state
EOF2
start_nsd dmarc-bank.zone dmarc-lists.zone dmarc-tld.zone dkim-test.zone
touch "$LAB/dmarc-history.jsonl"
[ "$(id -u)" = 0 ] && chown nobody "$LAB/dmarc-history.jsonl"
start_daemon "$LAB/mw.ini"
start_postfix "inet:127.0.0.1:$MILTER_PORT"

# forwarded SEALER FILE [tamper]: the bank's message as the list sends it.
forwarded() {
	/usr/bin/python3 - "$TOP/test/dkim-keys/rsa2048.pem" "$1" "${3:-}" > "$2" <<'EOF2'
import sys, dkim
key = open(sys.argv[1], "rb").read()
sealer, tamper = sys.argv[2].encode(), sys.argv[3]
msg = (b"From: Bank <service@dmarc-bank.test>\r\nTo: rcpt@maildir.test\r\n"
       b"Subject: [members] Your statement\r\n"
       b"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
       b"Message-ID: <stmt.2@dmarc-bank.test>\r\n\r\nDear customer,\r\n\r\n"
       b"your statement is ready.\r\n")
msg = dkim.sign(msg, b"rsa2048", b"dmarc-lists.test", key,
                include_headers=[b"from", b"to", b"subject", b"date"]) + msg
ar = (b"Authentication-Results: " + sealer + b"; dkim=pass "
      b"header.d=dmarc-bank.test; dmarc=pass header.from=dmarc-bank.test\r\n")
a = dkim.ARC(ar + msg)
sealed = b"".join(a.sign(b"rsa2048", sealer, key, sealer,
                         include_headers=a.default_sign_headers())) + msg
if tamper:
    sealed = sealed.replace(b"is ready", b"is NOT ready")
sys.stdout.buffer.write(sealed.replace(b"\r\n", b"\n"))
EOF2
}

send_list() {	# send_list FILE [RCPT]
	send_mail --xclient-addr 198.51.100.40 --helo lists.dmarc-lists.test \
	    --from members-bounces@dmarc-lists.test --to "${2:-rcpt@maildir.test}" \
	    --data "@$1"
}

# 1. trusted sealer
forwarded dmarc-lists.test "$LAB/trusted.eml"
clear_maildir
r=$(send_list "$LAB/trusted.eml")
like "$r" "^250 " "p=reject author, list-sealed by a trusted sealer: accepted"
wait_delivered 1
hdr=$(sed '/^$/q' "$(last_delivered)")
like "$hdr" "arc=pass[[:space:]]+\(i=1 sealers dmarc-lists.test\)[[:space:]]+smtp.remote-ip=198.51.100.40[[:space:]]+header.oldest-pass=0" \
    "A-R: arc=pass with the sealer, smtp.remote-ip and header.oldest-pass"
like "$hdr" "dmarc=fail header.from=dmarc-bank.test[[:space:]]+policy.dmarc=reject[[:space:]]+\(p=reject sp=reject np=reject dis=none; override=arc arc=pass sealer=dmarc-lists.test\)" \
    "A-R: dmarc=fail policy.dmarc=reject stays, with the override in the comment"
ok "history: override trusted_forwarder, arc=pass sealer=dmarc-lists.test" /usr/bin/python3 -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
r = recs[-1]
assert r["header_from"] == "dmarc-bank.test" and r["dmarc"] == "fail", r
assert r["policy"] == "reject" and r["disposition"] == "none", r
assert r["override"] == {"type": "trusted_forwarder",
                         "comment": "arc=pass sealer=dmarc-lists.test"}, r' \
    "$LAB/dmarc-history.jsonl"

# ... and the aggregate report for dmarc-bank.test gives it as RFC 9990's
# trusted_forwarder reason (the report program reads the same history).
sleep 1		# --end now leaves out the current second
mkdir -p "$LAB/reports"
"$BUILD/tools/mailwarden-report" -c "$LAB/mw.ini" --end now \
    --out "$LAB/reports" >"$LAB/report.out" 2>&1
is "$?" 0 "mailwarden-report --out exits 0"
xml=$(zcat "$LAB"/reports/*'!dmarc-bank.test!'*.xml.gz 2>/dev/null)
like "$xml" "<reason>[[:space:]]*<type>trusted_forwarder</type>[[:space:]]*<comment>arc=pass sealer=dmarc-lists.test</comment>[[:space:]]*</reason>" \
    "aggregate report: reason trusted_forwarder with the sealer"
ok "aggregate report: valid against the RFC 9990 schema" eval \
    'printf "%s\n" "$xml" | xmllint --noout --schema "$TOP/test/report/dmarc-2.0.xsd" - 2>"$LAB/xmllint.err"'

# 2. a sealer that is not trusted
forwarded dkim.test "$LAB/untrusted.eml"
r=$(send_list "$LAB/untrusted.eml")
is "$r" "550 5.7.1 Unauthenticated mail from this domain is not accepted due to its DMARC policy (dmarc-bank.test)" \
    "the same message sealed by an untrusted sealer: refused"

# 3. a broken chain
forwarded dmarc-lists.test "$LAB/broken.eml" tamper
r=$(send_list "$LAB/broken.eml")
is "$r" "550 5.7.1 Unauthenticated mail from this domain is not accepted due to its DMARC policy (dmarc-bank.test)" \
    "body changed after the trusted seal: refused"
clear_maildir
r=$(send_list "$LAB/broken.eml" postmaster@maildir.test)
like "$r" "^250 " "... postmaster@ gets it"
wait_delivered 1
like "$(sed '/^$/q' "$(last_delivered)")" "arc=fail[[:space:]]+\(ARC-Message-Signature 1: body hash does not verify\)" \
    "... and its A-R says arc=fail and why"

check_daemon_clean_exit
done_testing
