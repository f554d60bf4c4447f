"""The lease queue: a freed lease is handed to the oldest waiter, which needs no round trip."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _counting import Commands

from ttapi_async.coordination import LimitSettings

ONE = LimitSettings(cap=1, initial=1)


async def one_held(make_coordinator: Any, **b_options: Any) -> tuple[Any, Any, Any]:
    """Workers a and b on a limit of one; a holds the lease; b asks Redis only when told."""
    a = await make_coordinator(limits=ONE)
    b = await make_coordinator(limits=ONE, recheck=3600.0, **b_options)
    return a, b, await a.acquire_lease("4o")


async def queued(coordinator: Any, commands: Commands) -> asyncio.Future[Any]:
    """Start a wait for a lease on ``coordinator``; return once its ACQUIRE was answered."""
    count = commands.answered["ACQUIRE"] + 1
    waiter = asyncio.ensure_future(coordinator.acquire_lease("4o"))
    await commands.answered_at_least("ACQUIRE", count)
    return waiter


async def test_a_release_hands_the_lease_to_the_oldest_waiter_only(make_coordinator: Any) -> None:
    """Of two waiters on two workers, the first queued gets the freed lease; neither asks
    Redis again, and the other keeps waiting."""
    a = await make_coordinator(limits=ONE)
    b = await make_coordinator(limits=ONE, recheck=3600.0)
    c = await make_coordinator(limits=ONE, recheck=3600.0)
    held = await a.acquire_lease("4o")
    counted = {"b": Commands(b), "c": Commands(c)}
    first = await queued(b, counted["b"])
    second = await queued(c, counted["c"])
    await a.release_lease(held)
    lease = await asyncio.wait_for(first, 10)
    assert lease.shared and lease.product == "4o"
    assert not second.done()
    assert {name: dict(c.counts) for name, c in counted.items()} == {
        "b": {"ACQUIRE": 1},
        "c": {"ACQUIRE": 1},
    }
    await b.release_lease(lease)
    assert (await asyncio.wait_for(second, 10)).shared


async def test_a_waiter_that_leaves_gives_its_place_to_the_next(make_coordinator: Any) -> None:
    """A cancelled waiter leaves the queue; the freed lease goes to the one behind it."""
    a, b, held = await one_held(make_coordinator)
    commands = Commands(b)
    gone = await queued(b, commands)
    staying = await queued(b, commands)
    gone.cancel()
    await commands.answered_at_least("UNQUEUE", 1)
    assert await a.redis.hlen(a.keys("queued", "4o")) == 1
    await a.release_lease(held)
    assert (await asyncio.wait_for(staying, 10)).shared
    assert await a.redis.zcard(a.keys("leases", "4o")) == 1


async def test_a_lease_granted_to_a_waiter_that_left_goes_to_the_next(
    make_coordinator: Any,
) -> None:
    """A waiter gone after its grant was sent gives the lease back to the queue (UNQUEUE)."""
    a, b, held = await one_held(make_coordinator)
    b._granted = lambda token, payload: None  # the grant's push never reaches the waiter
    on_a, on_b = Commands(a), Commands(b)
    gone = await queued(b, on_b)
    waiting = await queued(a, on_a)
    await a.release_lease(held)  # granted to b's waiter, which is not told
    assert not waiting.done()
    gone.cancel()
    assert (await asyncio.wait_for(waiting, 10)).shared


async def test_a_lost_grant_is_found_when_the_waiter_asks_again(make_coordinator: Any) -> None:
    """A grant whose push could not be read is found by the waiter's next ACQUIRE."""
    a, b, held = await one_held(make_coordinator)
    granted = b._granted
    b._granted = lambda token, payload: granted(token, "garbled")
    commands = Commands(b)
    waiter = await queued(b, commands)
    await a.release_lease(held)
    lease = await asyncio.wait_for(waiter, 10)
    assert await a.redis.hget(a.keys("lease-owner", "4o"), lease.token) == b.worker_id
    assert commands.counts["ACQUIRE"] == 2  # asked again, and found its grant


async def test_a_grant_during_a_pause_waits_it_out(make_coordinator: Any) -> None:
    """A lease freed by a 429 with Retry-After goes to the waiter, which waits the pause out."""
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    a, b, held = await one_held(make_coordinator, sleep=sleep)
    commands = Commands(b)
    waiter = await queued(b, commands)
    await a.refused(held, retry_after=30)
    assert (await asyncio.wait_for(waiter, 10)).shared
    assert len(sleeps) == 1 and 29 < sleeps[0] <= 30


async def test_the_heartbeat_hands_out_what_expired_leases_left(make_coordinator: Any) -> None:
    """A lease that expired (its worker died) goes to a waiter at the waiter's next beat."""
    a = await make_coordinator(limits=ONE, lease_ttl=10.0)
    b = await make_coordinator(limits=ONE, recheck=3600.0)
    await a.acquire_lease("4o")  # never renewed: a beats by hand, and does not
    commands = Commands(b)
    waiter = await queued(b, commands)
    await b.redis.incrby(b.keys.clock, 11_000)
    await b.heartbeat()
    assert (await asyncio.wait_for(waiter, 10)).shared


async def test_aclose_takes_the_worker_out_of_every_queue(make_coordinator: Any) -> None:
    """A closing worker's waiters leave the queue: the next release goes to a live one."""
    a, b, held = await one_held(make_coordinator)
    on_a, on_b = Commands(a), Commands(b)
    doomed = await queued(b, on_b)
    await b.aclose()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert await a.redis.hlen(a.keys("queued", "4o")) == 0
    waiting = await queued(a, on_a)
    await a.release_lease(held)
    assert (await asyncio.wait_for(waiting, 10)).shared


async def test_a_lost_grant_during_a_pause_is_found_and_waits_the_pause_out(
    make_coordinator: Any,
) -> None:
    """A waiter that missed its grant's push during a pause finds the lease when it asks
    again, and waits what is left of the pause before using it (no loop on the pause)."""
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    a, b, held = await one_held(make_coordinator, sleep=sleep)
    granted = b._granted
    b._granted = lambda token, payload: granted(token, "garbled")
    commands = Commands(b)
    waiter = await queued(b, commands)
    await a.refused(held, retry_after=30)
    lease = await asyncio.wait_for(waiter, 10)
    assert await a.redis.hget(a.keys("lease-owner", "4o"), lease.token) == b.worker_id
    assert len(sleeps) == 1 and 29 < sleeps[0] <= 30
    assert commands.counts["ACQUIRE"] == 2
