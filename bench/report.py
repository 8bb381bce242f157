#!/usr/bin/python3
"""bench/report.py -- the report of bench/run.sh: a Markdown table and a CSV.

    report.py OUT.md OUT.csv

Called by run.sh only: it reads the measurements from the files run.sh
left in $OUT (tp.txt, mlat.txt, probe-*.txt, extra-*.txt, ...) and the
environment run.sh exports (STAMP, CORES, VERSIONS, CHECKS_STATE,
HWM_STATE, MEM_STATE, ...).  Ratios are what two runs on different
machines or days can be compared by.
"""
import csv
import os
import re
import statistics
import sys

OUT = os.environ["OUT"]
env = os.environ.get


def lines(name):
    return [l for l in env(name, "").splitlines() if l.strip()]


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def socket_of(cfg):
    if cfg.endswith("-unix"):
        return "unix"
    if cfg.endswith("-inet") or cfg.endswith("-nagle"):
        return "inet"
    return "-"


LABEL = {
    "none": "Postfix alone (ceiling)",
    "noop-unix": "no-op milter",
    "noop-inet": "no-op milter",
    "noop-hdr-inet": "no-op milter adding a header",
    "noop-hdr-nagle": "no-op milter adding a header, no TCP_NODELAY",
    "mw-unix": "mailwarden, all checks",
    "mw-inet": "mailwarden, all checks",
    "mw-stats-unix": "mailwarden, all checks, [stats] on + scraped",
    "rspamd-unix": "rspamd (proxy, milter mode)",
    "rspamd-inet": "rspamd (proxy, milter mode)",
    "od-unix": "opendkim + opendmarc",
    "opendkim-unix": "opendkim alone",
    "opendmarc-unix": "opendmarc alone",
}

configs = env("CONFIG_LIST", "").split()
sizes = env("BENCH_SIZES", "4k 100k").split()

# ---------------------------------------------------------- throughput --
runs = {}       # (cfg, size) -> [rates]; None for a failed run
cpu = {}        # (cfg, size) -> [milter CPU ms per message]
for l in read(os.path.join(OUT, "tp.txt")).splitlines():
    f = l.split()
    if len(f) < 4:
        continue
    cfg, size, _rep, rate = f[:4]
    runs.setdefault((cfg, size), []).append(None if rate == "FAIL"
                                            else float(rate))
    if len(f) >= 6 and f[5] != "-" and rate != "FAIL":
        cpu.setdefault((cfg, size), []).append(float(f[5]))


def cpu_median(cfg, size):
    v = cpu.get((cfg, size))
    return statistics.median(v) if v else None


def median(cfg, size):
    v = runs.get((cfg, size))
    if not v or any(x is None for x in v):
        return None
    return statistics.median(v)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt(x, nd=1):
    return "n/a" if x is None else ("%.*f" % (nd, x))


def fmt_ratio(x):
    return "n/a" if x is None else "%.2f" % x


# ------------------------------------------------------------- mlat -----
mlat = []       # dicts
for l in read(os.path.join(OUT, "mlat.txt")).splitlines():
    f = l.split(None, 1)
    if len(f) < 2:
        continue
    d = dict(re.findall(r"(\w+)=(\S+)", f[1]))
    d["target"] = f[0]
    mlat.append(d)

# ----------------------------------------------------------- memory -----
hwm = {}
for l in lines("HWM_STATE"):
    k, v, mx = l.split()[:3]
    hwm[k] = (int(v), int(mx))
mem_big = None
holds = []
for l in lines("MEM_STATE"):
    f = l.split()
    if f[0] == "big":
        mem_big = (int(f[1]), int(f[2]), " ".join(f[3:]))
    elif f[0].startswith("hold-"):
        holds.append((f[0][5:], int(f[1]), int(f[2]), f[3],
                      " ".join(f[4:])))

checks = [l.split("|", 1) for l in lines("CHECKS_STATE")]
missing = [c for c, s in checks if s != "on"]

