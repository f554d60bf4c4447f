"""API calls follow no redirect that could send the key elsewhere or pay twice (issue 8, item 1)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from _support import API_KEY, GENERATION_OK, GENERATIONS

from hostile.server import HostileServer, redirect, respond
from ttapi_async import AsyncTTAPI, RedirectError
from ttapi_async._redirects import MAX_REDIRECTS, redirect_target

SUBMIT = "/openai/4o-image/generations"
FETCH = "/openai/4o-image/fetch"
SUBMITTED = {"status": "SUCCESS", "message": "success", "data": {"jobId": "job-1"}}
QUEUED = {"status": "ON_QUEUE", "jobId": "job-1", "message": "queued", "data": None}
# A path that must never appear in an error: it could carry a token.
SECRET_PATH = "/steal/t0ken-in-path?sig=abc"


@pytest.fixture
async def elsewhere() -> AsyncIterator[HostileServer]:
    """Yield a second server on another port: another origin, which must receive nothing."""
    server = HostileServer()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


async def _generate(c: AsyncTTAPI) -> Any:
    return await c.images.generate(prompt="a cat", model="gpt-image-1")


async def _submit(c: AsyncTTAPI) -> Any:
    return await c.gpt4o.submit(prompt="a fox")


async def _stream(c: AsyncTTAPI) -> Any:
    return [e async for e in c.images.stream(prompt="a cat", model="gpt-image-1")]


PAID: dict[str, tuple[str, Callable[[AsyncTTAPI], Awaitable[Any]]]] = {
    "images.generate": (GENERATIONS, _generate),
    "gpt4o.submit": (SUBMIT, _submit),
    "images.stream": (GENERATIONS, _stream),
}
STATUSES = [301, 302, 303, 307, 308]


def _answer_everything(server: HostileServer) -> None:
    for path in (GENERATIONS, SUBMIT, "/steal/t0ken-in-path"):
        server.on(path, respond(200, body=GENERATION_OK if path == GENERATIONS else SUBMITTED))


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("call", list(PAID))
async def test_paid_post_is_not_sent_to_another_origin(
    hostile: HostileServer,
    elsewhere: HostileServer,
    hostile_client: AsyncTTAPI,
    call: str,
    status: int,
) -> None:
    """A paid POST redirected to another port raises RedirectError; the key goes nowhere."""
    path, send = PAID[call]
    hostile.on(path, redirect(status, elsewhere.url + SECRET_PATH))
    _answer_everything(elsewhere)
    with pytest.raises(RedirectError) as info:
        await send(hostile_client)
    assert elsewhere.requests == []
    assert len(hostile.requests) == 1
    assert info.value.location == elsewhere.url
    assert info.value.status_code == status
    assert elsewhere.url in str(info.value) and "t0ken" not in str(info.value)


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("call", list(PAID))
async def test_paid_post_is_never_sent_twice_on_a_same_origin_redirect(
    hostile: HostileServer, hostile_client: AsyncTTAPI, call: str, status: int
) -> None:
    """A same-origin redirect of a paid POST is not followed: one request, no GET, no re-POST."""
    path, send = PAID[call]
    hostile.on(path, redirect(status, "/steal/t0ken-in-path"))
    hostile.on("/steal/t0ken-in-path", respond(200, body=SUBMITTED))
    with pytest.raises(RedirectError, match="never sent twice") as info:
        await send(hostile_client)
    assert [(r.method, r.path) for r in hostile.requests] == [("POST", path)]
    assert info.value.location == hostile.url


async def test_fetch_follows_a_same_origin_307_with_its_body(
    hostile: HostileServer, hostile_client: AsyncTTAPI
) -> None:
    """A job fetch (repeatable) follows a same-origin 307: same method, body and key."""
    hostile.on(FETCH, redirect(307, "/openai/4o-image/fetch-v2"))
    hostile.on("/openai/4o-image/fetch-v2", respond(200, body=QUEUED))
    status = await hostile_client.gpt4o.fetch("job-1")
    assert status.status == "ON_QUEUE"
    followed = hostile.requests_to("/openai/4o-image/fetch-v2")
    assert [r.method for r in followed] == ["POST"]
    assert followed[0].json() == {"jobId": "job-1"}
    assert followed[0].headers["TT-API-KEY"] == API_KEY


@pytest.mark.parametrize("status", [307, 308])
async def test_fetch_is_not_sent_to_another_origin(
    hostile: HostileServer, elsewhere: HostileServer, hostile_client: AsyncTTAPI, status: int
) -> None:
    """Even a repeatable fetch never follows a redirect to another origin (nor retries it)."""
    hostile.on(FETCH, redirect(status, elsewhere.url + FETCH))
    elsewhere.on(FETCH, respond(200, body=QUEUED))
    with pytest.raises(RedirectError, match="another origin"):
        await hostile_client.gpt4o.fetch("job-1")
    assert elsewhere.requests == []
    assert len(hostile.requests) == 1


@pytest.mark.parametrize("status", [301, 302, 303])
async def test_fetch_is_not_turned_into_a_get(
    hostile: HostileServer, hostile_client: AsyncTTAPI, status: int
) -> None:
    """A 301/302/303 would turn the fetch POST into a GET: refused, nothing else sent."""
    hostile.on(FETCH, redirect(status, "/openai/4o-image/fetch-v2"))
    hostile.on("/openai/4o-image/fetch-v2", respond(200, body=QUEUED))
    with pytest.raises(RedirectError, match="into GET"):
        await hostile_client.gpt4o.fetch("job-1")
    assert [(r.method, r.path) for r in hostile.requests] == [("POST", FETCH)]


async def test_redirect_loop_stops_after_the_limit(
    hostile: HostileServer, hostile_client: AsyncTTAPI
) -> None:
    """A fetch that redirects to itself is followed MAX_REDIRECTS times, then refused."""
    hostile.on(FETCH, redirect(307, FETCH))
    with pytest.raises(RedirectError, match="more than"):
        await hostile_client.gpt4o.fetch("job-1", max_retries=0)
    assert len(hostile.requests) == MAX_REDIRECTS + 1


async def test_redirect_without_location_is_a_typed_error(
    hostile: HostileServer, hostile_client: AsyncTTAPI
) -> None:
    """A 3xx with no Location raises RedirectError with no origin, never a KeyError."""
    hostile.on(GENERATIONS, respond(302))
    with pytest.raises(RedirectError, match="without a Location") as info:
        await _generate(hostile_client)
    assert info.value.location is None


@pytest.mark.parametrize(
    ("url", "location", "origin"),
    [
        ("https://api.ttapi.io/x", "http://api.ttapi.io/x", "http://api.ttapi.io"),
        ("https://api.ttapi.io/x", "https://api.ttapi.io:8443/x", "https://api.ttapi.io:8443"),
        ("https://api.ttapi.io/x", "//evil.example/x", "https://evil.example"),
    ],
    ids=["https-to-http", "other-port", "scheme-relative-host"],
)
def test_downgrade_and_other_hosts_are_other_origins(url: str, location: str, origin: str) -> None:
    """https -> http, another port or host is another origin, even for a repeatable 307."""
    with pytest.raises(RedirectError, match="another origin") as info:
        redirect_target("POST", url, 307, {"Location": location}, idempotent=True, hops=0)
    assert info.value.location == origin
