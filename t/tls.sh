#!/bin/bash
# Integration: [tls] end to end through a private Postfix with a
# self-signed certificate.  A client that uses STARTTLS (swaks --tls) gets
# "x-tls=pass smtp.version=TLSv1.x smtp.cipher=... smtp.bits=N" in the
# delivered Authentication-Results, a plaintext one "x-tls=none": the
# milter asked Postfix for the TLS macros itself (smfi_setsymlist), so this
# holds even with milter_helo_macros emptied.  require_domains: a sender of
# bank.test in plaintext is refused (550 5.7.10), over TLS delivered.
set -u
. "$(dirname "$0")/lib.sh"
lab_init

mw_config_lab "$LAB/mw.ini" <<'EOF2'
[iprev]
enabled = no
[helo]
enabled = no
[spf]
enabled = no
[dkim]
verify = no
[dmarc]
enabled = no
[tls]
enabled = yes
require_domains = bank.test
EOF2
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mx.mailwarden.test" \
    -keyout "$LAB/tls.key" -out "$LAB/tls.crt" >/dev/null 2>&1 ||
    lab_die "openssl req failed"
chmod 0644 "$LAB/tls.crt" "$LAB/tls.key"
start_nsd example.test.zone
start_daemon "$LAB/mw.ini"
# milter_helo_macros emptied: the TLS macros must come from our request.
start_postfix "inet:127.0.0.1:$MILTER_PORT" "smtpd_tls_security_level=may" \
    "smtpd_tls_cert_file=$LAB/tls.crt" "smtpd_tls_key_file=$LAB/tls.key" \
    "milter_helo_macros="

# A client outside trusted_networks (mail from loopback is ours).
client=(--xclient-addr 192.0.2.10 --xclient-name mx.example.test
    --helo mx.example.test)

# The header of the newest delivered message, folded lines joined.
delivered_header() {
	sed '/^$/q' "$(last_delivered)" | sed -e ':a' -e 'N' -e '$!ba' \
	    -e 's/\n[ 	][ 	]*/ /g'
}

# 1. STARTTLS: x-tls=pass with version, cipher and bits.
r=$(send_mail "${client[@]}" --tls --from alice@sender.test --header "From: <alice@sender.test>")
like "$r" "^250 " "TLS client delivered"
grep -q "TLS started" "$(swaks_log)" || fail "swaks did not start TLS" "$(cat "$(swaks_log)")"
wait_delivered 1
hdr=$(delivered_header)
like "$hdr" "x-tls=pass smtp\.version=TLSv1\.[23] smtp\.cipher=[A-Z0-9_-]+ smtp\.bits=[0-9]+" \
    "A-R: x-tls=pass smtp.version= smtp.cipher= smtp.bits="
# The protocol swaks reports is the one in the header.
proto=$(sed -n 's/.*TLS started with cipher \(TLSv1\.[0-9]\):.*/\1/p' "$(swaks_log)" | head -n 1)
[ -n "$proto" ] || fail "no protocol in the swaks transcript" "$(cat "$(swaks_log 1)")"
like "$hdr" "smtp\.version=$proto " "... the version swaks negotiated ($proto)"

# 2. Plaintext: x-tls=none.
clear_maildir
r=$(send_mail "${client[@]}" --from alice@sender.test --header "From: <alice@sender.test>")
like "$r" "^250 " "plaintext client delivered"
wait_delivered 1
like "$(delivered_header)" "x-tls=none" "A-R: x-tls=none"
unlike "$(delivered_header)" "x-tls=pass" "... and no x-tls=pass"

# 3. require_domains: bank.test in plaintext refused at RCPT, over TLS delivered.
r=$(send_mail "${client[@]}" --from alice@bank.test --to rcpt@maildir.test)
is "$r" "550 5.7.10 Mail from bank.test must be sent over TLS (STARTTLS)" \
    "plaintext sender of a require_domains domain refused"
clear_maildir
r=$(send_mail "${client[@]}" --tls --from alice@bank.test --header "From: <alice@bank.test>")
like "$r" "^250 " "... delivered over TLS"

check_daemon_clean_exit
done_testing
