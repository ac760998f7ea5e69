"""WSGI middleware: `environ["sessiond.session"]` is the request's `RequestSession`.

    app = SessiondWSGIMiddleware(app, client=SessiondClient(URL, APP_KEY),
                                 admin_client=SessiondClient(URL, ADMIN_KEY))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Optional

from .client import SessiondClient
from .errors import SessiondUnavailable
from .web import UNAVAILABLE_BODY, UNAVAILABLE_RETRY_AFTER, CookieSettings, RequestSession, open_session

ENVIRON_KEY = "sessiond.session"

ExcInfo = tuple[type[BaseException], BaseException, Optional[TracebackType]]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def session_of(environ: dict[str, Any]) -> RequestSession:
    """The request's session, set by SessiondWSGIMiddleware."""
    session = environ.get(ENVIRON_KEY)
    if not isinstance(session, RequestSession):
        raise LookupError("no sessiond session on this request: is SessiondWSGIMiddleware installed?")
    return session


def _unavailable(start_response: StartResponse) -> list[bytes]:
    start_response("503 Service Unavailable", [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Retry-After", UNAVAILABLE_RETRY_AFTER),
        ("Cache-Control", "no-store"),
    ])
    return [UNAVAILABLE_BODY]


class SessiondWSGIMiddleware:
    def __init__(self, app: WSGIApp, *, client: SessiondClient, admin_client: SessiondClient | None = None,
                 cookie_name: str = "__Host-session", cookie_samesite: str = "Lax") -> None:
        self.app = app
        self.client = client
        self.admin_client = admin_client
        self.cookies = CookieSettings(cookie_name, cookie_samesite)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            session = open_session(self.client, self.admin_client, self.cookies,
                                   self.cookies.token_from_header(environ.get("HTTP_COOKIE")),
                                   environ.get("REMOTE_ADDR"), environ.get("HTTP_USER_AGENT"), RequestSession)
        except SessiondUnavailable:
            return _unavailable(start_response)
        environ[ENVIRON_KEY] = session
        started = False

        def start_with_cookies(status: str, headers: list[tuple[str, str]],
                               exc_info: ExcInfo | None = None) -> Callable[[bytes], object]:
            nonlocal started
            cookies = session.commit()
            started = True
            return start_response(status, [*headers, *(("Set-Cookie", c) for c in cookies)], exc_info)

        try:
            return self.app(environ, start_with_cookies)
        except SessiondUnavailable:
            if started:
                raise
            return _unavailable(start_response)
