"""Schemathesis hooks for scripts/fuzz (loaded through scripts/contract/schemathesis.toml).

1. Real sessions for the non-stateful phases. A generated token or handle names no session, so
   lookups, patches, rotations and the admin routes would only ever see 401 and 404. Every
   create and rotate answer the fuzzer gets feeds a pool (kept in memory only, never printed),
   seeded at start with a few sessions made with SESSIOND_FUZZ_SEED_KEY (an app key) when it is
   set. In the examples, coverage and fuzzing phases, a case whose headers (or path) were
   generated as valid gets, two times in three, a live token (or handle, or user id) from the
   pool instead, so generated bodies, If-Match values and query strings meet real sessions. The
   stateful phase is left alone: its links carry real values already.

2. Cases shaped so that what is sent is what the case claims to be (no failure is ever dropped):
   - a negative case whose only invalid part is the session cookie is sent without
     `X-Session-Token`: the header takes precedence and the cookie is not read (openapi.yaml,
     SessionTokenHeader), so with both, the invalid cookie would never be judged;
   - a negative case whose invalid query never reaches the wire is not generated: an extra
     parameter whose value is None or an empty list is left out of the URL;
   - in the stateful phase, a valid create gets a user id of its own and timeouts of at least
     2 minutes: the session a link reads right after its create must not have been evicted by
     the per-user cap or have expired meanwhile (Schemathesis would report it missing).
   (No link leads to the force-logout, see openapi.yaml's links.)

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
_user_ids: list[str] = []
_stateful_creates = 0
# Handles of sessions this run ended through their token (rotate, logout): the stateful phase
# reads a create's handle after a later step rotated it, which Schemathesis cannot relate.
_ended: set[str] = set()

_counts: collections.Counter[tuple[str, int]] = collections.Counter()
_shaped: collections.Counter[str] = collections.Counter()
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


def _end(handle: str | None, by_token: bool = False) -> None:
    if handle:
        with _lock:
            if by_token:
                _ended.add(handle)
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


def _negative_components(case: Any) -> set[ParameterLocation]:
    meta = case.meta
    if meta is None:
        return set()
    return {location for location, info in meta.components.items() if info.mode.is_negative}


def _sent_query_is_valid(case: Any) -> bool:
    """Whether the query string that would be sent (not the one generated) is one the document
    allows: requests leaves out a parameter whose value is None or an empty list."""
    try:
        params = case.as_transport_kwargs(base_url="http://sessiond.invalid").get("params")
        url = requests.Request("GET", "http://sessiond.invalid/", params=params).prepare().url or ""
    except Exception:  # a case requests cannot even serialize is sent as generated, and judged
        return False
    sent = urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query, keep_blank_values=True)
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
def filter_case(context: Any, case: Any) -> bool:
    negative = _negative_components(case)
    if ParameterLocation.QUERY in negative and _sent_query_is_valid(case):
        _shaped["negative query that is valid on the wire: not generated"] += 1
        return False
    if case.meta is not None and case.meta.phase.name == "stateful" and _operation(case) in HANDLE_OPERATIONS:
        with _lock:
            ended = (case.path_parameters or {}).get("handle") in _ended
        if ended:
            _shaped["stateful step on a handle this run ended by token: not generated"] += 1
            return False
    return True


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    global _stateful_creates
    meta = case.meta
    if meta is None:
        return case
    operation = _operation(case)
    negative = _negative_components(case)
    if negative == {ParameterLocation.COOKIE} and case.headers and "X-Session-Token" in case.headers:
        del case.headers["X-Session-Token"]
        _shaped["invalid cookie sent without X-Session-Token"] += 1
        return case
    if meta.phase.name == "stateful":
        # Only a valid create: changing an invalid one could make it valid (a timeout of 0
        # raised to 120, an id's trailing space hidden by the suffix), a negative case no more.
        if operation == ("POST", "/v1/sessions") and ParameterLocation.BODY not in negative \
                and isinstance(case.body, dict) and isinstance(case.body.get("user_id"), str):
            with _lock:
                _stateful_creates += 1
                number = _stateful_creates
            case.body["user_id"] = f"{case.body['user_id'][:240]}~{number}"
            for timeout in ("idle_timeout", "absolute_timeout"):
                if isinstance(case.body.get(timeout), int) and case.body[timeout] < 120:
                    case.body[timeout] = 120
            _shaped["stateful create: own user id, timeouts of 2 minutes or more"] += 1
        return case
    if _rng.random() < 1 / 3:
        return case
    with _lock:
        live = [t for t, facts in _tokens.items() if facts["ends"] > time.time() + 2]
        users = list(_user_ids)
    if operation in TOKEN_OPERATIONS and live and case.headers and "X-Session-Token" in case.headers \
            and ParameterLocation.HEADER not in negative:
        case.headers["X-Session-Token"] = _rng.choice(live)
        _substituted["token"] += 1
    elif operation in HANDLE_OPERATIONS and live and case.path_parameters \
            and ParameterLocation.PATH not in negative:
        with _lock:
            handle = _tokens.get(_rng.choice(live), {}).get("handle")
        if handle:
            case.path_parameters["handle"] = handle
            _substituted["handle"] += 1
    elif operation in USER_OPERATIONS and users and case.path_parameters \
            and ParameterLocation.PATH not in negative:
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
        _end(old, by_token=True)
        _remember(body)
    elif (method, path) == ("DELETE", "/v1/session"):
        _end(_header(response, "X-Session-Handle"), by_token=True)
    elif (method, path) == ("DELETE", "/v1/sessions/{handle}"):
        _end(_header(response, "X-Session-Handle"))
    elif (method, path) == ("DELETE", "/v1/users/{user_id}/sessions"):
        user_id = urllib.parse.unquote(urllib.parse.urlsplit(response.request.url).path.split("/")[3])
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(response.request.url).query)
        keep = (query.get("except") or [None])[0]
        with _lock:
            for token, facts in list(_tokens.items()):
                if facts["user_id"] == user_id and facts["handle"] != keep:
                    _by_handle.pop(facts["handle"], None)
                    _tokens.pop(token, None)


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
        "shaped_cases": dict(_shaped),
        "substituted": dict(_substituted),
        "tokens_seen": len(_all_tokens),
        "tokens_found_in_log": log_hits,
    }
    out = os.environ.get("SESSIOND_FUZZ_STATS")
    if out:
        with open(out, "w") as f:
            json.dump(stats, f, indent=1, sort_keys=True)
