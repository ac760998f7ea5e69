"""ASGI middleware (Starlette, FastAPI): `session_of(request)` is the request's
`AsyncRequestSession`.

    app.add_middleware(SessiondMiddleware, client=AsyncSessiondClient(URL, APP_KEY),
                       admin_client=AsyncSessiondClient(URL, ADMIN_KEY))
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

from .client import AsyncSessiondClient
from .errors import SessiondUnavailable
from .web import UNAVAILABLE_BODY, UNAVAILABLE_RETRY_AFTER, AsyncRequestSession, CookieSettings, open_async_session

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

STATE_KEY = "sessiond"


class HasScope(Protocol):
    @property
    def scope(self) -> Scope: ...


def session_of(request: HasScope) -> AsyncRequestSession:
    """The request's session (a Starlette/FastAPI Request, or anything with its ASGI scope)."""
    session = request.scope.get("state", {}).get(STATE_KEY)
    if not isinstance(session, AsyncRequestSession):
        raise LookupError("no sessiond session on this request: is SessiondMiddleware installed?")
    return session


async def _send_unavailable(send: Send) -> None:
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"retry-after", UNAVAILABLE_RETRY_AFTER.encode()),
        (b"cache-control", b"no-store"),
    ]})
    await send({"type": "http.response.body", "body": UNAVAILABLE_BODY})


class SessiondMiddleware:
    def __init__(self, app: ASGIApp, *, client: AsyncSessiondClient,
                 admin_client: AsyncSessiondClient | None = None,
                 cookie_name: str = "__Host-session", cookie_samesite: str = "Lax") -> None:
        self.app = app
        self.client = client
        self.admin_client = admin_client
        self.cookies = CookieSettings(cookie_name, cookie_samesite)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client_address = scope.get("client")
        try:
            session = await open_async_session(
                self.client, self.admin_client, self.cookies, self.cookies.token_from_header(headers.get("cookie")),
                client_address[0] if client_address else None, headers.get("user-agent"))
        except SessiondUnavailable:
            await _send_unavailable(send)
            return
        scope.setdefault("state", {})[STATE_KEY] = session
        started = False
        # After a failed commit the app's response is replaced by the 503: its body is dropped.
        replaced = False

        async def send_with_cookies(message: Message) -> None:
            nonlocal started, replaced
            if replaced:
                return
            if message["type"] == "http.response.start":
                try:
                    cookies = await session.commit()
                except SessiondUnavailable:
                    replaced = started = True
                    await _send_unavailable(send)
                    return
                started = True
                message["headers"] = [*message.get("headers", []),
                                      *((b"set-cookie", c.encode("latin-1")) for c in cookies)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_cookies)
        except SessiondUnavailable:
            if started:
                raise
            await _send_unavailable(send)
