#!/bin/sh
# The statistics unit tests (test/test_stats), then the metrics they
# rendered through `promtool check metrics` (Debian package prometheus),
# the sample alerting rules through `promtool check rules`, and the
# Grafana dashboard through a JSON parser.  TAP.
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/.." && pwd)}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
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
n=$((n + 1))
if command -v promtool >/dev/null 2>&1; then
	if out=$(promtool check rules "$top_srcdir/etc/mailwarden-alerts.yml" 2>&1); then
		echo "ok $n - promtool check rules etc/mailwarden-alerts.yml"
	else
		echo "not ok $n - promtool check rules etc/mailwarden-alerts.yml"; echo "$out" | sed 's/^/# /'; rc=1
	fi
else
	echo "ok $n - promtool check rules # SKIP promtool not installed"
fi
n=$((n + 1))
if out=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["panels"], "no panels"' \
    "$top_srcdir/etc/grafana-mailwarden.json" 2>&1); then
	echo "ok $n - etc/grafana-mailwarden.json is a dashboard (JSON with panels)"
else
	echo "not ok $n - etc/grafana-mailwarden.json is a dashboard (JSON with panels)"; echo "$out" | sed 's/^/# /'; rc=1
fi
echo "1..$n"
exit $rc
