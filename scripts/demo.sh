#!/bin/bash
# mailwarden's whole story in one go, from a fresh clone, as root:
#	sh scripts/demo.sh
# Installs the Debian packages, builds, starts nsd (test zones), Redis and
# the daemon with etc/mailwarden.ini (values changed for the demo: its DNS
# server, socket, name, user nobody, two DKIM keys for demo.test, Redis;
# listed below) in front of a private Postfix on 127.0.0.1, then shows,
# with each SMTP reply and the delivered message's header:
#   1. a clean message from a server with forward-confirmed reverse DNS
#   2. a client without reverse DNS, refused at RCPT
#   3. a message over the 25 MB cap, refused
#   4. an outgoing message from a trusted client, signed (RSA + Ed25519)
#   5. the same message re-injected from outside: dkim=pass, dmarc=pass
#   6. a forged From of a p=reject domain, refused at end of data
#   7. greylisting (turned on with a reload): first attempt 451, the retry
#      after the (demo-short) delay accepted
# Leaves nothing running.  About 30 seconds once built.
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

# ini_set FILE SECTION KEY VALUE [add]: in [SECTION] of FILE, replace the
# first "KEY =" (or commented ";KEY =") line by "KEY = VALUE"; with "add",
# insert a new line after the section header instead (list keys).
ini_set() {
	python3 - "$@" <<'EOF'
import re, sys
path, sec, key, val = sys.argv[1:5]
add = len(sys.argv) > 5
lines = open(path).read().split("\n")
cur, head, done = None, None, False
for i, l in enumerate(lines):
    m = re.match(r"\s*\[([^]]+)\]", l)
    if m:
        cur = m.group(1).strip().lower()
        if cur == sec and head is None:
            head = i
        continue
    if not add and cur == sec and re.match(r"\s*;?\s*%s\s*=" % re.escape(key), l):
        lines[i] = "%s = %s" % (key, val)
        done = True
        break
if not done:
    lines.insert(head + 1, "%s = %s" % (key, val))
open(path, "w").write("\n".join(lines))
EOF
}

# The keys, readable by the daemon's user only (it re-reads them on reload).
mkdir -p "$LAB/keys"
install -o nobody -m 0600 test/dkim-keys/rsa2048.pem "$LAB/keys/demo.test.rsa.pem"
install -o nobody -m 0600 test/dkim-keys/ed25519.pem "$LAB/keys/demo.test.ed25519.pem"

start_nsd example.test.zone 2.0.192.in-addr.arpa.zone sender.test.zone \
    100.51.198.in-addr.arpa.zone demo.test.zone \
    dmarc-tld.zone >/dev/null	# _dmarc.test: where the DMARC tree walk ends
start_redis >/dev/null

# The sample config as shipped, with these values changed:
ini=$LAB/mailwarden.ini
cp etc/mailwarden.ini "$ini"
set_demo() { ini_set "$ini" "$@"; printf '    [%s] %s = %s\n' "$1" "$2" "$3" >> "$LAB/changes"; }
set_demo milter socket "inet:$MILTER_PORT@127.0.0.1"
set_demo milter user nobody
set_demo milter authserv_id mx.demo.test
set_demo dns nameservers "127.0.0.1:$NSD_PORT"
set_demo dkim key "demo.test ed $LAB/keys/demo.test.ed25519.pem" add
set_demo dkim key "demo.test rsa $LAB/keys/demo.test.rsa.pem" add
set_demo greylist server "127.0.0.1:$REDIS_PORT"
set_demo greylist delay 3s
start_daemon "$ini"
start_postfix "inet:127.0.0.1:$MILTER_PORT" >/dev/null
postconf -c "$PF_ETC" -e message_size_limit=40000000 && postfix_reload

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
reply() { printf 'server said: %s   (at %s)\n' "$1" "${2:-end of data}"; }
show_header() {	# show_header [FILE]: the header section of the last delivery
	local f=${1:-}
	if [ -z "$f" ]; then
		wait_delivered 1 >/dev/null || { echo "(nothing delivered)"; return; }
		f=$(last_delivered)
	fi
	echo "delivered message, header section:"
	sed '/^\r\{0,1\}$/q' "$f" | sed 's/^/    /'
}
stage() {	# stage REPLY: the SMTP stage of the last transaction that gave REPLY
	local s
	for s in CONNECT HELO XCLIENT MAIL RCPT DATA EOM; do
		[ "$(smtp_reply_of "$(swaks_log)" "$s")" = "$1" ] && { echo "$s"; return; }
	done
	echo "?"
}

