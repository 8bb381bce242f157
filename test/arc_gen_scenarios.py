#!/usr/bin/python3
"""
arc_gen_scenarios.py -- write the ARC scenarios (test/scenarios/arc_*.scn):
a bank's message (dmarc-bank.test, p=reject) forwarded by a mailing list
(dmarc-lists.test) that re-sends it with its own envelope and DKIM
signature and seals it with ARC (dkimpy's arc_sign, Debian python3-dkim),
so DMARC fails and only the ARC chain can tell that the message was
genuine when the list received it.

    /usr/bin/python3 test/arc_gen_scenarios.py      (from the top dir)

Seals are made at a fixed time (t=1700000000): running this again writes
the same files.  Write the .out files with
`MW_BLESS=1 test/run_scenarios.sh arc_...` and read the diff.
Helpers and domains: test/dmarc_gen_scenarios.py.
"""

import os
import sys

import dkim

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dmarc_gen_scenarios as g  # noqa: E402


def seal(hdrs, body, sealer, ar, selector="rsa2048"):
    """hdrs with an ARC set by sealer on top; ar is what the sealer's
    Authentication-Results said (it becomes the ARC-Authentication-Results)."""
    msg = g.raw([("Authentication-Results", " %s; %s" % (sealer, ar))] + hdrs, g.BODY)
    a = dkim.ARC(msg)
    sets = a.sign(selector.encode(), sealer.encode(), g.RSA, sealer.encode(),
                  include_headers=a.default_sign_headers(), timestamp=1700000000)
    out = []
    for h in sets:
        name, value = h.decode().rstrip("\r\n").split(":", 1)
        out.append((name, value.replace("\r\n", "\n")))
    return out + hdrs


def forwarded(sealer, ar, body=None, comment=None):
    """The bank's message as the list sends it on: the list's signature,
    the list's envelope, the list's address."""
    hdrs = g.sign(g.headers("Bank <service@dmarc-bank.test>",
                            "[members] Your statement"), g.BODY, "dmarc-lists.test")
    hdrs = seal(hdrs, g.BODY, sealer, ar)
    return g.message(g.LIST_IP, "members-bounces@dmarc-lists.test", hdrs,
                     body=body or g.BODY, comment=comment)


def main():
    good = "dkim=pass header.d=dmarc-bank.test; dmarc=pass header.from=dmarc-bank.test"
    g.scenario("arc_trusted_sealer", """
A bank's message (p=reject) forwarded by a mailing list that re-sends it
with its own envelope and DKIM signature: dmarc=fail.  The list sealed it
with ARC, recording dmarc=pass on arrival.  [arc] trusted_sealers names
the list: the chain passes, the DMARC local-policy override applies, and
the message is accepted with dmarc=fail ... policy.dmarc=reject kept and
the reason in the comment.  The same message sealed by a sealer that is
not trusted (dkim.test) is refused; a body changed after sealing breaks
the chain (arc=fail) and is refused; a trusted sealer whose
ARC-Authentication-Results says dmarc=fail gets no override.""", [
        forwarded("dmarc-lists.test", good, comment="trusted sealer, dmarc=pass on arrival"),
        forwarded("dkim.test", good, comment="a sealer that is not trusted"),
        forwarded("dmarc-lists.test", good,
                  body=[b"Dear customer,", b"", b"your statement is NOT ready.", b""],
                  comment="the body changed after the seal: broken chain"),
        forwarded("dmarc-lists.test", "dkim=fail header.d=dmarc-bank.test; dmarc=fail "
                  "header.from=dmarc-bank.test", comment="trusted sealer, dmarc=fail on arrival"),
        forwarded("dmarc-lists.test", "spf=pass smtp.mailfrom=alerts@dmarc-bank.test",
                  comment="trusted sealer, aligned spf=pass on arrival"),
    ], "[arc]\nenabled = yes\ntrusted_sealers = dmarc-lists.test")

    g.scenario("arc_results", """
What Authentication-Results says about the chain (DMARC off, so every
message is delivered and its header shown): arc=pass with the sealers,
smtp.remote-ip and header.oldest-pass (RFC 8617 10.2); a body changed
after sealing, arc=fail and why; a tampered ARC-Authentication-Results,
arc=fail; no ARC header field, arc=none.""", [
        forwarded("dkim.test", good, comment="sealed by dkim.test"),
        forwarded("dmarc-lists.test", good,
                  body=[b"Dear customer,", b"", b"your statement is NOT ready.", b""],
                  comment="the body changed after the seal"),
        [l.replace("dkim=pass", "dkim=neutral")
         if l.startswith("header ARC-Authentication-Results") else l
         for l in forwarded("dmarc-lists.test", good,
                            comment="ARC-Authentication-Results changed after the seal")],
        g.message(g.LIST_IP, "members-bounces@dmarc-lists.test",
                  g.headers("Bank <service@dmarc-bank.test>"), comment="no ARC"),
    ], "[arc]\nenabled = yes\n[dmarc]\nenabled = no")


if __name__ == "__main__":
    main()
