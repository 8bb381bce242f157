#!/usr/bin/python3
"""
dnsfault.py -- the one scriptable DNS server of the tests (python3-dnslib).

    dnsfault.py [PORT] [--port N] [--address 127.0.0.1] [--delay MS]
                [--zone FILE] [--negttl SECONDS] [--rules FILE]
                [--forward PORT] [--no-label-faults]
                [--spf-suite SUITE.yml]

Listens on UDP and TCP on one port (PORT or --port; 0 or none: a free one)
and prints "ready" once both are bound ("ready PORT" when it picked the
port itself); exits 0 on SIGTERM or SIGINT (or, with --spf-suite, at the
end of its standard input).  Each query is handled on its own thread, so
concurrent queries are delayed in parallel, not one after the other.

A query is answered by the first of these that applies:

1. --rules FILE: lines "name action" (exact name, '#' comments), action one
   of the faults below.  For names a test cannot choose, e.g. the
   Mail::DKIM corpus's "query timed out" and SERVFAIL keys.

2. The first label of the name (unless --no-label-faults):

    timeout.*   never answers
    servfail.*  SERVFAIL
    refused.*   REFUSED
    slow.*      A 127.0.0.2, after --delay ms (100 if not given)
    garbage.*   a reply with the right id and question that announces one
                answer record and then stops: a resolver reads it and
                finds it malformed
    junk.*      random bytes that are not a DNS reply at all: a resolver
                ignores them and times out

3. With --delay every other answer is delayed by that many ms.

4. The data: either --zone FILE, lines "name [ttl] TYPE value" (value as
   in a zone file; '#' starts a comment; a first label "*" is a wildcard),
   e.g.

    2.0.0.127.bl.example  A    127.0.0.2
    2.0.0.127.bl.example  TXT  "listed, see https://bl.example/"

   A name not in the file is NXDOMAIN, a name without the asked type
   NODATA; both carry an SOA whose minimum is --negttl (default 60).
   CNAMEs in the file are followed within the file.

   Or --spf-suite SUITE.yml: the zonedata of the OpenSPF test suite
   (rfc7208-tests.yml, rfc4408-tests.yml; needs python3-yaml), one
   scenario at a time, for test/spf_suite.py.  Commands on standard input,
   one per line: "scenario N" serves the N-th scenario's zonedata
   (0-based) and answers "ok N"; "quit" (or end of input) exits.  It is
   served the way the suite's own driver (pyspf's test/testspf.py) serves
   it, so that results mean the same:
     - an SPF record is also a TXT record of its name, unless the name has
       a TXT entry of its own ("TXT: NONE" has none at all);
     - a bare TIMEOUT entry: a query for a type not listed before it gets
       no answer at all (the client times out); the generated TXT records
       come after it, so they time out too, as in testspf.py;
     - a name not in the zonedata is NXDOMAIN (names starting "error."
       time out); a name without the asked type is NODATA;
     - CNAMEs are followed within the zonedata (a loop answers SERVFAIL,
       as a recursive resolver does);
     - TXT strings longer than 255 octets are split; an empty list of
       strings is sent as one empty string; a value written with \\xNN
       escapes is sent as those raw octets.
   The first-label faults are off in this mode.

5. --forward PORT: a name the data does not have is asked of the server on
   127.0.0.1:PORT (e.g. nsd) over UDP, and its reply passed on as it is.
"""

import argparse
import os
import signal
import socket
import sys
import threading
import time

from dnslib import (AAAA, CLASS, CNAME, MX, PTR, QTYPE, RCODE, RR, SOA, TXT,
                    A, DNSLabel, DNSRecord)
from dnslib.dns import DNSBuffer
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer

FAULTS = ("timeout", "servfail", "refused", "slow", "garbage", "junk")


class Drop(Exception):
    """Raised by the resolver to send nothing at all."""


class Raw(Exception):
    """Raised by the resolver to send these bytes instead of a reply."""

    def __init__(self, data):
        super().__init__("raw reply")
        self.data = data


# ------------------------------------------------------------ --zone -----

def load_zone(path):
    """Read 'name [ttl] TYPE value' lines into {(name, TYPE): [RR]}."""
    zone = {}
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1].isdigit():
                name, ttl, rtype = parts[0], int(parts[1]), parts[2]
                value = parts[3] if len(parts) > 3 else ""
            elif len(parts) >= 3:
                name, ttl, rtype = parts[0], 300, parts[1]
                value = line.split(None, 2)[2]
            else:
                sys.exit("%s:%d: want 'name [ttl] TYPE value'" %
                         (path, lineno))
            rtype = rtype.upper()
            if rtype == "TXT" and not value.startswith('"'):
                value = '"%s"' % value.replace('"', '\\"')
            name = name.lower().rstrip(".") + "."
            try:
                rr = RR.fromZone("%s %d IN %s %s" %
                                 (name, ttl, rtype, value))
            except Exception as e:
                sys.exit("%s:%d: %s" % (path, lineno, e))
            zone.setdefault((name, rtype), []).extend(rr)
    return zone


