#!/bin/sh
# The statistics unit tests (test/test_stats), then the metrics they
# rendered through `promtool check metrics` (Debian package prometheus).
# TAP.
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/.." && pwd)}
tmp=$(mktemp -d /tmp/mwstats.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
"$top_builddir/test/test_stats" "$tmp/metrics.txt" "$tmp/page.html" >"$tmp/tap"
rc=$?
n=$(sed -n 's/^1\.\.\([0-9]*\)$/\1/p' "$tmp/tap")
grep -v '^1\.\.' "$tmp/tap"
[ -n "$n" ] || { echo "not ok $((n + 1)) - test_stats ran to the end"; echo "1..1"; exit 1; }
n=$((n + 1))
if command -v promtool >/dev/null 2>&1; then
	if out=$(promtool check metrics <"$tmp/metrics.txt" 2>&1); then
		echo "ok $n - promtool check metrics"
	else
		echo "not ok $n - promtool check metrics"; echo "$out" | sed 's/^/# /'; rc=1
	fi
else
	echo "ok $n - promtool check metrics # SKIP promtool not installed (apt-get install prometheus)"
fi
echo "1..$n"
exit $rc
