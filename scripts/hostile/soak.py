#!/usr/bin/env python3
"""Sampler of scripts/soak: runs the wrk mix for --seconds while sampling sessiond every 10 s.

    SESSIOND_URL=... SESSIOND_READER_KEY=... soak.py --pid PID --seconds S --warmup W \
        --table FILE -- wrk ARGS...

Each 10 s it reads sessiond's VmRSS (/proc/PID/status), its open fds (/proc/PID/fd) and, from
GET /metrics, the answers counted by sessiond_http_requests_total (route /metrics left out):
all of them, and those with a status other than 200 or 201 (errors). It prints the table as it
goes (and writes it to --table), then checks: RSS and fds grew < 5 % from the sample at the end
of the warm-up to the last sample (the largest later sample is shown beside it), 0 errors in
the metrics, and 0 unexpected answers and 0 socket errors at wrk. Exit 0 when all hold.
"""
import argparse
import os
import re
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import open_fds, rss_kib  # noqa: E402

LINE = re.compile(r'^sessiond_http_requests_total\{([^}]*)\}\s+([0-9.eE+]+)', re.M)


def counts(url, key):
    req = urllib.request.Request(url + "/metrics", headers={"Authorization": "Bearer " + key})
    text = urllib.request.urlopen(req, timeout=5).read().decode()
    total = errors = 0
    for labels, value in LINE.findall(text):
        lab = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if lab.get("route") == "/metrics":
            continue
        n = int(float(value))
        total += n
        if lab.get("status") not in ("200", "201"):
            errors += n
    return total, errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--seconds", type=int, required=True)
    ap.add_argument("--warmup", type=int, required=True)
    ap.add_argument("--interval", type=int, default=10)
    ap.add_argument("--table")
    ap.add_argument("--growth", type=float, default=5.0, help="largest allowed growth in percent")
    ap.add_argument("wrk", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    wrk_cmd = args.wrk[1:] if args.wrk and args.wrk[0] == "--" else args.wrk
    url = os.environ["SESSIOND_URL"]
    key = os.environ["SESSIOND_READER_KEY"]

    out = open(args.table, "w") if args.table else None

    def emit(line):
        print(line, flush=True)
        if out:
            out.write(line + "\n")
            out.flush()

    base_total, base_err = counts(url, key)
    emit(f"{'t (s)':>6} {'RSS (KiB)':>10} {'fds':>5} {'requests':>10} {'req/s':>8} {'errors':>7}")
    wrk = subprocess.Popen(wrk_cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t0 = time.monotonic()
    samples = []
    prev_total = base_total
    k = 1
    while True:
        target = t0 + k * args.interval
        if target > t0 + args.seconds + 0.5:
            break
        while time.monotonic() < target:
            if wrk.poll() is not None:
                break
            time.sleep(0.05)
        if wrk.poll() is not None and time.monotonic() < target - 1:
            emit(f"wrk ended early (status {wrk.returncode})")
            break
        t = time.monotonic() - t0
        total, err = counts(url, key)
        s = (round(t), rss_kib(args.pid), open_fds(args.pid), total - base_total, err - base_err, (total - prev_total) / args.interval)
        prev_total = total
        samples.append(s)
        emit(f"{s[0]:>6} {s[1]:>10} {s[2]:>5} {s[3]:>10} {s[5]:>8.0f} {s[4]:>7}")
        k += 1
    wrk_out, _ = wrk.communicate(timeout=120)
    summary = next((l for l in wrk_out.splitlines() if l.startswith("SOAK ")), None)
    ok = True
    if summary is None:
        emit("no SOAK line from wrk:\n" + wrk_out[-2000:])
        return 1
    emit(summary)
    fields = dict(kv.split("=", 1) for kv in summary.split()[1:])
    for name in ("unexpected", "non2xx", "connect", "read", "write", "timeout"):
        if int(fields[name]) != 0:
            emit(f"FAIL: wrk counted {fields[name]} {name}")
            ok = False
    total, err = counts(url, key)
    if err - base_err != 0:
        emit(f"FAIL: sessiond answered {err - base_err} requests with a status other than 200/201")
        ok = False
    after = [s for s in samples if s[0] >= args.warmup]
    if len(after) < 2:
        emit("FAIL: too few samples after the warm-up")
        return 1
    base, last = after[0], after[-1]
    for idx, name in ((1, "RSS"), (2, "fds")):
        growth = (last[idx] - base[idx]) * 100.0 / base[idx]
        peak = (max(s[idx] for s in after) - base[idx]) * 100.0 / base[idx]
        good = growth < args.growth
        ok = ok and good
        emit(f"{'ok  ' if good else 'FAIL'} {name}: {base[idx]} at {base[0]} s -> {last[idx]} at {last[0]} s: "
             f"{growth:+.2f} % (largest later sample {peak:+.2f} %; limit {args.growth:.0f} %)")
    emit(f"{'ok  ' if ok else 'FAIL'} soak: {total - base_total} requests counted by sessiond, "
         f"{err - base_err} errors, wrk {fields['rps']} req/s, p99 {float(fields['p99_us']) / 1000:.2f} ms, "
         f"{fields['creates']} creates, {fields['revokes']} revokes")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
