#!/usr/bin/python3
"""
dkim_gen_scenarios.py -- write the DKIM verification scenarios
(test/scenarios/dkim_*.scn) from messages signed by dkimpy (Debian
python3-dkim), an implementation independent of libopendkim.

    /usr/bin/python3 test/dkim_gen_scenarios.py        (from the top dir)

The keys are test/dkim-keys/*.pem, published in t/zones/dkim-test.zone.
Signatures are made at a fixed time (t=1700000000), so running this again
writes the same files.  The .out files are not written here: run
`MW_BLESS=1 test/run_scenarios.sh dkim_...` and read the diff.
The signing scenarios (dkim_sign_*) are written by hand.
"""

import base64
import os
import subprocess
import sys
import time

import dkim

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = os.path.join(TOP, "test", "dkim-keys")
OUT = os.path.join(TOP, "test", "scenarios")

time.time = lambda: 1700000000      # dkimpy takes t= from here


def key(name):
    with open(os.path.join(KEYS, name), "rb") as f:
        return f.read()


def ed_seed():
    der = subprocess.run(["openssl", "pkey", "-in",
                          os.path.join(KEYS, "ed25519.pem"), "-outform",
                          "DER"], capture_output=True, check=True).stdout
    return base64.b64encode(der[-32:])


RSA = key("rsa2048.pem")
ED = ed_seed()

HEADERS = [
    ("From", " Alice <alice@dkim.test>"),
    ("To", " bob@example.net"),
    ("Subject", " Lunch on Friday?"),
    ("Date", " Tue, 14 Nov 2023 22:13:20 +0000"),
    ("Message-ID", " <20231114221320.1@dkim.test>"),
]
BODY = [b"Hi Bob,", b"", b"shall we meet at noon?", b"", b"Alice"]


def run(n):
    """A body line of n bytes "x" with no blank in it (bodyrun n)."""
    return b"\0run %d" % n


def body_bytes(line):
    if line.startswith(b"\0run "):
        return b"x" * int(line[5:])
    return line


def raw(headers, body):
    out = b""
    for n, v in headers:
        out += n.encode() + b":" + v.encode().replace(b"\n", b"\r\n") + b"\r\n"
    return out + b"\r\n" + b"".join(body_bytes(line) + b"\r\n"
                                    for line in body)


def sign(headers, body, selector=b"rsa2048", priv=RSA, alg=b"rsa-sha256",
         canon=(b"relaxed", b"relaxed"), domain=b"dkim.test", **kw):
    """The DKIM-Signature field dkimpy makes, as (name, value)."""
    sig = dkim.sign(raw(headers, body), selector, domain, priv,
                    signature_algorithm=alg, canonicalize=canon, **kw)
    name, value = sig.decode().rstrip("\r\n").split(":", 1)
    return (name, value.replace("\r\n", "\n"))


def esc(v):
    return (v.replace("\\", "\\\\").replace("\n", "\\n")
            .replace("\t", "\\t"))


