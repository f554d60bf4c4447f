"""Server-sent events: the decoder under any chunking, and ``images.stream`` end to end."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest
from _support import (
    EDITS,
    GENERATIONS,
    PNG,
    PNG_B64,
    LocalServer,
    json_answer,
)
from _support import client as client
from _support import server as server
from _support import sleeps as sleeps
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from ttapi_async import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    AsyncTTAPI,
    BadRequestError,
    ImageStreamEvent,
    RateLimitError,
)
from ttapi_async._sse import ServerSentEvent, iter_sse


async def _chunks(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _decode(parts: Iterable[bytes]) -> list[ServerSentEvent]:
    return [e async for e in iter_sse(_chunks(parts))]


def decode(*parts: bytes) -> list[ServerSentEvent]:
    return asyncio.run(_decode(parts))


# --- the decoder ---------------------------------------------------------------------------


def test_decoder_reads_event_and_data() -> None:
    """An ``event:`` and a ``data:`` line, then a blank line, make one event."""
    assert decode(b"event: a\ndata: {}\n\n") == [ServerSentEvent("a", "{}")]


def test_decoder_ignores_comments() -> None:
    """Lines starting with ``:`` (keep-alives) are ignored."""
    assert decode(b": ping\n\n: more\ndata: x\n\n") == [ServerSentEvent(None, "x")]


def test_decoder_reads_id_and_retry() -> None:
    """``id:`` and ``retry:`` lines are tolerated and kept on the event."""
    assert decode(b"id: 7\nretry: 1500\ndata: x\n\n") == [ServerSentEvent(None, "x", "7", 1500)]


def test_decoder_ignores_a_non_numeric_retry() -> None:
    """A ``retry:`` that is not a number is dropped."""
    assert decode(b"retry: soon\ndata: x\n\n") == [ServerSentEvent(None, "x")]


def test_decoder_joins_multi_line_data() -> None:
    """Several ``data:`` lines join with newlines."""
    assert decode(b"data: a\ndata: b\n\n")[0].data == "a\nb"


def test_decoder_accepts_crlf() -> None:
    """CRLF line ends work as LF."""
    assert decode(b"event: a\r\ndata: x\r\n\r\n") == [ServerSentEvent("a", "x")]


def test_decoder_skips_events_without_data() -> None:
    """An event with no ``data:`` line is not dispatched (the spec)."""
    assert decode(b"event: ping\n\ndata: x\n\n") == [ServerSentEvent(None, "x")]


def test_decoder_flushes_the_last_event_at_eof() -> None:
    """An event not followed by a blank line is still delivered at the end of the stream."""
    assert decode(b"data: x") == [ServerSentEvent(None, "x")]


def test_decoder_keeps_a_colon_less_field_name() -> None:
    """``data`` without a colon is a data line with an empty value."""
    assert decode(b"data\ndata: x\n\n")[0].data == "\nx"


def test_decoder_replaces_invalid_utf8() -> None:
    """Bytes that are not UTF-8 are replaced, never raised as UnicodeDecodeError."""
    assert decode(b"data: \xff\n\n")[0].data == "\ufffd"


STREAM = (
    b": keep-alive\n\n"
    b"retry: 3000\n"
    b"id: 1\n"
    b"event: image_generation.partial_image\n"
    b'data: {"type": "image_generation.partial_image", "partial_image_index": 0}\n\n'
    b"event: image_generation.completed\r\n"
    b'data: {"type": "image_generation.completed",\r\n'
    b'data:  "b64_json": "\xc3\xa9"}\r\n\r\n'
    b"data: [DONE]\n\n"
)


@settings(max_examples=300, deadline=None)
@given(cuts=st.lists(st.integers(0, len(STREAM)), max_size=12))
def test_decoder_is_independent_of_chunking(cuts: list[int]) -> None:
    """Splitting the bytes at any points yields the same events as one chunk."""
    points = [0, *sorted(cuts), len(STREAM)]
    parts = [STREAM[a:b] for a, b in itertools.pairwise(points)]
    assert decode(*parts) == decode(STREAM)


def test_decoder_reads_the_reference_stream() -> None:
    """The reference stream decodes to its three events, multi-byte UTF-8 intact."""
    events = decode(STREAM)
    assert [e.event for e in events] == [
        "image_generation.partial_image",
        "image_generation.completed",
        None,
    ]
    assert json.loads(events[1].data)["b64_json"] == "é"
    assert events[0].id == "1" and events[0].retry == 3000


def test_decoder_refuses_a_runaway_event(monkeypatch: pytest.MonkeyPatch) -> None:
    """An event beyond the size cap raises APIResponseValidationError."""
    from ttapi_async import _sse

    monkeypatch.setattr(_sse, "MAX_EVENT_BYTES", 100)
    with pytest.raises(APIResponseValidationError, match="larger"):
        decode(b"data: " + b"x" * 200)


# --- images.stream end to end --------------------------------------------------------------


def _event(kind: str, **fields: Any) -> bytes:
    payload = {"type": kind, **fields}
    return f"event: {kind}\ndata: {json.dumps(payload)}\n\n".encode()


def _partial(prefix: str, index: int) -> bytes:
    return _event(
        f"{prefix}.partial_image",
        b64_json=PNG_B64,
        partial_image_index=index,
        created_at=1,
        size="1024x1024",
        quality="low",
        background="opaque",
        output_format="png",
    )


def _completed(prefix: str) -> bytes:
    usage = {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}
    return _event(f"{prefix}.completed", b64_json=PNG_B64, created_at=2, usage=usage)


def sse_handler(*pieces: bytes) -> Any:
    """Return a handler that streams ``pieces`` as server-sent events, one write each."""

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for piece in pieces:
            await resp.write(piece)
        await resp.write_eof()
        return resp

    return handler


async def _collect(stream: Any) -> list[ImageStreamEvent]:
    return [event async for event in stream]


async def test_stream_yields_partials_then_completed(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """``images.stream`` yields typed partial events, then the completed one, then stops."""
    server.route(
        "POST",
        GENERATIONS,
        sse_handler(
            b": keep-alive\n\n",
            b"retry: 1000\nid: 1\n" + _partial("image_generation", 0),
            _partial("image_generation", 1),
            _completed("image_generation"),
        ),
    )
    events = await _collect(
        client.images.stream(prompt="a cat", model="gpt-image-1", partial_images=2)
    )
    assert [(e.type, e.partial_image_index) for e in events] == [
        ("image_generation.partial_image", 0),
        ("image_generation.partial_image", 1),
        ("image_generation.completed", None),
    ]
    assert events[-1].completed and not events[0].completed
    assert events[-1].usage is not None and events[-1].usage.total_tokens == 3
    assert events[0].b64_json == PNG_B64


async def test_stream_request_asks_for_events(server: LocalServer, client: AsyncTTAPI) -> None:
    """The stream request posts ``stream: true`` and accepts text/event-stream."""
    server.route("POST", GENERATIONS, sse_handler(_completed("image_generation")))
    await _collect(client.images.stream(prompt="a cat", model="gpt-image-1", partial_images=1))
    (req,) = server.requests
    assert req.json()["stream"] is True and req.json()["partial_images"] == 1
    assert req.headers["Accept"] == "text/event-stream"


async def test_stream_ends_at_done(server: LocalServer, client: AsyncTTAPI) -> None:
    """``data: [DONE]`` ends the iteration without an error."""
    server.route(
        "POST",
        GENERATIONS,
        sse_handler(_partial("image_generation", 0), b"data: [DONE]\n\n", b"data: {bad\n\n"),
    )
    events = await _collect(client.images.stream(prompt="a cat", model="gpt-image-1"))
    assert len(events) == 1


async def test_stream_uses_the_event_line_when_data_has_no_type(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """An event whose JSON has no ``type`` takes its type from the ``event:`` line."""
    server.route(
        "POST",
        GENERATIONS,
        sse_handler(b'event: image_generation.completed\ndata: {"b64_json": "x"}\n\n'),
    )
    (event,) = await _collect(client.images.stream(prompt="a cat", model="gpt-image-1"))
    assert event.type == "image_generation.completed"


async def test_stream_error_event_raises(server: LocalServer, client: AsyncTTAPI) -> None:
    """An ``error`` event raises APIStatusError carrying the server's message."""
    payload = {"type": "error", "error": {"message": "moderation blocked", "code": "moderation"}}
    error = f"event: error\ndata: {json.dumps(payload)}\n\n".encode()
    server.route("POST", GENERATIONS, sse_handler(_partial("image_generation", 0), error))
    seen: list[ImageStreamEvent] = []
    with pytest.raises(APIStatusError, match="moderation blocked") as info:
        async for event in client.images.stream(prompt="a cat", model="gpt-image-1"):
            seen.append(event)
    assert len(seen) == 1 and info.value.code == "moderation"


