"""Flask session interface: Flask's `session` is the request's `RequestSession`
(a mapping of the session's data, plus `login`, `logout`, `devices`, `logout_other_devices`).

    SessiondFlask(app, client=SessiondClient(URL, APP_KEY), admin_client=SessiondClient(URL, ADMIN_KEY))
"""

from __future__ import annotations

from flask import Flask, Request, Response, session
from flask.sessions import SessionInterface, SessionMixin

from .client import SessiondClient
from .errors import SessiondUnavailable
from .web import UNAVAILABLE_BODY, UNAVAILABLE_RETRY_AFTER, CookieSettings, RequestSession, open_session


class FlaskSession(RequestSession, SessionMixin):
    """Flask's `session` when sessiond answered."""


class UnavailableSession(FlaskSession):
    """Flask's `session` while sessiond cannot answer: the request is answered 503 before any
    view runs (the hook SessiondFlask installs), so nobody reads it as logged out."""

    def __init__(self, error: SessiondUnavailable, client: SessiondClient, cookies: CookieSettings) -> None:
        super().__init__(client, None, cookies, None, None, False, None, None)
        self.error = error


def unavailable_response() -> Response:
    return Response(UNAVAILABLE_BODY, status=503, mimetype="text/plain",
                    headers={"Retry-After": UNAVAILABLE_RETRY_AFTER, "Cache-Control": "no-store"})


class SessiondSessionInterface(SessionInterface):
    def __init__(self, client: SessiondClient, admin_client: SessiondClient | None = None,
                 cookie_name: str = "__Host-session", cookie_samesite: str = "Lax") -> None:
        self.client = client
        self.admin_client = admin_client
        self.cookies = CookieSettings(cookie_name, cookie_samesite)

    def open_session(self, app: Flask, request: Request) -> FlaskSession:
        token = request.cookies.get(self.cookies.name)
        try:
            return open_session(self.client, self.admin_client, self.cookies, token,
                                request.remote_addr, request.headers.get("User-Agent"), FlaskSession)
        except SessiondUnavailable as e:
            return UnavailableSession(e, self.client, self.cookies)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, FlaskSession) or isinstance(session, UnavailableSession):
            return
        response.vary.add("Cookie")
        try:
            cookies = session.commit()
        except SessiondUnavailable:
            # The data could not be saved: the app's answer would claim it was.
            replacement = unavailable_response()
            response.status_code = replacement.status_code
            response.headers.clear()
            response.headers.extend(replacement.headers)
            response.set_data(replacement.get_data())
            return
        for cookie in cookies:
            response.headers.add("Set-Cookie", cookie)


def _refuse_if_unavailable() -> None:
    if isinstance(session, UnavailableSession):
        raise session.error


def current_session() -> FlaskSession:
    """Flask's `session`, typed as what SessiondFlask makes it."""
    if not isinstance(session, FlaskSession):
        raise LookupError("Flask's session is not sessiond's: was SessiondFlask(app, ...) called?")
    return session


class SessiondFlask:
    """Installs the session interface on `app`, and the 503 answer for SessiondUnavailable."""

    def __init__(self, app: Flask, *, client: SessiondClient, admin_client: SessiondClient | None = None,
                 cookie_name: str = "__Host-session", cookie_samesite: str = "Lax") -> None:
        app.session_interface = SessiondSessionInterface(client, admin_client, cookie_name, cookie_samesite)
        # First of the before_request hooks: no other hook sees an unavailable session.
        app.before_request_funcs.setdefault(None, []).insert(0, _refuse_if_unavailable)
        app.register_error_handler(SessiondUnavailable, lambda _e: unavailable_response())


