"""The Django sample driven by Django's test Client against a real sessiond (a private one, so
that the last test can stop it)."""

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
                  SESSIOND_ADMIN_KEY=instance.keys["admin"], DJANGO_SETTINGS_MODULE="sample_settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from sessiond_client import InvalidSession, SessiondClient  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def database() -> Iterator[None]:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # tests only: fast
    call_command("migrate", verbosity=0)
    for name in ("alice", "bob"):
        User.objects.create_user(name, password=f"{name}-password")
    yield
    instance.close()


@pytest.fixture
def sessiond() -> Iterator[SessiondClient]:
    with SessiondClient(instance.url, instance.keys["admin"]) as client:
        yield client


def pk(name: str) -> str:
    return str(User.objects.get(username=name).pk)


def log_in(client: Client, name: str) -> str:
    response = client.post("/login", {"username": name, "password": f"{name}-password"},
                           HTTP_USER_AGENT=f"{name}-browser")
    assert response.status_code == 302
    return str(client.cookies["__Host-session"].value)


def test_login_sets_sessiond_cookie_and_the_page_shows_the_user(sessiond: SessiondClient) -> None:
    browser = Client()
    assert browser.get("/").content == b"You are not logged in."
    refused = browser.post("/login", {"username": "alice", "password": "wrong"})
    assert refused.status_code == 401 and "__Host-session" not in refused.cookies
    response = browser.post("/login", {"username": "alice", "password": "alice-password"})
    morsel = response.cookies["__Host-session"]
    assert len(morsel.value) == 43
    assert (morsel["path"], morsel["secure"], morsel["httponly"], morsel["samesite"]) == ("/", True, True, "Lax")
    assert 43100 < int(morsel["max-age"]) <= 43200 and not morsel["domain"] and not morsel["expires"]
    session = sessiond.lookup_session(morsel.value)
    assert session.user_id == pk("alice") and session.data["_auth_user_id"] == pk("alice")
    assert b"<span id=user>alice</span>" in browser.get("/").content
    browser.post("/logout")


def test_login_as_another_user_revokes_the_old_token(sessiond: SessiondClient) -> None:
    browser = Client()
    alice_token = log_in(browser, "alice")
    bob_token = log_in(browser, "bob")
    assert bob_token != alice_token
    with pytest.raises(InvalidSession):
        sessiond.lookup_session(alice_token)
    assert sessiond.lookup_session(bob_token).user_id == pk("bob")
    browser.post("/logout")


def test_devices_and_log_out_other_devices(sessiond: SessiondClient) -> None:
    laptop, phone = Client(), Client()
    log_in(laptop, "alice")
    log_in(phone, "alice")
    page = laptop.get("/devices").content.decode()
    assert page.count("<li") == 2 and page.count("class=current") == 1 and "127.0.0.1" in page
    assert laptop.post("/devices/logout-others").content == b"Logged out 1 other device(s)."
    cleared = phone.get("/")
    assert cleared.content == b"You are not logged in."
    assert cleared.cookies["__Host-session"]["max-age"] == "0"
    assert sessiond.list_user_sessions(pk("alice")).total == 1
    assert b"alice" in laptop.get("/").content
    laptop.post("/logout")


def test_logout_revokes_and_clears_the_cookie(sessiond: SessiondClient) -> None:
    browser = Client()
    token = log_in(browser, "bob")
    response = browser.post("/logout")
    assert response.cookies["__Host-session"].value == "" and response.cookies["__Host-session"]["max-age"] == "0"
    with pytest.raises(InvalidSession):
        sessiond.lookup_session(token)
    assert sessiond.list_user_sessions(pk("bob")).total == 0


def test_sessiond_down_is_503_not_a_logout() -> None:
    browser = Client()
    log_in(browser, "alice")
    instance.stop_sessiond()
    response = browser.get("/")
    assert response.status_code == 503 and response["Retry-After"] == "1"
    assert "__Host-session" not in response.cookies and b"not logged in" not in response.content
    assert browser.post("/login", {"username": "bob", "password": "bob-password"}).status_code == 503