async def test_stream_cut_before_completed_raises(server: LocalServer, client: AsyncTTAPI) -> None:
    """A stream that ends before its completed event raises APIConnectionError(possibly)."""
    server.route("POST", GENERATIONS, sse_handler(_partial("image_generation", 0)))
    with pytest.raises(APIConnectionError, match="completed") as info:
        await _collect(client.images.stream(prompt="a cat", model="gpt-image-1"))
    assert info.value.possibly_submitted


async def test_stream_broken_connection_is_translated(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """A connection dropped mid-stream raises APIConnectionError, not an aiohttp error."""

    async def drop(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(_partial("image_generation", 0) + b"data: {")
        assert request.transport is not None
        request.transport.close()
        return resp

    server.route("POST", GENERATIONS, drop)
    with pytest.raises(APIConnectionError) as info:
        await _collect(client.images.stream(prompt="a cat", model="gpt-image-1"))
    assert info.value.possibly_submitted


async def test_stream_bad_json_event_raises(server: LocalServer, client: AsyncTTAPI) -> None:
    """An event whose data is not JSON raises APIResponseValidationError."""
    server.route("POST", GENERATIONS, sse_handler(b"data: {not json\n\n"))
    with pytest.raises(APIResponseValidationError, match="not valid JSON"):
        await _collect(client.images.stream(prompt="a cat", model="gpt-image-1"))


async def test_stream_http_error_raises_typed(server: LocalServer, client: AsyncTTAPI) -> None:
    """A 400 answer to a stream request raises BadRequestError before any event."""
    server.reply("POST", GENERATIONS, json_answer({"error": {"message": "bad size"}}, 400))
    with pytest.raises(BadRequestError, match="bad size"):
        await _collect(client.images.stream(prompt="a cat", model="gpt-image-1"))


async def test_stream_json_failed_envelope_raises(server: LocalServer, client: AsyncTTAPI) -> None:
    """A 200 JSON FAILED envelope instead of a stream raises, never yields nothing."""
    server.reply(
        "POST", GENERATIONS, json_answer({"status": "FAILED", "message": "Parameter error"})
    )
    with pytest.raises(BadRequestError, match="Parameter error"):
        await _collect(client.images.stream(prompt="a cat", model="gpt-image-1"))


async def test_stream_json_answer_without_error_raises(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """A 200 JSON answer that is not an error either raises APIResponseValidationError."""
    server.reply("POST", GENERATIONS, json_answer({"created": 1, "data": []}))
    with pytest.raises(APIResponseValidationError, match="event stream"):
        await _collect(client.images.stream(prompt="a cat", model="gpt-image-1"))


async def test_stream_first_answer_is_retried_when_refused(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """A 429 before the stream starts is retried; the retry's events are yielded."""
    server.reply(
        "POST",
        GENERATIONS,
        json_answer({"error": {"message": "slow down"}}, 429),
        sse_handler(_completed("image_generation")),
    )
    events = await _collect(client.images.stream(prompt="a cat", model="gpt-image-1"))
    assert len(events) == 1 and len(server.requests) == 2


async def test_stream_gives_up_after_max_retries(server: LocalServer, client: AsyncTTAPI) -> None:
    """``max_retries=0`` on a stream raises the first refusal."""
    server.reply("POST", GENERATIONS, json_answer({"error": {"message": "slow down"}}, 429))
    with pytest.raises(RateLimitError):
        await _collect(client.images.stream(prompt="a cat", model="gpt-image-1", max_retries=0))
    assert len(server.requests) == 1


async def test_stream_closed_early_releases_the_connection(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """Leaving ``async with`` after the first event closes the stream cleanly."""
    server.route(
        "POST",
        GENERATIONS,
        sse_handler(
            _partial("image_generation", 0),
            _partial("image_generation", 1),
            _completed("image_generation"),
        ),
    )
    async with client.images.stream(prompt="a cat", model="gpt-image-1") as events:
        async for event in events:
            assert event.partial_image_index == 0
            break
    with pytest.raises(StopAsyncIteration):
        await events.__anext__()


async def test_stream_edit_sends_multipart_with_stream_field(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """``stream_edit`` posts a multipart edit with ``stream=true`` and yields edit events."""
    server.route("POST", EDITS, sse_handler(_partial("image_edit", 0), _completed("image_edit")))
    events = await _collect(
        client.images.stream_edit(prompt="a hat", image=PNG, model="gpt-image-1", partial_images=1)
    )
    assert [e.type for e in events] == ["image_edit.partial_image", "image_edit.completed"]
    fields = {p.name: p.text for p in server.requests[0].parts() if not p.filename}
    assert fields["stream"] == "true" and fields["partial_images"] == "1"


async def test_stream_with_bad_parameters_raises_on_the_call(client: AsyncTTAPI) -> None:
    """Invalid stream parameters raise when ``stream()`` is called, before iterating."""
    from ttapi_async import InvalidRequestError

    with pytest.raises(InvalidRequestError):
        client.images.stream(prompt="a cat", model="dall-e-3", partial_images=2)


async def test_stream_with_several_images_yields_every_completed_event(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """With n=2, both images' completed events are yielded, not just the first."""
    server.route(
        "POST",
        GENERATIONS,
        sse_handler(_completed("image_generation"), _completed("image_generation")),
    )
    events = await _collect(client.images.stream(prompt="a cat", model="gpt-image-1", n=2))
    assert [e.completed for e in events] == [True, True]


def test_many_small_data_lines_are_capped_like_one_long_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An event of many short ``data:`` lines past the cap raises, as one long line does."""
    from ttapi_async import _sse

    monkeypatch.setattr(_sse, "MAX_EVENT_BYTES", 1000)
    lines = [b"data: " + b"x" * 50 + b"\n" for _ in range(40)]  # 2,040 bytes of data
    with pytest.raises(APIResponseValidationError, match="larger than 1000 bytes"):
        decode(*lines)


def test_progress_is_reported_for_event_bytes_not_for_keep_alives() -> None:
    """``progress`` is called for chunks carrying event fields, never for comments alone."""
    calls: list[int] = []

    async def run() -> list[ServerSentEvent]:
        parts = [b": keep-alive\n\n", b": ping\n", b"data: {", b'"a": 1}\n\n', b": x\n\n"]
        return [e async for e in iter_sse(_chunks(parts), progress=lambda: calls.append(1))]

    events = asyncio.run(run())
    assert [e.data for e in events] == ['{"a": 1}']
    assert len(calls) == 2  # the two chunks of the data line
