"""Every status of docs/contract.md, in both error shapes, on every endpoint; bad bodies."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from _support import (
    DALLE3,
    EDITS,
    GENERATION_OK,
    GENERATIONS,
    PNG,
    LocalServer,
    json_answer,
    text_answer,
)
from _support import client as client
from _support import server as server
from _support import sleeps as sleeps

from ttapi_async import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncTTAPI,
    AuthenticationError,
    BadRequestError,
    InsufficientQuotaError,
    InternalServerError,
    InvalidRequestError,
    JobFailedError,
    JobTimeoutError,
    NotFoundError,
    PermissionDeniedError,
    QueueFullError,
    RateLimitError,
    TTAPIError,
)
from ttapi_async._errors import status_error_class

STATUSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: InsufficientQuotaError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
    499: QueueFullError,
    500: InternalServerError,
    504: InternalServerError,
}

Call = Callable[[AsyncTTAPI], Awaitable[Any]]


async def _generate(c: AsyncTTAPI) -> Any:
    return await c.images.generate(prompt="a cat", model="gpt-image-1", max_retries=0)


async def _edit_files(c: AsyncTTAPI) -> Any:
    return await c.images.edit(prompt="a hat", image=PNG, model="gpt-image-1", max_retries=0)


async def _edit_urls(c: AsyncTTAPI) -> Any:
    return await c.images.edit(
        prompt="a hat", image="https://cdn.example/a.png", model="gpt-image-1", max_retries=0
    )


async def _dalle3(c: AsyncTTAPI) -> Any:
    return await c.dalle3.generate(prompt="a cat", size="1024x1024", max_retries=0)


ENDPOINTS: dict[str, tuple[str, Call]] = {
    "generate": (GENERATIONS, _generate),
    "edit-multipart": (EDITS, _edit_files),
    "edit-json": (EDITS, _edit_urls),
    "dalle3": (DALLE3, _dalle3),
}


def _openai_shape(status: int) -> dict[str, Any]:
    return {
        "error": {
            "message": f"problem {status}",
            "type": "invalid_request_error",
            "param": "size",
            "code": "bad_size",
        }
    }


def _envelope_shape(status: int) -> dict[str, Any]:
    return {"status": "FAILED", "message": f"problem {status}", "data": None}


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("shape", [_openai_shape, _envelope_shape], ids=["openai", "envelope"])
@pytest.mark.parametrize("status", list(STATUSES))
async def test_status_maps_to_its_error(
    server: LocalServer, client: AsyncTTAPI, endpoint: str, shape: Any, status: int
) -> None:
    """Each documented status, in either error shape, raises its class with the server's message."""
    url, call = ENDPOINTS[endpoint]
    server.reply("POST", url, json_answer(shape(status), status))
    with pytest.raises(STATUSES[status]) as info:
        await call(client)
    assert info.value.status_code == status
    assert info.value.message == f"problem {status}"
    assert info.value.body == shape(status)


async def test_openai_shape_keeps_param_and_code(server: LocalServer, client: AsyncTTAPI) -> None:
    """An OpenAI-shaped error exposes its ``param`` and ``code``."""
    server.reply("POST", GENERATIONS, json_answer(_openai_shape(400), 400))
    with pytest.raises(BadRequestError) as info:
        await _generate(client)
    assert (info.value.param, info.value.code) == ("size", "bad_size")


async def test_error_keeps_response_headers(server: LocalServer, client: AsyncTTAPI) -> None:
    """A status error carries the answer's headers (Retry-After, request ids)."""
    server.reply(
        "POST", GENERATIONS, json_answer(_openai_shape(429), 429, **{"X-Request-Id": "r1"})
    )
    with pytest.raises(RateLimitError) as info:
        await _generate(client)
    assert info.value.headers["X-Request-Id"] == "r1"


