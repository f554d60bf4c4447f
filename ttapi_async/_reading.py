"""Reading an answer's body: a cap on the bytes it may take, and a timer for a server gone quiet.

Both guard the client against the server: a body that never ends (or a small gzip body that
inflates to gigabytes) must cost at most the cap in memory, and a server that sends the
head and then drips or stalls must not hold the call for the whole total timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Final

import aiohttp

from ._errors import APITimeoutError, ResponseTooLargeError
from ._sse import ServerSentEvent, iter_sse
from ._translation import path_of

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "IdleTimer",
    "read_body",
    "sse_events",
]

_MIB: Final = 1024 * 1024
# The largest legitimate answer: n=10 images at the largest size any model makes, in base64.
# 3840x2160 is the documented maximum (gpt-image-2); the worst PNG of it is RGBA stored
# uncompressed (noise does not compress): 4 bytes a pixel, plus one filter byte a row and
# zlib/chunk framing, under 1% more. Base64 takes 4/3 of that: 3840*2160*4*1.01*4/3 is
# 44.7 MB an image, 447 MB for ten. 1 MiB more holds the JSON around them (usage, revised
# prompts). 448 MiB (469,762,048 bytes) covers it; every other answer is far smaller.
DEFAULT_MAX_RESPONSE_BYTES: Final = 448 * _MIB
# Once an answer has started, a healthy server never pauses this long between bytes (nor,
# in an event stream, between events: gpt-image models send a partial image every few tens
# of seconds). The wait for the answer's head is not counted: generating takes minutes.
DEFAULT_IDLE_TIMEOUT: Final = 120.0


class IdleExpired(Exception):
    """Set on the body's stream when the idle timer fires; read_body turns it into a timeout."""


class IdleTimer:
    """Fail ``content``'s pending read when ``touch()`` has not been called for ``idle`` s.

    The timer does not cancel the reading task (which could not be told from a caller's
    cancellation): it sets an exception on the stream, as aiohttp's own read timeout does.
    A touch costs one clock read; the timer re-arms itself only when it fires early.
    """

    __slots__ = ("_content", "_handle", "_idle", "_last", "_loop", "expired")

    def __init__(self, content: aiohttp.StreamReader, idle: float) -> None:
        self._content = content
        self._idle = idle
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._handle: asyncio.TimerHandle | None = self._loop.call_at(
            self._last + idle, self._check
        )
        self.expired = False

    def touch(self) -> None:
        """Note progress: the idle time starts again from now."""
        self._last = self._loop.time()

    def pause(self) -> None:
        """Stop the timer (the consumer, not the server, holds things up now)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def resume(self) -> None:
        """Start the timer again, from now."""
        self.pause()
        self._last = self._loop.time()
        self._handle = self._loop.call_at(self._last + self._idle, self._check)

    cancel = pause

    def _check(self) -> None:
        due = self._last + self._idle
        if self._loop.time() < due:
            self._handle = self._loop.call_at(due, self._check)
            return
        self._handle = None
        self.expired = True
        self._content.set_exception(IdleExpired())

    def error(self, method: str, path: str) -> APITimeoutError:
        """Return the error for an expired timer (the answer had started: possibly billed)."""
        return APITimeoutError(
            f"{method} {path}: the server sent nothing for {self._idle:g}s "
            "after its answer had started (idle timeout)",
            possibly_submitted=True,
            method=method,
            url=path,
        )


def too_large(limit: int, received: int, what: str) -> ResponseTooLargeError:
    return ResponseTooLargeError(
        f"{what} is larger than the {limit:,} byte cap (max_response_bytes); "
        f"stopped after {received:,} bytes",
        limit=limit,
        received=received,
    )


async def read_body(
    resp: aiohttp.ClientResponse,
    *,
    limit: int,
    idle: float | None,
    method: str,
    url: str,
) -> bytes:
    """Return the whole (decompressed) body, or raise once it passes ``limit`` bytes.

    Memory stays within ``limit`` plus one chunk: the count is of the bytes aiohttp hands
    over after decompression, so a gzip bomb stops at the cap as an endless body does.
    ``url`` is named in errors without its query.
    """
    content = resp.content
    chunks: list[bytes] = []
    received = 0
    if content.is_eof():
        # The whole body is buffered already (a small answer comes in the packet of its
        # head): taken in one call, with no timer to arm, since nothing is left to wait for.
        # aiohttp's flow control bounds what it buffers unread, so the cap still holds.
        chunk = content.read_nowait(-1)
        received = len(chunk)
        if received > limit:
            # Counted as refused unread when the head said so, as below.
            raise too_large(
                limit, 0 if _declared_over(resp, limit) else received, _what(method, url)
            )
        if content.at_eof():
            return chunk
        chunks.append(chunk)
    elif _declared_over(resp, limit):
        raise too_large(limit, 0, _what(method, url))
    # A body that came whole with its head needs no timer: nothing can stall.
    timer = IdleTimer(content, idle) if idle is not None and not content.is_eof() else None
    try:
        while chunk := await content.readany():
            received += len(chunk)
            if received > limit:
                raise too_large(limit, received, _what(method, url))
            chunks.append(chunk)
            if timer is not None:
                timer.touch()
    except IdleExpired:
        assert timer is not None
        raise timer.error(method, path_of(url)) from None
    finally:
        if timer is not None:
            timer.cancel()
    if len(chunks) == 1:
        return chunks[0]
    return b"".join(chunks)


def _declared_over(resp: aiohttp.ClientResponse, limit: int) -> bool:
    """Return True when the head declares more than ``limit`` bytes (and no compression)."""
    declared = resp.content_length
    return declared is not None and declared > limit and "Content-Encoding" not in resp.headers


def _what(method: str, url: str) -> str:
    return f"the answer to {method} {path_of(url)}"


async def sse_events(
    resp: aiohttp.ClientResponse, *, idle: float | None, method: str, path: str
) -> AsyncIterator[ServerSentEvent]:
    """Yield the events of a stream; raise ``APITimeoutError`` when it goes ``idle`` s quiet.

    Quiet means no event and no part of one: keep-alive comments do not count, and neither
    does the time the consumer spends between events (the timer is paused while it holds one).
    """
    if idle is None:
        async for event in iter_sse(resp.content.iter_any()):
            yield event
        return
    timer = IdleTimer(resp.content, idle)
    try:
        async for event in iter_sse(resp.content.iter_any(), progress=timer.touch):
            timer.pause()
            yield event
            timer.resume()
    except IdleExpired:
        raise timer.error(method, path) from None
    finally:
        timer.cancel()
