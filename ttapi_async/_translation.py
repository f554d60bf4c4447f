"""Map aiohttp's and the OS's exceptions onto the error tree, their text redacted.

``translate`` builds the typed error of one exception; ``Translating`` is the same as a
``with`` block. Cancellation (and any other BaseException) passes untouched.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Final

import aiohttp

from ._errors import APIConnectionError, APITimeoutError, InvalidRequestError, TTAPIError
from ._redact import scrub_exception

__all__ = ["TRANSLATED", "Translating", "path_of", "translate"]

# What translate() maps onto the error tree. asyncio.TimeoutError is named: before
# Python 3.11 it is not an OSError.
TRANSLATED: Final = (aiohttp.ClientError, OSError, asyncio.TimeoutError)


def path_of(url: str) -> str:
    """Return ``url`` without its query string (logged and put in errors: it may hold tokens)."""
    return url.split("?", 1)[0]


def translate(exc: BaseException, *, method: str, url: str, base_url: str) -> TTAPIError | None:
    """Return the error-tree counterpart of an aiohttp or OS exception, or None.

    ``exc`` and its chain are scrubbed of API keys in place: a malformed status or
    chunk-size line that quotes the key must not carry it into the chained traceback.
    """
    scrub_exception(exc)
    path = path_of(url)
    if isinstance(exc, (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError)):
        # A configuration mistake (base_url): nothing was sent, and no retry can help.
        return InvalidRequestError(
            f"cannot send {method} to {path!r}: not a valid http(s) URL", param="base_url"
        )
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        # Raised while connecting: nothing was sent, so any request may be retried.
        return APITimeoutError(f"timed out connecting to {base_url}", method=method, url=path)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return APIConnectionError(
            f"cannot connect to {exc.host}:{exc.port} ({type(exc.os_error).__name__})",
            method=method,
            url=path,
        )
    # Before OSError: TimeoutError is one. A total timeout that expires while connecting
    # also lands here; we cannot tell it from one after sending, so it is "possibly".
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return APITimeoutError(
            f"{method} {path} timed out", possibly_submitted=True, method=method, url=path
        )
    if isinstance(exc, aiohttp.ClientResponseError):
        return APIConnectionError(
            f"{method} {path}: malformed HTTP answer ({exc.message})",
            possibly_submitted=True,
            method=method,
            url=path,
        )
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        return APIConnectionError(
            f"{method} {path}: connection lost ({type(exc).__name__})",
            possibly_submitted=True,
            method=method,
            url=path,
        )
    return None


class Translating:
    """``with Translating(method, url, base_url):`` -- raise aiohttp's errors as the tree's."""

    __slots__ = ("_base_url", "_method", "_url")

    def __init__(self, method: str, url: str, base_url: str) -> None:
        self._method = method
        self._url = url
        self._base_url = base_url

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None or not isinstance(exc, TRANSLATED):
            return  # success, cancellation, or one of our own errors: unchanged
        translated = translate(exc, method=self._method, url=self._url, base_url=self._base_url)
        if translated is not None:
            raise translated from exc
