"""The per-request session that every framework integration hands to the app.

A session exists in sessiond from login to logout only: sessiond keeps sessions per user, so a
visitor who has not logged in has none, and writing data before `login()` raises `NotLoggedIn`.
The cookie is the one sessiond's `set_cookie` / `clear_cookie` say, sent as is. When sessiond
cannot answer, `SessiondUnavailable` propagates and the integrations answer 503: a request is
never treated as logged out because sessiond was down.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any, TypeVar

from .client import AsyncSessiondClient, SessiondClient
from .errors import InvalidSession, NotFound
from .models import CreatedSession, Session

UNAVAILABLE_BODY = b"The session store is not answering right now; try again in a moment.\n"
# sessiond's Retry-After for store_unavailable.
UNAVAILABLE_RETRY_AFTER = "1"

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class NotLoggedIn(Exception):
    """An operation that needs a logged-in user was called on a request without one."""


class ConfigurationError(Exception):
    """The integration and sessiond disagree (cookie name), or a needed key is missing."""


class CookieSettings:
    """The session cookie's name and SameSite, which must match sessiond's
    SESSIOND_COOKIE_NAME and SESSIOND_COOKIE_SAMESITE."""

    def __init__(self, name: str = "__Host-session", samesite: str = "Lax") -> None:
        if not isinstance(name, str) or not re.fullmatch(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", name):
            raise ValueError(f"cookie name must be an HTTP token, not {name!r}")
        if samesite not in ("Lax", "Strict"):
            raise ValueError(f"cookie samesite must be 'Lax' or 'Strict' (sessiond's choices), not {samesite!r}")
        self.name = name
        self.samesite = samesite

    def clear(self) -> str:
        """sessiond's clear_cookie, for a dead cookie that sessiond was not asked to revoke."""
        return f"{self.name}=; Path=/; Secure; HttpOnly; SameSite={self.samesite}; Max-Age=0"

    def token_from_header(self, cookie_header: str | None) -> str | None:
        """The session cookie's value in a Cookie header (None when absent)."""
        for part in (cookie_header or "").split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name == self.name:
                return value.strip().strip('"')
        return None

    def checked(self, created: CreatedSession) -> str:
        """created.set_cookie, once it is known to name this cookie."""
        if not created.set_cookie.startswith(self.name + "="):
            raise ConfigurationError(
                f"sessiond's set_cookie names another cookie than {self.name!r}: set the "
                "integration's cookie name to sessiond's SESSIOND_COOKIE_NAME")
        return created.set_cookie


def _is_json_equal(a: object, b: object) -> bool:
    # Python has 1 == 1.0 == True; JSON does not.
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _refuse_null(key: str, value: object) -> None:
    if value is None or (isinstance(value, Mapping) and any(v is None for v in value.values())):
        raise ValueError(
            f"session data {key!r} cannot be set to or hold None: sessiond updates data by JSON "
            "merge patch (RFC 7396), where null deletes a key; delete the key instead")
    if isinstance(value, Mapping):
        for k, v in value.items():
            _refuse_null(k, v)


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The RFC 7396 merge patch that turns `old` into `new` ({} when they are equal)."""
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key in old and _is_json_equal(old[key], value):
            continue
        if isinstance(value, Mapping) and isinstance(old.get(key), Mapping):
            patch[key] = merge_patch(old[key], value)
        else:
            _refuse_null(key, value)
            patch[key] = value
    return patch


def clean_user_agent(value: str | None) -> str | None:
    """A User-Agent header as sessiond takes it: no control characters, at most 512."""
    return None if value is None else _CONTROL_CHARS.sub("", value)[:512]


def clean_ip(value: str | None) -> str | None:
    return value if value is not None and re.fullmatch(r"[!-~]{1,64}", value) else None


def revoke_own_session(admin: SessiondClient, user_id: str, handle: str) -> bool:
    """Revokes the session `handle` if it is one of `user_id`'s (the admin key could revoke
    anyone's); False when it is not theirs or already gone."""
    try:
        if admin.read_session_by_handle(handle).user_id != user_id:
            return False
        admin.revoke_session_by_handle(handle)
    except NotFound:
        return False
    return True


