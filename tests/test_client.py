"""AsyncTTAPI: configuration, the session's lifecycle, and how failures reach the caller."""

from __future__ import annotations

import asyncio
import gc
import socket
import time
from collections.abc import Iterator

import aiohttp
import pytest
from _garbage import others_garbage_collected as others_garbage_collected
from _support import (
    API_KEY,
    GENERATION_OK,
    GENERATIONS,
    LocalServer,
    SleepRecorder,
    closed_port,
    json_answer,
)
from _support import client as client
from _support import server as server
from _support import sleeps as sleeps
from aiohttp import web

from ttapi_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncTTAPI,
    BadRequestError,
    ImagesResponse,
    InvalidRequestError,
    RetryPolicy,
    TTAPIError,
)
from ttapi_async._client import DEFAULT_BASE_URL, RequestOptions


async def _generate(c: AsyncTTAPI, **kwargs: object) -> ImagesResponse:
    return await c.images.generate(prompt="a cat", model="gpt-image-1", **kwargs)  # type: ignore[arg-type]


# --- configuration -------------------------------------------------------------------------


def test_api_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``api_key``, the client reads TTAPI_API_KEY."""
    monkeypatch.setenv("TTAPI_API_KEY", API_KEY)
    assert AsyncTTAPI()._api_key == API_KEY


def test_missing_api_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """No key at all raises TTAPIError naming both ways to give one."""
    monkeypatch.delenv("TTAPI_API_KEY", raising=False)
    with pytest.raises(TTAPIError, match=r"api_key=.*TTAPI_API_KEY"):
        AsyncTTAPI()


def test_base_url_defaults_to_the_vendor(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``base_url`` or TTAPI_BASE_URL, the client talks to api.ttapi.io."""
    monkeypatch.delenv("TTAPI_BASE_URL", raising=False)
    assert AsyncTTAPI(api_key=API_KEY).base_url == DEFAULT_BASE_URL == "https://api.ttapi.io"


def test_base_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """TTAPI_BASE_URL sets the base URL, without its trailing slash."""
    monkeypatch.setenv("TTAPI_BASE_URL", "https://api.ttapi.org/")
    assert AsyncTTAPI(api_key=API_KEY).base_url == "https://api.ttapi.org"


@pytest.mark.parametrize(
    "kwargs", [{"max_retries": -1}, {"max_connections": 0}], ids=["retries", "connections"]
)
def test_nonsense_limits_are_rejected(kwargs: dict[str, int]) -> None:
    """A negative retry count or zero connections raise ValueError at construction."""
    with pytest.raises(ValueError):
        AsyncTTAPI(api_key=API_KEY, **kwargs)  # type: ignore[arg-type]


def test_construction_opens_no_session() -> None:
    """A client built outside any event loop holds no session until it is used."""
    c = AsyncTTAPI(api_key=API_KEY)
    assert c._session is None and not c.closed


