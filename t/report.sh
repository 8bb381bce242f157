#!/bin/bash
# Integration: DMARC aggregate reports end to end.  Mail from several
# domains (passing, forged, forwarded with an intact DKIM signature) goes
# through the private Postfix to mailwarden -- first the daemon of "mx1",
# then that of "mx2" (two MX hosts), both writing to one Redis (the
# shared store) and each to its own history file --, then
# mailwarden-report reads the Redis store and sends its reports by SMTP
# back through that Postfix to the rua= mailboxes (the Maildir sink);
# the two history files give the same counts (the file store).  Checked: the report arrives at the confirmed
# external address (RFC 9990 section 4: report-maildir.zone), its
# attachment is named and typed as RFC 9990 says, is gzip, validates
# against the RFC 9990 schema, and its counts per (source IP,
# disposition) equal the messages sent through both hosts; the
# unconfirmed rua= of rpt-b.test gets nothing; a corrupt history line is
# skipped and counted; a second run sends nothing.
set -u
. "$(dirname "$0")/lib.sh"
lab_init

REPORT=${MW_REPORT:-$TOP/tools/mailwarden-report}
[ -x "$REPORT" ] || skip_all "$REPORT not built"
command -v xmllint >/dev/null || skip_all "xmllint missing (apt-get install libxml2-utils)"

for h in mx1 mx2; do
	mw_config_lab "$LAB/$h.ini" <<EOF2
[redis]
server = 127.0.0.1:@REDIS_PORT@
[iprev]
enabled = no
[helo]
enabled = no
[dmarc]
psl_file = @TOP@/test/scenarios/dmarc_psl.dat
history_file = @LAB@/history-$h.jsonl
history_redis = yes
report_from = dmarc-noreply@maildir.test
report_org_name = Receiver Test
report_submitter = receiver.test
report_state_dir = @LAB@/reports
report_smtp = 127.0.0.1:@SMTP_PORT@
failure_reports = yes
failure_spool = @LAB@/failures
failure_rate = 2/1h
[dkim]
key = maildir.test rsa2048 @TOP@/test/dkim-keys/rsa2048.pem
allow_world_readable_keys = yes
EOF2
	touch "$LAB/history-$h.jsonl"
	[ "$(id -u)" = 0 ] && chown nobody "$LAB/history-$h.jsonl"
done
mkdir -p "$LAB/failures"
[ "$(id -u)" = 0 ] && chown nobody "$LAB/failures"
start_redis
start_nsd report-a.zone report-b.zone report-psd.zone report-maildir.zone dmarc-tld.zone
start_daemon "$LAB/mx1.ini"
start_postfix "inet:127.0.0.1:$MILTER_PORT"

/usr/bin/python3 - "$TOP/test/dkim-keys/rsa2048.pem" > "$LAB/signed.eml" <<'EOF2'
import sys, dkim
key = open(sys.argv[1], "rb").read()
msg = (b"From: A <news@rpt-a.test>\r\nTo: rcpt@maildir.test\r\n"
       b"Subject: forwarded\r\nDate: Mon, 07 Dec 2026 10:00:00 +0000\r\n"
       b"Message-ID: <fwd.1@rpt-a.test>\r\n\r\nForwarded, signature intact.\r\n")
sig = dkim.sign(msg, b"rsa2048", b"rpt-a.test", key,
                include_headers=[b"from", b"to", b"subject", b"date"])
sys.stdout.buffer.write((sig + msg).replace(b"\r\n", b"\n"))
EOF2

good() { send_mail --xclient-addr 192.0.2.10 --helo mail.rpt-a.test \
    --from bounce@rpt-a.test --header "From: A <news@rpt-a.test>"; }
forged() { send_mail --xclient-addr 203.0.113.66 --helo mail.rpt-b.test \
    --from x@rpt-b.test --header "From: A <news@rpt-a.test>"; }
forwarded() { send_mail --xclient-addr 198.51.100.20 --helo mail.rpt-b.test \
    --from relay@rpt-b.test --data "@$LAB/signed.eml"; }
other() { send_mail --xclient-addr 192.0.2.30 --helo mail.rpt-b.test \
    --from x@rpt-b.test --header "From: B <news@rpt-b.test>"; }

# mx1: 3 passing, 2 forged (rejected), 1 for rpt-b.test (p=none)
for i in 1 2 3; do like "$(good)" "^250 " "mx1: rpt-a.test from its server: accepted ($i)"; done
for i in 1 2; do like "$(forged)" "^550 5.7.1" "mx1: forged rpt-a.test: rejected ($i)"; done
like "$(other)" "^250 " "mx1: rpt-b.test (p=none): accepted"
# mx2: 2 passing, 1 forwarded (SPF unaligned, DKIM aligned pass), 1 forged
start_daemon "$LAB/mx2.ini"
for i in 1 2; do like "$(good)" "^250 " "mx2: rpt-a.test from its server: accepted ($i)"; done
like "$(forwarded)" "^250 " "mx2: forwarded (SPF not aligned), DKIM intact: accepted"
like "$(forged)" "^550 5.7.1" "mx2: forged rpt-a.test: rejected"
is "$(wc -l < "$LAB/history-mx1.jsonl") $(wc -l < "$LAB/history-mx2.jsonl")" "6 4" \
    "a history line per message on each host"
