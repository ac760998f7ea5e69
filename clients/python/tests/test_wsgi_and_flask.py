"""The WSGI middleware and the Flask session interface, each serving the same small app, driven
over httpx's WSGI transport against the real sessiond."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs

import flask
import httpx
import pytest

from conftest import FAST_RETRY
from sessiond_client import NotLoggedIn, RequestSession, SessiondClient
from sessiond_client.flask import SessiondFlask, current_session
from sessiond_client.web import CookieSettings, open_session
from sessiond_client.wsgi import SessiondWSGIMiddleware, session_of
from sessiond_instance import SessiondInstance, required_env

Clients = tuple[SessiondClient, SessiondClient]


def answer(session: RequestSession, path: str, query: dict[str, str]) -> str:
    """The app, framework aside: returns the body for `path`."""
    if path == "/login":
        session.login(query["user"], {"role": "user"})
    elif path == "/set":
        session[query["key"]] = query["value"]
    elif path == "/devices":
        return json.dumps([s.handle for s in session.devices()])
    elif path == "/logout-others":
        return str(session.logout_other_devices())
    elif path == "/logout":
        session.logout()
    return session.user_id or "anonymous"


def wsgi_app(clients: Clients) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        body = answer(session_of(environ), environ["PATH_INFO"], query)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body.encode()]

    return SessiondWSGIMiddleware(app, client=clients[0], admin_client=clients[1])


def flask_app(clients: Clients) -> flask.Flask:
    app = flask.Flask(__name__)
    SessiondFlask(app, client=clients[0], admin_client=clients[1])

    @app.route("/<path:path>", methods=["GET", "POST"])
    @app.route("/", defaults={"path": ""}, methods=["GET", "POST"])
    def any_page(path: str) -> str:
        return answer(current_session(), "/" + path, dict(flask.request.args))

    return app


APPS = {"wsgi": wsgi_app, "flask": flask_app}


def browser(app: Any) -> httpx.Client:
    # https, so the Secure cookie comes back.
    return httpx.Client(transport=httpx.WSGITransport(app=app), base_url="https://testserver",
                        headers={"User-Agent": "device-test"})


@pytest.fixture
def clients() -> Iterator[Clients]:
    url = required_env("SESSIOND_URL")
    with SessiondClient(url, required_env("SESSIOND_APP_KEY"), retry=FAST_RETRY) as app, \
            SessiondClient(url, required_env("SESSIOND_ADMIN_KEY"), retry=FAST_RETRY) as admin:
        yield app, admin


@pytest.mark.parametrize("framework", APPS)
def test_login_devices_and_logout(framework: str, clients: Clients, user_id: str) -> None:
    app_client, admin = clients
    app = APPS[framework](clients)
    a, b = browser(app), browser(app)
    page = a.get("/")
    assert page.text == "anonymous" and "set-cookie" not in page.headers

    login = a.post("/login", params={"user": user_id})
    set_cookie = login.headers["set-cookie"]
    token = a.cookies["__Host-session"]
    assert set_cookie.startswith(f"__Host-session={token}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=")
    session = app_client.lookup_session(token)
    assert session.user_id == user_id and session.data == {"role": "user"}
    assert session.ip == "127.0.0.1" and session.user_agent == "device-test"
    assert a.get("/").text == user_id

    a.post("/set", params={"key": "theme", "value": "dark"})
    assert admin.read_session_by_handle(session.handle).data == {"role": "user", "theme": "dark"}

    a.post("/login", params={"user": user_id})  # logging in again rotates the token
    rotated = a.cookies["__Host-session"]
    assert rotated != token and app_client.lookup_session(rotated).data["theme"] == "dark"
    assert b.get("/", headers={"Cookie": f"__Host-session={token}"}).text == "anonymous"

    b.post("/login", params={"user": user_id})
    assert len(json.loads(a.get("/devices").text)) == 2
    assert a.post("/logout-others").text == "1"
    cleared = b.get("/")
    assert cleared.text == "anonymous"
    assert cleared.headers["set-cookie"] == "__Host-session=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"
    assert json.loads(a.get("/devices").text) == [app_client.lookup_session(rotated).handle]

    logout = a.post("/logout")
    assert logout.text == "anonymous" and logout.headers["set-cookie"].endswith("Max-Age=0")
    assert admin.list_user_sessions(user_id).total == 0


@pytest.mark.parametrize("framework", APPS)
def test_sessiond_down_is_503_and_keeps_the_cookie(framework: str) -> None:
    instance = SessiondInstance()
    try:
        with SessiondClient(instance.url, instance.keys["app"], retry=FAST_RETRY) as app_client, \
                SessiondClient(instance.url, instance.keys["admin"], retry=FAST_RETRY) as admin:
            user = browser(APPS[framework]((app_client, admin)))
            user.post("/login", params={"user": "carol"})
            assert user.get("/").text == "carol"
            instance.stop_sessiond()
            down = user.get("/")
            assert down.status_code == 503 and down.headers["retry-after"] == "1"
            assert "set-cookie" not in down.headers and "carol" not in down.text
            assert user.post("/login", params={"user": "dave"}).status_code == 503
    finally:
        instance.close()


def test_data_cannot_be_written_before_login(clients: Clients) -> None:
    session = open_session(clients[0], clients[1], CookieSettings(), None, None, None, RequestSession)
    with pytest.raises(NotLoggedIn, match="login"):
        session["cart"] = 1
    with pytest.raises(NotLoggedIn):
        session.devices()
    assert session.user_id is None and dict(session) == {}


def test_a_null_value_is_refused_with_a_clear_error(clients: Clients, user_id: str) -> None:
    session = open_session(clients[0], clients[1], CookieSettings(), None, None, None, RequestSession)
    session.login(user_id)
    session["flash"] = None
    with pytest.raises(ValueError, match="merge patch"):
        session.commit()
    session.logout()
