"""Hostile answer bodies: too big, endless, inflating, too deep, or holding numbers too large."""

from __future__ import annotations

import inspect

import pytest
from _support import GENERATIONS
from aiohttp.http_parser import DeflateBuffer

from hostile.conftest import ClientFactory
from hostile.server import HostileServer, endless_chunked, gzip_bomb, huge, raw, respond
from ttapi_async import (
    APIResponseValidationError,
    AsyncTTAPI,
    BadRequestError,
    InvalidRequestError,
    ResponseTooLargeError,
)
from ttapi_async._reading import DEFAULT_MAX_RESPONSE_BYTES

FETCH = "/openai/4o-image/fetch"
CAP = 1024 * 1024
# What the client may hold past the cap: the last chunk aiohttp handed over (its reads come
# in pieces of at most a few hundred KiB, decompressed or not).
SLACK = 1024 * 1024
DEEP = b"[" * 100_000
# Valid JSON, shallow enough for json.loads, deep enough to make what walks it recurse too far.
BALANCED = b'{"error": ' + b"[" * 900 + b"]" * 900 + b"}"


async def _generate(client: AsyncTTAPI) -> object:
    return await client.images.generate(prompt="a cat", model="dall-e-2")


# --- item 6: the size cap -------------------------------------------------------------------


async def test_an_endless_body_stops_at_the_cap(
    hostile: HostileServer, make_hostile_client: ClientFactory
) -> None:
    """An endless chunked answer raises ResponseTooLargeError once the cap is passed."""
    hostile.on(GENERATIONS, endless_chunked())
    client = make_hostile_client(max_response_bytes=CAP, timeout=30)
    with pytest.raises(ResponseTooLargeError) as caught:
        await _generate(client)
    assert caught.value.limit == CAP
    assert CAP < caught.value.received <= CAP + SLACK
    assert isinstance(caught.value, APIResponseValidationError)


async def test_a_declared_length_over_the_cap_is_refused_unread(
    hostile: HostileServer, make_hostile_client: ClientFactory
) -> None:
    """A Content-Length over the cap is refused before one byte of the body is read."""
    hostile.on(GENERATIONS, huge(8 * CAP))
    client = make_hostile_client(max_response_bytes=CAP)
    with pytest.raises(ResponseTooLargeError, match="1,048,576 byte cap") as caught:
        await _generate(client)
    assert caught.value.received == 0


# Recent aiohttp bounds what one read may inflate to (DeflateBuffer's max_decompress_size);
# before that, one network read (64 KiB) of deflate inflates whole, up
# to zlib's 1032:1, so the client may hold that much past the cap.
_BOUNDED_INFLATE = "max_decompress_size" in inspect.signature(DeflateBuffer.__init__).parameters
INFLATE_SLACK = SLACK if _BOUNDED_INFLATE else 1032 * 128 * 1024


async def test_a_gzip_bomb_is_counted_after_decompression(
    hostile: HostileServer, make_hostile_client: ClientFactory
) -> None:
    """A small gzip body inflating to 256 MiB stops at the cap, counted in inflated bytes."""
    hostile.on(GENERATIONS, gzip_bomb(256 * CAP))
    client = make_hostile_client(max_response_bytes=CAP)
    with pytest.raises(ResponseTooLargeError) as caught:
        await _generate(client)
    assert CAP < caught.value.received <= CAP + INFLATE_SLACK < 256 * CAP


async def test_an_error_body_is_capped_too(
    hostile: HostileServer, make_hostile_client: ClientFactory
) -> None:
    """A 4xx whose body never ends is capped like any other answer."""
    hostile.on(FETCH, huge(8 * CAP, status=400))
    client = make_hostile_client(max_response_bytes=CAP)
    with pytest.raises(ResponseTooLargeError):
        await client.gpt4o.fetch("job-1")


async def test_a_stream_refusal_body_is_capped(
    hostile: HostileServer, make_hostile_client: ClientFactory
) -> None:
    """A stream request answered with an endless JSON error body stops at the cap."""
    hostile.on(GENERATIONS, endless_chunked())
    client = make_hostile_client(max_response_bytes=CAP, timeout=30)
    with pytest.raises(ResponseTooLargeError):
        async with client.images.stream(prompt="a cat", model="gpt-image-1") as stream:
            async for _ in stream:
                pass


