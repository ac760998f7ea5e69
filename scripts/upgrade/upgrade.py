#!/usr/bin/env python3
"""Upgrade in place (SPEC §5.10), against a real Redis and the two real binaries.

1. The previous release fills the store: sessions with and without data, ip and user agent,
   patched, rotated, revoked by logout and by an admin, and a user with more sessions than one
   index move takes (500).
2. It stops, and this release serves the same Redis: every token still looks up with the same
   session, revoked ones stay revoked, lists and totals are exact, a patch, a touch and a
   rotation rewrite format-1 records as format 2, and force-logout catches old and new
   sessions alike.
3. Both run side by side, which is not supported (docs/redis-layout.md, "Upgrading from
   format 1"), to show what happens: what the previous release writes, this one reads, lists and
   force-logs out; a session this release wrote, the previous one answers with a 5xx (for the
   sessions checked here; other bytes could parse), and a user this release has moved is an
   empty list to it.

Run by scripts/test-upgrade, which builds the previous release and starts the Redis.
"""

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402

PREFIX = "upgrade:"
KEYS = {role: secrets.token_urlsafe(24) for role in harness.ROLES}
failures = []


def check(condition, what):
    if not condition:
        failures.append(what)
        print(f"upgrade: FAILED: {what}", file=sys.stderr)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sessiond:
    """One sessiond process on the shared Redis and key prefix."""

    def __init__(self, name, binary, redis_port):
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIOND_")}
        env.update(
            SESSIOND_HOST="127.0.0.1", SESSIOND_PORT=str(port),
            SESSIOND_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0", SESSIOND_KEY_PREFIX=PREFIX,
            SESSIOND_API_KEYS=",".join(f"{role}:{key}" for role, key in KEYS.items()),
        )
        self.name = name
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(f"{name}.log", "w")
        self.process = subprocess.Popen([binary], env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"upgrade: {name} exited at start; see {name}.log")
            try:
                if self.request("GET", "/readyz", None)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        sys.exit(f"upgrade: {name} was not ready within 20 s")

    def request(self, method, path, role, token=None, body=None):
        headers = {}
        if role:
            headers["Authorization"] = f"Bearer {KEYS[role]}"
        if token:
            headers["X-Session-Token"] = token
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, text = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read()
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, None

    def create(self, user, **fields):
        status, body = self.request("POST", "/v1/sessions", "app", body={"user_id": user, **fields})
        if status != 201:
            sys.exit(f"upgrade: {self.name} create answered {status}: {body}")
        return body

    def lookup(self, token, touch=False):
        return self.request("GET", "/v1/session" + ("" if touch else "?touch=false"), "reader", token=token)

    def list_all(self, user, limit=100):
        handles, total, cursor = [], None, None
        for _ in range(1000):
            query = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
            status, body = self.request("GET", f"/v1/users/{user}/sessions{query}", "admin")
            if status != 200:
                return status, None, handles
            total = body["total"] if total is None else total
            handles += [session["handle"] for session in body["sessions"]]
            cursor = body["next_cursor"]
            if not cursor:
                break
        return 200, total, handles

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=15)
        self.log.close()


def record_format(redis_port, handle):
    """1 or 2, from the first byte of the session's record; None when there is no record."""
    key = f"{PREFIX}{{{handle[:3]}}}{handle[3:]}"
    out = subprocess.run(["redis-cli", "-p", str(redis_port), "--raw", "GET", key], capture_output=True, check=True).stdout
    if out in (b"", b"\n"):
        return None
    return 2 if out[0] >= 0xA0 else 1 if out[0] < 0x80 else 0


def same_session(expected, body):
    fields = ("handle", "user_id", "data", "version", "created_at", "ip", "user_agent")
    return body is not None and all(body.get(field) == expected.get(field) for field in fields)


