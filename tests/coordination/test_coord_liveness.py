"""Fencing: a worker declared dead loses its jobs to the adopter and goes on under a new id."""

from __future__ import annotations

from typing import Any

from conftest import Recorder

PERIOD = 5.0


async def _advance(coordinator: Any, seconds: float) -> None:
    await coordinator._redis().incrby(coordinator.keys.clock, round(seconds * 1000))


async def test_worker_wrongly_declared_dead_loses_its_jobs(make_coordinator: Any) -> None:
    """A silent worker's job is adopted; its next beat reports the job lost and takes a new id."""
    recorder = Recorder()
    a = await make_coordinator(recorder, heartbeat=PERIOD)
    b = await make_coordinator(heartbeat=PERIOD)
    await a.record_submitted("f1", kind="k", product="4o", lease=await a.acquire_lease("4o"))
    old = a.worker_id
    await _advance(b, 3 * PERIOD)
    await b.heartbeat()
    assert [r.job_id for r in await b.sweep()] == ["f1"]
    await a.heartbeat()
    assert recorder.lost == ["f1"]
    assert a.worker_id != old
    client = b._redis()
    assert await client.hget(b.keys("lease-owner", "4o"), "f1") == b.worker_id
    record = await a.get_record("f1")
    assert record is not None and record.owner == b.worker_id
    assert await b.sweep() == []  # a, under its new id, is alive: nothing more to adopt


async def test_record_after_being_declared_dead_goes_under_the_new_id(
    make_coordinator: Any,
) -> None:
    """A job recorded by a worker just declared dead is owned by its new incarnation, not lost."""
    recorder = Recorder()
    a = await make_coordinator(recorder, heartbeat=PERIOD)
    b = await make_coordinator(heartbeat=PERIOD)
    await a.record_submitted("g1", kind="k", product="", lease=None)
    await _advance(b, 3 * PERIOD)
    await b.heartbeat()
    await b.sweep()
    await a.record_submitted("g2", kind="k", product="", lease=None)
    record = await b.get_record("g2")
    assert record is not None and record.owner == a.worker_id
    assert recorder.lost == ["g1"]
    await _advance(b, 3 * PERIOD)
    await b.heartbeat()
    assert [r.job_id for r in await b.sweep()] == ["g2"]  # and it is adoptable like any job


async def test_heartbeat_renews_leases_past_their_lifetime(make_coordinator: Any) -> None:
    """A beating worker keeps its job's lease however long the job runs."""
    a = await make_coordinator(heartbeat=PERIOD)
    await a.record_submitted("h1", kind="k", product="4o", lease=await a.acquire_lease("4o"))
    for _ in range(30):
        await _advance(a, PERIOD)
        await a.heartbeat()
    await a.acquire_lease("4o")  # reaps expired leases first
    assert await a._redis().zscore(a.keys("leases", "4o"), "h1") is not None


async def test_a_beat_is_not_queued_behind_a_busy_pool(
    make_coordinator: Any, redis_server: Any
) -> None:
    """Every pooled connection busy (a burst of job traffic): the heartbeat and the sweep
    still reach Redis at once, on their own connection, so a busy worker is not declared dead."""
    import asyncio

    import redis.asyncio as aioredis

    c = await make_coordinator(max_connections=1, pool_timeout=30.0)
    pool = c._redis().connection_pool
    try:  # the pool's only connection, held
        taken = await pool.get_connection()
    except TypeError:  # redis-py before 5.3 wants a command's name
        taken = await pool.get_connection("PING")
    side = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        before = await side.zscore(c.keys("workers"), c.worker_id)
        await side.incrby(c.keys.clock, 1000)  # a beat later, by the scripts' clock
        await asyncio.wait_for(c.heartbeat(), 5)
        await asyncio.wait_for(c.sweep(), 5)
        assert await side.zscore(c.keys("workers"), c.worker_id) >= (before or 0) + 1000
    finally:
        await pool.release(taken)
        await side.aclose()
