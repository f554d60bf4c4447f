"""The README's "Testing your code" examples, run as written: the fixture and its marker."""

from __future__ import annotations

import pytest

from ttapi_async import PollSchedule
from ttapi_async.testing import Duration, FakeTTAPI, ManualClock


async def test_generate(fake_ttapi: FakeTTAPI) -> None:
    """The fixture serves a generation whose image decodes as PNG and is counted once."""
    async with fake_ttapi.client() as client:
        r = await client.images.generate(prompt="a cat", model="gpt-image-1")
        assert (await r.data[0].read()).startswith(b"\x89PNG")
    assert fake_ttapi.stats().requests == 1


@pytest.mark.fake_ttapi(clock=ManualClock(), job_duration=Duration.fixed(30))
async def test_job_finishes(fake_ttapi: FakeTTAPI) -> None:
    """A marker-configured manual clock finishes a job without real waiting."""
    async with fake_ttapi.client() as client:
        job = await client.gpt4o.submit(prompt="a cat")
        fake_ttapi.clock.advance(31)
        result = await job
        assert result.quota == 2


async def test_my_code_survives_a_rate_limit(fake_ttapi: FakeTTAPI) -> None:
    """One injected 429 is retried by the client and the call still succeeds."""
    fake_ttapi.fail_next("/v1/images/generations", 1, 429)
    async with fake_ttapi.client() as client:
        r = await client.images.generate(prompt="a cat", model="gpt-image-1")
    assert len(r.data) == 1
    counts = fake_ttapi.stats().by_endpoint["POST /v1/images/generations"]
    assert counts == {429: 1, 200: 1}


async def test_time_scaled_fake_scales_the_clients_poll_schedule() -> None:
    """A client from a fake at time_scale 0.01 polls on a schedule 100 times faster."""
    async with FakeTTAPI(time_scale=0.01) as fake, fake.client() as client:
        default = PollSchedule()
        assert client.watcher.schedule.first_delay == pytest.approx(default.first_delay / 100)
        assert client.watcher.schedule.deadline == pytest.approx(default.deadline / 100)


async def test_manual_clock_fake_gives_the_watcher_its_clock() -> None:
    """A client from a fake with a ManualClock reads that clock in its watcher."""
    clock = ManualClock()
    async with FakeTTAPI(clock=clock) as fake, fake.client() as client:
        assert client.watcher._clock is clock
