#!/usr/bin/python3
"""bench/mkmsg.py -- the benchmark's messages, DKIM-signed (rsa-sha256).

    mkmsg.py KEY.pem OUT.eml SIZE [FROM [TO]]
    mkmsg.py --txt KEY.pem

The first form writes a plain-text message of about SIZE bytes (header
and body; SIZE may end in k or M) from FROM (default
sender@bench.example) to TO (default rcpt@sink.test), signed with the
RSA key KEY.pem for d=bench.example s=sel, relaxed/relaxed, and checks
the signature against the key before writing.  Lines end in LF:
smtp-source -F appends CRLF to each line, and bench/mlat does too.

The second form prints the key's DNS TXT record data for
sel._domainkey.bench.example, split into strings of at most 255 bytes
(zone file syntax).

Uses python3-dkim (Debian), the well-kept DKIM implementation in
Python; run with the system python3 (/usr/bin/python3).
"""
import base64
import email.utils
import subprocess
import sys

import dkim

DOMAIN = b"bench.example"
SELECTOR = b"sel"


def pubkey_b64(keyfile):
    der = subprocess.run(["openssl", "pkey", "-in", keyfile, "-pubout",
                          "-outform", "DER"], check=True,
                         capture_output=True).stdout
    return base64.b64encode(der).decode()


def txt_record(keyfile):
    data = "v=DKIM1; k=rsa; p=" + pubkey_b64(keyfile)
    parts = [data[i:i + 250] for i in range(0, len(data), 250)]
    return "( " + " ".join('"%s"' % p for p in parts) + " )"


def parse_size(s):
    mult = 1
    if s[-1] in "kK":
        mult, s = 1024, s[:-1]
    elif s[-1] in "mM":
        mult, s = 1024 * 1024, s[:-1]
    return int(float(s) * mult)


def make_message(size, mfrom, rcpt):
    header = (
        "From: Bench Sender <%s>\r\n"
        "To: <%s>\r\n"
        "Subject: mailwarden benchmark message of %d bytes\r\n"
        "Date: %s\r\n"
        "Message-ID: <bench-%d@bench.example>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "Content-Transfer-Encoding: 7bit\r\n" % (mfrom, rcpt, size, email.utils.formatdate(), size)
    ).encode()
    # About 600 bytes for the DKIM-Signature field added below.
    want = max(size - len(header) - 2 - 600, 100)
    words = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do "
             "eiusmod tempor incididunt ut labore et dolore magna aliqua "
             "benchmark mailwarden milter throughput latency").split()
    lines, n, i = [], 0, 0
    while n < want:
        line = []
        while sum(len(w) + 1 for w in line) < 70:
            line.append(words[i % len(words)])
            i += 1
        text = (" ".join(line)).encode() + b"\r\n"
        lines.append(text)
        n += len(text)
    return header + b"\r\n" + b"".join(lines)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--txt":
        print(txt_record(sys.argv[2]))
        return
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    keyfile, out, size = sys.argv[1], sys.argv[2], parse_size(sys.argv[3])
    mfrom = sys.argv[4] if len(sys.argv) > 4 else "sender@bench.example"
    rcpt = sys.argv[5] if len(sys.argv) > 5 else "rcpt@sink.test"
    key = open(keyfile, "rb").read()
    msg = make_message(size, mfrom, rcpt)
    sig = dkim.sign(msg, SELECTOR, DOMAIN, key,
                    canonicalize=(b"relaxed", b"relaxed"),
                    include_headers=[b"from", b"to", b"subject", b"date",
                                     b"message-id", b"mime-version",
                                     b"content-type"])
    signed = sig + msg
    txt = ("v=DKIM1; k=rsa; p=" + pubkey_b64(keyfile)).encode()

    def dnsfunc(name, timeout=5):
        return txt if name == b"sel._domainkey.bench.example." else None

    if not dkim.verify(signed, dnsfunc=dnsfunc):
        sys.exit("mkmsg: the signature does not verify")
    with open(out, "wb") as f:
        f.write(signed.replace(b"\r\n", b"\n"))


if __name__ == "__main__":
    main()
