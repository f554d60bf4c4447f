"""WebhookReceiver: callbacks resolve jobs early; forged ones change nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import tenacity
from _fake_support import client as client
from _fake_support import clock as clock
from _fake_support import requests_to
from aiohttp import web

from ttapi_async import AsyncTTAPI, InvalidRequestError, JobWatcher, PollSchedule
from ttapi_async.testing import Duration, FakeTTAPI, ManualClock
from ttapi_async.webhooks import WebhookReceiver

pytestmark = pytest.mark.fake_ttapi(clock=ManualClock(), job_duration=Duration.fixed(20))

FETCH_4O = "POST /openai/4o-image/fetch"


def fetches(fake: FakeTTAPI) -> int:
    return requests_to(fake, FETCH_4O)


@pytest.fixture
async def hook_server(client: AsyncTTAPI) -> AsyncIterator[tuple[WebhookReceiver, str]]:
    """Serve a receiver for the client on a loopback port; yield it and its base URL."""
    # The port is known only once bound, and routes freeze then: bind a throwaway
    # socket first to learn a free port.
    probe = web.AppRunner(web.Application(), access_log=None)
    await probe.setup()
    await web.TCPSite(probe, "127.0.0.1", 0).start()
    port = probe.addresses[0][1]
    await probe.cleanup()
    base = f"http://127.0.0.1:{port}"
    receiver = WebhookReceiver(client, public_url=f"{base}/ttapi-hook")
    app = web.Application()
    receiver.add_routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield receiver, base
    finally:
        await runner.cleanup()


def status_body(job_id: str, status: str = "SUCCESS") -> bytes:
    data = {"imageUrl": "https://evil.example/x.png", "quota": "2"}
    return json.dumps({"status": status, "jobId": job_id, "data": data}).encode()


def test_hook_url_carries_a_fresh_token() -> None:
    """Each receiver draws its own long token and puts it in the hook URL's query."""
    watcher = JobWatcher(fetch=None)
    first = WebhookReceiver(watcher, public_url="https://example.com/hook?x=1")
    second = WebhookReceiver(JobWatcher(), public_url="https://example.com/hook")
    query = parse_qs(urlsplit(first.hook_url).query)
    assert query == {"x": ["1"], "token": [first.token]}
    assert len(first.token) >= 40 and first.token != second.token
    assert first.token not in repr(first)
    assert watcher.hook_url() == first.hook_url


async def test_hook_true_without_receiver_fails_first(
    client: AsyncTTAPI, fake_ttapi: FakeTTAPI
) -> None:
    """submit(hook=True) without a receiver raises before anything is sent."""
    with pytest.raises(InvalidRequestError, match="WebhookReceiver"):
        await client.gpt4o.submit(prompt="x", hook=True)
    assert fake_ttapi.stats().requests == 0


async def test_callback_resolves_job_early(
    client: AsyncTTAPI,
    fake_ttapi: FakeTTAPI,
    clock: ManualClock,
    hook_server: tuple[WebhookReceiver, str],
) -> None:
    """The service's callback makes the watcher fetch at once, long before its next poll."""
    receiver, _ = hook_server
    schedule = PollSchedule(first_delay=8.0, wait=tenacity.wait_fixed(60.0), learn=False)
    client.watcher.configure(schedule=schedule)
    job = await client.gpt4o.submit(prompt="x", hook=True)
    view = fake_ttapi.job(job.id)
    assert view is not None and view.hook_url == receiver.hook_url
    await client.watcher.idle()
    clock.advance(8)  # first poll: still running; the next one is due at 68 s
    await client.watcher.idle()
    clock.advance(12.5)  # the job ends at 20 s and the service calls back
    await fake_ttapi.drain_hooks()
    await client.watcher.idle()
    assert job.done() and (await job).job_id == job.id
    assert receiver.accepted == 1
    assert fetches(fake_ttapi) == 2


async def test_bad_token_is_refused(
    client: AsyncTTAPI, fake_ttapi: FakeTTAPI, hook_server: tuple[WebhookReceiver, str]
) -> None:
    """A callback with a wrong or missing token gets 403 and causes no fetch."""
    receiver, base = hook_server
    job = await client.gpt4o.submit(prompt="x", hook=True)
    async with aiohttp.ClientSession() as session:
        for url in (f"{base}/ttapi-hook?token=guess", f"{base}/ttapi-hook"):
            async with session.post(url, data=status_body(job.id)) as resp:
                assert resp.status == 403
    await client.watcher.idle()
    assert not job.done() and fetches(fake_ttapi) == 0
    assert receiver.rejected == 2


async def test_unknown_job_is_refused(
    client: AsyncTTAPI, hook_server: tuple[WebhookReceiver, str]
) -> None:
    """A callback naming a job this process does not watch gets 404."""
    receiver, _ = hook_server
    code, _ = await receiver.handle({"token": receiver.token}, status_body("not-a-job"))
    assert code == 404


async def test_forged_success_changes_nothing(
    client: AsyncTTAPI, fake_ttapi: FakeTTAPI, hook_server: tuple[WebhookReceiver, str]
) -> None:
    """A body claiming SUCCESS for a running job only triggers a fetch, which says ON_QUEUE."""
    receiver, _ = hook_server
    job = await client.gpt4o.submit(prompt="x", hook=True)
    code, _ = await receiver.handle({"token": receiver.token}, status_body(job.id))
    assert code == 200
    await client.watcher.idle()
    assert not job.done()
    assert job.status is not None and job.status.status in ("PENDING_QUEUE", "ON_QUEUE")
    assert fetches(fake_ttapi) == 1


async def test_trusted_body_settles_without_fetch(
    client: AsyncTTAPI, fake_ttapi: FakeTTAPI, hook_server: tuple[WebhookReceiver, str]
) -> None:
    """With trust_body=True a terminal body settles the job with no fetch (the documented risk)."""
    receiver, _ = hook_server
    receiver.trust_body = True
    job = await client.gpt4o.submit(prompt="x", hook=True)
    await receiver.handle({"token": receiver.token}, status_body(job.id))
    assert (await job).image_url == "https://evil.example/x.png"
    assert fetches(fake_ttapi) == 0


async def test_oversized_and_garbled_bodies(
    client: AsyncTTAPI, hook_server: tuple[WebhookReceiver, str]
) -> None:
    """A body over the cap gets 413 over HTTP; a body that is no job status gets 400."""
    receiver, _ = hook_server
    async with aiohttp.ClientSession() as session:
        big = b"{" + b" " * receiver.max_body + b"}"
        async with session.post(receiver.hook_url, data=big) as resp:
            assert resp.status == 413
    code, _ = await receiver.handle({"token": receiver.token}, b"not json")
    assert code == 400
    code, _ = await receiver.handle({"token": receiver.token}, b'{"jobId": "x"}')
    assert code == 400
