"""WebhookReceiver: callbacks resolve jobs early; forged ones change nothing."""

from __future__ import annotations

import asyncio
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


# --- hostile callers (issue 8 items 10 and 11) -------------------------------------------------


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


async def test_callback_in_two_pieces_is_read_whole(
    client: AsyncTTAPI, fake_ttapi: FakeTTAPI
) -> None:
    """A callback body that arrives in two TCP writes is read whole by the aiohttp handler."""
    receiver = WebhookReceiver(client, public_url="http://127.0.0.1/ttapi-hook")
    entered = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        entered.set()
        return await receiver.aiohttp_handler(request)

    app = web.Application()
    app.router.add_post("/ttapi-hook", handler)
    runner, port = await _serve(app)
    try:
        job = await client.gpt4o.submit(prompt="x")
        body = status_body(job.id)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = (
            f"POST /ttapi-hook?token={receiver.token} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode() + body[:10])
        await writer.drain()
        await asyncio.wait_for(entered.wait(), 10)
        for _ in range(10):  # let the handler read what has arrived so far
            await asyncio.sleep(0)
        writer.write(body[10:])
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        await writer.wait_closed()
    finally:
        await runner.cleanup()
    assert status_line.split()[1] == b"200"
    assert receiver.accepted == 1 and receiver.rejected == 0


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        await asyncio.sleep(0)
        yield part


async def test_handle_reads_a_body_in_pieces(client: AsyncTTAPI) -> None:
    """handle() given the body's chunks (Starlette's request.stream()) reads them all."""
    receiver = WebhookReceiver(client, public_url="http://127.0.0.1/ttapi-hook")
    job = await client.gpt4o.submit(prompt="x")
    body = status_body(job.id)
    code, _ = await receiver.handle({"token": receiver.token}, _chunks(body[:7], body[7:]))
    assert code == 200


async def test_handle_stops_reading_past_the_cap(client: AsyncTTAPI) -> None:
    """handle() stops reading a chunked body once it is over max_body and answers 413."""
    receiver = WebhookReceiver(client, public_url="http://127.0.0.1/ttapi-hook", max_body=100)
    read = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal read
        for _ in range(1000):
            read += 1
            yield b"x" * 60

    code, _ = await receiver.handle({"token": receiver.token}, endless())
    assert code == 413 and read == 2


@pytest.mark.parametrize("token", ["\udc80", ["x" * 43], 5, None, b"bytes"])
async def test_odd_tokens_are_forbidden(client: AsyncTTAPI, token: object) -> None:
    """A token that is a lone surrogate, a list or not text answers 403 instead of raising."""
    receiver = WebhookReceiver(client, public_url="http://127.0.0.1/ttapi-hook")
    code, _ = await receiver.handle({"token": token}, status_body("x"))
    assert code == 403


@pytest.mark.parametrize(
    "body", [b"[" * 100_000, b"null", b"[]", b'"text"', b"\xff\xfe", b'{"jobId": 5}']
)
async def test_odd_bodies_are_bad_requests(client: AsyncTTAPI, body: bytes) -> None:
    """Deeply nested, non-object or non-UTF-8 bodies answer 400 instead of raising."""
    receiver = WebhookReceiver(client, public_url="http://127.0.0.1/ttapi-hook", max_body=200_000)
    code, _ = await receiver.handle({"token": receiver.token}, body)
    assert code == 400


async def _replay(receiver: WebhookReceiver, body: bytes, times: int) -> list[int]:
    async with aiohttp.ClientSession() as session:

        async def once() -> int:
            async with session.post(receiver.hook_url, data=body) as resp:
                return resp.status

        return list(await asyncio.gather(*(once() for _ in range(times))))


async def test_replays_cause_one_confirming_fetch(
    client: AsyncTTAPI, fake_ttapi: FakeTTAPI, hook_server: tuple[WebhookReceiver, str]
) -> None:
    """300 replays of a valid callback make one fetch, and none once the job has settled."""
    receiver, _ = hook_server
    job = await client.gpt4o.submit(prompt="x")
    fake_ttapi.finish_job(job.id)
    assert set(await _replay(receiver, status_body(job.id), 300)) == {200}
    await client.watcher.idle()
    assert job.done() and fetches(fake_ttapi) == 1
    # Once settled, its record says so: replays are answered 200 and cause nothing.
    assert set(await _replay(receiver, status_body(job.id), 300)) == {200}
    assert fetches(fake_ttapi) == 1


async def test_replays_for_a_running_job_wait_for_the_schedule(
    client: AsyncTTAPI, fake_ttapi: FakeTTAPI, hook_server: tuple[WebhookReceiver, str]
) -> None:
    """Replays of a callback for a job still running make one fetch, however many arrive."""
    receiver, _ = hook_server
    job = await client.gpt4o.submit(prompt="x")
    for _ in range(3):
        assert set(await _replay(receiver, status_body(job.id), 100)) == {200}
        await client.watcher.idle()
    assert not job.done() and fetches(fake_ttapi) == 1
