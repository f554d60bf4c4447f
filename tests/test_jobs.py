"""client.gpt4o and client.gpt against FakeTTAPI over a real socket, with a manual clock."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from _fake_support import client as client
from _fake_support import clock as clock
from _fake_support import requests_to

from ttapi_async import (
    AsyncTTAPI,
    AuthenticationError,
    BadRequestError,
    InvalidRequestError,
    JobFailedError,
    JobResult,
    JobTimeoutError,
    PollSchedule,
)
from ttapi_async.testing import Duration, FakeTTAPI, FaultRule, ManualClock

pytestmark = pytest.mark.fake_ttapi(clock=ManualClock(), job_duration=Duration.fixed(30))

FETCH_4O = "POST /openai/4o-image/fetch"
SUBMIT_4O = "POST /openai/4o-image/generations"


def count(fake: FakeTTAPI, endpoint: str) -> int:
    return requests_to(fake, endpoint)


async def settle(client: AsyncTTAPI, clock: ManualClock, seconds: float) -> None:
    """Advance the clock and let the watcher make every fetch now due."""
    clock.advance(seconds)
    await client.watcher.idle()


async def test_submit_and_await(client: AsyncTTAPI, clock: ManualClock, tmp_path: Path) -> None:
    """A submitted GPT-4o job resolves to a result whose image can be saved."""
    job = await client.gpt4o.submit(prompt="a cat", refer_images=["https://example.com/a.png"])
    assert job.id and not job.done()
    await settle(client, clock, 31)
    result = await job
    assert isinstance(result, JobResult)
    assert result.quota == 2 and isinstance(result.finish_time, dt.datetime)
    assert result.prompt == "a cat" and result.refer_images == ("https://example.com/a.png",)
    saved = await result.save(tmp_path / "cat.png")
    assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_gpt_family_sends_its_fields(
    client: AsyncTTAPI, fake_ttapi: FakeTTAPI, clock: ManualClock
) -> None:
    """client.gpt submits model and aspect_ratio to /openai/gpt and polls /openai/gpt/fetch."""
    job = await client.gpt.submit(prompt="a dog", model="gpt-image-2", aspect_ratio="16:9")
    assert job.key == "gpt:gpt-image-2"
    await settle(client, clock, 31)
    assert (await job).job_id == job.id
    view = fake_ttapi.job(job.id)
    assert view is not None and view.model == "gpt-image-2" and view.product == "gpt"
    assert count(fake_ttapi, "POST /openai/gpt/fetch") == 1


async def test_invalid_parameters_send_nothing(client: AsyncTTAPI, fake_ttapi: FakeTTAPI) -> None:
    """A parameter the model does not take raises InvalidRequestError before any request."""
    with pytest.raises(InvalidRequestError, match="aspect_ratio"):
        await client.gpt.submit(prompt="x", model="gpt-image-1", aspect_ratio="16:9")
    assert fake_ttapi.stats().requests == 0


@pytest.mark.fake_ttapi(submit_id_4o="job_id", submit_id_gpt="jobId")
async def test_both_id_spellings(client: AsyncTTAPI, clock: ManualClock) -> None:
    """Submit answers naming the id data.job_id or data.jobId both give a Job."""
    jobs = [await client.gpt4o.submit(prompt="a"), await client.gpt.submit(prompt="b")]
    await settle(client, clock, 31)
    assert [r.job_id for r in await asyncio.gather(*jobs)] == [j.id for j in jobs]


@pytest.mark.fake_ttapi(banned_words=("forbidden",))
async def test_failed_submit_creates_no_job(client: AsyncTTAPI) -> None:
    """A refused submit raises a typed error and leaves nothing to watch."""
    with pytest.raises(BadRequestError):
        await client.gpt4o.submit(prompt="something forbidden")
    assert client.watcher.pending_ids() == []


@pytest.mark.fake_ttapi(banned_words=("forbidden",), business_failure_status=200)
async def test_failed_envelope_with_200_raises(client: AsyncTTAPI) -> None:
    """A FAILED envelope answered with HTTP 200 is still a typed error, not a job."""
    with pytest.raises(BadRequestError) as info:
        await client.gpt.submit(prompt="something forbidden")
    assert info.value.status_code == 200
    assert len(client.watcher) == 0


async def test_fetch_of_failed_job_is_a_status(client: AsyncTTAPI, fake_ttapi: FakeTTAPI) -> None:
    """fetch() of a job that ended FAILED returns its status instead of raising."""
    job_id = fake_ttapi.create_job("x")
    fake_ttapi.finish_job(job_id, "FAILED", "moderation")
    status = await client.gpt4o.fetch(job_id)
    assert status.failed and status.message == "moderation" and status.job_id == job_id


async def test_fetch_with_bad_key_raises(fake_ttapi: FakeTTAPI) -> None:
    """fetch() with a wrong key raises AuthenticationError."""
    job_id = fake_ttapi.create_job("x")
    async with AsyncTTAPI(api_key="wrong", base_url=fake_ttapi.url) as client:
        with pytest.raises(AuthenticationError):
            await client.gpt4o.fetch(job_id)


async def test_failed_job_raises(
    client: AsyncTTAPI, fake_ttapi: FakeTTAPI, clock: ManualClock
) -> None:
    """A job the service ends FAILED makes await raise JobFailedError with its message."""
    job = await client.gpt4o.submit(prompt="x")
    fake_ttapi.finish_job(job.id, "FAILED", "content policy")
    await settle(client, clock, 9)
    with pytest.raises(JobFailedError, match="content policy"):
        await job


@pytest.mark.fake_ttapi(job_duration=Duration.fixed(0))
async def test_generate_waits_for_the_result(client: AsyncTTAPI) -> None:
    """generate() submits and returns the finished job's result."""
    client.watcher.configure(schedule=PollSchedule(first_delay=0.0, learn=False))
    result = await client.gpt.generate(prompt="a fox")
    assert result.prompt == "a fox"


