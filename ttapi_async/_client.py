"""AsyncTTAPI: configuration, the aiohttp session's lifecycle, and the one ``_send()``."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar

import aiohttp
import attrs
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ._bigjson import dumps
from ._downloads import Downloads
from ._errors import APIResponseValidationError, InvalidRequestError, TTAPIError
from ._models import excerpt
from ._proxies import NO_PROXY, Route, env_proxy
from ._reading import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES, read_body
from ._redact import REDACTOR, register
from ._redirects import MAX_REDIRECTS, is_redirect, redirect_target
from ._response import decode_json, envelope_failure, payload_error, status_error
from ._retry import RetryPolicy
from ._translation import TRANSLATED, Translating, path_of, translate
from ._types import NOT_GIVEN, NotGiven, RequestOptions
from ._version import __version__

__all__ = ["DEFAULT_BASE_URL", "NOT_GIVEN", "AsyncTTAPI", "NotGiven", "RequestOptions"]

logger = logging.getLogger("ttapi_async")

_T = TypeVar("_T")

DEFAULT_BASE_URL: Final = "https://api.ttapi.io"
# Image generation takes minutes on the service's side; a short default would abandon
# (and, for paid POSTs, possibly double-bill) work that was about to finish.
DEFAULT_TIMEOUT: Final = 600.0
DEFAULT_CONNECT_TIMEOUT: Final = 30.0
DEFAULT_MAX_RETRIES: Final = 2
DEFAULT_MAX_CONNECTIONS: Final = 100


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


FormFactory = Callable[[], aiohttp.FormData]


class AsyncTTAPI:
    """Asynchronous client for TTAPI's OpenAI image models.

    Use it as ``async with AsyncTTAPI() as client:`` or call ``await client.aclose()``.
    The key comes from ``api_key`` or the ``TTAPI_API_KEY`` environment variable; it is
    never shown in a repr, an error or a log line. ``HTTP_PROXY`` / ``HTTPS_PROXY`` /
    ``NO_PROXY`` are honoured (``trust_env=False`` ignores them); ``proxy=`` names one.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        default_headers: Mapping[str, str] | None = None,
        session: aiohttp.ClientSession | None = None,
        validate: bool = True,
        proxy: str | None = None,
        trust_env: bool = True,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        allow_private_downloads: bool = False,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("TTAPI_API_KEY")
        if not key:
            raise TTAPIError(
                "no API key: pass api_key=... or set the TTAPI_API_KEY environment variable"
            )
        if max_retries is not None and max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {max_connections}")
        self._api_key = key
        # Process-wide, and for the life of the process: every error and log record is
        # cleaned of every client's key, even after the client that had it closed.
        register(key)
        self._redact = REDACTOR
        url = base_url or os.environ.get("TTAPI_BASE_URL") or DEFAULT_BASE_URL
        self.base_url: str = url.rstrip("/")
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        policy = retry_policy or RetryPolicy(max_retries=DEFAULT_MAX_RETRIES)
        if max_retries is not None:
            # Given both, max_retries wins; given only a policy, the policy's count stands.
            policy = attrs.evolve(policy, max_retries=max_retries)
        self.retry_policy: RetryPolicy = policy
        self.max_connections = max_connections
        # As requests and httpx do: HTTP(S)_PROXY / NO_PROXY are honoured unless trust_env
        # is off; ``proxy`` wins over them. An https URL always goes through a CONNECT
        # tunnel (aiohttp never forwards it in the clear), so a proxy never sees the key.
        self._proxy = proxy
        self._trust_env = trust_env
        # Set when the own session opens (see _proxies): the proxy of every API call, and
        # whether downloads look theirs up in the environment.
        self._api_route: Route = NO_PROXY
        self._env_proxies = False
        self.validate = validate
        #: seconds without a byte (in a stream: without an event) once an answer has started
        self.idle_timeout: float | None = _checked_idle(idle_timeout, param="idle_timeout")
        #: the most bytes (after decompression) one API answer may take
        self.max_response_bytes = _checked_cap(max_response_bytes)
        #: whether downloads may go to private, loopback or link-local addresses even when
        #: base_url is not one (they may whenever it is: the emulator)
        self.allow_private_downloads = allow_private_downloads
        self._downloads = Downloads(self)
        self._default_headers = dict(default_headers or {})
        self._borrowed_session = session
        self._session: aiohttp.ClientSession | None = session
        self._state = _State.UNOPENED
        self._close_callbacks: list[Callable[[], Awaitable[None]]] = []
        self._last_timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self._timeouts: dict[tuple[float | None, float | None], aiohttp.ClientTimeout] = {
            (timeout, connect_timeout): self._last_timeout
        }
        # Case-insensitive and built once: aiohttp takes a multidict as is (a dict it would
        # convert on every request), and a caller's "user-agent" replaces ours instead of
        # going out beside it. The key is always the one given as api_key.
        base: CIMultiDict[str] = CIMultiDict(
            {"Accept": "application/json", "User-Agent": f"ttapi_async/{__version__}"}
        )
        base.update(self._default_headers)
        base["TT-API-KEY"] = key
        self._base_headers: Mapping[str, str] = CIMultiDictProxy(base)
        self._json_headers: Mapping[str, str] = CIMultiDictProxy(
            CIMultiDict(base, **{"Content-Type": "application/json"})
        )

        from ._spent import Spending
        from .resources import Dalle3, Images

        #: running totals: job quota by product, usage tokens by model (``snapshot()``)
        self.spent = Spending()
        self.images = Images(self)
        self.dalle3 = Dalle3(self)
        self._attach_job_resources()

    def _attach_job_resources(self) -> None:
        """Attach the asynchronous-job resources (``gpt4o``, ``gpt``) and their watcher.

        The watcher costs nothing until a job is submitted or resumed (no task, no
        future); ``aclose()`` closes whichever watcher ``self.watcher`` is by then.
        """
        from ._watcher import JobWatcher
        from .resources.jobs import GPT, GPT4o

        self.watcher: JobWatcher = JobWatcher()
        self.gpt4o = GPT4o(self)
        self.gpt = GPT(self)

        async def close_watcher() -> None:
            await self.watcher.aclose()

        self._on_close(close_watcher)

    # --- lifecycle ---------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"AsyncTTAPI(base_url={self.base_url!r}, state={self._state.value})"

    async def __aenter__(self) -> AsyncTTAPI:
        if self._state is _State.CLOSED:
            raise RuntimeError("this AsyncTTAPI client is closed; create a new one")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def closed(self) -> bool:
        return self._state is _State.CLOSED

    def _on_close(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` (once) when the client closes, before its session goes."""
        self._close_callbacks.append(callback)

    async def aclose(self) -> None:
        """Close the client: settle its watchers, then close the session it owns."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        callbacks, self._close_callbacks = self._close_callbacks, []
        try:
            for callback in callbacks:
                await callback()
        finally:
            # Even when a callback failed (or aclose was cancelled): never leak the session.
            session, self._session = self._session, None
            if session is not None and session is not self._borrowed_session:
                await session.close()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._state is _State.CLOSED:
            raise RuntimeError("this AsyncTTAPI client is closed; create a new one")
        if self._session is None:
            # Created here, inside the running loop, never at construction time: a client
            # built at import time or in another loop must not own a session bound elsewhere.
            asyncio.get_running_loop()
            # No limit_per_host: equal to limit it limits nothing more, and costs
            # bookkeeping on every acquire and release.
            connector = aiohttp.TCPConnector(limit=self.max_connections)
            self._session = aiohttp.ClientSession(
                connector=connector,
                raise_for_status=False,
                proxy=self._proxy,
                # Not aiohttp's: it reads the environment in a thread on every request.
                trust_env=False,
            )
            self._env_proxies = self._trust_env and self._proxy is None
            if self._env_proxies:
                self._api_route = env_proxy(self.base_url)
        self._state = _State.OPENED
        return self._session

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
        headers = self._headers(options, json_body=data is not None)
        url = self._url(path)
        timeout = self._client_timeout(options)
        idle = self._idle_timeout(options)

        def attempt() -> Awaitable[tuple[int, Mapping[str, str], bytes]]:
            payload = data if form is None else form()
            return self._attempt(
                method,
                url,
                headers=headers,
                data=payload,
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
                        resp,
                        limit=self.max_response_bytes,
                        idle=idle,
                        method=method,
                        path=path_of(url),
                    )
                finally:
                    resp.release()
                    await resp.wait_for_close()
            except TRANSLATED as exc:
                translated = translate(exc, method=method, url=url, base_url=self.base_url)
                if translated is None:
                    raise
                raise translated from exc
            resp_headers = self._checked(method, url, resp, body, started, debug)
            if not 300 <= resp.status < 400:  # is_redirect(), inline: the hot path
                return resp.status, resp_headers, body
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
                        resp,
                        limit=self.max_response_bytes,
                        idle=idle,
                        method="POST",
                        path=path_of(url),
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

    # --- downloads (see _downloads) --------------------------------------------------------

    async def _download_route(self, url: URL) -> Route:
        """Return the proxy for a download of ``url`` (the environment's, read in a thread)."""
        if not self._env_proxies:
            return NO_PROXY  # a given proxy is the session's default; a borrowed one decides
        return await asyncio.to_thread(env_proxy, url)

    async def _download(self, url: str, *, expires_at: dt.datetime | None = None) -> bytes:
        """Download an image URL: no API key is sent, and only to where it may go."""
        return await self._downloads.read(url, expires_at=expires_at)

    async def _download_to(
        self, url: str, path: Path, *, expires_at: dt.datetime | None = None
    ) -> Path:
        """Stream an image URL into ``path`` atomically; memory stays flat."""
        return await self._downloads.save(url, path, expires_at=expires_at)


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


def _checked_idle(value: object, *, param: str) -> Any:
    """Return an idle timeout that is None (no limit), NOT_GIVEN, or a positive number."""
    if value is None or value is NOT_GIVEN:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise InvalidRequestError(
            f"{param} must be a positive number of seconds or None, got {value!r}",
            param=param,
            value=value,
        )
    return float(value)


def _checked_cap(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequestError(
            f"max_response_bytes must be a positive integer, got {value!r}",
            param="max_response_bytes",
            value=value,
        )
    return value
