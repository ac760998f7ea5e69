"""AsyncSessiondClient against the real sessiond: the same operations as the sync client."""

from __future__ import annotations

import asyncio

import pytest

from sessiond_client import AsyncSessiondClient, InvalidSession, NotFound, PreconditionFailed
from sessiond_instance import required_env


def client(role: str) -> AsyncSessiondClient:
    return AsyncSessiondClient(required_env("SESSIOND_URL"), required_env(f"SESSIOND_{role.upper()}_KEY"))


def test_a_session_from_create_to_force_logout(user_id: str) -> None:
    async def scenario() -> None:
        async with client("app") as app, client("admin") as admin, client("reader") as reader:
            created = await app.create_session(user_id, data={"a": {"b": 1}})
            assert (await reader.lookup_session(created.token)).handle == created.handle
            patched = await app.update_session_data(created.token, {"a": {"c": 2}}, if_match=1)
            assert patched.data == {"a": {"b": 1, "c": 2}} and patched.version == 2
            with pytest.raises(PreconditionFailed):
                await app.update_session_data(created.token, {"x": 1}, if_match=1)
            rotated = await app.rotate_session(created.token)
            with pytest.raises(InvalidSession):
                await reader.lookup_session(created.token)
            others = await asyncio.gather(*(app.create_session(user_id) for _ in range(3)))
            page = await admin.list_user_sessions(user_id, limit=3)
            assert page.total == 4 and len(page.sessions) == 3 and page.next_cursor
            handles = [s.handle async for s in admin.iter_user_sessions(user_id, page_size=3)]
            assert sorted(handles) == sorted([rotated.handle, *(o.handle for o in others)])
            assert (await admin.read_session_by_handle(others[0].handle)).user_id == user_id
            assert (await admin.revoke_session_by_handle(others[0].handle)).revoked
            with pytest.raises(NotFound):
                await admin.read_session_by_handle(others[0].handle)
            assert await admin.force_logout_user(user_id, except_handle=rotated.handle) == 2
            assert (await app.revoke_session(rotated.token)).revoked
            assert (await admin.list_user_sessions(user_id)).total == 0
            assert await reader.health() == "ok" and await reader.readiness() == "ready"
            assert "sessiond_http_requests_total" in await reader.metrics()

    asyncio.run(scenario())
