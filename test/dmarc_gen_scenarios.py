#!/usr/bin/python3
"""
dmarc_gen_scenarios.py -- write the DMARC scenarios (test/scenarios/
dmarc_*.scn): real SPF records (t/zones/dmarc-*.zone) and real DKIM
signatures made by dkimpy (Debian python3-dkim), so DMARC gets its input
from our own SPF and DKIM checks, exactly as in production.

    /usr/bin/python3 test/dmarc_gen_scenarios.py      (from the top dir)

Signatures are made at a fixed time (t=1700000000): running this again
writes the same files.  The .out files are not written here: run
`MW_BLESS=1 test/run_scenarios.sh dmarc_...` and read the diff.

Domains (all under .test, see the zone files):
  dmarc-bank.test   p=reject; SPF 198.51.100.0/28
  dmarc-shop.test   p=quarantine sp=none; SPF 198.51.100.16/28
  dmarc-lists.test  a mailing list, p=none; SPF 198.51.100.32/28
  dmarc-evil.test   the forger: SPF 203.0.113.0/24, a DKIM key, no DMARC
  dmarc-misc.test   odd records in subdomains
  dmarc-bis.test    RFC 9989: tree walk, psd=, np=, t=, invalid p=
  dmarc-twin.test   two DMARC records at the Organizational Domain
"""

import os
import time

import dkim

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(TOP, "test", "scenarios")
with open(os.path.join(TOP, "test", "dkim-keys", "rsa2048.pem"), "rb") as f:
    RSA = f.read()

time.time = lambda: 1700000000      # dkimpy takes t= from here

BODY = [b"Dear customer,", b"", b"your statement is ready.", b""]
EVIL_IP = "203.0.113.66"
BANK_IP = "198.51.100.7"
SHOP_IP = "198.51.100.20"
LIST_IP = "198.51.100.40"
BIS_IP = "198.51.100.50"

BASE = """[milter]
authserv_id = mx.test
[iprev]
enabled = no
[helo]
enabled = no
[spf]
check_helo = no
received_spf = no
[dns]
nameservers = 127.0.0.1:@NSD_PORT@
timeout_ms = 500
tries = 1
[dmarc]
psl_file = @TOP@/test/scenarios/dmarc_psl.dat"""


def raw(headers, body):
    out = b""
    for n, v in headers:
        out += n.encode() + b":" + v.encode().replace(b"\n", b"\r\n") + b"\r\n"
    return out + b"\r\n" + b"".join(line + b"\r\n" for line in body)


def sign(headers, body, domain, selector="rsa2048"):
    """headers with a dkimpy DKIM-Signature (d=domain) on top."""
    sig = dkim.sign(raw(headers, body), selector.encode(), domain.encode(),
                    RSA, canonicalize=(b"relaxed", b"relaxed"),
                    include_headers=[b"from", b"to", b"subject", b"date"])
    name, value = sig.decode().rstrip("\r\n").split(":", 1)
    return [(name, value.replace("\r\n", "\n"))] + headers


def esc(v):
    return (v.replace("\\", "\\\\").replace("\n", "\\n")
            .replace("\t", "\\t").replace("\0", "\\0"))


def headers(frm, subject="Your statement", extra=()):
    h = list(extra)
    if frm is not None:
        for f in (frm if isinstance(frm, list) else [frm]):
            h.append(("From", " " + f))
    h += [("To", " customer@example.net"), ("Subject", " " + subject),
          ("Date", " Tue, 14 Nov 2023 22:13:20 +0000")]
    return h


def message(client, mail_from, hdrs, body=BODY, rcpt="customer@example.net",
            comment=None):
    """The lines of one SMTP transaction."""
    lines = []
    if comment:
        lines += ["# " + l for l in comment.strip().split("\n")]
    lines += ["connect %s mail.example.org" % client,
              "helo mail.example.org",
              "mail <%s>" % mail_from]
    for r in (rcpt if isinstance(rcpt, list) else [rcpt]):
        lines.append("rcpt <%s>" % r)
    for n, v in hdrs:
        lines.append("header %s:%s" % (n, esc(v)))
    lines.append("eoh")
    lines += ["body " + esc(b.decode()) for b in body]
    lines.append("eom")
    return lines


