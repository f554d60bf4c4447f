"""A server that echoes the key in broken HTTP, headers or job messages leaks it nowhere.

Issue 8, item 4: what leaves the client (the error, every link of its chain, the retry log
lines, ``exc.headers``, a ``JobFailedError`` and its ``.status``) passes through one
redaction choke point, ``ttapi_async._redact``.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

import pytest
from _support import API_KEY, GENERATIONS

from hostile.server import HostileServer, raw, respond
from ttapi_async import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    AsyncTTAPI,
    JobFailedError,
    TTAPIError,
)

FETCH = "/openai/4o-image/fetch"
KEY = API_KEY.encode()
# Any 8 characters of the key in a row are a leak.
WINDOWS = [API_KEY[i : i + 8] for i in range(len(API_KEY) - 7)]

ECHOES: dict[str, bytes] = {
    "status-line": b"HTTX/1.1 " + KEY + b" OK\r\nContent-Length: 2\r\n\r\n{}",
    "status-code": b"HTTP/1.1 2" + KEY + b" OK\r\nContent-Length: 2\r\n\r\n{}",
    "chunk-size": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + KEY + b"\r\nabc\r\n0\r\n\r\n"
    ),
    "header-line": b"HTTP/1.1 200 OK\r\nX-" + KEY + b"\r\nContent-Length: 2\r\n\r\n{}",
}


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < 50:
        current = todo.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
    return seen


def render(exc: BaseException) -> str:
    """Return all a user could print of an error: traceback, and each link's str/repr/attrs."""
    parts = ["".join(traceback.format_exception(exc))]
    for link in _chain(exc):
        parts += [repr(link), str(link), repr(link.args)]
        parts += [f"{k}={v!r}" for k, v in vars(link).items()]
    return "\n".join(parts)


def assert_clean(text: str) -> None:
    for window in WINDOWS:
        assert window not in text, f"{window!r} leaked"


@pytest.mark.parametrize("echo", list(ECHOES))
async def test_malformed_answer_quoting_the_key_leaks_it_nowhere(
    hostile: HostileServer,
    hostile_client: AsyncTTAPI,
    caplog: pytest.LogCaptureFixture,
    echo: str,
) -> None:
    """A broken status, chunk-size or header line with the key: clean error, chain, logs."""
    hostile.on(GENERATIONS, raw(ECHOES[echo]))
    with caplog.at_level(logging.DEBUG), pytest.raises(APIConnectionError) as info:
        await hostile_client.images.generate(prompt="a cat", model="gpt-image-1")
    assert "malformed HTTP answer" in str(info.value)
    assert_clean(render(info.value))
    assert_clean(caplog.text)


@pytest.mark.parametrize("echo", list(ECHOES))
async def test_retry_log_lines_of_a_key_echo_are_clean(
    hostile: HostileServer,
    hostile_client: AsyncTTAPI,
    caplog: pytest.LogCaptureFixture,
    echo: str,
) -> None:
    """A fetch (retried) answered with the key in a broken line logs its retries without it."""
    hostile.on(FETCH, raw(ECHOES[echo]))
    with caplog.at_level(logging.DEBUG), pytest.raises(APIConnectionError) as info:
        await hostile_client.gpt4o.fetch("job-1")
    assert len(hostile.requests) == 3  # retried twice: the retry lines were written
    assert any("retrying" in r.getMessage() for r in caplog.records)
    assert_clean(caplog.text)
    for record in caplog.records:
        assert_clean(record.getMessage())
    assert_clean(render(info.value))


async def test_echoed_response_header_is_redacted_in_exc_headers(
    hostile: HostileServer, hostile_client: AsyncTTAPI
) -> None:
    """A header echoing the key (name or value) is kept in ``exc.headers`` without it."""
    headers = {"X-Echo": f"key={API_KEY}", f"X-{API_KEY}": "1", "Retry-After": "120"}
    hostile.on(GENERATIONS, respond(400, headers, body={"error": {"message": "no"}}))
    with pytest.raises(APIStatusError) as info:
        await hostile_client.images.generate(prompt="a cat", model="gpt-image-1")
    assert_clean(repr(list(info.value.headers.items())))
    assert info.value.headers["Retry-After"] == "120"
    assert_clean(render(info.value))


