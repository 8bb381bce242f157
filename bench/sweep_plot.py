#!/usr/bin/python3
"""bench/sweep_plot.py -- charts and report of bench/sweep.sh.

    sweep_plot.py DIR

Reads DIR/sweep.txt (written by bench/sweep.sh, one line per point:
"PART X CONFIG MSGS SECS MSG_PER_S MILTER_CPU_MS POSTFIX_CPU_MS", or for
the hold part "hold N CONFIG RSS0_KB RSS1_KB THREADS") and writes into
DIR one PNG per part (msg/s on the left, CPU per message on the right;
RSS for the hold part) with Postfix alone and the no-op milter on the
same axes as mailwarden, and README.md with the tables.  Uses
python3-matplotlib (Debian), without a display.
"""
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

D = sys.argv[1]
env = os.environ.get

NAMES = {
    "none": "Postfix alone",
    "noop-unix": "no-op milter",
    "mw-unix": "mailwarden, all checks",
    "mw-zones": "mailwarden, all checks",
}
STYLE = {
    "none": dict(color="tab:gray", marker="s", linestyle="--"),
    "noop-unix": dict(color="tab:blue", marker="o"),
    "mw-unix": dict(color="tab:red", marker="^"),
    "mw-zones": dict(color="tab:red", marker="^"),
}
PARTS = {
    "size": ("message size", "bytes", True),
    "rcpt": ("recipients per message", "recipients", True),
    "zones": ("DNSBL zones in [dnsbl]", "zones", False),
    "sessions": ("concurrent SMTP sessions", "sessions", True),
}


def num(v):
    try:
        return float(v)
    except ValueError:
        return None


rows = {}
holds = []
with open(os.path.join(D, "sweep.txt"), encoding="utf-8") as f:
    for line in f:
        p = line.split()
        if not p:
            continue
        if p[0] == "hold" and len(p) >= 6:
            holds.append((int(p[1]), p[2], int(p[3]), int(p[4]), int(p[5])))
        elif len(p) >= 8:
            rows.setdefault(p[0], []).append(
                dict(x=p[1], cfg=p[2], n=int(p[3]), secs=num(p[4]),
                     rate=num(p[5]), cpu=num(p[6]), pcpu=num(p[7])))


def human(b):
    b = float(b)
    for unit, m in (("M", 1 << 20), ("k", 1 << 10)):
        if b >= m:
            return "%g %sB" % (round(b / m, 1), unit)
    return "%d B" % b


def series(part):
    """config -> sorted [(x, row)]; a row with x "-" is a constant."""
    out, const = {}, {}
    for r in rows.get(part, []):
        if r["x"] == "-":
            const[r["cfg"]] = r
        else:
            out.setdefault(r["cfg"], []).append((float(r["x"]), r))
    for v in out.values():
        v.sort(key=lambda t: t[0])
    return out, const


md = []
md.append("# Cost curves (bench/sweep.sh)\n")
md.append("%s, %s cores (%s), mailwarden %s; load average %s at the start, "
          "%s at the end.  Up to %s messages per point (%s sessions unless "
          "the sessions part says otherwise), SWEEP_SCALE=%s.  Each point: "
          "one smtp-source run through the same Postfix after a short "
          "warm-up; milter CPU is mailwarden's supervisor and worker (or the "
          "no-op milter), Postfix CPU all of Postfix's processes, per "
          "message, from /proc (10 ms ticks).\n" % (
              env("STAMP", "?"), env("CORES", "?"), env("CPU", "?"),
              env("MW_REV", "?"), env("LOADAVG0", "?"), env("LOADAVG", "?"),
              env("SWEEP_MSGS", "?"), env("SESSIONS", "?"),
              env("SWEEP_SCALE", "1")))

