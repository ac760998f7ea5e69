"""A private sessiond (and, when asked, a private redis-server) that a test may stop.

scripts/test-python-client starts the shared sessiond and Redis the other tests use and
exports SESSIOND_BINARY and SESSIOND_TEST_REDIS_URL; the outage tests start one of these.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable


def required_env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise RuntimeError(f"{name} is not set: run these tests with scripts/test-python-client")
    return value


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(check: Callable[[], bool], process: subprocess.Popen[bytes], what: str, log: str) -> None:
    for _ in range(150):
        if process.poll() is not None:
            break
        if check():
            return
        time.sleep(0.1)
    with open(log, errors="replace") as f:
        tail = f.read()[-2000:]
    raise RuntimeError(f"{what} did not start; its log ends with:\n{tail}")


class SessiondInstance:
    def __init__(self, *, own_redis: bool = False, **settings: str) -> None:
        self.dir = tempfile.mkdtemp(prefix="sessiond-client-test.")
        self.redis: subprocess.Popen[bytes] | None = None
        self.sessiond: subprocess.Popen[bytes] | None = None
        self.keys = {role: secrets.token_urlsafe(24) for role in ("reader", "app", "admin")}
        self.redis_url = self._start_redis() if own_redis else required_env("SESSIOND_TEST_REDIS_URL")
        self.settings = settings
        # Kept across restarts of sessiond, so its sessions survive them.
        self.key_prefix = f"pyclient-{secrets.token_hex(4)}:"
        self.url = ""
        self.start_sessiond()

    def _start_redis(self) -> str:
        port = _free_port()
        log = os.path.join(self.dir, "redis.log")
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", self.dir, "--save", "",
             "--appendonly", "no", "--logfile", log], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)

        def answers() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    return s.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        _wait(answers, self.redis, "redis-server", log)
        return f"redis://127.0.0.1:{port}/0"

    def start_sessiond(self) -> None:
        port = _free_port()
        log = os.path.join(self.dir, "sessiond.log")
        env = {
            "PATH": os.environ.get("PATH", ""),
            "SESSIOND_HOST": "127.0.0.1",
            "SESSIOND_PORT": str(port),
            "SESSIOND_REDIS_URL": self.redis_url,
            "SESSIOND_KEY_PREFIX": self.key_prefix,
            "SESSIOND_API_KEYS": ",".join(f"{role}:{key}" for role, key in self.keys.items()),
            "SESSIOND_LOG_LEVEL": "warning",
            **self.settings,
        }
        with open(log, "ab") as out:
            self.sessiond = subprocess.Popen([required_env("SESSIOND_BINARY")], env=env, stdin=subprocess.DEVNULL,
                                             stdout=out, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=1) as r:
                    return bool(r.status == 200)
            except (OSError, urllib.error.URLError):
                return False

        _wait(ready, self.sessiond, "sessiond", log)

    def stop_sessiond(self) -> None:
        _stop(self.sessiond)

    def stop_redis(self) -> None:
        _stop(self.redis)

    def close(self) -> None:
        self.stop_sessiond()
        self.stop_redis()
        shutil.rmtree(self.dir, ignore_errors=True)


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
