"""Server-sent events: split a byte stream into events, whatever its chunking."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable

import attrs

from ._errors import APIResponseValidationError

__all__ = ["ServerSentEvent", "iter_sse"]

# Partial images arrive as one multi-megabyte ``data:`` line; the cap only stops a runaway.
MAX_EVENT_BYTES = 128 * 1024 * 1024


@attrs.frozen
class ServerSentEvent:
    event: str | None
    data: str
    id: str | None = None
    retry: int | None = None


class _Decoder:
    """Accumulate the fields of one event; ``line()`` returns an event at a blank line."""

    def __init__(self) -> None:
        self._event: str | None = None
        self._data: list[str] = []
        self._size = 0  # of the data lines held: many small lines must not pass the cap either
        self._id: str | None = None
        self._retry: int | None = None

    def line(self, raw: str) -> ServerSentEvent | None:
        if not raw:
            return self._flush()
        if raw.startswith(":"):
            return None  # a comment, used as a keep-alive
        name, _, value = raw.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._size += len(value) + 1
            if self._size > MAX_EVENT_BYTES:
                raise APIResponseValidationError(
                    f"server-sent event larger than {MAX_EVENT_BYTES} bytes"
                )
            self._data.append(value)
        elif name == "id":
            self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None

    def _flush(self) -> ServerSentEvent | None:
        if not self._data:
            # The spec: an event without data lines is not dispatched (a bare keep-alive).
            self._event, self._retry = None, None
            return None
        event = ServerSentEvent(self._event, "\n".join(self._data), self._id, self._retry)
        self._event, self._data, self._retry, self._size = None, [], None, 0
        return event

    def end(self) -> ServerSentEvent | None:
        return self._flush()


async def iter_sse(
    chunks: AsyncIterable[bytes], *, progress: Callable[[], None] | None = None
) -> AsyncIterator[ServerSentEvent]:
    """Yield the events of an SSE byte stream (LF or CRLF line ends), however it is chunked.

    Bytes are decoded as UTF-8 with replacement, as the SSE spec says: a bad byte spoils
    the event's JSON (a typed error upstream), never the decoder. ``progress`` is called
    for each chunk that carries more than comments and blank lines (keep-alives are not
    progress: an idle timer must see through them).
    """
    decoder = _Decoder()
    buffer = bytearray()
    async for chunk in chunks:
        # What the buffer held before this chunk has no newline: scan only the new bytes, or
        # a multi-megabyte partial image arriving in small chunks would be rescanned each time.
        scanned = len(buffer)
        buffer += chunk
        if len(buffer) > MAX_EVENT_BYTES:
            raise APIResponseValidationError(
                f"server-sent event larger than {MAX_EVENT_BYTES} bytes"
            )
        start = 0
        moved = False
        while True:
            end = buffer.find(b"\n", max(start, scanned))
            if end < 0:
                break
            stop = end - 1 if end > start and buffer[end - 1] == 0x0D else end  # CRLF
            line = buffer[start:stop].decode("utf-8", "replace")
            start = end + 1
            moved = moved or (line != "" and line[0] != ":")
            event = decoder.line(line)
            if event is not None:
                yield event
        del buffer[:start]
        if progress is not None and (moved or (buffer and buffer[0] != 0x3A)):  # ":"
            progress()
    if buffer:
        event = decoder.line(bytes(buffer).rstrip(b"\r").decode("utf-8", "replace"))
        if event is not None:
            yield event
    event = decoder.end()
    if event is not None:
        yield event
