#!/usr/bin/python3
"""
arc_corpus.py -- the work of test/arc_corpus.sh (which starts nsd and
passes its port): ValiMail's ARC validation suite and dkimpy interop run
through our verifier (test/dkim_check, [arc] enabled).

    arc_corpus.py zones OUTDIR        write OUTDIR/*.zone (the suite's keys)
    arc_corpus.py run LAB PORT        run the cases

Data: $MW_TESTDATA (default test/corpora)/arc/arc-draft-validation-tests.yml
(ValiMail arc_test_suite, MIT; test/corpora/SOURCES.md section 6).  Every
case is run, duplicate names included (YAML would keep only the last).
A result that differs from the suite's fails unless
test/arc-known-differences.txt lists the case with its explanation.

Interop: messages sealed by dkimpy's arc_sign (Debian python3-dkim) with
the test keys of dkim.test (t/zones/dkim-test.zone) must give arc=pass
(one and two sets), and tampered ones arc=fail.

Output, one line each, read by the shell script: "ok<TAB>what",
"not ok<TAB>what<TAB>why", "# note".
"""

import os
import re
import subprocess
import sys
import tempfile

import yaml

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(os.environ.get("MW_TESTDATA", os.path.join(TOP, "test", "corpora")), "arc")
SUITE = os.path.join(DATA, "arc-draft-validation-tests.yml")
CHECK = os.environ.get("DKIM_CHECK", os.path.join(TOP, "test", "dkim_check"))
KNOWN = os.path.join(TOP, "test", "arc-known-differences.txt")
KEYS = os.path.join(TOP, "test", "dkim-keys")


def out(*parts):
    print("\t".join(parts), flush=True)


def scenarios():
    """[(description, [(name, message, cv)], {name: txt})], duplicates kept."""
    res = []
    with open(SUITE) as f:
        for doc in yaml.compose_all(f, Loader=yaml.SafeLoader):
            top = {k.value: v for k, v in doc.value}
            tests = []
            for kn, vn in top["tests"].value:
                case = {k.value: v.value for k, v in vn.value}
                tests.append((kn.value, case.get("message", ""),
                              (case.get("cv") or "").strip().lower()))
            txt = {}
            if "txt-records" in top:
                txt = {k.value: v.value for k, v in top["txt-records"].value}
            res.append((top["description"].value.strip(), tests, txt))
    return res


def txt_rdata(txt):
    b = txt.encode()
    parts = [b[i:i + 255] for i in range(0, len(b), 255)]
    return " ".join('"%s"' % p.decode().replace("\\", "\\\\").replace('"', '\\"') for p in parts)


def write_zones(outdir):
    os.makedirs(outdir, exist_ok=True)
    recs = {}
    for _d, _t, txt in scenarios():
        for name, value in txt.items():
            if recs.get(name, value) != value:
                raise SystemExit("two records for %s" % name)
            recs[name] = value
    zones = {}
    for name, value in recs.items():
        labels = name.split(".")
        zone = ".".join(labels[-2:])
        zones.setdefault(zone, []).append((name, value))
    for zone, rr in zones.items():
        lines = ["$ORIGIN %s." % zone, "$TTL 300",
                 "@ IN SOA ns.%s. hostmaster.%s. 1 3600 600 86400 60" % (zone, zone),
                 "@ IN NS ns.%s." % zone, "ns IN A 127.0.0.1"]
        for name, value in sorted(rr):
            lines.append("%s. IN TXT %s" % (name, txt_rdata(" ".join(value.split("\n")))))
        with open(os.path.join(outdir, "%s.zone" % zone), "w") as f:
            f.write("\n".join(lines) + "\n")