for part, (title, unit, logx) in PARTS.items():
    if part not in rows:
        continue
    ser, const = series(part)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.5))
    xs_all = sorted({x for v in ser.values() for x, _ in v})
    for cfg, pts in list(ser.items()) + [(c, None) for c in const]:
        st = STYLE.get(cfg, {})
        label = NAMES.get(cfg, cfg)
        if pts is None:		# measured once: a flat line
            r = const[cfg]
            xs = xs_all
            rate = [r["rate"]] * len(xs)
            cpu = [r["cpu"]] * len(xs)
            pcpu = [r["pcpu"]] * len(xs)
            label += " (does not depend on it)"
        else:
            xs = [x for x, _ in pts]
            rate = [r["rate"] for _, r in pts]
            cpu = [r["cpu"] for _, r in pts]
            pcpu = [r["pcpu"] for _, r in pts]
        a1.plot(xs, rate, label=label, **st)
        if cfg == "none":
            a2.plot(xs, pcpu, label="Postfix alone: Postfix's CPU", **st)
        elif any(c is not None for c in cpu):
            a2.plot(xs, cpu, label=label + ": milter CPU", **st)
    for a in (a1, a2):
        if logx:
            a.set_xscale("log")
        a.set_xlabel(unit)
        a.grid(True, which="both", alpha=0.3)
    a1.set_ylabel("messages / s")
    a1.set_title("throughput vs " + title)
    a2.set_ylabel("ms CPU per message")
    a2.set_title("CPU per message vs " + title)
    if part in ("size", "rcpt"):
        a1.set_yscale("log")
        a2.set_yscale("log")
    a1.legend(fontsize=8)
    a2.legend(fontsize=8)
    fig.tight_layout()
    png = "sweep-%s.png" % part
    fig.savefig(os.path.join(D, png), dpi=90)
    plt.close(fig)

    md.append("\n## vs %s\n\n![%s](%s)\n" % (title, title, png))
    md.append("| %s | configuration | messages | msg/s | milter CPU ms/msg "
              "| Postfix CPU ms/msg |" % unit)
    md.append("|---|---|---|---|---|---|")
    for r in rows[part]:
        x = r["x"]
        if part == "size" and x != "-":
            x = human(x)
        md.append("| %s | %s | %d | %s | %s | %s |" % (
            x, NAMES.get(r["cfg"], r["cfg"]), r["n"],
            "%.1f" % r["rate"] if r["rate"] is not None else "FAIL",
            "%.3f" % r["cpu"] if r["cpu"] is not None else "-",
            "%.3f" % r["pcpu"] if r["pcpu"] is not None else "-"))
    # where mailwarden's cost grows: the extra CPU over the no-op milter
    mw = [(x, r) for x, r in ser.get("mw-unix", ser.get("mw-zones", []))]
    noop = dict(ser.get("noop-unix", []))
    cn = const.get("noop-unix")
    ext = []
    for x, r in mw:
        n = noop.get(x, cn)
        if n is not None and r["cpu"] is not None and n["cpu"] is not None:
            ext.append((x, r["cpu"] - n["cpu"]))
    if len(ext) >= 2:
        (x0, e0), (x1, e1) = ext[0], ext[-1]
        if x1 > x0:
            per = (e1 - e0) / (x1 - x0)
            unitname = {"size": "kB", "rcpt": "recipient", "zones": "zone",
                        "sessions": "session"}[part]
            if part == "size":
                per *= 1024
            md.append("\nmailwarden's CPU over the no-op milter's: %.3f ms "
                      "at %s, %.3f ms at %s: %.2f µs per extra %s.\n" % (
                          e0, human(x0) if part == "size" else "%g" % x0,
                          e1, human(x1) if part == "size" else "%g" % x1,
                          per * 1000, unitname))

if holds:
    fig, a = plt.subplots(figsize=(7, 4.5))
    by = {}
    for n, cfg, r0, r1, th in holds:
        by.setdefault(cfg, []).append((n, r1 / 1024.0, r0 / 1024.0, th))
    for cfg, pts in by.items():
        pts.sort()
        a.plot([p[0] for p in pts], [p[1] for p in pts],
               label=NAMES.get(cfg, cfg), **STYLE.get(cfg, {}))
    a.axhline(100, color="tab:green", linestyle=":",
              label="target: 2,000 connections < 100 MB")
    a.set_xscale("log")
    a.set_xlabel("connections held mid-transaction (after end of header)")
    a.set_ylabel("RSS, MB (all of the milter's processes)")
    a.set_title("memory vs held connections (Postfix alone: none held)")
    a.grid(True, which="both", alpha=0.3)
    a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(D, "sweep-hold.png"), dpi=90)
    plt.close(fig)
    md.append("\n## RSS vs connections held\n\n![RSS](sweep-hold.png)\n")
    md.append("| connections | configuration | RSS idle | RSS held | per "
              "connection | threads |")
    md.append("|---|---|---|---|---|---|")
    for n, cfg, r0, r1, th in holds:
        md.append("| %d | %s | %.1f MB | %.1f MB | %.1f kB | %d |" % (
            n, NAMES.get(cfg, cfg), r0 / 1024.0, r1 / 1024.0,
            (r1 - r0) / float(n), th))

with open(os.path.join(D, "README.md"), "w", encoding="utf-8") as f:
    f.write("\n".join(md) + "\n")