async def test_failed_job_echoing_the_key_gives_a_clean_job_failed_error(
    hostile: HostileServer, hostile_client: AsyncTTAPI
) -> None:
    """A FAILED job whose message echoes the key: JobFailedError str, repr, .status clean."""
    failed = {
        "status": "FAILED",
        "jobId": "job-1",
        "message": f"invalid TT-API-KEY {API_KEY}",
        "data": {"prompt": f"echo {API_KEY}"},
    }
    hostile.on(FETCH, respond(200, body=failed))
    job = hostile_client.gpt4o.resume("job-1")  # no age: the first fetch comes at once
    with pytest.raises(JobFailedError) as info:
        await job.wait(timeout=30)
    error = info.value
    assert "***" in str(error)
    assert_clean(str(error) + repr(error) + repr(error.status) + render(error))
    assert_clean(repr(job.status))


async def test_job_message_spelling_the_key_in_escapes_is_redacted(
    hostile: HostileServer, hostile_client: AsyncTTAPI
) -> None:
    """A fetch whose message spells the key in \\u escapes (not its bytes) is still cleaned."""
    escaped = "".join(f"\\u{ord(c):04x}" for c in API_KEY)
    body = (
        '{"status": "ON_QUEUE", "jobId": "job-1", "message": "key ' + escaped + '", "data": null}'
    )
    assert KEY not in body.encode()
    hostile.on(FETCH, respond(200, body=body.encode()))
    status = await hostile_client.gpt4o.fetch("job-1")
    assert status.message == "key ***"


def _straddling(prefix: int) -> dict[str, Any]:
    # str() of this dict puts the key at character 11 + prefix: across the 200-character cut.
    return {"weird": "x" * prefix + API_KEY}


@pytest.mark.parametrize("prefix", [178, 182, 186, 189])
async def test_job_fetch_excerpt_shows_no_part_of_the_key(
    hostile: HostileServer, hostile_client: AsyncTTAPI, prefix: int
) -> None:
    """A fetch answer that is no job status quotes an excerpt holding no piece of the key."""
    hostile.on(FETCH, respond(200, body=_straddling(prefix)))
    with pytest.raises(APIResponseValidationError) as info:
        await hostile_client.gpt4o.fetch("job-1")
    assert info.value.excerpt  # an excerpt was quoted, and it is clean
    assert_clean(render(info.value))
    assert API_KEY[:4] not in info.value.excerpt


async def test_short_key_does_not_mangle_ordinary_messages(
    hostile: HostileServer, make_hostile_client: Any
) -> None:
    """With a one-letter key, "account blocked" reaches the caller whole."""
    client = make_hostile_client(api_key="b")
    hostile.on(GENERATIONS, respond(403, body={"error": {"message": "account blocked"}}))
    with pytest.raises(TTAPIError) as info:
        await client.images.generate(prompt="a cat", model="gpt-image-1")
    assert info.value.message == "account blocked"


async def test_stream_cut_by_a_chunk_size_line_quoting_the_key_is_clean(
    hostile: HostileServer, hostile_client: AsyncTTAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """An event stream whose second chunk-size line is the key fails clean, mid-stream."""
    event = b'data: {"type": "image_generation.partial_image", "b64_json": ""}\n\n'
    hostile.on(
        GENERATIONS,
        raw(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n%s\r\n" % (len(event), event)
            + KEY
            + b"\r\nabc\r\n0\r\n\r\n"
        ),
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(APIConnectionError) as info:
        async for _ in hostile_client.images.stream(prompt="a cat", model="gpt-image-1"):
            pass
    assert "malformed HTTP answer" in str(info.value)
    assert_clean(render(info.value))
    assert_clean(caplog.text)
