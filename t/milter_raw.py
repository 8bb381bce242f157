#!/usr/bin/python3
"""milter_raw.py -- speak the milter protocol to a milter, packet by packet,
the way a (possibly hostile) MTA could: any command in any order, odd macro
lists, bad lengths.  Used by t/milter_protocol.sh (regressions) and by
test/fuzz/milter_fuzz.py (the protocol fuzzer).

    milter_raw.py SOCKET SCRIPT      replay SCRIPT ('-' = stdin) against
                                     SOCKET (inet:PORT@HOST or unix:PATH)
    milter_raw.py SOCKET --probe S   until S seconds have passed, try to
                                     negotiate and CONNECT; print the
                                     milliseconds until the milter answered
                                     (exit 1 if it never did)

SCRIPT, one command per line ('#' starts a comment):
    negotiate                  SMFIC_OPTNEG offering every action/step
    macro CMD NAME=VALUE ...   SMFIC_MACRO for command letter CMD
    macro-raw CMD STR ...      SMFIC_MACRO with these strings as they are
                               (an odd number of them is allowed)
    connect HOST IP [PORT]     SMFIC_CONNECT (IPv4)
    helo NAME | mail ARG... | rcpt ARG... | data | eoh | eom | abort | quit
    header NAME: VALUE         (the name is everything before the first ':',
                               white space included)
    body TEXT                  one line, CRLF added
    raw HEX                    these bytes as they are (length prefix too)
    reconnect                  close the connection, open a new one (also
                               after the milter closed it)
Each command that expects a reply prints "COMMAND -> LETTERS", the reply
letters received up to the final one (c continue, r reject, t tempfail,
a accept, y replycode, d discard, h/i/m header changes, q quarantine ...),
with a replycode's text after ':'.  "EOF" means the milter closed the
connection.  Exit status 0 if the script ran to the end, 1 if the
connection was lost before (the rest of the script, up to a reconnect,
is then skipped).
"""
import socket
import struct
import sys

# Replies that end a command's answer (the others: h, i, m, q, p, ... come
# before one of these at end of message).
FINAL = set(b"acdrtyf")


def connect(spec, timeout=10.0):
    if spec.startswith("unix:") or spec.startswith("local:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(spec.split(":", 1)[1])
        return s
    if spec.startswith("inet:"):
        port, _, host = spec[5:].partition("@")
        s = socket.create_connection((host or "127.0.0.1", int(port)),
                                     timeout=timeout)
        return s
    raise ValueError("bad socket spec %r" % spec)


def packet(cmd, data=b""):
    return struct.pack(">I", len(data) + 1) + cmd + data


def z(*strs):
    """NUL-terminated strings, concatenated."""
    return b"".join((x if isinstance(x, bytes) else x.encode()) + b"\0"
                    for x in strs)


class Lost(Exception):
    pass


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise Lost()
        buf += chunk
    return buf


def read_reply(sock):
    """One reply packet: (letter, data)."""
    (n,) = struct.unpack(">I", recv_exact(sock, 4))
    if n == 0 or n > 1 << 24:
        raise Lost()
    body = recv_exact(sock, n)
    return body[:1], body[1:]


def read_answer(sock):
    """Reply letters up to the final one, e.g. 'ic' or 'y:451 4.3.0 ...'."""
    letters = ""
    while True:
        c, data = read_reply(sock)
        letters += c.decode("latin-1")
        if c == b"y":
            letters += ":" + data.rstrip(b"\0").decode("latin-1")
        if c[0] in FINAL:
            return letters


# SMFIC_OPTNEG: version 6, every action, every protocol step offered.
OPTNEG = packet(b"O", struct.pack(">III", 6, 0x1ff, 0x1fffff & ~0x0))


def encode(line):
    """A script line -> (packet bytes, expects_reply)."""
    words = line.split(" ", 1)
    cmd, rest = words[0], (words[1] if len(words) > 1 else "")
    if cmd == "negotiate":
        return OPTNEG, True
    if cmd == "macro":
        parts = rest.split()
        strs = []
        for kv in parts[1:]:
            k, _, v = kv.partition("=")
            strs += [k, v]
        return packet(b"D", parts[0].encode() + z(*strs)), False
    if cmd == "macro-raw":
        parts = rest.split()
        return packet(b"D", parts[0].encode() + z(*parts[1:])), False
    if cmd == "connect":
        p = rest.split()
        port = int(p[2]) if len(p) > 2 else 25
        return packet(b"C", z(p[0]) + b"4" + struct.pack(">H", port) +
                      z(p[1])), True
    if cmd == "helo":
        return packet(b"H", z(rest)), True
    if cmd == "mail":
        return packet(b"M", z(*rest.split())), True
    if cmd == "rcpt":
        return packet(b"R", z(*rest.split())), True
    if cmd == "data":
        return packet(b"T"), True
    if cmd == "header":
        name, _, value = rest.partition(":")
        return packet(b"L", z(name, value)), True
    if cmd == "eoh":
        return packet(b"N"), True
    if cmd == "body":
        return packet(b"B", rest.encode() + b"\r\n"), True
    if cmd == "eom":
        return packet(b"E"), True
    if cmd == "abort":
        return packet(b"A"), False
    if cmd == "quit":
        return packet(b"Q"), False
    if cmd == "raw":
        return bytes.fromhex(rest.replace(" ", "")), False
    raise ValueError("unknown command %r" % cmd)


def replay(spec, lines, out=sys.stdout):
    sock = connect(spec)
    lost = False
    try:
        for line in lines:
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line.strip() == "reconnect":
                sock.close()
                sock = connect(spec)
                lost = False
                continue
            if lost:
                continue
            pkt, want = encode(line)
            try:
                sock.sendall(pkt)
                if want:
                    if line.startswith("negotiate"):
                        c, _ = read_reply(sock)
                        ans = c.decode("latin-1")
                    else:
                        ans = read_answer(sock)
                    print("%s -> %s" % (line.split(" ")[0], ans), file=out)
            except (Lost, OSError):
                print("%s -> EOF" % line.split(" ")[0], file=out)
                lost = True
        return 1 if lost else 0
    finally:
        sock.close()


def probe_quiet(spec, limit):
    """Milliseconds until the milter answered a CONNECT, None if never."""
    import time
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        try:
            sock = connect(spec, timeout=max(0.1, limit -
                                             (time.monotonic() - t0)))
            try:
                sock.sendall(OPTNEG)
                read_reply(sock)
                sock.sendall(encode("connect probe.example 192.0.2.1")[0])
                if read_answer(sock):
                    return (time.monotonic() - t0) * 1000
            finally:
                sock.close()
        except (Lost, OSError):
            time.sleep(0.005)
    return None


def probe(spec, limit):
    ms = probe_quiet(spec, limit)
    if ms is None:
        return 1
    print("%d" % ms)
    return 0


def main():
    if len(sys.argv) == 4 and sys.argv[2] == "--probe":
        sys.exit(probe(sys.argv[1], float(sys.argv[3])))
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    f = sys.stdin if sys.argv[2] == "-" else open(sys.argv[2])
    sys.exit(replay(sys.argv[1], f.readlines()))


if __name__ == "__main__":
    main()
