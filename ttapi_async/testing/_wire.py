"""The wire side of the fake: answers, the two error shapes, and writing answers out.

Endpoints return an ``Answer`` (status, bytes, headers, or a list of SSE chunks)
rather than writing themselves, so "drop after", "malformed" and "truncate"
apply to every endpoint alike.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import attrs
from aiohttp import web

from .._params import ImageFileInfo

__all__ = [
    "ENVELOPE_MESSAGES",
    "MALFORMED",
    "OPENAI",
    "TTAPI",
    "Answer",
    "BadBody",
    "Ctx",
    "Reject",
    "drop",
    "envelope_error",
    "json_answer",
    "openai_error",
    "response",
    "status_error",
    "write_stream",
    "write_truncated",
]

OPENAI = "openai"
TTAPI = "ttapi"

_REASONS = {499: "Queue Full"}
ENVELOPE_MESSAGES = {
    401: "Wrong TT-API-KEY or email is not activated.",
    402: "Insufficient balance or quota.",
    403: "Your account has been blocked.",
    404: "Not found.",
    405: "Method not allowed.",
    429: "Too many requests, please slow down.",
    499: "Too many jobs in progress for this product: the queue is full.",
    500: "Internal server error, please retry.",
    502: "Bad gateway.",
    503: "Service unavailable, please retry.",
    504: "Gateway timeout.",
}
_OPENAI_ERRORS = {
    # status: (type, code, message)
    401: ("invalid_request_error", "invalid_api_key", ENVELOPE_MESSAGES[401]),
    402: ("insufficient_quota", "insufficient_quota", ENVELOPE_MESSAGES[402]),
    403: ("permission_error", "account_blocked", ENVELOPE_MESSAGES[403]),
    404: ("invalid_request_error", "unknown_url", "Unknown request URL."),
    405: ("invalid_request_error", "method_not_allowed", ENVELOPE_MESSAGES[405]),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request."),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
    504: ("server_error", None, "Gateway timeout."),
}
# What a broken gateway might put in a 200: valid at first, then not JSON at all.
MALFORMED = b'{"status": "SUCCESS", "data": <html><body>upstream error</body></html>'


@attrs.define
class Answer:
    """Carry what an endpoint wants written: JSON bytes, or SSE chunks."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] | None = None
    chunks: list[bytes] | None = None


class BadBody(Exception):
    """The body could not be read as the endpoint expects."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class Reject(Exception):
    """Stop the pipeline with a ready answer."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.status)
        self.answer = answer


class Ctx:
    """Carry one request through the pipeline (a plain slots class: it is made per request)."""

    __slots__ = ("family", "images", "key", "mask", "params", "request")

    def __init__(self, request: web.Request, family: str) -> None:
        self.request = request
        self.family = family
        self.key = ""
        self.params: dict[str, Any] = {}
        self.images: list[ImageFileInfo] = []
        self.mask: ImageFileInfo | None = None

    def logged(self) -> dict[str, Any]:
        """Return the params to log: uploads appear by name and size, never by content."""
        if not self.images and self.mask is None:
            return self.params
        logged = dict(self.params)
        if self.images:
            logged["image"] = [{"filename": i.filename, "size": i.size} for i in self.images]
        if self.mask is not None:
            logged["mask"] = {"filename": self.mask.filename, "size": self.mask.size}
        return logged


# One encoder for the process: json.dumps with options builds a new encoder per call,
# a measurable share of a small answer's cost.
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _dumps(data: object) -> bytes:
    return _ENCODE(data).encode()


def json_answer(status: int, data: object, headers: dict[str, str] | None = None) -> Answer:
    """Return a JSON answer."""
    return Answer(status, _dumps(data), headers=headers)


def openai_error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """Return an error in OpenAI's shape."""
    error = {"message": message, "type": type_, "param": param, "code": code}
    return json_answer(status, {"error": error}, headers)


def envelope_error(status: int, message: str, headers: dict[str, str] | None = None) -> Answer:
    """Return an error in TTAPI's envelope."""
    return json_answer(status, {"status": "FAILED", "message": message, "data": None}, headers)


def status_error(family: str, status: int, headers: dict[str, str] | None = None) -> Answer:
    """Return the canned error of ``status`` in the shape of ``family``."""
    if family == OPENAI:
        type_, code, message = _OPENAI_ERRORS.get(status, ("server_error", None, f"HTTP {status}"))
        return openai_error(status, message, type_=type_, code=code, headers=headers)
    if status == 401:
        # The vendor's 401 body, verbatim: it has no "data" key.
        return json_answer(401, {"status": "FAILED", "message": ENVELOPE_MESSAGES[401]}, headers)
    return envelope_error(status, ENVELOPE_MESSAGES.get(status, f"HTTP {status}"), headers)


def response(answer: Answer) -> web.Response:
    """Turn a JSON answer into an aiohttp response."""
    return web.Response(
        status=answer.status,
        reason=_REASONS.get(answer.status),
        body=answer.body,
        content_type=answer.content_type,
        headers=answer.headers,
    )


def drop(request: web.Request) -> None:
    """Close the connection at once, unanswered."""
    transport = request.transport
    if transport is not None:
        # abort, not close: nothing buffered may reach the client.
        transport.abort()


async def write_stream(request: web.Request, answer: Answer, interval: float) -> web.StreamResponse:
    """Write an answer's SSE chunks, ``interval`` seconds apart."""
    resp = web.StreamResponse(status=answer.status)
    resp.content_type = answer.content_type
    resp.headers["Cache-Control"] = "no-cache"
    await resp.prepare(request)
    for i, chunk in enumerate(answer.chunks or ()):
        if i and interval > 0:
            await asyncio.sleep(interval)
        await resp.write(chunk)
    await resp.write_eof()
    return resp


async def write_truncated(request: web.Request, answer: Answer) -> web.StreamResponse:
    """Announce the whole body, send half of it, then close."""
    body = b"".join(answer.chunks) if answer.chunks is not None else answer.body
    resp = web.StreamResponse(status=answer.status, reason=_REASONS.get(answer.status))
    resp.content_type = answer.content_type
    resp.content_length = len(body)
    await resp.prepare(request)
    await resp.write(body[: len(body) // 2])
    transport = request.transport
    if transport is not None:
        # close, not abort: the first half must arrive, then the connection ends.
        transport.close()
    return resp
