#!/usr/bin/python3
"""milter_fuzz.py -- milter-protocol fuzzer: raw packets against a running
mailwarden (built with ASan), the way a hostile peer on the socket could
send them: mutated valid transactions, commands out of order, bad
lengths, truncated and oversized packets, odd macro lists.

    milter_fuzz.py SOCKET SECONDS [--seed N] [--odd-macros] [--save DIR]

After every case the milter must still answer a fresh connection (the
worker may have been restarted by the supervisor: that counts as a crash,
and the case is saved to DIR as a milter_raw.py script for replay).  Odd
macro lists crash libmilter 8.17 itself (smfi_getsymval reads past its
array; see README security section): they are only sent with
--odd-macros.  Prints a summary line: cases, commands, crashes.
Exit status 1 if a case made the milter stop answering for good.
"""
import os
import random
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "t"))
import milter_raw  # noqa: E402

HEADERS = [
    ("From", " <a@sender.test>"), ("From ", " <ceo@bank.example>"),
    ("To", " <b@example.net>"), ("Subject", " hi"),
    ("Authentication-Results", " mx.mailwarden.test; dkim=pass"),
    ("Authentication-Results ", " mx.mailwarden.test.; spf=pass"),
    ("DKIM-Signature", " v=1; a=rsa-sha256; d=bank.example; s=s; h=from;"
     " bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA"),
    ("Received", " from x by y"), ("Message-ID", " <1@x>"),
]


def valid_transaction(rnd):
    s = ["negotiate", "macro C j=mx.mailwarden.test {daemon_name}=smtpd",
         "connect %s 192.0.2.%d" % (rnd.choice(["mx.example.test",
                                                "unknown", "[192.0.2.9]"]),
                                    rnd.randint(1, 254)),
         "macro H {tls_version}=TLSv1.3",
         "helo " + rnd.choice(["mx.example.test", "x", "[1.2.3.4]", ""])]
    for _ in range(rnd.randint(1, 2)):
        if rnd.random() < 0.3:
            s.append("macro M {auth_authen}=alice i=ABC")
        else:
            s.append("macro M i=Q%d" % rnd.randint(0, 99))
        s.append("mail <%s>" % rnd.choice(["a@sender.test", "", "x@[1.2.3.4]",
                                           "ceo@bank.example"]))
        for _ in range(rnd.randint(1, 3)):
            s.append("rcpt <%s>" % rnd.choice(["b@example.net",
                                               "postmaster@example.net"]))
        s.append("data")
        for _ in range(rnd.randint(0, 6)):
            n, v = rnd.choice(HEADERS)
            s.append("header %s:%s" % (n, v))
        s.append("eoh")
        for _ in range(rnd.randint(0, 2)):
            s.append("body " + "x" * rnd.randint(0, 300))
        s.append(rnd.choice(["eom", "eom", "abort"]))
    s.append("quit")
    return s


def mutate_lines(rnd, lines, odd):
    lines = list(lines)
    for _ in range(rnd.randint(1, 4)):
        r = rnd.random()
        i = rnd.randrange(len(lines))
        if r < 0.2:
            del lines[i]
        elif r < 0.4:
            lines.insert(i, rnd.choice(lines))
        elif r < 0.55:
            j = rnd.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif r < 0.65:
            lines.insert(i, "abort")
        elif r < 0.75 and odd:
            lines.insert(i, "macro-raw %s %s" % (rnd.choice("CHMRTLNEB"),
                                                " ".join("x%d" % k for k in
                                                         range(rnd.choice(
                                                             [1, 3, 5])))))
        elif r < 0.85:
            lines.insert(i, "macro %s %s=%s" % (rnd.choice("CHMRTLNEB"),
                                               rnd.choice(["i", "{auth_authen}",
                                                           "j", "{x}", ""]),
                                               "v" * rnd.randint(0, 50)))
        else:
            # a random raw packet: any command letter, any payload
            payload = bytes(rnd.randrange(256) for _ in
                            range(rnd.choice([0, 1, 5, 50])))
            cmd = bytes([rnd.choice(b"ABCDEHKLMNOQRTU" + bytes([rnd.randrange(256)]))])
            lines.insert(i, "raw " + milter_raw.packet(cmd, payload).hex())
    return lines


def bad_length_packet(rnd):
    """A packet whose length field lies, or is huge, or zero."""
    kind = rnd.randrange(4)
    if kind == 0:
        return struct.pack(">I", 0)
    if kind == 1:
        return struct.pack(">I", rnd.choice([0xffffffff, 1 << 30, 2 << 20]))
    if kind == 2:
        return struct.pack(">I", 100) + b"M<a@b>\0"      # truncated
    return struct.pack(">I", 3) + b"Lx\0y\0z\0"          # longer than said


def run_case(spec, lines, extra=None):
    """Send one case; returns the number of commands sent."""
    try:
        sock = milter_raw.connect(spec, timeout=5)
    except OSError:
        return 0
    sent = 0
    try:
        for line in lines:
            try:
                pkt, want = milter_raw.encode(line)
            except (ValueError, IndexError):
                continue
            sock.sendall(pkt)
            sent += 1
            if want:
                if line.startswith("negotiate"):
                    milter_raw.read_reply(sock)
                else:
                    milter_raw.read_answer(sock)
        if extra is not None:
            sock.sendall(extra)
            sent += 1
            sock.settimeout(1)
            try:
                sock.recv(100)
            except OSError:
                pass
    except (milter_raw.Lost, OSError):
        pass
    finally:
        sock.close()
    return sent


def answering(spec, limit=10.0):
    return milter_raw.probe_quiet(spec, limit) is not None


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    spec, seconds = args[0], float(args[1])
    seed, odd, save = int(time.time()), False, None
    i = 2
    while i < len(args):
        if args[i] == "--seed":
            seed = int(args[i + 1])
            i += 1
        elif args[i] == "--odd-macros":
            odd = True
        elif args[i] == "--save":
            save = args[i + 1]
            i += 1
        i += 1
    rnd = random.Random(seed)
    t0 = time.monotonic()
    cases = cmds = down = 0
    while time.monotonic() - t0 < seconds:
        lines = valid_transaction(rnd)
        extra = None
        r = rnd.random()
        if r < 0.7:
            lines = mutate_lines(rnd, lines, odd)
        elif r < 0.85:
            extra = bad_length_packet(rnd)
            lines = lines[:rnd.randrange(1, len(lines))]
        cases += 1
        cmds += run_case(spec, lines, extra)
        if cases % 25 == 0 or extra is not None:
            if not answering(spec):
                down += 1
                if save:
                    os.makedirs(save, exist_ok=True)
                    with open(os.path.join(save, "case-%d-%d" % (seed, cases)),
                              "w") as f:
                        f.write("\n".join(lines) + "\n")
                if not answering(spec, 10):
                    print("milter_fuzz: the milter stopped answering "
                          "(seed %d, case %d)" % (seed, cases))
                    return 1
    print("milter_fuzz: seed %d, %d cases, %d commands, %.0f s, %d times not "
          "answering" % (seed, cases, cmds, time.monotonic() - t0, down))
    return 0


if __name__ == "__main__":
    sys.exit(main())
