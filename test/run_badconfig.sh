#!/bin/bash
# Bad configuration files: every test/badconfig/*.ini must be refused by
# `mailwarden -t` (exit 78, EX_CONFIG) with the message its first line
# names ("; expect: ERE", matched against "file:line: ..." on stderr), and
# promptly: none may hang.  Then the files -c must refuse whatever is in
# them (a directory, /proc/self/mem, /dev/zero, a FIFO) and a 100,000-line
# trusted_networks list, which must load.
#
#	test/run_badconfig.sh		(TAP; from make check)
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
mw=$top_builddir/milter/mailwarden
n=0 failed=0
tmp=$(mktemp -d /tmp/mwbadcfg.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift
	printf '# %s\n' "$@"; }

if [ ! -x "$mw" ]; then
	echo "1..0 # SKIP $mw not built"
	exit 77
fi

# refused NAME EXPECTED-ERE -c-ARG: mailwarden -t must exit 78, quickly,
# with EXPECTED on stderr
refused() {
	local name=$1 want=$2 arg=$3 out rc=0
	out=$(timeout 20 "$mw" -t -c "$arg" 2>&1 >/dev/null) || rc=$?
	if [ "$rc" = 124 ]; then
		notok "$name: refused promptly" "mailwarden -t -c $arg hung (killed after 20 s)"
	elif [ "$rc" != 78 ]; then
		notok "$name: refused (exit 78)" "exit $rc: $out"
	elif ! [[ $out =~ $want ]]; then
		notok "$name: refused with the right message" "got:      $out" "expected: $want"
	else
		ok "$name: $out"
	fi
}

for f in "$top_srcdir"/test/badconfig/*.ini; do
	want=$(sed -n '1s/^; expect: //p' "$f")
	if [ -z "$want" ]; then
		notok "$(basename "$f"): has an '; expect:' first line"
		continue
	fi
	refused "$(basename "$f" .ini)" "$want" "$f"
done

refused "-c a directory" "^mailwarden: $tmp: not a regular file \(a directory\)$" "$tmp"
refused "-c /dev/zero" "^mailwarden: /dev/zero: not a regular file \(a device\)$" /dev/zero
mkfifo "$tmp/fifo"
refused "-c a FIFO" "^mailwarden: $tmp/fifo: not a regular file \(a FIFO\)$" "$tmp/fifo"
refused "-c /proc/self/mem" "^mailwarden: /proc/[0-9a-z]+/mem: cannot read: Input/output error" /proc/self/mem
refused "-c a missing file" "^mailwarden: $tmp/none: cannot open: No such file" "$tmp/none"

# A 100,000-line trusted_networks list loads, in bounded time (no timed
# assertion: `timeout` only stops a hang).
{
	printf '[milter]\nuser = nobody\nsocket = inet:8891@127.0.0.1\n'
	for a in $(seq 0 99); do for b in $(seq 0 999); do
		echo "trusted_networks = 10.$a.$((b / 250)).$((b % 250))/32"
	done; done
} > "$tmp/big.ini"
start=$(date +%s%N)
if out=$(timeout 120 "$mw" -t -c "$tmp/big.ini" 2>&1); then
	ms=$(( ($(date +%s%N) - start) / 1000000 ))
	ok "a 100,000-line trusted_networks list loads (${ms} ms)"
	if [[ $out == *"trusted_networks = 100000 networks"* ]]; then
		ok "... all 100,000 networks"
	else
		notok "... all 100,000 networks" "$(grep trusted_networks <<<"$out")"
	fi
else
	notok "a 100,000-line trusted_networks list loads" "$(tail -n 3 <<<"$out")"
fi

echo "1..$n"
[ "$failed" = 0 ]
