#!/bin/bash
# Integration: the real daemon driven by miltertest (a third-party milter
# client, from OpenDKIM).  Every t/milter/NN_*.lua script is a case; see
# t/milter/common.lua.  Also: -t on good and broken configs, SIGHUP reload
# (good config taken, bad one refused and the old one kept), clean stop.
set -u
. "$(dirname "$0")/lib.sh"
lab_init

mw_config_lab "$LAB/mw.ini" <<'EOF2'
[milter]
trusted_networks = 10.0.0.0/8
log_level = debug
[size]
max_bytes = 100k
EOF2

# -t: a good file passes, a broken one names file:line.
out=$("$MW_DAEMON" -t -c "$LAB/mw.ini" 2>&1); st=$?
is "$st" 0 "mailwarden -t accepts the test config"
like "$out" "configuration OK" "mailwarden -t says OK"
printf '[milter]\nsocket = inet:1@127.0.0.1\n[size]\nmax_bytes = lots\n' > "$LAB/bad.ini"
out=$("$MW_DAEMON" -t -c "$LAB/bad.ini" 2>&1); st=$?
is "$st" 78 "mailwarden -t refuses a bad value (EX_CONFIG)"
is "$out" "mailwarden: $LAB/bad.ini:4: [size] max_bytes: \"lots\" is not a size (bytes, or with k/M/G; at most 1T)" \
    "error names file:line and the problem"
out=$("$MW_DAEMON" -f -c "$LAB/bad.ini" 2>&1); st=$?
is "$st" 78 "the daemon refuses to start with a bad config"

start_nsd example.test.zone 2.0.192.in-addr.arpa.zone sender.test.zone \
    dkim-test.zone
start_daemon "$LAB/mw.ini"
export MW_SOCKSPEC="inet:$MILTER_PORT@127.0.0.1" T_MILTER="$T_DIR/milter"

# For 04_dkim_simple.lua: a message signed with c=simple/simple, its
# Subject with two spaces after the colon and inside, To folded.
export DKIM_SIMPLE_MSG=$LAB/simple.eml
/usr/bin/python3 - "$TOP/test/dkim-keys/rsa2048.pem" > "$DKIM_SIMPLE_MSG" <<'EOF2' ||
import sys, dkim
key = open(sys.argv[1], "rb").read()
msg = (b"From: Alice <alice@dkim.test>\r\n"
       b"To: b@example.net,\r\n\tc@example.net\r\n"
       b"Subject:  Lunch  on Friday?\r\n"
       b"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
       b"\r\n"
       b"Hi Bob,\r\n\r\nshall we meet at noon?\r\n")
sig = dkim.sign(msg, b"rsa2048", b"dkim.test", key,
                canonicalize=(b"simple", b"simple"),
                include_headers=[b"from", b"to", b"subject", b"date"])
sys.stdout.buffer.write(sig + msg)
EOF2
    lab_die "dkimpy cannot sign the simple/simple message"

for script in "$T_DIR"/milter/[0-9]*.lua; do
	name=$(basename "$script" .lua)
	if run_miltertest "$script" && grep -q '^PASSED' "$(miltertest_log)"; then
		pass "miltertest $name"
	else
		fail "miltertest $name" "$(cat "$(miltertest_log)")"
	fi
done

# One header field of 90 kB (Postfix allows 102400, Sendmail more):
# above libmilter's default 64 kB packet limit, which drops the
# connection (the MTA then tempfails the message, again and again).
# The daemon takes packets up to 1 MB (smfi_setmaxdatasize).  miltertest
# cannot send such a field: t/rawmilter.py speaks the protocol like
# Sendmail 8.17 with MilterMaxDataSize=1M.
out=$(python3 "$T_DIR/rawmilter.py" --offer 1m 127.0.0.1 "$MILTER_PORT" 90000 2>&1)
like "$out" $'header X-Big continue\neoh continue' "a 90 kB header field is taken" || diag "$out"
like "$out" $'eom insheader Authentication-Results\n.*eom continue' \
    "... and the message gets our A-R at end of message" || diag "$out"
# An MTA that offers no larger size sends at most 64 kB: unchanged.
out=$(python3 "$T_DIR/rawmilter.py" --offer 64k 127.0.0.1 "$MILTER_PORT" 60000 2>&1)
like "$out" $'header X-Big continue\n.*eom continue' "an MTA without MDS: 60 kB field" || diag "$out"
ok "daemon alive after the big header fields" daemon_alive

# The daemon dropped root (it was started as root in CI).
if [ "$(id -u)" = 0 ]; then
	is "$(ps -o user= -p "$MW_DAEMON_PID" | tr -d ' ')" nobody \
	    "daemon runs as [milter] user after opening the socket"
fi

# One log line per message, Postfix style.
like "$(daemon_log)" "NOQUEUE: client=mx.example.test\[192.0.2.10\] helo=<mx.example.test> from=<a@sender.test> to=<b@example.net> size=[0-9]+ results=\[iprev=pass[^]]*\] score=[-0-9.]+ verdict=accept" \
    "per-message log line"
like "$(daemon_log)" "verdict=reject: 552 5.3.4 Message size exceeds fixed maximum message size of 102400 bytes \(SIZE parameter\)" \
    "size refusal logged"

# SIGHUP with a broken file: refused, old config kept, daemon alive.
cp "$LAB/mw.ini" "$LAB/mw.ini.good"
printf '[milter]\nbogus = 1\n' >> "$LAB/mw.ini"
daemon_signal HUP
sleep 0.5
ok "daemon survives a bad reload" daemon_alive
like "$(daemon_log)" "reload refused, keeping the running configuration: $LAB/mw.ini:[0-9]+: unknown key \"bogus\" in \[milter\]" \
    "bad reload logged with file:line"
if run_miltertest "$T_DIR/milter/02_size.lua" && grep -q '^PASSED' "$(miltertest_log)"; then
	pass "old config still in force after refused reload"
else
	fail "old config still in force after refused reload" "$(cat "$(miltertest_log)")"
fi

# SIGHUP with a good new file: taken (authserv_id changes).
sed 's/authserv_id = mx.test/authserv_id = mx2.test/' "$LAB/mw.ini.good" > "$LAB/mw.ini"
daemon_signal HUP
sleep 0.5
like "$(daemon_log)" "configuration reloaded from $LAB/mw.ini" "good reload logged"
cat > "$LAB/reload.lua" <<'EOF2'
dofile(os.getenv("T_MILTER") .. "/common.lua")
run(function()
	local conn = open_conn()
	mt.mailfrom(conn, "<a@sender.test>")
	mt.rcptto(conn, "<b@example.net>")
	mt.data(conn)
	mt.header(conn, "From", "<a@sender.test>")
	mt.header(conn, "Subject", "x")
	mt.eoh(conn)
	mt.bodystring(conn, "x\r\n")
	mt.eom(conn)
	local ar = mt.getheader(conn, "Authentication-Results", 0)
	expect(ar ~= nil and string.find(ar, "^ mx2.test;") ~= nil,
	    "A-R with the new authserv-id: " .. tostring(ar))
	mt.disconnect(conn)
end)
EOF2
if run_miltertest "$LAB/reload.lua" && grep -q '^PASSED' "$(miltertest_log)"; then
	pass "new config in force after reload"
else
	fail "new config in force after reload" "$(cat "$(miltertest_log)")"
fi

check_daemon_clean_exit
done_testing
