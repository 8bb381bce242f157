#!/bin/bash
# Integration: DKIM end to end through a private Postfix.
#  - a message from a trusted client leaves signed (DKIM-Signature on top,
#    d= the From domain);
#  - the same message re-injected from outside verifies: dkim=pass;
#  - one byte changed in the body: dkim=fail;
#  - the key lookup times out: dkim=temperror.
set -u
. "$(dirname "$0")/lib.sh"
lab_init

write_config() {	# write_config NAMESERVER_PORT
	mw_config_write "$LAB/mw.ini" <<EOF2
[milter]
socket = inet:@MILTER_PORT@@127.0.0.1
authserv_id = mx.test
user = nobody
trusted_networks = 10.0.0.0/8
[dns]
nameservers = 127.0.0.1:$1
timeout_ms = 300
tries = 1
[helo]
enabled = no
[dkim]
key = dkim.test rsa2048 @TOP@/test/dkim-keys/rsa2048.pem
allow_world_readable_keys = yes
EOF2
}
start_nsd example.test.zone 2.0.192.in-addr.arpa.zone dkim-test.zone
write_config "$NSD_PORT"
start_daemon "$LAB/mw.ini"
start_postfix "inet:127.0.0.1:$MILTER_PORT"

cat > "$LAB/msg.eml" <<'EOF2'
From: Alice <alice@dkim.test>
To: rcpt@maildir.test
Subject: Lunch on Friday?
Date: Tue, 14 Nov 2023 22:13:20 +0000
Message-ID: <lunch.1@dkim.test>

Hi Bob,

shall we meet at noon?

Alice
EOF2

# 1. Outbound: from a trusted client, signed.
r=$(send_mail --xclient-addr 10.1.2.3 --helo client.dkim.test \
    --from alice@dkim.test --data "@$LAB/msg.eml")
like "$r" "^250 2.0.0 Ok: queued" "trusted client's message accepted"
wait_delivered 1
signed=$LAB/signed.eml
cp "$(last_delivered)" "$signed"
hdr=$(sed '/^$/q' "$signed")
like "$hdr" $'\nDKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=dkim.test;\n\ts=rsa2048;' \
    "message leaves with a DKIM-Signature for the From domain"
like "$hdr" "h=From:[^;]*:From;" "From is oversigned (named twice in h=)"
unlike "$hdr" $'\nAuthentication-Results: mx.test' "outbound mail gets no A-R of ours"

# Re-inject what was delivered (minus the delivery headers) from outside.
reinject() {	# reinject FILE -> prints the delivered file
	clear_maildir
	sed -e '/^Return-Path:/d' -e '/^X-Original-To:/d' -e '/^Delivered-To:/d' \
	    "$1" > "$LAB/re.eml"
	r=$(send_mail --xclient-addr 192.0.2.10 --xclient-name mx.example.test \
	    --helo mx.example.test --from alice@dkim.test --data "@$LAB/re.eml")
	wait_delivered 1 && sed '/^$/q' "$(last_delivered)"
}

# 2. Inbound: the signed message verifies.  header.b is quoted when its
# 8 characters hold a "/" (RFC 8601 value syntax), i.e. now and then.
hdr=$(reinject "$signed")
like "$hdr" "dkim=pass[[:space:]]+header.d=dkim.test[[:space:]]+header.i=@dkim.test[[:space:]]+header.s=rsa2048[[:space:]]+header.a=rsa-sha256[[:space:]]+header.b=(\"[A-Za-z0-9+/]{8}\"|[A-Za-z0-9+]{8})[[:space:]]+\(2048-bit key\)" \
    "re-injected from outside: dkim=pass"

# 3. One byte of the body changed: fail.
sed 's/shall we meet at noon?/shall we meet at noon!/' "$signed" > "$LAB/changed.eml"
hdr=$(reinject "$LAB/changed.eml")
like "$hdr" "dkim=fail[^;]*header.d=dkim.test" "one byte changed: dkim=fail"

# 4. The key lookup times out: temperror.  The resolver is pointed at
# t/dnsfault.py, which never answers names starting with "timeout.";
# the message is signed with selector "timeout".
lab_spawn dnsfault /usr/bin/python3 "$T_DIR/dnsfault.py" "$DNSFAULT_PORT"
sleep 0.5
/usr/bin/python3 - "$TOP/test/dkim-keys/rsa2048.pem" "$LAB/msg.eml" > "$LAB/to.eml" <<'EOF2'
import sys, dkim
key = open(sys.argv[1], "rb").read()
msg = open(sys.argv[2], "rb").read().replace(b"\n", b"\r\n")
sig = dkim.sign(msg, b"timeout", b"dkim.test", key,
                include_headers=[b"from", b"to", b"subject", b"date"])
sys.stdout.buffer.write((sig + msg).replace(b"\r\n", b"\n"))
EOF2
stop_daemon
write_config "$DNSFAULT_PORT"
printf '[iprev]\nenabled = no\n[spf]\nenabled = no\n[dmarc]\nenabled = no\n' >> "$LAB/mw.ini"
start_daemon "$LAB/mw.ini"
hdr=$(reinject "$LAB/to.eml")
like "$hdr" "dkim=temperror[^;]*header.d=dkim.test" "key lookup timeout: dkim=temperror"
like "$r" "^250 " "temperror is annotated, not refused (DMARC decides)"

check_daemon_clean_exit
done_testing
