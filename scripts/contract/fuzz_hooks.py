"""Schemathesis hooks for scripts/fuzz (loaded through scripts/contract/schemathesis.toml).

1. Real sessions for the non-stateful phases. A generated token or handle names no session, so
   lookups, patches, rotations and the admin routes would only ever see 401 and 404. Every
   create and rotate answer the fuzzer gets feeds a pool (kept in memory only, never printed),
   seeded at start with a few sessions made with SESSIOND_FUZZ_SEED_KEY (an app key) when it is
   set. In the examples, coverage and fuzzing phases, a case whose headers (or path) were
   generated as valid gets, two times in three, a live token (or handle, or user id) from the
   pool instead, so generated bodies, If-Match values and query strings meet real sessions. The
   stateful phase is left alone: its links carry real values already.

2. Failures that are documented behaviour, dropped one by one, each for a stated reason
   (everything else fails the run):
   - ST201 "schema-violating request accepted" when the only invalid part is the session cookie
     and `X-Session-Token` is present: the header takes precedence and the cookie is not read
     (openapi.yaml, SessionTokenHeader; README "API in brief").
   - ST201 when the query was generated invalid but what reached the wire is valid: an extra
     parameter whose value is None or an empty list is left out of the URL, so the server saw a
     valid query (each sent parameter is declared, given once, and valid for its schema).
   - ST302 "created resource not found" (GET/DELETE /v1/sessions/{handle} answering 404 after a
     create) when this run ended that session itself, by a rotation, a logout, a revocation by
     handle or a force-logout of its user, or when it expired (creates may ask for a 1 s
     timeout). Schemathesis only relates a DELETE on the same path to the resource.
   - use-after-free on GET /v1/users/{user_id}/sessions after DELETE of that path: a force-logout
     revokes the user's sessions, it does not delete a "user" resource, and listing a user with
     no sessions is documented as an empty 200 list.

3. Figures: every answer is counted by operation and status; at exit the counts go to
   SESSIOND_FUZZ_STATS (JSON) when set, and the sessiond log named by SESSIOND_FUZZ_LOG is
   searched for every token this run saw (the count of hits is reported, never a token).
"""

from __future__ import annotations

import atexit
import collections
import json
import os
import random
import re
import threading
import time
import urllib.parse
from datetime import datetime
from typing import Any

import requests
import schemathesis
from schemathesis.core.parameters import ParameterLocation

_lock = threading.Lock()
_rng = random.Random(os.environ.get("SESSIOND_FUZZ_HOOK_SEED", "sessiond"))

# Live-ish sessions: token -> facts, and handle -> token. Never printed.
_tokens: dict[str, dict[str, Any]] = {}
_by_handle: dict[str, str] = {}
_all_tokens: set[str] = set()
# Sessions this run ended (handle -> when) and force-logouts (user id -> [(when, except)]).
_ended: dict[str, float] = {}
_force_logouts: dict[str, list[tuple[float, str | None]]] = collections.defaultdict(list)
_user_ids: list[str] = []

_counts: collections.Counter[tuple[str, int]] = collections.Counter()
_dropped: collections.Counter[str] = collections.Counter()
_substituted: collections.Counter[str] = collections.Counter()

TOKEN_OPERATIONS = {("GET", "/v1/session"), ("PATCH", "/v1/session"), ("DELETE", "/v1/session"),
                    ("POST", "/v1/session/rotate")}
HANDLE_OPERATIONS = {("GET", "/v1/sessions/{handle}"), ("DELETE", "/v1/sessions/{handle}")}
USER_OPERATIONS = {("GET", "/v1/users/{user_id}/sessions"), ("DELETE", "/v1/users/{user_id}/sessions")}


def _parse_time(text: Any) -> float:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return float("inf")


