"""What coordination tests assert on: peak jobs in progress and 499s, per product."""

from __future__ import annotations

import aiohttp
import pytest
from fake_helpers import get_json, post_json

from ttapi_async.testing import FakeTTAPI, ManualClock

SUBMIT = {"4o-image": "/openai/4o-image/generations", "gpt": "/openai/gpt/generations"}


@pytest.mark.fake_ttapi(clock=ManualClock(), job_duration=10, max_jobs_in_progress=3)
async def test_peak_and_queue_full_per_product(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """The fake counts, per product, the most jobs in progress at once and the 499s it gave."""
    statuses = []
    for i in range(5):
        status, _ = await post_json(
            session, fake_ttapi.url + SUBMIT["4o-image"], {"prompt": f"{i}"}
        )
        statuses.append(status)
    await post_json(session, fake_ttapi.url + SUBMIT["gpt"], {"prompt": "g"})
    assert statuses == [200, 200, 200, 499, 499]
    assert isinstance(fake_ttapi.clock, ManualClock)
    fake_ttapi.clock.advance(10)  # all three end; two more start: the peak stays 3
    for i in range(2):
        await post_json(session, fake_ttapi.url + SUBMIT["4o-image"], {"prompt": f"again {i}"})
    stats = fake_ttapi.stats()
    assert stats.peak_in_progress == {"4o-image": 3, "gpt": 1}
    assert stats.queue_full == {"4o-image": 2}
    _, body = await get_json(session, f"{fake_ttapi.url}/_fake/stats")
    assert body["peak_in_progress"] == {"4o-image": 3, "gpt": 1}
    assert body["queue_full"] == {"4o-image": 2}


def test_peak_counts_one_key_at_a_time() -> None:
    """The peak is per key, as the limit is: two keys' jobs do not add up."""
    fake = FakeTTAPI(clock=ManualClock(), job_duration=10, extra_keys=("other",))
    fake.create_job("a")
    fake.create_job("b")
    fake.create_job("c", key="other")
    assert fake.stats().peak_in_progress == {"4o-image": 2}


@pytest.mark.fake_ttapi(clock=ManualClock(), job_duration=10)
async def test_reset_forgets_the_counters(fake_ttapi: FakeTTAPI) -> None:
    """reset() starts the peak and 499 counts again."""
    fake_ttapi.create_job("a")
    fake_ttapi.reset()
    stats = fake_ttapi.stats()
    assert stats.peak_in_progress == {} and stats.queue_full == {} and stats.hooks_delivered == {}