@pytest.mark.parametrize("endpoint", ["generate", "dalle3"])
async def test_failed_envelope_under_200_raises(
    server: LocalServer, client: AsyncTTAPI, endpoint: str
) -> None:
    """HTTP 200 with ``"status": "FAILED"`` is an error (BadRequestError, status_code 200)."""
    url, call = ENDPOINTS[endpoint]
    server.reply("POST", url, json_answer({"status": "FAILED", "message": "Parameter error"}, 200))
    with pytest.raises(BadRequestError, match="Parameter error") as info:
        await call(client)
    assert info.value.status_code == 200


@pytest.mark.parametrize("status", [200, 401])
async def test_auth_body_without_data_is_authentication_error(
    server: LocalServer, client: AsyncTTAPI, status: int
) -> None:
    """The auth failure body (no ``data`` key) raises AuthenticationError, under 200 or 401."""
    body = {"status": "FAILED", "message": "Wrong TT-API-KEY or email is not activated."}
    server.reply("POST", DALLE3, json_answer(body, status))
    with pytest.raises(AuthenticationError, match="not activated"):
        await _dalle3(client)


async def test_failed_envelope_naming_quota_is_quota_error(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """A 200 FAILED envelope about the balance raises InsufficientQuotaError."""
    server.reply(
        "POST", DALLE3, json_answer({"status": "FAILED", "message": "Insufficient balance"}, 200)
    )
    with pytest.raises(InsufficientQuotaError):
        await _dalle3(client)


@pytest.mark.parametrize("endpoint", ["generate", "dalle3"])
async def test_openai_error_under_200_raises(
    server: LocalServer, client: AsyncTTAPI, endpoint: str
) -> None:
    """An OpenAI-shaped error body under HTTP 200 raises instead of returning no images."""
    url, call = ENDPOINTS[endpoint]
    server.reply("POST", url, json_answer(_openai_shape(200), 200))
    with pytest.raises(APIStatusError, match="problem 200"):
        await call(client)


async def test_dalle3_accepts_unwrapped_openai_answer(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """The legacy endpoint's answer is accepted without TTAPI's envelope too."""
    server.reply("POST", DALLE3, json_answer(GENERATION_OK, 200))
    r = await _dalle3(client)
    assert r.data[0].url == "https://cdn.example/cat.webp"


async def test_html_error_page_becomes_status_error_with_excerpt(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """A proxy's HTML 502 page raises InternalServerError whose message shows its start."""
    server.reply(
        "POST", GENERATIONS, text_answer(b"<html><h1>Bad Gateway</h1></html>", 502, "text/html")
    )
    with pytest.raises(InternalServerError, match="Bad Gateway") as info:
        await _generate(client)
    assert info.value.status_code == 502


async def test_empty_error_body_becomes_status_error(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """A 403 with no body at all still raises PermissionDeniedError."""
    server.reply("POST", GENERATIONS, text_answer(b"", 403))
    with pytest.raises(PermissionDeniedError, match="HTTP 403"):
        await _generate(client)


MALFORMED: dict[str, bytes] = {
    "empty": b"",
    "whitespace": b"  \n ",
    "truncated": b'{"created": 1745818538, "data": [{"url": "https://cdn.exa',
    "html": b"<html>oops</html>",
    "not-utf8": b"\xff\xfe\x00garbage",
    "array": b"[1, 2, 3]",
    "string": b'"hello"',
    "null": b"null",
    "missing-created": b'{"data": []}',
    "created-not-int": b'{"created": "yesterday", "data": []}',
    "data-null": b'{"created": 1, "data": null}',
    "data-string": b'{"created": 1, "data": "abc"}',
    "data-item-number": b'{"created": 1, "data": [1]}',
    "url-object": b'{"created": 1, "data": [{"url": {"x": 1}}]}',
    "usage-string": b'{"created": 1, "data": [], "usage": "lots"}',
    "usage-tokens-text": b'{"created": 1, "data": [], "usage": {"total_tokens": "many"}}',
}


@pytest.mark.parametrize("body", list(MALFORMED.values()), ids=list(MALFORMED))
async def test_malformed_answer_is_validation_error(
    server: LocalServer, client: AsyncTTAPI, body: bytes
) -> None:
    """A 200 whose body is not the contract's raises APIResponseValidationError (no KeyError)."""
    server.reply("POST", GENERATIONS, text_answer(body, 200))
    with pytest.raises(APIResponseValidationError) as info:
        await _generate(client)
    assert info.value.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b'{"status": "SUCCESS", "message": "success", "data": null}',
        b'{"status": "SUCCESS", "data": {"created": 1, "data": "x"}}',
        b'{"message": "success"}',
        b"[]",
    ],
    ids=["data-null", "data-bad", "no-status", "array"],
)
async def test_malformed_envelope_is_validation_error(
    server: LocalServer, client: AsyncTTAPI, body: bytes
) -> None:
    """A legacy answer whose envelope or data does not fit raises APIResponseValidationError."""
    server.reply("POST", DALLE3, text_answer(body, 200))
    with pytest.raises(APIResponseValidationError):
        await _dalle3(client)


async def test_validation_error_shows_an_excerpt(server: LocalServer, client: AsyncTTAPI) -> None:
    """The validation error quotes the start of the body that did not parse."""
    server.reply("POST", GENERATIONS, text_answer(b"<html>maintenance</html>", 200, "text/html"))
    with pytest.raises(APIResponseValidationError, match="maintenance") as info:
        await _generate(client)
    assert "maintenance" in info.value.excerpt


async def test_unknown_fields_are_tolerated(server: LocalServer, client: AsyncTTAPI) -> None:
    """Fields the contract does not name are ignored, not rejected."""
    body = {**GENERATION_OK, "brand_new": {"x": 1}, "data": [{"url": "u", "extra": True}]}
    server.reply("POST", GENERATIONS, json_answer(body, 200))
    r = await _generate(client)
    assert r.data[0].url == "u"


async def test_status_error_is_raised_once_without_retry(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """A 400 is raised at once: exactly one request goes out."""
    server.reply("POST", GENERATIONS, json_answer(_openai_shape(400), 400))
    with pytest.raises(BadRequestError):
        await client.images.generate(prompt="a cat", model="gpt-image-1")
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("status", "cls"),
    [(*item,) for item in STATUSES.items()]
    + [(502, InternalServerError), (503, InternalServerError), (418, APIStatusError)],
)
def test_status_error_class_table(status: int, cls: type[APIStatusError]) -> None:
    """``status_error_class`` maps each status to its documented class (unknown 4xx: the base)."""
    assert status_error_class(status) is cls


def test_error_tree_matches_design() -> None:
    """The error classes nest as ``_errors.py`` draws them."""
    assert issubclass(APITimeoutError, APIConnectionError)
    assert issubclass(APIConnectionError, TTAPIError)
    for cls in {*STATUSES.values(), APIStatusError}:
        assert issubclass(cls, APIStatusError) and issubclass(cls, TTAPIError)
    assert issubclass(APIResponseValidationError, TTAPIError)
    assert issubclass(InvalidRequestError, TTAPIError) and issubclass(
        InvalidRequestError, ValueError
    )
    assert issubclass(JobFailedError, TTAPIError)
    assert issubclass(JobTimeoutError, TTAPIError) and issubclass(JobTimeoutError, TimeoutError)


async def test_job_timeout_is_caught_as_either_timeout_error() -> None:
    """``except asyncio.TimeoutError`` and ``except TimeoutError`` both catch it, on 3.10 too."""
    for catch in (asyncio.TimeoutError, TimeoutError):
        try:
            raise JobTimeoutError("not finished", job_id="job-1")
        except catch as exc:
            assert isinstance(exc, JobTimeoutError)
    # What a caller of wait_for would write: one except clause for both kinds.
    with pytest.raises(asyncio.TimeoutError):
        raise JobTimeoutError("not finished", job_id="job-1")


def test_possibly_submitted_error_says_so() -> None:
    """An error marked possibly submitted tells the reader it may have been billed."""
    exc = APITimeoutError("POST /v1/images/generations timed out", possibly_submitted=True)
    assert exc.possibly_submitted
    assert "may have been processed" in str(exc)
