#!/usr/bin/python3
"""
spf_suite.py -- run the OpenSPF conformance suites (RFC 7208 and the
historic RFC 4408 one, YAML from pyspf) through mailwarden's SPF code.

    test/spf_suite.py [-v] [--suite FILE]... [--known FILE] [--driver PATH]
                      [CASE...]

Data: $MW_TESTDATA (default test/corpora)/spf, see its SOURCES.md.

For each suite file a real DNS server (t/dnsfault.py --spf-suite)
is started on loopback; for each scenario it is switched to that
scenario's zonedata and test/spf_check (our SPF module, libspf2 through
our DNS layer, over c-ares) evaluates the scenario's cases against it.

A case passes when our result is the expected one (or one of the
expected ones), and, where the case gives an explanation for a fail, our
explanation is that text ("DEFAULT": the domain gave none).

Output is TAP: a case listed in test/spf-known-failures.txt that fails is
"not ok ... # TODO" with the reason; one that is not listed fails the
run.  The exit status is non-zero if any case not listed as a known
failure fails.  CASE arguments (test names) run only those cases.

Needs python3-yaml and python3-dnslib (Debian packages).
"""

import argparse
import os
import subprocess
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mwtap  # noqa: E402  (the skip rule: test/mwtap.py)

TOP_SRC = os.environ.get("top_srcdir") or \
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOP_BUILD = os.environ.get("top_builddir") or TOP_SRC
# the vendored corpora (test/corpora/SOURCES.md), or $MW_TESTDATA
SUITE_DIR = os.path.join(os.environ.get("MW_TESTDATA", os.path.join(
    TOP_SRC, "test", "corpora")), "spf")


def load_known(path):
    """suite-file:test-name <whitespace> reason, '#' comments."""
    known = {}
    if not os.path.exists(path):
        return known
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 1)
            known[parts[0]] = parts[1] if len(parts) > 1 else ""
    return known


def start_dns(suite):
    dns = subprocess.Popen(
        ["/usr/bin/python3", os.path.join(TOP_SRC, "t", "dnsfault.py"),
         "--spf-suite", suite],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    words = dns.stdout.readline().split()
    if len(words) != 2 or words[0] != "ready":
        dns.kill()
        sys.exit("spf_suite: dnsfault.py did not start")
    return dns, int(words[1])


def select(dns, n):
    dns.stdin.write("scenario %d\n" % n)
    dns.stdin.flush()
    if dns.stdout.readline().strip() != "ok %d" % n:
        sys.exit("spf_suite: dnsfault.py did not switch to scenario %d" % n)


def expected_list(result):
    return result if isinstance(result, list) else [result]


def run_suite(path, args, known, counter):
    name = os.path.basename(path)
    with open(path, "rb") as f:
        scenarios = list(yaml.safe_load_all(f))
    dns, port = start_dns(path)
    passed = failed = known_failed = 0
    unexpected = []
    try:
        for n, sc in enumerate(scenarios):
            cases = [(t, c) for t, c in sorted(sc["tests"].items())
                     if not args.cases or t in args.cases]
            if not cases:
                continue
            select(dns, n)
            lines = "".join("%s\t%s\t%s\n" % (c["host"], c["helo"],
                                              c["mailfrom"])
                            for _, c in cases)
            out = subprocess.run(
                [args.driver, "127.0.0.1:%d" % port, str(args.timeout)],
                input=lines, capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit("spf_suite: spf_check failed: %s" % out.stderr)
            answers = out.stdout.splitlines()
            if len(answers) != len(cases):
                sys.exit("spf_suite: spf_check gave %d answers for %d cases:"
                         " %s" % (len(answers), len(cases), out.stderr))
            for (tname, case), answer in zip(cases, answers):
                result, _, exp = answer.partition("\t")
                want = expected_list(case["result"])
                ok = result in want
                why = ""
                if not ok:
                    why = "result %s, expected %s" % (result, "/".join(want))
                elif "explanation" in case and result == "fail":
                    want_exp = case["explanation"]
                    if want_exp == "DEFAULT":
                        want_exp = ""
                    if exp != want_exp:
                        ok = False
                        why = "explanation %r, expected %r" % (exp, want_exp)
                counter[0] += 1
                key = "%s:%s" % (name, tname)
                if ok:
                    passed += 1
                    note = ""
                    if key in known:
                        note = " # known failure passes now: remove it"
                    print("ok %d - %s%s" % (counter[0], key, note))
                elif key in known:
                    known_failed += 1
                    print("not ok %d - %s # TODO %s (%s)" %
                          (counter[0], key, known[key], why))
                else:
                    failed += 1
                    unexpected.append(key)
                    print("not ok %d - %s: %s" % (counter[0], key, why))
                    if args.verbose:
                        print("#   %s" % case.get("description", "")
                              .strip().replace("\n", " "))
                        print("#   host=%s helo=%s mailfrom=%s" %
                              (case["host"], case["helo"], case["mailfrom"]))
    finally:
        try:
            dns.stdin.write("quit\n")
            dns.stdin.close()
            dns.wait(timeout=5)
        except Exception:
            dns.kill()
    total = passed + failed + known_failed
    return name, passed, total, known_failed, unexpected


def main():
    ap = argparse.ArgumentParser(description="OpenSPF suites through "
                                 "mailwarden's SPF module")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--suite", action="append",
                    help="suite YAML (default: rfc7208-tests.yml and "
                    "rfc4408-tests.yml in $MW_TESTDATA/spf, test/corpora/spf)")
    ap.add_argument("--known", default=os.path.join(
        TOP_SRC, "test", "spf-known-failures.txt"))
    ap.add_argument("--driver", default=os.path.join(
        TOP_BUILD, "test", "spf_check"))
    ap.add_argument("--timeout", type=int, default=1000,
                    help="DNS timeout in ms (TIMEOUT entries wait this long)")
    ap.add_argument("cases", nargs="*")
    args = ap.parse_args()

    suites = args.suite or [os.path.join(SUITE_DIR, "rfc7208-tests.yml"),
                            os.path.join(SUITE_DIR, "rfc4408-tests.yml")]
    if not os.access(args.driver, os.X_OK):
        mwtap.skip_all("%s not built" % args.driver)
    known = load_known(args.known)
    counter = [0]
    summary = []
    bad = []
    for path in suites:
        name, passed, total, known_failed, unexpected = \
            run_suite(path, args, known, counter)
        summary.append("%s: %d of %d passed (%d known failures)" %
                       (name, passed, total, known_failed))
        bad.extend(unexpected)
    print("1..%d" % counter[0])
    for line in summary:
        print("# " + line)
    if bad:
        print("# unexpected failures: %s" % " ".join(bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