class MapData:
    """The answers of a --zone file (possibly empty)."""

    def __init__(self, zone, negttl):
        self.zone = zone
        self.names = {name for name, _ in zone}
        self.negttl = negttl

    def lookup(self, name, rtype):
        """RRs for (name, rtype), trying a wildcard; None if no name."""
        if name in self.names:
            return self.zone.get((name, rtype), [])
        labels = name.split(".")
        for i in range(1, len(labels) - 1):
            wild = "*." + ".".join(labels[i:])
            if wild in self.names:
                rrs = []
                for rr in self.zone.get((wild, rtype), []):
                    rr = RR(name, rr.rtype, rr.rclass, rr.ttl, rr.rdata)
                    rrs.append(rr)
                return rrs
        return None

    def soa(self, qname):
        return RR(qname, QTYPE.SOA, CLASS.IN, self.negttl,
                  SOA("ns.dnsfault.test.", "hostmaster.dnsfault.test.",
                      (1, 3600, 600, 86400, self.negttl)))

    def answer(self, request, reply):
        """Fill REPLY; False if the name is not in the data at all."""
        qname = str(request.q.qname).lower()
        qtype = QTYPE[request.q.qtype]
        # CNAME chase inside the static zone, at most 8 steps.
        name = qname
        for _ in range(8):
            rrs = self.lookup(name, qtype)
            if rrs is None:
                if name == qname:
                    return False
                reply.header.rcode = RCODE.NXDOMAIN
                reply.add_auth(self.soa(qname))
                return True
            if rrs:
                for rr in rrs:
                    reply.add_answer(rr)
                return True
            cname = self.lookup(name, "CNAME") if qtype != "CNAME" else []
            if not cname:
                break
            reply.add_answer(cname[0])
            name = str(cname[0].rdata.label).lower()
        reply.add_auth(self.soa(qname))
        return True

    def nxdomain(self, request, reply):
        reply.header.rcode = RCODE.NXDOMAIN
        reply.add_auth(self.soa(str(request.q.qname).lower()))


# ------------------------------------------------------- --spf-suite -----

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
    return tuple(label.lower() for label in labels if label != b"")


def suite_entries(rdata):
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


def suite_rr(owner, t, v):
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


class SuiteData:
    """The zonedata of one scenario of an OpenSPF suite at a time."""

    def __init__(self, path):
        import yaml     # only this mode needs python3-yaml
        with open(path, "rb") as f:
            self.scenarios = list(yaml.safe_load_all(f))
        self.zone = {}
        self.lock = threading.Lock()
        self.select(0)

    def select(self, n):
        zone = {}
        for name, rdata in (self.scenarios[n].get("zonedata") or {}).items():
            zone.setdefault(key_of(name), []).extend(suite_entries(rdata))
        with self.lock:
            self.zone = zone

    @staticmethod
    def soa(qname):
        return RR(qname, QTYPE.SOA, CLASS.IN, 60,
                  SOA("ns.spf-suite.test.", "hostmaster.spf-suite.test.",
                      (1, 3600, 600, 86400, 60)))

    def answer(self, request, reply):
        with self.lock:
            zone = self.zone
        qtype = QTYPE.get(request.q.qtype)
        name = request.q.qname
        seen = set()
        while True:
            key = key_of(name)
            if key not in zone:
                if key and key[0] == b"error":
                    raise Drop()
                if name == request.q.qname:
                    return False
                reply.header.rcode = RCODE.NXDOMAIN
                reply.add_auth(self.soa(request.q.qname))
                return True
            found, cname, timeout = [], None, True
            for e in zone[key]:
                if e == "TIMEOUT":
                    if timeout:
                        raise Drop()
                    break
                t, v = e
                if t == qtype:
                    timeout = False
                    found.append(suite_rr(name, t, v))
                elif t == "CNAME" and cname is None:
                    cname = v
            if found:
                for rr in found:
                    reply.add_answer(rr)
                return True
            if cname is None or qtype == "CNAME":
                reply.add_auth(self.soa(request.q.qname))
                return True
            if key in seen or len(seen) > 10:
                reply.header.rcode = RCODE.SERVFAIL
                return True
            seen.add(key)
            reply.add_answer(suite_rr(name, "CNAME", cname))
            name = DNSLabel(octets(cname))

    def nxdomain(self, request, reply):
        reply.header.rcode = RCODE.NXDOMAIN
        reply.add_auth(self.soa(request.q.qname))


# ------------------------------------------------------- the resolver -----

def load_rules(path):
    """'name action' lines into {name: action}."""
    rules = {}
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            if len(parts) != 2 or parts[1] not in FAULTS:
                sys.exit("%s:%d: want 'name %s'" %
                         (path, lineno, "|".join(FAULTS)))
            rules[parts[0].rstrip(".").lower()] = parts[1]
    return rules


