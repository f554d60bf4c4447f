"""The emulator's /_fake/* admin routes on their filters and refusals."""

from __future__ import annotations

import aiohttp
from fake_helpers import get_json, post_json

from ttapi_async.testing import FakeTTAPI

SUBMIT = "/openai/4o-image/generations"
FETCH = "/openai/4o-image/fetch"


async def test_the_request_log_filters_by_path_and_limits(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession, anon: aiohttp.ClientSession
) -> None:
    """/_fake/requests?path=...&limit=N keeps that path's last N records; limit=0 keeps none."""
    for prompt in ("one", "two"):
        await post_json(session, f"{fake_ttapi.url}{SUBMIT}", {"prompt": prompt})
    await post_json(session, f"{fake_ttapi.url}{FETCH}", {"jobId": "nope"})
    url = f"{fake_ttapi.url}/_fake/requests"
    _, records = await get_json(anon, url, params={"path": SUBMIT, "limit": "1"})
    assert [r["params"]["prompt"] for r in records] == ["two"]
    _, none = await get_json(anon, url, params={"limit": "0"})
    assert none == []


async def test_the_job_list_filters_by_status_and_limits(
    fake_ttapi: FakeTTAPI, anon: aiohttp.ClientSession
) -> None:
    """/_fake/jobs?status=FAILED&limit=1 lists one failed job; counts still cover all."""
    for prompt in ("a", "b", "c"):
        fake_ttapi.finish_job(fake_ttapi.create_job(prompt), "FAILED", "no")
    fake_ttapi.create_job("pending")
    params = {"status": "FAILED", "limit": "1"}
    status, body = await get_json(anon, f"{fake_ttapi.url}/_fake/jobs", params=params)
    assert status == 200 and len(body["jobs"]) == 1
    assert body["jobs"][0]["status"] == "FAILED" and body["counts"]["FAILED"] == 3


async def test_an_unknown_job_is_404_to_view_and_to_finish(
    fake_ttapi: FakeTTAPI, anon: aiohttp.ClientSession
) -> None:
    """GET and finish of a job id the fake never made answer 404."""
    base = f"{fake_ttapi.url}/_fake/jobs/nope"
    assert (await get_json(anon, base))[0] == 404
    assert (await post_json(anon, f"{base}/finish", {"status": "SUCCESS"}))[0] == 404


async def test_finish_with_a_bad_status_is_409(
    fake_ttapi: FakeTTAPI, anon: aiohttp.ClientSession
) -> None:
    """Finishing a job with a status other than SUCCESS or FAILED answers 409."""
    job_id = fake_ttapi.create_job("x")
    url = f"{fake_ttapi.url}/_fake/jobs/{job_id}/finish"
    status, _ = await post_json(anon, url, {"status": "ON_QUEUE"})
    assert status == 409


async def test_fault_rules_can_be_appended_and_bad_ones_are_400(
    fake_ttapi: FakeTTAPI, anon: aiohttp.ClientSession
) -> None:
    """POST /_fake/faults with append keeps earlier rules; an unknown kind answers 400."""
    url = f"{fake_ttapi.url}/_fake/faults"
    await post_json(anon, url, {"rules": [{"kind": "status", "path": "/a"}]})
    await post_json(anon, url, {"rules": [{"kind": "status", "path": "/b"}], "append": True})
    assert [rule.path for rule in fake_ttapi.faults_active] == ["/a", "/b"]
    status, _ = await post_json(anon, url, {"rules": [{"kind": "explode"}]})
    assert status == 400
