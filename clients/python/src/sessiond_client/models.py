"""The answers of sessiond as typed, immutable values.

`CreatedSession` carries the token and `set_cookie`; both are left out of its repr (and of
every other repr and message in this package), so logging a session never leaks its token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import UnexpectedResponse

JSONObject = dict[str, Any]


@dataclass(frozen=True)
class Session:
    handle: str
    user_id: str
    data: JSONObject
    version: int
    created_at: datetime
    last_seen_at: datetime
    idle_expires_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None

    @property
    def ends_at(self) -> datetime:
        """When the session ends if nothing touches it again."""
        return min(self.idle_expires_at, self.expires_at)


@dataclass(frozen=True)
class CreatedSession(Session):
    """A session with its token: only create and rotate answer one."""

    token: str = field(repr=False)
    set_cookie: str = field(repr=False)


@dataclass(frozen=True)
class RevokeResult:
    revoked: bool
    clear_cookie: str


@dataclass(frozen=True)
class SessionList:
    user_id: str
    sessions: list[Session]
    total: int
    next_cursor: str | None


class _Reader:
    """Typed access to one JSON object of an answer; a wrong shape is an UnexpectedResponse."""

    def __init__(self, value: object, what: str) -> None:
        if not isinstance(value, dict):
            raise UnexpectedResponse(f"sessiond answered a {what} that is not a JSON object")
        self._object: dict[str, object] = value
        self._what = what

    def _get(self, name: str, kind: type | tuple[type, ...]) -> Any:
        value = self._object.get(name)
        # bool is an int in Python: never accept it where a number is meant.
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise UnexpectedResponse(f"sessiond answered a {self._what} whose {name!r} is missing or mistyped")
        return value

    def text(self, name: str) -> str:
        value: str = self._get(name, str)
        return value

    def optional_text(self, name: str) -> str | None:
        value: str | None = self._get(name, (str, type(None)))
        return value

    def integer(self, name: str) -> int:
        value: int = self._get(name, int)
        return value

    def boolean(self, name: str) -> bool:
        value: bool = self._get(name, bool)
        return value

    def mapping(self, name: str) -> JSONObject:
        value: JSONObject = self._get(name, dict)
        return value

    def array(self, name: str) -> list[object]:
        value: list[object] = self._get(name, list)
        return value

    def time(self, name: str) -> datetime:
        text = self.text(name)
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise UnexpectedResponse(f"sessiond answered a {self._what} whose {name!r} is not a time") from None


def _session_fields(r: _Reader) -> dict[str, Any]:
    return {
        "handle": r.text("handle"),
        "user_id": r.text("user_id"),
        "data": r.mapping("data"),
        "version": r.integer("version"),
        "created_at": r.time("created_at"),
        "last_seen_at": r.time("last_seen_at"),
        "idle_expires_at": r.time("idle_expires_at"),
        "expires_at": r.time("expires_at"),
        "ip": r.optional_text("ip"),
        "user_agent": r.optional_text("user_agent"),
    }


def session_from_json(value: object) -> Session:
    return Session(**_session_fields(_Reader(value, "session")))


def created_session_from_json(value: object) -> CreatedSession:
    r = _Reader(value, "created session")
    return CreatedSession(**_session_fields(r), token=r.text("token"), set_cookie=r.text("set_cookie"))


def revoke_result_from_json(value: object) -> RevokeResult:
    r = _Reader(value, "revoke result")
    return RevokeResult(revoked=r.boolean("revoked"), clear_cookie=r.text("clear_cookie"))


def session_list_from_json(value: object) -> SessionList:
    r = _Reader(value, "session list")
    return SessionList(
        user_id=r.text("user_id"),
        sessions=[session_from_json(item) for item in r.array("sessions")],
        total=r.integer("total"),
        next_cursor=r.optional_text("next_cursor"),
    )


def revoked_count_from_json(value: object) -> int:
    return _Reader(value, "force-logout result").integer("revoked")