# A forgery of a psd=y domain that asks for failure reports: RFC 9991
# says no failure report for it (its history line is added below).
like "$(send_mail --xclient-addr 203.0.113.66 --helo mail.rpt-b.test --from x@rpt-b.test \
    --header "From: P <news@rpt-psd.test>")" "^550 5.7.1" "forged psd=y domain: rejected"
is "$(redis_cmd LLEN "mw:dmarc:history:$(( $(date +%s) / 86400 * 86400 ))")" 11 \
    "the same 11 records in the shared Redis list of the day"
ttl=$(redis_cmd TTL "mw:dmarc:history:$(( $(date +%s) / 86400 * 86400 ))")
ok "... which expires (the day + history_redis_keep 8d: TTL $ttl s)" \
    eval '[ "$ttl" -gt $((8 * 86400)) ] && [ "$ttl" -le $((9 * 86400)) ]'
# A corrupt line (a crash mid-write, a disk error) in mx1's history, and a
# corrupt entry in Redis.
printf '{"v":2,"time":17\n' >> "$LAB/history-mx1.jsonl"
redis_cmd RPUSH "mw:dmarc:history:$(( $(date +%s) / 86400 * 86400 ))" '{"v":2,"source_ip":"x' >/dev/null
wait_delivered 3
clear_maildir

# The report run (as root here; the package runs it as mailwarden).
# --end now ends the period before the current second (records of this
# second may still be written: they belong to the next report), so wait
# for the second of the last message to pass.
sleep 1
out=$("$REPORT" -v -c "$LAB/mx1.ini" --end now 2>"$LAB/report.err")
is "$?" 0 "mailwarden-report exits 0"
like "$out" "lines 12 records 11 skipped 1 " "11 records from Redis, the corrupt entry skipped and counted"
like "$out" "reports 3 queued 2 sent 1 deferred 0 failed 0 unauthorised 1 " \
    "3 reports (rpt-psd.test has no rua=): one sent, one refused (unconfirmed external rua)"
like "$(cat "$LAB/report.err")" "victim@maildir.test is not authorised to receive reports for rpt-b.test" \
    "the refusal is logged"