class _RequestSessionBase(MutableMapping[str, Any]):
    """State and data of one request's session; the data is this mapping."""

    def __init__(self, cookies: CookieSettings, token: str | None, session: Session | None,
                 dead_cookie: bool, ip: str | None, user_agent: str | None) -> None:
        self._cookies = cookies
        self._token = token
        self._session = session
        self._saved: dict[str, Any] = copy.deepcopy(session.data) if session else {}
        self._data: dict[str, Any] = copy.deepcopy(self._saved)
        self._set_cookie: str | None = None
        self._clear_cookie: str | None = cookies.clear() if dead_cookie else None
        self._ip = clean_ip(ip)
        self._user_agent = clean_user_agent(user_agent)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(user_id={self.user_id!r}, handle={self.handle!r})"

    @property
    def session(self) -> Session | None:
        """The session as sessiond last answered it; None when nobody is logged in."""
        return self._session

    @property
    def user_id(self) -> str | None:
        return self._session.user_id if self._session else None

    @property
    def handle(self) -> str | None:
        return self._session.handle if self._session else None

    def _require_login(self) -> tuple[str, Session]:
        if self._token is None or self._session is None:
            raise NotLoggedIn("nobody is logged in on this request: call login() first "
                              "(sessiond keeps the sessions of logged-in users only)")
        return self._token, self._session

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._require_login()
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        self._require_login()
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def _adopt(self, created: CreatedSession) -> None:
        self._set_cookie = self._cookies.checked(created)
        self._clear_cookie = None
        self._token = created.token
        self._session = created
        self._saved = copy.deepcopy(created.data)

    def _forget(self, clear_cookie: str) -> None:
        self._token = self._session = self._set_cookie = None
        self._clear_cookie = clear_cookie
        self._saved, self._data = {}, {}

    def _pending_patch(self) -> dict[str, Any]:
        return merge_patch(self._saved, self._data) if self._session else {}

    def _saved_patch(self, session: Session) -> None:
        self._session = session
        self._saved = copy.deepcopy(session.data)

    def _set_cookie_headers(self) -> list[str]:
        return [c for c in (self._set_cookie, self._clear_cookie) if c is not None]


class RequestSession(_RequestSessionBase):
    """The session of one request (WSGI, Flask): a mapping of its data, plus login and devices."""

    def __init__(self, client: SessiondClient, admin_client: SessiondClient | None,
                 cookies: CookieSettings, token: str | None, session: Session | None,
                 dead_cookie: bool, ip: str | None, user_agent: str | None) -> None:
        super().__init__(cookies, token, session, dead_cookie, ip, user_agent)
        self._client = client
        self._admin_client = admin_client

    def login(self, user_id: str, data: Mapping[str, Any] | None = None) -> Session:
        """Logs `user_id` in under a new token: the request's old token stops working
        (rotated when it was this user's, else revoked), so a planted token is worthless."""
        if self._token is not None and self._session is not None:
            if self._session.user_id == user_id:
                try:
                    rotated = self._client.rotate_session(self._token)
                    self._adopt(rotated)
                    self._data.update(data or {})
                    return rotated
                except InvalidSession:
                    pass  # it ended meanwhile: a new one below
            else:
                self._client.revoke_session(self._token)
        created = self._client.create_session(user_id, data=data, ip=self._ip, user_agent=self._user_agent)
        self._adopt(created)
        self._data = copy.deepcopy(self._saved)
        return created

    def rotate(self) -> None:
        """A new token for the same session, after a privilege change."""
        token, _ = self._require_login()
        data = self._data
        self._adopt(self._client.rotate_session(token))
        self._data = data

    def logout(self) -> None:
        """Revokes the session and clears the cookie; nothing happens when nobody is logged in."""
        if self._token is not None:
            self._forget(self._client.revoke_session(self._token).clear_cookie)

    def _admin(self) -> SessiondClient:
        if self._admin_client is None:
            raise ConfigurationError("devices need an admin_client (a client with sessiond's admin key)")
        return self._admin_client

    def devices(self) -> list[Session]:
        """The user's live sessions, newest first (`handle` tells the current one)."""
        _, session = self._require_login()
        return list(self._admin().iter_user_sessions(session.user_id))

    def logout_device(self, handle: str) -> bool:
        """Logs out one of the user's own sessions; False when it is not theirs or is gone."""
        _, session = self._require_login()
        if handle == session.handle:
            self.logout()
            return True
        return revoke_own_session(self._admin(), session.user_id, handle)

    def logout_other_devices(self) -> int:
        """Revokes every other session of the user; returns how many were live."""
        _, session = self._require_login()
        return self._admin().force_logout_user(session.user_id, except_handle=session.handle)

    def commit(self) -> list[str]:
        """Writes changed data to sessiond; returns the Set-Cookie values the response needs."""
        patch = self._pending_patch()
        if patch and self._token is not None:
            self._saved_patch(self._client.update_session_data(self._token, patch))
        return self._set_cookie_headers()


