"""Redis down: a typed fallback with one warning, local shares, and a resync that loses nothing."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from conftest import API_KEY, Recorder

from ttapi_async.coordination import Fallback, LeaseTimeoutError, LimitSettings

PASSWORD = "hunter2-SECRET-pw"


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name.startswith("ttapi_async") and r.levelno >= logging.WARNING
    ]


async def test_outage_falls_back_once_then_resyncs(
    own_redis: Any, make_coordinator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Down: one warning, a Fallback with half the limit each; back: the outbox is in Redis."""
    caplog.set_level(logging.INFO, logger="ttapi_async")
    recorder = Recorder()
    limits = LimitSettings(cap=8, initial=8)
    c = await make_coordinator(recorder, url=own_redis.url, limits=limits)
    other = await make_coordinator(url=own_redis.url, limits=limits)
    await other.heartbeat()
    await c.heartbeat()  # c now knows there are two workers
    await c.release_lease(await c.acquire_lease("4o"))  # and the limit, 8
    own_redis.kill()

    lease = await c.acquire_lease("4o", timeout=0)
    assert not lease.shared
    record = await c.record_submitted("d1", kind="gpt4o", product="4o", lease=lease)
    assert not record.shared and record.owner == c.worker_id
    await c.record_submitted("d2", kind="gpt4o", product="", lease=None)
    assert (await c.settle("d2", status="SUCCESS", answer='{"u": 1}')).won
    assert not (await c.settle("d2", status="FAILED", answer="{}")).won
    for _ in range(3):
        await c.acquire_lease("4o", timeout=0)
    with pytest.raises(LeaseTimeoutError):
        await c.acquire_lease("4o", timeout=0)  # the local share is 8 / 2 workers

    assert isinstance(c.fallback, Fallback)
    assert c.fallback.local_limits == {"4o": 4} and c.fallback.poll
    assert recorder.fallbacks == [c.fallback]
    mine = [r for r in _warnings(caplog) if c.worker_id in r.getMessage()]
    assert len(mine) == 1  # one warning per outage, however many calls fell back
    assert [r.job_id for r in recorder.settled] == ["d2"]

    own_redis.start()
    await c.heartbeat()
    assert c.fallback is None and recorder.resyncs == 1
    await other.heartbeat()
    client = other._redis()
    d1 = await other.get_record("d1")
    assert d1 is not None and d1.owner == c.worker_id and d1.shared
    assert await client.zscore(c.keys("leases", "4o"), "d1") is not None
    d2 = await other.get_record("d2")
    assert d2 is not None and (d2.status, d2.answer) == ("SUCCESS", '{"u": 1}')


async def test_pushes_work_again_after_the_outage(own_redis: Any, make_coordinator: Any) -> None:
    """After Redis returns and the listener resubscribes, another worker's settle wakes this one."""
    recorder = Recorder()
    c = await make_coordinator(recorder, url=own_redis.url)
    other = await make_coordinator(url=own_redis.url)
    own_redis.kill()
    await c.record_submitted("p1", kind="gpt4o", product="", lease=None)
    own_redis.start()
    await c.heartbeat()
    await other.heartbeat()
    await c.wait_subscribed()
    import asyncio

    woken = asyncio.get_running_loop().create_future()
    recorder.on_settled = woken.set_result
    await other.settle("p1", status="SUCCESS", answer="{}")
    assert (await asyncio.wait_for(woken, 20)).job_id == "p1"


async def test_open_with_redis_unreachable_falls_back(
    own_redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Opening against a dead Redis does not raise: the fallback starts, with one warning."""
    from ttapi_async.coordination import RedisCoordinator

    own_redis.kill()
    coordinator = RedisCoordinator(own_redis.url, namespace="down", heartbeat=3600.0)
    await coordinator.open(API_KEY)
    try:
        assert coordinator.fallback is not None
        await coordinator.acquire_lease("4o", timeout=0)
        assert len(_warnings(caplog)) == 1
    finally:
        await coordinator.aclose()


async def test_password_never_in_repr_log_or_fallback(
    own_redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The URL's password appears in no repr, log line or fallback reason, up or down."""
    from ttapi_async.coordination import RedisCoordinator

    caplog.set_level(logging.DEBUG)
    coordinator = RedisCoordinator(own_redis.url, namespace="pw", heartbeat=3600.0)
    assert PASSWORD in own_redis.url
    await coordinator.open(API_KEY)
    try:
        own_redis.kill()
        await coordinator.acquire_lease("4o", timeout=0)
        assert coordinator.fallback is not None
        shown = [repr(coordinator), coordinator.fallback.reason, caplog.text]
        shown += [str(r.exc_info) for r in caplog.records]
        assert all(PASSWORD not in text for text in shown)
        assert "***" in repr(coordinator)
    finally:
        await coordinator.aclose()
