"""LocalCoordinator: the in-process coordinator keeps the rules the Redis scripts keep."""

from __future__ import annotations

import pytest
from conftest import Recorder

from ttapi_async.coordination import Coordinator, LeaseTimeoutError, LimitSettings, LocalCoordinator


class Clock:
    """A clock that moves only when told, and a sleep that moves it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_local_coordinator_is_a_coordinator() -> None:
    """LocalCoordinator satisfies the Coordinator protocol."""
    assert isinstance(LocalCoordinator(), Coordinator)


async def test_first_terminal_status_wins_and_owner_is_told_once() -> None:
    """A repeat settle is a no-op; the listener hears of the job once."""
    recorder = Recorder()
    coordinator = LocalCoordinator()
    await coordinator.open("key", recorder)
    await coordinator.record_submitted("j", kind="k", product="", lease=None)
    assert (await coordinator.settle("j", status="SUCCESS", answer="1")).won
    second = await coordinator.settle("j", status="FAILED", answer="2")
    assert not second.won and second.record.status == "SUCCESS"
    assert [r.job_id for r in recorder.settled] == ["j"]


async def test_lease_limit_and_timeout() -> None:
    """Past the limit acquire waits; at its timeout LeaseTimeoutError names the product."""
    coordinator = LocalCoordinator(LimitSettings(cap=2, initial=2))
    first = await coordinator.acquire_lease("4o")
    await coordinator.acquire_lease("4o")
    with pytest.raises(LeaseTimeoutError) as caught:
        await coordinator.acquire_lease("4o", timeout=0)
    assert caught.value.product == "4o"
    await coordinator.release_lease(first)
    assert (await coordinator.acquire_lease("4o", timeout=0)).product == "4o"


async def test_slow_start_and_queue_full_back_off() -> None:
    """Each acceptance adds one slot in slow start; a 499 cuts the limit to the accepted jobs."""
    coordinator = LocalCoordinator(LimitSettings(cap=50, initial=2, decrease=0.5))
    for i in range(6):
        lease = await coordinator.acquire_lease("4o")
        await coordinator.record_submitted(f"j{i}", kind="k", product="4o", lease=lease)
    assert coordinator.current("4o") == 8
    refused = await coordinator.acquire_lease("4o")
    await coordinator.refused(refused, queue_full=True)
    await coordinator.refused(refused, queue_full=True)
    assert coordinator.current("4o") == 3
    assert coordinator.in_progress("4o") == 6


async def test_pause_and_rate_use_the_injected_clock() -> None:
    """A Retry-After pause and a rate of 2/s with a burst of 2 make exactly the waits they imply."""
    clock = Clock()
    coordinator = LocalCoordinator(LimitSettings(rate=2.0, burst=2), clock=clock, sleep=clock.sleep)
    await coordinator.rate()
    await coordinator.rate()
    assert clock.slept == []
    await coordinator.rate()
    assert clock.slept == [0.5]
    await coordinator.pause(3)
    assert await coordinator.pause_left() == 3
    await coordinator.rate()
    assert clock.slept[1] == 3
