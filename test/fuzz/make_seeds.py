#!/usr/bin/python3
"""
make_seeds.py -- fuzz seeds for fuzz_spf from the OpenSPF suites: one
file per test case, in the harness's input format (see fuzz_spf.c).

    test/fuzz/make_seeds.py OUTDIR [SUITE.yml...]
"""
import hashlib
import os
import sys

import yaml

here = os.path.dirname(os.path.abspath(__file__))
top = os.path.dirname(os.path.dirname(here))
out = sys.argv[1]
data = os.environ.get("MW_TESTDATA", os.path.join(top, "test", "corpora"))
suites = sys.argv[2:] or [os.path.join(data, "spf", f)
                          for f in ("rfc7208-tests.yml", "rfc4408-tests.yml")]
os.makedirs(out, exist_ok=True)


def b(s):
    try:
        return str(s).encode("latin-1")
    except UnicodeEncodeError:
        return str(s).encode("utf-8")


for path in suites:
    with open(path, "rb") as f:
        for sc in yaml.safe_load_all(f):
            zone = []
            for name, rdata in (sc.get("zonedata") or {}).items():
                key = b(name).split(b".")[0] or b"*"
                for r in rdata:
                    if not isinstance(r, dict):
                        zone.append(b"E " + key)
                        continue
                    for t, v in r.items():
                        if t in ("SPF", "TXT") and v != "NONE":
                            text = b"".join(b(x) for x in v) \
                                if isinstance(v, list) else b(v)
                            zone.append(b"T " + key + b" " +
                                        text.replace(b"\n", b" "))
                        elif t in ("A", "AAAA"):
                            zone.append(b"A " + key)
                        elif t == "MX":
                            zone.append(b"M " + key + b" " + b(v[1]))
                        elif t == "PTR":
                            zone.append(b"P " + b(v))
            for tname, case in sc["tests"].items():
                data = b"\n".join([b(case["mailfrom"]), b(case["helo"]),
                                   b"6" if ":" in str(case["host"])
                                   else b"4"] + zone) + b"\n"
                h = hashlib.sha1(data).hexdigest()[:12]
                with open(os.path.join(out, "%s-%s" % (tname, h)), "wb") as o:
                    o.write(data)
