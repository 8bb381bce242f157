#!/usr/bin/python3
"""rawmilter.py -- a minimal milter client (the MTA side of the Sendmail 8
milter protocol, version 6), for what miltertest cannot send: one header
field larger than 64 kB (miltertest overflows its own buffer above ~1 kB).

    t/rawmilter.py [--offer 64k|256k|1m] HOST PORT HEADER_BYTES

It negotiates like Sendmail 8.17 (offering SMFIP_MDS_256K or SMFIP_MDS_1M
as its MilterMaxDataSize says), sends one message from 192.0.2.10 whose
X-Big field's value is HEADER_BYTES long (folded every 70 bytes, one
milter packet as the MTA sends it), and prints one line per reply:

    negotiated mds=1m
    header X-Big continue
    eom insheader Authentication-Results
    eom continue

or "<step> closed" when the filter drops the connection.  Exit 0 when the
message got through to end of message, 1 otherwise.
"""
import socket
import struct
import sys

SMFIP_NOCONNECT, SMFIP_NOHELO, SMFIP_NOMAIL, SMFIP_NORCPT = 0x1, 0x2, 0x4, 0x8
SMFIP_NOBODY, SMFIP_NOHDRS, SMFIP_NOEOH, SMFIP_NR_HDR = 0x10, 0x20, 0x40, 0x80
SMFIP_NODATA = 0x200
SMFIP_NR_CONN, SMFIP_NR_HELO, SMFIP_NR_MAIL = 0x1000, 0x2000, 0x4000
SMFIP_NR_RCPT, SMFIP_NR_DATA, SMFIP_NR_EOH = 0x8000, 0x10000, 0x40000
SMFIP_NR_BODY = 0x80000
SMFIP_MDS_256K, SMFIP_MDS_1M = 0x10000000, 0x20000000
REPLIES = {b"c": "continue", b"a": "accept", b"r": "reject",
           b"t": "tempfail", b"d": "discard", b"y": "replycode"}
MODS = {b"h": "addheader", b"i": "insheader", b"m": "chgheader",
        b"q": "quarantine", b"+": "addrcpt", b"-": "delrcpt"}


class Closed(Exception):
    pass


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        b = s.recv(n - len(buf))
        if not b:
            raise Closed()
        buf += b
    return buf


def send(s, cmd, data=b""):
    s.sendall(struct.pack("!I", len(data) + 1) + cmd + data)


def recv(s):
    (n,) = struct.unpack("!I", recv_exact(s, 4))
    pkt = recv_exact(s, n)
    return pkt[:1], pkt[1:]


def step(s, name, cmd, data, want_reply):
    """Send one command; print its reply (or the modifications at eom)."""
    try:
        send(s, cmd, data)
        if not want_reply:
            return True
        while True:
            r, body = recv(s)
            if r in MODS:
                print("%s %s %s" % (name, MODS[r],
                                    body[4:].split(b"\0")[0].decode()
                                    if r == b"i" else
                                    body.split(b"\0")[0].decode()))
                continue
            text = REPLIES.get(r, repr(r))
            if r == b"y":
                text += " " + body.rstrip(b"\0").decode(errors="replace")
            print("%s %s" % (name, text))
            return r == b"c"
    except (Closed, ConnectionResetError, BrokenPipeError):
        print("%s closed" % name)
        return False


def main(argv):
    offer = "1m"
    if len(argv) > 1 and argv[0] == "--offer":
        offer = argv[1]
        argv = argv[2:]
    host, port, size = argv[0], int(argv[1]), int(argv[2])
    mds = {"64k": 0, "256k": SMFIP_MDS_256K, "1m": SMFIP_MDS_1M}[offer]
    s = socket.create_connection((host, port), timeout=30)
    send(s, b"O", struct.pack("!III", 6, 0x1FF, 0x1FFFFF | mds))
    r, body = recv(s)
    if r != b"O":
        print("negotiate failed")
        return 1
    _, _, proto = struct.unpack("!III", body[:12])
    print("negotiated mds=%s" % ("1m" if proto & SMFIP_MDS_1M else
                                 "256k" if proto & SMFIP_MDS_256K else
                                 "64k"))

    def do(name, flag_no, flag_nr, cmd, data):
        if proto & flag_no:
            return True
        return step(s, name, cmd, data, not proto & flag_nr)

    value = b" start"
    while len(value) < size:
        value += b"\r\n\t" + b"b" * min(70, size - len(value) - 3)
    value = value[:size]
    ok = (do("connect", SMFIP_NOCONNECT, SMFIP_NR_CONN, b"C",
             b"mx.example.test\0" + b"4" + struct.pack("!H", 25) +
             b"192.0.2.10\0")
          and do("helo", SMFIP_NOHELO, SMFIP_NR_HELO, b"H",
                 b"mx.example.test\0")
          and do("mail", SMFIP_NOMAIL, SMFIP_NR_MAIL, b"M",
                 b"<a@sender.test>\0")
          and do("rcpt", SMFIP_NORCPT, SMFIP_NR_RCPT, b"R",
                 b"<b@example.net>\0")
          and do("data", SMFIP_NODATA, SMFIP_NR_DATA, b"T", b"")
          and do("header From", SMFIP_NOHDRS, SMFIP_NR_HDR, b"L",
                 b"From\0 <a@sender.test>\0")
          and do("header X-Big", SMFIP_NOHDRS, SMFIP_NR_HDR, b"L",
                 b"X-Big\0" + value + b"\0")
          and do("eoh", SMFIP_NOEOH, SMFIP_NR_EOH, b"N", b"")
          and do("body", SMFIP_NOBODY, SMFIP_NR_BODY, b"B", b"hello\r\n")
          and step(s, "eom", b"E", b"", True))
    try:
        send(s, b"Q")
    except OSError:
        pass
    s.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