def _remember(body: Any) -> None:
    if not isinstance(body, dict) or not isinstance(body.get("token"), str) or not isinstance(body.get("handle"), str):
        return
    token, handle = body["token"], body["handle"]
    ends = min(_parse_time(body.get("idle_expires_at")), _parse_time(body.get("expires_at")))
    with _lock:
        _tokens[token] = {"handle": handle, "user_id": body.get("user_id"), "created": time.time(), "ends": ends}
        _by_handle[handle] = token
        _all_tokens.add(token)
        if isinstance(body.get("user_id"), str):
            _user_ids.append(body["user_id"])
            del _user_ids[:-500]
        # Keep the pool bounded: drop the oldest.
        while len(_tokens) > 2000:
            old = next(iter(_tokens))
            _by_handle.pop(_tokens.pop(old)["handle"], None)


def _end(handle: str | None) -> None:
    if handle:
        with _lock:
            _ended[handle] = time.time()
            token = _by_handle.pop(handle, None)
            if token:
                _tokens.pop(token, None)


def _seed() -> None:
    url, key = os.environ.get("SESSIOND_FUZZ_URL"), os.environ.get("SESSIOND_FUZZ_SEED_KEY")
    if not url or not key:
        return
    for i in range(8):
        body = {"user_id": f"fuzz-seed-{i % 3}", "data": {"seed": i}}
        try:
            response = requests.post(url.rstrip("/") + "/v1/sessions", json=body, timeout=10,
                                     headers={"Authorization": f"Bearer {key}"})
        except requests.RequestException:
            return
        if response.status_code == 201:
            _remember(response.json())


_seed()


def _operation(case: Any) -> tuple[str, str]:
    return case.operation.method.upper(), case.operation.path


def _component_is_negative(case: Any, location: ParameterLocation) -> bool:
    meta = case.meta
    if meta is None:
        return True
    info = meta.components.get(location)
    return info is not None and info.mode.is_negative


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    meta = case.meta
    if meta is None or meta.phase.name == "stateful" or _rng.random() < 1 / 3:
        return case
    operation = _operation(case)
    with _lock:
        live = [t for t, facts in _tokens.items() if facts["ends"] > time.time() + 2]
        users = list(_user_ids)
    if operation in TOKEN_OPERATIONS and live and case.headers and "X-Session-Token" in case.headers \
            and not _component_is_negative(case, ParameterLocation.HEADER):
        case.headers["X-Session-Token"] = _rng.choice(live)
        _substituted["token"] += 1
    elif operation in HANDLE_OPERATIONS and live and case.path_parameters \
            and not _component_is_negative(case, ParameterLocation.PATH):
        with _lock:
            handle = _tokens.get(_rng.choice(live), {}).get("handle")
        if handle:
            case.path_parameters["handle"] = handle
            _substituted["handle"] += 1
    elif operation in USER_OPERATIONS and users and case.path_parameters \
            and not _component_is_negative(case, ParameterLocation.PATH):
        case.path_parameters["user_id"] = _path_segment(_rng.choice(users))
        _substituted["user_id"] += 1
    return case


def _path_segment(value: str) -> str:
    """A user id as one percent-encoded path segment, as Schemathesis encodes generated ones
    (this hook runs after its encoding)."""
    if value in (".", ".."):
        return value.replace(".", "%2E")
    return urllib.parse.quote(value, safe="")


def _json(response: Any) -> Any:
    try:
        return json.loads(response.content)
    except (ValueError, TypeError):
        return None


def _header(response: Any, name: str) -> str | None:
    values = response.headers.get(name.lower())
    return values[0] if values else None


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    method, path = _operation(case)
    with _lock:
        _counts[(f"{method} {path}", response.status_code)] += 1
    if response.status_code >= 300:
        return
    body = _json(response)
    sent_token = (response.request.headers.get("X-Session-Token") if response.request is not None else None)
    if (method, path) == ("POST", "/v1/sessions"):
        _remember(body)
    elif (method, path) == ("POST", "/v1/session/rotate"):
        with _lock:
            old = _tokens.get(sent_token or "", {}).get("handle")
        _end(old)
        _remember(body)
    elif (method, path) == ("DELETE", "/v1/session"):
        _end(_header(response, "X-Session-Handle"))
    elif (method, path) == ("DELETE", "/v1/sessions/{handle}"):
        _end(_header(response, "X-Session-Handle"))
    elif (method, path) == ("DELETE", "/v1/users/{user_id}/sessions"):
        user_id = urllib.parse.unquote(urllib.parse.urlsplit(response.request.url).path.split("/")[3])
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(response.request.url).query)
        keep = (query.get("except") or [None])[0]
        with _lock:
            _force_logouts[user_id].append((time.time(), keep))
            for token, facts in list(_tokens.items()):
                if facts["user_id"] == user_id and facts["handle"] != keep:
                    _ended[facts["handle"]] = time.time()
                    _by_handle.pop(facts["handle"], None)
                    _tokens.pop(token, None)


