#!/usr/bin/env python3
"""Fault injection against a real sessiond and real redis-servers (issue 11, "Faults").

Two sub-commands:

  faults.py proxy --upstream HOST:PORT --ready-file FILE
      A TCP relay for case 3. It writes "LISTEN_PORT CONTROL_PORT" to FILE once both are bound.
      The control port takes one-line commands: "stall" (every open connection, and every new one
      while stalled, becomes a black hole: sockets stay open, bytes are read and dropped, for
      good, like a half-open connection), "resume" (new connections forward again), "stats" (JSON).

  faults.py run [--case 1,2,3] --case1-url ... (see --help)
      The cases, each under a mixed load of several threads (creates, lookups of live sessions,
      revocations followed by a lookup of the revoked token, lookups of revoked tokens, patches):
        1. Redis SIGKILL and restart with AOF (appendfsync always),
        2. CLIENT PAUSE 2000 ALL,
        3. the proxy stops forwarding for 3 s.
      Every answer is counted and judged; each case prints one PASS/FAIL line with its figures.

The API keys come from SESSIOND_READER_KEY, SESSIOND_APP_KEY and SESSIOND_ADMIN_KEY; neither they
nor any token is ever printed.
"""

import argparse
import asyncio
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import api_keys, redis_command, rss_kib  # noqa: E402

now = time.monotonic  # CLOCK_MONOTONIC: the same clock in the driver and the proxy process

# Bounds. sessiond's Redis command timeout is 1 s.
CLIENT_TIMEOUT = 10.0          # an answer later than this counts as "no answer" (a hang)
KILL_MAX_LATENCY = 2.0         # case 1: no answer slower than this
TIMEOUT_MAX_LATENCY = 2.5      # cases 2 and 3: 1 s command timeout plus slack for a loaded machine
TIMEOUT_MIN_LATENCY = 0.9      # cases 2 and 3: some 503 must have waited for the timeout
KILL_RECOVERY_MAX = 5.0        # case 1: first 2xx within this of the restart
STALL_RECOVERY_MAX = 3.0       # case 3: first 2xx within this of the resume
SETTLE = 1.0                   # 503s may still end this long after the first 2xx of a recovery
PAUSE_SETTLE = 1.0             # case 2: latency back to normal this long after the pause ends
SETTLED_MAX_LATENCY = 0.9      # case 2: no answer slower than this once the pause has settled
RSS_GROWTH_MAX_KIB = 16 * 1024  # case 2: RSS growth over the pause
RSS_GROWTH_MAX_FRACTION = 0.10


def log(msg):
    print(f"faults: {msg}", file=sys.stderr, flush=True)


def redis_wait_ready(port, deadline):
    while now() < deadline:
        try:
            if redis_command(port, "PING", timeout=1.0) == "+PONG":
                return True
        except (OSError, RuntimeError):
            pass
        time.sleep(0.02)
    return False


# --------------------------------------------------------------------------------------------
# The load

class Session:
    __slots__ = ("token", "user", "handle", "state", "acked_n", "max_n", "acked_version",
                 "created_at", "revoked_at", "keep")

    def __init__(self, token, user, handle, created_at):
        self.token = token
        self.user = user
        self.handle = handle
        self.state = "live"          # live | uncertain (a revoke got no 2xx) | revoked (2xx)
        self.acked_n = 0             # data.n of the last patch answered 200
        self.max_n = 0               # the largest data.n any patch tried (503 ones may have applied)
        self.acked_version = 1
        self.created_at = created_at  # end of the 201 answer
        self.revoked_at = None       # end of the 2xx revoke answer
        self.keep = False            # never revoked: it must outlive the fault (checked by the sweep)


class Record:
    __slots__ = ("t0", "t1", "op", "status", "verdict")

    def __init__(self, t0, t1, op, status, verdict):
        self.t0, self.t1, self.op, self.status, self.verdict = t0, t1, op, status, verdict