class FaultResolver(BaseResolver):

    def __init__(self, data, rules, label_faults, delay, slow_delay,
                 forward):
        self.data = data
        self.rules = rules
        self.label_faults = label_faults
        self.delay = delay
        self.slow_delay = slow_delay
        self.forward = forward

    def fault(self, action, request, reply):
        """The reply for a fault ACTION (or raise Drop/Raw)."""
        qname = str(request.q.qname).lower()
        if action == "timeout":
            raise Drop()
        if action == "slow":
            time.sleep(self.slow_delay)
            if QTYPE[request.q.qtype] == "A":
                reply.add_answer(*RR.fromZone("%s 60 IN A 127.0.0.2" %
                                              qname))
            return reply
        if self.delay:
            time.sleep(self.delay)
        if action == "servfail":
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        if action == "refused":
            reply.header.rcode = RCODE.REFUSED
            return reply
        if action == "garbage":
            # Header: same id, QR|RD|RA, NOERROR, 1 question, 1 answer;
            # the question as asked; then an answer cut after its type.
            buf = DNSBuffer()
            request.q.pack(buf)
            q = bytes(buf.data)
            hdr = request.header.id.to_bytes(2, "big") + \
                b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00"
            raise Raw(hdr + q + b"\xc0\x0c\x00\x01")
        # junk
        raise Raw(os.urandom(7))

    def forward_query(self, raw):
        """Pass the query's bytes on, and the reply's bytes back."""
        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        up.settimeout(2)
        try:
            up.sendto(raw, ("127.0.0.1", self.forward))
            answer = up.recv(65535)
        except OSError:
            raise Drop()
        finally:
            up.close()
        raise Raw(answer)

    def resolve(self, request, handler):
        qname = str(request.q.qname).rstrip(".").lower()
        reply = request.reply()
        action = self.rules.get(qname)
        if action is None and self.label_faults:
            first = qname.split(".", 1)[0]
            if first in FAULTS:
                action = first
        if action is not None:
            return self.fault(action, request, reply)
        if self.delay:
            time.sleep(self.delay)
        if self.data.answer(request, reply):
            return reply
        if self.forward:
            self.forward_query(handler.raw_query)
        self.data.nxdomain(request, reply)
        return reply


class FaultHandler(DNSHandler):

    def get_reply(self, data):
        self.raw_query = data
        request = DNSRecord.parse(data)
        try:
            reply = self.server.resolver.resolve(request, self)
        except Raw as r:
            return r.data
        return reply.pack()

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
                        logger=QuietLogger(), handler=FaultHandler)
        got = udp.server.server_address[1]
        try:
            tcp = DNSServer(resolver, address=address, port=got, tcp=True,
                            logger=QuietLogger(), handler=FaultHandler)
        except OSError:
            udp.server.server_close()
            if port != 0:
                raise
            continue
        udp.start_thread()
        tcp.start_thread()
        return got
    sys.exit("dnsfault.py: no free port")


def main():
    ap = argparse.ArgumentParser(description="scriptable DNS server")
    ap.add_argument("port", type=int, nargs="?", default=None)
    ap.add_argument("--port", type=int, dest="port_opt", default=None)
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--delay", type=int, default=None,
                    help="delay every answer by MS milliseconds")
    ap.add_argument("--zone", help="static answers: 'name [ttl] TYPE value'")
    ap.add_argument("--negttl", type=int, default=60)
    ap.add_argument("--rules", help="faults by exact name: 'name action'")
    ap.add_argument("--forward", type=int, default=None,
                    help="ask 127.0.0.1:PORT for names not in the data")
    ap.add_argument("--no-label-faults", action="store_true",
                    help="no faults by first label (timeout.* ...)")
    ap.add_argument("--spf-suite", help="serve an OpenSPF suite's zonedata")
    args = ap.parse_args()

    port = args.port_opt if args.port_opt is not None else args.port
    if args.spf_suite:
        if args.zone:
            ap.error("--zone and --spf-suite exclude each other")
        data = SuiteData(args.spf_suite)
    else:
        data = MapData(load_zone(args.zone) if args.zone else {},
                       args.negttl)
    rules = load_rules(args.rules) if args.rules else {}
    delay = (args.delay or 0) / 1000.0
    slow_delay = (args.delay if args.delay is not None else 100) / 1000.0
    label_faults = not (args.no_label_faults or args.spf_suite)
    resolver = FaultResolver(data, rules, label_faults, delay, slow_delay,
                             args.forward)
    got = start_servers(resolver, args.address, port or 0)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print("ready" if port else "ready %d" % got, flush=True)
    if args.spf_suite:
        threading.Thread(target=commands, args=(data, done),
                         daemon=True).start()
    while not done.wait(1.0):
        pass
    # The server threads are daemons: returning ends them and closes the
    # sockets, without waiting for a handler that is still sleeping.
    return 0


def commands(data, done):
    """--spf-suite: 'scenario N' / 'quit' on standard input."""
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            break
        if words[0] == "scenario" and len(words) == 2:
            data.select(int(words[1]))
            print("ok %s" % words[1], flush=True)
        else:
            print("error: unknown command", flush=True)
    done.set()


if __name__ == "__main__":
    sys.exit(main())
