#!/bin/bash
# dmarc_corpus.sh -- DMARC conformance against third-party test data, with
# real DNS.
#
#	test/dmarc_corpus.sh		(after make: needs test/dmarc_eval)
#
# For every evaluation of mailauth's DMARC cases and ValiMail
# authheaders' end-to-end cases (test/corpora/dmarc, or
# $MW_TESTDATA/dmarc), test/dmarc_corpus.py writes the case's DNS as zone
# files, nsd serves them on loopback (reloaded per case: the cases
# disagree about _dmarc.example.com), and test/dmarc_eval runs the case's
# message through the session library with the SPF/DKIM results the case
# says passed (authheaders' signed messages go through our DKIM check).
# A DNS timeout case gets a name server that never answers.  Results are
# compared with what the data asserts; a disagreement fails only if
# test/dmarc-known-differences.txt explains none of it.  Then: the
# aggregate-report history file under concurrent writers.  TAP output.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/t/lib.sh"
py=/usr/bin/python3
eval_bin=${DMARC_EVAL:-$BUILD/test/dmarc_eval}
data=${MW_TESTDATA:-$(cd "$(dirname "$0")" && pwd)/corpora}/dmarc

[ -x "$eval_bin" ] || skip_all "test/dmarc_eval is not built"
[ -f "$data/mailauth/dmarc-verify-cases.json" ] ||
	skip_all "no DMARC test data in $data"
[ -f /usr/share/publicsuffix/public_suffix_list.dat ] ||
	skip_all "no Public Suffix List (apt-get install publicsuffix)"

lab_init

# A name server that never answers: mailauth's ETIMEOUT case.
start_silent_dns
BH_PORT=$SILENT_DNS_PORT

out=$LAB/cases
"$py" "$top/test/dmarc_corpus.py" prepare "$out" "$NSD_PORT" "$BH_PORT" ||
	lab_die "cannot prepare the cases"
started=
while read -r c; do
	d=$out/$c
	if [ -z "$started" ]; then
		start_nsd "$d"/zones/*.zone
		started=1
	else
		reload_nsd "$d"/zones/*.zone
	fi
	mapfile -t args < "$d/args"
	"$eval_bin" "$d/mw.ini" "$d/message" ${args[@]+"${args[@]}"} \
	    >"$d/got" 2>"$d/err" || diag "$c: dmarc_eval failed: $(cat "$d/err")"
done < "$out/cases"

while IFS=$'\t' read -r st what why; do
	case $st in
	ok) pass "$what" ;;
	"not ok") fail "$what" "$why" ;;
	*) printf '%s\n' "$st" ;;
	esac
done < <("$py" "$top/test/dmarc_corpus.py" judge "$out" 2>&1)

# --- the history file: 40 processes append at once, no line is torn
hist=$LAB/history
mkdir -p "$hist"
# 40 sanitizer-built processes at once on a busy machine: give DNS time
# (a timeout would be a temperror, which writes no line) -- this test is
# about whole lines, not speed.
sed -e "s|^history_file = .*|history_file = $hist/history.jsonl|" \
    -e "s|^timeout_ms = .*|timeout_ms = 5000|" -e "s|^tries = .*|tries = 3|" \
    "$out/001/mw.ini" > "$hist/mw.ini"
reload_nsd "$out/001/zones"/*.zone
pids=()
for i in $(seq 1 40); do
	"$eval_bin" "$hist/mw.ini" "$out/001/message" dkim=pass:example.com \
	    >/dev/null 2>&1 &
	pids+=($!)
done
wait "${pids[@]}"
n=$("$py" -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    assert r["header_from"] == "example.com" and r["dmarc"] == "pass"
    n += 1
print(n)' "$hist/history.jsonl" 2>&1)
is "$n" 40 "40 concurrent writers: 40 whole JSON lines in history_file"

done_testing