wait_delivered 1
sleep 1
is "$(delivered_count)" 1 "exactly one report message arrived"
msg=$(last_delivered)
like "$(grep -i '^To:' "$msg")" "agg@maildir.test" "... at the confirmed address agg@maildir.test"
if grep -qi "victim@maildir.test" "$MAILDIR"/new/* 2>/dev/null; then
	fail "the unconfirmed rua victim@maildir.test got nothing"
else
	pass "the unconfirmed rua victim@maildir.test got nothing"
fi

# Take the message apart as a report consumer would.
/usr/bin/python3 - "$msg" "$LAB" > "$LAB/parts.txt" 2>&1 <<'EOF2'
import email, gzip, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"))
print("subject", " ".join(m["Subject"].split()))
for p in m.walk():
    if p.get_content_type() == "application/gzip":
        print("file", p.get_filename())
        data = p.get_payload(decode=True)
        open(sys.argv[2] + "/report.xml.gz", "wb").write(data)
        open(sys.argv[2] + "/report.xml", "wb").write(gzip.decompress(data))
EOF2
parts=$(cat "$LAB/parts.txt")
like "$parts" "subject Report Domain: rpt-a.test Submitter: receiver.test Report-ID: <[0-9]+\.[0-9]+\.rpt-a\.test@receiver\.test>" \
    "Subject as RFC 9990 3.1.3 says"
like "$parts" "file receiver\.test!rpt-a\.test![0-9]+![0-9]+\.xml\.gz" \
    "an application/gzip attachment named receiver!domain!begin!end.xml.gz"
ok "the attachment is gzip" gzip -t "$LAB/report.xml.gz"
ok "the report validates against the RFC 9990 schema" \
    xmllint --noout --schema "$TOP/test/report/dmarc-2.0.xsd" "$LAB/report.xml"
# Our own report: signed by our key (it came from a trusted client, the
# local report program), so it passes DMARC p=reject of maildir.test at
# its receivers; it was delivered, so our own policy did not refuse it.
like "$(sed '/^$/q' "$msg")" "DKIM-Signature: .*d=maildir\.test" "the report is DKIM-signed (d=maildir.test)"
v=$(dkim_verify "$msg")
is "$v" pass "dkimpy verifies the report's signature (key from DNS)"
count_rows() { /usr/bin/python3 - "$1" <<'EOF2'
import sys, xml.etree.ElementTree as ET
ns = {"d": "urn:ietf:params:xml:ns:dmarc-2.0"}
c = {}
for r in ET.parse(sys.argv[1]).getroot().findall("d:record", ns):
    row = r.find("d:row", ns)
    k = (row.findtext("d:source_ip", namespaces=ns),
         row.findtext("d:policy_evaluated/d:disposition", namespaces=ns),
         row.findtext("d:policy_evaluated/d:dkim", namespaces=ns),
         row.findtext("d:policy_evaluated/d:spf", namespaces=ns))
    c[k] = c.get(k, 0) + int(row.findtext("d:count", namespaces=ns))
print(" ".join("%s/%s/dkim=%s/spf=%s:%d" % (k + (v,)) for k, v in sorted(c.items())))
EOF2
}
counts=$(count_rows "$LAB/report.xml")
is "$counts" "192.0.2.10/pass/dkim=fail/spf=pass:5 198.51.100.20/pass/dkim=pass/spf=fail:1 203.0.113.66/reject/dkim=fail/spf=fail:3" \
    "counts per (IP, result) = messages sent through both hosts"

# The file store: both hosts' history files give the same counts.
mkdir "$LAB/out"
out=$("$REPORT" -c "$LAB/mx1.ini" --history "$LAB/history-mx1.jsonl" \
    --history "$LAB/history-mx2.jsonl" --end now --out "$LAB/out" 2>/dev/null)
like "$out" "lines 12 records 11 skipped 1 " "the two history files: 11 records, the corrupt line skipped and counted"
zcat "$LAB"/out/*'!rpt-a.test!'* > "$LAB/report-files.xml"
is "$(count_rows "$LAB/report-files.xml")" "$counts" "... and the same counts per (IP, result)"

# A second run for the same period sends nothing.
out=$("$REPORT" -v -c "$LAB/mx1.ini" --end now 2>/dev/null)
like "$out" "already-reported 11 later 0 reports 0 queued 0 sent 0 " \
    "a second run: nothing reported or sent again"
sleep 1
is "$(delivered_count)" 1 "... and no second message arrived"

# The same reports through sendmail(1) instead of SMTP: Postfix's
# sendmail, pointed at the private instance (MAIL_CONFIG), with its own
# state directory (so the period is reported again).
clear_maildir
sed -e 's|^report_smtp = .*|report_smtp =|' -e "s|^report_state_dir = .*|report_state_dir = $LAB/reports-sm|" \
    "$LAB/mx1.ini" > "$LAB/sm.ini"
out=$(MAIL_CONFIG=$PF_ETC "$REPORT" -c "$LAB/sm.ini" --end now 2>/dev/null)
like "$out" " sent 1 deferred 0 failed 0 unauthorised 1 " "report_sendmail: sent through sendmail(1)"
wait_delivered 1
like "$(grep -i '^To:' "$(last_delivered)")" "agg@maildir.test" "... and it arrived at agg@maildir.test"

# Failure reports (RFC 9991, opt-in: failure_reports = yes): the three
# forged messages left three in the spool; failure_rate = 2/1h sends two.
is "$(ls "$LAB/failures" | wc -l)" 3 "a failure report spooled per forged rpt-a.test message (3), none for the psd=y domain"
clear_maildir
out=$("$REPORT" -v -c "$LAB/mx1.ini" --failures 2>"$LAB/failures.err")
is "$out" "failure-reports 3 sent 2 rate-limited 1 unauthorised 0 deferred 0 failed 0 bad 0" \
    "--failures: 2 sent, the third over failure_rate (2/1h) dropped"
wait_delivered 2
sleep 1
is "$(delivered_count)" 2 "two failure reports arrived"
f=$(last_delivered)
hdr=$(sed '/^$/q' "$f")
like "$hdr" "To: <fail@maildir\.test>" "... at the ruf= address"
like "$hdr" "Content-Type: multipart/report; report-type=feedback-report" "... as RFC 6591 multipart/report"
like "$hdr" "DKIM-Signature: .*d=maildir\.test" "... DKIM-signed like the aggregate reports"
body=$(tr -d '\r' < "$f")
for want in "Feedback-Type: auth-failure" "Auth-Failure: dmarc" "Identity-Alignment: dkim,spf" \
    "Reported-Domain: rpt-a.test" "Source-IP: 203.0.113.66" "Original-Mail-From: <x@rpt-b.test>" \
    "Delivery-Result: reject" "Content-Type: text/rfc822-headers" "From: A <news@rpt-a.test>"; do
	like "$body" "$(printf '%s' "$want" | sed 's/[.()]/\\&/g; s/[<>]/[&]/g')" "failure report: $want"
done
unlike "$body" "This is a test mailing" "headers only: the message body is not in the report"
is "$(ls "$LAB/failures" | wc -l)" 0 "the spool is empty afterwards"
out=$("$REPORT" -c "$LAB/mx1.ini" --failures 2>/dev/null)
is "$out" "failure-reports 0 sent 0 rate-limited 0 unauthorised 0 deferred 0 failed 0 bad 0" \
    "a second --failures run sends nothing"

check_daemon_clean_exit
done_testing
