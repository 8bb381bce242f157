#!/usr/bin/python3
"""
dmarc_corpus.py -- the work of test/dmarc_corpus.sh (which runs nsd and
test/dmarc_eval): third-party DMARC conformance data through our DMARC
module, fed only with the SPF and DKIM results the data says passed.

    dmarc_corpus.py prepare OUTDIR NSD_PORT BLACKHOLE_PORT
        one directory per evaluation, OUTDIR/NNN/: zones/*.zone (the
        case's DNS, one zone per top-level domain), message, args (one
        dmarc_eval argument per line), mw.ini; OUTDIR/cases lists them
    dmarc_corpus.py judge OUTDIR
        compare each OUTDIR/NNN/got (+ history.jsonl) with what the data
        asserts; lines "ok<TAB>what", "not ok<TAB>what<TAB>why", "# note"

Data: $MW_TESTDATA (default test/corpora)/dmarc, see its
SOURCES.md section 3:
  mailauth/dmarc-verify-cases.json  63 cases (12 flagged DMARCbis, i.e.
                                     RFC 9989)
  authheaders/cases.json + messages  ValiMail authheaders' end-to-end
                                     cases and From-domain extraction
A disagreement fails only if test/dmarc-known-differences.txt does not
explain it (a line "ID<TAB>reason"; ID as printed, e.g. mailauth:45).
"""

