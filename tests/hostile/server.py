"""One misbehaving HTTP server on 127.0.0.1 (raw asyncio TCP): the path picks the misbehaviour.

A raw server rather than aiohttp.web because the answers under test are the ones a real HTTP
library refuses to produce: malformed status lines, bad chunk sizes, bodies that never end,
bytes dripped one at a time. Adding an attack is one line in a test::

    hostile.on("/v1/images/generations", raw(b"HTTP/1.1 2OO OK\\r\\n\\r\\n"))

A behaviour is ``async def (request, out) -> None``; ``out.send(data)`` writes (and waits for
the client to take it: backpressure, so ``request.sent`` counts what the client could read,
plus the sockets' buffers). The connection is closed when the behaviour returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import attrs
from multidict import CIMultiDict

__all__ = [
    "Behaviour",
    "HostileRequest",
    "HostileServer",
    "Out",
    "after",
    "drip",
    "endless_chunked",
    "gzip_bomb",
    "huge",
    "raw",
    "redirect",
    "respond",
    "sse_keepalive",
    "stall",
]

#: The most a request head may take before the server gives up on it.
_MAX_HEAD = 64 * 1024
_PIECE = 64 * 1024


@attrs.define
class HostileRequest:
    """One request the server received, and how many bytes it sent back."""

    method: str
    path: str
    query: str
    headers: CIMultiDict[str]
    body: bytes
    #: bytes written to the client for this request (head included)
    sent: int = 0

    def json(self) -> Any:
        return json.loads(self.body)


class Out:
    """The client's end of the connection, as a behaviour sees it."""

    def __init__(self, writer: asyncio.StreamWriter, request: HostileRequest, stop: asyncio.Event):
        self._writer = writer
        self._request = request
        self._stop = stop

    async def send(self, data: bytes) -> None:
        """Write ``data`` and wait until the client has taken it (or raise if it hung up)."""
        if self._stop.is_set():
            raise ConnectionResetError("the server is closing")
        self._writer.write(data)
        await self._writer.drain()
        self._request.sent += len(data)

    async def hang(self) -> None:
        """Wait, sending nothing more, until the server closes."""
        await self._stop.wait()

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds`` (or until the server closes, whichever is first)."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)


Behaviour = Callable[[HostileRequest, Out], Awaitable[None]]


class HostileServer:
    """Answer each path with the behaviours registered for it; record every request."""

    def __init__(self) -> None:
        self.requests: list[HostileRequest] = []
        self._routes: dict[str, list[Behaviour]] = {}
        self._server: asyncio.Server | None = None
        self._stop = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def on(self, path: str, *behaviours: Behaviour) -> None:
        """Answer requests to ``path`` with each behaviour in turn; the last one repeats."""
        if not behaviours:
            raise ValueError("give at least one behaviour")
        self._routes[path] = list(behaviours)

    def requests_to(self, path: str) -> list[HostileRequest]:
        return [r for r in self.requests if r.path == path]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        # Every behaviour stops by itself once _stop is set; cancelling is for one that hangs.
        if self._tasks:
            _, stuck = await asyncio.wait(list(self._tasks), timeout=5)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            # One request per connection: every answer ends by closing it.
            request = await _read_request(reader)
            if request is None:
                return
            self.requests.append(request)
            await self._behaviour_for(request.path)(request, Out(writer, request, self._stop))
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client hung up (often on purpose: it refused what it read)
        except asyncio.CancelledError:
            pass  # only close() cancels, and a cancelled callback would be logged as a crash
        finally:
            self._writers.discard(writer)
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _behaviour_for(self, path: str) -> Behaviour:
        queue = self._routes.get(path)
        if queue is None:
            return respond(404, body={"error": {"message": f"no behaviour for {path}"}})
        return queue.pop(0) if len(queue) > 1 else queue[0]