class Load:
    """Worker threads, each with its own keep-alive connection and its own sessions (so the
    expected state of every token is known exactly)."""

    def __init__(self, base_url, keys, threads, tag):
        u = urllib.parse.urlsplit(base_url)
        self.host, self.port = u.hostname, u.port
        self.keys = keys
        self.nthreads = threads
        self.tag = tag
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.records = []
        self.wrong = {}            # reason -> [count, first example] (no token in them)
        self.t_start = now()
        self.sessions = []         # every session created 201, all threads
        self.threads = []

    # ---- HTTP

    def _request(self, conn_box, method, path, key, headers=None, body=None):
        """Returns (status, headers dict (lower-case), parsed body or None, t0, t1); status None
        when no answer came (timeout, reset)."""
        h = {"Authorization": f"Bearer {self.keys[key]}"}
        if headers:
            h.update(headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        t0 = now()
        try:
            if conn_box[0] is None:
                conn_box[0] = http.client.HTTPConnection(self.host, self.port, timeout=CLIENT_TIMEOUT)
            c = conn_box[0]
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            raw = r.read()
            t1 = now()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            if hdrs.get("connection", "").lower() == "close":
                c.close()
                conn_box[0] = None
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = None
            return r.status, hdrs, parsed, t0, t1
        except (OSError, http.client.HTTPException) as e:
            t1 = now()
            if conn_box[0] is not None:
                conn_box[0].close()
                conn_box[0] = None
            return None, {"x-error": type(e).__name__}, None, t0, t1

    def _note(self, t0, t1, op, status, verdict):
        with self.lock:
            self.records.append(Record(t0, t1, op, status, verdict))
            if verdict.startswith("wrong") or verdict == "noanswer":
                reason = f"{op}: {verdict.removeprefix('wrong:')}"
                entry = self.wrong.setdefault(reason, [0, f"first {status} at +{t0 - self.t_start:.3f}s "
                                                          f"in {t1 - t0:.3f}s"])
                entry[0] += 1

    @staticmethod
    def _judge_503(hdrs, body):
        if not isinstance(body, dict) or body.get("error") != "store_unavailable":
            return "wrong:503 without store_unavailable"
        if hdrs.get("retry-after") != "1":
            return "wrong:503 without Retry-After: 1"
        return "503"

    @staticmethod
    def _judge_401(body):
        if not isinstance(body, dict) or body.get("error") != "invalid_session":
            return "wrong:401 without invalid_session"
        return None

    def _judge_other(self, what, st, hdrs, body, s=None, live_401=None):
        """The answers every operation judges alike: none, a 503, a status it never gives; and with
        live_401 (lookups and patches: the verdict on a session still live) a 401, which is right
        once a revoke was tried, answered or not."""
        if st is None:
            return "noanswer"
        if st == 503:
            return self._judge_503(hdrs, body)
        if st == 401 and live_401:
            return self._judge_401(body) or ("ok" if s.state in ("revoked", "uncertain") else live_401)
        return f"wrong:{what} answered {st}"

    @staticmethod
    def _check_session(s, hdrs, body, from_lookup):
        """A 200 with a session: it must be this session, of this user, with nothing lost."""
        if not isinstance(body, dict):
            return "wrong:200 without a JSON session"
        if body.get("user_id") != s.user:
            return "wrong:a session of another user"
        if from_lookup and hdrs.get("x-session-user-id") != s.user:
            return "wrong:X-Session-User-Id of another user"
        if body.get("handle") != s.handle:
            return "wrong:another session's handle"
        if "token" in body:
            return "wrong:a token in a lookup answer"
        v = body.get("version")
        if not isinstance(v, int) or v < s.acked_version:
            return "wrong:version went back (an acknowledged patch was lost)"
        data = body.get("data")
        n = data.get("n", 0) if isinstance(data, dict) else None
        if not isinstance(n, int) or n < s.acked_n or n > s.max_n:
            return "wrong:data lost an acknowledged patch or holds one never sent"
        return None

    # ---- operations (each judged at once)

    def op_create(self, box, mine, seq):
        user = f"{self.tag}-{seq}"
        st, h, b, t0, t1 = self._request(box, "POST", "/v1/sessions", "app", body={"user_id": user, "data": {"n": 0}})
        if st == 201:
            if not isinstance(b, dict) or b.get("user_id") != user or not isinstance(b.get("token"), str) \
                    or len(b["token"]) != 43 or not isinstance(b.get("handle"), str):
                v = "wrong:bad create answer"
            else:
                s = Session(b["token"], user, b["handle"], t1)
                s.keep = len(mine) % 3 == 0
                s.acked_version = b.get("version", 1)
                mine.append(s)
                with self.lock:
                    self.sessions.append(s)
                v = "ok"
        else:
            v = self._judge_other("create", st, h, b)
        self._note(t0, t1, "create", st, v)

    def op_lookup(self, box, s, op):
        st, h, b, t0, t1 = self._request(box, "GET", "/v1/session", "reader", {"X-Session-Token": s.token})
        if st == 200:
            if s.state == "revoked":
                v = "wrong:200 for a token whose revocation was answered 2xx"
            else:
                v = self._check_session(s, h, b, True) or "ok"
                if v == "ok":
                    s.acked_version = max(s.acked_version, b["version"])
        else:
            v = self._judge_other("lookup", st, h, b, s, "wrong:401 for a live session (lost or made up)")
        self._note(t0, t1, op, st, v)

    def op_patch(self, box, s):
        n = s.max_n + 1
        s.max_n = n
        st, h, b, t0, t1 = self._request(box, "PATCH", "/v1/session", "app", {"X-Session-Token": s.token,
                                         "Content-Type": "application/merge-patch+json"}, {"n": n})
        if st == 200:
            if s.state == "revoked":
                v = "wrong:patch 200 for a revoked token"
            else:
                v = self._check_session(s, h, b, False) or "ok"
                if v == "ok" and b["data"].get("n") != n:
                    v = "wrong:patch answer without its change"
                if v == "ok":
                    s.acked_n = n
                    s.acked_version = max(s.acked_version, b["version"])
        else:
            v = self._judge_other("patch", st, h, b, s, "wrong:patch 401 for a live session")
        self._note(t0, t1, "patch", st, v)

    def op_revoke(self, box, s):
        st, h, b, t0, t1 = self._request(box, "DELETE", "/v1/session", "app", {"X-Session-Token": s.token})
        if st == 200:
            revoked = b.get("revoked") if isinstance(b, dict) else None
            if not isinstance(revoked, bool):
                v = "wrong:revoke answer without revoked"
            elif s.state == "live" and not revoked:
                v = "wrong:revoke of a live session found nothing (lost)"
            elif s.state == "revoked" and revoked:
                v = "wrong:revoke found a session already revoked"
            else:
                v = "ok"
            if s.state != "revoked":
                s.state = "revoked"
                s.revoked_at = t1
        else:
            v = self._judge_other("revoke", st, h, b)
            if st in (None, 503) and s.state == "live":
                s.state = "uncertain"   # it may still have happened
        self._note(t0, t1, "revoke", st, v)

    def worker(self, index):
        rnd = random.Random(index * 7919 + int(time.time()))
        box = [None]
        mine = []
        seq = 0
        while not self.stop_event.is_set():
            live = [s for s in mine[-200:] if s.state == "live"]
            revoked = [s for s in mine[-400:] if s.state == "revoked"]
            uncertain = [s for s in mine if s.state == "uncertain"]
            r = rnd.random()
            if not live or r < 0.20:
                seq += 1
                self.op_create(box, mine, f"{index}-{seq}")
            elif r < 0.55:
                self.op_lookup(box, rnd.choice(live), "lookup-live")
            elif r < 0.70:
                self.op_patch(box, rnd.choice(live))
            elif r < 0.85 and any(not s.keep for s in live):
                s = rnd.choice([s for s in live if not s.keep])
                self.op_revoke(box, s)
                self.op_lookup(box, s, "lookup-revoked" if s.state == "revoked" else "lookup-uncertain")
            elif r < 0.95 and revoked:
                self.op_lookup(box, rnd.choice(revoked), "lookup-revoked")
            elif uncertain:
                self.op_revoke(box, rnd.choice(uncertain))
            else:
                self.op_lookup(box, rnd.choice(live), "lookup-live")
        if box[0] is not None:
            box[0].close()

    def start(self):
        for i in range(self.nthreads):
            t = threading.Thread(target=self.worker, args=(i,), daemon=True)
            t.start()
            self.threads.append(t)

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(CLIENT_TIMEOUT + 5)
        return not any(t.is_alive() for t in self.threads)

    def sweep(self):
        """After the fault: every session's state checked once more, without touching it.
        Returns (checked, wrong, counts by state)."""
        todo = list(self.sessions)
        counts = {"live": 0, "revoked": 0, "uncertain": 0}
        errors = []
        lock = threading.Lock()

        def run(part):
            box = [None]
            for s in part:
                st, h, b, t0, t1 = self._request(box, "GET", "/v1/session?touch=false", "reader",
                                                 {"X-Session-Token": s.token})
                if st == 200 and s.state != "revoked":
                    v = self._check_session(s, h, b, True)
                elif st == 401 and s.state != "live":
                    v = self._judge_401(b)
                elif st == 200:
                    v = "sweep: 200 for a token whose revocation was answered 2xx"
                elif st == 401:
                    v = "sweep: 401 for a live session (lost)"
                else:
                    v = f"sweep: status {st}"
                with lock:
                    counts[s.state] += 1
                    if v:
                        errors.append((s, v))
            if box[0] is not None:
                box[0].close()

        parts = [todo[i::4] for i in range(4)]
        ts = [threading.Thread(target=run, args=(p,)) for p in parts]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return len(todo), errors, counts


def pct(values, p):
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def ms(x):
    return f"{x * 1000:.0f}ms"


class Verdict:
    def __init__(self, name):
        self.name = name
        self.failures = []
        self.figures = []

    def check(self, ok, what):
        if not ok:
            self.failures.append(what)
        return ok

    def fig(self, text):
        self.figures.append(text)

    def report(self):
        status = "PASS" if not self.failures else "FAIL"
        print(f"{status} {self.name}: " + ", ".join(self.figures), flush=True)
        for f in self.failures:
            print(f"    failed: {f}", flush=True)
        return not self.failures


def common_checks(v, load, window_start, window_end, max_latency):
    """Checks every case shares: every request answered, no wrong answer, the latency bound,
    and 503s only inside [window_start, window_end] (by request start and end)."""
    recs = load.records
    n = len(recs)
    by_verdict = {}
    for r in recs:
        key = r.verdict if not r.verdict.startswith("wrong") else "wrong"
        by_verdict[key] = by_verdict.get(key, 0) + 1
    wrong = by_verdict.get("wrong", 0)
    noanswer = by_verdict.get("noanswer", 0)
    n503 = by_verdict.get("503", 0)
    lat = [r.t1 - r.t0 for r in recs]
    maxlat = max(lat) if lat else 0.0
    outside = [r for r in recs if r.verdict == "503" and (r.t1 < window_start or r.t0 > window_end)]
    revoked_lookups = sum(1 for r in recs if r.op == "lookup-revoked" and r.status == 401)
    v.fig(f"{n} answers ({by_verdict.get('ok', 0)} ok, {n503} x 503, {wrong} wrong, {noanswer} unanswered)")
    v.fig(f"max latency {ms(maxlat)}")
    v.check(n >= 200, f"only {n} requests: the load did not run")
    v.check(wrong == 0, f"{wrong} wrong answers: " + "; ".join(
        f"{reason} x{count} ({example})" for reason, (count, example) in
        sorted(load.wrong.items(), key=lambda kv: -kv[1][0]) if "noanswer" not in reason))
    v.check(noanswer == 0, f"{noanswer} requests got no answer within {CLIENT_TIMEOUT}s or were reset")
    v.check(maxlat <= max_latency, f"max latency {ms(maxlat)} > {ms(max_latency)}")
    v.check(n503 > 0, "no 503 at all: the fault did not reach sessiond")
    v.check(not outside, f"{len(outside)} x 503 outside the fault window, e.g. "
            + ", ".join(f"{r.op} +{r.t0 - window_start:.2f}s..+{r.t1 - window_start:.2f}s" for r in outside[:3]))
    v.check(revoked_lookups > 0, "no lookup of a revoked token was answered 401: the invariant was not exercised")
    return recs


def sweep_checks(v, load, t_fault):
    checked, errors, counts = load.sweep()
    pre_live = sum(1 for s in load.sessions if s.created_at < t_fault and s.state == "live")
    pre_revoked = sum(1 for s in load.sessions if s.revoked_at is not None and s.revoked_at < t_fault)
    v.fig(f"sweep {checked} sessions ({counts['live']} live, {counts['revoked']} revoked, "
          f"{counts['uncertain']} uncertain; {pre_live} live and {pre_revoked} revoked from before the fault)")
    kinds = {}
    for s, e in errors:
        key = f"{e.removeprefix('wrong:')} (created {'before' if s.created_at < t_fault else 'after'} the fault)"
        kinds[key] = kinds.get(key, 0) + 1
    v.check(not errors, f"{len(errors)} sessions wrong in the final sweep: "
            + "; ".join(f"{k} x{n}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])))
    v.check(pre_live > 0 and pre_revoked > 0, "no live or no revoked session from before the fault to check")


# --------------------------------------------------------------------------------------------
# Case 1: Redis SIGKILL and restart with AOF

SPAWNED = []  # processes this driver started (the restarted Redis), stopped when it exits


def case_kill(args, keys, tokens):
    v = Verdict("redis-kill-restart-aof")
    with open(os.path.join(args.case1_redis_dir, "redis.argv"), "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0") if a]
    port = args.case1_redis_port
    load = Load(args.case1_url, keys, args.threads, "kill")
    load.start()
    time.sleep(3.0)
    t_kill = now()
    os.kill(args.case1_redis_pid, signal.SIGKILL)
    time.sleep(2.0)
    t_restart = now()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    SPAWNED.append(proc)
    with open(args.case1_pidfile, "w") as f:
        f.write(str(proc.pid))
    ready = redis_wait_ready(port, now() + 10)
    t_ready = now()
    v.check(ready, "the restarted Redis did not answer PING within 10 s")
    time.sleep(6.0)
    stopped = load.stop()
    v.check(stopped, "a load thread is still blocked")

    after = sorted((r for r in load.records if r.t0 >= t_restart and r.status is not None and 200 <= r.status < 300),
                   key=lambda r: r.t1)
    first_ok = after[0].t1 if after else None
    recovery = (first_ok - t_restart) if first_ok else float("inf")
    before = [r for r in load.records if r.t1 < t_kill]
    down = [r for r in load.records if r.verdict == "503" and r.t0 >= t_kill and r.t1 <= t_restart]
    window_end = (first_ok if first_ok else t_restart + KILL_RECOVERY_MAX) + SETTLE
    common_checks(v, load, t_kill, window_end, KILL_MAX_LATENCY)
    last503 = max((r.t1 for r in load.records if r.verdict == "503"), default=t_kill)
    v.fig(f"{len(before)} answers before the kill, {len(down)} x 503 while Redis was down")
    v.fig(f"Redis back (PING) {ms(t_ready - t_restart)} after restart")
    v.fig(f"recovery: first 2xx {ms(recovery)} after restart, last 503 at {ms(last503 - t_restart)} after restart")
    v.check(recovery <= KILL_RECOVERY_MAX, f"recovery {recovery:.2f}s > {KILL_RECOVERY_MAX}s")
    v.check(len(down) > 0, "no 503 while Redis was down")
    tokens.update(s.token for s in load.sessions)
    sweep_checks(v, load, t_kill)
    return v.report()


# --------------------------------------------------------------------------------------------
# Case 2: CLIENT PAUSE 2000 ALL

def metric_value(url, key, name):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
    try:
        c.request("GET", "/metrics", headers={"Authorization": f"Bearer {key}"})
        text = c.getresponse().read().decode()
    finally:
        c.close()
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def case_pause(args, keys, tokens):
    v = Verdict("client-pause-2s")
    load = Load(args.case2_url, keys, args.threads, "pause")
    pid = args.case2_sessiond_pid
    load.start()
    time.sleep(3.0)
    rss_before = rss_kib(pid)
    t_pause = now()
    reply = redis_command(args.case2_redis_port, "CLIENT", "PAUSE", "2000", "ALL")
    v.check(reply == "+OK", f"CLIENT PAUSE answered {reply}")
    t_end = t_pause + 2.0
    time.sleep(2.0 + 4.0)
    stopped = load.stop()
    v.check(stopped, "a load thread is still blocked")
    time.sleep(0.5)
    rss_after = rss_kib(pid)
    pending = metric_value(args.case2_url, keys["reader"], "sessiond_redis_commands_pending")

    recs = common_checks(v, load, t_pause, t_end + PAUSE_SETTLE, TIMEOUT_MAX_LATENCY)
    base = [r.t1 - r.t0 for r in recs if r.t1 < t_pause and r.t0 > t_pause - 2.0]
    during = [r.t1 - r.t0 for r in recs if r.verdict == "503"]
    settled = [r for r in recs if r.t0 >= t_end + PAUSE_SETTLE]
    settled_lat = [r.t1 - r.t0 for r in settled]
    base_p50, base_p99 = pct(base, 50), pct(base, 99)
    after_p50, after_p99 = pct(settled_lat, 50), pct(settled_lat, 99)
    after_max = max(settled_lat, default=0.0)
    v.fig(f"503 latency min/median/max {ms(min(during, default=0))}/{ms(statistics.median(during) if during else 0)}"
          f"/{ms(max(during, default=0))}")
    v.fig(f"latency p50/p99 before {ms(base_p50)}/{ms(base_p99)}, from {PAUSE_SETTLE}s after the pause "
          f"{ms(after_p50)}/{ms(after_p99)} max {ms(after_max)} ({len(settled)} answers)")
    v.fig(f"VmRSS {rss_before} kB -> {rss_after} kB")
    v.fig(f"commands pending after {pending}")
    v.check(max(during, default=0) >= TIMEOUT_MIN_LATENCY,
            f"no 503 waited for the 1 s timeout (max {ms(max(during, default=0))}): not a timeout")
    v.check(len(settled) >= 100, f"only {len(settled)} answers after the pause settled")
    # Piled-up work would show as answers waiting on the backlog (toward the 1 s timeout) or a
    # shifted median; the limits leave room for a busy 2-CPU machine, not for a queue.
    v.check(after_max <= SETTLED_MAX_LATENCY,
            f"an answer {ms(after_max)} > {ms(SETTLED_MAX_LATENCY)} after the pause settled")
    limit = 3 * base_p50 + 0.005
    v.check(after_p50 <= limit, f"median latency did not return to normal: {ms(after_p50)} > {ms(limit)}")
    growth = rss_after - rss_before
    v.check(growth <= min(RSS_GROWTH_MAX_KIB, RSS_GROWTH_MAX_FRACTION * rss_before),
            f"RSS grew by {growth} kB over the pause")
    v.check(pending is not None and pending == 0, f"{pending} Redis commands still pending after the load")
    tokens.update(s.token for s in load.sessions)
    sweep_checks(v, load, t_pause)
    return v.report()


# --------------------------------------------------------------------------------------------
# Case 3: a half-open Redis connection through the proxy

def proxy_control(port, command):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(command.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def case_stall(args, keys, tokens):
    v = Verdict("proxy-stall-3s")
    load = Load(args.case3_url, keys, args.threads, "stall")
    load.start()
    time.sleep(2.0)
    t_stall = proxy_control(args.case3_proxy_control, "stall")["t"]
    time.sleep(3.0)
    t_resume = proxy_control(args.case3_proxy_control, "resume")["t"]
    time.sleep(5.0)
    stopped = load.stop()
    v.check(stopped, "a load thread is still blocked")
    # sessiond's ROLE check (every 1 s, 1 s timeout) reaches idle stuck connections: wait for it
    # to have replaced them all, up to 10 s.
    give_up = now() + 10.0
    stats = proxy_control(args.case3_proxy_control, "stats")
    while stats["blackholed_open"] > 0 and now() < give_up:
        time.sleep(0.25)
        stats = proxy_control(args.case3_proxy_control, "stats")

    after = sorted((r for r in load.records if r.t0 >= t_resume and r.status is not None and 200 <= r.status < 300),
                   key=lambda r: r.t1)
    first_ok = after[0].t1 if after else None
    recovery = (first_ok - t_resume) if first_ok else float("inf")
    window_end = (first_ok if first_ok else t_resume + STALL_RECOVERY_MAX) + SETTLE
    recs = common_checks(v, load, t_stall, window_end, TIMEOUT_MAX_LATENCY)
    during = [r.t1 - r.t0 for r in recs if r.verdict == "503"]
    last503 = max((r.t1 for r in recs if r.verdict == "503"), default=t_stall)
    v.fig(f"503 latency min/median/max {ms(min(during, default=0))}/{ms(statistics.median(during) if during else 0)}"
          f"/{ms(max(during, default=0))}")
    v.fig(f"recovery: first 2xx {ms(recovery)} after resume, last 503 at {ms(last503 - t_resume)} after resume")
    v.fig(f"proxy: {stats['blackholed']} connections black-holed ({stats['blackholed_with_traffic']} with commands), "
          f"{stats['blackholed_open']} still open, slowest close {ms(stats['max_close_delay'])} after its first "
          f"dropped command; {stats['opened_after_resume']} new connections after resume")
    v.check(max(during, default=0) >= TIMEOUT_MIN_LATENCY,
            f"no 503 waited for the 1 s timeout (max {ms(max(during, default=0))})")
    v.check(recovery <= STALL_RECOVERY_MAX, f"recovery {recovery:.2f}s > {STALL_RECOVERY_MAX}s")
    v.check(stats["blackholed_with_traffic"] > 0, "no command reached a black-holed connection")
    v.check(stats["blackholed_open"] == 0,
            f"{stats['blackholed_open']} stuck connections still open: sessiond did not replace them")
    v.check(stats["max_close_delay"] <= TIMEOUT_MAX_LATENCY,
            f"a stuck connection was closed {stats['max_close_delay']:.2f}s after its first command")
    v.check(stats["opened_after_resume"] > 0, "no new connection after resume")
    tokens.update(s.token for s in load.sessions)
    sweep_checks(v, load, t_stall)
    return v.report()


# --------------------------------------------------------------------------------------------
# The proxy

class ProxyConn:
    def __init__(self, blackholed):
        self.blackholed = blackholed
        self.first_drop = None     # first byte from sessiond dropped
        self.closed_at = None      # sessiond closed its side
        self.opened_at = now()


def run_proxy(args):
    up_host, _, up_port = args.upstream.rpartition(":")
    state = {"stalled": False, "t_resume": None}
    conns = []

    async def pump(src, dst, conn, from_client):
        try:
            while True:
                data = await src.read(65536)
                if not data:
                    break
                if conn.blackholed:
                    if from_client and conn.first_drop is None:
                        conn.first_drop = now()
                    continue
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        if from_client:
            conn.closed_at = now()
            dst.close()
        elif not conn.blackholed:
            dst.close()

    async def on_client(reader, writer):
        conn = ProxyConn(state["stalled"])
        conns.append(conn)
        try:
            up_reader, up_writer = await asyncio.open_connection(up_host, int(up_port))
        except OSError:
            conn.closed_at = now()
            writer.close()
            return
        await asyncio.gather(pump(reader, up_writer, conn, True), pump(up_reader, writer, conn, False))

    async def on_control(reader, writer):
        line = (await reader.readline()).decode().strip()
        t = now()
        if line == "stall":
            state["stalled"] = True
            for c in conns:
                if c.closed_at is None:
                    c.blackholed = True
            reply = {"t": t}
        elif line == "resume":
            state["stalled"] = False
            state["t_resume"] = t
            reply = {"t": t}
        else:
            holes = [c for c in conns if c.blackholed]
            with_traffic = [c for c in holes if c.first_drop is not None]
            delays = [(c.closed_at if c.closed_at is not None else t) - c.first_drop for c in with_traffic]
            reply = {
                "t": t,
                "accepted": len(conns),
                "blackholed": len(holes),
                "blackholed_with_traffic": len(with_traffic),
                "blackholed_open": sum(1 for c in holes if c.closed_at is None),
                "max_close_delay": max(delays, default=0.0),
                "opened_after_resume": sum(1 for c in conns if state["t_resume"] is not None
                                           and c.opened_at >= state["t_resume"]),
            }
        writer.write(json.dumps(reply).encode() + b"\n")
        await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(on_client, "127.0.0.1", 0)
        control = await asyncio.start_server(on_control, "127.0.0.1", 0)
        lport = server.sockets[0].getsockname()[1]
        cport = control.sockets[0].getsockname()[1]
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{lport} {cport}\n")
        os.rename(tmp, args.ready_file)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()

    asyncio.run(main())
    return 0


# --------------------------------------------------------------------------------------------

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    pp = sub.add_parser("proxy")
    pp.add_argument("--upstream", required=True)
    pp.add_argument("--ready-file", required=True)
    rp = sub.add_parser("run")
    rp.add_argument("--cases", default="1,2,3")
    rp.add_argument("--threads", type=int, default=6)
    rp.add_argument("--case1-url")
    rp.add_argument("--case1-redis-port", type=int)
    rp.add_argument("--case1-redis-pid", type=int)
    rp.add_argument("--case1-redis-dir")
    rp.add_argument("--case1-pidfile", help="where the pid of the restarted redis-server is written")
    rp.add_argument("--case2-url")
    rp.add_argument("--case2-redis-port", type=int)
    rp.add_argument("--case2-sessiond-pid", type=int)
    rp.add_argument("--case3-url")
    rp.add_argument("--case3-proxy-control", type=int)
    rp.add_argument("--sessiond-log", action="append", help="a sessiond log to search for tokens (repeatable)")
    args = p.parse_args()
    if args.cmd == "proxy":
        return run_proxy(args)

    keys = api_keys("faults.py")
    cases = {"1": case_kill, "2": case_pause, "3": case_stall}
    ok = True
    try:
        ok = run_cases(args, keys, cases)
    finally:
        for proc in SPAWNED:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return 0 if ok else 1


def logs_hold_tokens(paths, tokens):
    """True (and says which log, never the token) when a token of this run is in a log."""
    import re
    found = False
    for path in paths:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        hits = 0
        for m in re.finditer(r"[A-Za-z0-9_-]{43,}", text):  # every 43-character window of each run
            run = m.group(0)
            hits += sum(1 for i in range(len(run) - 42) if run[i:i + 43] in tokens)
        if hits:
            print(f"FAIL token-leak: {hits} session tokens appear in {path}", flush=True)
            found = True
    return found


def run_cases(args, keys, cases):
    ok = True
    tokens = set()
    for c in args.cases.split(","):
        started = now()
        try:
            passed = cases[c](args, keys, tokens)
        except Exception as e:  # a crash of the driver is a failure, never a pass
            print(f"FAIL case {c}: the driver raised {type(e).__name__}: {e}", flush=True)
            passed = False
        log(f"case {c} took {now() - started:.1f}s")
        ok = ok and passed
    if args.sessiond_log:
        if logs_hold_tokens(args.sessiond_log, tokens):
            ok = False
        else:
            log(f"no token of the {len(tokens)} this run made is in the sessiond logs")
    return ok


if __name__ == "__main__":
    sys.exit(main())