import json
import os
import re
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(os.environ.get("MW_TESTDATA", os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpora")),
                    "dmarc")
KNOWN = os.path.join(TOP, "test", "dmarc-known-differences.txt")
PSL = "/usr/share/publicsuffix/public_suffix_list.dat"


# ---------------------------------------------------------------- zones --

def tld(name):
    return name.rstrip(".").rsplit(".", 1)[-1].lower()


def txt_rdata(strings):
    out = []
    for s in strings:
        # zone files: one character-string is at most 255 bytes
        for i in range(0, max(len(s), 1), 255):
            part = s[i:i + 255]
            out.append('"%s"' % part.replace("\\", "\\\\")
                       .replace('"', '\\"'))
    return " ".join(out)


def write_zones(outdir, records, tlds):
    """records: [(name, type, rdata)]; one zone per TLD in tlds."""
    zdir = os.path.join(outdir, "zones")
    os.makedirs(zdir, exist_ok=True)
    by = {t: [] for t in tlds}
    for name, rtype, rdata in records:
        by.setdefault(tld(name), []).append((name, rtype, rdata))
    for t, rrs in sorted(by.items()):
        with open(os.path.join(zdir, t + ".zone"), "w") as f:
            f.write("$ORIGIN %s.\n$TTL 60\n" % t)
            f.write("@ IN SOA ns.%s. hostmaster.%s. (1 3600 600 86400 60)\n"
                    % (t, t))
            f.write("@ IN NS ns.%s.\nns IN A 127.0.0.1\n" % t)
            for name, rtype, rdata in rrs:
                f.write("%s. IN %s %s\n" % (name.rstrip("."), rtype, rdata))


def domain_of(addr):
    a = addr.strip()
    m = re.search(r"<([^>]*)>", a)
    if m:
        a = m.group(1)
    return a.rsplit("@", 1)[-1].lower().rstrip(".")


def config(outdir, nsd, blackhole, timeout, verify_dkim):
    with open(os.path.join(outdir, "mw.ini"), "w") as f:
        f.write("""[milter]
authserv_id = mx.test
[iprev]
enabled = no
[helo]
enabled = no
[spf]
enabled = no
[dkim]
verify = %s
min_key_bits = 1024
[dns]
nameservers = 127.0.0.1:%s
timeout_ms = %d
tries = 1
cache_size = 0
[dmarc]
psl_file = %s
history_file = %s/history.jsonl
""" % ("yes" if verify_dkim else "no", blackhole if timeout else nsd,
       300 if timeout else 1000, PSL, outdir))


# ------------------------------------------------------------- mailauth --

def mailauth_cases():
    with open(os.path.join(DATA, "mailauth", "dmarc-verify-cases.json")) as f:
        return json.load(f)["cases"]


def names(lst):
    return [x["domain"] if isinstance(x, dict) else x for x in lst]


def prepare_mailauth(out, n, nsd, bh):
    ids = []
    for ci, case in enumerate(mailauth_cases()):
        for ei, inp in enumerate(case["inputs"]):
            d = os.path.join(out, "%03d" % n)
            n += 1
            os.makedirs(d, exist_ok=True)
            hf = inp["headerFrom"]
            hf = hf if isinstance(hf, list) else [hf]
            froms = [domain_of(x) for x in hf]
            records, timeout = [], False
            tlds = {tld(x) for x in froms}
            for name, v in inp["dns"].items():
                if v == "ERROR:ETIMEOUT":
                    timeout = True
                    continue
                for rtype, vals in v.items():
                    for val in vals:
                        if name == "*":
                            for t in tlds:
                                records.append(("*." + t, rtype,
                                                txt_rdata(val)))
                            continue
                        if rtype == "TXT":
                            rd = txt_rdata(val)
                        elif rtype == "MX":
                            rd = "%d %s." % (val["priority"], val["exchange"])
                        else:
                            rd = val
                        records.append((name, rtype, rd))
                        tlds.add(tld(name))
            write_zones(d, records, tlds)
            with open(os.path.join(d, "message"), "w") as f:
                f.write("From: %s\nTo: rcpt@example.net\nSubject: case %d\n"
                        "\nbody\n" % (", ".join(hf), ci))
            args = ["dkim=pass:%s" % x for x in names(inp["dkimDomains"])]
            spf = names(inp["spfDomains"])
            if spf:
                args = ["mailfrom=<postmaster@%s>" % spf[0],
                        "spf=pass:%s" % spf[0]] + args
            with open(os.path.join(d, "args"), "w") as f:
                f.write("".join(a + "\n" for a in args))
            config(d, nsd, bh, timeout, False)
            meta = {"set": "mailauth", "case": ci, "eval": ei,
                    "name": case["name"], "suite": case["suite"],
                    "dmarcbis": case["upstream_skipped"]}
            with open(os.path.join(d, "meta.json"), "w") as f:
                json.dump(meta, f)
            ids.append(os.path.basename(d))
    return n, ids


# ---------------------------------------------------------- authheaders --

def authheaders():
    with open(os.path.join(DATA, "authheaders", "cases.json")) as f:
        return json.load(f)


def prev_results(ar):
    """dkim=R header.d=D and spf=R smtp.mailfrom=D of a previous A-R."""
    args = []
    if not ar:
        return args
    for ri in ar.split(";")[1:]:
        m = re.match(r"\s*(dkim|spf)=(\w+)", ri)
        if not m:
            continue
        if m.group(1) == "dkim":
            d = re.search(r"header\.d=([^\s;]+)", ri)
            if d:
                args.append("dkim=%s:%s" % (m.group(2), d.group(1)))
        else:
            d = re.search(r"smtp\.mail-?from=([^\s;]+)", ri)
            if d:
                dom = d.group(1).rsplit("@", 1)[-1]
                args += ["mailfrom=<postmaster@%s>" % dom,
                         "spf=%s:%s" % (m.group(2), dom)]
    return args


def authheaders_records(dns):
    """authheaders' DNS dict: "" is "no TXT record" -- a _dmarc name gets
    no record at all (an A record there would make its parent exist,
    RFC 8020, and hide np=), any other name an A record (it exists)."""
    records = []
    for name, v in dns.items():
        if v is None or (v == "" and name.startswith("_")):
            continue
        if v == "" or not name.startswith("_") and "._domainkey." not in name:
            if v == "" or "v=" not in v:
                records.append((name, "A", "192.0.2.80"))
                continue
        records.append((name, "TXT", txt_rdata([v])))
    return records


def prepare_authheaders(out, n, nsd, bh):
    ah = authheaders()
    ids = []
    records = authheaders_records(ah["dns"])
    tlds = {tld(name) for name, _, _ in records}
    for case in ah["cases"]:
        d = os.path.join(out, "%03d" % n)
        n += 1
        os.makedirs(d, exist_ok=True)
        write_zones(d, records, tlds)
        with open(os.path.join(DATA, "authheaders", case["message"]),
                  "rb") as f:
            msg = f.read()
        with open(os.path.join(d, "message"), "wb") as f:
            f.write(msg)
        args = prev_results(case["prev_authentication_results"])
        with open(os.path.join(d, "args"), "w") as f:
            f.write("".join(a + "\n" for a in args))
        config(d, nsd, bh, False, case["checks"]["dkim"])
        meta = {"set": "authheaders", "name": case["name"],
                "checks": case["checks"], "expected": case["expected"],
                "note": case.get("note", "")}
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump(meta, f)
        ids.append(os.path.basename(d))
    for i, (value, dom) in enumerate(ah["from_domain_extraction"]):
        d = os.path.join(out, "%03d" % n)
        n += 1
        os.makedirs(d, exist_ok=True)
        write_zones(d, [], {tld(dom)})
        with open(os.path.join(d, "message"), "w") as f:
            f.write("From: %s\nSubject: extraction\n\nbody\n" % value)
        open(os.path.join(d, "args"), "w").close()
        config(d, nsd, bh, False, False)
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump({"set": "authheaders-from", "case": i, "value": value,
                       "domain": dom}, f)
        ids.append(os.path.basename(d))
    return n, ids


def prepare(out, nsd, bh):
    os.makedirs(out, exist_ok=True)
    n, ids = prepare_mailauth(out, 1, nsd, bh)
    n, ids2 = prepare_authheaders(out, n, nsd, bh)
    with open(os.path.join(out, "cases"), "w") as f:
        f.write("".join(i + "\n" for i in ids + ids2))


# ---------------------------------------------------------------- judge --

def observe(d):
    """What we said: result, A-R, verdict, history record."""
    got = {}
    queries = []
    with open(os.path.join(d, "got"), errors="replace") as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition(": ")
            if k == "dmarc-query":
                queries.append(v)
            else:
                got[k] = v
    ar = got.get("authres", "")
    m = re.search(r"\bdmarc=(\w+)", ar)
    o = {"result": m.group(1) if m else None, "authres": ar,
         "verdict": got.get("verdict", "?"), "queries": queries}
    m = re.search(r"\bdmarc=\w+.*?header\.from=([^\s;]+)", ar)
    o["header_from"] = m.group(1) if m else None
    m = re.search(r"\bdmarc=\w+.*?policy\.dmarc=([^\s;]+)", ar)
    o["policy_dmarc"] = m.group(1) if m else None
    o["history"] = []
    hp = os.path.join(d, "history.jsonl")
    if os.path.exists(hp):
        with open(hp) as f:
            o["history"] = [json.loads(line) for line in f]
    return o


NOT_OBSERVABLE = {
    "pct": "RFC 9989 removed pct= (appendix A.6): we do not report it, as "
           "mailauth's own RFC 9989 case mailauth:53 asks",
    "rr": "we do not expose the raw record",
    "error": "mailauth's error text",
    "status.comment": "ARC is not part of our DMARC module",
    "alignment.dkim.underSized": "mailauth's l= bookkeeping",
}


def check_mailauth(o, path, op, value):
    """None (agree), a disagreement text, or ('n/a', why)."""
    h = o["history"][0] if o["history"] else None
    if path in NOT_OBSERVABLE:
        return ("n/a", NOT_OBSERVABLE[path])
    if path == "":
        evaluated = o["result"] is not None
        if op == "false":
            return None if not evaluated else \
                "mailauth refuses to evaluate; we say dmarc=%s" % o["result"]
        if op == "not.property":
            has = h is not None and value in h
            return "has %s" % value if has else None
        return ("n/a", "op %s on the whole result" % op)
    if path == "status.result":
        obs = o["result"]
    elif path == "policy":
        obs = h["policy"] if h else None
    elif path in ("p", "sp"):
        obs = h[path] if h else None
    elif path == "pct":
        obs = h.get("pct") if h else None
    elif path in ("domain", "status.header.d"):
        obs = h["policy_domain"] if h else None
    elif path == "status.header.from":
        obs = o["header_from"]
    elif path == "info":
        obs = o["authres"]
    elif path in ("alignment.dkim.result", "alignment.spf.result"):
        k = "dkim_aligned" if "dkim" in path else "spf_aligned"
        aligned = h is not None and h[k] == "pass"
        if op == "equal":
            return None if aligned else "not aligned"
        if op in ("not.ok", "undefined"):
            return None if not aligned else "aligned"
        return ("n/a", "op " + op)
    elif path in ("alignment.dkim.strict", "alignment.spf.strict"):
        k = "adkim" if "dkim" in path else "aspf"
        obs = h is not None and h[k] == "s"
        want = op == "true"
        return None if obs == want else "strict=%s" % obs
    else:
        return ("n/a", "path " + path)
    if op == "equal":
        return None if obs == value else "%s=%r, expected %r" % (
            path, obs, value)
    if op == "include":
        return None if obs and value in str(obs) else \
            "%s=%r does not include %r" % (path, obs, value)
    if op == "a":
        return None if isinstance(obs, str) else "%s not a string" % path
    if op in ("true", "false"):
        return None if bool(obs) == (op == "true") else "%s=%r" % (path, obs)
    if op in ("undefined", "not.ok"):
        return None if not obs else "%s=%r" % (path, obs)
    return ("n/a", "op " + op)


def load_known():
    known = {}
    with open(KNOWN) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            k, _, why = line.rstrip("\n").partition("\t")
            known[k.strip()] = why.strip()
    return known


def parse_expected(ar):
    """dmarc= result, header.from and policy.dmarc of an expected A-R."""
    # drop comments (they may hold ';' and '=') before splitting
    plain, depth, quoted = "", 0, False
    for ch in ar:
        if quoted:
            quoted = ch != '"'
            continue
        if ch == '"' and depth == 0:
            quoted = True
        elif ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif depth == 0:
            plain += ch
    m = re.search(r"\bdmarc=(\w+)([^;]*)", plain)
    if not m:
        return None
    rest = m.group(2)
    hf = re.search(r"header\.from=([^\s;]+)", rest)
    pol = re.search(r"policy\.dmarc=([^\s;]+)", rest)
    return {"result": m.group(1), "header_from": hf.group(1) if hf else None,
            "policy": pol.group(1) if pol else None}


def judge(out):
    known = load_known()
    with open(os.path.join(out, "cases")) as f:
        dirs = [l.strip() for l in f if l.strip()]
    verdicts = {}       # id -> (disagreements, n/a, dmarcbis, label)
    bad_history = []
    for dn in dirs:
        d = os.path.join(out, dn)
        with open(os.path.join(d, "meta.json")) as f:
            meta = json.load(f)
        try:
            o = observe(d)
        except (OSError, ValueError) as e:
            print("not ok\t%s: no result\t%s" % (dn, e))
            continue
        for rec in o["history"]:
            for k in ("v", "time", "source_ip", "header_from", "p", "dmarc",
                      "policy", "disposition", "spf", "dkim"):
                if k not in rec:
                    bad_history.append("%s: no %s" % (dn, k))
        if meta["set"] == "mailauth":
            cid = "mailauth:%d" % meta["case"]
            v = verdicts.setdefault(cid, [[], [], meta["dmarcbis"],
                                          meta["name"], 0])
            case = mailauth_cases()[meta["case"]]
            for path, op, *val in case["expect"]:
                m = re.match(r"#(\d+)\.?(.*)", path)
                if path.startswith("resolver.queried_names") and \
                        op == "equal":
                    # the _dmarc names the walk consulted, in order
                    # (dmarc_eval's dmarc-query: lines)
                    v[4] += 1
                    if o["queries"] != val[0]:
                        v[0].append("queried %s, expected %s" % (
                            o["queries"], val[0]))
                    continue
                if not m:
                    v[1].append(NOT_OBSERVABLE.get(path, "path " + path))
                    continue
                if int(m.group(1)) != meta["eval"]:
                    continue
                r = check_mailauth(o, m.group(2), op, val[0] if val else None)
                if isinstance(r, tuple):
                    v[1].append(r[1])
                    continue
                v[4] += 1
                if r is not None:
                    v[0].append(r)
        elif meta["set"] == "authheaders":
            cid = "authheaders:" + meta["name"]
            v = verdicts.setdefault(cid, [[], [], meta["checks"]["dmarcbis"],
                                          meta["note"] or meta["name"], 1])
            exp = parse_expected(meta["expected"])
            if exp is None:
                v[1].append("no DMARC result expected (%s)" % ",".join(
                    k for k, x in meta["checks"].items() if x))
                v[4] = 0
                continue
            if o["result"] != exp["result"]:
                v[0].append("dmarc=%s, expected %s" % (o["result"],
                                                      exp["result"]))
            # authheaders writes header.from=none when it has no domain
            # and leaves header.from out for dmarc=none: compare only a
            # domain it names
            ehf = None if exp["header_from"] == "none" else \
                exp["header_from"]
            if exp["header_from"] is not None and \
                    (o["header_from"] or None) != ehf:
                v[0].append("header.from=%s, expected %s" % (
                    o["header_from"], ehf))
            if exp["policy"] and o["policy_dmarc"] and \
                    o["policy_dmarc"] != exp["policy"]:
                v[0].append("policy.dmarc=%s, expected %s" % (
                    o["policy_dmarc"], exp["policy"]))
            if "dkim=pass" in meta["expected"] and meta["checks"]["dkim"] \
                    and "dkim=pass" not in o["authres"]:
                v[0].append("our DKIM check did not pass: " + o["authres"])
        else:
            cid = "authheaders-from:%d" % meta["case"]
            v = verdicts.setdefault(cid, [[], [], False, meta["value"], 1])
            if o["header_from"] != meta["domain"]:
                v[0].append("header.from=%s, expected %s (%s)" % (
                    o["header_from"], meta["domain"], o["authres"]))
    counts = {}
    for cid, (dis, na, bis, label, checked) in verdicts.items():
        s = cid.split(":")[0]
        c = counts.setdefault(s, {"cases": 0, "agree": 0, "known": 0,
                                  "na": 0, "bis": 0, "fail": 0})
        c["cases"] += 1
        c["bis"] += bool(bis)
        flag = " [DMARCbis]" if bis else ""
        if dis:
            if cid in known:
                c["known"] += 1
                print("ok\t%s%s: known difference: %s" % (cid, flag,
                                                         known[cid]))
            else:
                c["fail"] += 1
                print("not ok\t%s%s %s\t%s" % (cid, flag, label,
                                              "; ".join(dis)))
            continue
        if cid in known:
            print("# %s agrees now: drop it from %s" % (
                cid, os.path.basename(KNOWN)))
        if checked == 0:
            c["na"] += 1
            print("ok\t%s%s not comparable: %s" % (
                cid, flag, "; ".join(sorted(set(na)))))
        else:
            c["agree"] += 1
            print("ok\t%s%s agrees%s" % (cid, flag, " (not checked: %s)" % (
                "; ".join(sorted(set(na)))) if na else ""))
    for s, c in sorted(counts.items()):
        print("# %s: %d cases (%d DMARCbis-flagged): %d agree, %d known "
              "differences, %d not comparable, %d unexplained" % (
                  s, c["cases"], c["bis"], c["agree"], c["known"], c["na"],
                  c["fail"]))
    if bad_history:
        print("not ok\thistory records complete\t%s" % "; ".join(
            bad_history[:5]))
    else:
        print("ok\thistory records complete (every case's JSON lines)")


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "prepare":
        prepare(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) == 3 and sys.argv[1] == "judge":
        judge(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
