"""What each sessiond operation sends and how its answer is read, without any I/O.

The sync and the asyncio client both send these `Operation`s, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import random
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

from . import models
from .errors import ERRORS_BY_CODE, InvalidSession, PreconditionFailed, SessiondError, SessiondUnavailable, UnexpectedResponse

T = TypeVar("T")

# openapi.yaml's Token: 43 base64url characters. Anything else never leaves this process, so a
# stray value (a newline, a cookie from another app) cannot end up in a header or an error.
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class Operation(Generic[T]):
    method: str
    path: str
    expected_status: int
    parse: Callable[[httpx.Response], T]
    params: dict[str, str] = field(default_factory=dict)
    # Out of the repr: it holds the session token.
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    body: bytes | None = None

    def finish(self, response: httpx.Response) -> T:
        """The operation's result from a non-503 answer, or its error raised."""
        if response.status_code != self.expected_status:
            raise error_from_response(response)
        return self.parse(response)


@dataclass(frozen=True)
class RetryPolicy:
    """How 503 answers and refused connections are retried.

    `attempts` counts every try, the first included. Between tries the client waits
    `Retry-After` (when sessiond sends one) plus up to `base_delay` of jitter, or else a random
    time up to `base_delay * 2**retry` ("full jitter", so many clients do not retry in step).
    A `Retry-After` longer than `max_delay` is not waited for: the error is raised at once.
    """

    attempts: int = 3
    base_delay: float = 0.1
    max_delay: float = 5.0

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int) or self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be a whole number of at least 1, not {self.attempts!r}")
        for name in ("base_delay", "max_delay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
                raise ValueError(f"RetryPolicy.{name} must be a finite number of seconds >= 0, not {value!r}")

    def delay(self, retry: int, retry_after: float | None) -> float | None:
        """Seconds to wait before retry number `retry` (0-based), or None to give up."""
        if retry + 1 >= self.attempts:
            return None
        if retry_after is not None:
            if retry_after > self.max_delay:
                return None
            return retry_after + random.uniform(0, self.base_delay)
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**retry))


def unreachable(base_url: str, error: Exception) -> SessiondUnavailable:
    # Only the exception's class: httpx messages can quote the request, and so its headers.
    return SessiondUnavailable(f"sessiond at {base_url} could not be reached ({type(error).__name__})")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


def _etag_version(response: httpx.Response) -> int | None:
    match = re.fullmatch(r'"([0-9]+)"', response.headers.get("ETag", ""))
    return int(match.group(1)) if match else None


def error_from_response(response: httpx.Response) -> SessiondError:
    status = response.status_code
    try:
        body: object = response.json()
    except ValueError:
        body = None
    code = body.get("error") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    cls = ERRORS_BY_CODE.get(code) if isinstance(code, str) else None
    if cls is None or not isinstance(message, str):
        cls = SessiondUnavailable if status == 503 else UnexpectedResponse
        message = f"sessiond answered HTTP {status} without an error code of its contract"
    request_id = response.headers.get("X-Request-Id")
    retry_after = _retry_after(response)
    if cls is PreconditionFailed:
        return PreconditionFailed(message, current_version=_etag_version(response), status=status,
                                  request_id=request_id, retry_after=retry_after)
    return cls(message, status=status, request_id=request_id, retry_after=retry_after)


def _json(parse: Callable[[object], T]) -> Callable[[httpx.Response], T]:
    def read(response: httpx.Response) -> T:
        try:
            value: object = response.json()
        except ValueError:
            raise UnexpectedResponse(f"sessiond answered HTTP {response.status_code} with a body that is not JSON") from None
        return parse(value)

    return read


def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    return value


def _token_headers(token: object) -> dict[str, str]:
    if not isinstance(token, str) or not TOKEN_RE.fullmatch(token):
        # What sessiond answers for a malformed token, without sending it there.
        raise InvalidSession("the session token is malformed (not 43 base64url characters)")
    return {"X-Session-Token": token}


def _path_segment(name: str, value: object) -> str:
    # Every character is escaped, "." too: HTTP clients turn "." and ".." segments into another path.
    return urllib.parse.quote(_text(name, value), safe="").replace(".", "%2E")


def _limit(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"limit must be an int, not {type(value).__name__}")
    return str(value)


def _optional_timeout(name: str, value: object) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"{name} must be a whole number of seconds, not {type(value).__name__}")
    return value


def _json_body(value: Mapping[str, Any]) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    except (TypeError, ValueError) as e:
        raise TypeError(f"session data must be JSON (dicts, lists, str, int, float, bool, None): {e}") from None


