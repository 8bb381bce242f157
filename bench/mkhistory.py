#!/usr/bin/python3
# bench/mkhistory.py N DAY-START > history.jsonl -- N DMARC history
# records (format v2, lib/mw_dmarc.c) spread over one UTC day, for
# bench/report_bench.sh: 2,000 policy domains (Zipf-like: a few get most
# mail), 50,000 source IPs, 85 % pass, the rest forged or forwarded.
import json, random, sys

n, day = int(sys.argv[1]), int(sys.argv[2])
rnd = random.Random(9990)
domains = ["d%04d.example" % i for i in range(2000)]
weights = [1.0 / (i + 1) for i in range(2000)]
ips = ["10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255) for i in range(50000)]
out = sys.stdout
cum = []
s = 0.0
for w in weights:
    s += w
    cum.append(s)
import bisect
for k in range(n):
    d = domains[bisect.bisect(cum, rnd.random() * s)]
    ip = ips[int(rnd.random() ** 3 * len(ips))]
    ok = rnd.random() < 0.85
    rec = {"v": 2, "time": day + k * 86400 // n, "queue_id": "Q%x" % k,
           "source_ip": ip, "helo": "mail." + d,
           "envelope_from": "bounce@" + d, "envelope_from_domain": d,
           "envelope_to": ["example.net"], "header_from": d,
           "discovery_method": "treewalk", "policy_domain": d,
           "org_domain": d, "p": "reject", "sp": "reject", "np": "reject",
           "testing": "n", "psd": "u", "adkim": "r", "aspf": "r", "fo": "0",
           "rua": "mailto:dmarc@" + d, "ruf": None, "ri": 86400,
           "dmarc": "pass" if ok else "fail", "policy": "reject",
           "policy_from": "p", "disposition": "none" if ok else "reject",
           "reason": "", "dkim_aligned": "pass" if ok else "fail",
           "spf_aligned": "pass" if ok else "fail",
           "spf": {"domain": d, "scope": "mfrom",
                   "result": "pass" if ok else "fail"},
           "dkim": [{"domain": d, "selector": "s1",
                     "result": "pass" if ok else "fail"}]}
    out.write(json.dumps(rec, separators=(",", ":")) + "\n")
