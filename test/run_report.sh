#!/bin/bash
# Golden tests of mailwarden-report's aggregation (history in, RFC 9990
# XML out): test/report/history.jsonl -> test/report/expected/*.xml,
# every report valid against the RFC 9990 schema (test/report/
# dmarc-2.0.xsd, xmllint); corrupt lines skipped and counted; larger ri=
# honoured; --end closing a period early; the state and queue: a second
# run reports nothing again.
#
#	test/run_report.sh		(TAP; from make check)
#	MW_BLESS=1 test/run_report.sh	rewrite test/report/expected
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
rep=$top_builddir/tools/mailwarden-report
dir=$top_srcdir/test/report
xsd=$dir/dmarc-2.0.xsd
n=0 failed=0
tmp=$(mktemp -d /tmp/mwreport.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift
	printf '# %s\n' "$@"; }
check() { local d=$1; shift; if "$@"; then ok "$d"; else notok "$d" "failed: $*"; fi; }

if [ ! -x "$rep" ]; then echo "1..0 # SKIP $rep not built"; exit 77; fi
if ! command -v xmllint >/dev/null; then
	echo "1..0 # SKIP xmllint missing (apt-get install libxml2-utils)"; exit 77
fi
version=$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"/\1/p' "$top_builddir/config.h")

# The schema check bites: a report with a disposition RFC 9990 does not
# have is refused.
sed 's/<disposition>reject</<disposition>tempfail</' \
    "$dir/expected/receiver.test!example.com!1796428800!1796515200.xml" > "$tmp/bad.xml"
check "xmllint refuses an invalid report (the check can fail)" \
    eval '! xmllint --noout --schema "$xsd" "$tmp/bad.xml" 2>/dev/null'

# 1. The whole history, --out: one report per policy domain and period.
mkdir "$tmp/out"
out=$("$rep" -c "$dir/mw.ini" --history "$dir/history.jsonl" --out "$tmp/out" 2>"$tmp/err")
rc=$?
check "runs (exit 0) with corrupt lines in the history" [ "$rc" = 0 ]
check "6 corrupt lines skipped and counted, 13 records" \
    eval '[[ $out == *"lines 19 records 13 skipped 6 "* ]]'
check "the skipped lines are logged" grep -q "6 history lines were not valid records: skipped" "$tmp/err"
got=$(cd "$tmp/out" && ls)
want=$(cd "$dir/expected" && ls | sed 's/$/.gz/')
check "file names receiver!policy-domain!begin!end.xml.gz (RFC 9990 3.1.3)" [ "$got" = "$want" ]
for f in "$tmp/out"/*.xml.gz; do
	b=$(basename "$f" .gz)
	check "$b: gzip (RFC 1952)" gzip -t "$f"
	zcat "$f" > "$tmp/$b"
	check "$b: valid against the RFC 9990 schema" \
	    eval 'xmllint --noout --schema "$xsd" "$tmp/$b" 2>/dev/null'
	sed "s/<generator>mailwarden-report $version</<generator>mailwarden-report @VERSION@</" \
	    "$tmp/$b" > "$tmp/$b.norm"
	if [ -n "${MW_BLESS:-}" ]; then cp "$tmp/$b.norm" "$dir/expected/$b"; fi
	if diff -u "$dir/expected/$b" "$tmp/$b.norm" > "$tmp/diff"; then
		ok "$b: as expected"
	else
		notok "$b: as expected" "$(cat "$tmp/diff")"
	fi
done
# The counts equal the messages in the history, per source IP.
check "counts: 3 passes from 192.0.2.10, 2 rejected forgeries from 203.0.113.66" \
    eval 'xmllint --xpath "string(//*[local-name()=\"record\"][*/*[local-name()=\"source_ip\"]=\"203.0.113.66\"]/*/*[local-name()=\"count\"])" "$tmp/receiver.test!example.com!1796428800!1796515200.xml" | grep -qx 2'
check "ri=172800: one report for two days (bank.test)" \
    test -e "$tmp/out/receiver.test!bank.test!1796428800!1796601600.xml.gz"

# 2. --end closes the current period early.
mkdir "$tmp/early"
out=$("$rep" -c "$dir/mw.ini" --history "$dir/history.jsonl" --out "$tmp/early" --end 1796472000 2>/dev/null)
check "--end: reports end at the given time" \
    test -e "$tmp/early/receiver.test!example.com!1796428800!1796472000.xml.gz"
check "--end: the 2 records after it are left for later" eval '[[ $out == *" later 2 "* ]]'

# 3. State and queue: a second run reports nothing twice.
cat > "$tmp/mw.ini" <<EOF2
[milter]
authserv_id = mx.receiver.test
[dmarc]
history_file = $dir/history.jsonl
report_from = dmarc-noreply@receiver.test
report_state_dir = $tmp/state
EOF2
out=$("$rep" -c "$tmp/mw.ini" --no-send --end 1796472000 2>/dev/null)
check "first run: 3 reports queued for their rua= addresses" \
    eval '[[ $out == *" reports 3 queued 3 "* ]]'
check "the queue holds them" [ "$(ls "$tmp/state/queue" | wc -l)" = 3 ]
out=$("$rep" -c "$tmp/mw.ini" --no-send --end 1796472000 2>/dev/null)
check "second run for the same period: nothing new" \
    eval '[[ $out == *" reports 0 queued 0 "* ]]'
out=$("$rep" -c "$tmp/mw.ini" --no-send 2>/dev/null)
check "the periods' rest later: only what was not reported (2 reports)" \
    eval '[[ $out == *" records 2 "*" later 0 reports 2 queued 2 "* ]]'
check "state: example.com reported up to the end of its second day" \
    grep -qx "example.com 1796601600" "$tmp/state/state"

# 4. Delivery that fails for now (nothing listens on 127.0.0.1:1, the DNS
#    server of the external confirmation does not answer): kept, tried
#    again, dropped after report_retry_for.
for r in 2d 0; do
	sed "/^\[dmarc\]/i [dns]\nnameservers = 127.0.0.1:1\ntimeout_ms = 100\ntries = 1" "$tmp/mw.ini" |
	    sed "\$a report_smtp = 127.0.0.1:1\nreport_retry_for = $r" > "$tmp/retry-$r.ini"
done
out=$("$rep" -c "$tmp/retry-2d.ini" --end 1796472000 2>/dev/null)
check "temporary failures: the 5 queued reports deferred, none lost" \
    eval '[[ $out == *" sent 0 deferred 5 failed 0 "* ]]'
check "... still queued" [ "$(ls "$tmp/state/queue" | wc -l)" = 5 ]
sleep 1
out=$("$rep" -c "$tmp/retry-0.ini" --end 1796472000 2>/dev/null)
check "after report_retry_for: dropped (expired 5)" eval '[[ $out == *" expired 5"* ]]'
check "... and the queue is empty" [ "$(ls "$tmp/state/queue" | wc -l)" = 0 ]

echo "1..$n"
[ "$failed" = 0 ]
