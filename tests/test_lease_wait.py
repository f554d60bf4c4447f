"""``lease_wait_ends``: a caller's stop ends a wait for a lease, and no lease is left behind."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import pytest

from ttapi_async.coordination import LeaseTimeoutError, LimitSettings, LocalCoordinator
from ttapi_async.resources._leased import _acquire, lease_wait_ends


def one_slot() -> LocalCoordinator:
    return LocalCoordinator(LimitSettings(cap=1, initial=1))


@contextlib.contextmanager
def wait_ends_on(ends: asyncio.Future[None]) -> Iterator[asyncio.Future[None]]:
    """Make ``ends`` the end of every lease wait inside the block (as a batch's stop is)."""
    token = lease_wait_ends.set(ends)
    try:
        yield ends
    finally:
        lease_wait_ends.reset(token)


def new_end() -> asyncio.Future[None]:
    return asyncio.get_running_loop().create_future()


async def test_without_an_end_a_wait_takes_the_lease() -> None:
    """With no end set, the wait is the coordinator's own."""
    coordinator = one_slot()
    lease = await _acquire(coordinator, "gpt4o", None)
    assert lease.product == "gpt4o" and coordinator.in_progress("gpt4o") == 1


async def test_an_end_already_reached_gives_a_granted_lease_back() -> None:
    """Room is free but the caller has stopped: the lease is returned, nothing is sent."""
    coordinator = one_slot()
    with wait_ends_on(new_end()) as ends:
        ends.set_result(None)
        with pytest.raises(LeaseTimeoutError, match="nothing was sent"):
            await _acquire(coordinator, "gpt4o", None)
    assert coordinator.in_progress("gpt4o") == 0


async def test_an_end_reached_while_waiting_stops_the_wait() -> None:
    """The only slot is taken; the end comes: the waiter raises and takes no lease later."""
    coordinator = one_slot()
    held = await coordinator.acquire_lease("gpt4o")
    with wait_ends_on(new_end()) as ends:
        waiter = asyncio.ensure_future(_acquire(coordinator, "gpt4o", None))
        await asyncio.sleep(0)
        assert not waiter.done()
        ends.set_result(None)
        with pytest.raises(LeaseTimeoutError):
            await asyncio.wait_for(waiter, 5)
    await coordinator.release_lease(held)
    assert coordinator.in_progress("gpt4o") == 0


async def test_a_cancelled_waiter_leaves_no_lease() -> None:
    """Cancelling the caller mid-wait cancels the wait itself."""
    coordinator = one_slot()
    held = await coordinator.acquire_lease("gpt4o")
    with wait_ends_on(new_end()):
        waiter = asyncio.ensure_future(_acquire(coordinator, "gpt4o", None))
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    await coordinator.release_lease(held)
    await asyncio.sleep(0)
    assert coordinator.in_progress("gpt4o") == 0
