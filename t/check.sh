#!/bin/bash
# t/check.sh -- golden tests of mailwarden-check (tools/), both modes.
#
#	t/check.sh [NAME...]		run test/check/NAME.args (default: all)
#	MW_BLESS=1 t/check.sh [NAME...]	rewrite the .out files (review the diff:
#					the .out must be what an admin expects)
#
# A case is test/check/NAME.args: its first line that is not a comment is
# the command line (shell words; @CONFIG@ @TOP@ @LAB@ @NSD_PORT@
# @SMTP_PORT@ @REDIS_PORT@ are replaced), and test/check/NAME.out is the
# expected output, with the lab directory, the source directory and the
# ports written back as @LAB@, @TOP@, @SMTP_PORT@ ... so it is stable.
# @CONFIG@ is test/check/NAME.ini if there is one, else test/check/check.ini
# (their @VAR@s filled in).  Directives in .args comment lines:
#	#requires: postfix	start the lab's Postfix (root only) first
#	#requires: redis	start the lab's Redis first
#	#postfix: KEY=VALUE ...	postconf -e these into the lab Postfix first
#	#exit: N		the expected exit code, when the output has none
#	#stderr: yes		the output is stdout, then stderr
#	#normalize: SED-EXPR	apply to the output first (for times that
#				vary: "try again in 299 seconds")
#	#then: COMMAND		run COMMAND (t/lib.sh functions available)
#				after the tool; its output is part of the
#				golden output (e.g. what Redis holds now)
# Every case also checks that the exit code is the one the output
# prints ("(exit N)" or "exit": N), and that --json output parses.
#
# DNS: a real nsd on loopback serving t/zones/selfcheck-*.zone.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
top_srcdir=$(cd "$top_srcdir" && pwd)
top_builddir=$(cd "$top_builddir" && pwd)
. "$top_srcdir/t/lib.sh"

MWC=${MWC:-$top_builddir/tools/mailwarden-check}
[ -x "$MWC" ] || skip_all "mailwarden-check not built ($MWC)"
command -v nsd >/dev/null || skip_all "nsd not installed"

lab_init
# dmarc-tld: _dmarc.test, where the DMARC tree walk of every .test name ends
start_nsd "$top_srcdir"/t/zones/selfcheck-*.zone "$top_srcdir"/t/zones/dmarc-tld.zone

CASES=$top_srcdir/test/check
PF_STARTED=
REDIS_STARTED=

