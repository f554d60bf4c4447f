"""The send path: one logical request (retries, redirects, caps, typed errors), and streams.

``Sender`` is ``AsyncTTAPI``'s base: the client holds the configuration and the session's
lifecycle, and this is what every resource calls to reach the API.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import aiohttp
from multidict import CIMultiDict

from ._bigjson import dumps
from ._errors import APIResponseValidationError, InvalidRequestError, TTAPIError
from ._models import excerpt
from ._proxies import Route
from ._reading import read_body
from ._redact import Redactor
from ._redirects import MAX_REDIRECTS, is_redirect, redirect_target
from ._response import decode_json, envelope_failure, payload_error, status_error
from ._retry import RetryPolicy
from ._translation import TRANSLATED, Translating, path_of, translate
from ._types import NOT_GIVEN, NotGiven, RequestOptions

__all__ = ["FormFactory", "Sender"]

logger = logging.getLogger("ttapi_async")

_T = TypeVar("_T")

FormFactory = Callable[[], aiohttp.FormData]


class Sender:
    """Sending for ``AsyncTTAPI``, which sets these attributes in its ``__init__``."""

    base_url: str
    timeout: float | None
    connect_timeout: float | None
    retry_policy: RetryPolicy
    idle_timeout: float | None
    max_response_bytes: int
    _redact: Redactor
    _api_route: Route
    _base_headers: Mapping[str, str]
    _json_headers: Mapping[str, str]
    _last_timeout: aiohttp.ClientTimeout
    _timeouts: dict[tuple[float | None, float | None], aiohttp.ClientTimeout]

    def _get_session(self) -> aiohttp.ClientSession:
        raise NotImplementedError  # the client's: it owns the session

    # --- sending -----------------------------------------------------------------------------

    def _client_timeout(self, options: RequestOptions | None) -> aiohttp.ClientTimeout:
        # sock_connect, not connect: "connect" also counts the wait for a pooled connection,
        # which a busy batch would turn into spurious timeouts.
        if options is not None and options.timeout is not NOT_GIVEN:
            # Not cached: a caller passing what is left of a deadline gives a new value on
            # every call, and a cache keyed on it would grow without end.
            return aiohttp.ClientTimeout(total=options.timeout, sock_connect=self.connect_timeout)
        last = self._last_timeout
        # Both are public and may be changed between calls: the last one built is reused
        # only while they still hold what it was built from.
        if last.total == self.timeout and last.sock_connect == self.connect_timeout:
            return last
        key = (self.timeout, self.connect_timeout)
        cached = self._timeouts.get(key)
        if cached is None:
            cached = aiohttp.ClientTimeout(total=self.timeout, sock_connect=self.connect_timeout)
            self._timeouts[key] = cached
        self._last_timeout = cached
        return cached

    def _idle_timeout(self, options: RequestOptions | None) -> float | None:
        # A per-call value was checked where it was given (resources' _options).
        if options is not None and not isinstance(options.idle_timeout, NotGiven):
            return options.idle_timeout
        return self.idle_timeout

    def _retrying(self, *, idempotent: bool, options: RequestOptions | None) -> Any:
        max_retries = None
        possibly = None
        if options is not None:
            if not isinstance(options.max_retries, NotGiven):
                max_retries = options.max_retries
            if not isinstance(options.retry_possibly_submitted, NotGiven):
                possibly = options.retry_possibly_submitted
        return self.retry_policy.retrying(
            idempotent=idempotent, max_retries=max_retries, retry_possibly_submitted=possibly
        )

    def _url(self, path: str) -> str:
        if path[:1] == "/":  # an endpoint's path: the common case, and never a full URL
            return self.base_url + path
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    def _headers(self, options: RequestOptions | None, *, json_body: bool) -> Mapping[str, str]:
        base = self._json_headers if json_body else self._base_headers
        if options is not None and options.extra_headers:
            merged = CIMultiDict(base)
            merged.update(options.extra_headers)  # replaces, whatever the case of the name
            return merged
        return base

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        form: FormFactory | None = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool,
        options: RequestOptions | None = None,
        redacted: bool = False,
    ) -> tuple[Any, int, Mapping[str, str]]:
        """Send one logical request (with its retries) and return (JSON, status, headers).

        ``idempotent`` says whether repeating the request is harmless (polls) or could
        create paid work twice (every submitting POST); see ``_retry.should_retry``.
        ``redacted``: every string of the JSON returned has the API keys replaced.
        """
        data = _encoded(json_body)
        if options is None:  # the common case: the client's own settings, read inline
            headers = self._json_headers if data is not None else self._base_headers
            idle = self.idle_timeout
        else:
            headers = self._headers(options, json_body=data is not None)
            idle = self._idle_timeout(options)
        url = self.base_url + path if path[:1] == "/" else self._url(path)
        timeout = self._client_timeout(options)

        def attempt() -> Awaitable[tuple[int, Mapping[str, str], bytes]]:
            return self._attempt(
                method,
                url,
                headers=headers,
                data=data if form is None else form(),
                params=params,
                timeout=timeout,
                idempotent=idempotent,
                idle=idle,
            )

        # The first attempt runs outside tenacity: the success path, which nearly every call
        # takes, costs no retry machinery. A failure is handed to tenacity (see _retry).
        try:
            status, resp_headers, body = await attempt()
        except Exception as exc:  # CancelledError is a BaseException: it passes untouched
            status, resp_headers, body = await self._retry(
                attempt, exc, idempotent=idempotent, options=options
            )
        decoded = decode_json(body, status_code=status, redact=self._redact)
        if redacted and self._redact.may_hold(body):  # the walk only where a key may be
            decoded = self._redact.value(decoded)
        return decoded, status, resp_headers

    async def _retry(
        self,
        attempt: Callable[[], Awaitable[_T]],
        first: Exception,
        *,
        idempotent: bool,
        options: RequestOptions | None,
    ) -> _T:
        """Hand a request whose first attempt failed with ``first`` to tenacity.

        The first attempt runs outside tenacity, so the success path costs no retry
        machinery; tenacity sees ``first`` as its own attempt 1 and decides, waits and
        drives every later attempt exactly as if it had run them all.
        """
        pending: Exception | None = first
        async for retry in self._retrying(idempotent=idempotent, options=options):
            with retry:
                if pending is not None:
                    exc, pending = pending, None
                    raise exc
                result = await attempt()
        return result

    async def _attempt(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        data: Any,
        params: Mapping[str, str] | None,
        timeout: aiohttp.ClientTimeout,
        idempotent: bool = False,
        idle: float | None = None,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """Send once; return (status, headers, body) of a 2xx answer or raise typed.

        Redirects are never left to aiohttp, which would send the key to any origin and
        re-POST on 307/308: ``_redirects`` decides (same-origin 307/308 of a repeatable
        request only).
        """
        session = self._get_session()
        proxy, proxy_auth = self._api_route
        debug = logger.isEnabledFor(logging.DEBUG)
        for hops in range(MAX_REDIRECTS + 1):
            started = time.perf_counter() if debug else 0.0
            # try/except rather than ``with Translating(...)``: the hot path, and a try
            # costs nothing until something is raised.
            try:
                resp = await session.request(
                    method,
                    url,
                    data=data,
                    headers=headers,
                    params=params,
                    timeout=timeout,
                    allow_redirects=False,
                    # A borrowed session may raise on 4xx itself; error bodies are parsed here.
                    raise_for_status=False,
                    proxy=proxy,
                    proxy_auth=proxy_auth,
                )
                try:
                    body = await read_body(
                        resp, limit=self.max_response_bytes, idle=idle, method=method, url=url
                    )
                finally:
                    resp.release()
                    await resp.wait_for_close()
            except TRANSLATED as exc:
                translated = translate(exc, method=method, url=url, base_url=self.base_url)
                if translated is None:
                    raise
                raise translated from exc
            status = resp.status
            if status < 300 and not debug:  # _checked() has nothing to do: the hot path
                return status, resp.headers, body
            resp_headers = self._checked(method, url, resp, body, started, debug)
            if not 300 <= status < 400:  # is_redirect(), inline
                return status, resp_headers, body
            url = redirect_target(
                method, url, resp.status, resp_headers, idempotent=idempotent, hops=hops
            )
            params = None  # the Location names the whole target, query included
        raise AssertionError("unreachable: redirect_target refuses the last hop")

    def _checked(
        self,
        method: str,
        url: str,
        resp: aiohttp.ClientResponse,
        body: bytes,
        started: float,
        debug: bool,
    ) -> Mapping[str, str]:
        """Log an answer (at DEBUG) and raise a typed error for 4xx/5xx; return its headers."""
        status = resp.status
        if debug:
            logger.debug(
                "%s %s -> %d (%d bytes, %.3fs)",
                method,
                path_of(url),
                status,
                len(body),
                time.perf_counter() - started,
            )
        if status >= 400:
            raise status_error(status, resp.headers, body, redact=self._redact)
        return resp.headers

    @contextlib.asynccontextmanager
    async def _stream(
        self,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        form: FormFactory | None = None,
        options: RequestOptions | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """POST and yield the open response of a server-sent event stream.

        Retries cover only getting the stream's first answer; once events flow, a broken
        stream raises (the generation it carried was paid for and cannot be replayed).
        """
        data = _encoded(json_body)
        headers = {**self._headers(options, json_body=data is not None)}
        headers["Accept"] = "text/event-stream"
        url = self._url(path)
        timeout = self._client_timeout(options)
        idle = self._idle_timeout(options)
        retrying = self._retrying(idempotent=False, options=options)
        resp: aiohttp.ClientResponse | None = None
        async for attempt in retrying:
            with attempt:
                resp = await self._open(
                    url, headers, data if form is None else form(), timeout, idle
                )
        assert resp is not None
        try:
            with Translating("POST", url, self.base_url):
                yield resp
        finally:
            resp.release()

    async def _open(
        self,
        url: str,
        headers: Mapping[str, str],
        data: Any,
        timeout: aiohttp.ClientTimeout,
        idle: float | None,
    ) -> aiohttp.ClientResponse:
        session = self._get_session()
        proxy, proxy_auth = self._api_route
        with Translating("POST", url, self.base_url):
            resp = await session.post(
                url,
                data=data,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,  # see _attempt: a paid POST never follows one
                raise_for_status=False,
                proxy=proxy,
                proxy_auth=proxy_auth,
            )
            if is_redirect(resp.status):
                resp.release()
                redirect_target("POST", url, resp.status, resp.headers, idempotent=False, hops=0)
            # A JSON answer to a stream request is an error in one of its shapes (a 200 with
            # a FAILED envelope included), never an empty stream.
            if resp.status >= 400 or resp.content_type == "application/json":
                try:
                    body = await read_body(
                        resp, limit=self.max_response_bytes, idle=idle, method="POST", url=url
                    )
                finally:
                    resp.release()
                raise self._stream_refused(resp.status, resp.headers, body)
        return resp

    def _stream_refused(self, status: int, headers: Mapping[str, str], body: bytes) -> TTAPIError:
        if status >= 400:
            return status_error(status, headers, body, redact=self._redact)
        payload = decode_json(body, status_code=status, redact=self._redact)
        if isinstance(payload, Mapping):
            if "status" in payload and payload["status"] != "SUCCESS":
                return envelope_failure(
                    payload, status_code=status, headers=headers, redact=self._redact
                )
            if payload.get("error") is not None:
                return payload_error(status, headers, payload, redact=self._redact)
        return APIResponseValidationError(
            "expected an event stream, got a JSON answer",
            status_code=status,
            excerpt=excerpt(body, redact=self._redact),
        )


def _encoded(json_body: Mapping[str, Any] | None) -> bytes | None:
    """Return the JSON text of a body; what JSON cannot hold is refused before sending."""
    if json_body is None:
        return None
    try:
        return dumps(json_body)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidRequestError(
            f"the request body is not JSON ({type(exc).__name__})", param="body"
        ) from None
