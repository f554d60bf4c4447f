"""A worker's close (no free-standing lease left, pending jobs for others), its pool."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from ttapi_async.coordination import LimitSettings


async def test_aclose_frees_the_workers_unbound_leases(make_coordinator: Any) -> None:
    """Leases taken but bound to no job are free the moment their worker closes."""
    limits = LimitSettings(cap=2, initial=2)
    a = await make_coordinator(limits=limits)
    b = await make_coordinator(limits=limits, recheck=3600.0)
    await a.acquire_lease("4o")
    await a.acquire_lease("4o")
    waiter = asyncio.ensure_future(b.acquire_lease("4o"))
    await asyncio.sleep(0)
    await a.aclose()
    assert (await asyncio.wait_for(waiter, 10)).shared  # woken by the close, not a recheck
    assert await b._redis().zcard(b.keys("leases", "4o")) == 1  # b's own, nothing of a's
    assert not await b._redis().exists(b.keys("wleases", a.worker_id))


async def test_aclose_hands_pending_jobs_and_their_leases_to_the_next_sweep(
    make_coordinator: Any,
) -> None:
    """A closed worker's pending job keeps its record and lease; the next sweep adopts both,
    with no wait for the closed worker's deadline."""
    a = await make_coordinator(limits=LimitSettings(cap=4, initial=4))
    b = await make_coordinator(limits=LimitSettings(cap=4, initial=4))
    await a.record_submitted("c1", kind="gpt4o", product="4o", lease=await a.acquire_lease("4o"))
    await a.acquire_lease("4o")  # unbound: freed by the close
    await a.aclose()
    client = b._redis()
    assert await client.zrange(b.keys("leases", "4o"), 0, -1) == ["c1"]
    assert [r.job_id for r in await b.sweep()] == ["c1"]
    assert await client.hget(b.keys("lease-owner", "4o"), "c1") == b.worker_id
    record = await b.get_record("c1")
    assert record is not None and record.owner == b.worker_id and not record.settled


async def test_a_burst_beyond_the_pool_waits_instead_of_falling_back(make_coordinator: Any) -> None:
    """Fifty calls at once through a pool of two connections all reach Redis: no fallback."""
    coordinator = await make_coordinator(max_connections=2)
    await coordinator.record_submitted("p1", kind="gpt4o", product="", lease=None)
    records = await asyncio.gather(*(coordinator.get_record("p1") for _ in range(50)))
    assert coordinator.fallback is None
    assert all(r is not None and r.shared and r.owner == coordinator.worker_id for r in records)
    pool = coordinator.redis.connection_pool
    assert pool.max_connections == 2


def test_pool_settings_are_checked() -> None:
    """A pool of no connection, or no time to wait for one, is refused at once."""
    from ttapi_async.coordination import RedisCoordinator

    with pytest.raises(ValueError, match="max_connections"):
        RedisCoordinator("redis://127.0.0.1:1/0", max_connections=0)
    with pytest.raises(ValueError, match="pool_timeout"):
        RedisCoordinator("redis://127.0.0.1:1/0", pool_timeout=0)


async def test_a_cancel_swallowed_inside_a_heartbeat_does_not_hang_the_close(
    make_coordinator: Any,
) -> None:
    """redis-py may turn a cancel into a connection error, which a heartbeat takes for an
    outage: the close still ends, since the beat loop also stops on the closing flag."""
    a = await make_coordinator(heartbeat=0.01)
    inside = asyncio.Event()

    async def beat_that_swallows_a_cancel() -> None:
        inside.set()
        try:
            await asyncio.Event().wait()  # until cancelled, as a Redis call that never answers
        except asyncio.CancelledError:
            return  # as heartbeat() does with the connection error redis-py raised

    a.heartbeat = beat_that_swallows_a_cancel  # type: ignore[method-assign]
    await asyncio.wait_for(inside.wait(), 10)
    await asyncio.wait_for(a.aclose(), 10)
    assert a._beater is None


async def test_aclose_waits_for_the_read_backs_it_cancels(make_coordinator: Any) -> None:
    """A read-back whose cancel was swallowed (as redis-py's connect can on Python 3.11) is
    over before the client closes: it never opens a socket on a closed pool."""
    a = await make_coordinator()
    await a.record_submitted("r1", kind="gpt4o", product="", lease=None)
    started = asyncio.Event()

    async def swallowing_read(job_id: str) -> None:
        started.set()
        # The cancel is swallowed: the read goes on, a connect still to finish.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        for _ in range(3):
            await asyncio.sleep(0)

    a.get_record = swallowing_read
    a._on_push(a.keys("wake", a.worker_id), "r1")  # a bare id: the record is read back
    (task,) = a._tasks
    await started.wait()
    client, read_over_at_close = a._redis(), []
    close = client.aclose

    async def spying_close() -> None:
        read_over_at_close.append(task.done())
        await close()

    client.aclose = spying_close
    await a.aclose()
    assert read_over_at_close == [True]


async def test_a_wake_up_after_close_starts_no_read_back(make_coordinator: Any) -> None:
    """Once closing, a late wake-up is dropped rather than read through a closed client."""
    a = await make_coordinator()
    await a.record_submitted("r2", kind="gpt4o", product="", lease=None)
    await a.aclose()
    a._on_push(a.keys("wake", a.worker_id), "r2")
    assert not a._tasks
