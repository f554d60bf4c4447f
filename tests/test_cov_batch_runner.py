"""BatchRunner's controls: argument guards, plan/run/close, stops before and during a run."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from test_cov_batch_steps import StubClient, jobs, journal_states, run

from ttapi_async.batch import BatchRunner


def test_concurrency_below_one_is_refused(tmp_path: Path) -> None:
    """BatchRunner(concurrency=0) raises ValueError."""
    with pytest.raises(ValueError, match="concurrency"):
        BatchRunner(StubClient(), tmp_path, concurrency=0)  # type: ignore[arg-type]


async def test_run_without_requests_or_plan_is_refused(tmp_path: Path) -> None:
    """run() with no requests and no plan() raises ValueError."""
    runner = BatchRunner(StubClient(), tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="plan"):
        async for _ in runner.run():
            pass


async def test_plan_then_run_without_requests(tmp_path: Path) -> None:
    """run() after plan() runs the planned requests."""
    client = StubClient()
    runner = BatchRunner(client, tmp_path)  # type: ignore[arg-type]
    runner.plan(jobs(2))
    outcomes = [o async for o in runner.run()]
    assert sorted(o.state for o in outcomes) == ["done", "done"]


def test_close_after_plan_releases_the_folder(tmp_path: Path) -> None:
    """close() after a plan() lets another runner plan the same folder."""
    first = BatchRunner(StubClient(), tmp_path)  # type: ignore[arg-type]
    first.plan(jobs(1))
    first.close()
    second = BatchRunner(StubClient(), tmp_path)  # type: ignore[arg-type]
    second.plan(jobs(1))
    second.close()


async def test_a_stop_before_the_run_sends_nothing(tmp_path: Path) -> None:
    """A runner stopped before run() sends nothing, and every item stays pending."""
    client = StubClient()
    runner = BatchRunner(client, tmp_path)  # type: ignore[arg-type]
    runner.stop("asked to")
    assert runner.stopping
    assert await run(runner, jobs(3)) == {}
    assert client.gpt4o.submitted == []
    assert {s for s, _ in journal_states(tmp_path).values()} == {"pending"}
    assert runner.stats.stopped_reason == "asked to"


async def test_a_consumer_that_stops_early_ends_the_run(tmp_path: Path) -> None:
    """Closing run()'s iterator after one outcome ends the run, keeps every paid job, and
    frees the folder."""
    client = StubClient()
    runner = BatchRunner(client, tmp_path, concurrency=1)  # type: ignore[arg-type]
    async with contextlib.aclosing(runner.run(jobs(5))) as outcomes:
        async for _ in outcomes:
            break
    states = journal_states(tmp_path)
    paid = {f"job-{k}" for k in range(len(client.gpt4o.submitted))}
    assert {job for _, job in states.values() if job} == paid  # every paid job is recorded
    assert sum(state == "pending" for state, _ in states.values()) >= 2
    again = BatchRunner(StubClient(), tmp_path)  # type: ignore[arg-type]
    again.plan(jobs(5))
    again.close()
