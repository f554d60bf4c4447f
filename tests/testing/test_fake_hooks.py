"""hookUrl callbacks: delivered with the fetch body, retried, refused off loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from fake_helpers import get_json, post_json

from ttapi_async.testing import Duration, FakeTTAPI, ManualClock, is_loopback_url


class Receiver:
    """Answer callbacks with the queued statuses (then 200) and keep their bodies."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.bodies: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(json.loads(await request.read()))
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    """Yield a local callback receiver and its URL."""
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield rec, str(server.make_url("/hook"))
    finally:
        await server.close()


def _hooks(**extra: Any) -> dict[str, Any]:
    return {
        "clock": ManualClock(),
        "job_duration": Duration.fixed(30),
        "hook_retries": 2,
        "hook_backoff": 5.0,
        **extra,
    }


@pytest.mark.parametrize("fake_ttapi", [_hooks()], indirect=True)
async def test_hook_delivered_with_fetch_body(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession, receiver: tuple[Receiver, str]
) -> None:
    """When a job ends, hookUrl receives exactly the body that fetch answers."""
    rec, url = receiver
    _, answer = await post_json(
        session, f"{fake_ttapi.url}/openai/gpt/generations", {"prompt": "cb", "hookUrl": url}
    )
    job_id = answer["data"]["job_id"]
    await fake_ttapi.drain_hooks()
    assert rec.bodies == []  # not before the job ends
    fake_ttapi.clock.advance(30)  # type: ignore[attr-defined]
    await fake_ttapi.drain_hooks()
    _, fetched = await get_json(
        session, f"{fake_ttapi.url}/openai/gpt/fetch", params={"jobId": job_id}
    )
    assert rec.bodies == [fetched]
    assert fetched["status"] == "SUCCESS"
    assert [d.outcome for d in fake_ttapi.hook_deliveries] == ["delivered"]


@pytest.mark.parametrize("fake_ttapi", [_hooks()], indirect=True)
async def test_hook_retried_after_non_2xx(
    fake_ttapi: FakeTTAPI, receiver: tuple[Receiver, str]
) -> None:
    """A callback answered 500 is retried after the backoff, then delivered."""
    rec, url = receiver
    rec.statuses = [500, 503]
    fake_ttapi.create_job("retry", hook_url=url)
    clock = fake_ttapi.clock
    assert isinstance(clock, ManualClock)
    clock.advance(30)
    await fake_ttapi.drain_hooks()
    assert len(rec.bodies) == 1
    clock.advance(5)  # first backoff
    await fake_ttapi.drain_hooks()
    assert len(rec.bodies) == 2
    clock.advance(10)  # doubled
    await fake_ttapi.drain_hooks()
    assert len(rec.bodies) == 3
    outcomes = [(d.outcome, d.status) for d in fake_ttapi.hook_deliveries]
    assert outcomes == [("retrying", 500), ("retrying", 503), ("delivered", 200)]


@pytest.mark.parametrize("fake_ttapi", [_hooks(hook_retries=1, hook_backoff=0.0)], indirect=True)
async def test_hook_gives_up_after_retries(
    fake_ttapi: FakeTTAPI, receiver: tuple[Receiver, str]
) -> None:
    """A callback that keeps failing is tried 1 + hook_retries times, then given up."""
    rec, url = receiver
    rec.statuses = [500, 500, 500]
    job_id = fake_ttapi.create_job("never", hook_url=url)
    fake_ttapi.finish_job(job_id, status="FAILED")
    await fake_ttapi.drain_hooks()
    await fake_ttapi.drain_hooks()
    assert len(rec.bodies) == 2
    assert rec.bodies[0]["status"] == "FAILED"
    assert fake_ttapi.stats().hooks == {"retrying": 1, "gave_up": 1}