echo "mailwarden demo: etc/mailwarden.ini with"
cat "$LAB/changes"

say "1. A clean message from mx.example.test [192.0.2.10] (forward-confirmed reverse DNS)"
clear_maildir
r=$(send_mail --xclient-addr 192.0.2.10 --xclient-name mx.example.test \
    --helo mx.example.test --from sender@example.test --to rcpt@maildir.test \
    --header "Subject: hello from a well-run server")
reply "$r" "$(stage "$r")"
show_header

say "2. A client with no reverse DNS [192.0.2.20]"
r=$(send_mail --xclient-addr 192.0.2.20 --helo noptr.example.test \
    --from someone@example.test --to rcpt@maildir.test)
reply "$r" "$(stage "$r")"

say "3. A message over the 25 MB size cap"
python3 -c 'import sys; sys.stdout.write("Subject: big\r\n\r\n" + ("x" * 998 + "\r\n") * 26300)' > "$LAB/big.eml"
r=$(send_mail --xclient-addr 192.0.2.10 --xclient-name mx.example.test \
    --helo mx.example.test --from sender@example.test --to rcpt@maildir.test \
    --data "@$LAB/big.eml")
reply "$r" "$(stage "$r")"

say "4. Outgoing: alice@demo.test sends from a trusted client (127.0.0.1): signed, RSA and Ed25519"
cat > "$LAB/out.eml" <<'EOF'
From: Alice <alice@demo.test>
To: Bob <rcpt@maildir.test>
Subject: Quarterly figures
Date: Mon, 07 Dec 2026 10:00:00 +0000
Message-ID: <q4.figures@demo.test>

Bob, the figures are attached in spirit.
EOF
clear_maildir
r=$(send_mail --helo client.demo.test --from alice@demo.test --to rcpt@maildir.test \
    --data "@$LAB/out.eml")
reply "$r" "$(stage "$r")"
show_header
signed=$(last_delivered)

say "5. The same message arriving from outside, from demo.test's server mx.example.test [192.0.2.10]"
sed -e '/^Return-Path:/d' -e '/^X-Original-To:/d' -e '/^Delivered-To:/d' \
    "$signed" > "$LAB/in.eml"
clear_maildir
r=$(send_mail --xclient-addr 192.0.2.10 --xclient-name mx.example.test \
    --helo mx.example.test --from alice@demo.test --to rcpt@maildir.test \
    --data "@$LAB/in.eml")
reply "$r" "$(stage "$r")"
show_header

say "6. A forged From: ceo@demo.test (p=reject) sent from elsewhere, unsigned"
cat > "$LAB/forged.eml" <<'EOF'
From: "Demo Inc. CEO" <ceo@demo.test>
To: rcpt@maildir.test
Subject: Urgent wire transfer

Please pay the attached invoice today.
EOF
r=$(send_mail --xclient-addr 192.0.2.10 --xclient-name mx.example.test \
    --helo mx.example.test --from someone@example.test --to rcpt@maildir.test \
    --data "@$LAB/forged.eml")
reply "$r" "$(stage "$r")"

say "7. Greylisting: turned on ([greylist] enabled = yes, delay 3s) and reloaded with SIGHUP"
ini_set "$ini" greylist enabled yes
daemon_signal HUP
for ((i = 0; i < 50; i++)); do
	grep -q 'configuration reloaded' "$MW_LOG" && break
	sleep 0.1
done
grep 'configuration reloaded\|reload refused' "$MW_LOG" | tail -n 1 | sed 's/^/    /'
echo "A first attempt from 192.0.2.30, whose reverse DNS does not confirm (a doubtful client):"
clear_maildir
r=$(send_mail --xclient-addr 192.0.2.30 --xclient-name liar.example.test \
    --helo liar.example.test --from newsletter@example.test --to rcpt@maildir.test \
    --header "Subject: greylisted first")
reply "$r" "$(stage "$r")"
echo "... the sender retries 4 seconds later:"
sleep 4
r=$(send_mail --xclient-addr 192.0.2.30 --xclient-name liar.example.test \
    --helo liar.example.test --from newsletter@example.test --to rcpt@maildir.test \
    --header "Subject: greylisted first")
reply "$r" "$(stage "$r")"
show_header

say "mailwarden's log (one line per message)"
grep -v '^===' "$MW_LOG" | sed 's/^/    /'
stop_postfix; stop_daemon
lab_cleanup >/dev/null 2>&1
