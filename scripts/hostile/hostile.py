#!/usr/bin/env python3
"""Hand-written hostile inputs against a running sessiond (issue 11, "Fuzzing", last part).

    SESSIOND_URL=http://127.0.0.1:PORT SESSIOND_READER_KEY=... SESSIOND_APP_KEY=... \
    SESSIOND_ADMIN_KEY=... hostile.py --pid PID [--big-url URL] [--bound 1.0] [--only NAME,...]

Black box, raw sockets only (so malformed bytes reach the server as written). Every case checks
its documented answer (README "Errors", openapi.yaml) and, while it runs and right after it, a
prober thread does a normal lookup on a fresh connection every 100 ms: each must answer 200, and
all but a few (2, or 5 % of them) within --bound seconds. Cases where the server has no documented answer (oversized headers and URLs)
record what happens and fail only on a 5xx, a hang or a dead server. Tokens and keys are never
printed. Exit status 0 when every case passed, 1 otherwise.
"""
import argparse
import base64
import json
import os
import secrets
import select
import socket
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import api_keys, env, open_fds, rss_kib  # noqa: E402


# --- raw HTTP ------------------------------------------------------------------------------------

class Answer:
    """One response, or why there was none (status None, outcome 'closed'/'reset'/'timeout')."""

    def __init__(self, status=None, headers=None, body=b"", outcome="answer", elapsed=0.0):
        self.status, self.headers, self.body = status, headers or {}, body
        self.outcome, self.elapsed = outcome, elapsed

    def error_code(self):
        try:
            return json.loads(self.body.decode("utf-8")).get("error")
        except (ValueError, UnicodeDecodeError, AttributeError):
            return None

    def describe(self):
        if self.status is None:
            return f"no answer ({self.outcome}) after {self.elapsed:.2f}s"
        code = self.error_code()
        return f"{self.status}" + (f" {code}" if code else "") + f" in {self.elapsed:.3f}s"


def _read_answer(sock, deadline):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = _recv(sock, deadline)
        if not chunk:
            return None, buf
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
    body = rest
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(body) < n:
            chunk = _recv(sock, deadline)
            if not chunk:
                break
            body += chunk
        body = body[:n]
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while not body.endswith(b"0\r\n\r\n"):
            chunk = _recv(sock, deadline)
            if not chunk:
                break
            body += chunk
        out, data = b"", body
        while data:
            size_line, _, data = data.partition(b"\r\n")
            size = int(size_line.split(b";")[0] or b"0", 16)
            if size == 0:
                break
            out, data = out + data[:size], data[size + 2:]
        body = out
    return (status, headers, body), b""


def _recv(sock, deadline):
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise socket.timeout()
    sock.settimeout(remaining)
    return sock.recv(65536)