def create_session(user_id: str, data: Mapping[str, Any] | None, idle_timeout: int | None,
                   absolute_timeout: int | None, ip: str | None, user_agent: str | None) -> Operation[models.CreatedSession]:
    body: dict[str, Any] = {"user_id": _text("user_id", user_id)}
    if data is not None:
        if not isinstance(data, Mapping):
            raise TypeError(f"data must be a mapping, not {type(data).__name__}")
        body["data"] = dict(data)
    for name, timeout in (("idle_timeout", idle_timeout), ("absolute_timeout", absolute_timeout)):
        if _optional_timeout(name, timeout) is not None:
            body[name] = timeout
    if ip is not None:
        body["ip"] = _text("ip", ip)
    if user_agent is not None:
        body["user_agent"] = _text("user_agent", user_agent)
    return Operation("POST", "/v1/sessions", 201, _json(models.created_session_from_json),
                     headers={"Content-Type": "application/json"}, body=_json_body(body))


def lookup_session(token: str, touch: bool) -> Operation[models.Session]:
    if not isinstance(touch, bool):
        raise TypeError(f"touch must be a bool, not {type(touch).__name__}")
    return Operation("GET", "/v1/session", 200, _json(models.session_from_json),
                     params={} if touch else {"touch": "false"}, headers=_token_headers(token))


def update_session_data(token: str, patch: Mapping[str, Any], if_match: int | None) -> Operation[models.Session]:
    if not isinstance(patch, Mapping):
        raise TypeError(f"patch must be a mapping (an RFC 7396 merge patch), not {type(patch).__name__}")
    headers = {**_token_headers(token), "Content-Type": "application/merge-patch+json"}
    if if_match is not None:
        if isinstance(if_match, bool) or not isinstance(if_match, int) or if_match < 1:
            raise ValueError(f"if_match must be a session version (an int >= 1), not {if_match!r}")
        headers["If-Match"] = f'"{if_match}"'
    return Operation("PATCH", "/v1/session", 200, _json(models.session_from_json), headers=headers,
                     body=_json_body(patch))


def revoke_session(token: str) -> Operation[models.RevokeResult]:
    return Operation("DELETE", "/v1/session", 200, _json(models.revoke_result_from_json),
                     headers=_token_headers(token))


def rotate_session(token: str) -> Operation[models.CreatedSession]:
    return Operation("POST", "/v1/session/rotate", 200, _json(models.created_session_from_json),
                     headers=_token_headers(token))


def list_user_sessions(user_id: str, limit: int | None, cursor: str | None) -> Operation[models.SessionList]:
    params: dict[str, str] = {}
    if limit is not None:
        params["limit"] = _limit(limit)
    if cursor is not None:
        params["cursor"] = _text("cursor", cursor)
    return Operation("GET", f"/v1/users/{_path_segment('user_id', user_id)}/sessions", 200,
                     _json(models.session_list_from_json), params=params)


def force_logout_user(user_id: str, except_handle: str | None) -> Operation[int]:
    params = {} if except_handle is None else {"except": _text("except_handle", except_handle)}
    return Operation("DELETE", f"/v1/users/{_path_segment('user_id', user_id)}/sessions", 200,
                     _json(models.revoked_count_from_json), params=params)


def read_session_by_handle(handle: str) -> Operation[models.Session]:
    return Operation("GET", f"/v1/sessions/{_path_segment('handle', handle)}", 200,
                     _json(models.session_from_json))


def revoke_session_by_handle(handle: str) -> Operation[models.RevokeResult]:
    return Operation("DELETE", f"/v1/sessions/{_path_segment('handle', handle)}", 200,
                     _json(models.revoke_result_from_json))


FORWARD_AUTH_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def forward_auth(token: str, path: str, method: str) -> Operation[models.Session]:
    if method not in FORWARD_AUTH_METHODS:
        raise ValueError(f"method must be one of {', '.join(FORWARD_AUTH_METHODS)}, not {method!r}")
    # The original path's own "/" stay; everything else in a segment is escaped.
    segments = [_path_segment("path", segment) for segment in _text("path", path).lstrip("/").split("/")]
    return Operation(method, "/v1/auth/" + "/".join(segments), 200, _json(models.session_from_json),
                     headers=_token_headers(token))


def _status(expected: str) -> Callable[[object], str]:
    def read(value: object) -> str:
        status = value.get("status") if isinstance(value, dict) else None
        if status != expected:
            raise UnexpectedResponse(f"sessiond answered a status other than {expected!r}")
        return expected

    return read


def health() -> Operation[str]:
    return Operation("GET", "/healthz", 200, _json(_status("ok")))


def readiness() -> Operation[str]:
    return Operation("GET", "/readyz", 200, _json(_status("ready")))


def metrics() -> Operation[str]:
    return Operation("GET", "/metrics", 200, lambda response: response.text)
