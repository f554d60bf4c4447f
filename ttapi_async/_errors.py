"""Every error ttapi_async raises, under one root.

::

    TTAPIError
     ├── APIConnectionError              the request did not get an HTTP answer
     │    └── APITimeoutError            ... because a timeout expired
     ├── APIStatusError                  the server answered with an error
     │    ├── BadRequestError            400
     │    ├── AuthenticationError        401
     │    ├── InsufficientQuotaError     402
     │    ├── PermissionDeniedError      403
     │    ├── NotFoundError              404
     │    ├── RateLimitError             429
     │    ├── QueueFullError             499
     │    ├── InternalServerError        5xx
     │    └── RedirectError              3xx not followed (another origin, or a paid POST)
     ├── APIResponseValidationError      an answer that does not parse as the contract says
     │    └── ResponseTooLargeError      ... because it passed the client's max_response_bytes
     ├── InvalidRequestError (ValueError)  rejected before anything was sent
     ├── JobFailedError                  an asynchronous job ended FAILED
     ├── JobTimeoutError (TimeoutError)  a job did not finish before its deadline
     └── LeaseTimeoutError (TimeoutError)  no job-in-progress lease came free in time

A business failure that TTAPI answers with HTTP 200 and ``"status": "FAILED"``
becomes the ``APIStatusError`` subclass its message points at (``BadRequestError``
when nothing more specific fits), with ``status_code`` 200.

``APIConnectionError.possibly_submitted`` is True when the request may have reached
the server: the caller may have been charged and must not blindly send it again.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from multidict import CIMultiDict

from ._headers import request_id_of
from ._redact import REDACTOR, scrub_exception

if sys.version_info < (3, 11):
    import asyncio

__all__ = [
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "InsufficientQuotaError",
    "InternalServerError",
    "InvalidRequestError",
    "JobFailedError",
    "JobTimeoutError",
    "LeaseTimeoutError",
    "NotFoundError",
    "PermissionDeniedError",
    "QueueFullError",
    "RateLimitError",
    "RedirectError",
    "ResponseTooLargeError",
    "TTAPIError",
    "status_error_class",
]


class TTAPIError(Exception):
    """Root of every error raised by ttapi_async.

    Its message never holds a registered API key, nor does the exception being handled
    while it is built (what ``raise ... from`` chains to it): both are redacted here.
    """

    message: str

    def __init__(self, message: str) -> None:
        if REDACTOR.active:
            message = REDACTOR(message)
            scrub_exception(sys.exc_info()[1])
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class APIConnectionError(TTAPIError):
    """Raise when no HTTP answer arrived: refused, reset, DNS, TLS or a timeout."""

    def __init__(
        self,
        message: str = "Connection error.",
        *,
        method: str = "",
        url: str = "",
        possibly_submitted: bool = False,
    ) -> None:
        if possibly_submitted:
            message = (
                f"{message} The request was sent and may have been processed (and billed); "
                "check before sending it again."
            )
        super().__init__(message)
        self.method = method
        self.url = url
        self.possibly_submitted = possibly_submitted


class APITimeoutError(APIConnectionError):
    """Raise when a connect, read or total timeout expired."""

    def __init__(
        self,
        message: str = "Request timed out.",
        *,
        method: str = "",
        url: str = "",
        possibly_submitted: bool = False,
    ) -> None:
        super().__init__(message, method=method, url=url, possibly_submitted=possibly_submitted)


class APIStatusError(TTAPIError):
    """Raise when the server answered with an error status or a FAILED envelope."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: object = None,
        headers: Mapping[str, str] | None = None,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body: object = REDACTOR.value(body)
        # Case-insensitive, as HTTP headers are: ``headers["retry-after"]`` finds Retry-After.
        # A server may echo the key in a header: the copy kept here is redacted.
        self.headers: Mapping[str, str] = CIMultiDict(REDACTOR.headers(headers) or {})
        #: the id the service gave the request (quote it to the vendor), or None
        self.request_id: str | None = request_id_of(self.headers)
        self.param = REDACTOR(param) if param is not None else None
        self.code = REDACTOR(code) if code is not None else None

    def __str__(self) -> str:
        return f"HTTP {self.status_code}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code}, message={self.message!r})"


