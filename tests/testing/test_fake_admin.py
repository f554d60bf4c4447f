"""Introspection in process and over the admin HTTP paths."""

from __future__ import annotations

import aiohttp
import pytest
from fake_helpers import get_json, post_json

from ttapi_async.testing import Duration, FakeTTAPI, ManualClock

SUBMIT = "/openai/4o-image/generations"


async def test_requests_log_has_no_key(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """The request log keeps method, path, params and status, and never the key."""
    await post_json(session, f"{fake_ttapi.url}{SUBMIT}", {"prompt": "logged"})
    (record,) = fake_ttapi.requests
    assert (record.method, record.path, record.status) == ("POST", SUBMIT, 200)
    assert record.params == {"prompt": "logged"}
    assert fake_ttapi.api_key not in repr(fake_ttapi.requests)


async def test_stats_counts_per_endpoint_and_prompt(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession, anon: aiohttp.ClientSession
) -> None:
    """stats() counts requests per endpoint and status, and submissions per prompt."""
    await post_json(session, f"{fake_ttapi.url}{SUBMIT}", {"prompt": "twice"})
    await post_json(session, f"{fake_ttapi.url}{SUBMIT}", {"prompt": "twice"})
    await post_json(anon, f"{fake_ttapi.url}{SUBMIT}", {"prompt": "no key"})
    stats = fake_ttapi.stats()
    assert stats.requests == 3
    assert stats.by_endpoint == {f"POST {SUBMIT}": {200: 2, 401: 1}}
    assert stats.submissions_by_prompt == {"twice": 2}


async def test_admin_stats_over_http(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession, anon: aiohttp.ClientSession
) -> None:
    """GET /_fake/stats answers the counters as JSON, status codes as strings."""
    await post_json(session, f"{fake_ttapi.url}{SUBMIT}", {"prompt": "x"})
    status, body = await get_json(anon, f"{fake_ttapi.url}/_fake/stats")
    assert status == 200
    assert body["by_endpoint"] == {f"POST {SUBMIT}": {"200": 1}}
    assert body["jobs"]["PENDING_QUEUE"] + body["jobs"]["ON_QUEUE"] == 1


async def test_admin_requests_over_http(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession, anon: aiohttp.ClientSession
) -> None:
    """GET /_fake/requests lists records, filtered by path and limited."""
    await post_json(session, f"{fake_ttapi.url}{SUBMIT}", {"prompt": "a"})
    await post_json(session, f"{fake_ttapi.url}{SUBMIT}", {"prompt": "b"})
    await get_json(session, f"{fake_ttapi.url}/openai/4o-image/fetch?jobId=x")
    _, body = await get_json(anon, f"{fake_ttapi.url}/_fake/requests?path={SUBMIT}&limit=1")
    assert [r["params"]["prompt"] for r in body] == ["b"]


@pytest.mark.fake_ttapi(clock=ManualClock(), job_duration=Duration.fixed(10))
async def test_admin_job_and_finish_over_http(
    fake_ttapi: FakeTTAPI, anon: aiohttp.ClientSession
) -> None:
    """GET /_fake/jobs/{id} shows a job; POST .../finish settles it; unknown ids are 404."""
    job_id = fake_ttapi.create_job("admin")
    status, body = await get_json(anon, f"{fake_ttapi.url}/_fake/jobs/{job_id}")
    assert (status, body["status"], body["prompt"]) == (200, "PENDING_QUEUE", "admin")
    status, body = await post_json(
        anon, f"{fake_ttapi.url}/_fake/jobs/{job_id}/finish", {"status": "FAILED"}
    )
    assert (status, body["status"], body["quota"]) == (200, "FAILED", "0")
    status, _ = await get_json(anon, f"{fake_ttapi.url}/_fake/jobs/nope")
    assert status == 404


@pytest.mark.fake_ttapi(clock=ManualClock(), job_duration=Duration.fixed(10))
async def test_admin_jobs_listing(fake_ttapi: FakeTTAPI, anon: aiohttp.ClientSession) -> None:
    """GET /_fake/jobs answers counts by state and the job views, filtered by status."""
    fake_ttapi.create_job("one")
    done = fake_ttapi.create_job("two")
    fake_ttapi.finish_job(done)
    _, body = await get_json(anon, f"{fake_ttapi.url}/_fake/jobs?status=SUCCESS")
    assert body["counts"]["SUCCESS"] == 1 and body["counts"]["PENDING_QUEUE"] == 1
    assert [j["id"] for j in body["jobs"]] == [done]


@pytest.mark.fake_ttapi(clock=ManualClock(), job_duration=Duration.fixed(10))
async def test_admin_clock_advance(fake_ttapi: FakeTTAPI, anon: aiohttp.ClientSession) -> None:
    """POST /_fake/clock/advance moves a ManualClock, so another process can drive jobs."""
    job_id = fake_ttapi.create_job("tick")
    status, body = await post_json(anon, f"{fake_ttapi.url}/_fake/clock/advance", {"seconds": 10})
    assert (status, body["now"]) == (200, 10.0)
    assert fake_ttapi.job(job_id).status == "SUCCESS"  # type: ignore[union-attr]


async def test_admin_clock_advance_needs_manual_clock(
    fake_ttapi: FakeTTAPI, anon: aiohttp.ClientSession
) -> None:
    """Advancing the real clock over HTTP is refused with 409."""
    status, _ = await post_json(anon, f"{fake_ttapi.url}/_fake/clock/advance", {"seconds": 1})
    assert status == 409


async def test_admin_faults_over_http(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession, anon: aiohttp.ClientSession
) -> None:
    """POST /_fake/faults installs fault rules given as JSON."""
    rules = {"rules": [{"kind": "status", "path": SUBMIT, "status": [503], "times": 1}]}
    status, body = await post_json(anon, f"{fake_ttapi.url}/_fake/faults", rules)
    assert status == 200 and body[0]["status"] == [503]
    assert (await post_json(session, f"{fake_ttapi.url}{SUBMIT}", {"prompt": "x"}))[0] == 503
    bad, _ = await post_json(anon, f"{fake_ttapi.url}/_fake/faults", {"rules": [{"kind": "?"}]})
    assert bad == 400


async def test_admin_reset_over_http(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession, anon: aiohttp.ClientSession
) -> None:
    """POST /_fake/reset forgets jobs, records and counters."""
    await post_json(session, f"{fake_ttapi.url}{SUBMIT}", {"prompt": "x"})
    status, _ = await post_json(anon, f"{fake_ttapi.url}/_fake/reset", {})
    assert status == 200
    assert (fake_ttapi.jobs, fake_ttapi.requests, fake_ttapi.stats().requests) == ([], [], 0)


async def test_admin_paths_are_not_logged(
    fake_ttapi: FakeTTAPI, anon: aiohttp.ClientSession
) -> None:
    """Admin requests do not show up in the request log or the counters."""
    await get_json(anon, f"{fake_ttapi.url}/_fake/stats")
    await get_json(anon, f"{fake_ttapi.url}/_fake/jobs")
    assert fake_ttapi.stats().requests == 0


async def test_request_log_is_bounded() -> None:
    """The request log keeps only request_log_limit records while counters keep counting."""
    async with FakeTTAPI(request_log_limit=2) as fake:
        async with aiohttp.ClientSession(headers={"TT-API-KEY": fake.api_key}) as s:
            for prompt in ("a", "b", "c"):
                await post_json(s, f"{fake.url}{SUBMIT}", {"prompt": prompt})
        assert [r.params["prompt"] for r in fake.requests] == ["b", "c"]
        assert fake.stats().requests == 3


async def test_url_before_start_raises() -> None:
    """fake.url before start() is a clear RuntimeError."""
    with pytest.raises(RuntimeError, match="not started"):
        _ = FakeTTAPI().url


async def test_mounted_app_serves() -> None:
    """fake.app can be served by a runner of one's own; its URLs follow the request's host."""
    from aiohttp import web

    fake = FakeTTAPI()
    runner = web.AppRunner(fake.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession(headers={"TT-API-KEY": fake.api_key}) as s:
            _, body = await post_json(
                s,
                f"http://127.0.0.1:{port}/v1/images/generations",
                {"prompt": "m", "model": "dall-e-2"},
            )
        assert body["data"][0]["url"].startswith(f"http://127.0.0.1:{port}/_fake/files/")
    finally:
        await runner.cleanup()