async def test_deadline(client: AsyncTTAPI, clock: ManualClock) -> None:
    """A job that outlives its deadline raises JobTimeoutError naming how to resume it."""
    job = await client.gpt4o.submit(prompt="slow", deadline=10)
    await settle(client, clock, 10)
    with pytest.raises(JobTimeoutError, match=r"client\.gpt4o\.resume"):
        await job


async def test_resume_in_another_client(
    client: AsyncTTAPI, fake_ttapi: FakeTTAPI, clock: ManualClock
) -> None:
    """A job id saved before closing is resumed by a new client and resolves."""
    job = await client.gpt4o.submit(prompt="x")
    saved = client.watcher.pending_ids()
    await client.aclose()
    with pytest.raises(JobFailedError, match="closed while the job was pending"):
        await job
    async with fake_ttapi.client() as second:
        second.watcher.configure(clock=clock, max_per_second=None)
        clock.advance(31)
        resumed = second.gpt4o.resume(saved[0])
        await second.watcher.idle()
        assert (await resumed).job_id == job.id


async def test_cancel_is_local(
    client: AsyncTTAPI, fake_ttapi: FakeTTAPI, clock: ManualClock
) -> None:
    """cancel() stops polling here while the job goes on at the service."""
    job = await client.gpt4o.submit(prompt="x")
    job.cancel()
    await settle(client, clock, 31)
    assert count(fake_ttapi, FETCH_4O) == 0
    view = fake_ttapi.job(job.id)
    assert view is not None and view.status == "SUCCESS"


@pytest.mark.fake_ttapi(clock=ManualClock(), job_duration=Duration.lognormal(40, 0.35), seed=7)
async def test_thousands_of_jobs_resolve(
    client: AsyncTTAPI, fake_ttapi: FakeTTAPI, clock: ManualClock
) -> None:
    """Two thousand concurrent jobs of both families each resolve to their own result."""
    ids = [
        fake_ttapi.create_job(f"p{i}", product="4o-image" if i % 2 else "gpt") for i in range(2000)
    ]
    jobs = [
        (client.gpt4o if i % 2 else client.gpt).resume(job_id, age=0.0)
        for i, job_id in enumerate(ids)
    ]
    for _ in range(3):
        await settle(client, clock, 100)
    results = await asyncio.gather(*jobs)
    assert [r.job_id for r in results] == ids
    assert all(r.prompt == f"p{i}" for i, r in enumerate(results))


async def test_fetch_faults_do_not_fail_jobs(
    client: AsyncTTAPI, fake_ttapi: FakeTTAPI, clock: ManualClock
) -> None:
    """5xx answers and dropped connections on fetch delay jobs but never fail them."""
    jobs = [await client.gpt4o.submit(prompt=f"p{i}") for i in range(20)]
    fake_ttapi.set_faults(
        FaultRule("status", "/openai/4o-image/fetch", probability=0.5, status=(500, 503)),
        FaultRule("drop_before", "/openai/4o-image/fetch", probability=0.2),
    )
    for _ in range(40):
        await settle(client, clock, 2)
    fake_ttapi.clear_faults()
    await settle(client, clock, 30)
    results = await asyncio.gather(*jobs)
    assert len(results) == 20
    assert client.watcher.fetch_errors > 0


async def test_auth_failure_fails_all(fake_ttapi: FakeTTAPI, clock: ManualClock) -> None:
    """When the key is refused, every pending job fails with AuthenticationError at once."""
    ids = [fake_ttapi.create_job(f"p{i}") for i in range(50)]
    async with AsyncTTAPI(api_key="revoked", base_url=fake_ttapi.url) as client:
        client.watcher.configure(clock=clock, max_per_second=None, max_in_flight=1)
        jobs = [client.gpt4o.resume(job_id) for job_id in ids]
        await client.watcher.idle()
        outcomes = await asyncio.gather(*jobs, return_exceptions=True)
    assert all(isinstance(o, AuthenticationError) for o in outcomes)
    assert count(fake_ttapi, FETCH_4O) == 1


async def test_close_leaves_no_task(client: AsyncTTAPI, clock: ManualClock) -> None:
    """Closing the client settles pending jobs and leaves no task of the watcher."""
    before = asyncio.all_tasks()
    jobs = [await client.gpt4o.submit(prompt=f"p{i}") for i in range(5)]
    await settle(client, clock, 9)
    await client.aclose()
    outcomes = await asyncio.gather(*jobs, return_exceptions=True)
    assert all(isinstance(o, JobFailedError) for o in outcomes)
    # The emulator's own connection handlers may outlive the client on older aiohttp:
    # they are the server's tasks, not the client's.
    left = {t for t in asyncio.all_tasks() - before if not _is_server_task(t)}
    assert not left


def _is_server_task(task: asyncio.Task[object]) -> bool:
    """Tell whether a task is an aiohttp server's connection handler (the fake's side)."""
    code = getattr(task.get_coro(), "cr_code", None)
    return code is not None and "web_protocol" in code.co_filename