def scenario(name, comment, config, headers, body, client="192.0.2.1",
             extra_config=""):
    lines = ["# " + l if l else "#" for l in comment.strip().split("\n")]
    lines += ["config", "[milter]", "authserv_id = mx.test",
              "[iprev]", "enabled = no", "[helo]", "enabled = no",
              "[spf]", "enabled = no", "[dmarc]", "enabled = no", "[dns]"]
    lines += config.strip().split("\n")
    if extra_config:
        lines += extra_config.strip().split("\n")
    lines += ["end",
              "connect %s mail.example.org" % client,
              "helo mail.example.org",
              "mail <alice@dkim.test>",
              "rcpt <bob@example.net>"]
    for n, v in headers:
        if n.startswith("repeat "):
            count, field = n.split(" ")[1:]
            lines.append("repeat %s header %s:%s" % (count, field, esc(v)))
            continue
        lines.append("header %s:%s" % (n, esc(v)))
    lines.append("eoh")
    for b in body:
        if b.startswith(b"\0run "):
            lines.append("bodyrun " + b[5:].decode())
        else:
            lines.append("body " + esc(b.decode()))
    lines.append("eom")
    with open(os.path.join(OUT, name + ".scn"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote test/scenarios/%s.scn" % name)


NSD = """nameservers = 127.0.0.1:@NSD_PORT@
timeout_ms = 500
tries = 1"""
FAULT = """nameservers = 127.0.0.1:@FAULT_PORT@
timeout_ms = 300
tries = 1"""


def main():
    h, b = HEADERS, BODY

    s = sign(h, b)
    scenario("dkim_pass", """
A message signed by dkimpy with a 2048-bit RSA key (relaxed/relaxed):
dkim=pass, with the signature's d=, i=, s=, a= and the start of b=.""",
             NSD, [s] + h, b)

    b2 = list(b)
    b2[2] = b"shall we meet at one?"
    scenario("dkim_body_changed", """
The signed message of dkim_pass with one word of the body changed in
transit: the body hash does not match, dkim=fail.""", NSD, [s] + h, b2)

    b3 = list(b)
    b3[4] = b"Alicf"
    scenario("dkim_body_one_byte", """
One byte of the signed body changed: dkim=fail (body hash mismatch).""",
             NSD, [s] + h, b3)

    h2 = [x if x[0] != "Subject" else ("Subject", " Lunch on Saturday?")
          for x in h]
    scenario("dkim_header_changed", """
The signed Subject changed in transit: the body still matches, the
signature does not: dkim=fail.""", NSD, [s] + h2, b)

    # Folded header fields and simple/simple: the MTA hands us folded
    # values with bare LF; DKIM hashes them with CRLF.
    hf = [("From", " Alice\n\t<alice@dkim.test>"),
          ("To", " bob@example.net,\n  carol@example.net")] + h[2:]
    sf = sign(hf, b, canon=(b"simple", b"simple"))
    scenario("dkim_simple_folded", """
simple/simple canonicalization over folded header fields: the MTA gives
us folded values with bare LF, DKIM hashes them with CRLF, and the
signature must still pass.""", NSD, [sf] + hf, b)

    se = sign(h, b, selector=b"ed", priv=ED, alg=b"ed25519-sha256")
    scenario("dkim_ed25519_dual", """
Dual-signed, Ed25519 (RFC 8463) and RSA: one resinfo per signature,
both pass.""", NSD, [se, s] + h, b)

    st = sign(h, b, selector=b"timeout")
    scenario("dkim_temperror", """
The key lookup times out (t/dnsfault.py never answers timeout.*):
dkim=temperror.  The default action only annotates.""", FAULT, [st] + h, b)
    scenario("dkim_temperror_tempfail", """
As dkim_temperror, with temperror_action = tempfail: 451 4.4.3 at the end
of data, so the sender tries again later.""", FAULT, [st] + h, b,
             extra_config="[dkim]\ntemperror_action = tempfail")
    ss = sign(h, b, selector=b"servfail")
    scenario("dkim_servfail", """
The key lookup gets SERVFAIL: dkim=temperror.""", FAULT, [ss] + h, b)

    sigs = [sign(h, b, selector=sel) for sel in
            (b"nokey", b"revoked", b"badsyntax", b"twokeys", b"wrongkey")]
    scenario("dkim_key_problems", """
Five signatures whose keys are unusable, each with its own result:
no key record (permerror), revoked key (permerror), a key record that
does not parse (permerror), two records at one name (permerror), and a
key that is not the one that signed (fail).""", NSD, sigs + h, b)

    s1 = sign(h, b, alg=b"rsa-sha1")
    s512 = sign(h, b, selector=b"weak512", priv=key("weak512.pem"))
    scenario("dkim_policy", """
Signatures that verify but that we do not accept (RFC 8301): rsa-sha1,
and a 512-bit key (min_key_bits is 1024): dkim=policy for both.""",
             NSD, [s1, s512] + h, b)
    scenario("dkim_policy_allowed", """
The signatures of dkim_policy with allow_rsa_sha1 = yes and
min_key_bits = 512: both pass.""", NSD, [s1, s512] + h, b,
             extra_config="[dkim]\nallow_rsa_sha1 = yes\nmin_key_bits = 512")

    good = s[1]
    bad = [
        ("DKIM-Signature", good.replace("d=dkim.test",
                                        "d=dkim.test(.evil.example")),
        ("DKIM-Signature", good.replace("a=rsa-sha256", "a=rsa-md5")),
        ("DKIM-Signature", good.replace("v=1;", "v=2;")),
        ("DKIM-Signature", good.replace("q=dns/txt", "q=http/well-known")),
        ("DKIM-Signature", good.replace(" bh=", " xh=")),
    ]
    scenario("dkim_neutral", """
Signatures that are themselves unusable get dkim=neutral: d= that is not
a domain name, an unknown algorithm, an unknown version, no dns/txt in
q=, and no body hash.""", NSD, bad + h, b)

    scenario("dkim_many_signatures", """
A hundred copies of a good signature: only max_signatures (5) are
verified, which is all a hundred may cost; the A-R says how many were
left.""", NSD, [s, ("repeat 95 DKIM-Signature", good)] + [s] * 4 + h, b)

    scenario("dkim_none", """
An unsigned message: dkim=none.""", NSD, h, b)

    scenario("dkim_fail_reject", """
fail_action = reject: a message whose only signature fails is refused at
the end of data with 550 5.7.20 (RFC 7372).""", NSD, [s] + h, b2,
             extra_config="[dkim]\nfail_action = reject")

    scenario("dkim_pass_and_fail", """
One signature passes, one fails: both are reported, and with
fail_action = reject the message is still accepted, since one signature
passed (the action is taken for the best result).""", NSD,
             [sign(h, b, selector=b"wrongkey"), s] + h, b,
             extra_config="[dkim]\nfail_action = reject")

    # A body line of 300 kB without a blank (base64 without line breaks).
    bl = b[:2] + [run(300 * 1024)] + b[2:]
    scenario("dkim_long_run", """
A body line of 300 kB without a blank, signed by dkimpy with its default
canonicalization relaxed/simple: the library streams a simple body
whatever the line length, so it verifies (dkim=pass, as dkimpy does).""",
             NSD, [sign(h, bl, canon=(b"relaxed", b"simple"))] + h, bl)
    scenario("dkim_long_run_relaxed", """
The same body signed relaxed/relaxed: libopendkim's relaxed body
canonicalization keeps a run without blanks in memory until its end, so
a run over 256 kB stops verification: dkim=neutral, saying why.""",
             NSD, [sign(h, bl, canon=(b"relaxed", b"relaxed"))] + h, bl)

    # l= (dkimpy length=True: the body length at signing), then a footer
    # added in transit, as a mailing list does.
    sl = sign(h, b, length=True)
    bf = b + [b"--", b"List footer: unsubscribe at https://lists.example/"]
    scenario("dkim_partial_body", """
A signature with l= that covers the body as signed; a mailing list then
added a footer.  The RFC allows it (partial_body = accept, the default):
dkim=pass, and the comment says how much of the body the signature
covers: "l=N of M body bytes".  The unchanged message: no such note.""",
             NSD, [sl] + h, bf)
    scenario("dkim_partial_body_full", """
A signature with l= equal to the whole body: a normal pass, no coverage
note.""", NSD, [sl] + h, b)
    scenario("dkim_partial_body_fail", """
As dkim_partial_body with partial_body = fail: a signature that leaves
part of the body unsigned does not count as covering the message:
dkim=policy, which DMARC does not take as a pass either.""",
             NSD, [sl] + h, bf, extra_config="[dkim]\npartial_body = fail")

    scenario("dkim_trusted_not_verified", """
A trusted client (trusted_networks) is not verified: its broken signature
gets no A-R, and with no signing key configured nothing is added.""",
             NSD, [s] + h, b2, client="10.1.2.3",
             extra_config="[milter]\ntrusted_networks = 10.0.0.0/8")


if __name__ == "__main__":
    sys.exit(main())
