#!/usr/bin/python3
"""
dkim_dnsproxy.py -- a DNS responder for test/dkim_corpus.sh: forwards every
query to the nsd that serves the corpus keys, except the names of a rules
file, which fail the way the corpus wants them to.

    dkim_dnsproxy.py PORT UPSTREAM_PORT RULES

RULES has lines "name timeout" (never answer) or "name servfail".  The
Mail::DKIM corpus (FAKE_DNS.dat) writes these as ~~Query timed out~~ and
~~SERVFAIL~~; t/dnsfault.py decides by the first label of a name, which
the corpus does not let us choose.  UDP only (TXT keys fit in EDNS0 UDP).
Prints "ready" once listening; exits on SIGTERM.
"""

import signal
import socket
import sys

from dnslib import DNSRecord, RCODE


def main():
    port, upstream, rules_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    rules = {}
    with open(rules_path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2 and not line.startswith("#"):
                rules[parts[0].rstrip(".").lower()] = parts[1]
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    print("ready", flush=True)
    while True:
        data, addr = sock.recvfrom(65535)
        try:
            query = DNSRecord.parse(data)
        except Exception:
            continue
        name = str(query.q.qname).rstrip(".").lower()
        action = rules.get(name)
        if action == "timeout":
            continue
        if action == "servfail":
            reply = query.reply()
            reply.header.rcode = RCODE.SERVFAIL
            sock.sendto(reply.pack(), addr)
            continue
        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        up.settimeout(2)
        try:
            up.sendto(data, ("127.0.0.1", upstream))
            answer, _ = up.recvfrom(65535)
            sock.sendto(answer, addr)
        except OSError:
            pass
        finally:
            up.close()


if __name__ == "__main__":
    main()
