"""Helpers shared by the core client's tests: a local aiohttp.web server, images, fixtures."""

from __future__ import annotations

import asyncio
import base64
import email.parser
import email.policy
import json
import socket
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web

from ttapi_async import AsyncTTAPI, RetryPolicy

#: Long and distinctive, so that a leak of any part of it is easy to find.
API_KEY = "tt-SECRET-0123456789abcdef-KEY"
GENERATIONS = "/v1/images/generations"
EDITS = "/v1/images/edits"
DALLE3 = "/openai/v1/images/generations"

GENERATION_OK: dict[str, Any] = {
    "created": 1745818538,
    "data": [{"url": "https://cdn.example/cat.webp", "revised_prompt": "a cute cat, smiling"}],
    "usage": {
        "input_tokens": 9,
        "input_tokens_details": {"image_tokens": 0, "text_tokens": 9},
        "output_tokens": 4160,
        "total_tokens": 4169,
    },
}
DALLE3_OK: dict[str, Any] = {
    "status": "SUCCESS",
    "message": "success",
    "data": {
        "created": 1713577682,
        "data": [{"revised_prompt": "a cat", "url": "https://cdn.example/cat.png"}],
    },
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def make_png(width: int = 4, height: int = 4) -> bytes:
    """Return a real RGBA PNG of the given size (every pixel transparent)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x00" * (4 * width) for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(rows))
        + _chunk(b"IEND", b"")
    )


PNG = make_png()
PNG_B64 = base64.b64encode(PNG).decode()


@attrs.define
class Recorded:
    """One request the local server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def parts(self) -> list[Part]:
        """Return the multipart parts in the order they were sent."""
        head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + self.body)
        assert message.is_multipart()
        parts = []
        for part in message.iter_parts():
            parts.append(
                Part(
                    name=str(part.get_param("name", header="content-disposition")),
                    filename=part.get_filename(),
                    content_type=part.get_content_type() if part.get_filename() else None,
                    data=part.get_payload(decode=True),
                )
            )
        return parts


@attrs.frozen
class Part:
    name: str
    filename: str | None
    content_type: str | None
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode()


class LocalServer:
    """An aiohttp.web app on 127.0.0.1, port 0, that records every request it gets."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        #: every header line of each request, repeated names included
        self.raw_headers: list[list[tuple[str, str]]] = []
        self._routes: dict[tuple[str, str], Handler] = {}
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def route(self, method: str, path: str, handler: Handler) -> None:
        self._routes[(method, path)] = handler

    def reply(self, method: str, path: str, *answers: web.StreamResponse | Handler) -> None:
        """Answer ``method path`` with each answer in turn (the last one repeats)."""
        queue = list(answers)

        async def handler(request: web.Request) -> web.StreamResponse:
            answer = queue.pop(0) if len(queue) > 1 else queue[0]
            if isinstance(answer, web.StreamResponse):
                return _copy(answer)
            return await answer(request)

        self.route(method, path, handler)

    async def hang(self) -> None:
        """Never answer (until the server closes)."""
        await self._release.wait()

    async def start(self) -> None:
        app = web.Application(middlewares=[self._record], client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Recorded(request.method, request.path, dict(request.headers), body))
        self.raw_headers.append([(k.decode(), v.decode()) for k, v in request.raw_headers])
        return await handler(request)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        handler = self._routes.get((request.method, request.path))
        if handler is None:
            return web.json_response({"error": {"message": "no route"}}, status=404)
        return await handler(request)


def _copy(resp: web.StreamResponse) -> web.StreamResponse:
    # A web.Response can be sent once; a repeated answer needs a fresh one.
    assert isinstance(resp, web.Response)
    return web.Response(
        body=resp.body,  # type: ignore[arg-type]
        status=resp.status,
        headers={k: v for k, v in resp.headers.items() if k.lower() != "content-length"},
    )


def json_answer(body: Any, status: int = 200, **headers: str) -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers={"Content-Type": "application/json", **headers},
    )


def closed_port() -> int:
    """Return a port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class SleepRecorder:
    """A RetryPolicy ``sleep`` that records the waits asked for instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    """Yield a started local server; close it after the test."""
    srv = LocalServer()
    await srv.start()
    yield srv
    await srv.close()


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
async def client(server: LocalServer, sleeps: SleepRecorder) -> AsyncIterator[AsyncTTAPI]:
    """Yield a client of the local server whose retry waits are recorded, not slept."""
    async with AsyncTTAPI(
        api_key=API_KEY, base_url=server.url, retry_policy=RetryPolicy(sleep=sleeps)
    ) as c:
        yield c


class CountingSession:
    """A borrowed aiohttp session that counts every request it starts (a trace hook)."""

    def __init__(self) -> None:
        self.started = 0
        trace = aiohttp.TraceConfig()
        trace.on_request_start.append(self._count)
        self.session = aiohttp.ClientSession(trace_configs=[trace])

    async def _count(self, *_: object) -> None:
        self.started += 1


def text_answer(
    body: bytes, status: int = 200, content_type: str = "application/json"
) -> web.Response:
    return web.Response(body=body, status=status, headers={"Content-Type": content_type})
