"""Retries and SessiondUnavailable, against a sessiond whose Redis is stopped and a sessiond
that is stopped (private processes, see sessiond_instance)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator

import pytest

from sessiond_client import AsyncSessiondClient, RetryPolicy, SessiondClient, SessiondUnavailable
from sessiond_instance import SessiondInstance

TOKEN = "A" * 42 + "A"  # well-formed; never looked up successfully


@pytest.fixture
def redis_down() -> Iterator[SessiondInstance]:
    """A sessiond whose own redis-server has been stopped: it answers 503 with Retry-After: 1."""
    instance = SessiondInstance(own_redis=True)
    instance.stop_redis()
    try:
        yield instance
    finally:
        instance.close()


def lookups_answered_503(instance: SessiondInstance) -> int:
    with SessiondClient(instance.url, instance.keys["reader"]) as client:
        metrics = client.metrics()
    match = re.search(r'sessiond_http_requests_total\{method="GET",route="/v1/session",status="503"\} (\d+)', metrics)
    return int(match.group(1)) if match else 0


def test_503_is_retried_after_retry_after_then_raised(redis_down: SessiondInstance) -> None:
    client = SessiondClient(redis_down.url, redis_down.keys["reader"],
                            retry=RetryPolicy(attempts=3, base_delay=0.1, max_delay=2))
    started = time.monotonic()
    with pytest.raises(SessiondUnavailable) as caught:
        client.lookup_session(TOKEN)
    elapsed = time.monotonic() - started
    assert caught.value.status == 503 and caught.value.retry_after == 1
    assert lookups_answered_503(redis_down) == 3
    # Two waits of Retry-After (1 s) plus at most 0.1 s of jitter each, plus the answers.
    assert 2.0 <= elapsed < 4.0
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value)


def test_a_retry_after_beyond_max_delay_is_not_waited_for(redis_down: SessiondInstance) -> None:
    client = SessiondClient(redis_down.url, redis_down.keys["reader"],
                            retry=RetryPolicy(attempts=5, base_delay=0.1, max_delay=0.5))
    started = time.monotonic()
    with pytest.raises(SessiondUnavailable):
        client.lookup_session(TOKEN)
    assert time.monotonic() - started < 1.0
    assert lookups_answered_503(redis_down) == 1


def test_the_async_client_retries_alike(redis_down: SessiondInstance) -> None:
    async def look_up() -> None:
        async with AsyncSessiondClient(redis_down.url, redis_down.keys["reader"],
                                       retry=RetryPolicy(attempts=2, base_delay=0.1, max_delay=2)) as client:
            await client.lookup_session(TOKEN)

    started = time.monotonic()
    with pytest.raises(SessiondUnavailable):
        asyncio.run(look_up())
    assert time.monotonic() - started >= 1.0
    assert lookups_answered_503(redis_down) == 2


def test_a_stopped_sessiond_is_unavailable_not_a_logout() -> None:
    instance = SessiondInstance()
    try:
        client = SessiondClient(instance.url, instance.keys["app"], retry=RetryPolicy(attempts=3, base_delay=0.05))
        token = client.create_session("stopped").token
        instance.stop_sessiond()
        with pytest.raises(SessiondUnavailable) as caught:
            client.lookup_session(token)
        assert caught.value.status is None and "ConnectError" in caught.value.message
        assert token not in repr(caught.value)
        instance.start_sessiond()  # same Redis and keys, another port
        with SessiondClient(instance.url, instance.keys["app"]) as restarted:
            assert restarted.lookup_session(token).user_id == "stopped"
    finally:
        instance.close()