async def _read_request(reader: asyncio.StreamReader) -> HostileRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    if len(head) > _MAX_HEAD:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.add(name.strip(), value.strip())
    if headers.get("Transfer-Encoding", "").lower() == "chunked":
        body = await _read_chunked(reader)
    else:
        body = await reader.readexactly(int(headers.get("Content-Length", "0")))
    path, _, query = target.partition("?")
    return HostileRequest(method, path, query, headers, body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    pieces = []
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        pieces.append(await reader.readexactly(size))
        await reader.readexactly(2)
    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
        pass
    return b"".join(pieces)


def _head(status: int, headers: Mapping[str, str] | Sequence[tuple[str, str]]) -> bytes:
    items = headers.items() if isinstance(headers, Mapping) else headers
    lines = [f"HTTP/1.1 {status} Whatever"] + [f"{k}: {v}" for k, v in items]
    return ("\r\n".join([*lines, "Connection: close", "", ""])).encode("latin-1")


def _body_bytes(body: bytes | str | Any) -> tuple[bytes, str]:
    if isinstance(body, bytes):
        return body, "application/octet-stream"
    if isinstance(body, str):
        return body.encode(), "text/plain"
    return json.dumps(body).encode(), "application/json"


# --- ready-made behaviours ---------------------------------------------------------------


def after(seconds: float, behaviour: Behaviour) -> Behaviour:
    """Say nothing for ``seconds`` (a server still working on the answer), then ``behaviour``."""

    async def delayed(request: HostileRequest, out: Out) -> None:
        await out.pause(seconds)
        await behaviour(request, out)

    return delayed


def raw(data: bytes) -> Behaviour:
    """Send exactly ``data`` (status line and all), then close."""

    async def behaviour(request: HostileRequest, out: Out) -> None:
        await out.send(data)

    return behaviour


def respond(
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    body: bytes | str | Any = b"",
) -> Behaviour:
    """Send a well-formed answer; a non-bytes, non-str ``body`` is sent as JSON."""
    data, content_type = _body_bytes(body)
    fields = {"Content-Type": content_type, **(headers or {}), "Content-Length": str(len(data))}

    async def behaviour(request: HostileRequest, out: Out) -> None:
        await out.send(_head(status, fields) + data)

    return behaviour


def redirect(status: int, location: str) -> Behaviour:
    """Answer ``status`` with ``Location: location`` and an empty body."""
    return respond(status, {"Location": location})


def drip(
    body: bytes | str | Any,
    *,
    every: float,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Behaviour:
    """Send the head at once, then the body one byte at a time, ``every`` seconds apart."""
    data, content_type = _body_bytes(body)
    fields = {"Content-Type": content_type, **(headers or {}), "Content-Length": str(len(data))}

    async def behaviour(request: HostileRequest, out: Out) -> None:
        await out.send(_head(status, fields))
        for i in range(len(data)):
            await out.send(data[i : i + 1])
            await out.pause(every)

    return behaviour


def stall(
    prefix: bytes = b"",
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Behaviour:
    """Send the head and ``prefix`` of a chunked body, then nothing ever again."""
    fields = {"Content-Type": "application/json", **(headers or {})}
    fields["Transfer-Encoding"] = "chunked"

    async def behaviour(request: HostileRequest, out: Out) -> None:
        await out.send(_head(status, fields))
        if prefix:
            await out.send(b"%x\r\n%s\r\n" % (len(prefix), prefix))
        await out.hang()

    return behaviour


def sse_keepalive(*, every: float) -> Behaviour:
    """Open an event stream and send only ``: keep-alive`` comments, ``every`` seconds apart."""
    fields = {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"}
    line = b": keep-alive\n\n"

    async def behaviour(request: HostileRequest, out: Out) -> None:
        await out.send(_head(200, fields))
        while True:
            await out.send(b"%x\r\n%s\r\n" % (len(line), line))
            await out.pause(every)

    return behaviour


def endless_chunked(
    piece: bytes = b"[" * _PIECE, *, content_type: str = "application/json"
) -> Behaviour:
    """Send a 200 whose chunked body never ends (``piece`` over and over)."""
    fields = {"Content-Type": content_type, "Transfer-Encoding": "chunked"}
    chunk = b"%x\r\n%s\r\n" % (len(piece), piece)

    async def behaviour(request: HostileRequest, out: Out) -> None:
        await out.send(_head(200, fields))
        while True:
            await out.send(chunk)

    return behaviour


def huge(
    size: int, *, fill: bytes = b" ", status: int = 200, content_type: str = "application/json"
) -> Behaviour:
    """Send a 200 with an honest ``Content-Length: size`` body of ``fill``, piece by piece."""
    fields = {"Content-Type": content_type, "Content-Length": str(size)}
    piece = fill * (_PIECE // len(fill))

    async def behaviour(request: HostileRequest, out: Out) -> None:
        await out.send(_head(status, fields))
        left = size
        while left > 0:
            await out.send(piece[:left])
            left -= len(piece)

    return behaviour


_BOMBS: dict[int, bytes] = {}


def gzip_bomb(size: int, *, content_type: str = "application/json") -> Behaviour:
    """Send a small gzip body (``Content-Encoding: gzip``) that inflates to ``size`` spaces."""
    if size not in _BOMBS:
        packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip framing
        piece = b" " * _PIECE
        parts = [packer.compress(piece[: size - done]) for done in range(0, size, _PIECE)]
        _BOMBS[size] = b"".join([*parts, packer.flush()])
    return respond(200, {"Content-Type": content_type, "Content-Encoding": "gzip"}, _BOMBS[size])
