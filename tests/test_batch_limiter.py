"""Tests of the adaptive (AIMD) limiter, on an injected clock: no test sleeps."""

from __future__ import annotations

import asyncio

import pytest

from ttapi_async.batch import AdaptiveLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def make(cap: int = 100, **kw: object) -> tuple[AdaptiveLimiter, Clock]:
    clock = Clock()
    return AdaptiveLimiter(cap, clock=clock, sleep=clock.sleep, **kw), clock  # type: ignore[arg-type]


async def test_slow_start_grows_by_one_per_acceptance() -> None:
    """Before any refusal, each accepted request adds a slot (the limit doubles per round)."""
    limiter, _ = make(initial=4)
    slots = [await limiter.acquire() for _ in range(4)]
    for slot in slots:
        limiter.accepted(slot)
    assert limiter.current == 8


async def test_refusal_shrinks_from_what_the_service_holds() -> None:
    """A 499 sets the limit to the accepted requests in flight times the decrease factor."""
    limiter, _ = make(initial=50, decrease=0.5)
    slots = [await limiter.acquire() for _ in range(30)]
    for slot in slots[:20]:
        limiter.accepted(slot)
    limiter.refused(slots[-1], queue_full=True)
    assert limiter.current == 10  # the 20 accepted, not the 30 in flight, times 0.5
    assert not limiter.slow_start


async def test_rate_refusal_shrinks_the_limit_itself() -> None:
    """A 429 multiplies the current limit, however few requests are in flight."""
    limiter, _ = make(initial=40, decrease=0.5)
    slot = await limiter.acquire()
    limiter.accepted(slot)
    limiter.refused(slot)
    assert limiter.current == 20  # (40 + 1 slow-start growth) x 0.5, floored


async def test_refusals_from_the_same_round_count_once() -> None:
    """Requests sent before a decrease and refused after it do not shrink the limit again."""
    limiter, _ = make(initial=20, decrease=0.5)
    slots = [await limiter.acquire() for _ in range(20)]
    for slot in slots[:10]:
        limiter.accepted(slot)
    for slot in slots[10:]:
        limiter.refused(slot, queue_full=True)
    assert limiter.current == 5  # 10 accepted x 0.5, once (twice would give 2)


async def test_additive_growth_after_slow_start() -> None:
    """After a refusal the limit grows by one per grow_every acceptances."""
    limiter, _ = make(initial=10, decrease=0.5, grow_every=3)
    slot = await limiter.acquire()
    limiter.refused(slot)
    limiter.release(slot)
    start = limiter.current
    for _ in range(6):
        s = await limiter.acquire()
        limiter.accepted(s)
        limiter.release(s)
    assert limiter.current == start + 2


async def test_limit_never_exceeds_the_cap() -> None:
    """However many acceptances, the limit stays at or below --concurrency."""
    limiter, _ = make(cap=5, initial=5)
    for _ in range(50):
        s = await limiter.acquire()
        limiter.accepted(s)
        limiter.release(s)
    assert limiter.current == 5


async def test_limit_never_drops_below_the_minimum() -> None:
    """Refusals cannot take the limit under one slot."""
    limiter, _ = make(initial=2, decrease=0.1)
    for _ in range(5):
        s = await limiter.acquire()
        limiter.refused(s)
        limiter.release(s)
    assert limiter.current == 1


async def test_retry_after_pauses_new_requests() -> None:
    """After a refusal with Retry-After: 3, the next acquire waits 3 s of the clock."""
    limiter, clock = make(initial=4)
    slot = await limiter.acquire()
    limiter.refused(slot, retry_after=3.0)
    limiter.release(slot)
    await limiter.acquire()
    assert clock.slept == [3.0]
    assert clock.now == 3.0


async def test_acquire_waits_for_a_release_when_full() -> None:
    """With every slot taken, acquire blocks until one is released."""
    limiter, _ = make(cap=2, initial=2)
    first = await limiter.acquire()
    await limiter.acquire()
    waiter = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)
    assert not waiter.done()
    limiter.release(first)
    await asyncio.wait_for(waiter, 1)
    assert limiter.in_flight == 2


async def test_cancelled_waiter_passes_its_turn_on() -> None:
    """A waiter cancelled after being woken hands the free slot to the next waiter."""
    limiter, _ = make(cap=1, initial=1)
    held = await limiter.acquire()
    a = asyncio.ensure_future(limiter.acquire())
    b = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)
    limiter.release(held)
    a.cancel()
    with pytest.raises(asyncio.CancelledError):
        await a
    await asyncio.wait_for(b, 1)
    assert limiter.in_flight == 1


async def test_hold_counts_resumed_jobs() -> None:
    """A resumed job takes a slot without waiting, so new submissions respect it."""
    limiter, _ = make(cap=1, initial=1)
    limiter.hold()
    waiter = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)
    assert not waiter.done()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter


def test_release_is_idempotent() -> None:
    """Releasing a slot twice frees it once."""
    limiter, _ = make(initial=2)
    slot = limiter.hold()
    limiter.release(slot)
    limiter.release(slot)
    assert limiter.in_flight == 0