async def test_an_answer_under_the_cap_is_read_whole(
    hostile: HostileServer, make_hostile_client: ClientFactory
) -> None:
    """An answer of exactly the cap's size is not refused."""
    body = b'{"created": 1, "data": []}'
    hostile.on(GENERATIONS, respond(200, body=body.ljust(CAP)))
    client = make_hostile_client(max_response_bytes=CAP)
    result = await _generate(client)
    assert result.created == 1  # type: ignore[attr-defined]


def test_the_default_cap_holds_ten_of_the_largest_images_in_base64() -> None:
    """The default fits n=10 worst-case 3840x2160 RGBA PNGs in base64, plus the JSON."""
    worst_png = 3840 * 2160 * 4 + 2160 + 64 * 1024  # pixels, filter bytes, framing
    assert 10 * worst_png * 4 // 3 + 1024 * 1024 <= DEFAULT_MAX_RESPONSE_BYTES


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "10"])
def test_max_response_bytes_must_be_a_positive_integer(bad: object) -> None:
    """max_response_bytes is checked at construction: InvalidRequestError, never later."""
    with pytest.raises(InvalidRequestError, match="max_response_bytes"):
        AsyncTTAPI(api_key="k", max_response_bytes=bad)  # type: ignore[arg-type]


# --- item 7: too deep, too large ------------------------------------------------------------


async def test_deep_nesting_in_an_answer_is_a_validation_error(
    hostile: HostileServer, hostile_client: AsyncTTAPI
) -> None:
    """100,000 "[" as a generate answer raises APIResponseValidationError, not RecursionError."""
    hostile.on(GENERATIONS, respond(200, body=DEEP))
    with pytest.raises(APIResponseValidationError, match="not valid JSON"):
        await _generate(hostile_client)


@pytest.mark.parametrize("body", [DEEP, BALANCED], ids=["100k-open", "900-balanced"])
async def test_deep_nesting_in_a_job_fetch_is_a_validation_error(
    hostile: HostileServer, hostile_client: AsyncTTAPI, body: bytes
) -> None:
    """100,000 "[" (or valid JSON 900 deep) as a job fetch raises APIResponseValidationError."""
    hostile.on(FETCH, respond(200, body=body))
    with pytest.raises(APIResponseValidationError):
        await hostile_client.gpt4o.fetch("job-1")


@pytest.mark.parametrize("body", [DEEP, BALANCED], ids=["100k-open", "900-balanced"])
async def test_deep_nesting_in_an_error_body_keeps_the_status_error(
    hostile: HostileServer, hostile_client: AsyncTTAPI, body: bytes
) -> None:
    """A 400 whose body is 100,000 "[" (or valid JSON 900 deep) is still a BadRequestError."""
    hostile.on(GENERATIONS, respond(400, body=body))
    with pytest.raises(BadRequestError):
        await _generate(hostile_client)


async def test_deep_nesting_in_a_stream_event_is_a_validation_error(
    hostile: HostileServer, hostile_client: AsyncTTAPI
) -> None:
    """A stream event whose data is 100,000 "[" raises APIResponseValidationError."""
    event = b"data: " + DEEP + b"\n\n"
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    hostile.on(GENERATIONS, raw(head + b"Content-Length: %d\r\n\r\n" % len(event) + event))
    with pytest.raises(APIResponseValidationError, match="not valid JSON"):
        async with hostile_client.images.stream(prompt="a cat", model="gpt-image-1") as stream:
            async for _ in stream:
                pass


@pytest.mark.parametrize("number", ["1e400", "Infinity", "-Infinity", "NaN"])
async def test_a_number_out_of_range_is_a_validation_error(
    hostile: HostileServer, hostile_client: AsyncTTAPI, number: str
) -> None:
    """``"created": 1e400`` (or Infinity, NaN) raises APIResponseValidationError, not Overflow."""
    hostile.on(GENERATIONS, respond(200, body=f'{{"created": {number}, "data": []}}'.encode()))
    with pytest.raises(APIResponseValidationError):
        await _generate(hostile_client)


async def test_a_job_number_out_of_range_is_a_validation_error(
    hostile: HostileServer, hostile_client: AsyncTTAPI
) -> None:
    """A job fetch whose finishTime is 1e400 raises APIResponseValidationError."""
    body = (
        b'{"jobId": "j", "status": "SUCCESS", "message": null,'
        b' "data": {"imageUrl": "http://x/y.png", "finishTime": 1e400, "quota": "1"}}'
    )
    hostile.on(FETCH, respond(200, body=body))
    with pytest.raises(APIResponseValidationError):
        await hostile_client.gpt4o.fetch("j")
