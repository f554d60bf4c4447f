"""Shared leases, the adaptive limit, the Retry-After pause and the GCRA rate, on a real Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ttapi_async.coordination import LeaseTimeoutError, LimitSettings


def _limits(**kwargs: Any) -> LimitSettings:
    return LimitSettings(**{"cap": 4, "initial": 4, **kwargs})


async def _advance(coordinator: Any, seconds: float) -> None:
    """Move the namespace's Redis clock forward (the scripts' only clock)."""
    await coordinator._redis().incrby(coordinator.keys.clock, round(seconds * 1000))


async def test_leases_never_exceed_the_limit_across_workers(make_coordinator: Any) -> None:
    """Three workers asking for 12 leases of a limit of 4 get exactly 4; the rest time out."""
    workers = [await make_coordinator(limits=_limits(), recheck=0.05) for _ in range(3)]
    results = await asyncio.gather(
        *(w.acquire_lease("4o", timeout=0.2) for w in workers for _ in range(4)),
        return_exceptions=True,
    )
    leases = [r for r in results if not isinstance(r, BaseException)]
    assert len(leases) == 4
    assert all(isinstance(r, LeaseTimeoutError) for r in results if isinstance(r, BaseException))
    assert await workers[0]._redis().zcard(workers[0].keys("leases", "4o")) == 4


async def test_a_release_wakes_a_waiter_on_another_worker(make_coordinator: Any) -> None:
    """A waiter on worker B is woken by worker A's release through the push, not by a recheck."""
    a = await make_coordinator(limits=_limits(cap=1, initial=1))
    b = await make_coordinator(limits=_limits(cap=1, initial=1), recheck=3600.0)
    held = await a.acquire_lease("4o")
    waiter = asyncio.ensure_future(b.acquire_lease("4o"))
    await asyncio.sleep(0)
    assert not waiter.done()
    await a.release_lease(held)
    lease = await asyncio.wait_for(waiter, 10)
    assert lease.product == "4o" and lease.shared


async def test_settle_frees_the_jobs_lease(make_coordinator: Any) -> None:
    """A lease bound to a job is counted until the job settles, whoever settles it."""
    a = await make_coordinator(limits=_limits(cap=1, initial=1))
    b = await make_coordinator(limits=_limits(cap=1, initial=1))
    lease = await a.acquire_lease("4o")
    await a.record_submitted("j1", kind="gpt4o", product="4o", lease=lease)
    with pytest.raises(LeaseTimeoutError):
        await b.acquire_lease("4o", timeout=0)
    await b.settle("j1", status="SUCCESS", answer="{}")
    assert (await b.acquire_lease("4o", timeout=0)).product == "4o"


async def test_slow_start_then_back_off_on_499(make_coordinator: Any) -> None:
    """Acceptances grow the shared limit by one each (slow start); a 499 cuts it to the accepted."""
    c = await make_coordinator(limits=LimitSettings(cap=50, initial=2, decrease=0.5))
    for i in range(6):
        lease = await c.acquire_lease("4o")
        await c.record_submitted(f"s{i}", kind="k", product="4o", lease=lease)
    limit = c.keys("limit", "4o")
    assert float(await c._redis().hget(limit, "limit")) == 8.0
    refused = await c.acquire_lease("4o")
    await c.refused(refused, queue_full=True)
    # 6 accepted jobs in progress: the service's ceiling; halved once.
    assert float(await c._redis().hget(limit, "limit")) == 3.0
    await c.refused(refused, queue_full=True)  # same round: no second cut
    assert float(await c._redis().hget(limit, "limit")) == 3.0
    assert await c._redis().hget(limit, "slow") == "0"


async def test_growth_after_slow_start_is_one_per_grow_every(make_coordinator: Any) -> None:
    """Once a refusal ended slow start, the limit grows by one per ``grow_every`` acceptances."""
    # halved, so that the growth stays below the refused level (the probe there waits longer)
    c = await make_coordinator(limits=LimitSettings(cap=50, initial=10, grow_every=3, decrease=0.5))
    await c.refused(await c.acquire_lease("4o"))
    limit = c.keys("limit", "4o")
    start = float(await c._redis().hget(limit, "limit"))
    for i in range(6):
        await c.record_submitted(f"g{i}", kind="k", product="4o", lease=await c.acquire_lease("4o"))
    assert float(await c._redis().hget(limit, "limit")) == start + 2


async def test_retry_after_pauses_every_worker(make_coordinator: Any) -> None:
    """A 429 with Retry-After on one worker pauses another's leases and requests, by Redis time."""
    a = await make_coordinator(limits=_limits())
    b = await make_coordinator(limits=_limits())
    await a.refused(await a.acquire_lease("4o"), retry_after=30)
    assert 29 < await b.pause_left() <= 30
    with pytest.raises(LeaseTimeoutError):
        await b.acquire_lease("4o", timeout=0)
    await _advance(b, 31)
    assert await b.pause_left() == 0
    assert (await b.acquire_lease("4o", timeout=0)).shared


async def _redis_now_ms(coordinator: Any) -> int:
    """Read the clock the scripts read: Redis's TIME plus the namespace's offset."""
    redis = coordinator._redis()
    seconds, micros = await redis.time()
    offset = int(await redis.get(coordinator.keys.clock) or 0)
    return int(seconds) * 1000 + int(micros) // 1000 + offset


async def test_shared_rate_is_a_gcra_over_workers(make_coordinator: Any) -> None:
    """Two workers share one burst of 4 at 1/s: four pass at once, and the fifth is let
    through no sooner than a second (Redis time) after the first, waiting at most that."""
    sleeps: list[float] = []

    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await _advance(a, seconds)

    settings = LimitSettings(rate=1.0, burst=4)
    a = await make_coordinator(limits=settings, sleep=record_sleep)
    b = await make_coordinator(limits=settings, sleep=record_sleep)
    # Real time runs on between the calls (Redis's clock cannot be stopped), so assert what
    # the GCRA guarantees whatever the scheduling delay: spacing in Redis time, bounded wait.
    start = await _redis_now_ms(a)
    for w in (a, b, a, b):
        await w.rate()
    assert sleeps == []
    await b.rate()
    assert await _redis_now_ms(a) - start >= 1000
    assert sum(sleeps) <= 1.0


async def test_limit_growth_wakes_a_waiter_on_another_worker(make_coordinator: Any) -> None:
    """An acceptance that grows the limit by a whole slot wakes a waiter elsewhere at once."""
    a = await make_coordinator(limits=_limits(cap=4, initial=1))
    b = await make_coordinator(limits=_limits(cap=4, initial=1), recheck=3600.0)
    lease = await a.acquire_lease("4o")
    waiter = asyncio.ensure_future(b.acquire_lease("4o"))
    await asyncio.sleep(0)
    assert not waiter.done()
    await a.record_submitted("grow-1", kind="k", product="4o", lease=lease)  # limit 1 -> 2
    assert (await asyncio.wait_for(waiter, 10)).product == "4o"
