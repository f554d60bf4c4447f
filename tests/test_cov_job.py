"""A Job's own surface (repr, exception, cancel, wait, listeners) in every state it can be in."""

from __future__ import annotations

import asyncio
import logging

import pytest
from _fake_support import client as client
from _fake_support import clock as clock

from ttapi_async import AsyncTTAPI, JobStatus, JobTimeoutError
from ttapi_async.testing import Duration, FakeTTAPI, ManualClock

pytestmark = pytest.mark.fake_ttapi(clock=ManualClock(), job_duration=Duration.fixed(30))


async def settle(client: AsyncTTAPI, clock: ManualClock, seconds: float) -> None:
    clock.advance(seconds)
    await client.watcher.idle()


async def test_repr_and_exception_of_a_pending_job(client: AsyncTTAPI) -> None:
    """A pending job says so in its repr, and ``exception()`` refuses to answer yet."""
    job = await client.gpt4o.submit(prompt="x")
    assert "pending" in repr(job)
    with pytest.raises(asyncio.InvalidStateError):
        job.exception()
    job.cancel()


async def test_a_succeeded_job_has_no_exception(client: AsyncTTAPI, clock: ManualClock) -> None:
    """A job that succeeded reads "succeeded", has no exception, and cannot be cancelled."""
    job = await client.gpt4o.submit(prompt="x")
    await settle(client, clock, 31)
    await job
    assert "succeeded" in repr(job) and job.exception() is None
    assert job.cancel() is False


async def test_a_failed_job_names_its_error(
    client: AsyncTTAPI, fake_ttapi: FakeTTAPI, clock: ManualClock
) -> None:
    """A failed job's repr names the error type ``exception()`` returns."""
    job = await client.gpt4o.submit(prompt="x")
    fake_ttapi.finish_job(job.id, "FAILED", "content policy")
    await settle(client, clock, 9)
    assert "failed (JobFailedError)" in repr(job)
    assert type(job.exception()).__name__ == "JobFailedError"


async def test_a_cancelled_job_reads_cancelled(client: AsyncTTAPI) -> None:
    """A cancelled job's repr says "cancelled" and awaiting it raises CancelledError."""
    job = await client.gpt4o.submit(prompt="x")
    waiter = asyncio.ensure_future(job.wait())
    await asyncio.sleep(0)
    assert job.cancel() is True
    assert "cancelled" in repr(job)
    with pytest.raises(asyncio.CancelledError):
        await waiter


async def test_a_wait_that_times_out_leaves_the_job_watched(client: AsyncTTAPI) -> None:
    """``wait(timeout)`` raises JobTimeoutError while the job itself stays pending."""
    job = await client.gpt4o.submit(prompt="x")
    with pytest.raises(JobTimeoutError, match="still being watched"):
        await job.wait(timeout=0)
    assert not job.done()
    job.cancel()


async def test_listeners_of_a_finished_job(client: AsyncTTAPI, clock: ManualClock) -> None:
    """On a finished job ``on_update`` adds nothing and ``updates()`` yields the last status."""
    job = await client.gpt4o.submit(prompt="x")
    await settle(client, clock, 31)
    await job
    seen: list[JobStatus] = []
    job.on_update(seen.append)
    statuses = [status async for status in job.updates()]
    assert seen == [] and [s.status for s in statuses] == ["SUCCESS"]


async def test_a_raising_update_callback_is_logged_not_raised(
    client: AsyncTTAPI, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A plain callback that raises is logged, and the job still succeeds."""
    job = await client.gpt4o.submit(prompt="x")

    def broken(status: JobStatus) -> None:
        raise RuntimeError("callback bug")

    job.on_update(broken)
    with caplog.at_level(logging.ERROR, logger="ttapi_async"):
        await settle(client, clock, 31)
        await job
    assert any("on_update callback" in r.getMessage() for r in caplog.records)
