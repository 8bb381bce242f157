#!/bin/bash
# bench/status_screenshot.sh -- the README's picture of the status page:
# the daemon in front of a private Postfix (as in t/stats.sh), a few
# minutes of mixed mail (clean, DNSBL-listed, no PTR, greylisted), then
# headless Chromium takes a screenshot of http://.../ .
#
#	bench/status_screenshot.sh [MINUTES=8] [OUT=doc/status-page.png]
#
# Root, built tree; needs chromium and the t/ harness' parts.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/../t/lib.sh"
MINUTES=${1:-8}
OUTPNG=${2:-$TOP/doc/status-page.png}
lab_init
STATS_PORT=$(lab_port)
mw_config_write "$LAB/mw.ini" <<EOF2
[milter]
socket = inet:@MILTER_PORT@@127.0.0.1
authserv_id = mx.example.org
user = nobody
[dns]
nameservers = 127.0.0.1:@NSD_PORT@
timeout_ms = 500
[dnsbl]
zone = bl.conn.test
[spf]
enabled = no
[dmarc]
enabled = no
[greylist]
enabled = yes
mode = all
server = 127.0.0.1:@REDIS_PORT@
[stats]
listen = 127.0.0.1:$STATS_PORT
history = 12
EOF2
start_nsd conn-fwd.zone conn-rev4.zone conn-rev6.zone example.test.zone \
    2.0.192.in-addr.arpa.zone
start_redis
start_daemon "$LAB/mw.ini"
start_postfix "inet:127.0.0.1:$MILTER_PORT"
end=$(( $(date +%s) + MINUTES * 60 ))
i=0
while [ "$(date +%s)" -lt "$end" ]; do
	i=$((i + 1))
	# clean mail to an exempt recipient, some of every other kind
	for _ in $(seq 1 $(( 3 + RANDOM % 6 ))); do
		send_mail --xclient-addr 192.0.2.10 --xclient-name mx.example.test \
		    --helo mx.example.test --to postmaster@maildir.test \
		    --header "Subject: report $i" >/dev/null
	done
	[ $((RANDOM % 3)) = 0 ] || send_mail --xclient-addr 198.18.1.66 \
	    --xclient-name c66.conn.test --helo c66.conn.test \
	    --from "offers$i@c66.conn.test" --to "sales@maildir.test" >/dev/null
	[ $((RANDOM % 2)) = 0 ] || send_mail --xclient-addr 192.0.2.20 \
	    --helo bulk.example.test --to rcpt@maildir.test >/dev/null
	send_mail --xclient-addr 192.0.2.10 --xclient-name mx.example.test \
	    --helo mx.example.test --from "news$i@sender.test" \
	    --to "user$i@maildir.test" >/dev/null
	sleep 15 & wait $!
done
lab_chromium --hide-scrollbars --window-size=1280,1700 \
    --screenshot="$OUTPNG" "http://127.0.0.1:$STATS_PORT/"
ls -l "$OUTPNG"
