"""A streamed generation or edit: its answer's headers and request id, and what it spent."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _support import EDITS, GENERATIONS, PNG, PNG_B64, LocalServer
from _support import client as client
from _support import server as server
from _support import sleeps as sleeps
from aiohttp import web

from ttapi_async import APIConnectionError, AsyncTTAPI

USAGE = {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}
USAGE_TOTAL = 3


def _event(kind: str, **fields: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **fields})}\n\n".encode()


def partial(index: int) -> bytes:
    kind = "image_generation.partial_image"
    return _event(kind, b64_json=PNG_B64, partial_image_index=index, created_at=1)


def completed(prefix: str = "image_generation") -> bytes:
    return _event(f"{prefix}.completed", b64_json=PNG_B64, created_at=2, usage=USAGE)


def streaming(*pieces: bytes, request_id: str = "req_42") -> Any:
    """A handler that streams ``pieces`` with an ``x-request-id`` header."""

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "x-request-id": request_id}
        )
        await resp.prepare(request)
        for piece in pieces:
            await resp.write(piece)
        await resp.write_eof()
        return resp

    return handler


async def test_a_stream_carries_its_answers_headers_and_request_id(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """Once the first event is read, the stream has the answer's headers and request id."""
    server.route("POST", GENERATIONS, streaming(partial(0), completed()))
    async with client.images.stream(prompt="a cat", model="gpt-image-1") as stream:
        assert stream.request_id is None and dict(stream.headers) == {}  # nothing read yet
        events = [event async for event in stream]
    assert events[-1].completed
    assert stream.request_id == "req_42"
    assert stream.headers["content-type"] == "text/event-stream"


async def test_a_streams_usage_is_counted_once_under_its_model(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """A stream is one request: its completed event's usage is added under the model asked for."""
    server.route("POST", GENERATIONS, streaming(partial(0), completed()))
    async with client.images.stream(prompt="a cat", model="gpt-image-1") as stream:
        async for _ in stream:
            pass
    snap = client.spent.snapshot()
    assert snap.requests == 1
    assert snap.tokens["gpt-image-1"].total_tokens == USAGE_TOTAL


async def test_several_completed_events_count_one_request(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """With n > 1 each image completes with the request's usage: it is counted once."""
    server.route("POST", GENERATIONS, streaming(completed(), completed()))
    async with client.images.stream(prompt="a cat", model="gpt-image-1", n=2) as stream:
        events = [event async for event in stream]
    assert len(events) == 2
    snap = client.spent.snapshot()
    assert snap.requests == 1 and snap.tokens["gpt-image-1"].total_tokens == USAGE_TOTAL


async def test_an_edit_stream_counts_its_usage_too(
    server: LocalServer, client: AsyncTTAPI, tmp_path: Any
) -> None:
    """A streamed edit of a file adds its usage, and carries its request id."""
    server.route("POST", EDITS, streaming(completed("image_edit"), request_id="req_7"))
    source = tmp_path / "in.png"
    source.write_bytes(PNG)
    stream = client.images.stream_edit(prompt="a hat", image=source, model="gpt-image-1")
    async with stream:
        async for _ in stream:
            pass
    assert stream.request_id == "req_7"
    assert client.spent.snapshot().tokens["gpt-image-1"].total_tokens == USAGE_TOTAL


async def test_a_stream_cut_before_completion_counts_nothing(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """No completed event, no usage: the stream's end is an error and nothing is added."""
    server.route("POST", GENERATIONS, streaming(partial(0)))
    with pytest.raises(APIConnectionError, match="completed event"):
        async with client.images.stream(prompt="a cat", model="gpt-image-1") as stream:
            async for _ in stream:
                pass
    assert client.spent.snapshot().requests == 0