md = []
rows = []       # CSV


def csvrow(section, config, socket, size, conns, metric, value, unit):
    rows.append([env("DATE", ""), env("CORES", ""), section, config, socket,
                 size, conns, metric,
                 "" if value is None else value, unit])


w = md.append
w("# mailwarden benchmark, %s" % env("STAMP", ""))
w("")
w("Machine: %s cores (%s), load average at the start %s, at the end %s "
  "(other work on the machine makes the figures noisier).  mailwarden %s."
  % (env("CORES"), env("CPU", "?"), env("LOADAVG0", "?"), env("LOADAVG", "?"),
     env("MW_REV", "?")))
w("Load: Postfix `smtp-source -s %s -m %s -F msg` per configuration and size, "
  "%s round(s) taken in turns, median shown; the message is DKIM-signed "
  "(rsa-2048, relaxed/relaxed) by bench.example, whose SPF, DKIM key and "
  "DMARC record (p=reject) are in the lab's nsd."
  % (env("BENCH_SESSIONS"), env("BENCH_MSGS"), env("BENCH_REPEAT")))
if env("NETNS") == "1":
    w("Client 192.0.2.25 (on loopback, in a private network namespace), "
      "HELO mx.bench.example, PTR and A of it match; listed in none of the "
      "eight DNS lists.")
else:
    w("Client 127.0.0.1 (no network namespace could be made); peers skipped.")
w("")
w("Versions: " + ", ".join(lines("VERSIONS")) + ".")
w("")
csvrow("meta", "machine", "", "", "", "cores", env("CORES"), "")
csvrow("meta", "mailwarden", "", "", "", "revision", env("MW_REV"), "")
for v in lines("VERSIONS"):
    # a peer left out (BENCH_PEERS=0) is listed by name alone
    p, _, ver = v.partition(" ")
    csvrow("meta", p, "", "", "", "version", ver.strip(), "")

w("## mailwarden's checks in this run")
w("")
w("| check | state |")
w("|---|---|")
for c, s in checks:
    w("| %s | %s |" % (c, s))
    csvrow("checks", "mw", "", "", "", c, s, "")
if missing:
    w("")
    w("**Not measured in this run: %s** (the figures below are without "
      "them)." % ", ".join(missing))
w("")

w("## Throughput through Postfix (messages/s)")
w("")
head = "| configuration | socket |"
sep = "|---|---|"
for s in sizes:
    head += " %s msg/s | x ceiling | x no-op |" % s
    sep += "---:|---:|---:|"
w(head)
w(sep)
for cfg in configs:
    line = "| %s | %s |" % (LABEL.get(cfg, cfg), socket_of(cfg))
    for s in sizes:
        m = median(cfg, s)
        noop = median("noop-" + socket_of(cfg), s) if socket_of(cfg) != "-" \
            else None
        line += " %s | %s | %s |" % (
            fmt(m) if runs.get((cfg, s)) else "n/a",
            fmt_ratio(ratio(m, median("none", s))),
            fmt_ratio(ratio(m, noop)) if cfg not in ("noop-unix", "noop-inet") else "1.00")
        csvrow("throughput", cfg, socket_of(cfg), s, env("BENCH_SESSIONS"),
               "msgs_per_s", None if m is None else round(m, 1), "msg/s")
        for i, r in enumerate(runs.get((cfg, s), [])):
            csvrow("throughput_run", cfg, socket_of(cfg), s,
                   env("BENCH_SESSIONS"), "msgs_per_s_round%d" % (i + 1),
                   "FAIL" if r is None else r, "msg/s")
    w(line)
w("")
w("CPU time the milter itself spent per message in the same runs (user + "
  "system, all its threads and processes; ms, median).  Less disturbed "
  "than msg/s by other work on the machine:")
w("")
head = "| milter | socket |"
sep = "|---|---|"
for s_ in sizes:
    head += " %s CPU ms/msg | x no-op |" % s_
    sep += "---:|---:|"
