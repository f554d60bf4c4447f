"""Proxies: the client's own session honours HTTP(S)_PROXY / NO_PROXY and ``proxy=``."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import attrs
import pytest
from _support import GENERATION_OK, LocalServer, json_answer
from _support import server as server

from ttapi_async import APIConnectionError, AsyncTTAPI
from ttapi_async.testing import FakeTTAPI

KEY = "tt-PROXY-SECRET-0123456789"


@attrs.define
class LoopbackProxy:
    """A tiny HTTP proxy on 127.0.0.1: forwards plain requests, refuses CONNECT, counts."""

    hits: int = 0
    request_lines: list[str] = attrs.Factory(list)
    received: bytearray = attrs.Factory(bytearray)
    server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.hits += 1
            self.received += head
            line, *header_lines = head.decode("latin-1").split("\r\n")
            self.request_lines.append(line)
            method, target, _version = line.split(" ", 2)
            if method == "CONNECT":
                # What was sent so far is all a proxy of an https URL may ever see in clear.
                writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                return
            length = 0
            for header in header_lines:
                name, _, value = header.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            self.received += body
            await self._forward(method, target, header_lines, body, writer)
        finally:
            writer.close()

    async def _forward(
        self,
        method: str,
        target: str,
        header_lines: list[str],
        body: bytes,
        writer: asyncio.StreamWriter,
    ) -> None:
        assert target.startswith("http://"), target
        hostport, _, path = target[len("http://") :].partition("/")
        host, _, port = hostport.partition(":")
        up_reader, up_writer = await asyncio.open_connection(host, int(port or 80))
        kept = [h for h in header_lines if h and not h.lower().startswith(("connection", "proxy"))]
        upstream_head = "\r\n".join([f"{method} /{path} HTTP/1.1", *kept, "Connection: close"])
        up_writer.write(upstream_head.encode("latin-1") + b"\r\n\r\n" + body)
        await up_writer.drain()
        writer.write(await up_reader.read())
        await writer.drain()
        up_writer.close()
        await up_writer.wait_closed()


@pytest.fixture
async def proxy() -> AsyncIterator[LoopbackProxy]:
    """Yield a started loopback proxy."""
    p = LoopbackProxy()
    p.server = await asyncio.start_server(p.handle, "127.0.0.1", 0)
    yield p
    p.server.close()
    await p.server.wait_closed()


@pytest.fixture
async def fake() -> AsyncIterator[FakeTTAPI]:
    """Yield a FakeTTAPI that accepts KEY."""
    async with FakeTTAPI(api_key=KEY) as f:
        yield f


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_http_proxy_variable_is_honoured(
    proxy: LoopbackProxy, fake: FakeTTAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With HTTP_PROXY set, a request to an http base URL goes through the proxy."""
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    async with AsyncTTAPI(api_key=KEY, base_url=fake.url) as client:
        r = await client.images.generate(prompt="a cat", model="gpt-image-1")
    assert r.data
    assert proxy.hits == 1
    assert proxy.request_lines[0].startswith(f"POST {fake.url}/v1/images/generations ")


async def test_no_proxy_variable_bypasses_the_proxy(
    proxy: LoopbackProxy, fake: FakeTTAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host listed in NO_PROXY is reached directly."""
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with AsyncTTAPI(api_key=KEY, base_url=fake.url) as client:
        await client.images.generate(prompt="a cat", model="gpt-image-1")
    assert proxy.hits == 0


async def test_trust_env_false_ignores_the_variables(
    proxy: LoopbackProxy, fake: FakeTTAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """trust_env=False reaches the server directly whatever HTTP_PROXY says."""
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    async with AsyncTTAPI(api_key=KEY, base_url=fake.url, trust_env=False) as client:
        await client.images.generate(prompt="a cat", model="gpt-image-1")
    assert proxy.hits == 0


async def test_proxy_option_is_used(proxy: LoopbackProxy, fake: FakeTTAPI) -> None:
    """proxy= sends requests through the named proxy with no variable set."""
    async with AsyncTTAPI(api_key=KEY, base_url=fake.url, proxy=proxy.url) as client:
        r = await client.images.generate(prompt="a cat", model="gpt-image-1")
        await client.images.generate(prompt="a dog", model="gpt-image-1")
    assert r.data
    assert proxy.hits == 2


@pytest.mark.parametrize("how", ["env", "option"])
async def test_https_goes_through_connect_and_the_key_never_reaches_the_proxy(
    proxy: LoopbackProxy, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """For an https base URL the proxy sees only a CONNECT, never the key or the body."""
    # A loopback port nothing listens on: even a bypassed proxy sends nothing off the machine.
    base_url = f"https://127.0.0.1:{_closed_port()}"
    if how == "env":
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        client = AsyncTTAPI(api_key=KEY, base_url=base_url, max_retries=0)
    else:
        client = AsyncTTAPI(api_key=KEY, base_url=base_url, max_retries=0, proxy=proxy.url)
    async with client:
        with pytest.raises(APIConnectionError):
            await client.images.generate(prompt="a secret cat", model="gpt-image-1")
    assert proxy.hits == 1
    assert proxy.request_lines == [f"CONNECT {base_url[len('https://') :]} HTTP/1.1"]
    assert KEY.encode() not in proxy.received
    assert b"secret cat" not in proxy.received


async def test_downloads_go_through_the_environment_proxy(
    proxy: LoopbackProxy, fake: FakeTTAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With HTTP_PROXY set, an image URL's download goes through the proxy as the API call does."""
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    async with AsyncTTAPI(api_key=KEY, base_url=fake.url) as client:
        r = await client.images.generate(prompt="a cat", model="dall-e-2", response_format="url")
        url = r.data[0].url
        assert url is not None
        assert await r.data[0].read()
    assert [line.split(" ")[:2] for line in proxy.request_lines] == [
        ["POST", f"{fake.url}/v1/images/generations"],
        ["GET", url],
    ]


async def test_no_proxy_variable_bypasses_the_proxy_for_downloads(
    proxy: LoopbackProxy, fake: FakeTTAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A download host listed in NO_PROXY is reached directly, as API calls to it are."""
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with AsyncTTAPI(api_key=KEY, base_url=fake.url) as client:
        r = await client.images.generate(prompt="a cat", model="dall-e-2", response_format="url")
        assert await r.data[0].read()
    assert proxy.hits == 0


async def test_api_calls_look_up_no_proxy_in_a_worker_thread(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With trust_env on, API calls run nothing in a thread (aiohttp's did, twice a call)."""
    server.reply("POST", "/v1/images/generations", json_answer(GENERATION_OK))
    loop = asyncio.get_running_loop()
    offloaded: list[object] = []
    real = loop.run_in_executor

    def counting(executor: object, func: object, *args: object) -> object:
        offloaded.append(func)
        return real(executor, func, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "run_in_executor", counting)
    async with AsyncTTAPI(api_key=KEY, base_url=server.url) as client:
        for _ in range(3):
            await client.images.generate(prompt="a cat", model="gpt-image-1")
    assert offloaded == []
