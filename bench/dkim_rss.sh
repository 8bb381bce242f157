#!/bin/bash
# dkim_rss.sh -- run bench/dkim_rss: sign and verify a 25 MB message and
# print the RSS growth (the issue's figure: under 1 MB for verifying).
#
#	bench/dkim_rss.sh [MEGABYTES]
#
# Starts nsd with t/zones/dkim-test.zone on loopback (t/lib.sh) and signs
# with test/dkim-keys/rsa2048.pem.  Exit status: that of bench/dkim_rss.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/t/lib.sh"
bin=${DKIM_RSS:-$BUILD/bench/dkim_rss}
[ -x "$bin" ] || { echo "dkim_rss.sh: $bin is not built" >&2; exit 2; }
lab_init >/dev/null
start_nsd "$top/t/zones/dkim-test.zone"
cp "$top/test/dkim-keys/rsa2048.pem" "$LAB/key.pem"
chmod 0600 "$LAB/key.pem"
cat > "$LAB/bench.ini" <<INI
[milter]
authserv_id = mx.test
trusted_networks = 127.0.0.0/8
[iprev]
enabled = no
[helo]
enabled = no
[spf]
enabled = no
[dmarc]
enabled = no
[dns]
nameservers = 127.0.0.1:$NSD_PORT
[dkim]
key = dkim.test rsa2048 $LAB/key.pem
INI
"$bin" "$LAB/bench.ini" "${1:-25}"