def fill(previous):
    """Phase 1: sessions of every kind, made and used by the previous release."""
    live, gone = {}, []
    for n in range(10):
        user = f"user-{n}"
        made = [
            previous.create(user),
            previous.create(user, data={"cart": [1, 2], "big": 12345678901234567, "note": "é ✓"}),
            previous.create(user, ip="203.0.113.7", user_agent="Firefox/131 (X11; Linux)", data={"a": {"b": []}}),
            previous.create(user, idle_timeout=20, absolute_timeout=3600),
        ]
        status, patched = previous.request("PATCH", "/v1/session", "app", token=made[1]["token"], body={"n": n, "note": None})
        check(status == 200, f"previous release: patch answered {status}")
        made[1] = {**patched, "token": made[1]["token"]}
        for session in made:
            live[session["token"]] = session
    # A rotation, a logout and an admin's revocation.
    old = live.pop(live_token(live, "user-0", 0))
    status, rotated = previous.request("POST", "/v1/session/rotate", "app", token=old["token"])
    check(status == 200, f"previous release: rotate answered {status}")
    live[rotated["token"]] = rotated
    gone.append(old["token"])
    logout = live.pop(live_token(live, "user-1", 1))
    check(previous.request("DELETE", "/v1/session", "app", token=logout["token"])[0] == 200, "previous release: logout")
    gone.append(logout["token"])
    revoked = live.pop(live_token(live, "user-2", 2))
    check(previous.request("DELETE", f"/v1/sessions/{revoked['handle']}", "admin")[0] == 200, "previous release: admin revoke")
    gone.append(revoked["token"])
    crowd = [previous.create("crowd") for _ in range(620)]
    for session in crowd:
        live[session["token"]] = session
    return live, gone


def live_token(live, user, position):
    return [token for token, session in live.items() if session["user_id"] == user][position]


def handles_of(live, user):
    return {session["handle"] for session in live.values() if session["user_id"] == user}


def serve(current, live, gone, redis_port):
    """Phase 2: this release alone on the previous release's store."""
    for token, session in live.items():
        status, body = current.lookup(token)
        check(status == 200 and same_session(session, body), f"a previous session looks up unchanged ({status})")
    for token in gone:
        check(current.lookup(token)[0] == 401, "a session revoked before the upgrade stays revoked")
    untouched = live[live_token(live, "user-9", 0)]
    check(record_format(redis_port, untouched["handle"]) == 1, "a record nobody wrote since is still format 1")

    for user in [f"user-{n}" for n in range(10)] + ["crowd"]:
        status, total, listed = current.list_all(user)
        check(status == 200 and total == len(handles_of(live, user)), f"{user}: total {total}, expected {len(handles_of(live, user))}")
        check(sorted(listed) == sorted(handles_of(live, user)), f"{user}: every live session listed once")
        tag = listed[0][:3] if listed else ""
        exists = harness.redis_command(redis_port, "EXISTS", f"{PREFIX}{{{tag}}}u:{user}")
        check(exists == ":0", f"{user}: the format-1 index is gone once moved")

    # A patch, a touch and a rotation rewrite format-1 records as format 2.
    patched_token = live_token(live, "user-3", 1)
    status, patched = current.request("PATCH", "/v1/session", "app", token=patched_token, body={"after": "upgrade"})
    expected_data = {**live[patched_token]["data"], "after": "upgrade"}
    check(status == 200 and patched["data"] == expected_data and patched["version"] == live[patched_token]["version"] + 1,
          f"a patch of a previous session merges ({status})")
    check(record_format(redis_port, patched["handle"]) == 2, "a patched record is format 2")
    live[patched_token] = {**patched, "token": patched_token}
    check(same_session(live[patched_token], current.lookup(patched_token)[1]), "the patched session reads back")

    touched_token = live_token(live, "user-4", 3)
    time.sleep(2.2)  # a tenth of its 20-s idle timeout: the next lookup touches it
    check(current.lookup(touched_token, touch=True)[0] == 200, "a touching lookup of a previous session")
    for _ in range(50):
        if record_format(redis_port, live[touched_token]["handle"]) == 2:
            break
        time.sleep(0.1)
    check(record_format(redis_port, live[touched_token]["handle"]) == 2, "a touched record is format 2")
    check(current.lookup(touched_token)[0] == 200, "the touched session still looks up")

    rotated_token = live_token(live, "user-5", 2)
    status, rotated = current.request("POST", "/v1/session/rotate", "app", token=rotated_token)
    check(status == 200 and rotated["ip"] == "203.0.113.7" and rotated["user_agent"] == live[rotated_token]["user_agent"],
          f"a rotation of a previous session keeps its fields ({status})")
    check(current.lookup(rotated_token)[0] == 401, "the rotated-away token is revoked")
    check(record_format(redis_port, rotated["handle"]) == 2, "a rotated record is format 2")
    live.pop(rotated_token)
    live[rotated["token"]] = rotated

    revoked_handle = live[live_token(live, "user-7", 0)]["handle"]
    status, body = current.request("DELETE", f"/v1/sessions/{revoked_handle}", "admin")
    check(status == 200 and body["revoked"] is True, "an admin revokes a previous session by handle")
    live.pop(live_token(live, "user-7", 0))

    # Force-logout: previous and new sessions alike.
    fresh = [current.create("user-6") for _ in range(2)]
    status, body = current.request("DELETE", "/v1/users/user-6/sessions", "admin")
    expected = len(handles_of(live, "user-6")) + 2
    check(status == 200 and body["revoked"] == expected, f"force-logout revokes {expected}: {body}")
    for token in [t for t, s in live.items() if s["user_id"] == "user-6"] + [s["token"] for s in fresh]:
        check(current.lookup(token)[0] == 401, "force-logout catches previous and new sessions")
        live.pop(token, None)
    check(current.list_all("user-6")[1] == 0, "nothing left to list after force-logout")

    status, total, listed = current.list_all("crowd", limit=100)
    check(total == 620 and len(set(listed)) == 620, f"crowd: 620 sessions in pages of 100 ({total}, {len(set(listed))})")


