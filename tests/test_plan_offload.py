"""A plan (0.1-0.2 s of CPU) is made in a thread on real time, inline on an injected clock."""

from __future__ import annotations

import asyncio
import math
import random
import threading

import pytest

from ttapi_async import JobWatcher, PollSchedule, _schedule
from ttapi_async._durations import DurationStats
from ttapi_async._schedule import LearnedWait
from ttapi_async.testing import ManualClock


def _learned(offload: bool) -> LearnedWait:
    rng = random.Random(5)
    wait = LearnedWait(PollSchedule(), DurationStats(512, rng), rng, offload=offload)
    for _ in range(400):
        wait.stats.add(40.0 * math.exp(rng.gauss(0.0, 0.35)))
    return wait


async def test_on_real_time_the_plan_is_made_in_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """While the plan is being made the loop goes on (the rules place the polls); the plan
    is taken up once it is done."""
    gate = threading.Event()
    made = _schedule.plan_ages

    def slow(*args: object) -> list[float] | None:
        assert gate.wait(10)  # blocks the planning thread, never the loop
        return made(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(_schedule, "plan_ages", slow)
    wait = _learned(offload=True)
    wait.estimate()  # returns at once: the plan is in the making
    plan = wait.plan()
    assert plan is not None and plan.ages is None
    planning = wait._planning
    assert planning is not None and not planning.done()
    gate.set()
    await asyncio.wait_for(planning, 10)
    wait.estimate()
    plan = wait.plan()
    assert plan is not None and plan.ages


async def test_after_the_default_executor_is_shut_down_the_plan_is_made_inline() -> None:
    """A loop whose default executor was shut down refuses new work: plan here instead."""
    await asyncio.get_running_loop().shutdown_default_executor()
    wait = _learned(offload=True)
    wait.estimate()
    plan = wait.plan()
    assert plan is not None and plan.ages
    assert wait._planning is None


def test_on_an_injected_clock_the_plan_is_made_inline() -> None:
    wait = _learned(offload=False)
    wait.estimate()
    plan = wait.plan()
    assert plan is not None and plan.ages
    assert wait._planning is None


async def test_the_watcher_offloads_only_on_real_time() -> None:
    real = JobWatcher(lambda job_id: None)  # type: ignore[arg-type,return-value]
    simulated = JobWatcher(lambda job_id: None, clock=ManualClock())  # type: ignore[arg-type,return-value]
    try:
        assert real._kinds.wait_for("k").offload
        assert not simulated._kinds.wait_for("k").offload
    finally:
        await real.aclose()
        await simulated.aclose()