# ini files of the cases, filled in
for ini in "$CASES"/*.ini; do
	[ -f "$ini" ] || continue
	mw_config_write "$LAB/$(basename "$ini")" < "$ini"
done

# A self-signed certificate for the Postfix TLS case.
make_cert() {
	[ -f "$LAB/tls.crt" ] && return 0
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
	    -subj "/CN=mx.smtp.selfcheck.test" -keyout "$LAB/tls.key" \
	    -out "$LAB/tls.crt" >/dev/null 2>&1
	# ... and one for another name (the name-mismatch case), valid longer
	openssl req -x509 -newkey rsa:2048 -nodes -days 90 \
	    -subj "/CN=other.selfcheck.test" \
	    -addext "subjectAltName = DNS:other.selfcheck.test" \
	    -keyout "$LAB/tls-other.key" -out "$LAB/tls-other.crt" \
	    >/dev/null 2>&1
	chmod 0644 "$LAB/tls.crt" "$LAB/tls.key" "$LAB/tls-other.crt" \
	    "$LAB/tls-other.key"
}

need_postfix() {
	[ -n "$PF_STARTED" ] && return 0
	[ "$(id -u)" = 0 ] && command -v postfix >/dev/null || return 1
	POSTFIX_HOSTNAME=mx.smtp.selfcheck.test start_postfix ""
	postfix_set "virtual_mailbox_domains = maildir.test smtp.selfcheck.test"
	make_cert
	PF_STARTED=1
}

need_redis() {
	[ -n "$REDIS_STARTED" ] && return 0
	command -v redis-server >/dev/null || return 1
	start_redis
	REDIS_STARTED=1
}

# stdin -> stdout with the variable parts written as @NAME@
normalize() {
	local s=$(cat; printf x)
	s=${s%x}
	s=${s//"$LAB"/@LAB@}
	s=${s//"$top_srcdir"/@TOP@}
	[ -n "${SMTP_PORT:-}" ] && s=${s//":$SMTP_PORT"/":@SMTP_PORT@"}
	[ -n "${NSD_PORT:-}" ] && s=${s//":$NSD_PORT"/":@NSD_PORT@"}
	printf '%s' "$s"
}

if [ $# -gt 0 ]; then
	set -- $(for n in "$@"; do echo "$CASES/$n.args"; done)
else
	set -- "$CASES"/*.args
fi
for args in "$@"; do
	name=$(basename "$args" .args)
	out=$CASES/$name.out
	got=$LAB/$name.got
	line= skip= want_exit= with_stderr=
	pf_settings=() then_cmds=() sed_exprs=(-e '')
	while IFS= read -r l || [ -n "$l" ]; do
		case $l in
		"#requires: postfix") need_postfix || skip="no postfix (needs root)" ;;
		"#requires: redis") need_redis || skip="no redis-server" ;;
		"#postfix: "*) pf_settings+=("${l#\#postfix: }") ;;
		"#exit: "*) want_exit=${l#\#exit: } ;;
		"#stderr: yes") with_stderr=1 ;;
		"#then: "*) then_cmds+=("${l#\#then: }") ;;
		"#normalize: "*) sed_exprs+=(-e "${l#\#normalize: }") ;;
		"#"*|"") ;;
		*) [ -z "$line" ] && line=$l ;;
		esac
	done < "$args"
	if [ -n "$skip" ]; then
		skip "$name" "$skip"
		continue
	fi
	if [ ${#pf_settings[@]} -gt 0 ]; then
		s=("${pf_settings[@]//@LAB@/$LAB}")
		postfix_set "${s[@]}"
	fi
	config=$LAB/check.ini
	[ -f "$CASES/$name.ini" ] && config=$LAB/$name.ini
	line=${line//@CONFIG@/$config}
	line=${line//@TOP@/$top_srcdir}
	line=${line//@LAB@/$LAB}
	line=${line//@NSD_PORT@/$NSD_PORT}
	line=${line//@SMTP_PORT@/$SMTP_PORT}
	line=${line//@REDIS_PORT@/$REDIS_PORT}
	eval "set -- $line"
	rc=0
	"$MWC" "$@" > "$got.raw" 2> "$got.err" || rc=$?
	if [ -n "$with_stderr" ]; then
		{ echo "--- stderr ---"; cat "$got.err"; } >> "$got.raw"
	fi
	for c in "${then_cmds[@]}"; do
		{ echo "--- then: $c"; eval "$c" 2>&1; } >> "$got.raw"
	done
	normalize < "$got.raw" | sed "${sed_exprs[@]}" > "$got"
	if [ "${MW_BLESS:-}" = 1 ]; then
		cp "$got" "$out"
		pass "$name # blessed"
	elif [ ! -f "$out" ]; then
		fail "$name: no $out (MW_BLESS=1 to create it)" "$(cat "$got")"
	elif diff -u "$out" "$got" > "$got.diff" 2>&1; then
		pass "$name"
	else
		fail "$name" "$(cat "$got.diff")" "stderr: $(cat "$got.err")"
	fi
	want=$want_exit
	[ -n "$want" ] || want=$(sed -n -e 's/.*(exit \([0-9]*\)).*/\1/p' \
	    -e 's/^  "exit": \([0-9]*\)$/\1/p' "$got" | tail -n 1)
	is "$rc" "${want:-0}" "$name: exit code is the one printed"
	case " $* " in
	*" --json "*)
		if python3 -m json.tool "$got.raw" > /dev/null 2>&1; then
			pass "$name: valid JSON"
		else
			fail "$name: valid JSON" \
			    "$(python3 -m json.tool "$got.raw" 2>&1 | tail -n 3)"
		fi ;;
	esac
	if grep -q "ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer" \
	    "$got.err" 2>/dev/null; then
		fail "$name: sanitizer report" "$(cat "$got.err")"
	fi
done
done_testing