def connect(addr, timeout=5.0):
    s = socket.create_connection(addr, timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def exchange(addr, parts, timeout=10.0):
    """Sends the byte strings in parts (one after another) on a fresh connection and reads one
    answer. A send that fails because the server already answered and closed is not an error:
    the answer is read anyway."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    try:
        s = connect(addr)
    except OSError as e:
        return Answer(outcome=f"connect failed: {e}", elapsed=time.monotonic() - t0)
    try:
        poller = select.poll()
        poller.register(s, select.POLLIN)
        answered = False
        for part in parts:
            # In 64 KiB pieces: stop sending once the server has answered (e.g. an early 413 or
            # 400) or has not taken a byte for 3 s (it stopped reading: see what it says).
            for i in range(0, max(len(part), 1), 65536):
                piece = part[i:i + 65536]
                try:
                    s.settimeout(max(0.01, min(3.0, deadline - time.monotonic())))
                    s.sendall(piece)
                except (BrokenPipeError, ConnectionResetError, socket.timeout):
                    answered = True
                    break
                if poller.poll(0):
                    answered = True
                    break
            if answered:
                break
        try:
            got, _ = _read_answer(s, deadline)
        except socket.timeout:
            return Answer(outcome="timeout", elapsed=time.monotonic() - t0)
        except ConnectionResetError:
            return Answer(outcome="reset", elapsed=time.monotonic() - t0)
        if got is None:
            return Answer(outcome="closed", elapsed=time.monotonic() - t0)
        status, headers, body = got
        return Answer(status, headers, body, elapsed=time.monotonic() - t0)
    finally:
        s.close()


def request_bytes(method, target, headers=(), body=None, host="sessiond"):
    if isinstance(target, str):
        target = target.encode("ascii")
    out = [method.encode("ascii") + b" " + target + b" HTTP/1.1", b"Host: " + host.encode()]
    for k, v in headers:
        out.append((k.encode() if isinstance(k, str) else k) + b": " + (v.encode() if isinstance(v, str) else v))
    if body is not None:
        out.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(out) + b"\r\n\r\n" + (body or b"")


# --- the service under test ----------------------------------------------------------------------

class Service:
    def __init__(self, url, pid, keys):
        u = urllib.parse.urlsplit(url)
        self.addr = (u.hostname, u.port)
        self.pid = pid
        self.reader, self.app, self.admin = keys

    def auth(self, key):
        return ("Authorization", "Bearer " + key)

    def create(self, user="hostile-user", data=None):
        body = json.dumps({"user_id": user, "data": data or {}}).encode()
        a = exchange(self.addr, [request_bytes("POST", "/v1/sessions", [self.auth(self.app), ("Content-Type", "application/json")], body)])
        if a.status != 201:
            sys.exit(f"hostile.py: setup create answered {a.describe()}")
        return json.loads(a.body)["token"]

    def lookup_bytes(self, token):
        return request_bytes("GET", "/v1/session?touch=false", [self.auth(self.reader), ("X-Session-Token", token)])

    def metric(self, name):
        """A counter or gauge without labels from GET /metrics, or None."""
        a = exchange(self.addr, [request_bytes("GET", "/metrics", [self.auth(self.reader)])])
        for line in (a.body or b"").decode(errors="replace").splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def alive(self):
        return os.path.exists(f"/proc/{self.pid}") and not open(f"/proc/{self.pid}/stat").read().split(")")[1].split()[0] == "Z"


class Prober(threading.Thread):
    """A normal client: a lookup on a fresh connection every 100 ms."""

    def __init__(self, svc, token, bound):
        super().__init__(daemon=True)
        self.svc, self.token, self.bound = svc, token, bound
        self.lock = threading.Lock()
        self.samples = []  # (start, elapsed, status or outcome)
        self.stop_event = threading.Event()

    def run(self):
        req = self.svc.lookup_bytes(self.token)
        while not self.stop_event.is_set():
            t0 = time.monotonic()
            a = exchange(self.svc.addr, [req], timeout=max(5.0, self.bound * 3))
            with self.lock:
                self.samples.append((t0, a.elapsed, a.status if a.status is not None else a.outcome))
            self.stop_event.wait(max(0.0, 0.1 - (time.monotonic() - t0)))

    def window(self, since):
        with self.lock:
            return [s for s in self.samples if s[0] >= since]


# --- the cases ------------------------------------------------------------------------------------

class Result:
    def __init__(self, name):
        self.name, self.ok, self.notes = name, True, []

    def check(self, cond, note):
        self.notes.append(("ok   " if cond else "FAIL ") + note)
        if not cond:
            self.ok = False
        return cond

    def record(self, note):
        self.notes.append("info " + note)


def expect(res, label, answer, status, code):
    statuses = status if isinstance(status, tuple) else (status,)
    codes = code if isinstance(code, tuple) else (code,)
    good = answer.status in statuses and answer.error_code() in codes
    want = "/".join(map(str, statuses)) + " " + "/".join(c or "-" for c in codes)
    res.check(good, f"{label}: {answer.describe()} (want {want})")
    return good


def no_5xx(res, label, answer, deadline_ok=True):
    """For inputs without a documented answer: anything but a 5xx or a hang."""
    good = not (answer.status is not None and answer.status >= 500) and answer.outcome != "timeout"
    res.check(good, f"{label}: {answer.describe()} (recorded; a 4xx or a close is acceptable, a 5xx or a hang is not)")


def case_oversized_body(svc, ctx):
    res = Result("oversized body")
    cap = 4 * 16384 + 8192
    app = [svc.auth(svc.app), ("Content-Type", "application/json")]
    filler = b"a" * (1 << 20)
    body = b'{"user_id":"u","data":{"x":"' + filler + b'"}}'
    a = exchange(svc.addr, [request_bytes("POST", "/v1/sessions", app, body)])
    expect(res, "1 MiB body, Content-Length", a, 413, "payload_too_large")
    body = b'{"user_id":"u","data":{"x":"' + b"a" * (cap + 1 - 32) + b'"}}'
    a = exchange(svc.addr, [request_bytes("POST", "/v1/sessions", app, body)])
    expect(res, f"{len(body)}-byte body (cap {cap} + 1), Content-Length", a, 413, "payload_too_large")
    data_over = b'{"user_id":"u","data":{"x":"' + b"a" * 20000 + b'"}}'
    a = exchange(svc.addr, [request_bytes("POST", "/v1/sessions", app, data_over)])
    expect(res, "data of 20,000 bytes (under the body cap, over SESSIOND_MAX_DATA_BYTES)", a, 413, "payload_too_large")
    patch = [svc.auth(svc.app), ("X-Session-Token", ctx["token"]), ("Content-Type", "application/merge-patch+json")]
    a = exchange(svc.addr, [request_bytes("PATCH", "/v1/session", patch, b'{"x":"' + filler + b'"}')])
    expect(res, "1 MiB PATCH body", a, 413, "payload_too_large")
    # Chunked, 1 MiB in 16 KiB chunks.
    head = request_bytes("POST", "/v1/sessions", app + [("Transfer-Encoding", "chunked")])
    body = b'{"user_id":"u","data":{"x":"' + filler + b'"}}'
    chunks = [head] + [b"%x\r\n%s\r\n" % (len(body[i:i + 16384]), body[i:i + 16384]) for i in range(0, len(body), 16384)] + [b"0\r\n\r\n"]
    a = exchange(svc.addr, chunks)
    expect(res, "1 MiB body, chunked", a, 413, "payload_too_large")
    # 100 MiB chunked stream: the server must cut it off, not buffer it.
    rss0 = rss_kib(svc.pid)
    big = b"%x\r\n%s\r\n" % (1 << 20, b"a" * (1 << 20))
    first = b'{"user_id":"u","data":{"x":"'
    a = exchange(svc.addr, [head, b"%x\r\n%s\r\n" % (len(first), first)] + [big] * 100 + [b"0\r\n\r\n"], timeout=20)
    expect(res, "100 MiB body, chunked", a, 413, "payload_too_large")
    res.record(f"sessiond RSS {rss0} KiB before, {rss_kib(svc.pid)} KiB after the 100 MiB chunked body")
    # Broken chunked framing (a chunk longer than its declared size): a malformed request.
    a = exchange(svc.addr, [head, b"%x\r\n%s\r\n" % (len(first) - 1, first), b"0\r\n\r\n"])
    expect(res, "chunked body whose first chunk is one byte longer than its size line", a, 400, ("invalid_request", None))
    a = exchange(svc.addr, [head, b"zz\r\n" + first + b"\r\n0\r\n\r\n"])
    expect(res, "chunked body with a non-hex chunk size", a, 400, ("invalid_request", None))
    # A declared 10 GB body of which nothing is sent: the declared length alone is over the cap.
    head = request_bytes("POST", "/v1/sessions", app + [("Content-Length", "10000000000")])
    a = exchange(svc.addr, [head], timeout=5)
    expect(res, "Content-Length: 10000000000 with no body sent (answer within 5 s)", a, 413, "payload_too_large")
    return res


def case_oversized_headers(svc, ctx):
    res = Result("oversized headers")
    base = [svc.auth(svc.reader), ("X-Session-Token", ctx["token"])]
    for size in (8 << 10, 64 << 10, 1 << 20, 16 << 20):
        a = exchange(svc.addr, [request_bytes("GET", "/v1/session?touch=false", base + [("X-Junk", "a" * size)])], timeout=15)
        no_5xx(res, f"one {size >> 10} KiB header", a)
    a = exchange(svc.addr, [request_bytes("GET", "/v1/session?touch=false", base + [(f"X-H{i}", "v") for i in range(10000)])], timeout=15)
    no_5xx(res, "10,000 headers", a)
    a = exchange(svc.addr, [request_bytes("GET", "/v1/session?touch=false", base + [("Cookie", "c=" + "a" * (64 << 10))])], timeout=15)
    no_5xx(res, "a 64 KiB Cookie header", a)
    a = exchange(svc.addr, [request_bytes("GET", "/v1/session?touch=false", [svc.auth(svc.reader), ("X-Session-Token", "A" * (1 << 20))])], timeout=15)
    no_5xx(res, "a 1 MiB X-Session-Token", a)
    res.record(f"sessiond RSS now {rss_kib(svc.pid)} KiB")
    return res


def case_oversized_url(svc, ctx):
    res = Result("oversized URL")
    base = [svc.auth(svc.reader), ("X-Session-Token", ctx["token"])]
    for size in (8 << 10, 64 << 10, 1 << 20, 16 << 20):
        a = exchange(svc.addr, [request_bytes("GET", "/v1/session?touch=false&x=" + "a" * size, base)], timeout=15)
        no_5xx(res, f"a {size >> 10} KiB query", a)
        a = exchange(svc.addr, [request_bytes("GET", "/v1/users/" + "a" * size + "/sessions", [svc.auth(svc.admin)])], timeout=15)
        no_5xx(res, f"a {size >> 10} KiB user id in the path", a)
    return res


def nest_open(n):
    return b"[" * n


def case_deep_json(svc, ctx):
    res = Result("deep JSON nesting")
    app = [svc.auth(svc.app), ("Content-Type", "application/json")]
    patch = [svc.auth(svc.app), ("X-Session-Token", ctx["token"]), ("Content-Type", "application/merge-patch+json")]
    a = exchange(svc.addr, [request_bytes("POST", "/v1/sessions", app, nest_open(100000))])
    expect(res, "100,000 '[' as the body (over the 73,728-byte cap)", a, 413, "payload_too_large")
    a = exchange(svc.addr, [request_bytes("POST", "/v1/sessions", app, nest_open(70000))])
    expect(res, "70,000 '[' as the body", a, 400, "invalid_request")
    a = exchange(svc.addr, [request_bytes("POST", "/v1/sessions", app, b'{"user_id":"u","data":{"a":' + nest_open(70000))])
    expect(res, "70,000 unclosed '[' in data", a, 400, "invalid_request")
    a = exchange(svc.addr, [request_bytes("POST", "/v1/sessions", app, b'{"user_id":"u","data":{"a":' + nest_open(30000) + b"]" * 30000 + b"}}")])
    expect(res, "30,000 balanced '[]' in data (60 KB, over the data cap)", a, (400, 413), ("invalid_request", "payload_too_large"))
    a = exchange(svc.addr, [request_bytes("POST", "/v1/sessions", app, b'{"user_id":"u","data":{"a":' + nest_open(5000) + b"]" * 5000 + b"}}")])
    expect(res, "5,000 balanced '[]' in data (10 KB, under the data cap)", a, (201, 400), (None, "invalid_request"))
    a = exchange(svc.addr, [request_bytes("PATCH", "/v1/session", patch, b'{"a":' * 14000 + b"1" + b"}" * 14000)])
    expect(res, "PATCH with 14,000 nested objects", a, (400, 413), ("invalid_request", "payload_too_large"))
    a = exchange(svc.addr, [request_bytes("PATCH", "/v1/session", patch, b'{"a":' * 3000 + b"1" + b"}" * 3000)])
    expect(res, "PATCH with 3,000 nested objects (18 KB)", a, (400, 413), ("invalid_request", "payload_too_large"))
    if ctx.get("big"):
        big = ctx["big"]
        res.record("with SESSIOND_MAX_DATA_BYTES=1048576 (body cap 4,202,496 bytes):")
        bapp = [big.auth(big.app), ("Content-Type", "application/json")]
        a = exchange(big.addr, [request_bytes("POST", "/v1/sessions", bapp, nest_open(100000))], timeout=20)
        expect(res, "  100,000 '[' as the body", a, 400, "invalid_request")
        a = exchange(big.addr, [request_bytes("POST", "/v1/sessions", bapp, b'{"user_id":"u","data":{"a":' + nest_open(100000) + b"]" * 100000 + b"}}")], timeout=20)
        expect(res, "  100,000 balanced '[]' in data", a, (400, 201), ("invalid_request", None))
        a = exchange(big.addr, [request_bytes("POST", "/v1/sessions", bapp, b'{"user_id":"u","data":' + b'{"a":' * 100000 + b"1" + b"}" * 100001)], timeout=20)
        expect(res, "  100,000 nested objects in data", a, (400, 201), ("invalid_request", None))
        if not big.alive():
            res.check(False, "the SESSIOND_MAX_DATA_BYTES=1048576 sessiond died")
    return res


def case_invalid_utf8(svc, ctx):
    res = Result("invalid UTF-8")
    app = [svc.auth(svc.app), ("Content-Type", "application/json")]
    for label, bad in (("0xFF", b"\xff"), ("truncated 0xC3", b"\xc3"), ("overlong 0xC0 0xAF", b"\xc0\xaf"),
                       ("UTF-16 surrogate 0xED 0xA0 0x80", b"\xed\xa0\x80"), ("0xF5 (> U+10FFFF)", b"\xf5\x80\x80\x80")):
        a = exchange(svc.addr, [request_bytes("POST", "/v1/sessions", app, b'{"user_id":"u' + bad + b'"}')])
        expect(res, f"body user_id with {label}", a, 400, "invalid_request")
    a = exchange(svc.addr, [request_bytes("POST", "/v1/sessions", app, b'{"user_id":"u","data":{"k\xff":"v"}}')])
    expect(res, "body data key with 0xFF", a, 400, "invalid_request")
    patch = [svc.auth(svc.app), ("X-Session-Token", ctx["token"]), ("Content-Type", "application/merge-patch+json")]
    a = exchange(svc.addr, [request_bytes("PATCH", "/v1/session", patch, b'{"k":"\xfe\xff"}')])
    expect(res, "PATCH body with 0xFE 0xFF", a, 400, "invalid_request")
    bad_token = b"A" * 40 + b"\xff\xfe" + b"A"
    a = exchange(svc.addr, [request_bytes("GET", "/v1/session", [svc.auth(svc.reader), ("X-Session-Token", bad_token)])])
    expect(res, "X-Session-Token with 0xFF 0xFE", a, 401, "invalid_session")
    a = exchange(svc.addr, [request_bytes("GET", "/v1/session", [svc.auth(svc.reader), ("Cookie", b"__Host-session=" + bad_token)])])
    expect(res, "session cookie with 0xFF 0xFE", a, 401, "invalid_session")
    a = exchange(svc.addr, [request_bytes("GET", "/v1/session", [("Authorization", b"Bearer " + b"k" * 30 + b"\xff\xc3")])])
    expect(res, "Authorization key with 0xFF 0xC3", a, 401, "invalid_api_key")
    admin = [svc.auth(svc.admin)]
    a = exchange(svc.addr, [request_bytes("GET", "/v1/users/u%FF%FE/sessions", admin)])
    expect(res, "path user id %FF%FE", a, 400, "invalid_request")
    a = exchange(svc.addr, [request_bytes("GET", "/v1/users/u%C0%AF/sessions", admin)])
    expect(res, "path user id %C0%AF (overlong)", a, 400, "invalid_request")
    a = exchange(svc.addr, [request_bytes("GET", b"/v1/users/u\xff\xfe/sessions", admin)])
    no_5xx(res, "raw bytes 0xFF 0xFE in the path", a)
    a = exchange(svc.addr, [request_bytes("GET", "/v1/sessions/%FF%FE", admin)])
    expect(res, "path handle %FF%FE", a, 404, "not_found")
    a = exchange(svc.addr, [request_bytes("GET", "/v1/session?touch=%FF", [svc.auth(svc.reader), ("X-Session-Token", ctx["token"])])])
    expect(res, "query touch=%FF", a, 400, "invalid_request")
    a = exchange(svc.addr, [request_bytes("GET", "/v1/users/u/sessions?cursor=%FF%FE", admin)])
    expect(res, "query cursor=%FF%FE", a, 400, "invalid_request")
    return res


def case_bad_tokens(svc, ctx):
    res = Result("malformed tokens")
    real = ctx["token"]
    flip = ("B" if real[5] != "B" else "C")
    cases = [
        ("empty", ""), ("1 char", "A"), ("42 chars", real[:42]), ("44 chars", real + "A"),
        ("43 + '=' padding", real + "="), ("1,000 chars", "A" * 1000), ("64 KiB", "A" * 65536),
        ("'+' (base64, not base64url)", "+" + real[1:]), ("'/'", real[:10] + "/" + real[11:]),
        ("'=' inside", real[:20] + "=" + real[21:]), ("'.'", "." + real[1:]), ("'~'", real[:-1] + "~"),
        ("a space inside", real[:20] + " " + real[21:]), ("a tab inside", real[:20] + "\t" + real[21:]),
        ("non-canonical last character", real[:-1] + ("B" if real[-1] != "B" else "C")),
        ("é (43 characters, 44 bytes)", "é" + real[2:]), ("one character changed", real[:5] + flip + real[6:]),
        ("random well-formed token", base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()),
        ("lower-cased", real.lower() if real.lower() != real else real.upper()),
        ("the real token twice", real + real), ("NUL inside", real[:20] + "\x00" + real[21:]),
    ]
    for label, tok in cases:
        raw = tok.encode("utf-8")
        for where, headers in (("header", [("X-Session-Token", raw)]), ("cookie", [("Cookie", b"__Host-session=" + raw)])):
            a = exchange(svc.addr, [request_bytes("GET", "/v1/session", [svc.auth(svc.reader)] + headers)])
            if label == "a tab inside" or label == "NUL inside":
                # A raw control byte in a field value: the HTTP parser may refuse it as a bad request.
                expect(res, f"{where}: {label}", a, (400, 401), ("invalid_session", "invalid_request", None))
            else:
                expect(res, f"{where}: {label}", a, 401, "invalid_session")
    a = exchange(svc.addr, [request_bytes("GET", "/v1/session", [svc.auth(svc.reader), ("X-Session-Token", real[:42]), ("Cookie", "__Host-session=" + real)])])
    expect(res, "malformed header beside a valid cookie (header wins)", a, 401, "invalid_session")
    patch = [svc.auth(svc.app), ("X-Session-Token", real[:42]), ("Content-Type", "application/merge-patch+json")]
    a = exchange(svc.addr, [request_bytes("PATCH", "/v1/session", patch, b'{"a":1}')])
    expect(res, "PATCH with a 42-char token", a, 401, "invalid_session")
    a = exchange(svc.addr, [request_bytes("DELETE", "/v1/session", [svc.auth(svc.app), ("X-Session-Token", real + "=")])])
    expect(res, "DELETE with a padded token", a, 401, "invalid_session")
    a = exchange(svc.addr, [request_bytes("POST", "/v1/session/rotate", [svc.auth(svc.app), ("X-Session-Token", "+" + real[1:])])])
    expect(res, "rotate with a '+' token", a, 401, "invalid_session")
    a = exchange(svc.addr, [svc.lookup_bytes(real)])
    expect(res, "the real token still answers", a, 200, None)
    return res


# Slow clients run together (each waits ~SLOW_WAIT seconds), in one phase.
SLOW_WAIT = 15.0


def _readable(sock, seconds):
    p = select.poll()
    p.register(sock, select.POLLIN | select.POLLHUP | select.POLLERR)
    return bool(p.poll(seconds * 1000))


def watch_close(sock, seconds, dribble=None):
    """Waits up to `seconds` for the server to close sock; when dribble is given, sends one byte
    of it per second meanwhile. Returns (closed_after_seconds or None, bytes_sent, answer_head)."""
    t0 = time.monotonic()
    sent = 0
    next_send = t0
    while time.monotonic() - t0 < seconds:
        now = time.monotonic()
        if dribble is not None and now >= next_send and sent < len(dribble):
            try:
                sock.send(dribble[sent:sent + 1])
                sent += 1
            except OSError:
                return now - t0, sent, b""
            next_send += 1.0
        if _readable(sock, 0.2):
            try:
                data = sock.recv(65536)
            except OSError:
                return time.monotonic() - t0, sent, b""
            if not data:
                return time.monotonic() - t0, sent, b""
            return time.monotonic() - t0, sent, data[:64]
    return None, sent, b""


def slow_phase(svc, ctx):
    results = {}
    slow_req = b"GET /v1/session HTTP/1.1\r\nHost: sessiond\r\nX-Slow: " + b"a" * 200

    def header_timeout():
        r = Result("slowloris: header timeout (one header byte per second)")
        s = connect(svc.addr)
        closed, sent, head = watch_close(s, SLOW_WAIT, slow_req)
        s.close()
        if closed is None:
            r.check(False, f"connection still open after {SLOW_WAIT:.0f} s and {sent} header bytes sent one per second: no header (request-read) timeout")
        else:
            r.check(True, f"server closed after {closed:.1f} s ({sent} bytes sent){', answered ' + repr(head[:40]) if head else ''}")
        results["header"] = r

    def idle(key, name, still_open, after_request=False, closed_note=""):
        """A connection left idle, fresh or after one answered request: the server must close it."""
        r = Result(name)
        s = connect(svc.addr)
        if after_request:
            s.sendall(request_bytes("GET", "/healthz"))
            got, _ = _read_answer(s, time.monotonic() + 5)
            r.check(got is not None and got[0] == 200, "GET /healthz answered 200")
        closed, _, _ = watch_close(s, SLOW_WAIT)
        s.close()
        r.check(closed is not None, still_open if closed is None else f"server closed it after {closed:.1f} s{closed_note}")
        results[key] = r

    def many_slow():
        r = Result("slowloris: 1,000 slow clients at once")
        socks = []
        for _ in range(1000):
            try:
                socks.append(connect(svc.addr))
            except OSError as e:
                r.record(f"connect {len(socks) + 1} failed: {e}")
                break
        r.record(f"{len(socks)} slow connections open; sessiond fds {open_fds(svc.pid)}")
        t0 = time.monotonic()
        alive = list(socks)
        i = 0
        while time.monotonic() - t0 < SLOW_WAIT - 2 and alive:
            keep = []
            for s in alive:
                try:
                    s.send(slow_req[i:i + 1])
                    keep.append(s)
                except OSError:
                    pass
            alive = keep
            i += 1
            time.sleep(1.0)
        still = 0
        for s in alive:
            try:
                s.setblocking(False)
                data = s.recv(1)
                if data != b"":
                    still += 1
            except BlockingIOError:
                still += 1
            except OSError:
                pass
        r.check(still < len(socks), f"{still} of {len(socks)} slow connections still open after {time.monotonic() - t0:.0f} s ({i} bytes each){': none was cut (no header timeout, no connection limit)' if still == len(socks) else ''}")
        r.record(f"sessiond fds with them open: {open_fds(svc.pid)}")
        for s in socks:
            s.close()
        results["many"] = r

    idle_fresh = ("idle", "idle: connection that never sends a byte",
                  f"connection still open after {SLOW_WAIT:.0f} s of silence: no idle timeout")
    idle_keepalive = ("keepalive", "idle: keep-alive connection after one answered request",
                      f"keep-alive connection still open after {SLOW_WAIT:.0f} s idle: no keep-alive idle timeout", True, " idle")
    threads = [threading.Thread(target=f, args=a, daemon=True) for f, a in ((header_timeout, ()), (idle, idle_fresh), (idle, idle_keepalive), (many_slow, ()))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [results[k] for k in ("header", "idle", "keepalive", "many")]


def case_10k_idle(svc, ctx, count=10000):
    """The connection limit (SESSIOND_MAX_CONNECTIONS, 10,000 by default) filled by idle
    connections: new clients must still be answered within the bound, because sessiond closes
    idle connections, longest idle first, to make room (issue 23). svc keeps the default 60-s
    idle timeout, so that what is measured is the draining, not thousands of connections cut by
    the timeout at the same moment."""
    res = Result(f"{count:,} idle connections")
    token = svc.create("hostile-10k")
    drained0 = svc.metric("sessiond_connections_drained_total") or 0
    fd0 = open_fds(svc.pid)
    rss0 = rss_kib(svc.pid)
    socks = []
    t0 = time.monotonic()
    failed = None
    # Paced by what sessiond has accepted (its fd count): at most 128 connections wait in its
    # listen queue (256 deep), so this measures idle connections, not a SYN flood that overflows
    # the queue (which drops everyone's SYNs for 1-7 s; see the flood note below).
    while len(socks) < count and failed is None:
        accepted = (open_fds(svc.pid) or fd0) - fd0
        for _ in range(max(0, min(count - len(socks), 128 - (len(socks) - accepted)))):
            try:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.settimeout(5)
                s.connect(svc.addr)
                socks.append(s)
            except OSError as e:
                failed = e
                s.close()
                break
        if time.monotonic() - t0 > 60:
            failed = "gave up after 60 s"
        time.sleep(0.002)
    opened = time.monotonic() - t0
    res.record(f"opened {len(socks):,} connections in {opened:.1f} s{f' (then: {failed})' if failed else ''}")
    time.sleep(1.0)
    fd1 = open_fds(svc.pid)
    res.record(f"sessiond fds {fd0} before, {fd1} with them open; RSS {rss0} KiB -> {rss_kib(svc.pid)} KiB")
    # Normal clients on new connections while they are open (the prober runs too).
    lat = []
    for _ in range(20):
        a = exchange(svc.addr, [svc.lookup_bytes(token)], timeout=max(5.0, ctx["bound"] * 3))
        lat.append((a.elapsed, a.status))
        time.sleep(0.05)
    good = all(st == 200 and el <= ctx["bound"] for el, st in lat)
    res.check(good, f"20 normal lookups with them open: statuses {sorted(set(st for _, st in lat), key=str)}, max {max(el for el, _ in lat) * 1000:.1f} ms (bound {ctx['bound'] * 1000:.0f} ms)")
    drained = (svc.metric("sessiond_connections_drained_total") or 0) - drained0
    res.check(drained > 0,
              f"{drained:.0f} idle connections closed to make room (sessiond_connections_drained_total)")
    # Which ones did the server drop?
    still = 0
    for s in socks:
        try:
            s.setblocking(False)
            if s.recv(1) != b"":
                still += 1
        except BlockingIOError:
            still += 1
        except OSError:
            pass
    fd2 = open_fds(svc.pid)
    accepted_all = failed is None and len(socks) == count
    res.check(not (accepted_all and still == len(socks)),
              f"after {time.monotonic() - t0:.0f} s, {still:,} of {len(socks):,} idle connections still open, sessiond holds {fd2} fds"
              + (": none was closed to make room" if accepted_all and still == len(socks) else ""))
    for s in socks:
        s.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (open_fds(svc.pid) or 0) > fd0 + 20:
        time.sleep(0.2)
    fd3 = open_fds(svc.pid)
    res.check(fd3 is not None and fd3 <= fd0 + 20, f"sessiond fds back to {fd3} (from {fd0}) after the client closed them")
    return res


# --- driver --------------------------------------------------------------------------------------

def run_case(prober, bound, fn):
    start = time.monotonic()
    out = fn()
    results = out if isinstance(out, list) else [out]
    # After the case: normal lookups still answer.
    time.sleep(0.3)
    window = prober.window(start)
    failed = [s for s in window if s[2] != 200]
    slow = [s for s in window if s[2] == 200 and s[1] > bound]
    # Every probe must succeed; a few may be slow (a loaded machine can hold one process back
    # for a moment), but starving the normal clients would slow many of them.
    slow_allowed = max(2, len(window) // 20)
    worst = max((s[1] for s in window), default=0.0)
    note = (f"normal lookups during the case: {len(window)}, {len(failed)} failed, {len(slow)} over "
            f"{bound * 1000:.0f} ms (at most {slow_allowed} allowed), max {worst * 1000:.1f} ms")
    if failed or slow:
        example = (failed or slow)[0]
        note += f" (e.g. {example[2]} after {example[1]:.2f}s)"
    for r in results:
        r.check(len(window) > 0 and not failed and len(slow) <= slow_allowed, note)
    return results, time.monotonic() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True, help="sessiond's process id (for fds and RSS)")
    ap.add_argument("--big-url", help="a sessiond with SESSIOND_MAX_DATA_BYTES=1048576 (same keys)")
    ap.add_argument("--big-pid", type=int)
    ap.add_argument("--bound", type=float, default=1.0, help="seconds a normal lookup may take during a case")
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--only", help="comma-separated case ids: body,headers,url,json,utf8,tokens,slow,idle10k")
    args = ap.parse_args()

    keys = tuple(api_keys("hostile.py").values())  # reader, app, admin
    svc = Service(env("hostile.py", "SESSIOND_URL"), args.pid, keys)
    ctx = {"bound": args.bound, "token": svc.create("hostile-target", {"role": "x"})}
    if args.big_url:
        ctx["big"] = Service(args.big_url, args.big_pid, keys)
    probe_token = svc.create("hostile-prober")
    prober = Prober(svc, probe_token, args.bound)
    prober.start()
    time.sleep(0.3)

    cases = [
        ("body", lambda: case_oversized_body(svc, ctx)),
        ("headers", lambda: case_oversized_headers(svc, ctx)),
        ("url", lambda: case_oversized_url(svc, ctx)),
        ("json", lambda: case_deep_json(svc, ctx)),
        ("utf8", lambda: case_invalid_utf8(svc, ctx)),
        ("tokens", lambda: case_bad_tokens(svc, ctx)),
        ("slow", lambda: slow_phase(svc, ctx)),
        ("idle10k", lambda: case_10k_idle(ctx.get("big", svc), ctx, args.connections)),
    ]
    only = set(args.only.split(",")) if args.only else None
    all_results = []
    for cid, fn in cases:
        if only and cid not in only:
            continue
        try:
            # While 10,000 connections are being opened, one probe connect in several hundred
            # waits for a SYN retransmit (measured: one of 730 at 2.3 s, the rest under 20 ms);
            # that case allows 3 s, the others keep the bound.
            results, took = run_case(prober, max(args.bound, 3.0) if cid == "idle10k" else args.bound, fn)
        except Exception as e:  # a crash of the driver is a failed case, not a lost run
            r = Result(cid)
            r.check(False, f"driver exception: {type(e).__name__}: {e}")
            results, took = [r], 0.0
        for r in results:
            print(f"{'PASS' if r.ok else 'FAIL'}  {r.name}  ({took:.1f}s)", flush=True)
            for n in r.notes:
                print(f"        {n}", flush=True)
        all_results += results
        if not svc.alive():
            print("FAIL  sessiond is no longer running", flush=True)
            all_results.append(Result("sessiond died"))
            all_results[-1].ok = False
            break
    prober.stop_event.set()
    prober.join(timeout=10)
    failed = [r.name for r in all_results if not r.ok]
    print(f"hostile: {len(all_results) - len(failed)} of {len(all_results)} cases passed"
          + (f"; failed: {', '.join(failed)}" if failed else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
