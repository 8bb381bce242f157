#!/usr/bin/python3
"""
spf_dns.py -- a DNS server on loopback that serves the zonedata of the
OpenSPF test suite (rfc7208-tests.yml, rfc4408-tests.yml), one scenario at
a time, for test/spf_suite.py.  python3-dnslib and python3-yaml.

    spf_dns.py [--address 127.0.0.1] [--port 0] SUITE.yml

Binds UDP and TCP on one port (0: any free one), prints "ready PORT",
then reads commands on stdin, one per line:

    scenario N      serve the zonedata of the N-th scenario (0-based);
                    answers "ok N"
    quit            (or end of input) exit

The zonedata is served the way the suite's own driver (pyspf's
test/testspf.py) serves it, so that results mean the same:
  - an SPF record is also a TXT record of its name, unless the name has a
    TXT entry of its own ("TXT: NONE" has none at all);
  - a bare TIMEOUT entry: a query for a type not listed before it gets no
    answer at all (the client times out); the generated TXT records come
    after it, so they time out too, as in testspf.py;
  - a name not in the zonedata is NXDOMAIN (names starting "error." time
    out); a name without the asked type is NODATA;
  - CNAMEs are followed within the zonedata (a loop answers SERVFAIL, as
    a recursive resolver does);
  - TXT strings longer than 255 octets are split; an empty list of
    strings is sent as one empty string; a value written with \\xNN
    escapes is sent as those raw octets.
"""

import argparse
import signal
import sys
import threading

import yaml
from dnslib import (AAAA, CLASS, CNAME, MX, PTR, QTYPE, RCODE, RR, SOA, TXT,
                    A, DNSLabel, DNSRecord)
from dnslib.server import DNSHandler, DNSLogger, DNSServer


class Drop(Exception):
    """Raised by the resolver to send no answer (a timeout)."""


def octets(s):
    """The octets a YAML string stands for: \\xNN escapes are raw bytes."""
    if isinstance(s, bytes):
        return s
    s = str(s)
    try:
        return s.encode("latin-1")
    except UnicodeEncodeError:
        return s.encode("utf-8")


def key_of(name):
    """Lookup key of a name: its labels, lower case, no root label."""
    if isinstance(name, DNSLabel):
        labels = name.label
    else:
        labels = tuple(octets(name).rstrip(b".").split(b"."))
    return tuple(l.lower() for l in labels if l != b"")


def entries(rdata):
    """Records of one name in the order testspf.py yields them."""
    out, generated, gen = [], [], True
    for m in rdata:
        if m == "TIMEOUT" or not isinstance(m, dict):
            out.append("TIMEOUT")
            continue
        for t, v in m.items():
            if t == "TXT":
                gen = False
            elif t == "SPF" and gen:
                generated.append(("TXT", v))
            if v != "NONE":
                out.append((t, v))
    if gen:
        out.extend(generated)
    return out


def txt_strings(v):
    if isinstance(v, list):
        parts = [octets(x) for x in v]
    else:
        parts = [octets(v)]
    if not parts:
        # No strings at all is not valid on the wire (RFC 1035 3.3.14);
        # one empty string is the nearest thing, and reads the same.
        parts = [b""]
    strings = []
    for p in parts:
        if len(p) <= 255:
            strings.append(p)
        else:
            strings.extend(p[i:i + 255] for i in range(0, len(p), 255))
    return strings


def make_rr(owner, t, v):
    if t == "A":
        return RR(owner, QTYPE.A, rdata=A(v), ttl=60)
    if t == "AAAA":
        return RR(owner, QTYPE.AAAA, rdata=AAAA(v), ttl=60)
    if t == "MX":
        pref, host = v
        return RR(owner, QTYPE.MX, rdata=MX(DNSLabel(octets(host)), pref),
                  ttl=60)
    if t == "PTR":
        return RR(owner, QTYPE.PTR, rdata=PTR(DNSLabel(octets(v))), ttl=60)
    if t == "CNAME":
        return RR(owner, QTYPE.CNAME, rdata=CNAME(DNSLabel(octets(v))),
                  ttl=60)
    if t in ("TXT", "SPF"):
        return RR(owner, getattr(QTYPE, t), rdata=TXT(txt_strings(v)),
                  ttl=60)
    raise ValueError("unknown record type %s" % t)


class SuiteResolver:

    def __init__(self, scenarios):
        self.scenarios = scenarios
        self.zone = {}
        self.lock = threading.Lock()

    def select(self, n):
        zone = {}
        for name, rdata in (self.scenarios[n].get("zonedata") or {}).items():
            zone.setdefault(key_of(name), []).extend(entries(rdata))
        with self.lock:
            self.zone = zone

    def soa(self, qname):
        return RR(qname, QTYPE.SOA, CLASS.IN, 60,
                  SOA("ns.spf-suite.test.", "hostmaster.spf-suite.test.",
                      (1, 3600, 600, 86400, 60)))

    def resolve(self, request, handler):
        with self.lock:
            zone = self.zone
        reply = request.reply()
        qtype = QTYPE.get(request.q.qtype)
        name = request.q.qname
        seen = set()
        while True:
            key = key_of(name)
            if key not in zone:
                if key and key[0] == b"error":
                    raise Drop()
                reply.header.rcode = RCODE.NXDOMAIN
                reply.add_auth(self.soa(request.q.qname))
                return reply
            found, cname, timeout = [], None, True
            for e in zone[key]:
                if e == "TIMEOUT":
                    if timeout:
                        raise Drop()
                    break
                t, v = e
                if t == qtype:
                    timeout = False
                    found.append(make_rr(name, t, v))
                elif t == "CNAME" and cname is None:
                    cname = v
            if found:
                for rr in found:
                    reply.add_answer(rr)
                return reply
            if cname is None or qtype == "CNAME":
                reply.add_auth(self.soa(request.q.qname))
                return reply
            if key in seen or len(seen) > 10:
                reply.header.rcode = RCODE.SERVFAIL
                return reply
            seen.add(key)
            reply.add_answer(make_rr(name, "CNAME", cname))
            name = DNSLabel(octets(cname))


class Handler(DNSHandler):

    def handle(self):
        try:
            super().handle()
        except Drop:
            pass


class QuietLogger(DNSLogger):

    def __init__(self):
        super().__init__(log="-request,-reply,-truncated,-data,-recv,-send",
                         prefix=False)

    def log_error(self, handler, e):
        pass


def start_servers(resolver, address, port):
    """UDP and TCP servers on one port; port 0 picks a free one."""
    for _ in range(50):
        udp = DNSServer(resolver, address=address, port=port,
                        logger=QuietLogger(), handler=Handler)
        got = udp.server.server_address[1]
        try:
            tcp = DNSServer(resolver, address=address, port=got, tcp=True,
                            logger=QuietLogger(), handler=Handler)
        except OSError:
            udp.server.server_close()
            if port != 0:
                raise
            continue
        udp.start_thread()
        tcp.start_thread()
        return got
    sys.exit("spf_dns.py: no free port")


def main():
    ap = argparse.ArgumentParser(description="serve SPF suite zonedata")
    ap.add_argument("suite")
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()

    with open(args.suite, "rb") as f:
        scenarios = list(yaml.safe_load_all(f))
    resolver = SuiteResolver(scenarios)
    resolver.select(0)
    port = start_servers(resolver, args.address, args.port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready %d" % port, flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            break
        if words[0] == "scenario" and len(words) == 2:
            resolver.select(int(words[1]))
            print("ok %s" % words[1], flush=True)
        else:
            print("error: unknown command", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