@pytest.mark.parametrize("fake_ttapi", [_hooks(hook_retries=1, hook_backoff=0.0)], indirect=True)
async def test_hook_connection_error_is_retried(fake_ttapi: FakeTTAPI) -> None:
    """A callback to a closed port counts as a failure with its error recorded."""
    fake_ttapi.create_job("closed", hook_url="http://127.0.0.1:9/hook")
    fake_ttapi.clock.advance(30)  # type: ignore[attr-defined]
    await fake_ttapi.drain_hooks()
    await fake_ttapi.drain_hooks()
    deliveries = fake_ttapi.hook_deliveries
    assert [d.outcome for d in deliveries] == ["retrying", "gave_up"]
    assert deliveries[0].status is None and deliveries[0].error


@pytest.mark.parametrize("fake_ttapi", [_hooks()], indirect=True)
async def test_hook_to_non_loopback_is_refused(fake_ttapi: FakeTTAPI) -> None:
    """A hook aimed off loopback is recorded as refused and never sent."""
    fake_ttapi.create_job("outside", hook_url="https://webhook-test.com/b129b43b")
    fake_ttapi.clock.advance(30)  # type: ignore[attr-defined]
    await fake_ttapi.drain_hooks()
    (delivery,) = fake_ttapi.hook_deliveries
    assert (delivery.outcome, delivery.status) == ("refused", None)


@pytest.mark.parametrize("fake_ttapi", [_hooks()], indirect=True)
async def test_finish_job_sends_one_hook(
    fake_ttapi: FakeTTAPI, receiver: tuple[Receiver, str]
) -> None:
    """A job settled early by finish_job gets one callback, not a second at its natural end."""
    rec, url = receiver
    job_id = fake_ttapi.create_job("early", hook_url=url)
    fake_ttapi.finish_job(job_id)
    await fake_ttapi.drain_hooks()
    fake_ttapi.clock.advance(60)  # type: ignore[attr-defined]
    await fake_ttapi.drain_hooks()
    assert [b["jobId"] for b in rec.bodies] == [job_id]


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("http://127.0.0.1:8000/h", True),
        ("http://127.8.9.10/h", True),
        ("http://localhost/h", True),
        ("http://[::1]:80/h", True),
        ("http://10.0.0.1/h", False),
        ("https://example.com/h", False),
        ("ftp://127.0.0.1/h", False),
        ("http://127.0.0.1.example.com/h", False),
    ],
)
def test_is_loopback_url(url: str, ok: bool) -> None:
    """Only 127.0.0.0/8, ::1 and localhost over http(s) count as loopback."""
    assert is_loopback_url(url) is ok


@pytest.mark.parametrize("fake_ttapi", [_hooks(hook_backoff=0.0)], indirect=True)
async def test_callbacks_delivered_are_counted_per_job(
    fake_ttapi: FakeTTAPI,
    receiver: tuple[Receiver, str],
    session: aiohttp.ClientSession,
) -> None:
    """stats(), /_fake/stats and the job's view count the callbacks delivered per job."""
    rec, url = receiver
    rec.statuses = [500]  # the first attempt for the first job fails, then is retried
    first = fake_ttapi.create_job("one", hook_url=url)
    second = fake_ttapi.create_job("two", hook_url=url)
    quiet = fake_ttapi.create_job("none")
    assert isinstance(fake_ttapi.clock, ManualClock)
    fake_ttapi.clock.advance(30)
    for _ in range(3):
        await fake_ttapi.drain_hooks()
    assert fake_ttapi.stats().hooks_delivered == {first: 1, second: 1}
    _, stats = await get_json(session, f"{fake_ttapi.url}/_fake/stats")
    assert stats["hooks_delivered"] == {first: 1, second: 1}
    _, view = await get_json(session, f"{fake_ttapi.url}/_fake/jobs/{first}")
    assert view["hooks_delivered"] == 1
    assert fake_ttapi.job(quiet).hooks_delivered == 0  # type: ignore[union-attr]
