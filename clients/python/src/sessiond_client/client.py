"""`SessiondClient` (sync) and `AsyncSessiondClient` (asyncio): one method per operation of
sessiond's openapi.yaml, named after its operationId."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx

from . import _operations as ops
from .errors import SessiondError
from .models import CreatedSession, RevokeResult, Session, SessionList

T = TypeVar("T")

# httpx errors meaning the request never reached sessiond, so retrying cannot apply it twice.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)


def _check_config(base_url: object, api_key: object) -> str:
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must be an http:// or https:// URL, not {base_url!r}")
    if not isinstance(api_key, str) or len(api_key) < 24 or not api_key.isprintable() or any(c in api_key for c in " ,"):
        # Never echo the key.
        raise ValueError("api_key must be a sessiond API key: 24 or more printable characters, no spaces or commas")
    return base_url.rstrip("/")


class _ClientBase:
    def __init__(self, base_url: str, api_key: str, retry: ops.RetryPolicy) -> None:
        self.base_url = _check_config(base_url, api_key)
        if not isinstance(retry, ops.RetryPolicy):
            raise TypeError(f"retry must be a RetryPolicy, not {type(retry).__name__}")
        self.retry = retry
        self._auth = {"Authorization": f"Bearer {api_key}"}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def _request(self, op: ops.Operation[Any]) -> httpx.Request:
        return httpx.Request(op.method, self.base_url + op.path, params=op.params,
                             headers={**self._auth, **op.headers}, content=op.body)


class SessiondClient(_ClientBase):
    """Blocking client. Thread-safe (one httpx connection pool); close it, or use `with`."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 5.0,
                 retry: ops.RetryPolicy = ops.RetryPolicy()) -> None:
        super().__init__(base_url, api_key, retry)
        self._http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SessiondClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _call(self, op: ops.Operation[T]) -> T:
        retry = 0
        while True:
            failure: SessiondError
            try:
                response = self._http.send(self._request(op))
            except _NOT_SENT as e:
                failure = ops.unreachable(self.base_url, e)
            except httpx.HTTPError as e:
                raise ops.unreachable(self.base_url, e) from None
            else:
                if response.status_code != 503:
                    return op.finish(response)
                failure = ops.error_from_response(response)
            delay = self.retry.delay(retry, failure.retry_after)
            if delay is None:
                raise failure
            time.sleep(delay)
            retry += 1

    def create_session(self, user_id: str, *, data: Mapping[str, Any] | None = None,
                       idle_timeout: int | None = None, absolute_timeout: int | None = None,
                       ip: str | None = None, user_agent: str | None = None) -> CreatedSession:
        return self._call(ops.create_session(user_id, data, idle_timeout, absolute_timeout, ip, user_agent))

    def lookup_session(self, token: str, *, touch: bool = True) -> Session:
        return self._call(ops.lookup_session(token, touch))

    def update_session_data(self, token: str, patch: Mapping[str, Any], *, if_match: int | None = None) -> Session:
        return self._call(ops.update_session_data(token, patch, if_match))

    def revoke_session(self, token: str) -> RevokeResult:
        return self._call(ops.revoke_session(token))

    def rotate_session(self, token: str) -> CreatedSession:
        return self._call(ops.rotate_session(token))

    def list_user_sessions(self, user_id: str, *, limit: int | None = None, cursor: str | None = None) -> SessionList:
        return self._call(ops.list_user_sessions(user_id, limit, cursor))

    def iter_user_sessions(self, user_id: str, *, page_size: int = 100) -> Iterator[Session]:
        """Every live session of the user, newest first, a page at a time."""
        cursor: str | None = None
        while True:
            page = self.list_user_sessions(user_id, limit=page_size, cursor=cursor)
            yield from page.sessions
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def force_logout_user(self, user_id: str, *, except_handle: str | None = None) -> int:
        """Revokes the user's sessions (but `except_handle`'s); returns how many were live."""
        return self._call(ops.force_logout_user(user_id, except_handle))

    def read_session_by_handle(self, handle: str) -> Session:
        return self._call(ops.read_session_by_handle(handle))

    def revoke_session_by_handle(self, handle: str) -> RevokeResult:
        return self._call(ops.revoke_session_by_handle(handle))

    def forward_auth(self, token: str, path: str = "/", *, method: str = "GET") -> Session:
        """The forward-auth check proxies make (`/v1/auth/{path}`, any of its methods):
        answers like `lookup_session`, and always touches."""
        return self._call(ops.forward_auth(token, path, method))

    def health(self) -> str:
        return self._call(ops.health())

    def readiness(self) -> str:
        return self._call(ops.readiness())

    def metrics(self) -> str:
        return self._call(ops.metrics())