w(head)
w(sep)
for cfg in configs:
    if cfg == "none":
        continue
    line = "| %s | %s |" % (LABEL.get(cfg, cfg), socket_of(cfg))
    for s_ in sizes:
        c = cpu_median(cfg, s_)
        line += " %s | %s |" % (fmt(c, 3), fmt_ratio(ratio(
            c, cpu_median("noop-" + socket_of(cfg), s_))))
        csvrow("cpu", cfg, socket_of(cfg), s_, env("BENCH_SESSIONS"),
               "milter_cpu_ms_per_msg", None if c is None else round(c, 3),
               "ms")
    w(line)
failed = [k for k, v in runs.items() if any(x is None for x in v)]
if failed:
    w("")
    w("Failed runs (smtp-source got a refusal or an error; see "
      "smtp-source.log): " + ", ".join("%s %s" % k for k in sorted(failed)))
w("")

# -------------------------------------------------------------- targets --
w("## Where we stand on the targets")
w("")
w("| target | measured | goal | |")
w("|---|---:|---:|---|")


def verdict(ok):
    return "n/a" if ok is None else ("met" if ok else "**not met**")


def target(name, value, goal, ok, unit=""):
    w("| %s | %s%s | %s | %s |" % (name, value, unit, goal, verdict(ok)))
    csvrow("target", name, "", "", "", "value", value, unit.strip())


# Issue 17: throughput >= 0.90 x the no-op milter at both sizes and
# sockets; milter CPU per message <= 1.15 x at 4 kB, <= 1.3 x at 100 kB.
for sock in ("unix", "inet"):
    for s in sizes:
        r = ratio(median("mw-" + sock, s), median("noop-" + sock, s))
        target("throughput, mailwarden / no-op milter, %s, %s" % (sock, s),
               fmt_ratio(r), ">= 0.90", None if r is None else r >= 0.90)
for sock in ("unix", "inet"):
    for s in sizes:
        r = ratio(cpu_median("mw-" + sock, s), cpu_median("noop-" + sock, s))
        goal = 1.15 if s == "4k" else 1.3
        target("milter CPU per message, mailwarden / no-op milter, %s, %s"
               % (sock, s), fmt_ratio(r), "<= %.2f" % goal,
               None if r is None else r <= goal)
if "4k" in sizes and "100k" in sizes:
    for sock in ("unix", "inet"):
        a = cpu_median("mw-" + sock, "4k")
        b = cpu_median("mw-" + sock, "100k")
        na = cpu_median("noop-" + sock, "4k")
        nb = cpu_median("noop-" + sock, "100k")
        if None not in (a, b, na, nb):
            per = ((b - a) - (nb - na)) * 1000.0 / 96
            target("mailwarden's CPU per extra body kB over the no-op "
                   "milter's, %s (SHA-256 alone: ~0.6 us/kB)" % sock,
                   "%.1f" % per, "(report)", None, " us/kB")
for sock in ("unix", "inet"):
    for s in sizes:
        if ("rspamd-" + sock) not in configs:
            continue
        r = ratio(median("mw-" + sock, s), median("rspamd-" + sock, s))
        target("mailwarden / rspamd, %s, %s" % (sock, s), fmt_ratio(r),
               ">= 2", None if r is None else r >= 2)
for s in sizes:
    if "od-unix" in configs:
        r = ratio(median("mw-unix", s), median("od-unix", s))
        target("mailwarden / opendkim+opendmarc, unix, %s" % s,
               fmt_ratio(r), "(no target)", None)
if mem_big:
    d = mem_big[1] - mem_big[0]
    ok = "ok=1" in mem_big[2]
    target("a %s-byte message adds to peak RSS" % env("BENCH_BIG"),
           "%d" % d, "< 1024 kB", (d < 1024) if ok else None, " kB")
