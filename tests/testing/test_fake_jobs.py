"""Asynchronous jobs (4o-image and gpt families) driven by a ManualClock: no real sleeping."""

from __future__ import annotations

import re

import aiohttp
import pytest
from fake_helpers import decode_png, get_json, post_json

from ttapi_async.testing import Duration, FakeTTAPI, ManualClock

JOBS = {
    "clock": ManualClock(),
    "job_duration": Duration.fixed(30),
    "queue_share": 0.2,
    "epoch": 1_743_393_900.0,  # 2025-03-31 04:05:00 UTC
}


def _clock(fake: FakeTTAPI) -> ManualClock:
    clock = fake.clock
    assert isinstance(clock, ManualClock)
    return clock


async def _submit(
    fake: FakeTTAPI, session: aiohttp.ClientSession, family: str = "4o-image", **body: object
) -> str:
    status, answer = await post_json(
        session, f"{fake.url}/openai/{family}/generations", {"prompt": "a dog", **body}
    )
    assert status == 200, answer
    data = answer["data"]
    return str(data.get("jobId") or data.get("job_id"))


@pytest.mark.parametrize("fake_ttapi", [dict(JOBS, clock=ManualClock())], indirect=True)
async def test_job_lifecycle(fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession) -> None:
    """A job goes PENDING_QUEUE, ON_QUEUE, then SUCCESS with an image URL, as the clock moves."""
    job_id = await _submit(fake_ttapi, session, referImages=["https://example.com/a.jpg"])
    url = f"{fake_ttapi.url}/openai/4o-image/fetch"
    seen = []
    for step in (0, 6, 24):
        _clock(fake_ttapi).advance(step)
        _, body = await get_json(session, url, params={"jobId": job_id})
        seen.append((body["status"], body["message"], body["data"]["finishTime"]))
    assert seen[0] == ("PENDING_QUEUE", None, None)
    assert seen[1] == ("ON_QUEUE", None, None)
    assert seen[2] == ("SUCCESS", "success", "2025-03-31 04:05:30")
    _, body = await get_json(session, url, params={"jobId": job_id})
    assert body["jobId"] == job_id
    assert body["data"]["quota"] == "2"
    assert body["data"]["referImages"] == ["https://example.com/a.jpg"]
    async with session.get(body["data"]["imageUrl"]) as resp:
        assert decode_png(await resp.read())[:2] == (1024, 1024)


@pytest.mark.parametrize("fake_ttapi", [dict(JOBS, clock=ManualClock())], indirect=True)
async def test_fetch_by_post_body(fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession) -> None:
    """POST fetch takes jobId in the JSON body."""
    job_id = await _submit(fake_ttapi, session)
    status, body = await post_json(
        session, f"{fake_ttapi.url}/openai/4o-image/fetch", {"jobId": job_id}
    )
    assert (status, body["jobId"], body["status"]) == (200, job_id, "PENDING_QUEUE")