def scenario(name, comment, messages, config=""):
    lines = ["# " + l if l else "#" for l in comment.strip().split("\n")]
    lines += ["config"] + BASE.split("\n")
    if config:
        lines += config.strip().split("\n")
    lines.append("end")
    for m in messages:
        lines += m
    with open(os.path.join(OUT, name + ".scn"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote test/scenarios/%s.scn" % name)


def forged_bank(frm="Dear Bank <service@dmarc-bank.test>", **kw):
    """From the bank, sent by the forger: SPF passes for the forger's
    own envelope domain (not aligned), no DKIM signature."""
    return message(EVIL_IP, "bounce@dmarc-evil.test", headers(frm), **kw)


def main():
    scenario("dmarc_reject_forged", """
p=reject honoured: a message From the bank (p=reject) sent by the
forger's server.  SPF passes -- for the forger's own envelope domain,
which is not aligned with the From domain -- and there is no DKIM
signature: dmarc=fail, rejected at end of data with the configured text.""",
             [forged_bank()],
             "reject_text = Forged mail from this domain is refused")

    h = sign(headers("News <news@mail.dmarc-bank.test>"), BODY,
             "dmarc-bank.test")
    scenario("dmarc_pass_dkim_relaxed", """
Aligned DKIM through a relaxed subdomain: From mail.dmarc-bank.test
(no record of its own: the org domain's p=reject applies), signed with
d=dmarc-bank.test, sent through the forger's network (SPF pass for an
unaligned envelope).  The DKIM pass aligns (adkim=r): dmarc=pass.""",
             [message(EVIL_IP, "bounce@dmarc-evil.test", h, BODY)])

    scenario("dmarc_pass_spf_aligned", """
Aligned SPF: From dmarc-bank.test, envelope mail.dmarc-bank.test from
the bank's own server (SPF pass); relaxed alignment: dmarc=pass.""",
             [message(BANK_IP, "bounce@mail.dmarc-bank.test",
                      headers("Bank <service@dmarc-bank.test>"))])

    scenario("dmarc_spf_unaligned_fail", """
SPF passes but for another domain, and no DKIM: dmarc=fail.  The From
domain publishes p=none: nothing is done, the result is only reported.""",
             [message(EVIL_IP, "bounce@dmarc-evil.test",
                      headers("Someone <someone@dmarc-misc.test>"))])

    shop = message(EVIL_IP, "bounce@dmarc-evil.test",
                   headers("Deals <deals@dmarc-shop.test>"))
    scenario("dmarc_quarantine_header", """
p=quarantine, quarantine_action = header (the default): the message is
delivered with X-Mailwarden-Quarantine for the mailbox filters.""",
             [shop])
    scenario("dmarc_quarantine_hold", """
p=quarantine, quarantine_action = hold: the milter asks the MTA to put
the message on hold (smfi_quarantine, Postfix's hold queue).""",
             [shop], "quarantine_action = hold")
    scenario("dmarc_quarantine_reject", """
p=quarantine, quarantine_action = reject: a site that refuses instead
of quarantining.""", [shop], "quarantine_action = reject")

    h = sign(headers(["Bank <service@dmarc-bank.test>",
                      "Evil <x@dmarc-evil.test>"]), BODY, "dmarc-evil.test")
    scenario("dmarc_two_from", """
Two From header fields (RFC 5322 allows one).  Which one a mail reader
shows is anyone's guess, so DMARC has no single author domain:
dmarc=permerror and bad_from_action (reject by default).  The
forger signed the message for his own domain, which does not help.""",
             [message(EVIL_IP, "bounce@dmarc-evil.test", h)])

    scenario("dmarc_no_from", """
No From header field at all: dmarc=permerror and bad_from_action
(reject by default), never "no policy".""",
             [message(EVIL_IP, "bounce@dmarc-evil.test", headers(None))])

    scenario("dmarc_postmaster", """
The forged bank message of dmarc_reject_forged, but to postmaster@
([policy] exempt_recipients): never refused, only annotated -- the
A-R says what would have happened (dis=none; exempt recipient).""",
             [forged_bank(rcpt="postmaster@example.net")])

    h = sign(headers("Bank Alerts <alerts@dmarc-bank.test>, "
                     "Bank News <news@dmarc-bank.test>"), BODY,
             "dmarc-bank.test")
    h2 = sign(headers("Evil <x@dmarc-evil.test>, "
                      "Bank <service@dmarc-bank.test>"), BODY,
              "dmarc-evil.test")
    scenario("dmarc_from_multi", """
One From field with several mailboxes (RFC 5322 allows it, with a
Sender).  Each distinct domain is evaluated and the strictest result
wins (RFC 7489 6.6.1).
1: two mailboxes of the bank, signed by the bank: dmarc=pass.
2: the forger and the bank, signed by the forger: the forger's domain
   has no policy, the bank's fails (p=reject): rejected.""",
             [message(BANK_IP, "bounce@dmarc-bank.test", h),
              message(EVIL_IP, "bounce@dmarc-evil.test", h2)])

    nasty = [
        ('"service@dmarc-bank.test" <x@dmarc-evil.test>',
         "an address-like display name is only a name: the author is "
         "dmarc-evil.test (no policy)"),
        ("service@dmarc-bank.test <x@dmarc-evil.test>",
         "an unquoted @ in the display name: permerror"),
        ("<x@dmarc-evil.test> service@dmarc-bank.test",
         "text after the angle-addr: permerror"),
        ("x@dmarc-evil.test (service@dmarc-bank.test)",
         "a comment is not an address: dmarc-evil.test"),
        ("(Bank (Security) <service@dmarc-bank.test>) service@dmarc-bank.test",
         "nested comments skipped: dmarc-bank.test"),
        ('"Bank <service@dmarc-bank.test>',
         "an unterminated quoted string: permerror"),
        ("<service@dmarc-bank.test",
         "an unterminated angle-addr: permerror"),
        ("service@[198.51.100.7]", "a domain literal: permerror"),
        ("service@dm\u00e4rc-bank.dmarc-evil.test", "a U-label domain (RFC "
         "6532) is looked up as its A-label (RFC 9989 5.3.1): "
         "xn--dmrc-bank-w2a.dmarc-evil.test,\n   not dmarc-bank.test; "
         "nothing is published there (dmarc=none)"),
        ("a@b@dmarc-bank.test", "two @: permerror"),
        ("@dmarc-bank.test", "no local part: permerror"),
        ("", "an empty From: permerror"),
        ("undisclosed-recipients:;", "an empty group: permerror"),
        ("Bank: service@dmarc-bank.test;",
         "a group (RFC 6854) with the bank in it: dmarc-bank.test"),
        (",,service@dmarc-bank.test,", "empty list elements (obs-mbox-list)"),
        ("<@relay.dmarc-evil.test:service@dmarc-bank.test>",
         "a source route (obs-route) is skipped: dmarc-bank.test"),
        ("SERVICE@DMARC-BANK.TEST.", "upper case and a final dot: "
         "dmarc-bank.test"),
        ("=?UTF-8?B?QmFuaw==?= <service@dmarc-bank.test>",
         "an encoded-word display name: dmarc-bank.test"),
        ("service@dmarc-bank.test\0@dmarc-evil.test",
         "a NUL byte ends the value (as in libmilter): dmarc-bank.test"),
        ("Bank <service@dmarc-bank.test>\n\tfolded <x@dmarc-evil.test>",
         "a folded second angle-addr: permerror"),
    ]
    msgs = []
    for frm, why in nasty:
        msgs.append(message(EVIL_IP, "bounce@dmarc-evil.test",
                            [("From", " " + frm)] + headers(None)[0:],
                            comment="From: " + esc(frm) + "\n-> " + why))
    scenario("dmarc_from_nasty", """
From header fields a naive parser gets wrong.  Each has a defined
result: the author domain a mail reader would show, or permerror; the
result never falls back to "no DMARC".  Here bad_from_action and
reject_action are accept, so every verdict shows in the A-R.""",
             msgs, "bad_from_action = accept\nreject_action = accept")

    scenario("dmarc_from_unparsable", """
An unparsable From (an @ in the display name) with the default
bad_from_action: rejected, whatever the domains say.""",
             [message(EVIL_IP, "bounce@dmarc-evil.test",
                      headers("service@dmarc-bank.test <x@dmarc-evil.test>"))])

    h = sign(headers("Bank <service@dmarc-bank.test>",
                     subject="[members] Your statement"), BODY,
             "dmarc-lists.test")
    lst = message(LIST_IP, "members-bounces@dmarc-lists.test", h)
    scenario("dmarc_override", """
A mailing list re-sends a bank customer's message: its own envelope
(SPF pass for dmarc-lists.test) and its own DKIM signature, neither
aligned with the bank: dmarc=fail against p=reject.
override_domains lists the list host: accepted, and the A-R says why.
The second message comes without the list's identity (forged): still
rejected.""",
             [lst, forged_bank()],
             "override_domains = dmarc-lists.test")
    scenario("dmarc_mailing_list_reject", """
The mailing list message of dmarc_override without an override: the
bank's p=reject is honoured, the list's resend is rejected.""", [lst])

    scenario("dmarc_pct0", """
p=reject; pct=0 (half.dmarc-misc.test): RFC 9989 removed pct= (its
appendix A.6; t=y replaces it), so the tag is ignored and p=reject
applies.  honor_pct = yes is still accepted in the config, and ignored.""",
             [message(EVIL_IP, "bounce@dmarc-evil.test",
                      headers("x <x@half.dmarc-misc.test>"))],
             "honor_pct = yes")

    odd = [("two", "two DMARC records: both discarded, the org record "
            "applies"),
           ("bad", "p=bogus and no rua=: no DMARC (dmarc=none)"),
           ("norua", "no p= and no rua=: ignored, dmarc=none"),
           ("nop", "no p= but rua=: as p=none, dmarc=fail"),
           ("other", "only non-DMARC TXT records: the org record applies"),
           ("upper", "v=dmarc1 is not DMARC1: the org record applies"),
           ("nxsub", "no record at all: the org record applies (p=none)")]
    scenario("dmarc_records_odd", """
DMARC records that are not what they seem (t/zones/dmarc-misc.zone).""",
             [message(EVIL_IP, "bounce@dmarc-evil.test",
                      headers("x <x@%s.dmarc-misc.test>" % sub),
                      comment=why) for sub, why in odd])

    bad = [("Authentication-Results",
            " mx.test; spf=pass smtp.mailfrom=dmarc-bank.test;\n"
            "\tdkim=pass header.d=dmarc-bank.test; dmarc=pass "
            "header.from=dmarc-bank.test"),
           ("Authentication-Results",
            " upstream.example; dmarc=pass header.from=dmarc-bank.test"),
           ("Received-SPF", " pass (dmarc-bank.test: 203.0.113.66 is "
            "permitted) envelope-from=service@dmarc-bank.test")]
    scenario("dmarc_forged_authres", """
The forger adds Authentication-Results and Received-SPF fields claiming
SPF, DKIM and DMARC pass for the bank.  DMARC reads only our own SPF
and DKIM results (the OpenDMARC CVE-2019-20790 class): still rejected.""",
             [message(EVIL_IP, "bounce@dmarc-evil.test",
                      bad + headers("Bank <service@dmarc-bank.test>"))])

    h = sign(headers("Bank <service@dmarc-bank.test>"), BODY,
             "dmarc-bank.test", selector="wrongkey")
    h = sign(h, BODY, "mail.dmarc-bank.test")
    scenario("dmarc_dkim_fail_and_pass", """
Two signatures: d=dmarc-bank.test fails (the published key does not
match), d=mail.dmarc-bank.test passes and aligns (relaxed).  The failing
signature of the From domain itself must not hide the aligned pass:
dmarc=pass.""",
             [message(EVIL_IP, "bounce@dmarc-evil.test", h)])

    scenario("dmarc_temperror", """
The DNS server does not answer: dmarc=temperror, and with
temperror_action = tempfail the sender is asked to try again (451).
SPF is off here, so only DMARC decides.""",
             [forged_bank()], """temperror_action = tempfail
[spf]
enabled = no
[dkim]
verify = no
[dns]
nameservers = 127.0.0.2:@NSD_PORT@
timeout_ms = 300""")

    h = sign(headers("Bank <service@dmarc-fault.test>"), BODY,
             "dmarc-fault.test", selector="timeout")
    scenario("dmarc_dkim_temperror", """
The From domain signed the message, but its DKIM key cannot be fetched
(DNS timeout: t/dnsfault.py, t/zones/dmarc-fault.map), and SPF has
nothing to say.  DMARC would be fail -- but only because an aligned DKIM
result is a temporary error, so it is dmarc=temperror, and
temperror_action = tempfail asks for a retry instead of giving a final
550 for p=reject.""",
             [message(EVIL_IP, "bounce@dmarc-evil.test", h)],
             """temperror_action = tempfail
[dns]
nameservers = 127.0.0.1:@FAULT_PORT@
timeout_ms = 300""")

    def bis(frm, comment, mail_from="bounce@dmarc-evil.test", ip=EVIL_IP,
            hdrs=None):
        return message(ip, mail_from, hdrs or headers(frm), comment=comment)

    scenario("dmarc_bis_treewalk", """
RFC 9989 4.10 DNS Tree Walk (t/zones/dmarc-bis.zone), forged mail
(SPF passes only for the forger's own envelope domain).""", [
        bis("x <x@x.skip.l7.l6.l5.l4.l3.dmarc-bis.test>",
            "a 9-label Author Domain: _dmarc.x.skip..., then its last 7\n"
            "labels (l7.l6...): the record at skip.l7... (p=reject) is never\n"
            "asked; l3. says psd=n and p=quarantine, which applies (sp=)"),
        bis("x <x@shop.psd.dmarc-bis.test>",
            "psd=y at psd.dmarc-bis.test: shop.psd... is its own\n"
            "Organizational Domain and has no record, so the PSD's record\n"
            "applies: reject.  The SPF domain other.psd... is another\n"
            "organization under the PSD: not aligned",
            mail_from="bounce@other.psd.dmarc-bis.test", ip=BIS_IP),
        bis("x <x@shop.psd.dmarc-bis.test>",
            "the same From, SPF for mail.shop.psd...: the same\n"
            "Organizational Domain (shop.psd...), aligned: pass",
            mail_from="bounce@mail.shop.psd.dmarc-bis.test", ip=BIS_IP),
        bis("x <x@x.div.dmarc-bis.test>",
            "psd=n at div.dmarc-bis.test stops the walk: div... is the\n"
            "Organizational Domain, so SPF for dmarc-bis.test (its parent)\n"
            "is not aligned: p=reject of div... applies",
            mail_from="bounce@dmarc-bis.test", ip=BIS_IP),
        bis("x <x@sub.dmarc-twin.test>",
            "two DMARC records at the Organizational Domain dmarc-twin.test:\n"
            "both discarded, no policy anywhere: dmarc=none"),
    ])

    scenario("dmarc_bis_np", """
RFC 9989 np=: dmarc-bis.test says p=reject sp=none np=reject.  A
non-existent subdomain (NXDOMAIN) gets np=, an existing one sp=.""", [
        bis("x <x@ghost.dmarc-bis.test>",
            "ghost.dmarc-bis.test does not exist: np=reject, rejected"),
        bis("x <x@shop.dmarc-bis.test>",
            "shop.dmarc-bis.test exists (an A record): sp=none, accepted"),
    ])

    scenario("dmarc_bis_tags", """
RFC 9989 tags and records that are not what they seem
(t/zones/dmarc-bis.zone), forged mail.""", [
        bis("x <x@testing.dmarc-bis.test>",
            "p=reject; t=y: one level down, quarantine (a header)"),
        bis("x <x@badp.dmarc-bis.test>",
            "p=bogus and no rua=: no DMARC processing (dmarc=none)"),
        bis("x <x@badprua.dmarc-bis.test>",
            "p=bogus with a valid rua=: as p=none (dmarc=fail, policy none)"),
        bis("x <x@dup.dmarc-bis.test>",
            "p= twice: not a valid record (the RFC 6376 tag-list rule RFC\n"
            "9989 4.7 adopts), never \"the last p=\": discovery goes on as\n"
            "if there were none, and the Organizational Domain's sp=none\n"
            "applies (dup. exists: _dmarc.dup is below it)"),
        bis("x <x@nul.dmarc-bis.test>",
            "a NUL inside rua=: that tag is a syntax error and ignored;\n"
            "the record still says p=reject: rejected"),
    ], "permerror_action = accept")

    h = sign(headers("B\u00fccher <info@b\u00fccher.dmarc-bis.test>"),
             BODY, "xn--bcher-kva.dmarc-bis.test")
    scenario("dmarc_bis_idn", """
An internationalised From domain (RFC 6532 UTF-8 header): b\u00fccher.dmarc-bis.test
is looked up and aligned as its A-label xn--bcher-kva.dmarc-bis.test
(RFC 9989 5.3.1).  The first message is signed d=xn--bcher-kva...:
dmarc=pass.  The second is a forgery: p=reject, rejected.""", [
        message(EVIL_IP, "bounce@dmarc-evil.test", h),
        bis("B\u00fccher <info@b\u00fccher.dmarc-bis.test>", None),
    ])

    scenario("dmarc_discovery_psl", """
[dmarc] discovery = psl: the RFC 7489 way, the Organizational Domain
from the Public Suffix List (here test/scenarios/dmarc_psl.dat, where
dmarc-bis.test is an organization under "test").  The message of
dmarc_bis_treewalk that the tree walk rejects (psd=y: shop.psd... and
other.psd... are two organizations) passes here, both names being under
dmarc-bis.test; psd= is not used.""", [
        bis("x <x@shop.psd.dmarc-bis.test>", None,
            mail_from="bounce@other.psd.dmarc-bis.test", ip=BIS_IP),
    ], "discovery = psl")

    scenario("dmarc_dry_run", """
[milter] dry_run: the forged bank message is not rejected; the log and
X-Mailwarden-Dry-Run say it would have been, the A-R says "dry run".""",
             [forged_bank()], "[milter]\ndry_run = yes")


if __name__ == "__main__":
    main()
