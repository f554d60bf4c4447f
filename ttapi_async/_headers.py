"""What an answer's headers tell a caller: the headers themselves, and the request id.

Results keep the headers object aiohttp already built (no copy, no parsing per call); the
redaction runs only when a caller reads ``headers`` or ``request_id``, so an echoed key
never comes out while the hot path pays nothing for headers nobody reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from multidict import CIMultiDict, CIMultiDictProxy

from ._redact import REDACTOR

__all__ = ["EMPTY_HEADERS", "REQUEST_ID_HEADERS", "HasHeaders", "request_id_of"]

#: Where services put the id to quote to their support, first match wins: the de-facto
#: standard, its variants, and what Azure's and AWS's OpenAI-compatible gateways send.
REQUEST_ID_HEADERS: Final = (
    "x-request-id",
    "request-id",
    "openai-request-id",
    "x-ms-request-id",
    "apim-request-id",
    "x-amzn-requestid",
    "x-amz-request-id",
)

EMPTY_HEADERS: Final[Mapping[str, str]] = CIMultiDictProxy(CIMultiDict())


def request_id_of(headers: Mapping[str, str] | None) -> str | None:
    """Return the request id the answer's headers carry (redacted), or None."""
    if not headers:
        return None
    for name in REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return REDACTOR(str(value))
    return None


class HasHeaders:
    """Mixin: ``headers`` and ``request_id`` of the answer an object was built from.

    The class holds the raw headers in ``_headers`` (None when the object did not come
    from an HTTP answer: built by hand, or delivered by a webhook).
    """

    __slots__ = ()
    _headers: Any

    @property
    def headers(self) -> Mapping[str, str]:
        """Return the answer's response headers (case-insensitive), every key redacted."""
        raw = self._headers
        if raw is None:
            return EMPTY_HEADERS
        clean: Mapping[str, str] = REDACTOR.headers(raw)
        return clean

    @property
    def request_id(self) -> str | None:
        """Return the id the service gave this request (quote it to the vendor), or None."""
        return request_id_of(self._headers)