async def test_requests_carry_the_key_header_and_json(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """A request sends ``TT-API-KEY`` (exact case), a JSON content type and our User-Agent."""
    server.reply("POST", GENERATIONS, json_answer(GENERATION_OK))
    await _generate(client)
    (req,) = server.requests
    assert req.headers["TT-API-KEY"] == API_KEY
    assert "TT-API-KEY" in req.headers  # the vendor's name is case-sensitive
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["User-Agent"].startswith("ttapi_async/")


async def test_default_and_extra_headers_are_sent(server: LocalServer) -> None:
    """Client ``default_headers`` and per-call ``extra_headers`` both reach the server."""
    server.reply("POST", GENERATIONS, json_answer(GENERATION_OK))
    async with AsyncTTAPI(
        api_key=API_KEY, base_url=server.url, default_headers={"X-Team": "art"}
    ) as c:
        await _generate(c, extra_headers={"X-Trace": "t1"})
    (req,) = server.requests
    assert (req.headers["X-Team"], req.headers["X-Trace"]) == ("art", "t1")


async def test_extra_headers_do_not_leak_into_the_next_call(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """Per-call headers apply to that call only."""
    server.reply("POST", GENERATIONS, json_answer(GENERATION_OK))
    await _generate(client, extra_headers={"X-Trace": "t1"})
    await _generate(client)
    assert "X-Trace" not in server.requests[1].headers


# --- lifecycle -----------------------------------------------------------------------------


async def test_aclose_closes_the_owned_session(server: LocalServer) -> None:
    """Closing the client closes the session it created."""
    server.reply("POST", GENERATIONS, json_answer(GENERATION_OK))
    c = AsyncTTAPI(api_key=API_KEY, base_url=server.url)
    await _generate(c)
    session = c._session
    assert session is not None
    await c.aclose()
    assert session.closed and c.closed and c._session is None


async def test_aclose_leaves_a_borrowed_session_open(server: LocalServer) -> None:
    """A session the caller passed in is used, never closed by the client."""
    server.reply("POST", GENERATIONS, json_answer(GENERATION_OK))
    async with aiohttp.ClientSession() as session:
        async with AsyncTTAPI(api_key=API_KEY, base_url=server.url, session=session) as c:
            await _generate(c)
        assert not session.closed
        assert len(server.requests) == 1


async def test_borrowed_session_raising_for_status_still_gives_typed_errors(
    server: LocalServer,
) -> None:
    """A borrowed session built with ``raise_for_status=True`` does not change our errors."""
    server.reply("POST", GENERATIONS, json_answer({"error": {"message": "bad size"}}, 400))
    async with (
        aiohttp.ClientSession(raise_for_status=True) as session,
        AsyncTTAPI(api_key=API_KEY, base_url=server.url, session=session) as c,
    ):
        with pytest.raises(BadRequestError, match="bad size"):
            await _generate(c)


async def test_closed_client_refuses_requests() -> None:
    """A request on a closed client raises RuntimeError."""
    c = AsyncTTAPI(api_key=API_KEY, base_url="http://127.0.0.1:9")
    await c.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await _generate(c)


async def test_closed_client_cannot_be_reentered() -> None:
    """``async with`` on a closed client raises RuntimeError."""
    c = AsyncTTAPI(api_key=API_KEY)
    await c.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        async with c:
            pass


async def test_aclose_twice_is_harmless() -> None:
    """A second ``aclose()`` does nothing."""
    c = AsyncTTAPI(api_key=API_KEY)
    await c.aclose()
    await c.aclose()
    assert c.closed


async def test_aclose_runs_close_callbacks_once() -> None:
    """Callbacks registered with ``_on_close`` run once, before the session goes."""
    c = AsyncTTAPI(api_key=API_KEY)
    calls: list[bool] = []

    async def callback() -> None:
        calls.append(c._session is None)

    c._on_close(callback)
    c._get_session()
    await c.aclose()
    await c.aclose()
    assert calls == [False]


@pytest.mark.usefixtures("others_garbage_collected")
async def test_aclose_leaves_no_task_and_no_socket(server: LocalServer) -> None:
    """After many requests and ``aclose()``, no task is left and no socket stays open."""
    server.reply("POST", GENERATIONS, json_answer(GENERATION_OK))
    before = set(asyncio.all_tasks())
    c = AsyncTTAPI(api_key=API_KEY, base_url=server.url)
    await asyncio.gather(*(_generate(c) for _ in range(10)))
    session = c._session
    assert session is not None and session.connector is not None
    connector = session.connector
    await c.aclose()
    assert connector.closed
    assert _client_tasks() == _client_tasks(before)
    gc.collect()  # an unclosed transport would warn here (warnings are errors)


def _client_tasks(tasks: set[asyncio.Task[object]] | None = None) -> set[asyncio.Task[object]]:
    # The local server's own connection handlers live in this loop too; they are not ours.
    return {
        t
        for t in (asyncio.all_tasks() if tasks is None else tasks)
        if not t.get_coro().__qualname__.startswith("RequestHandler.")  # type: ignore[union-attr]
    }


# --- failures on the wire ------------------------------------------------------------------


async def test_connection_refused_is_connection_error_not_submitted() -> None:
    """A refused connection raises APIConnectionError, marked as not submitted."""
    async with AsyncTTAPI(
        api_key=API_KEY, base_url=f"http://127.0.0.1:{closed_port()}", max_retries=0
    ) as c:
        with pytest.raises(APIConnectionError, match="cannot connect") as info:
            await _generate(c)
    assert not info.value.possibly_submitted
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectorError)


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """Yield a port whose listen backlog is full: a connection to it never completes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for sock in [*fillers, listener]:
        sock.close()


async def test_connect_timeout_is_timeout_not_submitted(unanswered_port: int) -> None:
    """A connect that times out raises APITimeoutError, marked as not submitted."""
    async with AsyncTTAPI(
        api_key=API_KEY,
        base_url=f"http://127.0.0.1:{unanswered_port}",
        connect_timeout=0.05,
        max_retries=0,
    ) as c:
        with pytest.raises(APITimeoutError, match="connecting") as info:
            await _generate(c)
    assert not info.value.possibly_submitted


async def test_connect_timeout_is_retried_for_paid_post(
    unanswered_port: int, sleeps: SleepRecorder
) -> None:
    """A paid POST whose connect timed out (nothing sent) is retried."""
    async with AsyncTTAPI(
        api_key=API_KEY,
        base_url=f"http://127.0.0.1:{unanswered_port}",
        connect_timeout=0.05,
        max_retries=1,
        retry_policy=RetryPolicy(sleep=sleeps),
    ) as c:
        with pytest.raises(APITimeoutError):
            await _generate(c)
    assert len(sleeps.waits) == 1


async def test_read_timeout_is_timeout_possibly_submitted(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """A server that accepts and never answers gives APITimeoutError(possibly_submitted)."""
    server.route("POST", GENERATIONS, lambda _: server.hang())  # type: ignore[arg-type,return-value]
    started = time.perf_counter()
    with pytest.raises(APITimeoutError, match="may have been processed") as info:
        await _generate(client, timeout=0.05)
    assert info.value.possibly_submitted
    assert time.perf_counter() - started < 2.0


async def test_client_timeout_applies_to_every_call(server: LocalServer) -> None:
    """The client's ``timeout`` bounds a call that passes none."""
    server.route("POST", GENERATIONS, lambda _: server.hang())  # type: ignore[arg-type,return-value]
    async with AsyncTTAPI(api_key=API_KEY, base_url=server.url, timeout=0.05) as c:
        with pytest.raises(APITimeoutError):
            await _generate(c)


async def test_call_timeout_overrides_client_timeout(server: LocalServer) -> None:
    """A per-call ``timeout`` wins over the client's: 0.05 s under a client's 30 s."""
    server.route("POST", GENERATIONS, lambda _: server.hang())  # type: ignore[arg-type,return-value]
    async with AsyncTTAPI(api_key=API_KEY, base_url=server.url, timeout=30.0) as c:
        started = time.perf_counter()
        with pytest.raises(APITimeoutError):
            await _generate(c, timeout=0.05)
    assert time.perf_counter() - started < 5.0


def test_call_timeout_none_means_no_limit() -> None:
    """``timeout=None`` on a call lifts the client's total timeout for that call."""
    c = AsyncTTAPI(api_key=API_KEY, timeout=1.0, connect_timeout=2.0)
    unlimited = c._client_timeout(RequestOptions(timeout=None))
    assert unlimited.total is None and unlimited.sock_connect == 2.0
    assert c._client_timeout(None).total == 1.0


async def test_disconnect_after_sending_is_possibly_submitted(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """A server that drops the connection after reading raises APIConnectionError(possibly)."""

    async def drop(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        return await server.hang()  # type: ignore[func-returns-value]

    server.route("POST", GENERATIONS, drop)
    with pytest.raises(APIConnectionError) as info:
        await _generate(client)
    assert info.value.possibly_submitted
    assert not isinstance(info.value, APITimeoutError)
    assert len(server.requests) == 1  # not retried: the work may have started


async def test_garbage_http_answer_is_connection_error(client: AsyncTTAPI) -> None:
    """Bytes that are not HTTP raise APIConnectionError, not an aiohttp exception."""

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        async with AsyncTTAPI(
            api_key=API_KEY, base_url=f"http://127.0.0.1:{port}", max_retries=0
        ) as c:
            with pytest.raises(APIConnectionError) as info:
                await _generate(c)
        assert info.value.possibly_submitted
    finally:
        srv.close()
        await srv.wait_closed()


async def test_cancellation_passes_through_untouched(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """Cancelling a call raises CancelledError itself, not a wrapped error, and sends once."""
    arrived = asyncio.Event()

    async def hang(_: web.Request) -> web.Response:
        arrived.set()
        return await server.hang()  # type: ignore[func-returns-value]

    server.route("POST", GENERATIONS, hang)
    task = asyncio.create_task(_generate(client))
    await arrived.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert len(server.requests) == 1


async def test_cancellation_during_backoff_is_not_swallowed(server: LocalServer) -> None:
    """Cancelling a call while it waits to retry raises CancelledError and stops retrying."""
    server.reply("POST", GENERATIONS, json_answer({"error": {"message": "busy"}}, 503))
    waiting = asyncio.Event()

    async def sleep(_: float) -> None:
        waiting.set()
        await asyncio.Event().wait()

    async with AsyncTTAPI(
        api_key=API_KEY, base_url=server.url, retry_policy=RetryPolicy(sleep=sleep)
    ) as c:
        task = asyncio.create_task(_generate(c))
        await waiting.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(server.requests) == 1


async def test_user_timeout_around_a_call_is_not_translated(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """``asyncio.wait_for`` around a call raises the caller's own timeout, not ours."""
    server.route("POST", GENERATIONS, lambda _: server.hang())  # type: ignore[arg-type,return-value]
    with pytest.raises(asyncio.TimeoutError) as info:
        await asyncio.wait_for(_generate(client), 0.05)
    assert not isinstance(info.value, APITimeoutError)


async def test_concurrent_calls_share_one_session(server: LocalServer, client: AsyncTTAPI) -> None:
    """Fifty concurrent calls all succeed through one session."""
    server.reply("POST", GENERATIONS, json_answer(GENERATION_OK))
    session = client._get_session()
    results = await asyncio.gather(*(_generate(client) for _ in range(50)))
    assert len(results) == 50 and client._session is session


async def test_retry_policy_count_stands_without_max_retries(
    server: LocalServer, sleeps: SleepRecorder
) -> None:
    """``retry_policy=RetryPolicy(max_retries=3)`` alone allows four attempts."""
    server.reply("POST", GENERATIONS, json_answer({"error": {"message": "busy"}}, 503))
    policy = RetryPolicy(max_retries=3, sleep=sleeps)
    async with AsyncTTAPI(api_key=API_KEY, base_url=server.url, retry_policy=policy) as c:
        with pytest.raises(APIStatusError):
            await _generate(c)
    assert len(server.requests) == 4


async def test_max_retries_wins_over_the_policy(server: LocalServer, sleeps: SleepRecorder) -> None:
    """Given both, the client's ``max_retries`` replaces the policy's count."""
    server.reply("POST", GENERATIONS, json_answer({"error": {"message": "busy"}}, 503))
    policy = RetryPolicy(max_retries=3, sleep=sleeps)
    async with AsyncTTAPI(
        api_key=API_KEY, base_url=server.url, retry_policy=policy, max_retries=0
    ) as c:
        with pytest.raises(APIStatusError):
            await _generate(c)
    assert len(server.requests) == 1


@pytest.mark.parametrize("base_url", ["ftp://127.0.0.1:9", "http://"])
async def test_invalid_base_url_is_invalid_request_not_retried(
    base_url: str, sleeps: SleepRecorder
) -> None:
    """A base URL aiohttp cannot use raises InvalidRequestError at once, with no retry."""
    async with AsyncTTAPI(
        api_key=API_KEY, base_url=base_url, retry_policy=RetryPolicy(sleep=sleeps)
    ) as c:
        with pytest.raises(InvalidRequestError, match="URL"):
            await _generate(c)
    assert sleeps.waits == []


async def test_truncated_http_body_is_connection_error(client: AsyncTTAPI) -> None:
    """An answer cut short of its Content-Length raises APIConnectionError(possibly)."""

    async def short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
            b'{"created": 1, "da'
        )
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(short, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        async with AsyncTTAPI(api_key=API_KEY, base_url=f"http://127.0.0.1:{port}") as c:
            with pytest.raises(APIConnectionError) as info:
                await _generate(c)
        assert info.value.possibly_submitted
    finally:
        srv.close()
        await srv.wait_closed()


async def test_default_headers_replace_ours_whatever_their_case(server: LocalServer) -> None:
    """A caller's ``user-agent`` replaces ours (one header is sent), but never the key."""
    server.reply("POST", GENERATIONS, json_answer(GENERATION_OK))
    async with AsyncTTAPI(
        api_key=API_KEY,
        base_url=server.url,
        default_headers={"user-agent": "mine/1", "tt-api-key": "other"},
    ) as c:
        await _generate(c, extra_headers={"accept": "application/x-test"})
    (req,) = server.requests
    raw = server.raw_headers[0]
    assert [v for k, v in raw if k.lower() == "user-agent"] == ["mine/1"]
    assert [v for k, v in raw if k.lower() == "tt-api-key"] == [API_KEY]
    assert [v for k, v in raw if k.lower() == "accept"] == ["application/x-test"]
    assert req.headers["TT-API-KEY"] == API_KEY


def test_per_call_timeouts_are_not_cached() -> None:
    """Per-call timeouts (say, what is left of a deadline) do not pile up in a cache."""
    c = AsyncTTAPI(api_key=API_KEY)
    for i in range(100):
        c._client_timeout(RequestOptions(timeout=1.0 + i / 1000))
    c._client_timeout(None)
    assert len(c._timeouts) == 1


async def test_aclose_closes_the_session_even_if_a_callback_fails() -> None:
    """A failing close callback is raised, and the owned session is closed all the same."""
    c = AsyncTTAPI(api_key=API_KEY)
    session = c._get_session()

    async def broken() -> None:
        raise RuntimeError("watcher broke")

    c._on_close(broken)
    with pytest.raises(RuntimeError, match="watcher broke"):
        await c.aclose()
    assert session.closed and c.closed


# --- the hot path's shortcuts keep their meaning -------------------------------------------


def test_client_timeout_follows_changes_to_the_attributes() -> None:
    """``client.timeout`` / ``connect_timeout`` changed after construction apply to new calls."""
    c = AsyncTTAPI(api_key=API_KEY, timeout=10.0, connect_timeout=3.0)
    first = c._client_timeout(None)
    assert (first.total, first.sock_connect) == (10.0, 3.0)
    assert c._client_timeout(None) is first
    c.timeout = 20.0
    assert (c._client_timeout(None).total, c._client_timeout(None).sock_connect) == (20.0, 3.0)
    c.connect_timeout = None
    assert c._client_timeout(None).sock_connect is None
    c.timeout, c.connect_timeout = 10.0, 3.0
    assert c._client_timeout(None) is first


def test_url_joins_paths_and_keeps_full_urls() -> None:
    c = AsyncTTAPI(api_key=API_KEY, base_url="http://127.0.0.1:9/")
    assert c._url("/v1/images/generations") == "http://127.0.0.1:9/v1/images/generations"
    assert c._url("https://cdn.example/a.png") == "https://cdn.example/a.png"
    assert c._url("http://cdn.example/a.png") == "http://cdn.example/a.png"
    assert c._url("v1/x") == "http://127.0.0.1:9v1/x"  # as before: no slash is added


async def test_calls_give_their_connection_back(server: LocalServer) -> None:
    """Successes and error answers alike release the connection: one socket serves them all."""
    server.reply("POST", GENERATIONS, json_answer(GENERATION_OK))
    async with AsyncTTAPI(api_key=API_KEY, base_url=server.url, max_connections=1) as c:
        for _ in range(3):
            await _generate(c)
        server.reply("POST", GENERATIONS, json_answer({"error": {"message": "no"}}, status=400))
        for _ in range(2):
            with pytest.raises(BadRequestError):
                await _generate(c)
        server.reply("POST", GENERATIONS, json_answer(GENERATION_OK))
        await asyncio.wait_for(_generate(c), timeout=5)
        session = c._get_session()
        connector = session.connector
        assert connector is not None
        assert len(connector._acquired) == 0  # nothing left checked out
