"""One service at a ceiling moves every limiter's limit the same way.

The rules live in ``ttapi_async/_aimd.py``; the Lua scripts repeat them for Redis. Running
one simulated service (jobs in progress up to a ceiling, a 499 past it) against the four
(the bare rules, the batch's ``AdaptiveLimiter``, ``LocalCoordinator``, ``RedisCoordinator``)
catches a script, or a caller, that drifts from them.
"""

from __future__ import annotations

import math
import random
from typing import Any, Protocol

import pytest

from ttapi_async._aimd import Aimd
from ttapi_async.batch import AdaptiveLimiter
from ttapi_async.coordination import LeaseTimeoutError, LimitSettings
from ttapi_async.coordination._local import LocalCoordinator

SETTINGS = LimitSettings(cap=40, initial=4, decrease=0.75, grow_every=2)
STEPS = 800
#: how many steps each job runs, drawn once: every limiter sees the same service
_DRAW = random.Random(3)
DURATIONS = [_DRAW.randint(10, 40) for _ in range(STEPS)]


def _ceiling(step: int) -> int:
    return 12 if step < STEPS // 2 else 20  # the account's limit is raised halfway


class Limiter(Protocol):
    async def take(self) -> Any | None: ...
    async def accept(self, slot: Any, job: str) -> None: ...
    async def refuse(self, slot: Any) -> None: ...
    async def end(self, slot: Any, job: str) -> None: ...
    async def limit(self) -> float: ...


async def _serve(limiter: Limiter) -> list[tuple[str, float]]:
    """Run the service; return each step's event ('a', 'r' or '-') and the limit after it."""
    running: list[tuple[int, Any, str]] = []  # (end step, slot, job)
    seen = []
    for step in range(STEPS):
        for item in [r for r in running if r[0] == step]:
            running.remove(item)
            await limiter.end(item[1], item[2])
        slot = await limiter.take()
        event = "-"
        if slot is not None:
            if len(running) < _ceiling(step):
                job = f"j{step}"
                await limiter.accept(slot, job)
                running.append((step + DURATIONS[step], slot, job))
                event = "a"
            else:
                await limiter.refuse(slot)
                event = "r"
        seen.append((event, await limiter.limit()))
    return seen


class Bare:
    """The rules alone, with the leases a coordinator would count."""

    def __init__(self) -> None:
        self.aimd = Aimd(SETTINGS.initial)
        self.held = self.accepted = 0
        #: the refusals in a row at one level, after each refusal
        self.probes: list[int] = []

    async def take(self) -> Any | None:
        current = max(SETTINGS.minimum, min(SETTINGS.cap, math.floor(self.aimd.limit)))
        if self.held >= current:
            return None
        self.held += 1
        return object()

    async def accept(self, slot: Any, job: str) -> None:
        self.accepted += 1
        self.aimd.grow(SETTINGS.cap, SETTINGS.grow_every)

    async def refuse(self, slot: Any) -> None:
        self.held -= 1
        base = min(self.aimd.limit, max(self.accepted, 1))
        self.aimd.shrink(base, SETTINGS.decrease, SETTINGS.minimum)
        self.probes.append(self.aimd.probes)

    async def end(self, slot: Any, job: str) -> None:
        self.held -= 1
        self.accepted -= 1

    async def limit(self) -> float:
        return self.aimd.limit


class Coordinated:
    """A coordinator's leases, records and refusals (Local or Redis)."""

    def __init__(self, coordinator: Any, read: Any) -> None:
        self.coordinator = coordinator
        self.limit = read

    async def take(self) -> Any | None:
        try:
            return await self.coordinator.acquire_lease("4o", timeout=0)
        except LeaseTimeoutError:
            return None

    async def accept(self, slot: Any, job: str) -> None:
        await self.coordinator.record_submitted(job, kind="k", product="4o", lease=slot)

    async def refuse(self, slot: Any) -> None:
        await self.coordinator.refused(slot, queue_full=True)

    async def end(self, slot: Any, job: str) -> None:
        await self.coordinator.settle(job, status="SUCCESS", answer="{}")


class Batch:
    """The local batch's ``AdaptiveLimiter``."""

    def __init__(self) -> None:
        self.limiter = AdaptiveLimiter(
            SETTINGS.cap,
            initial=SETTINGS.initial,
            decrease=SETTINGS.decrease,
            grow_every=SETTINGS.grow_every,
        )

    async def take(self) -> Any | None:
        if self.limiter.in_flight >= self.limiter.current:
            return None
        return await self.limiter.acquire()

    async def accept(self, slot: Any, job: str) -> None:
        self.limiter.accepted(slot)

    async def refuse(self, slot: Any) -> None:
        self.limiter.refused(slot, queue_full=True)
        self.limiter.release(slot)

    async def end(self, slot: Any, job: str) -> None:
        self.limiter.release(slot)

    async def limit(self) -> float:
        return self.limiter.limit


async def test_the_service_exercises_the_back_off_and_the_reset() -> None:
    """The run is worth comparing: refusals repeat at one level (backing the probe off), a
    ceiling is forgotten, and the raised one is found."""
    bare = Bare()
    seen = await _serve(bare)
    assert max(bare.probes) >= 2
    assert any(a >= 1 and b == 0 for a, b in zip(bare.probes, bare.probes[1:], strict=False))
    assert max(limit for _, limit in seen[STEPS // 2 :]) > 20


async def test_the_batch_limiter_follows_the_rules() -> None:
    assert await _serve(Batch()) == await _serve(Bare())


async def test_the_local_coordinator_follows_the_rules() -> None:
    coordinator = LocalCoordinator(SETTINGS)

    async def read() -> float:
        return coordinator._product("4o").limit

    assert await _serve(Coordinated(coordinator, read)) == await _serve(Bare())


async def test_the_redis_scripts_follow_the_rules(make_coordinator: Any) -> None:
    coordinator = await make_coordinator(limits=SETTINGS)
    key = coordinator.keys("limit", "4o")

    async def read() -> float:
        return float(await coordinator._redis().hget(key, "limit"))

    expected = await _serve(Bare())
    seen = await _serve(Coordinated(coordinator, read))
    assert [event for event, _ in seen] == [event for event, _ in expected]
    assert [limit for _, limit in seen] == pytest.approx([limit for _, limit in expected])
