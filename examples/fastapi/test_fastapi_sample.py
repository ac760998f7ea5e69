"""The FastAPI sample driven by Starlette's TestClient against a real sessiond (a private one,
so that the last test can stop it)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1] / "clients" / "python" / "tests")]

from sessiond_instance import SessiondInstance  # noqa: E402

instance = SessiondInstance()
os.environ.update(SESSIOND_URL=instance.url, SESSIOND_APP_KEY=instance.keys["app"],
                  SESSIOND_ADMIN_KEY=instance.keys["admin"])

from starlette.testclient import TestClient  # noqa: E402

from sample_app import app  # noqa: E402
from sessiond_client import InvalidSession, SessiondClient  # noqa: E402

COOKIE = "__Host-session"


@pytest.fixture(scope="module", autouse=True)
def stop_instance() -> Iterator[None]:
    yield
    instance.close()


@pytest.fixture
def sessiond() -> Iterator[SessiondClient]:
    with SessiondClient(instance.url, instance.keys["admin"]) as client:
        yield client


def browser(name: str) -> TestClient:
    # https, so that the Secure cookie is sent back.
    client = TestClient(app, base_url="https://testserver")
    client.headers["User-Agent"] = f"{name}-browser"
    return client


def log_in(client: TestClient, name: str) -> str:
    response = client.post("/login", json={"username": name, "password": f"{name}-password"})
    assert response.status_code == 200
    return str(client.cookies[COOKIE])


def test_login_sets_sessiond_cookie_and_the_page_shows_the_user(sessiond: SessiondClient) -> None:
    with browser("alice") as client:
        assert client.get("/").json() == {"user": None, "theme": None}
        refused = client.post("/login", json={"username": "alice", "password": "nope"})
        assert refused.status_code == 401 and "set-cookie" not in refused.headers
        token = log_in(client, "alice")
        set_cookie = client.post("/login", json={"username": "alice", "password": "alice-password"}).headers["set-cookie"]
        rotated = client.cookies[COOKIE]
        assert set_cookie.startswith(f"{COOKIE}={rotated}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=")
        with pytest.raises(InvalidSession):  # logging in again rotated the token
            sessiond.lookup_session(token)
        assert client.get("/").json() == {"user": "alice", "theme": "light"}
        assert client.post("/theme/dark").status_code == 200
        session = sessiond.lookup_session(rotated)
        assert session.data == {"theme": "dark"} and session.user_agent == "alice-browser"
        client.post("/logout")


def test_devices_and_log_out_other_devices(sessiond: SessiondClient) -> None:
    with browser("laptop") as laptop, browser("phone") as phone:
        log_in(laptop, "alice")
        log_in(phone, "alice")
        devices = laptop.get("/devices").json()
        assert len(devices) == 2 and [d["current"] for d in devices].count(True) == 1
        assert {d["user_agent"] for d in devices} == {"laptop-browser", "phone-browser"}
        assert laptop.post("/devices/logout-others").json() == {"logged_out": 1}
        cleared = phone.get("/")
        assert cleared.json()["user"] is None
        assert cleared.headers["set-cookie"] == f"{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"
        assert sessiond.list_user_sessions("alice").total == 1
        laptop.post("/logout")


def test_logout_revokes_and_clears_the_cookie(sessiond: SessiondClient) -> None:
    with browser("bob") as client:
        token = log_in(client, "bob")
        response = client.post("/logout")
        assert response.headers["set-cookie"] == f"{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"
        with pytest.raises(InvalidSession):
            sessiond.lookup_session(token)
        assert client.get("/").json()["user"] is None


def test_sessiond_down_is_503_not_a_logout() -> None:
    with browser("alice") as client:
        log_in(client, "alice")
        instance.stop_sessiond()
        response = client.get("/")
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert "set-cookie" not in response.headers
        assert client.post("/login", json={"username": "bob", "password": "bob-password"}).status_code == 503
