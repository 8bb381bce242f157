#!/bin/bash
# dkim_corpus.sh -- DKIM conformance and round trips, against real DNS.
#
#	test/dkim_corpus.sh		(after make: needs test/dkim_check)
#
# Serves the keys of the third-party test data (Mail::DKIM's corpus,
# dkimpy's cases, the RFC 8463 example; test/corpora/dkim, or
# $MW_TESTDATA/dkim) from nsd on loopback, with the corpus's "query timed
# out" and SERVFAIL names answered by t/dnsfault.py in front of it, and runs
# test/dkim_corpus.py: our results against Mail::DKIM's and dkimpy's
# (failing only on disagreements test/dkim-known-differences.txt does not
# explain), signing round trips with dkimpy (python3-dkim) both ways, the
# key checks of the configuration, and the verifier under threads.
# TAP output (t/lib.sh).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/t/lib.sh"
py=/usr/bin/python3
check=${DKIM_CHECK:-$BUILD/test/dkim_check}
export DKIM_CHECK=$check
data=${MW_TESTDATA:-$(cd "$(dirname "$0")" && pwd)/corpora}/dkim

[ -x "$check" ] || skip_all "test/dkim_check is not built"
[ -d "$data/mail-dkim" ] || skip_all "no DKIM test data in $data"
"$py" -c 'import dkim, dnslib, nacl' 2>/dev/null ||
	skip_all "python3-dkim, python3-dnslib or python3-nacl missing"

lab_init

# run_py ARGS: turn dkim_corpus.py's lines into TAP results.
run_py() {
	local st what why
	while IFS=$'\t' read -r st what why; do
		case $st in
		ok) pass "$what" ;;
		"not ok") fail "$what" "$why" ;;
		*) printf '%s\n' "$st" ;;
		esac
	done < <("$py" "$top/test/dkim_corpus.py" "$@" 2>&1)
}

# start_proxy FAULTS: t/dnsfault.py in front of nsd, failing the names of
# FAULTS ("name timeout|servfail": the corpus's names, which we cannot
# choose) and passing every other query on; port in PROXY_PORT.
start_proxy() {
	[ -n "${PROXY_PORT:-}" ] && lab_stop dnsproxy
	PROXY_PORT=$(lab_port)
	lab_spawn dnsproxy "$py" "$top/t/dnsfault.py" "$PROXY_PORT" \
	    --forward "$NSD_PORT" --rules "$1" --no-label-faults
	for _ in $(seq 1 100); do
		grep -q '^ready' "$LAB/dnsproxy.log" 2>/dev/null && return 0
		sleep 0.05
	done
	lab_die "t/dnsfault.py did not start" "$LAB/dnsproxy.log"
}

# --- phase 1: the corpora, the round trips
"$py" "$top/test/dkim_corpus.py" zones 1 "$LAB/zones1" ||
	lab_die "cannot write the zones"