def _session_ended_by_this_run(handle: str, user_id: str | None, created: float | None, ends: float | None) -> bool:
    with _lock:
        if handle in _ended:
            return True
        if ends is not None and ends <= time.time() + 1:
            return True
        for when, keep in _force_logouts.get(user_id or "", []):
            if keep != handle and (created is None or when >= created - 1):
                return True
    return False


def _sent_query_is_valid(case: Any, response: Any) -> bool:
    """Whether the query string that was sent (not the one generated) is one the document allows."""
    if response.request is None:
        return False
    sent = urllib.parse.parse_qsl(urllib.parse.urlsplit(response.request.url).query, keep_blank_values=True)
    declared = {parameter.name: parameter for parameter in case.operation.query}
    names = [name for name, _ in sent]
    if len(set(names)) != len(names):
        return False
    for name, value in sent:
        parameter = declared.get(name)
        if parameter is None:
            return False
        if not parameter.is_valid(value) and not (re.fullmatch(r"-?[0-9]+", value) and parameter.is_valid(int(value))):
            return False
    return True


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    kind = type(failure).__name__
    method, path = _operation(case)
    if kind == "AcceptedNegativeData" and case.meta is not None:
        negative = {loc for loc, info in case.meta.components.items() if info.mode.is_negative}
        if ParameterLocation.QUERY in negative and _sent_query_is_valid(case, response):
            negative.discard(ParameterLocation.QUERY)
            if not negative:
                _dropped["ST201: the invalid query never reached the wire"] += 1
                return False
        if negative == {ParameterLocation.COOKIE} and case.headers and "X-Session-Token" in case.headers:
            _dropped["ST201: cookie ignored because X-Session-Token is present"] += 1
            return False
    if kind == "EnsureResourceAvailability" and (method, path) in HANDLE_OPERATIONS:
        handle = (case.path_parameters or {}).get("handle")
        with _lock:
            facts = _tokens.get(_by_handle.get(handle, ""), {})
        # A session that is not in the pool any more was ended (or dropped for size): ask the
        # run's record, and trust the 404 only if nothing of this run explains it.
        if handle and _session_ended_by_this_run(handle, facts.get("user_id"), facts.get("created"), facts.get("ends")):
            _dropped["ST302: session ended by this run (rotate, logout, revoke, force-logout) or expired"] += 1
            return False
    if kind == "UseAfterFree" and (method, path) == ("GET", "/v1/users/{user_id}/sessions"):
        _dropped["use-after-free: a user with no sessions lists as an empty 200"] += 1
        return False
    return True


@atexit.register
def _report() -> None:
    log_hits = None
    log_path = os.environ.get("SESSIOND_FUZZ_LOG")
    if log_path and os.path.exists(log_path):
        with open(log_path, "rb") as f:
            text = f.read()
        log_hits = sum(1 for token in _all_tokens if token.encode() in text)
    stats = {
        "responses": sum(_counts.values()),
        "server_errors": sum(n for (op, status), n in _counts.items() if status >= 500),
        "by_operation": {f"{op} {status}": n for (op, status), n in sorted(_counts.items())},
        "dropped_failures": dict(_dropped),
        "substituted": dict(_substituted),
        "tokens_seen": len(_all_tokens),
        "tokens_found_in_log": log_hits,
    }
    out = os.environ.get("SESSIOND_FUZZ_STATS")
    if out:
        with open(out, "w") as f:
            json.dump(stats, f, indent=1, sort_keys=True)
