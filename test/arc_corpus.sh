#!/bin/bash
# arc_corpus.sh -- ARC verification (lib/mw_arc.c) against ValiMail's ARC
# validation suite and dkimpy's arc_sign, with keys served by nsd.
#
#	test/arc_corpus.sh		(after make: needs test/dkim_check)
#
# Serves the suite's keys (test/corpora/arc, or $MW_TESTDATA/arc) and
# t/zones/dkim-test.zone from nsd on loopback and runs
# test/arc_corpus.py: every validation case's cv against the suite's
# (failing only on differences test/arc-known-differences.txt explains),
# and messages sealed by dkimpy (python3-dkim), intact and tampered.
# TAP output (t/lib.sh).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/t/lib.sh"
py=/usr/bin/python3
check=${DKIM_CHECK:-$BUILD/test/dkim_check}
export DKIM_CHECK=$check
data=${MW_TESTDATA:-$top/test/corpora}/arc

[ -x "$check" ] || skip_all "test/dkim_check is not built"
[ -f "$data/arc-draft-validation-tests.yml" ] || skip_all "no ARC test data in $data"
"$py" -c 'import dkim, yaml' 2>/dev/null ||
	skip_all "python3-dkim or python3-yaml missing"

lab_init
"$py" "$top/test/arc_corpus.py" zones "$LAB/zones" ||
	lab_die "cannot write the zones"
start_nsd "$LAB"/zones/*.zone "$top/t/zones/dkim-test.zone"

while IFS=$'\t' read -r st what why; do
	case $st in
	ok) pass "$what" ;;
	"not ok") fail "$what" "$why" ;;
	*) printf '%s\n' "$st" ;;
	esac
done < <("$py" "$top/test/arc_corpus.py" run "$LAB" "$NSD_PORT" 2>&1)

done_testing