def config(lab, port, trusted=""):
    text = """[milter]
authserv_id = mx.test
[iprev]
enabled = no
[helo]
enabled = no
[spf]
enabled = no
[dmarc]
enabled = no
[dkim]
enabled = no
[arc]
enabled = yes
%s
[dns]
nameservers = 127.0.0.1:%d
timeout_ms = 1000
tries = 2
""" % ("trusted_sealers = " + trusted if trusted else "", port)
    fd, path = tempfile.mkstemp(dir=lab, suffix=".ini")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def verify(cfg, files):
    """file -> (arc result, A-R) from test/dkim_check."""
    p = subprocess.run([CHECK, cfg, "verify"] + files, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("dkim_check verify: %s" % p.stderr.strip())
    res = {}
    for line in p.stdout.splitlines():
        f, _r, ar = line.split("\t", 2)
        m = re.search(r"\barc=(\w+)", ar)
        res[f] = (m.group(1) if m else "-", ar)
    return res


def load_known():
    known = {}
    with open(KNOWN) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            name, ours, why = line.rstrip("\n").split("\t", 2)
            known[name] = (ours, why)
    return known


def run_suite(lab, port):
    known = load_known()
    used = set()
    cfg = config(lab, port)
    files, cases = [], []
    n = 0
    for _desc, tests, _txt in scenarios():
        for name, msg, cv in tests:
            n += 1
            path = os.path.join(lab, "arc-%03d-%s.eml" % (n, name))
            with open(path, "w") as f:
                f.write(msg)
            files.append(path)
            cases.append((name, cv, path))
    res = verify(cfg, files)
    agree = differ = 0
    for name, cv, path in cases:
        ours, ar = res[path]
        want = cv if cv else "(undefined)"
        if ours == cv:
            agree += 1
            out("ok", "arc suite %s: cv=%s" % (name, ours))
        elif name in known and known[name][0] == ours:
            differ += 1
            used.add(name)
            out("ok", "arc suite %s: suite says %s, we say %s (known: %s)" % (name, want, ours, known[name][1]))
        else:
            out("not ok", "arc suite %s: suite says %s, we say %s" % (name, want, ours), ar)
    for name in sorted(set(known) - used):
        out("not ok", "known difference %s no longer differs" % name, "remove it from test/arc-known-differences.txt")
    out("# ARC validation suite: %d cases, %d agree, %d known differences" % (len(cases), agree, differ))


# ------------------------------------------------------- dkimpy interop --

BASE = (b"From: Alice <alice@author.example>\r\n"
        b"To: list@lists.example\r\n"
        b"Subject: forwarded\r\n"
        b"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
        b"Message-ID: <arc.1@author.example>\r\n"
        b"\r\n"
        b"Hello,\r\n\r\n  this line has trailing white space   \r\n"
        b"and\ta\ttab.\r\n\r\n\r\n")


def seal(msg, srv, selector, alg, ar):
    import dkim
    msg = b"Authentication-Results: " + srv + b"; " + ar + b"\r\n" + msg
    key = open(os.path.join(KEYS, "rsa2048.pem"), "rb").read()
    a = dkim.ARC(msg, signature_algorithm=alg)
    hdrs = a.sign(selector, b"dkim.test", key, srv, include_headers=a.default_sign_headers(),
                  timestamp=1700000000)
    if not hdrs:
        raise RuntimeError("arc_sign gave nothing")
    # The hop's own A-R is not passed on; the ARC set goes on top.
    return b"".join(hdrs) + msg[msg.index(b"\r\n") + 2:]


def run_interop(lab, port):
    try:
        import dkim  # noqa: F401
    except ImportError:
        out("not ok", "dkimpy interop", "python3-dkim is missing")
        return
    cfg = config(lab, port, "dkim.test")
    cases = []
    one = seal(BASE, b"lists.example", b"rsa2048", b"rsa-sha256", b"dmarc=pass header.from=author.example")
    cases.append(("one set, rsa-sha256", one, "pass"))
    two = seal(one, b"fwd.example", b"rsa2048", b"rsa-sha256", b"arc=pass")
    cases.append(("two sets, rsa-sha256", two, "pass"))
    cases.append(("one set, tampered body", one.replace(b"Hello,", b"Hallo,"), "fail"))
    cases.append(("one set, tampered Subject", one.replace(b"Subject: forwarded", b"Subject: f0rwarded"),
                  "fail"))
    # ARC-Seal 1 (cv=none) with another t=: seal 2 still verifies, seal 1 not
    t1 = re.sub(rb"(i=1; cv=none;[^:]*?t=)1700000000", rb"\g<1>1700000001", two, count=1)
    cases.append(("two sets, ARC-Seal 1 tampered", t1 if t1 != two else b"", "fail"))
    sealed = one.split(b"\r\n\r\n", 1)
    cases.append(("one set, AAR tampered", sealed[0].replace(b"dmarc=pass", b"dmarc=fail") +
                  b"\r\n\r\n" + sealed[1], "fail"))
    # dkimpy 1.1.4's ARC signer takes RSA keys only: no Ed25519 interop.
    files = []
    for i, (what, msg, _want) in enumerate(cases):
        path = os.path.join(lab, "interop-%d.eml" % i)
        with open(path, "wb") as f:
            f.write(msg)
        files.append(path)
    res = verify(cfg, files)
    for (what, _msg, want), path in zip(cases, files):
        ours, ar = res[path]
        if ours == want:
            out("ok", "dkimpy arc_sign, %s: arc=%s" % (what, ours))
        else:
            out("not ok", "dkimpy arc_sign, %s: want arc=%s, got %s" % (what, want, ours), ar)


def main():
    if sys.argv[1] == "zones":
        write_zones(sys.argv[2])
    elif sys.argv[1] == "run":
        lab, port = sys.argv[2], int(sys.argv[3])
        run_suite(lab, port)
        run_interop(lab, port)
    else:
        raise SystemExit("usage: arc_corpus.py zones OUTDIR | run LAB PORT")


if __name__ == "__main__":
    main()
