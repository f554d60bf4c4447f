"""The API key appears in no error message, repr, traceback or log record, whatever is echoed."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from _support import API_KEY, DALLE3, GENERATIONS, LocalServer, json_answer, text_answer
from _support import client as client
from _support import server as server
from _support import sleeps as sleeps
from aiohttp import web

from ttapi_async import AsyncTTAPI, RetryPolicy, TTAPIError
from ttapi_async._client import RequestOptions

# Any 8 characters of the key would be a leak; the key itself is the obvious one.
FRAGMENTS = [API_KEY, API_KEY[:12], API_KEY[-12:]]


def _render(exc: BaseException) -> str:
    """Return everything a user could print about an error, its causes included."""
    parts = ["".join(traceback.format_exception(exc)), repr(exc), str(exc)]
    for name, value in vars(exc).items():
        if name != "headers":  # response headers are the server's, shown nowhere
            parts.append(f"{name}={value!r}")
    return "\n".join(parts)


def _assert_clean(text: str) -> None:
    for fragment in FRAGMENTS:
        assert fragment not in text


def _sse(*payloads: dict[str, Any] | str) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for p in payloads:
            data = p if isinstance(p, str) else json.dumps(p)
            await resp.write(f"data: {data}\n\n".encode())
        await resp.write_eof()
        return resp

    return handler


async def _generate(c: AsyncTTAPI) -> Any:
    return await c.images.generate(prompt="a cat", model="gpt-image-1")


async def _dalle3(c: AsyncTTAPI) -> Any:
    return await c.dalle3.generate(prompt="a cat", size="1024x1024")


async def _stream(c: AsyncTTAPI) -> Any:
    return [e async for e in c.images.stream(prompt="a cat", model="gpt-image-1")]


ECHO = f"key {API_KEY} rejected"
# A key that starts 12 characters before the 200-character excerpt cut.
STRADDLE = ("<html>" + "x" * 182 + API_KEY + "y" * 300 + "</html>").encode()

SCENARIOS: dict[str, tuple[str, Any, Callable[[AsyncTTAPI], Awaitable[Any]]]] = {
    "openai-400": (
        GENERATIONS,
        json_answer({"error": {"message": ECHO, "param": API_KEY, "code": API_KEY}}, 400),
        _generate,
    ),
    "envelope-401": (DALLE3, json_answer({"status": "FAILED", "message": ECHO}, 401), _dalle3),
    "envelope-200-failed": (
        DALLE3,
        json_answer({"status": "FAILED", "message": ECHO, "data": {"echo": API_KEY}}),
        _dalle3,
    ),
    "html-500-straddling-cut": (GENERATIONS, text_answer(STRADDLE, 500, "text/html"), _generate),
    "html-200-straddling-cut": (GENERATIONS, text_answer(STRADDLE, 200, "text/html"), _generate),
    "json-200-wrong-type": (GENERATIONS, json_answer({"created": API_KEY}), _generate),
    "json-200-wrong-nested": (
        GENERATIONS,
        json_answer({"created": 1, "usage": {"total_tokens": API_KEY}}),
        _generate,
    ),
    "json-200-array": (GENERATIONS, json_answer([API_KEY]), _generate),
    "dalle3-no-envelope": (DALLE3, json_answer({"echo": API_KEY}), _dalle3),
    "stream-error-event": (
        GENERATIONS,
        _sse({"type": "error", "error": {"message": ECHO, "param": API_KEY}}),
        _stream,
    ),
    "stream-bad-json": (GENERATIONS, _sse("{" + API_KEY), _stream),
    "stream-bad-event": (
        GENERATIONS,
        _sse({"type": "image_generation.completed", "created_at": API_KEY}),
        _stream,
    ),
    "stream-json-answer": (GENERATIONS, json_answer({"echo": API_KEY}), _stream),
    "stream-json-error": (GENERATIONS, json_answer({"error": {"message": ECHO}}), _stream),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_echoed_key_is_redacted_everywhere(
    server: LocalServer, client: AsyncTTAPI, caplog: pytest.LogCaptureFixture, scenario: str
) -> None:
    """An answer echoing the key yields an error, traceback and DEBUG log without it."""
    path, answer, call = SCENARIOS[scenario]
    if isinstance(answer, web.Response):
        server.reply("POST", path, answer)
    else:
        server.route("POST", path, answer)
    with caplog.at_level(logging.DEBUG), pytest.raises(TTAPIError) as info:
        await call(client)
    _assert_clean(_render(info.value))
    _assert_clean("\n".join(caplog.text.splitlines()))
    for record in caplog.records:
        _assert_clean(record.getMessage())


async def test_retry_logs_do_not_show_the_key(
    server: LocalServer, client: AsyncTTAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """Retry log records, which quote the error, never show an echoed key."""
    server.reply("POST", GENERATIONS, json_answer({"error": {"message": ECHO}}, 429))
    with caplog.at_level(logging.DEBUG), pytest.raises(TTAPIError):
        await _generate(client)
    assert any("retrying" in r.getMessage() for r in caplog.records)
    _assert_clean(caplog.text)


async def test_successful_call_logs_at_debug_without_the_key(
    server: LocalServer, client: AsyncTTAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """The DEBUG line of a request names method, path and status, never the key."""
    server.reply("POST", GENERATIONS, json_answer({"created": 1, "data": []}))
    with caplog.at_level(logging.DEBUG, logger="ttapi_async"):
        await _generate(client)
    lines = [r.getMessage() for r in caplog.records if r.name == "ttapi_async"]
    assert any(
        line.startswith("POST ") and "/v1/images/generations -> 200" in line for line in lines
    )
    _assert_clean(caplog.text)


async def test_client_repr_hides_the_key() -> None:
    """``repr(client)`` and ``str(client)`` show the URL and state, never the key."""
    c = AsyncTTAPI(api_key=API_KEY, base_url="http://127.0.0.1:9")
    try:
        _assert_clean(repr(c) + str(c) + repr(c.retry_policy) + repr(c._redact))
        assert "127.0.0.1:9" in repr(c)
    finally:
        await c.aclose()


def test_request_options_repr_shows_no_key() -> None:
    """Per-call options never carry the key, so their repr cannot show it."""
    _assert_clean(repr(RequestOptions(timeout=1.0, extra_headers={"X-Trace": "t"})))


def test_retry_policy_repr_is_key_free() -> None:
    """A RetryPolicy holds no secret."""
    _assert_clean(repr(RetryPolicy()))
