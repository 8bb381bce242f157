#!/usr/bin/python3
"""smtp_load.py -- steady SMTP load for t/crash.sh: THREADS clients send one
message after another to HOST:PORT until the file STOPFILE exists, each
message with its own Message-ID.  One line per message on stdout:

    <message-id> CODE SECONDS  CODE = the reply to the end of data (250, 451 ...),
                           or the 4xx/5xx that refused an earlier command,
                           or "ERR" if the connection failed without a reply;
                           SECONDS the time the transaction took

    smtp_load.py HOST PORT THREADS STOPFILE
"""
import os
import smtplib
import sys
import threading
import time

host, port, nthreads, stopfile = (sys.argv[1], int(sys.argv[2]),
                                  int(sys.argv[3]), sys.argv[4])
out_lock = threading.Lock()


def one(tid, n):
    mid = "<load.%d.%d.%d@sender.test>" % (os.getpid(), tid, n)
    msg = ("From: <load@sender.test>\r\nTo: <rcpt@maildir.test>\r\n"
           "Subject: load %d.%d\r\nMessage-ID: %s\r\n\r\nhello\r\n"
           % (tid, n, mid))
    code = "ERR"
    t0 = time.monotonic()
    try:
        s = smtplib.SMTP(host, port, timeout=30)
        try:
            # a client the checks look at (127.0.0.1 is trusted)
            s.ehlo("client.example")
            c, _ = s.docmd("XCLIENT", "ADDR=192.0.2.10 NAME=mx.example.test")
            if c != 220:
                raise smtplib.SMTPResponseException(c, b"XCLIENT")
            s.ehlo("mx.example.test")
            c, _ = s.mail("load@sender.test")
            if c != 250:
                code = str(c)
            else:
                c, _ = s.rcpt("rcpt@maildir.test")
                if c not in (250, 251):
                    code = str(c)
                else:
                    c, _ = s.data(msg)
                    code = str(c)
        except smtplib.SMTPResponseException as e:
            code = str(e.smtp_code)
        finally:
            try:
                s.quit()
            except Exception:
                pass
    except (OSError, smtplib.SMTPException):
        pass
    with out_lock:
        print(mid, code, "%.3f" % (time.monotonic() - t0), flush=True)


def worker(tid):
    n = 0
    while not os.path.exists(stopfile):
        n += 1
        one(tid, n)
        time.sleep(float(os.environ.get("LOAD_PAUSE", "0.25")))


threads = [threading.Thread(target=worker, args=(i,))
           for i in range(nthreads)]
for t in threads:
    t.start()
for t in threads:
    t.join()