def side_by_side(previous, current, live):
    """Phase 3: both releases on one Redis."""
    old = previous.create("user-8", data={"from": "previous"})
    status, body = current.lookup(old["token"])
    check(status == 200 and same_session(old, body), "this release reads a session the previous one creates meanwhile")
    status, total, listed = current.list_all("user-8")
    check(old["handle"] in listed and total == len(listed), "and lists it, with an exact total")
    status, body = current.request("DELETE", "/v1/users/user-8/sessions", "admin")
    check(status == 200, f"force-logout while both run ({status})")
    check(previous.lookup(old["token"])[0] == 401 and current.lookup(old["token"])[0] == 401,
          "force-logout by this release catches the previous release's new session")

    new = current.create("user-9", data={"from": "current"})
    status, body = previous.lookup(new["token"])
    check(status >= 500, f"the previous release refuses a format-2 record with a 5xx, never answers it ({status}: {body})")
    check(current.lookup(new["token"])[0] == 200, "this release still serves it")
    print(f"upgrade: the previous release answers {status} for a session this release wrote", file=sys.stderr)
    moved = [token for token, session in live.items() if session["user_id"] == "user-9"]
    check(all(previous.lookup(token)[0] >= 500 for token in moved),
          "records moved with their index are format 2: the previous release refuses them too")
    status, body = previous.request("GET", "/v1/users/user-9/sessions", "admin")
    print(f"upgrade: the previous release lists {body and body.get('total')} of user-9's {len(moved) + 1} sessions "
          "(why the two must not run side by side)", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-port", type=int, required=True)
    parser.add_argument("--previous", required=True, help="the previous release's sessiond")
    parser.add_argument("--current", required=True, help="this release's sessiond")
    args = parser.parse_args()

    previous = Sessiond("previous", args.previous, args.redis_port)
    live, gone = fill(previous)
    previous.stop()
    print(f"upgrade: the previous release made {len(live)} live and {len(gone)} revoked sessions", file=sys.stderr)

    current = Sessiond("current", args.current, args.redis_port)
    serve(current, live, gone, args.redis_port)
    previous = Sessiond("previous-again", args.previous, args.redis_port)
    side_by_side(previous, current, live)
    previous.stop()
    current.stop()
    if failures:
        sys.exit(f"upgrade: {len(failures)} checks failed")
    print("upgrade: every check passed", file=sys.stderr)


if __name__ == "__main__":
    main()
