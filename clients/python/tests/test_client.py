"""SessiondClient against the real sessiond: every operation, every error code it can produce."""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import yaml

from sessiond_client import (AsyncSessiondClient, CreatedSession, Forbidden, InvalidAPIKey, InvalidRequest,
                             InvalidSession, MethodNotAllowed, NotFound, PayloadTooLarge, PreconditionFailed,
                             RetryPolicy, SessiondClient, SessiondError, StoreFull)
from sessiond_client._operations import error_from_response
from sessiond_instance import SessiondInstance, required_env

OPENAPI = Path(__file__).resolve().parents[3] / "openapi.yaml"


def method_name(operation_id: str) -> str:
    """The client method of an operationId: snake case; forwardAuthGet, ...Post, ... are one."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", re.sub(r"^forwardAuth[A-Z][a-z]+$", "forwardAuth", operation_id)).lower()


def test_every_operation_of_openapi_has_a_method_on_both_clients() -> None:
    document = yaml.safe_load(OPENAPI.read_text())
    operation_ids = [op["operationId"] for path in document["paths"].values() for op in path.values()
                     if isinstance(op, dict) and "operationId" in op]
    assert len(operation_ids) >= 12
    for operation_id in operation_ids:
        for cls in (SessiondClient, AsyncSessiondClient):
            assert callable(getattr(cls, method_name(operation_id), None)), f"{cls.__name__} lacks {operation_id}"


def test_create_then_lookup(app: SessiondClient, reader: SessiondClient, user_id: str) -> None:
    created = app.create_session(user_id, data={"role": "editor", "n": 1}, ip="203.0.113.7", user_agent="pytest")
    assert isinstance(created, CreatedSession)
    assert created.user_id == user_id and created.version == 1 and created.data == {"n": 1, "role": "editor"}
    assert created.ip == "203.0.113.7" and created.user_agent == "pytest"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", created.token)
    name_value, *attributes = created.set_cookie.split("; ")
    assert name_value == f"__Host-session={created.token}"
    assert attributes[:4] == ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"]
    max_age = int(attributes[4].removeprefix("Max-Age="))
    assert abs(max_age - (created.expires_at - datetime.now(timezone.utc)).total_seconds()) < 5
    looked_up = reader.lookup_session(created.token)
    assert looked_up.handle == created.handle and looked_up.user_id == user_id
    assert looked_up.data == created.data
    untouched = reader.lookup_session(created.token, touch=False)
    assert untouched.last_seen_at == looked_up.last_seen_at


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_forward_auth_answers_like_a_lookup(method: str, app: SessiondClient, reader: SessiondClient,
                                            user_id: str) -> None:
    created = app.create_session(user_id)
    checked = reader.forward_auth(created.token, "/app/orders/7?x=1", method=method)
    assert checked.handle == created.handle and checked.user_id == user_id
    app.revoke_session(created.token)
    with pytest.raises(InvalidSession):
        reader.forward_auth(created.token, "/", method=method)
    with pytest.raises(ValueError, match="method"):
        reader.forward_auth(created.token, "/", method="HEAD")


def test_tokens_stay_out_of_reprs_and_messages(app: SessiondClient, user_id: str) -> None:
    created = app.create_session(user_id)
    assert created.token not in repr(created) and created.token not in str(created)
    app.revoke_session(created.token)
    with pytest.raises(InvalidSession) as caught:
        app.lookup_session(created.token)
    for text in (str(caught.value), repr(caught.value)):
        assert created.token not in text
    assert caught.value.status == 401 and caught.value.request_id
    with pytest.raises(InvalidSession) as caught:
        app.lookup_session("not a token\r\nX-Evil: 1")  # refused before it reaches a header
    assert "X-Evil" not in str(caught.value) and "not a token" not in repr(caught.value)
    assert created.token not in repr(app)


def test_patch_with_and_without_if_match(app: SessiondClient, user_id: str) -> None:
    created = app.create_session(user_id, data={"cart": {"items": 1}, "flash": "hi"})
    patched = app.update_session_data(created.token, {"cart": {"items": 3}, "flash": None}, if_match=1)
    assert patched.version == 2 and patched.data == {"cart": {"items": 3}}
    with pytest.raises(PreconditionFailed) as caught:
        app.update_session_data(created.token, {"x": 1}, if_match=1)
    assert caught.value.current_version == 2 and caught.value.status == 412
    assert app.update_session_data(created.token, {"x": 1}).version == 3


def test_rotate_moves_the_session_to_a_new_token(app: SessiondClient, user_id: str) -> None:
    created = app.create_session(user_id, data={"a": 1})
    rotated = app.rotate_session(created.token)
    assert rotated.token != created.token and rotated.handle != created.handle
    assert rotated.user_id == user_id and rotated.data == {"a": 1} and rotated.created_at == created.created_at
    with pytest.raises(InvalidSession):
        app.lookup_session(created.token)
    assert app.lookup_session(rotated.token).handle == rotated.handle


def test_revoke(app: SessiondClient, user_id: str) -> None:
    created = app.create_session(user_id)
    first = app.revoke_session(created.token)
    assert first.revoked is True and first.clear_cookie.startswith("__Host-session=; ")
    assert first.clear_cookie.endswith("Max-Age=0")
    assert app.revoke_session(created.token).revoked is False
    with pytest.raises(InvalidSession):
        app.lookup_session(created.token)


def test_listing_pages_and_force_logout(app: SessiondClient, admin: SessiondClient, user_id: str) -> None:
    tokens = [app.create_session(user_id).token for _ in range(5)]
    first = admin.list_user_sessions(user_id, limit=2)
    assert first.total == 5 and len(first.sessions) == 2 and first.next_cursor is not None
    handles = [s.handle for s in admin.iter_user_sessions(user_id, page_size=2)]
    assert len(handles) == 5 == len(set(handles)) and handles[:2] == [s.handle for s in first.sessions]
    kept = app.lookup_session(tokens[0]).handle
    assert admin.force_logout_user(user_id, except_handle=kept) == 4
    assert [s.handle for s in admin.iter_user_sessions(user_id)] == [kept]
    assert admin.force_logout_user(user_id) == 1
    assert admin.list_user_sessions(user_id).total == 0


def test_user_ids_with_path_characters_reach_their_own_user(app: SessiondClient, admin: SessiondClient,
                                                            user_id: str) -> None:
    for odd in ("..", ".", f"{user_id}/x?y#z", f"é {user_id}"):
        created = app.create_session(odd)
        listing = admin.list_user_sessions(odd)
        assert listing.user_id == odd and created.handle in [s.handle for s in listing.sessions]
        assert admin.force_logout_user(odd) >= 1


def test_read_and_revoke_by_handle(app: SessiondClient, admin: SessiondClient, user_id: str) -> None:
    created = app.create_session(user_id)
    read = admin.read_session_by_handle(created.handle)
    assert read.user_id == user_id and read.last_seen_at == created.last_seen_at
    assert admin.revoke_session_by_handle(created.handle).revoked is True
    with pytest.raises(NotFound):
        admin.read_session_by_handle(created.handle)
    with pytest.raises(NotFound):
        admin.revoke_session_by_handle("../../healthz")


def test_error_codes_map_to_their_exceptions(app: SessiondClient, reader: SessiondClient, user_id: str) -> None:
    with pytest.raises(InvalidAPIKey) as caught:
        SessiondClient(required_env("SESSIOND_URL"), "x" * 32).metrics()
    assert caught.value.status == 401
    with pytest.raises(Forbidden):
        reader.create_session(user_id)
    with pytest.raises(InvalidRequest) as invalid:
        app.create_session(" leading space")
    assert invalid.value.status == 400 and invalid.value.message
    with pytest.raises(InvalidRequest):
        app.create_session(user_id, idle_timeout=10**9 + 7)
    with pytest.raises(PayloadTooLarge):
        app.create_session(user_id, data={"big": "x" * 20000})
    answer = httpx.delete(required_env("SESSIOND_URL") + "/v1/sessions",
                          headers={"Authorization": f"Bearer {required_env('SESSIOND_APP_KEY')}"})
    assert isinstance(error_from_response(answer), MethodNotAllowed)
    every = [InvalidAPIKey, Forbidden, InvalidRequest, PayloadTooLarge, MethodNotAllowed]
    assert all(issubclass(cls, SessiondError) for cls in every)


def test_store_full_is_not_retried() -> None:
    instance = SessiondInstance(own_redis=True)
    try:
        with SessiondClient(instance.url, instance.keys["app"]) as client:
            token = client.create_session("full").token
            port = instance.redis_url.rsplit(":", 1)[1].split("/")[0]
            os.system(f"redis-cli -p {port} CONFIG SET maxmemory 1 >/dev/null")
            with pytest.raises(StoreFull) as caught:
                client.create_session("full")
            assert caught.value.status == 507 and caught.value.retry_after == 5
            assert client.lookup_session(token).user_id == "full"  # reads still work
    finally:
        instance.close()


def test_bad_arguments_get_clear_errors(app: SessiondClient) -> None:
    with pytest.raises(ValueError, match="http"):
        SessiondClient("127.0.0.1:8080", "k" * 32)
    with pytest.raises(ValueError, match="API key") as caught:
        SessiondClient("http://127.0.0.1:1", "short key")
    assert "short key" not in str(caught.value)
    with pytest.raises(TypeError, match="user_id must be a str"):
        app.create_session(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="session data must be JSON"):
        app.create_session("u", data={"when": datetime.now()})
    with pytest.raises(ValueError, match="if_match"):
        app.update_session_data("A" * 43, {}, if_match=0)
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="max_delay"):
        RetryPolicy(max_delay=-1)


def test_health_readiness_and_metrics(reader: SessiondClient) -> None:
    assert reader.health() == "ok"
    assert reader.readiness() == "ready"
    assert "sessiond_http_requests_total" in reader.metrics()


def test_timestamps_are_aware(app: SessiondClient, user_id: str) -> None:
    created = app.create_session(user_id, idle_timeout=60)
    assert created.created_at.tzinfo is not None
    assert timedelta(seconds=59) <= created.idle_expires_at - created.last_seen_at <= timedelta(seconds=61)
    assert created.ends_at == created.idle_expires_at
