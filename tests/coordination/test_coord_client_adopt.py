"""Two workers on one Redis namespace: a dead worker's job is adopted; its owner lets go."""

from __future__ import annotations

import asyncio

import pytest
from _client_workers import PERIOD, Workers, advance_redis
from _client_workers import workers as workers
from _fake_support import requests_to

from ttapi_async.testing import Duration, FakeTTAPI, ManualClock

pytestmark = pytest.mark.fake_ttapi(clock=ManualClock(), job_duration=Duration.fixed(20))

FETCH_4O = "POST /openai/4o-image/fetch"


async def test_adopted_job_is_watched_with_its_true_age_and_lost_by_its_owner(
    workers: Workers, fake_ttapi: FakeTTAPI
) -> None:
    """B adopts silent A's job (aged as it is); A, fenced, resolves it from B's record unfetched."""
    a, b = workers.a, workers.b
    job = await a.gpt4o.submit(prompt="orphan")
    await advance_redis(b, 3 * PERIOD)  # A beats no more: dead after two periods
    await b.coordinator.heartbeat()
    adopted = await b.coordinator.sweep()
    assert [record.job_id for record in adopted] == [job.id]
    taken = b.watcher.get(job.id)
    assert taken is not None
    assert taken.started == pytest.approx(b.watcher._clock() - 3 * PERIOD, abs=5.0)
    await a.coordinator.heartbeat()  # A learns it was declared dead: the job is B's now
    assert job.id in a._coordination.lost
    assert isinstance(fake_ttapi.clock, ManualClock)
    fake_ttapi.clock.advance(21)  # the job ends; both watchers are told (no hook)
    await b.watcher.idle()
    assert (await asyncio.wait_for(taken.wait(), 10)).job_id == job.id
    fake_ttapi.clock.advance(600)  # A's next poll reads the record
    result = await asyncio.wait_for(job.wait(), 10)
    assert result.job_id == job.id
    assert requests_to(fake_ttapi, FETCH_4O) == 1  # B's: A never fetched a job it lost


async def test_resume_of_a_job_settled_elsewhere_costs_no_fetch(
    workers: Workers, fake_ttapi: FakeTTAPI
) -> None:
    """B resumes a job A saw end: B resolves it from the record, without a fetch."""
    a, b = workers.a, workers.b
    job = await a.gpt4o.submit(prompt="done before")
    fake_ttapi.finish_job(job.id)
    a.watcher.poke(job.id)
    await a.watcher.idle()
    first = await asyncio.wait_for(job.wait(), 10)
    assert requests_to(fake_ttapi, FETCH_4O) == 1
    again = b.gpt4o.resume(job.id)
    result = await asyncio.wait_for(again.wait(), 10)
    assert (result.job_id, result.image_url) == (first.job_id, first.image_url)
    assert requests_to(fake_ttapi, FETCH_4O) == 1
