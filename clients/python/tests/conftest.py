"""Clients of the shared sessiond that scripts/test-python-client starts (see sessiond_instance)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from sessiond_client import RetryPolicy, SessiondClient
from sessiond_instance import required_env

FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.05, max_delay=2.0)


def make_client(role: str) -> SessiondClient:
    return SessiondClient(required_env("SESSIOND_URL"), required_env(f"SESSIOND_{role.upper()}_KEY"), retry=FAST_RETRY)


@pytest.fixture
def reader() -> Iterator[SessiondClient]:
    with make_client("reader") as client:
        yield client


@pytest.fixture
def app() -> Iterator[SessiondClient]:
    with make_client("app") as client:
        yield client


@pytest.fixture
def admin() -> Iterator[SessiondClient]:
    with make_client("admin") as client:
        yield client


@pytest.fixture
def user_id() -> str:
    """A user of this test alone."""
    return f"user-{secrets.token_hex(6)}"
