#!/bin/bash
# mailwarden's main job in one go, from a fresh clone, as root:
#	sh scripts/demo.sh
# Installs the Debian packages, builds, starts the daemon with
# etc/mailwarden.ini (plus four lines: the demo's DNS server and socket,
# its name, user nobody) in front of a private Postfix on 127.0.0.1, sends
# three messages with swaks, and prints what happened: the delivered
# message's headers and the rejections.  Leaves nothing running.
# t/lib.sh needs bash, even when started as `sh scripts/demo.sh`.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -e
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
if [ ! -x milter/mailwarden ]; then
	autoreconf -fi >/dev/null 2>&1
	./configure -q
	make -j"$(nproc)" >/dev/null
fi
set +e
. t/lib.sh
lab_init >/dev/null 2>&1

# The sample config as shipped, with DNS and socket pointed into the lab.
{
	cat etc/mailwarden.ini
	printf '\n; --- demo overrides ---\n[milter]\nsocket = inet:%s@127.0.0.1\nuser = nobody\nauthserv_id = mx.demo.test\n[dns]\nnameservers = 127.0.0.1:%s\n' \
	    "$MILTER_PORT" "$NSD_PORT"
} > "$LAB/mailwarden.ini"

start_nsd example.test.zone 2.0.192.in-addr.arpa.zone sender.test.zone \
    100.51.198.in-addr.arpa.zone >/dev/null
start_daemon "$LAB/mailwarden.ini"
start_postfix "inet:127.0.0.1:$MILTER_PORT" >/dev/null
postconf -c "$PF_ETC" -e message_size_limit=40000000 && postfix_reload

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1. A clean message from mx.example.test [192.0.2.10] (forward-confirmed reverse DNS)"
r=$(send_mail --xclient-addr 192.0.2.10 --xclient-name mx.example.test \
    --helo mx.example.test --from sender@example.test --to rcpt@maildir.test \
    --header "Subject: hello from a well-run server")
echo "server said: $r"
wait_delivered 1 >/dev/null && {
	echo "delivered message, header section:"
	sed '/^\r\{0,1\}$/q' "$(last_delivered)" | sed 's/^/    /'
}

say "2. A client with no reverse DNS [192.0.2.20]"
r=$(send_mail --xclient-addr 192.0.2.20 --helo noptr.example.test \
    --from someone@example.test --to rcpt@maildir.test)
echo "server said: $r"

say "3. A message over the 25 MB size cap"
python3 -c 'import sys; sys.stdout.write("Subject: big\r\n\r\n" + ("x" * 998 + "\r\n") * 26300)' > "$LAB/big.eml"
r=$(send_mail --xclient-addr 192.0.2.10 --xclient-name mx.example.test \
    --helo mx.example.test --from sender@example.test --to rcpt@maildir.test \
    --data "@$LAB/big.eml")
echo "server said: $r"

say "mailwarden's log (one line per message)"
grep -v '^===' "$MW_LOG" | sed 's/^/    /'
stop_postfix; stop_daemon
lab_cleanup >/dev/null 2>&1