start_nsd "$LAB"/zones1/*.zone "$top/t/zones/dkim-test.zone"
start_proxy "$LAB/zones1/faults"
run_py run 1 "$LAB" "$PROXY_PORT"

# --- the key checks of the configuration
conf() {	# conf NAME LINES...: an ini with a [dkim] section
	local f=$LAB/$1.ini; shift
	{
		# Only DKIM: the other checks would look up names of their own.
		printf '[milter]\nauthserv_id = mx.test\n'
		printf '[%s]\nenabled = no\n' iprev helo spf dmarc
		printf '[dns]\nnameservers = 127.0.0.1:%s\ntimeout_ms = 500\n' \
		    "$PROXY_PORT"
		printf '[dkim]\n'
		printf '%s\n' "$@"
	} > "$f"
	echo "$f"
}
keys=$top/test/dkim-keys
cp "$keys/rsa2048.pem" "$LAB/key.pem"

chmod 0644 "$LAB/key.pem"
c=$(conf world "key = dkim.test rsa2048 $LAB/key.pem")
out=$("$check" "$c" checkkeys 2>&1)
like "$out" "key file $LAB/key.pem is readable by everyone \(mode 0644\)" \
    "a world-readable key is refused"
c=$(conf worldok "key = dkim.test rsa2048 $LAB/key.pem" \
    "allow_world_readable_keys = yes")
out=$("$check" "$c" checkkeys 2>&1)
is "$out" "" "... unless allow_world_readable_keys = yes"
chmod 0640 "$LAB/key.pem"
c=$(conf mode640 "key = dkim.test rsa2048 $LAB/key.pem")
out=$("$check" "$c" checkkeys 2>&1)
is "$out" "" "a key of mode 0640 that matches DNS: no warning"

c=$(conf missing "verify = yes" "key = dkim.test rsa2048 $LAB/nonexistent.pem")
out=$("$check" "$c" checkkeys 2>&1)
like "$out" "missing.ini:16: \[dkim\] key: key file $LAB/nonexistent.pem: No such file or directory" \
    "a key file that does not exist: refused with file:line"
c=$(conf garbage "key = dkim.test rsa2048 $top/t/zones/dkim-test.zone")
out=$("$check" "$c" checkkeys 2>&1)
like "$out" "garbage.ini:15: \[dkim\] key: key file .*dkim-test.zone: not a private key" \
    "a key file that does not parse: refused with file:line"
c=$(conf weak "key = dkim.test weak512 $keys/weak512.pem" \
    "allow_world_readable_keys = yes")
out=$("$check" "$c" checkkeys 2>&1)
like "$out" "weak.ini:15: .*a 512-bit RSA key is too short to sign with" \
    "a 512-bit signing key is refused"
printf '# domain selector key\ndkim.test ed %s/ed25519.pem\nbad line\n' \
    "$keys" > "$LAB/keytable"
c=$(conf keytable "allow_world_readable_keys = yes" "keytable = $LAB/keytable")
out=$("$check" "$c" checkkeys 2>&1)
like "$out" "keytable.ini:16: \[dkim\] keytable: keytable $LAB/keytable:3: want \"domain selector /path/to/key\"" \
    "a bad keytable line: refused with both file:line"
cp "$keys/ed25519.pem" "$keys/rsa2048.pem" "$LAB/" && chmod 0600 "$LAB"/*.pem
printf 'dkim.test ed ed25519.pem\n*.dkim.test rsa2048 rsa2048.pem\n' \
    > "$LAB/keytable2"
c=$(conf keytable2 "keytable = $LAB/keytable2")
out=$("$check" "$c" checkkeys 2>&1)
is "$out" "" "a keytable with paths relative to it, keys matching DNS"

c=$(conf mismatch "allow_world_readable_keys = yes" \
    "key = dkim.test wrongkey $keys/rsa2048.pem" \
    "key = dkim.test nokey $keys/rsa2048.pem" \
    "key = dkim.test rsa2048 $keys/rsa2048.pem")
out=$("$check" "$c" checkkeys 2>&1)
like "$out" "warning: \[dkim\] key .*rsa2048.pem: the public key at wrongkey._domainkey.dkim.test does not match it" \
    "mailwarden -t warns about a key that does not match DNS"
like "$out" "warning: \[dkim\] key .*rsa2048.pem: the public key at nokey._domainkey.dkim.test is not usable \(dkim=permerror: no key for signature\)" \
    "... and about a key not in DNS"
unlike "$out" "rsa2048._domainkey" "... but not about a key that matches"

# --- one DKIM_LIB for all threads: same results as serially
c=$(conf threads "min_key_bits = 512" "allow_rsa_sha1 = yes")
out=$("$check" "$c" threads 4 3 "$data"/mail-dkim/corpus/*.txt \
    "$data"/rfc8463/signed.eml 2>&1)
like "$out" "^4 threads x 3 rounds x 80 messages: 0 differences" \
    "4 threads verifying the corpus at once get the serial results"

# --- phase 2: the one record that conflicts with phase 1
"$py" "$top/test/dkim_corpus.py" zones 2 "$LAB/zones2" ||
	lab_die "cannot write the zones"
reload_nsd "$LAB"/zones2/*.zone
start_proxy "$LAB/zones2/faults"
run_py run 2 "$LAB" "$PROXY_PORT"

done_testing
