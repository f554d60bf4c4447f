"""On a ManualClock, a job of fake.client() finishes the obvious way, or fails loudly (12.12)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ttapi_async import AsyncTTAPI, JobFailedError, PollSchedule
from ttapi_async.testing import FakeTTAPI, ManualClock

pytestmark = pytest.mark.fake_ttapi(clock=ManualClock(), job_duration=5)

FETCH = "POST /openai/4o-image/fetch"
# The clock driver's fetches are what these tests count: the schedule's own first poll (1 s
# by default) must come after the advances.
LATE_FIRST_POLL = PollSchedule(first_delay=8.0)


@pytest.fixture
async def client(fake_ttapi: FakeTTAPI) -> AsyncIterator[AsyncTTAPI]:
    """Yield the fake's own client, as a user's test would make it."""
    async with fake_ttapi.client() as client:
        yield client


def _clock(fake: FakeTTAPI) -> ManualClock:
    assert isinstance(fake.clock, ManualClock)
    return fake.clock


def _fetches(fake: FakeTTAPI) -> int:
    return sum(fake.stats().by_endpoint.get(FETCH, {}).values())


async def _bounded(awaitable: Any) -> Any:
    # A bound, not a timing: the old behaviour hangs forever, and a test must end.
    return await asyncio.wait_for(asyncio.ensure_future(awaitable), 30)


async def test_advance_past_the_end_then_await(fake_ttapi: FakeTTAPI, client: AsyncTTAPI) -> None:
    """A 5 s job, clock.advance(6), then await job: it resolves, with one fetch."""
    job = await client.gpt4o.submit(prompt="a cat")
    _clock(fake_ttapi).advance(6)
    result = await _bounded(job)
    assert result.quota == 2
    assert _fetches(fake_ttapi) == 1


async def test_advance_short_of_the_end_does_not_poll(
    fake_ttapi: FakeTTAPI, client: AsyncTTAPI
) -> None:
    """Advancing within a job's run adds no fetch: only the job's end makes one."""
    client.watcher.configure(schedule=LATE_FIRST_POLL)
    job = await client.gpt4o.submit(prompt="a cat")
    _clock(fake_ttapi).advance(4)
    await client.watcher.idle()
    assert _fetches(fake_ttapi) == 0 and not job.done()
    await fake_ttapi.settle(job)


@pytest.mark.fake_ttapi(job_duration=300)
async def test_settle_runs_a_job_to_its_end(fake_ttapi: FakeTTAPI, client: AsyncTTAPI) -> None:
    """fake.settle(job) advances the clock to the job's end and returns its result."""
    start = _clock(fake_ttapi).now  # the marker's clock is shared by the module's tests
    job = await client.gpt4o.submit(prompt="a long one")
    result = await _bounded(fake_ttapi.settle(job))
    assert result.job_id == job.id
    assert _clock(fake_ttapi).now == pytest.approx(start + 300)


async def test_settle_does_not_wait_for_a_callback_that_never_comes(
    fake_ttapi: FakeTTAPI, client: AsyncTTAPI
) -> None:
    """A job whose hookUrl is unreachable is settled by a fetch, not left waiting."""
    job = await client.gpt4o.submit(prompt="hooked", hook_url="http://127.0.0.1:9/none")
    result = await _bounded(fake_ttapi.settle(job))
    assert result.job_id == job.id


async def test_a_job_with_a_callback_waits_for_it(
    fake_ttapi: FakeTTAPI, client: AsyncTTAPI
) -> None:
    """An advance past the end of a job with a hookUrl leaves it to the callback: no fetch."""
    client.watcher.configure(schedule=LATE_FIRST_POLL)
    job = await client.gpt4o.submit(prompt="hooked", hook_url="http://127.0.0.1:9/none")
    _clock(fake_ttapi).advance(6)
    await client.watcher.idle()
    assert _fetches(fake_ttapi) == 0
    await fake_ttapi.settle(job)


@pytest.mark.fake_ttapi(job_duration=30, manual_clock_stall=0.2)
async def test_a_stalled_clock_fails_the_job_loudly(
    fake_ttapi: FakeTTAPI, client: AsyncTTAPI
) -> None:
    """A job awaited while the clock stands still fails with an error saying how to fix it."""
    job = await client.gpt4o.submit(prompt="forgotten")
    _clock(fake_ttapi).advance(6)
    with pytest.raises(JobFailedError, match=r"ManualClock has stood at .*advance it"):
        await _bounded(job)


async def test_settle_refuses_a_foreign_job(fake_ttapi: FakeTTAPI) -> None:
    """settle() of something that is not a job of this fake raises ValueError."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    with pytest.raises(ValueError):
        await fake_ttapi.settle(future)
    future.cancel()


async def test_settle_needs_a_manual_clock() -> None:
    """settle() on a fake with a real clock raises TypeError."""
    async with FakeTTAPI() as fake:
        job_id = fake.create_job("p")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.id = job_id  # type: ignore[attr-defined]
        with pytest.raises(TypeError):
            await fake.settle(future)
        future.cancel()