for name, r0, r1, thr, txt in holds:
    if name.startswith("mw"):
        n = int(env("BENCH_HOLD_CONNS", "500"))
        target("RSS with %d connections held mid-transaction" % n,
               "%.1f" % (r1 / 1024.0),
               "< 100 MB" if n >= 2000 else "< %d MB" % (100 * n // 2000 + 12),
               r1 < (100 * 1024 if n >= 2000 else (100 * n // 2000 + 12) * 1024)
               and "error=0" in txt, " MB")
        target("RSS per connection held (over idle)",
               "%.1f" % ((r1 - r0) / float(n)), "<= 32 kB",
               (r1 - r0) / float(n) <= 32 and "error=0" in txt, " kB")
dnsp = read(os.path.join(OUT, "extra-dns_parallel.sh.txt"))
if dnsp:
    m = re.findall(r"clean client[^\n=]*=\s*([\d.]+)\s*round trips?", dnsp)
    rt = float(m[-1]) if m else None
    target("connect-phase DNS (iprev, HELO, 8 zones), 100 ms per answer",
           "%.1f" % rt if rt is not None else "see below", "~ 2 round trips",
           None if rt is None else rt < 2.5, " round trips")
else:
    w("| connect-phase DNS, 100 ms per answer, 8 zones | not run "
      "(bench/dns_parallel.sh absent or BENCH_EXTRAS=0) | ~ 2 round trips "
      "| n/a |")
w("")

# ------------------------------------------------------------- latency --
w("## Time per message at the milter socket (bench/mlat, %s message)"
  % sizes[0])
w("")
w("From connect() to the reply to end-of-message, the whole milter "
  "dialogue of one message on its own connection, as Postfix does it. "
  "conns=1: the added latency of one message alone; conns=%s: under "
  "load (queueing on %s cores included)." % (env("BENCH_SESSIONS"),
                                              env("CORES")))
w("")
w("| milter | socket | conns | msgs/s | p50 ms | p90 ms | p99 ms | max ms "
  "| ok | refused | errors |")
w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for d in mlat:
    t = d["target"]
    w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        LABEL.get(t, t), socket_of(t), d.get("conns", "?"),
        d.get("msgs_per_s", "?"), d.get("p50_ms", "?"), d.get("p90_ms", "?"),
        d.get("p99_ms", "?"), d.get("max_ms", "?"), d.get("ok", "?"),
        int(d.get("reject", 0)) + int(d.get("tempfail", 0)),
        d.get("error", "?")))
    for k in ("msgs_per_s", "p50_ms", "p90_ms", "p99_ms", "max_ms"):
        csvrow("mlat", t, socket_of(t), sizes[0], d.get("conns"), k,
               d.get(k), k.split("_")[-1] if k != "msgs_per_s" else "msg/s")
w("")
w("mailwarden's results for the messages of the throughput runs (count, "
  "from its log):")
w("")
w("```")
w(env("MW_RESULTS", "").strip() or "(no log lines)")
w("```")
w("")
w("(A few tempfails are expected: the first attempts of the greylisting "
  "warm-up, before the timed runs.)")
w("")
w("mailwarden's verdict on the message, as mlat received it:")
w("")
w("```")
w(read(os.path.join(OUT, "mlat-mw-headers.txt")).strip() or "(nothing)")
w("```")
w("")

# -------------------------------------------------------------- memory --
w("## Memory")
w("")
w("Peak RSS (VmHWM) of each daemon over all the throughput runs. rspamd "
  "runs several processes (main, proxy, normal, controller, hs_helper): "
  "their peaks are added up, which counts the pages they share once per "
  "process, so the largest single process is shown too; opendkim + "
  "opendmarc are added up.")
w("")
w("| daemon | peak RSS MB | largest process MB |")
w("|---|---:|---:|")
for cfg in configs:
    if cfg in hwm:
        w("| %s (%s) | %.1f | %.1f |" % (LABEL.get(cfg, cfg), socket_of(cfg),
                                        hwm[cfg][0] / 1024.0,
                                        hwm[cfg][1] / 1024.0))
        csvrow("memory", cfg, socket_of(cfg), "", "", "peak_rss_kb",
               hwm[cfg][0], "kB")
w("")
if mem_big:
    w("A %s-byte message (DKIM-signed) through a fresh mailwarden after 50 "
      "small ones: peak RSS %.1f MB before, %.1f MB after (+%d kB). mlat: %s"
      % (env("BENCH_BIG"), mem_big[0] / 1024.0, mem_big[1] / 1024.0,
         mem_big[1] - mem_big[0], mem_big[2]))
    csvrow("memory", "mw-unix", "unix", env("BENCH_BIG"), 1,
           "big_message_rss_delta_kb", mem_big[1] - mem_big[0], "kB")
    w("")
for name, r0, r1, thr, txt in holds:
    w("%s: %s connections held after end-of-header: RSS %.1f MB idle, "
      "%.1f MB while held (%s threads). mlat: %s" % (
          LABEL.get(name, name), env("BENCH_HOLD_CONNS"), r0 / 1024.0,
          r1 / 1024.0, thr, txt))
    csvrow("memory", name, socket_of(name), "", env("BENCH_HOLD_CONNS"),
           "held_rss_kb", r1, "kB")
    w("")

# --------------------------------------------------------------- probes --
w("## What each filter concluded (headers of one delivered message)")
w("")
for cfg in configs:
    if cfg == "none":
        continue
    w("%s (%s):" % (LABEL.get(cfg, cfg), socket_of(cfg)))
    w("")
    w("```")
    w(read(os.path.join(OUT, "probe-%s.txt" % cfg)).strip() or "(none)")
    w("```")
    w("")

# --------------------------------------------------------------- extras --
for x in lines("EXTRAS_LIST"):
    name = os.path.basename(x)
    w("## %s" % name)
    w("")
    w("```")
    w(read(os.path.join(OUT, "extra-%s.txt" % name)).strip())
    w("```")
    w("")

# ---------------------------------------------------------------- notes --
w("## Notes")
w("")
for n in lines("NOTES"):
    w("- " + n)
nag = {d["target"]: d for d in mlat if d["target"].startswith("noop-hdr")}
w("- TCP_NODELAY: mailwarden and the no-op milter set it on their inet "
  "listener, and register a DATA callback (LAB.md).  Without it a milter "
  "that writes two small packets in a row (a header change, then the "
  "verdict, at end-of-message) waits for the MTA's delayed ACK: "
  + ("measured with bench/mlat, one connection, a no-op milter that adds "
     "one header: p50 %s ms with TCP_NODELAY, %s ms without. "
     % (nag.get("noop-hdr-inet", {}).get("p50_ms", "?"),
        nag.get("noop-hdr-nagle", {}).get("p50_ms", "?")) if nag else "") +
  "rspamd, opendkim and opendmarc run as Debian ships them.")
w("- rspamd: Debian's stock configuration plus local.d/override.d for the "
  "lab (name server, Redis, the same eight DNS lists instead of the stock "
  "ones, asn/fuzzy_check/surbl off as they ask rspamd.com's services); "
  "its other stock modules (regexp rules, Bayes in Redis, ...) run as a "
  "user would have them.  Postfix looks the client's name up "
  "(smtpd_peername_lookup = yes, for every configuration, the ceiling "
  "included) and hands it to the milters.")
w("- opendkim + opendmarc: verification, DMARC with opendmarc's own SPF "
  "check; no DNS lists, greylisting, HELO or iprev (they have none). "
  "opendkim resolves with libunbound, forwarded to the lab's nsd; "
  "opendmarc with the system resolver (the namespace's resolv.conf).")
w("- Greylisting: mode = all, the triplet passed before the runs (one "
  "Redis round trip per RCPT).")

with open(sys.argv[1], "w") as f:
    f.write("\n".join(md) + "\n")
with open(sys.argv[2], "w", newline="") as f:
    cw = csv.writer(f)
    cw.writerow(["date", "cores", "section", "config", "socket", "size",
                 "conns", "metric", "value", "unit"])
    cw.writerows(rows)