class BadRequestError(APIStatusError):
    """Raise on 400: a missing or invalid parameter, or a banned prompt word."""


class AuthenticationError(APIStatusError):
    """Raise on 401: the key is missing or wrong, or the e-mail is not activated."""


class InsufficientQuotaError(APIStatusError):
    """Raise on 402: balance or quota insufficient."""


class PermissionDeniedError(APIStatusError):
    """Raise on 403: the account is blocked."""


class NotFoundError(APIStatusError):
    """Raise on 404: wrong endpoint, or no such resource (an expired job or URL)."""


class RateLimitError(APIStatusError):
    """Raise on 429: the short-term request rate was exceeded."""


class QueueFullError(APIStatusError):
    """Raise on 499: too many jobs in progress for this product on this account."""


class InternalServerError(APIStatusError):
    """Raise on 5xx: a service or upstream failure."""


class RedirectError(APIStatusError):
    """Raise when an API call is answered with a redirect that is not followed.

    API calls never follow a redirect to another origin (the key would go there), never
    re-send a paid POST, and never turn a POST into a GET. ``location`` is the origin
    (scheme, host, port) the answer pointed at, or None when it named none.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        headers: Mapping[str, str] | None = None,
        location: str | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, headers=headers)
        self.location = REDACTOR(location) if location is not None else None


class APIResponseValidationError(TTAPIError):
    """Raise when an answer does not parse as the contract says."""

    def __init__(self, message: str, *, status_code: int | None = None, excerpt: str = "") -> None:
        excerpt = REDACTOR(excerpt)
        if excerpt:
            message = f"{message} (body starts: {excerpt!r})"
        super().__init__(message)
        self.status_code = status_code
        self.excerpt = excerpt


class ResponseTooLargeError(APIResponseValidationError):
    """Raise when an answer's body (counted after decompression) passed the client's cap.

    ``limit`` is the cap; ``received`` how many bytes had been read when reading stopped
    (0 when the declared length alone was over it).
    """

    def __init__(self, message: str, *, limit: int, received: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.received = received


class InvalidRequestError(TTAPIError, ValueError):
    """Raise when a parameter breaks the contract; nothing has been sent."""

    def __init__(self, message: str, *, param: str | None = None, value: Any = None) -> None:
        super().__init__(message)
        self.param = param
        self.value = REDACTOR.value(value)


class JobFailedError(TTAPIError):
    """Raise when an asynchronous job ended FAILED (or could no longer be watched)."""

    def __init__(self, message: str, *, job_id: str, status: object = None) -> None:
        super().__init__(f"job {job_id}: {message}")
        self.job_id = REDACTOR(job_id)
        #: the last ``JobStatus`` seen, when there was one (a job's message may echo the key)
        self.status: object = REDACTOR.value(status)


if sys.version_info >= (3, 11):
    _Timeout = TimeoutError
else:  # asyncio.TimeoutError is TimeoutError only from 3.11: be caught as either

    class _Timeout(TimeoutError, asyncio.TimeoutError):
        pass


class JobTimeoutError(TTAPIError, _Timeout):
    """Raise when a job did not finish before its deadline; it may still finish later.

    It is a ``TimeoutError`` and an ``asyncio.TimeoutError`` on every supported Python.
    """

    def __init__(self, message: str, *, job_id: str, status: object = None) -> None:
        super().__init__(f"job {job_id}: {message}")
        self.job_id = REDACTOR(job_id)
        self.status: object = REDACTOR.value(status)


class LeaseTimeoutError(TTAPIError, TimeoutError):
    """Raise when no lease for a job in progress came free before the timeout; nothing was sent."""

    def __init__(self, message: str, *, product: str) -> None:
        super().__init__(message)
        self.product = product


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: InsufficientQuotaError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
    499: QueueFullError,
}


#: Statuses besides 5xx after which sending the same request again is harmless and may
#: succeed (timeout, conflict, too early, rate limit, queue full): a poll is only
#: rescheduled, an idempotent request retried.
TRANSIENT_STATUSES = frozenset({408, 409, 425, 429, 499})


def status_error_class(status_code: int) -> type[APIStatusError]:
    """Return the error class for an HTTP status code."""
    if status_code >= 500:
        return InternalServerError
    return _BY_STATUS.get(status_code, APIStatusError)
