#!/bin/sh
# Golden tests: run every test/scenarios/*.scn through mwscenario and
# compare the transcript with the .out file beside it.
# MW_BLESS=1 rewrites the .out files (review the diff before committing).
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
run=$top_builddir/test/mwscenario
n=0; failed=0
for scn in "$top_srcdir"/test/scenarios/*.scn; do
	n=$((n + 1))
	out=${scn%.scn}.out
	got=$(mktemp)
	if ! "$run" "$scn" >"$got" 2>"$got.err"; then
		echo "not ok $n - $(basename "$scn"): driver failed"
		sed 's/^/#   /' "$got.err"
		failed=$((failed + 1))
	elif [ "${MW_BLESS:-}" = 1 ]; then
		cp "$got" "$out"
		echo "ok $n - $(basename "$scn") # blessed"
	elif diff -u "$out" "$got" >"$got.diff" 2>&1; then
		echo "ok $n - $(basename "$scn")"
	else
		echo "not ok $n - $(basename "$scn")"
		sed 's/^/#   /' "$got.diff"
		failed=$((failed + 1))
	fi
	rm -f "$got" "$got.err" "$got.diff"
done
echo "1..$n"
[ "$failed" -eq 0 ]
