"""What the Python test harnesses (contract, faults, hostile, soak) share: the API keys that
scripts/lib/sessiond-instance.sh exports, a minimal RESP client for the scripts' own Redis, and a
process's memory and open files.

Import it after putting this folder on sys.path (the harnesses run as scripts, not as a package).
"""

import os
import socket
import sys

ROLES = ("reader", "app", "admin")


def env(program, name):
    """The value of environment variable NAME; exits, naming it, when it is unset or empty."""
    value = os.environ.get(name, "")
    if not value:
        sys.exit(f"{program}: {name} is not set")
    return value


def api_keys(program):
    """The API key of each role, from SESSIOND_READER_KEY, SESSIOND_APP_KEY and SESSIOND_ADMIN_KEY."""
    return {role: env(program, f"SESSIOND_{role.upper()}_KEY") for role in ROLES}


def redis_command(port, *args, host="127.0.0.1", timeout=5.0):
    """Sends one command to a Redis of the scripts' own and returns the first line of its reply;
    raises RuntimeError on an error reply."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        out = f"*{len(args)}\r\n".encode()
        for a in args:
            b = str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(b), b)
        s.sendall(out)
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            buf += chunk
        line = buf.split(b"\r\n", 1)[0].decode()
        if line.startswith("-"):
            raise RuntimeError(line)
        return line


def rss_kib(pid):
    """The resident memory of process PID in KiB; None when it is gone (a zombie has none)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def open_fds(pid):
    """How many files process PID has open; None when it is gone."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