class AsyncSessiondClient(_ClientBase):
    """asyncio client, same methods as `SessiondClient`; close it with `aclose`, or `async with`.

    Its connections belong to the event loop that opened them, so it keeps one pool per loop:
    a client made at import time serves an app whatever loop runs it (test clients start one
    per test).
    """

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 5.0,
                 retry: ops.RetryPolicy = ops.RetryPolicy()) -> None:
        super().__init__(base_url, api_key, retry)
        self._timeout = timeout
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = \
            weakref.WeakKeyDictionary()

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = self._pools[loop] = httpx.AsyncClient(timeout=self._timeout)
        return pool

    async def aclose(self) -> None:
        """Closes the connections of the running loop's pool."""
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.aclose()

    async def __aenter__(self) -> AsyncSessiondClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def _call(self, op: ops.Operation[T]) -> T:
        retry = 0
        while True:
            failure: SessiondError
            try:
                response = await self._http().send(self._request(op))
            except _NOT_SENT as e:
                failure = ops.unreachable(self.base_url, e)
            except httpx.HTTPError as e:
                raise ops.unreachable(self.base_url, e) from None
            else:
                if response.status_code != 503:
                    return op.finish(response)
                failure = ops.error_from_response(response)
            delay = self.retry.delay(retry, failure.retry_after)
            if delay is None:
                raise failure
            await asyncio.sleep(delay)
            retry += 1

    async def create_session(self, user_id: str, *, data: Mapping[str, Any] | None = None,
                             idle_timeout: int | None = None, absolute_timeout: int | None = None,
                             ip: str | None = None, user_agent: str | None = None) -> CreatedSession:
        return await self._call(ops.create_session(user_id, data, idle_timeout, absolute_timeout, ip, user_agent))

    async def lookup_session(self, token: str, *, touch: bool = True) -> Session:
        return await self._call(ops.lookup_session(token, touch))

    async def update_session_data(self, token: str, patch: Mapping[str, Any], *,
                                  if_match: int | None = None) -> Session:
        return await self._call(ops.update_session_data(token, patch, if_match))

    async def revoke_session(self, token: str) -> RevokeResult:
        return await self._call(ops.revoke_session(token))

    async def rotate_session(self, token: str) -> CreatedSession:
        return await self._call(ops.rotate_session(token))

    async def list_user_sessions(self, user_id: str, *, limit: int | None = None,
                                 cursor: str | None = None) -> SessionList:
        return await self._call(ops.list_user_sessions(user_id, limit, cursor))

    async def iter_user_sessions(self, user_id: str, *, page_size: int = 100) -> AsyncIterator[Session]:
        """Every live session of the user, newest first, a page at a time."""
        cursor: str | None = None
        while True:
            page = await self.list_user_sessions(user_id, limit=page_size, cursor=cursor)
            for session in page.sessions:
                yield session
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def force_logout_user(self, user_id: str, *, except_handle: str | None = None) -> int:
        """Revokes the user's sessions (but `except_handle`'s); returns how many were live."""
        return await self._call(ops.force_logout_user(user_id, except_handle))

    async def read_session_by_handle(self, handle: str) -> Session:
        return await self._call(ops.read_session_by_handle(handle))

    async def revoke_session_by_handle(self, handle: str) -> RevokeResult:
        return await self._call(ops.revoke_session_by_handle(handle))

    async def forward_auth(self, token: str, path: str = "/", *, method: str = "GET") -> Session:
        """As `SessiondClient.forward_auth`."""
        return await self._call(ops.forward_auth(token, path, method))

    async def health(self) -> str:
        return await self._call(ops.health())

    async def readiness(self) -> str:
        return await self._call(ops.readiness())

    async def metrics(self) -> str:
        return await self._call(ops.metrics())