class AsyncRequestSession(_RequestSessionBase):
    """The session of one request (ASGI): as `RequestSession`, with awaitable operations."""

    def __init__(self, client: AsyncSessiondClient, admin_client: AsyncSessiondClient | None,
                 cookies: CookieSettings, token: str | None, session: Session | None,
                 dead_cookie: bool, ip: str | None, user_agent: str | None) -> None:
        super().__init__(cookies, token, session, dead_cookie, ip, user_agent)
        self._client = client
        self._admin_client = admin_client

    async def login(self, user_id: str, data: Mapping[str, Any] | None = None) -> Session:
        """As `RequestSession.login`."""
        if self._token is not None and self._session is not None:
            if self._session.user_id == user_id:
                try:
                    rotated = await self._client.rotate_session(self._token)
                    self._adopt(rotated)
                    self._data.update(data or {})
                    return rotated
                except InvalidSession:
                    pass  # it ended meanwhile: a new one below
            else:
                await self._client.revoke_session(self._token)
        created = await self._client.create_session(user_id, data=data, ip=self._ip, user_agent=self._user_agent)
        self._adopt(created)
        self._data = copy.deepcopy(self._saved)
        return created

    async def rotate(self) -> None:
        token, _ = self._require_login()
        data = self._data
        self._adopt(await self._client.rotate_session(token))
        self._data = data

    async def logout(self) -> None:
        if self._token is not None:
            self._forget((await self._client.revoke_session(self._token)).clear_cookie)

    def _admin(self) -> AsyncSessiondClient:
        if self._admin_client is None:
            raise ConfigurationError("devices need an admin_client (a client with sessiond's admin key)")
        return self._admin_client

    async def devices(self) -> list[Session]:
        _, session = self._require_login()
        return [s async for s in self._admin().iter_user_sessions(session.user_id)]

    async def logout_device(self, handle: str) -> bool:
        _, session = self._require_login()
        if handle == session.handle:
            await self.logout()
            return True
        admin = self._admin()
        try:
            if (await admin.read_session_by_handle(handle)).user_id != session.user_id:
                return False
            await admin.revoke_session_by_handle(handle)
        except NotFound:
            return False
        return True

    async def logout_other_devices(self) -> int:
        _, session = self._require_login()
        return await self._admin().force_logout_user(session.user_id, except_handle=session.handle)

    async def commit(self) -> list[str]:
        patch = self._pending_patch()
        if patch and self._token is not None:
            self._saved_patch(await self._client.update_session_data(self._token, patch))
        return self._set_cookie_headers()


RS = TypeVar("RS", bound=RequestSession)


def open_session(client: SessiondClient, admin_client: SessiondClient | None, cookies: CookieSettings,
                 token: str | None, ip: str | None, user_agent: str | None,
                 session_class: type[RS]) -> RS:
    """Looks the cookie's token up; a dead or malformed one gives a logged-out session that
    clears the cookie. Raises SessiondUnavailable when sessiond cannot tell."""
    session = None
    if token is not None:
        try:  # a malformed token raises InvalidSession here without reaching sessiond
            session = client.lookup_session(token)
        except InvalidSession:
            pass
    dead = token is not None and session is None
    return session_class(client, admin_client, cookies, token if session else None, session, dead, ip, user_agent)


async def open_async_session(client: AsyncSessiondClient, admin_client: AsyncSessiondClient | None,
                             cookies: CookieSettings, token: str | None, ip: str | None,
                             user_agent: str | None) -> AsyncRequestSession:
    """As `open_session`, for asyncio."""
    session = None
    if token is not None:
        try:  # a malformed token raises InvalidSession here without reaching sessiond
            session = await client.lookup_session(token)
        except InvalidSession:
            pass
    dead = token is not None and session is None
    return AsyncRequestSession(client, admin_client, cookies, token if session else None, session, dead, ip,
                               user_agent)
