#!/usr/bin/python3
"""
dnsfault.py -- a scriptable DNS responder for tests (python3-dnslib).

    dnsfault.py PORT [--address 127.0.0.1] [--delay MS] [--zone FILE]
                     [--negttl SECONDS]

Listens on UDP and TCP, prints "ready" once both are bound, exits 0 on
SIGTERM or SIGINT.  What it answers depends on the first label:

    timeout.*   never answers
    servfail.*  SERVFAIL
    refused.*   REFUSED
    slow.*      A 127.0.0.2, after --delay ms (100 if not given)
    garbage.*   a reply with the right id and question that announces one
                answer record and then stops: a resolver reads it and
                finds it malformed
    junk.*      random bytes that are not a DNS reply at all: a resolver
                ignores them and times out

Anything else comes from --zone FILE, lines "name [ttl] TYPE value"
(value as in a zone file; '#' starts a comment; a first label "*" is a
wildcard), e.g.

    2.0.0.127.bl.example  A    127.0.0.2
    2.0.0.127.bl.example  TXT  "listed, see https://bl.example/"

A name not in the file is NXDOMAIN, a name without the asked type NODATA;
both carry an SOA whose minimum is --negttl (default 60).  CNAMEs in the
file are followed within the file.

With --delay every answer is delayed by that many ms.  Each query is
handled on its own thread, so concurrent queries are delayed in parallel,
not one after the other.
"""

import argparse
import os
import signal
import sys
import threading
import time

from dnslib import CLASS, DNSRecord, QTYPE, RCODE, RR, SOA
from dnslib.dns import DNSBuffer
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer


class Drop(Exception):
    """Raised by the resolver to send nothing at all."""


class Raw(Exception):
    """Raised by the resolver to send these bytes instead of a reply."""

    def __init__(self, data):
        super().__init__("raw reply")
        self.data = data


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


class FaultResolver(BaseResolver):

    def __init__(self, zone, delay, slow_delay, negttl):
        self.zone = zone
        self.names = {name for name, _ in zone}
        self.delay = delay
        self.slow_delay = slow_delay
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

    def resolve(self, request, handler):
        qname = str(request.q.qname).lower()
        qtype = QTYPE[request.q.qtype]
        first = qname.split(".", 1)[0]
        reply = request.reply()

        if first == "timeout":
            raise Drop()
        if first == "slow":
            time.sleep(self.slow_delay)
            if qtype == "A":
                reply.add_answer(*RR.fromZone("%s 60 IN A 127.0.0.2" %
                                              qname))
            return reply
        if self.delay:
            time.sleep(self.delay)
        if first == "servfail":
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        if first == "refused":
            reply.header.rcode = RCODE.REFUSED
            return reply
        if first == "garbage":
            # Header: same id, QR|RD|RA, NOERROR, 1 question, 1 answer;
            # the question as asked; then an answer cut after its type.
            buf = DNSBuffer()
            request.q.pack(buf)
            q = bytes(buf.data)
            hdr = request.header.id.to_bytes(2, "big") + \
                b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00"
            raise Raw(hdr + q + b"\xc0\x0c\x00\x01")
        if first == "junk":
            raise Raw(os.urandom(7))

        # CNAME chase inside the static zone, at most 8 steps.
        name = qname
        for _ in range(8):
            rrs = self.lookup(name, qtype)
            if rrs is None:
                reply.header.rcode = RCODE.NXDOMAIN
                reply.add_auth(self.soa(qname))
                return reply
            if rrs:
                for rr in rrs:
                    reply.add_answer(rr)
                return reply
            cname = self.lookup(name, "CNAME") if qtype != "CNAME" else []
            if not cname:
                break
            reply.add_answer(cname[0])
            name = str(cname[0].rdata.label).lower()
        reply.add_auth(self.soa(qname))
        return reply


class FaultHandler(DNSHandler):

    def get_reply(self, data):
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


def main():
    ap = argparse.ArgumentParser(description="scriptable DNS responder")
    ap.add_argument("port", type=int)
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--delay", type=int, default=None,
                    help="delay every answer by MS milliseconds")
    ap.add_argument("--zone", help="static answers: 'name [ttl] TYPE value'")
    ap.add_argument("--negttl", type=int, default=60)
    args = ap.parse_args()

    zone = load_zone(args.zone) if args.zone else {}
    delay = (args.delay or 0) / 1000.0
    slow_delay = (args.delay if args.delay is not None else 100) / 1000.0
    resolver = FaultResolver(zone, delay, slow_delay, args.negttl)

    servers = []
    for tcp in (False, True):
        s = DNSServer(resolver, address=args.address, port=args.port,
                      tcp=tcp, logger=QuietLogger(), handler=FaultHandler)
        s.start_thread()
        servers.append(s)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print("ready", flush=True)
    while not done.wait(1.0):
        pass
    # The server threads are daemons: returning ends them and closes the
    # sockets, without waiting for a handler that is still sleeping.
    return 0


if __name__ == "__main__":
    sys.exit(main())
