"""A server that goes quiet once its answer has started: the read-idle timeout.

The server here waits 30 s or more between bytes (or events); the idle timeouts are a few
tenths of a second, and the total timeout is left far above both, so only the idle timer
can end these calls. Nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import pytest
from _support import GENERATION_OK, GENERATIONS

from hostile.conftest import ClientFactory
from hostile.server import HostileServer, after, drip, raw, respond, sse_keepalive, stall
from ttapi_async import APITimeoutError, AsyncTTAPI, InvalidRequestError

FETCH = "/openai/4o-image/fetch"
IDLE = 0.2
QUIET = 30.0


async def test_a_dripping_answer_ends_in_an_idle_timeout(
    hostile: HostileServer, make_hostile_client: ClientFactory
) -> None:
    """An answer dripped a byte every 30 s raises APITimeoutError naming the idle timeout."""
    hostile.on(GENERATIONS, drip(GENERATION_OK, every=QUIET))
    client = make_hostile_client(idle_timeout=IDLE, timeout=300)
    with pytest.raises(APITimeoutError, match="idle timeout") as caught:
        await client.images.generate(prompt="a cat", model="dall-e-2")
    assert caught.value.possibly_submitted  # the answer had started: the work was done
    assert len(hostile.requests_to(GENERATIONS)) == 1  # a paid POST is not sent again


async def test_a_stalled_body_ends_in_an_idle_timeout(
    hostile: HostileServer, make_hostile_client: ClientFactory
) -> None:
    """A body that stops after its first bytes raises APITimeoutError."""
    hostile.on(FETCH, stall(b'{"jobId": "j", "sta'))
    client = make_hostile_client(idle_timeout=IDLE, timeout=300, max_retries=0)
    with pytest.raises(APITimeoutError, match="idle timeout"):
        await client.gpt4o.fetch("j")


async def test_the_per_call_idle_timeout_overrides_the_clients(
    hostile: HostileServer, make_hostile_client: ClientFactory
) -> None:
    """``idle_timeout=`` on a call applies to that call, the client having none."""
    hostile.on(GENERATIONS, drip(GENERATION_OK, every=QUIET))
    client = make_hostile_client(idle_timeout=None, timeout=300)
    with pytest.raises(APITimeoutError, match=r"nothing for 0\.2s"):
        await client.images.generate(prompt="a cat", model="dall-e-2", idle_timeout=IDLE)


async def test_keep_alives_alone_end_a_stream_in_an_idle_timeout(
    hostile: HostileServer, make_hostile_client: ClientFactory
) -> None:
    """An event stream sending only keep-alive comments raises APITimeoutError: they are
    bytes, but no event and no part of one."""
    hostile.on(GENERATIONS, sse_keepalive(every=0.02))
    client = make_hostile_client(idle_timeout=IDLE, timeout=300)
    with pytest.raises(APITimeoutError, match="idle timeout"):
        async with client.images.stream(prompt="a cat", model="gpt-image-1") as stream:
            async for _ in stream:
                pass


async def test_the_wait_for_the_answer_to_start_is_not_idle(
    hostile: HostileServer, make_hostile_client: ClientFactory
) -> None:
    """A server silent for longer than the idle timeout before answering still succeeds."""
    hostile.on(GENERATIONS, after(3 * IDLE, respond(200, body=GENERATION_OK)))
    client = make_hostile_client(idle_timeout=IDLE)
    result = await client.images.generate(prompt="a cat", model="dall-e-2")
    assert result.created == GENERATION_OK["created"]


BAD = [0, -1.0, float("inf"), float("nan"), True, "5"]


@pytest.mark.parametrize("bad", BAD)
def test_a_bad_client_idle_timeout_is_refused_at_construction(bad: object) -> None:
    """A bad ``AsyncTTAPI(idle_timeout=...)`` raises InvalidRequestError at once."""
    with pytest.raises(InvalidRequestError, match="idle_timeout"):
        AsyncTTAPI(api_key="k", idle_timeout=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", BAD)
async def test_a_bad_per_call_idle_timeout_sends_nothing(
    hostile: HostileServer, hostile_client: AsyncTTAPI, bad: object
) -> None:
    """``generate(idle_timeout=0)`` (or any bad value) raises before the paid POST goes out."""
    hostile.on(GENERATIONS, respond(200, body=GENERATION_OK))
    with pytest.raises(InvalidRequestError, match="idle_timeout"):
        await hostile_client.images.generate(
            prompt="a cat",
            model="dall-e-2",
            idle_timeout=bad,  # type: ignore[arg-type]
        )
    assert hostile.requests == []


async def test_a_slow_but_steady_answer_is_not_idle(
    hostile: HostileServer, make_hostile_client: ClientFactory
) -> None:
    """Bytes 0.02 s apart keep a 0.5 s idle timer from firing, however long the answer takes."""
    body = b'{"created": 1, "data": []}'  # 26 bytes: over 0.5 s in all
    hostile.on(GENERATIONS, drip(body, every=0.02))
    client = make_hostile_client(idle_timeout=0.5)
    result = await client.images.generate(prompt="a cat", model="dall-e-2")
    assert result.created == 1


async def test_no_idle_timeout_reads_answers_and_streams_as_before(
    hostile: HostileServer, make_hostile_client: ClientFactory
) -> None:
    """With ``idle_timeout=None`` answers and streams are read with no timer at all."""
    event = b'data: {"type": "image_generation.completed", "b64_json": "AAAA"}\n\n'
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    hostile.on(GENERATIONS, respond(200, body=GENERATION_OK))
    client = make_hostile_client(idle_timeout=None)
    assert (await client.images.generate(prompt="a cat", model="dall-e-2")).data
    hostile.on(GENERATIONS, raw(head + b"Content-Length: %d\r\n\r\n" % len(event) + event))
    async with client.images.stream(prompt="a cat", model="gpt-image-1") as stream:
        kinds = [e.type async for e in stream]
    assert kinds == ["image_generation.completed"]