@pytest.mark.parametrize(
    "fake_ttapi", [dict(JOBS, clock=ManualClock(), job_failure_rate=1.0)], indirect=True
)
async def test_failed_job(fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession) -> None:
    """A failed job answers FAILED with its message, quota "0" and a finishTime, no image."""
    job_id = await _submit(fake_ttapi, session)
    _clock(fake_ttapi).advance(31)
    _, body = await get_json(
        session, f"{fake_ttapi.url}/openai/4o-image/fetch", params={"jobId": job_id}
    )
    assert (body["status"], body["message"]) == ("FAILED", "job failed")
    assert body["data"]["quota"] == "0"
    assert body["data"]["imageUrl"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", body["data"]["finishTime"])


@pytest.mark.parametrize("fake_ttapi", [dict(JOBS, clock=ManualClock())], indirect=True)
async def test_id_spellings_default(fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession) -> None:
    """By default 4o-image submit answers data.jobId and the gpt family data.job_id."""
    _, a = await post_json(
        session, f"{fake_ttapi.url}/openai/4o-image/generations", {"prompt": "x"}
    )
    _, b = await post_json(session, f"{fake_ttapi.url}/openai/gpt/generations", {"prompt": "x"})
    assert list(a["data"]) == ["jobId"]
    assert list(b["data"]) == ["job_id"]


@pytest.mark.parametrize(
    "fake_ttapi",
    [dict(JOBS, clock=ManualClock(), submit_id_4o="both", submit_id_gpt="jobId")],
    indirect=True,
)
async def test_id_spellings_configured(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """submit_id_4o/submit_id_gpt choose jobId, job_id or both."""
    _, a = await post_json(
        session, f"{fake_ttapi.url}/openai/4o-image/generations", {"prompt": "x"}
    )
    _, b = await post_json(session, f"{fake_ttapi.url}/openai/gpt/generations", {"prompt": "x"})
    assert a["data"]["jobId"] == a["data"]["job_id"]
    assert list(b["data"]) == ["jobId"]


@pytest.mark.parametrize("fake_ttapi", [dict(JOBS, clock=ManualClock())], indirect=True)
async def test_gpt_family_aspect_ratio_sizes_the_image(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """A gpt job with aspect_ratio 16:9 ends with a 16:9 image, fetched by POST or GET."""
    job_id = await _submit(fake_ttapi, session, "gpt", model="gpt-image-2", aspect_ratio="16:9")
    _clock(fake_ttapi).advance(30)
    _, body = await post_json(session, f"{fake_ttapi.url}/openai/gpt/fetch", {"jobId": job_id})
    async with session.get(body["data"]["imageUrl"]) as resp:
        assert decode_png(await resp.read())[:2] == (1536, 864)


@pytest.mark.parametrize("fake_ttapi", [dict(JOBS, clock=ManualClock())], indirect=True)
async def test_job_of_other_family_is_404(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """Fetching a 4o-image job through the gpt fetch, or an unknown id, answers 404."""
    job_id = await _submit(fake_ttapi, session)
    s1, _ = await get_json(session, f"{fake_ttapi.url}/openai/gpt/fetch", params={"jobId": job_id})
    s2, b2 = await get_json(session, f"{fake_ttapi.url}/openai/4o-image/fetch?jobId=nope")
    assert (s1, s2) == (404, 404)
    assert b2["status"] == "FAILED"


async def test_fetch_without_job_id(fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession) -> None:
    """A fetch without jobId answers 400 with a FAILED envelope."""
    status, body = await get_json(session, f"{fake_ttapi.url}/openai/gpt/fetch")
    assert (status, body["status"]) == (400, "FAILED")


@pytest.mark.parametrize("fake_ttapi", [dict(JOBS, clock=ManualClock())], indirect=True)
async def test_finish_job_settles_early(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """finish_job ends a pending job now, as FAILED with the given message."""
    job_id = await _submit(fake_ttapi, session)
    view = fake_ttapi.finish_job(job_id, status="FAILED", message="banned content")
    assert (view.status, view.message, view.quota) == ("FAILED", "banned content", "0")
    _clock(fake_ttapi).advance(100)
    assert fake_ttapi.job(job_id).status == "FAILED"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="already ended"):
        fake_ttapi.finish_job(job_id)


@pytest.mark.parametrize(
    "fake_ttapi", [dict(JOBS, clock=ManualClock(), max_jobs_in_progress=2)], indirect=True
)
async def test_queue_full_499(fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession) -> None:
    """Past max_jobs_in_progress per key and product, submit answers 499; room comes back."""
    url = f"{fake_ttapi.url}/openai/4o-image/generations"
    first = await _submit(fake_ttapi, session)
    await _submit(fake_ttapi, session)
    status, body = await post_json(session, url, {"prompt": "third"})
    assert (status, body["status"]) == (499, "FAILED")
    other, _ = await post_json(session, f"{fake_ttapi.url}/openai/gpt/generations", {"prompt": "x"})
    assert other == 200  # another product has its own queue
    fake_ttapi.finish_job(first)
    status, _ = await post_json(session, url, {"prompt": "third"})
    assert status == 200


@pytest.mark.parametrize(
    "fake_ttapi",
    [dict(JOBS, clock=ManualClock(), job_duration=Duration.uniform(10, 50), seed=7)],
    indirect=True,
)
async def test_durations_follow_the_distribution(fake_ttapi: FakeTTAPI) -> None:
    """Job durations drawn from uniform(10, 50) all end within [10, 50] service seconds."""
    ids = [fake_ttapi.create_job(f"p{i}") for i in range(50)]
    _clock(fake_ttapi).advance(9.99)
    assert all(fake_ttapi.job(i).status != "SUCCESS" for i in ids)  # type: ignore[union-attr]
    _clock(fake_ttapi).advance(40.02)
    assert all(fake_ttapi.job(i).status == "SUCCESS" for i in ids)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "fake_ttapi", [dict(JOBS, clock=ManualClock(), time_scale=0.01)], indirect=True
)
async def test_time_scale_shrinks_jobs(fake_ttapi: FakeTTAPI) -> None:
    """With time_scale=0.01 a 30 s job ends after 0.3 clock seconds."""
    job_id = fake_ttapi.create_job("fast")
    _clock(fake_ttapi).advance(0.29)
    assert fake_ttapi.job(job_id).status == "ON_QUEUE"  # type: ignore[union-attr]
    _clock(fake_ttapi).advance(0.02)
    assert fake_ttapi.job(job_id).status == "SUCCESS"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "fake_ttapi", [dict(JOBS, clock=ManualClock(), url_ttl=3600)], indirect=True
)
async def test_job_image_url_expires(fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession) -> None:
    """A job's imageUrl serves the image until url_ttl after the job ended, then 404."""
    job_id = fake_ttapi.create_job("expiring")
    _clock(fake_ttapi).advance(30)
    url = fake_ttapi.job(job_id).image_url  # type: ignore[union-attr]
    assert url is not None
    _clock(fake_ttapi).advance(3599)
    async with session.get(url) as resp:
        assert resp.status == 200
    _clock(fake_ttapi).advance(1)
    async with session.get(url) as resp:
        assert resp.status == 404


@pytest.mark.parametrize("fake_ttapi", [dict(JOBS, clock=ManualClock(), url_ttl=60)], indirect=True)
async def test_sync_url_expires(fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession) -> None:
    """A response_format=url answer serves its file for url_ttl service seconds, then 404."""
    _, body = await post_json(
        session,
        f"{fake_ttapi.url}/v1/images/generations",
        {"prompt": "a", "model": "dall-e-2", "response_format": "url"},
    )
    url = body["data"][0]["url"]
    _clock(fake_ttapi).advance(59.9)
    async with session.get(url) as resp:
        assert resp.status == 200
    _clock(fake_ttapi).advance(0.1)
    async with session.get(url) as resp:
        assert resp.status == 404


@pytest.mark.parametrize("fake_ttapi", [dict(JOBS, clock=ManualClock())], indirect=True)
async def test_failure_rate_changes_at_runtime(fake_ttapi: FakeTTAPI) -> None:
    """job_failure_rate set between submissions applies to the jobs submitted after it."""
    ok = fake_ttapi.create_job("before")
    fake_ttapi.job_failure_rate = 1.0
    failing = fake_ttapi.create_job("after")
    _clock(fake_ttapi).advance(30)
    assert fake_ttapi.job(ok).status == "SUCCESS"  # type: ignore[union-attr]
    assert fake_ttapi.job(failing).status == "FAILED"  # type: ignore[union-attr]


async def test_jobs_by_state_in_stats(fake_ttapi: FakeTTAPI) -> None:
    """stats().jobs counts jobs per state."""
    fake_ttapi.create_job("a")
    done = fake_ttapi.create_job("b")
    fake_ttapi.finish_job(done)
    assert fake_ttapi.stats().jobs == {
        "PENDING_QUEUE": 1,
        "ON_QUEUE": 0,
        "SUCCESS": 1,
        "FAILED": 0,
    }
