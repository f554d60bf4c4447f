"""client.spent: job quota by product from settled jobs, usage tokens by model."""

from __future__ import annotations

import pytest
from _fake_support import client as client
from _fake_support import clock as clock

from ttapi_async import AsyncTTAPI, JobFailedError, Usage
from ttapi_async._spent import DEFAULT_MODEL, Spending, SpentSnapshot, TokenTotals
from ttapi_async.testing import Duration, FakeTTAPI, ManualClock

pytestmark = pytest.mark.fake_ttapi(clock=ManualClock(), job_duration=Duration.fixed(30))


async def _settle(c: AsyncTTAPI, clock: ManualClock) -> None:
    clock.advance(31)
    await c.watcher.idle()


async def test_settled_jobs_count_quota_by_product(client: AsyncTTAPI, clock: ManualClock) -> None:
    """Quota of finished jobs is added up under gpt4o and gpt:<model>."""
    jobs = [
        await client.gpt4o.submit(prompt="a cat"),
        await client.gpt4o.submit(prompt="a dog"),
        await client.gpt.submit(prompt="a fox"),
    ]
    assert client.spent.snapshot().total_quota == 0  # nothing settled yet
    await _settle(client, clock)
    results = [await j for j in jobs]
    snap = client.spent.snapshot()
    assert snap.quota["gpt4o"] == results[0].quota + results[1].quota
    assert snap.quota["gpt:gpt-image-2"] == results[2].quota
    assert snap.jobs == 3 and snap.total_quota == sum(r.quota for r in results) > 0


async def test_failed_job_costs_nothing(
    client: AsyncTTAPI, clock: ManualClock, fake_ttapi: FakeTTAPI
) -> None:
    """A job that ended FAILED adds no quota."""
    job = await client.gpt4o.submit(prompt="a cat")
    fake_ttapi.finish_job(job.id, "FAILED")
    await _settle(client, clock)
    with pytest.raises(JobFailedError):
        await job
    assert client.spent.snapshot().quota == {}


async def test_usage_tokens_counted_by_model(client: AsyncTTAPI) -> None:
    """The usage of generate and edit answers is added up under the model asked for."""
    first = await client.images.generate(prompt="a cat", model="gpt-image-1")
    await client.images.generate(prompt="a dog", model="gpt-image-1")
    await client.images.generate(prompt="a fox", model="dall-e-2")  # reports no usage
    snap = client.spent.snapshot()
    assert first.usage is not None
    assert snap.tokens["gpt-image-1"].total_tokens == 2 * first.usage.total_tokens
    assert "dall-e-2" not in snap.tokens and snap.requests == 3


async def test_snapshots_subtract(client: AsyncTTAPI) -> None:
    """later - earlier is what was spent between two snapshots (for metering one user)."""
    await client.images.generate(prompt="a cat", model="gpt-image-1")
    before = client.spent.snapshot()
    one = await client.images.generate(prompt="a dog", model="gpt-image-1")
    between = client.spent.snapshot() - before
    assert one.usage is not None
    assert between.total_tokens == one.usage.total_tokens and between.requests == 1


def test_snapshot_is_immutable_and_detached() -> None:
    """A snapshot does not change when the totals move on, and cannot be changed."""
    spent = Spending()
    spent.add_quota("gpt4o", 2)
    snap = spent.snapshot()
    spent.add_quota("gpt4o", 5)
    assert snap.quota["gpt4o"] == 2 and spent.snapshot().quota["gpt4o"] == 7
    with pytest.raises(TypeError):
        snap.quota["gpt4o"] = 0  # type: ignore[index]


def test_usage_without_model_and_reset() -> None:
    """A request naming no model counts under (default); reset() returns and clears."""
    spent = Spending()
    spent.add_usage(None, Usage(input_tokens=1, output_tokens=2, total_tokens=3))
    old = spent.reset()
    assert old.tokens == {DEFAULT_MODEL: TokenTotals(1, 2, 3)}
    assert spent.snapshot() == SpentSnapshot()
